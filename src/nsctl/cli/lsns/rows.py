"""The rows of ``nsctl lsns``, built from a snapshot in lsns's order.

One :class:`NsRow` per namespace of the types asked for; :class:`Builder`
adds their lines to the output table (one per namespace, or one per process
of the NAMESPACE argument), nested by the tree mode (process, owner or
parent) and kept or dropped by the -Q filter.  :class:`Source` answers the
look-ups column getters make beyond the snapshot (user names, NETNSID, bind
mount paths), each asked only when a column needs it.
"""
from __future__ import annotations

from ...kernel.errors import NsctlError
from . import columns as C
from .layout import RIGHT, TREE, TRUNC, WRAP, Line, Table

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Literal

    from ...kernel.netnsid import NetnsIds
    from ...model import Namespace, Process, Snapshot
    from .options import Config


class NsRow:
    """lsns's view of one namespace: its processes and the one its PID columns show."""

    __slots__ = ("ns", "pids", "proc", "outline")

    def __init__(self, ns: Namespace, pids: list[int], proc: Process | None) -> None:
        self.ns = ns
        self.pids = pids
        self.proc = proc
        self.outline: Line | None = None    # its line, in the owner and parent tree modes


class Source:
    """The look-ups column getters may make; NETNSID is asked only when used."""

    def __init__(self, snap: Snapshot, nsfs_separator: str) -> None:
        self.snap = snap
        self.nsfs_separator = nsfs_separator
        self._users: dict[int, str] = {}
        self._netnsid: dict[int, str | None] = {}
        self._netlink: NetnsIds | Literal[False] | None = None  # False: none to be had

    def close(self) -> None:
        if self._netlink:
            self._netlink.close()

    def user_name(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            import pwd

            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = str(uid)
            self._users[uid] = name
        return name

    def nsfs(self, ns: Namespace) -> list[str]:
        """Bind mount paths of ``ns``: those in our mount namespace first (in
        mount-table order), then those in other mount namespaces."""
        own = self.snap.own.get("mnt")
        mounts = [r for r in ns.refs if r.kind == "bindmount"]
        mounts.sort(key=lambda r: r.mntns != own)
        out: list[str] = []
        for r in mounts:
            if r.path and r.path not in out:
                out.append(r.path)
        return out

    def netnsid(self, ns: Namespace) -> str | None:
        if ns.ino not in self._netnsid:
            self._netnsid[ns.ino] = self._ask_netnsid(ns)
        return self._netnsid[ns.ino]

    def _ask_netnsid(self, ns: Namespace) -> str | None:
        if self.snap.offline:
            return None  # a live kernel's answer would not be the snapshot's
        from ...kernel.netnsid import NOT_ASSIGNED, NetnsIds

        if self._netlink is None:
            try:
                self._netlink = NetnsIds()
            except NsctlError:
                self._netlink = False
        if not self._netlink:
            return None
        q = self._netlink
        nsid = None
        # (each takes the arguments _netns_handles yields after its name)
        ask: dict[str, Callable[..., int | None]] = {
            "path": q.of_path, "mount": q.of_mount, "socket": q.of_socket}
        for how, *args in self._netns_handles(ns):
            nsid = ask[how](*args, expect_ino=ns.ino)
            if nsid is not None:
                break
        if nsid is None or (nsid < 0 and nsid != NOT_ASSIGNED):
            return None
        return "unassigned" if nsid == NOT_ASSIGNED else str(nsid)

    def _netns_handles(self, ns: Namespace) -> Iterator[tuple]:
        """Ways to open the namespace, cheapest first (every one is checked by inode)."""
        for pid in sorted(set(ns.pids)):
            yield "path", f"/proc/{pid}/ns/net"
        own = self.snap.own.get("mnt")
        for r in ns.refs:
            if r.kind == "fd":
                yield "path", f"/proc/{r.pid}/fd/{r.fd}"
            elif r.kind == "bindmount" and r.path:
                if r.mntns == own:
                    yield "mount", "/", r.path
                else:
                    for p in self.snap.processes.values():
                        if p.ns.get("mnt") == r.mntns:
                            yield "mount", f"/proc/{p.pid}/root", r.path
                            break
            elif r.kind == "socket":
                yield "socket", r.pid, r.fd


class Builder:
    """Adds lines in lsns's order and nests them by the tree mode; applies -Q."""

    def __init__(self, cfg: Config, snap: Snapshot, rows: dict[int, NsRow],
                 table: Table, src: Source) -> None:
        self.cfg = cfg
        self.snap = snap
        self.rows = rows
        self.table = table
        self.src = src
        self.columns = [C.BY_NAME[n] for n in cfg.columns]
        self.proc_outline: dict[int, Line] = {}
        self._busy: set[int] = set()

    def _parent_proc(self, proc: Process) -> Process | None:
        if proc.ppid == proc.pid:
            return None
        return self.snap.processes.get(proc.ppid)

    def add_line(self, row: NsRow, proc: Process | None) -> None:
        mode = self.cfg.tree
        parent: Line | None = None
        if mode == "process" and proc is not None:
            pp = self._parent_proc(proc)
            parent = self.proc_outline.get(pp.pid) if pp is not None else None
        elif mode == "parent":
            up = row.ns.parent if row.ns.type in ("user", "pid") else None
            rel = self.rows.get(up) if up is not None else None
            parent = rel.outline if rel is not None else None
        elif mode == "owner":
            rel = self.rows.get(row.ns.owner) if row.ns.owner is not None else None
            parent = rel.outline if rel is not None else None
        view = C.Row(row.ns, len(row.pids), proc, self.src)
        flt = self.cfg.filter
        if flt is not None and not flt.matches(lambda name: C.BY_NAME[name].get(view)):
            return
        line = Line([c.get(view) for c in self.columns], parent)
        self.table.add(line)
        if mode in ("owner", "parent"):
            row.outline = line
        elif proc is not None:
            self.proc_outline[proc.pid] = line

    def show_namespace(self, row: NsRow) -> None:
        """A namespace's line, after the line of its owner/parent in those tree modes."""
        if row.ns.ino in self._busy:
            return
        self._busy.add(row.ns.ino)
        try:
            mode = self.cfg.tree
            owner = self.rows.get(row.ns.owner) if row.ns.owner else None
            parent = (self.rows.get(row.ns.parent)
                      if row.ns.parent and row.ns.type in ("user", "pid") else None)
            if mode == "owner" and owner is not None and owner.outline is None:
                self.show_namespace(owner)
            elif mode == "parent":
                if parent is not None:
                    if parent.outline is None:
                        self.show_namespace(parent)
                elif owner is not None and owner.outline is None:
                    self.show_namespace(owner)
            self.add_line(row, row.proc)
        finally:
            self._busy.discard(row.ns.ino)

    def show_namespaces(self) -> None:
        for ino in sorted(self.rows):
            row = self.rows[ino]
            if self.cfg.pid and self.cfg.pid not in row.pids:
                continue
            if self.cfg.persist and row.pids:
                continue
            if row.outline is None:
                self.show_namespace(row)

    def show_processes(self, row: NsRow) -> None:
        """One line per process of one namespace (the NAMESPACE argument)."""
        for pid in row.pids:
            proc = self.snap.processes.get(pid)
            if proc is not None and pid not in self.proc_outline:
                self._show_process(row, proc, set())

    def _show_process(self, row: NsRow, proc: Process, busy: set[int]) -> None:
        busy.add(proc.pid)
        pp = self._parent_proc(proc)
        if (self.cfg.tree == "process" and pp is not None and pp.pid not in busy
                and pp.pid not in self.proc_outline
                and pp.ns.get(row.ns.type) == proc.ns.get(row.ns.type)):
            self._show_process(row, pp, busy)
        self.add_line(row, proc)


def build_rows(cfg: Config, snap: Snapshot) -> dict[int, NsRow]:
    rows: dict[int, NsRow] = {}
    for ns in snap.namespaces.values():
        if ns.type not in cfg.types:
            continue
        pids = sorted({p for p in ns.pids if p in snap.processes})
        proc = snap.processes[pids[0]] if pids else None
        rows[ns.ino] = NsRow(ns, pids, proc)
    return rows


def make_table(cfg: Config, name: str = "namespaces") -> Table:
    cols = []
    for cname in cfg.columns:
        col = C.BY_NAME[cname]
        flags = col.flags
        if cfg.no_trunc:
            flags &= ~TRUNC
        if cfg.tree == "process" and cname == "COMMAND":
            flags |= TREE
        if cfg.no_wrap:
            flags &= ~WRAP
        if cfg.tree in ("owner", "parent") and cname == "NS":
            flags = (flags | TREE) & ~RIGHT
        cols.append((col.name, flags, col.whint, col.json))
    return Table(name, cols, json=cfg.json, raw=cfg.raw, no_headings=cfg.no_headings)

