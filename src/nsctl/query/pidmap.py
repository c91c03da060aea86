"""PID namespaces: levels, inits, and a PID's meaning in each namespace (PID translation).

A PID means something different in every PID namespace; a process is visible
in its own PID namespace and every ancestor, with one PID at each level
(/proc/PID/status NSpid, outermost first as seen from our level).  Translation
uses NS_GET_{PID,TGID}_{FROM,IN}_PIDNS where the kernel has them (6.11) and
NSpid/NStgid otherwise; ``via`` picks one explicitly so both stay tested.
"""
from __future__ import annotations

import os

from ..kernel import pidfd, pidns, procfs
from ..kernel.errors import AccessDenied, NoSuchProcess, NsctlError, Unsupported
from ..kernel.pidns import NotVisible
from ..model import Namespace, Snapshot
from .handles import open_namespace

AUTO, IOCTL, PROC = "auto", "ioctl", "proc"


class PidNsInfo:
    """What nsctl knows of one PID namespace."""

    __slots__ = ("ns", "level", "init", "init_state", "status", "pids", "children_elsewhere",
                 "pending")

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.level = 0                 # absolute: 0 is the initial PID namespace
        self.init: int | None = None   # its PID 1, as a PID in our namespace
        self.init_state = ""           # R, S, Z, ... of that init
        self.status = "active"         # active | dying (init gone, processes left) | dead
        self.pids: list[int] = sorted(ns.pids)
        # processes in it whose pid_for_children is another namespace
        self.children_elsewhere: list[int] = []
        # processes in it that unshared a PID namespace and forked nothing yet
        self.pending: list[int] = []

    def to_dict(self) -> dict:
        return {"ns": self.ns.ino, "level": self.level, "parent": self.ns.parent,
                "owner": self.ns.owner, "init": self.init, "init_state": self.init_state,
                "status": self.status, "nprocs": len(self.pids),
                "children_elsewhere": self.children_elsewhere, "pending": self.pending}


def own_level() -> int:
    """The absolute level of our own PID namespace (NSpid has one entry per level)."""
    return len(nspid_of(os.getpid())) - 1


class NoInits:
    """The PID namespaces the kernel said have no init, each with what the snapshot
    showed of it then, for a watcher that asks per change: while a namespace's
    references and processes and the processes that refused us are the same, it
    still has none, and the kernel is not asked again.  (An init appears only in a
    PID namespace that never had one, as the first process forked into it: a new
    process, seen in it or refusing.)"""

    __slots__ = ("known",)

    def __init__(self) -> None:
        self.known: dict[int, tuple] = {}

    @staticmethod
    def key(info: PidNsInfo, refused: frozenset) -> tuple:
        return tuple(info.ns.refs), tuple(info.pids), refused


def pid_namespaces(snap: Snapshot, no_inits: NoInits | None = None) -> dict[int, PidNsInfo]:
    """Every PID namespace in the snapshot with its level, init and status; with
    ``no_inits``, those it remembers from the last call are not asked again, and it
    remembers this call's."""
    own = snap.own_pid_level if snap.own_pid_level is not None else own_level()
    base = own - snap.level(snap.own.get("pid", -1))
    out = {ns.ino: PidNsInfo(ns) for ns in snap.of_type("pid")}
    info: PidNsInfo | None
    for info in out.values():
        info.level = base + snap.level(info.ns.ino)
    for proc in snap.processes.values():
        info = out.get(proc.ns.get("pid", -1))
        if info is None:
            continue
        child_ns = proc.ns.get("pid_for_children")
        if child_ns is not None and child_ns != proc.ns.get("pid"):
            info.children_elsewhere.append(proc.pid)
        if proc.pidns_pending:
            info.pending.append(proc.pid)
        if (proc.nspid[-1] if proc.nspid else proc.pid) == 1:
            info.init, info.init_state = proc.pid, proc.state
    # The processes not read (but for those that exited): any may be an init unseen.
    refused = frozenset((p.pid, p.what) for p in snap.problems
                        if p.pid is not None and p.reason != "vanished")
    none_now: dict[int, tuple] = {}
    for info in out.values():
        if info.init is None and snap.offline:  # a snapshot: the init it had then
            info.init, info.init_state = snap.pid_inits.get(info.ns.ino, (None, ""))
        elif info.init is None:
            key = NoInits.key(info, refused) if no_inits is not None else None
            if key is None or no_inits is None or no_inits.known.get(info.ns.ino) != key:
                info.init = _find_init(info.ns, snap)
                if info.init is not None and procfs.is_exiting(info.init):
                    info.init = None  # still PID 1 there, but exiting: the namespace is dying
                if info.init is not None:
                    info.init_state = _state(info.init)
            if info.init is None and key is not None:
                none_now[info.ns.ino] = key
        if info.init is None:
            info.status = "dying" if info.pids else "dead"
    if no_inits is not None:
        no_inits.known = none_now
    return out


def _find_init(ns: Namespace, snap: Snapshot) -> int | None:
    """PID 1 of ``ns`` in our view, for inits discovery could not read (PID 1 may
    refuse even root): ask the kernel, or check /proc for our own namespace."""
    if ns.ino == snap.own.get("pid"):
        return 1 if os.path.exists(f"{procfs.PROC}/1") else None
    try:
        fd = open_namespace(ns, snap)
    except NsctlError:
        return None
    try:
        return pidns.pid_from_ns(fd, 1)
    except NsctlError:
        return None
    finally:
        os.close(fd)


def _state(pid: int) -> str:
    try:
        dirfd = procfs.open_dir(f"{procfs.PROC}/{pid}")
        try:
            return procfs.read_stat(dirfd)[1]
        finally:
            os.close(dirfd)
    except OSError:
        return ""


def read_task(pid: int) -> tuple[int, list[int], list[int]]:
    """(PID namespace inode, NSpid, NStgid) of a process or thread, read while holding
    its pidfd so that a PID reused meanwhile cannot mix two tasks."""
    handle = pidfd.open_task_pidfd(pid)
    try:
        dirfd = procfs.open_dir(f"{procfs.PROC}/{pid}")
        try:
            fields = procfs.read_status_fields(dirfd, ("NSpid", "NStgid"))
            try:
                link: str | None = os.readlink("ns/pid", dir_fd=dirfd)
            except PermissionError:
                link = None  # some processes refuse even root; NSpid may still tell
        finally:
            os.close(dirfd)
        if not pidfd.is_alive(handle):
            raise NoSuchProcess(f"process {pid} exited")
    except FileNotFoundError:
        raise NoSuchProcess(f"no process with PID {pid}") from None
    finally:
        os.close(handle)
    if "NSpid" not in fields:
        raise Unsupported(f"NSpid not in /proc/{pid}/status (kernel before 4.1)")
    from ..kernel.nsfs import parse_link

    if link is None:
        if len(fields["NSpid"].split()) != 1:
            raise AccessDenied(f"pid {pid}: cannot read /proc/{pid}/ns/pid: permission denied")
        link = os.readlink(f"{procfs.PROC}/self/ns/pid")  # one level: it is in our namespace
    parsed = parse_link(link)
    if parsed is None:
        raise NoSuchProcess(f"process {pid} exited")
    return (parsed[1], [int(x) for x in fields["NSpid"].split()],
            [int(x) for x in fields["NStgid"].split()])


def nspid_of(pid: int, tgid: bool = False) -> list[int]:
    """NSpid (or NStgid) of a process or thread, from our level down; NoSuchProcess if gone."""
    _ns, nspid, nstgid = read_task(pid)
    return nstgid if tgid else nspid


def chain(snap: Snapshot, ns_ino: int) -> list[int]:
    """PID namespaces from our own down to ``ns_ino`` (empty if it is not ours or below)."""
    own = snap.own.get("pid")
    path = []
    cur: int | None = ns_ino
    while cur is not None:
        path.append(cur)
        if cur == own:
            return list(reversed(path))
        ns = snap.namespaces.get(cur)
        cur = ns.parent if ns else None
    return []


def _by_ioctl(call, ns: Namespace, snap: Snapshot, pid: int, tgid: bool) -> int:
    """Run one of the kernel's PID translation ioctls on a reopened ``ns``."""
    fd = open_namespace(ns, snap)
    try:
        return call(fd, pid, tgid)
    finally:
        os.close(fd)


def to_ours(pid: int, from_ns: Namespace, snap: Snapshot, tgid: bool = False,
            via: str = AUTO) -> int:
    """``pid`` as meant in ``from_ns`` -> the PID of that task in our namespace."""
    if from_ns.ino == snap.own.get("pid"):
        if not os.path.exists(f"{procfs.PROC}/{pid}"):
            raise NoSuchProcess(f"no process with PID {pid}")
        return pid if not tgid else nspid_of(pid, tgid=True)[0]
    if via in (AUTO, IOCTL):
        try:
            return _by_ioctl(pidns.pid_from_ns, from_ns, snap, pid, tgid)
        except NotVisible:
            raise NoSuchProcess(f"no process with PID {pid} in {from_ns.label}") from None
        except Unsupported:
            if via == IOCTL:
                raise
    depth = len(chain(snap, from_ns.ino)) - 1
    if depth < 0:
        raise Unsupported(f"{from_ns.label} is not our PID namespace or below it: "
                          "NSpid cannot name PIDs there")
    for candidate in _tasks_below(snap, from_ns.ino):
        try:
            levels = nspid_of(candidate)
        except NsctlError:
            continue
        if len(levels) > depth and levels[depth] == pid:
            return candidate if not tgid else nspid_of(candidate, tgid=True)[0]
    raise NoSuchProcess(f"no process with PID {pid} in {from_ns.label}")


def _tasks_below(snap: Snapshot, ns_ino: int) -> list[int]:
    """Processes and threads (our PIDs) in ``ns_ino`` or below it."""
    below = {ns_ino}
    changed = True
    while changed:
        changed = False
        for ns in snap.of_type("pid"):
            if ns.parent in below and ns.ino not in below:
                below.add(ns.ino)
                changed = True
    out = []
    for proc in snap.processes.values():
        if proc.ns.get("pid") in below:
            out.append(proc.pid)
            try:
                dirfd = procfs.open_dir(f"{procfs.PROC}/{proc.pid}")
            except OSError:
                continue
            try:
                out.extend(t for t in procfs.list_tasks(dirfd) if t != proc.pid)
            except OSError:
                pass
            finally:
                os.close(dirfd)
    return out


def from_ours(pid: int, to_ns: Namespace, snap: Snapshot, tgid: bool = False,
              via: str = AUTO) -> int:
    """The PID our ``pid`` has in ``to_ns``; NotVisible if it has none there."""
    if to_ns.ino == snap.own.get("pid"):
        return pid if not tgid else nspid_of(pid, tgid=True)[0]
    if via in (AUTO, IOCTL):
        try:
            return _by_ioctl(pidns.pid_in_ns, to_ns, snap, pid, tgid)
        except NotVisible:
            raise NotVisible(f"{pid} is not visible from {to_ns.label} (a process is "
                             "visible only in its own PID namespace and its ancestors)") from None
        except Unsupported:
            if via == IOCTL:
                raise
    ns_ino, nspid, nstgid = read_task(pid)
    levels = nstgid if tgid else nspid
    path = chain(snap, ns_ino)
    if to_ns.ino in path:
        return levels[path.index(to_ns.ino)]
    raise NotVisible(f"{pid} is not visible from {to_ns.label} (a process is visible "
                     "only in its own PID namespace and its ancestors)")


def translate(pid: int, snap: Snapshot, from_ns: Namespace | None = None,
              to_ns: Namespace | None = None, tgid: bool = False, via: str = AUTO) -> int:
    """``pid`` as meant in ``from_ns`` (default: ours) -> its PID in ``to_ns`` (default: ours)."""
    own = snap.namespaces[snap.own["pid"]]
    ours = to_ours(pid, from_ns or own, snap, tgid=False, via=via)
    return from_ours(ours, to_ns or own, snap, tgid=tgid, via=via)


def levels_direct(pid: int, tgid: bool = False) -> list[tuple[int, int]]:
    """:func:`levels_of` from the kernel alone, with no snapshot: NSpid gives the PIDs,
    NS_GET_PARENT up from the task's own PID namespace gives the namespaces."""
    from ..kernel import nsfs

    ns_ino, nspid, nstgid = read_task(pid)
    found = nstgid if tgid else nspid
    own = os.stat(f"{procfs.PROC}/self/ns/pid").st_ino
    if len(found) == 1:   # it is in our own namespace (its ns link may refuse even root)
        return [(own, found[0])]
    fd = nsfs.open_ns(f"{procfs.PROC}/{pid}/ns/pid", expect_ino=ns_ino)
    chain = [ns_ino]
    try:
        while chain[-1] != own and len(chain) < len(found):
            parent = nsfs.parent_ns(fd)
            if parent is None:
                break
            os.close(fd)
            fd = parent
            chain.append(os.fstat(fd).st_ino)
    finally:
        os.close(fd)
    if chain[-1] != own:
        raise NoSuchProcess(f"process {pid} is not in our PID namespace or below it")
    return list(zip(reversed(chain), found, strict=False))


def translate_direct(pid: int, frm: tuple[int, str] | None, to: tuple[int, str] | None,
                     tgid: bool = False) -> int:
    """:func:`translate` with the ioctls on PID namespaces opened directly, no snapshot:
    ``frm`` and ``to`` are (fd, label), None for our own namespace.  Unsupported where
    the kernel lacks the ioctls (the caller then scans and uses NSpid)."""
    if frm is None:
        if not os.path.exists(f"{procfs.PROC}/{pid}"):
            raise NoSuchProcess(f"no process with PID {pid}")
        ours = pid
    else:
        try:
            ours = pidns.pid_from_ns(frm[0], pid)
        except NotVisible:
            raise NoSuchProcess(f"no process with PID {pid} in {frm[1]}") from None
    if to is None:
        return ours if not tgid else nspid_of(ours, tgid=True)[0]
    try:
        return pidns.pid_in_ns(to[0], ours, tgid)
    except NotVisible:
        raise NotVisible(f"{ours} is not visible from {to[1]} (a process is visible only "
                         "in its own PID namespace and its ancestors)") from None


def levels_of(pid: int, snap: Snapshot, tgid: bool = False) -> list[tuple[int, int]]:
    """(PID namespace inode, PID there) from ours down to the task's own namespace."""
    ns_ino, nspid, nstgid = read_task(pid)
    return list(zip(chain(snap, ns_ino), nstgid if tgid else nspid, strict=False))
