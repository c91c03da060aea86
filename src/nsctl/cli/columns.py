"""The columns of ``nsctl ls``: one table gives name, help, alignment and the fill function.

``-o``, ``--list-columns`` and the headers all come from :data:`COLUMNS`.
"""
from __future__ import annotations

import os

from ..documents.describe import describe_ref, representative, user_name
from ..model import Namespace, Snapshot
from .common import UsageError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable


class Column:
    """One column: its name, help text, fill function, alignment and terminal style.

    ``hide_empty``: a default column left out when it is empty in every row
    (unless -o names it).  ``shrink``: on a terminal too narrow for the row, this
    column gives way first (its cells cut with an ellipsis), so that the command
    and names keep their width.
    """

    __slots__ = ("name", "help", "fill", "right", "style", "hide_empty", "shrink")

    def __init__(self, name: str, help: str, fill: Callable[[Namespace, Snapshot], str],
                 right: bool = False, style: str | None = None, hide_empty: bool = False,
                 shrink: bool = False) -> None:
        self.name = name
        self.help = help
        self.fill = fill
        self.right = right
        self.style = style
        self.hide_empty = hide_empty
        self.shrink = shrink


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _pid(ns: Namespace, snap: Snapshot) -> str:
    proc = representative(ns, snap)
    return str(proc.pid) if proc else ""


def _user(ns: Namespace, snap: Snapshot) -> str:
    proc = representative(ns, snap)
    return user_name(proc.uid if proc else ns.owner_uid)


def _command(ns: Namespace, snap: Snapshot) -> str:
    proc = representative(ns, snap)
    if proc:
        return proc.command
    holders = [r for r in ns.refs if r.kind != "child"]
    if holders:
        return "[" + describe_ref(holders[0], snap) + "]"
    return "[hidden: kept alive by a child namespace]"


def _mounts(ns: Namespace, snap: Snapshot) -> str:
    paths = []
    for r in ns.refs:
        if r.kind == "bindmount":
            assert r.path is not None  # a bind mount reference has its path
            paths.append(r.path if r.mntns == snap.own.get("mnt") else f"{r.path}@mnt:[{r.mntns}]")
    return ",".join(paths)


def _holders(ns: Namespace, snap: Snapshot) -> str:
    return "; ".join(describe_ref(r, snap) for r in ns.refs if r.kind not in ("process", "child"))


def _dev(ns: Namespace, snap: Snapshot) -> str:
    return "" if ns.dev is None else f"{os.major(ns.dev)}:{os.minor(ns.dev)}"


def _level(ns: Namespace, snap: Snapshot) -> str:
    return str(snap.level(ns.ino)) if ns.type in ("user", "pid") else ""


_spaths: list = [None, None]  # [snapshot, its stable paths]: computed once per listing


def _spath(ns: Namespace, snap: Snapshot) -> str:
    if _spaths[0] is not snap:
        from ..query.naming import stable_paths

        _spaths[:] = [snap, stable_paths(snap)]
    return _spaths[1].get(ns.ino, "")


COLUMNS: dict[str, Column] = {c.name: c for c in [
    Column("NS", "namespace inode", lambda ns, s: str(ns.ino), right=True, style="cyan"),
    Column("TYPE", "namespace type", lambda ns, s: ns.type, style="bold"),
    Column("NPROCS", "number of processes in the namespace", lambda ns, s: str(len(ns.pids)),
           right=True),
    Column("PID", "lowest PID in the namespace", _pid, right=True),
    Column("USER", "owner of that process (or of the namespace)", _user, shrink=True),
    Column("HELD-BY", "what keeps it alive: process, thread, fd, socket, bindmount, child",
           lambda ns, s: ",".join(ns.held_by), style="yellow", shrink=True),
    Column("CONTAINER", "the container all its processes are in (engine:name or short id), "
           "from their cgroups; a default column once any namespace has one",
           lambda ns, s: ns.container.label if ns.container else "", style="green",
           hide_empty=True, shrink=True),
    Column("COMMAND", "command line of that process, or what holds the namespace", _command),
    Column("ID", "64-bit namespace id (NS_GET_ID), empty where the kernel lacks it",
           lambda ns, s: _opt(ns.id), right=True),
    Column("DEV", "device of the nsfs file (major:minor)", _dev),
    Column("OWNER", "inode of the owning user namespace", lambda ns, s: _opt(ns.owner),
           right=True),
    Column("PARENT", "inode of the parent namespace (user and pid)",
           lambda ns, s: _opt(ns.parent), right=True),
    Column("UID", "UID that created the owning user namespace", lambda ns, s: _opt(ns.owner_uid),
           right=True),
    Column("LEVEL", "depth in the user or PID namespace tree", _level, right=True),
    Column("MOUNTS", "bind mounts of the namespace file (@mnt:[...] if in another mount ns)",
           _mounts),
    Column("HOLDERS", "every non-process reference in words", _holders),
    Column("SPATH", "stable path, e.g. /user.0/user.2/net.1: the owning user namespaces, "
           "then itself, each TYPE.RANK in creation order among siblings", _spath),
]}

DEFAULT = ["NS", "TYPE", "NPROCS", "PID", "USER", "HELD-BY", "CONTAINER", "COMMAND"]


def parse_columns(spec: str | None) -> list[Column]:
    """-o LIST (``+LIST`` appends to the defaults); unknown names are an error."""
    if not spec:
        return [COLUMNS[n] for n in DEFAULT]
    names = list(DEFAULT) if spec.startswith("+") else []
    for name in spec.lstrip("+").split(","):
        key = name.strip().upper()
        if key not in COLUMNS:
            raise UsageError(f"unknown column {name.strip()!r} (see nsctl ls --list-columns)")
        names.append(key)
    return [COLUMNS[n] for n in names]


def drop_empty(columns: list[Column], rows: list[list[str]], spec: str | None
               ) -> tuple[list[Column], list[list[str]]]:
    """Leave out ``hide_empty`` columns that no row fills, unless -o LIST names them."""
    named = {n.strip().upper() for n in (spec or "").lstrip("+").split(",")}
    keep = [i for i, c in enumerate(columns)
            if not c.hide_empty or c.name in named or any(row[i] for row in rows)]
    if len(keep) == len(columns):
        return columns, rows
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
