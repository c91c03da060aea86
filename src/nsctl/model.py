"""The namespace map as plain data: no I/O, shared by CLI, snapshots and service.

Namespaces are keyed by inode: all namespace files live on one nsfs
superblock, so within one boot the inode alone identifies a namespace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Kinds of reference that keep a namespace alive, in the order HELD-BY lists them.
PROCESS = "process"
THREAD = "thread"
FD = "fd"
SOCKET = "socket"
BINDMOUNT = "bindmount"
CHILD = "child"
REF_KINDS: tuple[str, ...] = (PROCESS, THREAD, FD, SOCKET, BINDMOUNT, CHILD)


@dataclass(frozen=True)
class Reference:
    """One thing that keeps a namespace alive, and where it is.

    Which fields are set depends on ``kind``:
    process: pid, link ("net", or "pid_for_children" / "time_for_children");
    thread: pid, tid, link; fd: pid, fd; socket: pid, fd, socket (its inode);
    bindmount: path, mntns (the mount namespace the mount is in);
    child: child (inode of the namespace it owns or parents), relation ("owner"/"parent").
    """

    kind: str
    pid: int | None = None
    tid: int | None = None
    fd: int | None = None
    link: str | None = None
    socket: int | None = None
    path: str | None = None
    mntns: int | None = None
    child: int | None = None
    relation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Namespace:
    """One namespace: identity, relations and what holds it."""

    ino: int
    type: str
    dev: int | None = None
    id: int | None = None          # NS_GET_ID, None where the kernel lacks it
    owner: int | None = None       # inode of the owning user namespace
    parent: int | None = None      # inode of the parent (user and pid only)
    owner_uid: int | None = None   # creator UID of the owning (or this) user namespace
    pids: list[int] = field(default_factory=list)   # processes whose ns link points here
    refs: list[Reference] = field(default_factory=list)

    @property
    def held_by(self) -> list[str]:
        kinds = {r.kind for r in self.refs}
        return [k for k in REF_KINDS if k in kinds]

    @property
    def hidden(self) -> bool:
        """Kept alive only by a child namespace: no process, fd or mount holds it."""
        return all(r.kind == CHILD for r in self.refs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ns": self.ino, "type": self.type, "dev": self.dev, "id": self.id,
            "owner": self.owner, "parent": self.parent, "owner_uid": self.owner_uid,
            "hidden": self.hidden, "held_by": self.held_by, "pids": sorted(self.pids),
            "refs": [r.to_dict() for r in self.refs],
        }


@dataclass
class Process:
    """What discovery read of one process, under its pidfd."""

    pid: int
    ppid: int
    comm: str
    cmdline: list[str]
    uid: int
    starttime: int
    ns: dict[str, int]                 # ns link name -> inode, incl. *_for_children
    nspid: list[int] | None = None     # PID at each level, outermost first

    @property
    def command(self) -> str:
        return " ".join(self.cmdline) if self.cmdline else self.comm

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "ppid": self.ppid, "comm": self.comm, "cmdline": self.cmdline,
            "uid": self.uid, "ns": dict(self.ns), "nspid": self.nspid,
        }


@dataclass(frozen=True)
class Problem:
    """Something discovery could not see, and why: the reason a result is partial."""

    reason: str            # "vanished", "denied", "unsupported", "error"
    what: str              # what was being read
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Snapshot:
    """The whole discovery: every namespace found, the processes read, the gaps."""

    namespaces: dict[int, Namespace] = field(default_factory=dict)
    processes: dict[int, Process] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    own: dict[str, int] = field(default_factory=dict)   # the viewer's namespaces
    has_ns_id: bool | None = None

    @property
    def partial(self) -> bool:
        return bool(self.problems)

    def problem_summary(self) -> dict[str, int]:
        """Counts of problems by reason, for a one-line warning."""
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.reason] = out.get(p.reason, 0) + 1
        return out

    def of_type(self, ns_type: str) -> list[Namespace]:
        return [ns for ns in self.namespaces.values() if ns.type == ns_type]

    def children_of(self, ino: int) -> list[Namespace]:
        """Namespaces whose parent is ``ino`` (user and pid trees)."""
        return [ns for ns in self.namespaces.values() if ns.parent == ino]

    def owned_by(self, ino: int) -> list[Namespace]:
        """Namespaces whose owning user namespace is ``ino`` (excluding child user namespaces)."""
        return [ns for ns in self.namespaces.values() if ns.owner == ino and ns.type != "user"]

    def level(self, ino: int) -> int:
        """Depth of a user or PID namespace in its tree (0 at the top we can see)."""
        depth = 0
        seen = set()
        ns = self.namespaces.get(ino)
        while ns is not None and ns.parent is not None and ns.parent not in seen:
            seen.add(ns.ino)
            depth += 1
            ns = self.namespaces.get(ns.parent)
        return depth

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespaces": [ns.to_dict() for ns in sorted(self.namespaces.values(),
                                                         key=lambda n: n.ino)],
            "processes": [p.to_dict() for p in sorted(self.processes.values(),
                                                      key=lambda p: p.pid)],
            "partial": self.partial,
            "problems": [p.to_dict() for p in self.problems],
        }
