"""``nsctl lsns``: util-linux lsns(8) compatible listing over nsctl's discovery.

Accepts lsns's options and prints what lsns 2.42 prints for them (columns,
defaults, table/raw/JSON/tree layouts, filter language), but lists every
namespace nsctl finds: also those held only by an fd, a socket, a bind mount
in any mount namespace, or only by a child namespace (lsns shows such
namespaces with NPROCS 0 and empty PID/COMMAND, as here).

The command runs in three passes, as lsns.c does: options -> a run
configuration; discovery -> rows (one per namespace, or one per process with
a NAMESPACE argument) built in lsns's order and nested by the tree mode;
rendering of those lines as a table, raw, or JSON.  The renderer follows
libsmartcols (column widths, width hints, truncation on terminals, tree art,
multi-line cells, JSON layout), so it lives here and imports nothing heavy.
"""
from __future__ import annotations

import os
import sys

from ..kernel.errors import NsctlError
from . import lsns_columns as C
from .cells import cell_width as _cell_width, nonblank as _nonblank, safe as _safe, \
    truncate as _truncate

TYPE_CHECKING = False  # typing is for type checkers only (import cost)

if TYPE_CHECKING:
    from typing import Iterator

    from ..model import Namespace, Process, Snapshot
    from .lsns_filter import Filter

PROG = "nsctl lsns"
NS_TYPES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")


class UsageError(NsctlError):
    """A command line lsns would refuse."""


# --- options --------------------------------------------------------------------

NO, REQUIRED, OPTIONAL = 0, 1, 2
#: (short letter, long name, argument); the key of --output-all is its long name.
OPTIONS: tuple[tuple[str | None, str, int], ...] = (
    ("J", "json", NO), ("p", "task", REQUIRED), ("h", "help", NO), ("o", "output", REQUIRED),
    (None, "output-all", NO), ("P", "persistent", NO), ("Q", "filter", REQUIRED),
    ("u", "notruncate", NO), ("V", "version", NO), ("n", "noheadings", NO),
    ("W", "nowrap", NO), ("l", "list", NO), ("r", "raw", NO), ("t", "type", REQUIRED),
    ("T", "tree", OPTIONAL), ("H", "list-columns", NO),
    (None, "from", REQUIRED),   # nsctl's own: read a snapshot file, not the live host
)
#: Options that exclude each other (lsns.c's excl[] table).
EXCLUSIVE: tuple[tuple[str, ...], ...] = (("J", "r"), ("P", "p"), ("l", "T"))
TREE_MODES = ("process", "owner", "parent")

USAGE = """
Usage:
 {prog} [options] [<namespace>]

List system namespaces.

Options:
 -J, --json             use JSON output format
 -l, --list             use list format output
 -n, --noheadings       don't print headings
 -o, --output <list>    define which output columns to use
     --output-all       output all columns
     --from <file>      read a snapshot (nsctl snapshot -o FILE), not the live host
 -P, --persistent       namespaces without processes
 -p, --task <pid>       print process namespaces
 -Q, --filter <expr>    apply display filter
 -r, --raw              use the raw output format
 -u, --notruncate       don't truncate text in columns
 -W, --nowrap           don't use multi-line representation
 -t, --type <name>      namespace type (mnt, net, ipc, user, pid, uts, cgroup, time)
 -T, --tree[=<rel>]     use tree format (parent, owner, or process)

 -H, --list-columns     list the available columns
 -h, --help             display this help
 -V, --version          display version

For more details see lsns(8).
"""


def _getopt(argv: list[str], positionals: list[str]) -> Iterator[tuple[str, str | None]]:
    """GNU getopt_long over OPTIONS: yields (key, argument) in order, permuting
    positionals into ``positionals``; long names may be abbreviated."""
    by_short = {s: (s, arg) for s, _l, arg in OPTIONS if s}
    by_long = {l: (s or l, arg) for s, l, arg in OPTIONS}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            positionals.extend(argv[i:])
            return
        if a.startswith("--"):
            name, eq, value = a[2:].partition("=")
            if name in by_long:
                matches = [name]
            else:
                matches = [l for l in by_long if l.startswith(name)]
            if not matches:
                raise UsageError(f"unrecognized option '--{name}'")
            if len(matches) > 1:
                raise UsageError(f"option '--{name}' is ambiguous; possibilities: "
                                 + " ".join(f"'--{m}'" for m in matches))
            long = matches[0]
            key, kind = by_long[long]
            if kind == NO:
                if eq:
                    raise UsageError(f"option '--{long}' doesn't allow an argument")
                yield key, None
            elif kind == REQUIRED:
                if not eq:
                    if i >= len(argv):
                        raise UsageError(f"option '--{long}' requires an argument")
                    value = argv[i]
                    i += 1
                yield key, value
            else:
                yield key, value if eq else None
        elif a.startswith("-") and a != "-":
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                if ch not in by_short:
                    raise UsageError(f"invalid option -- '{ch}'")
                key, kind = by_short[ch]
                if kind == NO:
                    yield key, None
                    continue
                rest = a[j:]
                if kind == REQUIRED and not rest:
                    if i >= len(argv):
                        raise UsageError(f"option requires an argument -- '{ch}'")
                    rest = argv[i]
                    i += 1
                yield key, rest or None
                break
        else:
            positionals.append(a)


class Config:
    """One run of the command, as lsns.c's struct lsns holds it."""

    __slots__ = ("json", "raw", "force_list", "no_headings", "no_trunc", "no_wrap", "persist",
                 "pid", "ns", "outarg", "columns", "types", "tree", "filter", "source")

    def __init__(self, json: bool = False, raw: bool = False, no_headings: bool = False) -> None:
        self.json = json
        self.raw = raw
        self.force_list = False
        self.no_headings = no_headings
        self.no_trunc = False
        self.no_wrap = raw
        self.persist = False
        self.pid = 0                          # -p: only namespaces this process is in
        self.ns = 0                           # NAMESPACE argument: its processes
        self.outarg: str | None = None
        self.columns: list[str] = []
        self.types: list[str] = []
        self.tree: str | None = None          # None, "process", "owner" or "parent"
        self.filter: Filter | None = None
        self.source: str | None = None        # --from FILE: a snapshot instead of the host


def _parse_uint(text: str, bits: int, what: str) -> int:
    s = text.strip()
    if not s.isdigit() or not s.isascii() or int(s) >= 1 << bits:
        raise UsageError(f"{what}: '{text}'")
    return int(s)


def parse_args(argv: list[str]) -> Config | str:
    """The run configuration, or the text to print for -h/-H/-V."""
    cfg = Config()
    seen_excl: dict[int, str] = {}
    positionals: list[str] = []
    long_of = {(s or l): l for s, l, _a in OPTIONS}
    for key, value in _getopt(argv, positionals):
        for gi, group in enumerate(EXCLUSIVE):
            if key in group:
                if seen_excl.setdefault(gi, key) != key:
                    raise UsageError("mutually exclusive arguments: "
                                     + " ".join(f"--{long_of[k]}" for k in group))
        if key == "J":
            cfg.json = True
        elif key == "l":
            cfg.force_list = True
        elif key == "o":
            cfg.outarg = value
        elif key == "output-all":
            cfg.columns = [c.name for c in C.COLUMNS]
        elif key == "P":
            cfg.persist = True
        elif key == "p":
            cfg.pid = _parse_uint(value or "", 31, "invalid PID argument")
        elif key == "n":
            cfg.no_headings = True
        elif key == "r":
            cfg.raw = cfg.no_wrap = True
        elif key == "u":
            cfg.no_trunc = True
        elif key == "t":
            if value not in NS_TYPES:
                raise UsageError(f"unknown namespace type: {value}")
            if value not in cfg.types:
                cfg.types.append(value)
        elif key == "W":
            cfg.no_wrap = True
        elif key == "from":
            cfg.source = value
        elif key == "T":
            rel = (value or "owner").removeprefix("=")
            if rel not in TREE_MODES:
                raise UsageError(f"unknown tree type: {rel}")
            cfg.tree = rel
        elif key == "Q":
            from .lsns_filter import parse

            cfg.filter = parse(value or "")
        elif key == "H":
            return list_columns(raw=cfg.raw, json=cfg.json)
        elif key == "h":
            return USAGE.format(prog=PROG)
        elif key == "V":
            from .. import __version__

            return f"{PROG} from nsctl {__version__}\n"

    is_net = "net" in cfg.types
    if not cfg.types:
        cfg.types = list(NS_TYPES)
    if positionals:
        if cfg.pid:
            raise UsageError("--task is mutually exclusive with <namespace>")
        cfg.ns = _parse_uint(positionals[0], 64, "invalid namespace argument")
        if not cfg.tree and not cfg.force_list:
            cfg.tree = "process"
        if not cfg.columns:
            cfg.columns = list(C.DEFAULT_FOR_NAMESPACE)
    if not cfg.columns:
        cfg.columns = list(C.DEFAULT[:-1])
        if is_net:
            cfg.columns += C.DEFAULT_NET_EXTRA
        cfg.columns.append(C.DEFAULT[-1])
        if not cfg.tree and not cfg.force_list:
            cfg.tree = "process"
    if cfg.outarg is not None:
        cfg.columns = _apply_output(cfg.outarg, cfg.columns)
    if cfg.filter is not None:
        cfg.filter.bind(_resolve_column)
    return cfg


def _apply_output(arg: str, current: list[str]) -> list[str]:
    """-o LIST replaces the columns, -o +LIST appends to them."""
    append = arg.startswith("+")
    names = arg[1:] if append else arg
    if not names:
        raise UsageError("no output columns given")
    out = list(current) if append else []
    for name in names.split(","):
        col = C.find(name)
        if col is None:
            raise UsageError(f"unknown column: {name}")
        out.append(col.name)
    return out


def _resolve_column(name: str) -> tuple[str, str] | None:
    col = C.find(name)
    return None if col is None else (col.name, col.json)


# --- rows ---------------------------------------------------------------------------

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
        self._netlink = None

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
        mounts = [r for r in ns.refs if r.kind == "bindmount" and r.path]
        mounts.sort(key=lambda r: r.mntns != own)
        out: list[str] = []
        for r in mounts:
            if r.path not in out:
                out.append(r.path)
        return out

    def netnsid(self, ns: Namespace) -> str | None:
        if ns.ino not in self._netnsid:
            self._netnsid[ns.ino] = self._ask_netnsid(ns)
        return self._netnsid[ns.ino]

    def _ask_netnsid(self, ns: Namespace) -> str | None:
        if self.snap.offline:
            return None  # a live kernel's answer would not be the snapshot's
        from ..kernel.netnsid import NOT_ASSIGNED, NetnsIds

        if self._netlink is None:
            try:
                self._netlink = NetnsIds()
            except NsctlError:
                self._netlink = False
        if not self._netlink:
            return None
        q = self._netlink
        nsid = None
        ask = {"path": q.of_path, "mount": q.of_mount, "socket": q.of_socket}
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


# --- lines --------------------------------------------------------------------------

class Line:
    __slots__ = ("cells", "parent", "children")

    def __init__(self, cells: list[str | None], parent: Line | None) -> None:
        self.cells = cells
        self.parent = parent
        self.children: list[Line] = []


class Table:
    """What is printed: columns (with this run's flags), lines, roots."""

    __slots__ = ("name", "columns", "lines", "roots")

    def __init__(self, name: str, columns: list[tuple[str, int, float, str]]) -> None:
        self.name = name
        self.columns = columns            # (header, flags, width hint, json type)
        self.lines: list[Line] = []       # in the order added
        self.roots: list[Line] = []

    @property
    def is_tree(self) -> bool:
        return any(flags & C.TREE for _n, flags, _w, _j in self.columns)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        (line.parent.children if line.parent else self.roots).append(line)

    def in_print_order(self) -> list[Line]:
        if not self.is_tree:
            return list(self.lines)
        out: list[Line] = []
        stack = list(reversed(self.roots))
        while stack:
            ln = stack.pop()
            out.append(ln)
            stack.extend(reversed(ln.children))
        return out


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
            rel = self.rows.get(row.ns.parent) if row.ns.type in ("user", "pid") else None
            parent = rel.outline if rel is not None else None
        elif mode == "owner":
            rel = self.rows.get(row.ns.owner)
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
        pids = sorted(set(p for p in ns.pids if p in snap.processes))
        proc = snap.processes[pids[0]] if pids else None
        rows[ns.ino] = NsRow(ns, pids, proc)
    return rows


def make_table(cfg: Config, name: str = "namespaces") -> Table:
    cols = []
    for cname in cfg.columns:
        col = C.BY_NAME[cname]
        flags = col.flags
        if cfg.no_trunc:
            flags &= ~C.TRUNC
        if cfg.tree == "process" and cname == "COMMAND":
            flags |= C.TREE
        if cfg.no_wrap:
            flags &= ~C.WRAP
        if cfg.tree in ("owner", "parent") and cname == "NS":
            flags = (flags | C.TREE) & ~C.RIGHT
        cols.append((col.name, flags, col.whint, col.json))
    return Table(name, cols)


# --- rendering ------------------------------------------------------------------------

def _utf8_locale() -> bool:
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value:
            v = value.lower()
            return "utf-8" in v or "utf8" in v
    return False


class Style:
    """Where the table goes: UTF-8 tree glyphs or ASCII, a terminal of some width or not."""

    __slots__ = ("utf8", "is_term", "termwidth")

    def __init__(self, utf8: bool, is_term: bool, termwidth: int) -> None:
        self.utf8 = utf8
        self.is_term = is_term
        self.termwidth = termwidth

    @property
    def symbols(self) -> tuple[str, str, str]:
        """(branch, last branch, vertical)."""
        return ("\u251c\u2500", "\u2514\u2500", "\u2502 ") if self.utf8 else ("|-", "`-", "| ")

    @classmethod
    def detect(cls) -> Style:
        is_term = os.isatty(1)
        width = 0
        if is_term:
            try:
                width = os.get_terminal_size(1).columns
            except OSError:
                width = 0
        if width <= 0:
            try:
                width = int(os.environ.get("COLUMNS", "0"))
            except ValueError:
                width = 0
        return cls(_utf8_locale(), is_term, width if width > 0 else 80)


def _art(line: Line, sym: tuple[str, str, str]) -> str:
    """Tree drawing before a line's tree cell."""
    if line.parent is None:
        return ""
    parts = [sym[1] if line.parent.children[-1] is line else sym[0]]
    node = line.parent
    while node.parent is not None:
        parts.append("  " if node.parent.children[-1] is node else sym[2])
        node = node.parent
    return "".join(reversed(parts))


def _continuation_art(line: Line, sym: tuple[str, str, str], pending: bool) -> str:
    """Tree drawing of an extra line of a multi-line row."""
    parts = []
    node = line
    while node.parent is not None:
        parts.append("  " if node.parent.children[-1] is node else sym[2])
        node = node.parent
    art = "".join(reversed(parts))
    if line.children and pending:
        art += sym[2]
    return art


def render(table: Table, cfg: Config, style: Style) -> str:
    if cfg.json:
        return _render_json(table)
    if not table.lines:
        return ""
    if cfg.raw:
        return _render_raw(table, cfg, style)
    return _render_human(table, cfg, style)


def _render_raw(table: Table, cfg: Config, style: Style) -> str:
    sym = style.symbols
    out = []
    if not cfg.no_headings:
        out.append(" ".join(_nonblank(name) for name, _f, _w, _j in table.columns))
    for line in table.in_print_order():
        cells = []
        for i, (_n, flags, _w, _j) in enumerate(table.columns):
            text = line.cells[i] or ""
            if flags & C.TREE:
                text = _art(line, sym) + text
            cells.append(_nonblank(text))
        out.append(" ".join(cells))
    return "".join(s + "\n" for s in out)


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                        "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}"))
        elif 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _JsonWriter:
    """libsmartcols' JSON layout: three-space indent, "},{" between objects."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.indent = 0
        self.after_close = False

    def _name(self, name: str | None) -> None:
        if self.after_close:
            self.parts.append(",\n" if name else ",")
        if name or not self.after_close:
            self.parts.append("   " * self.indent)
        if name:
            self.parts.append(_json_string(name.lower()))

    def open(self, name: str | None, kind: str) -> None:
        self._name(name)
        self.parts.append((": " if name else "") + kind + "\n")
        self.indent += 1
        self.after_close = False

    def close(self, kind: str) -> None:
        self.indent -= 1
        self.parts.append("\n" + "   " * self.indent + kind)
        if kind == "}" and self.indent == 0:
            self.parts.append("\n")
        self.after_close = True

    def value(self, name: str, raw: str) -> None:
        self._name(name)
        self.parts.append(": " + raw)
        self.after_close = True


def _render_json(table: Table) -> str:
    w = _JsonWriter()
    w.open(None, "{")
    w.open(table.name, "[")

    def emit(line: Line, nested: bool) -> None:
        w.open(None, "{")
        for i, (name, _flags, _w, jtype) in enumerate(table.columns):
            data = line.cells[i]
            if not data:
                w.value(name, "null")
            elif jtype == "number":
                w.value(name, data)
            else:
                w.value(name, _json_string(data))
        if nested and line.children:
            w.open("children", "[")
            for child in line.children:
                emit(child, nested)
            w.close("]")
        w.close("}")

    if table.is_tree:
        for root in table.roots:
            emit(root, True)
    else:
        for line in table.lines:
            emit(line, False)
    w.close("]")
    w.close("}")
    return "".join(w.parts)


def _render_human(table: Table, cfg: Config, style: Style) -> str:
    sym = style.symbols
    cols = table.columns
    ncol = len(cols)
    lines = table.in_print_order()
    last = ncol - 1

    # Cell texts: tree art + safe-encoded data; multi-line cells as chunk lists.
    texts: list[list[list[str]]] = []
    treeart = [0] * ncol
    for line in lines:
        row = []
        for i, (_n, flags, _w, _j) in enumerate(cols):
            data = _safe(line.cells[i] or "", style.utf8, "\n" if flags & C.WRAP else "")
            if flags & C.TREE:
                art = _art(line, sym)
                treeart[i] = max(treeart[i], _cell_width(art))
                data = art + data
            row.append(data.split("\n") if flags & C.WRAP else [data])
        texts.append(row)

    # Widths (libsmartcols' count_column_width).
    widths, mins = [], []
    for i, (name, flags, whint, _j) in enumerate(cols):
        wmin = max(_cell_width(name), 1)
        w = max((max(_cell_width(c) for c in row[i]) for row in texts), default=0)
        if w < wmin:
            w = wmin
        elif whint >= 1 and w < whint and wmin < whint:
            w = int(whint)
        widths.append(w)
        mins.append(wmin)
    hidden = [False] * ncol
    if style.is_term:
        _fit_to_terminal(cols, widths, mins, treeart, hidden, style.termwidth)
    visible = [i for i in range(ncol) if not hidden[i]]
    last = visible[-1] if visible else -1

    out: list[str] = []

    def empty_cell(i: int, line: Line | None, pending: bool) -> str:
        s = ""
        if line is not None and cols[i][1] & C.TREE:
            s = _continuation_art(line, sym, pending)
        if i == last:
            return s
        return s + " " * max(widths[i] - _cell_width(s), 0) + " "

    def print_cell(i: int, data: str, line: Line | None) -> tuple[str, bool]:
        flags = cols[i][1]
        width = widths[i]
        n = _cell_width(data)
        if i == last and n < width and not flags & C.RIGHT:
            width = n
        if n > width and flags & C.TRUNC:
            data = _truncate(data, width)
            n = _cell_width(data)
        s = ""
        if data:
            if flags & C.RIGHT:
                s += " " * max(width - n, 0)
                n = width
            s += data
        if i == last:
            return s, False
        s += " " * max(width - n, 0)
        if n > width and not flags & C.TRUNC:
            return s, True
        return s + " ", False

    def print_row(cells: list[list[str]], line: Line | None) -> None:
        buf = []
        pending: dict[int, list[str]] = {}
        for i in visible:
            chunks = cells[i]
            if len(chunks) > 1:
                pending[i] = chunks[1:]
            s, overflow = print_cell(i, chunks[0], line)
            buf.append(s)
            if overflow:
                buf.append("\n")
                for j in visible:
                    if j > i:
                        break
                    buf.append(empty_cell(j, line, bool(pending)))
        while pending:
            buf.append("\n")
            for i in visible:
                if i in pending:
                    chunk = pending[i].pop(0)
                    if not pending[i]:
                        del pending[i]
                    chunk = _truncate(chunk, widths[i])
                    if i == last:
                        buf.append(chunk)
                    else:
                        buf.append(chunk + " " * max(widths[i] - _cell_width(chunk), 0) + " ")
                else:
                    buf.append(empty_cell(i, line, bool(pending)))
        out.append("".join(buf))

    if not cfg.no_headings:
        print_row([[name] for name, _f, _w, _j in cols], None)
    for line, cells in zip(lines, texts):
        print_row(cells, line)
    return "".join(s + "\n" for s in out)


def _fit_to_terminal(cols, widths: list[int], mins: list[int], treeart: list[int],
                     hidden: list[bool], termwidth: int) -> None:
    """Shrink truncatable columns until the table fits (libsmartcols' stages)."""
    n = len(cols)
    total = sum(widths) + n - 1
    if total < termwidth:
        if not cols[-1][1] & C.RIGHT:
            widths[-1] += termwidth - total
        return
    # Stage 1 and 3 concern relative width hints, which no lsns column has.
    while total > termwidth:
        before = total
        for i, (_n, flags, _w, _j) in enumerate(cols):
            if hidden[i] or total <= termwidth:
                continue
            if widths[i] == mins[i] or widths[i] == 0:
                continue
            if flags & C.TREE and total <= treeart[i]:
                continue
            if flags & C.TRUNC:
                widths[i] -= 1
                total -= 1
                if widths[i] == 0:
                    hidden[i] = True
        if total == before:
            return


def list_columns(raw: bool, json: bool) -> str:
    """--list-columns: the column table itself (name, type, description)."""
    cfg = Config(json=json, raw=raw, no_headings=True)
    table = Table("lsns-columns", [("HOLDER", C.RIGHT, 0, "string"), ("TYPE", 0, 0, "string"),
                                   ("DESCRIPTION", 0, 0, "string")])
    for col in C.COLUMNS:
        table.add(Line([col.name, col.type_label, col.help], None))
    return render(table, cfg, Style(_utf8_locale(), False, 80))


# --- the command ----------------------------------------------------------------------

def run(cfg: Config, out=None) -> int:
    import nsctl

    out = out or sys.stdout
    if cfg.source is not None:
        from ..documents.snapshot import load

        snap = load(cfg.source)
    else:
        snap = nsctl.discover()
    rows = build_rows(cfg, snap)
    table = make_table(cfg)
    src = Source(snap, "," if cfg.no_wrap else "\n")
    try:
        builder = Builder(cfg, snap, rows, table, src)
        if cfg.ns:
            row = rows.get(cfg.ns)
            if row is None:
                raise UsageError(f"not found namespace: {cfg.ns}")
            builder.show_processes(row)
        else:
            builder.show_namespaces()
        text = render(table, cfg, Style.detect())
    finally:
        src.close()
    out.write(text)
    out.flush()
    problems = [p for p in snap.problems if p.reason != "vanished"]
    if problems:
        counts: dict[str, int] = {}
        for p in problems:
            counts[p.reason] = counts.get(p.reason, 0) + 1
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        print(f"{PROG}: partial result: some processes could not be read ({detail})",
              file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    try:
        got = parse_args(argv)
        if isinstance(got, str):
            sys.stdout.write(got)
            return 0
        return run(got)
    except UsageError as exc:
        msg = str(exc)
        if msg.startswith(("unrecognized option", "invalid option", "option ")):
            msg += f" (try '{PROG} --help')"
        print(f"{PROG}: {msg}", file=sys.stderr)
        return 1
    except NsctlError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise                     # the caller silences a reader that went away
    except OSError as exc:
        print(f"{PROG}: {exc.strerror or exc}", file=sys.stderr)
        return 1
