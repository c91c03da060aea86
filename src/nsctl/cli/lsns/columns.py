"""The lsns column table: one row per column, as util-linux lsns(8) defines them.

``-o``, ``--list-columns``, the headers, the JSON value types and the filter's
column types all come from :data:`COLUMNS`; each column has one getter that
turns a row (a namespace, plus the process the row is about) into the cell
text, or None for an empty cell.  Getters use only plain data and the few
look-ups a :class:`RowSource` offers (user names, NETNSID, bind mounts).
The flags are the layout's (:mod:`.layout`).
"""
from __future__ import annotations

from .layout import RIGHT, TRUNC, WRAP, Line, Style, Table, render, utf8_locale

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from ...model import Namespace, Process

    class RowSource(Protocol):
        """What getters may ask beyond the row itself."""

        nsfs_separator: str

        def user_name(self, uid: int) -> str: ...
        def netnsid(self, ns: Namespace) -> str | None: ...
        def nsfs(self, ns: Namespace) -> list[str]: ...


class Row:
    """One output line: a namespace and, when a process is in it, the process shown."""

    __slots__ = ("ns", "nprocs", "proc", "src")

    def __init__(self, ns: Namespace, nprocs: int, proc: Process | None,
                 src: RowSource) -> None:
        self.ns = ns
        self.nprocs = nprocs
        self.proc = proc
        self.src = src


def _uid(row: Row) -> int:
    if row.proc is not None:
        return row.proc.uid
    # lsns falls back to NS_GET_OWNER_UID, which only user namespaces answer.
    if row.ns.type == "user" and row.ns.owner_uid is not None:
        return row.ns.owner_uid
    return 0


def _command(row: Row) -> str | None:
    p = row.proc
    if p is None:
        return None
    return " ".join(p.cmdline) if p.cmdline else p.comm


def _netnsid(row: Row) -> str | None:
    return row.src.netnsid(row.ns) if row.ns.type == "net" else None


def _nsfs(row: Row) -> str | None:
    paths = row.src.nsfs(row.ns)
    return row.src.nsfs_separator.join(paths) if paths else None


class Column:
    """One lsns column: header, width hint, flags, help, JSON type and getter."""

    __slots__ = ("name", "whint", "flags", "help", "json", "get")

    def __init__(self, name: str, whint: float, flags: int, help: str, json: str,
                 get: Callable[[Row], str | None]) -> None:
        self.name = name
        self.whint = whint        # width hint (libsmartcols): >= 1 means that many cells
        self.flags = flags
        self.help = help
        self.json = json          # "number" or "string"
        self.get = get

    @property
    def type_label(self) -> str:
        """What --list-columns shows as the type."""
        return "<integer>" if self.json == "number" else "<string>"


def _int(value: int | None) -> str | None:
    return None if value is None else str(value)


COLUMNS: tuple[Column, ...] = (
    Column("NS", 10, RIGHT, "namespace identifier (inode number)", "number",
           lambda r: str(r.ns.ino)),
    Column("TYPE", 5, 0, "kind of namespace", "string",
           lambda r: r.ns.type),
    Column("PATH", 0, 0, "path to the namespace", "string",
           lambda r: f"/proc/{r.proc.pid}/ns/{r.ns.type}" if r.proc else None),
    Column("NPROCS", 5, RIGHT, "number of processes in the namespace", "number",
           lambda r: str(r.nprocs)),
    Column("PID", 5, RIGHT, "lowest PID in the namespace", "number",
           lambda r: _int(r.proc.pid) if r.proc else None),
    Column("PPID", 5, RIGHT, "PPID of the PID", "number",
           lambda r: _int(r.proc.ppid) if r.proc else None),
    Column("COMMAND", 0, TRUNC, "command line of the PID", "string", _command),
    Column("UID", 0, RIGHT, "UID of the PID", "number",
           lambda r: str(_uid(r))),
    Column("USER", 0, 0, "username of the PID", "string",
           lambda r: r.src.user_name(_uid(r))),
    Column("NETNSID", 0, RIGHT, "namespace ID as used by network subsystem", "string",
           _netnsid),
    Column("NSFS", 0, WRAP, "nsfs mountpoint (usually used network subsystem)", "string",
           _nsfs),
    Column("PNS", 10, RIGHT, "parent namespace identifier (inode number)", "number",
           lambda r: str(r.ns.parent or 0)),
    Column("ONS", 10, RIGHT, "owner namespace identifier (inode number)", "number",
           lambda r: str(r.ns.owner or 0)),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

#: Default columns, and the ones -t net adds before COMMAND.
DEFAULT = ("NS", "TYPE", "NPROCS", "PID", "USER", "COMMAND")
DEFAULT_NET_EXTRA = ("NETNSID", "NSFS")
#: Default columns when a namespace is given (one line per process).
DEFAULT_FOR_NAMESPACE = ("PID", "PPID", "USER", "COMMAND")


def find(name: str) -> Column | None:
    """The column called ``name`` (ASCII case-insensitive), None if there is none."""
    if not name.isascii():
        return None
    return BY_NAME.get(name.upper())


def list_columns(raw: bool, json: bool) -> str:
    """--list-columns: the column table itself (name, type, description)."""
    table = Table("lsns-columns", [("HOLDER", RIGHT, 0, "string"), ("TYPE", 0, 0, "string"),
                                   ("DESCRIPTION", 0, 0, "string")],
                  json=json, raw=raw, no_headings=True)
    for col in COLUMNS:
        table.add(Line([col.name, col.type_label, col.help], None))
    return render(table, Style(utf8_locale(), False, 80))
