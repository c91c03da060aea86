"""The namespace map as plain data: no I/O, shared by CLI, snapshots and service.

Namespaces are keyed by inode: all namespace files live on one nsfs
superblock, so within one boot the inode alone identifies a namespace.

Plain classes with __slots__ rather than dataclasses: importing dataclasses
(and with it inspect and typing) costs more than a whole small scan, and
``nsctl ls`` must start fast.
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~10 ms to import; only type checkers need it

if TYPE_CHECKING:
    from typing import Any

# Kinds of reference that keep a namespace alive, in the order HELD-BY lists them.
PROCESS = "process"
THREAD = "thread"
FD = "fd"
SOCKET = "socket"
BINDMOUNT = "bindmount"
CHILD = "child"
REF_KINDS: tuple[str, ...] = (PROCESS, THREAD, FD, SOCKET, BINDMOUNT, CHILD)


class Reference:
    """One thing that keeps a namespace alive, and where it is.

    Which fields are set depends on ``kind``:
    process: pid, link ("net", or "pid_for_children" / "time_for_children");
    thread: pid, tid, link; fd: pid, fd; socket: pid, fd, socket (its inode);
    bindmount: path, mntns (the mount namespace the mount is in);
    child: child (inode of the namespace it owns or parents), relation ("owner"/"parent").
    """

    __slots__ = ("kind", "pid", "tid", "fd", "link", "socket", "path", "mntns", "child",
                 "relation")

    def __init__(self, kind: str, pid: int | None = None, tid: int | None = None,
                 fd: int | None = None, link: str | None = None, socket: int | None = None,
                 path: str | None = None, mntns: int | None = None, child: int | None = None,
                 relation: str | None = None) -> None:
        self.kind = kind
        self.pid = pid
        self.tid = tid
        self.fd = fd
        self.link = link
        self.socket = socket
        self.path = path
        self.mntns = mntns
        self.child = child
        self.relation = relation

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in _REF_FIELDS.get(self.kind, self.__slots__[1:]):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def row(self) -> tuple:
        """Its fields as a tuple, in __slots__ order: ``Reference(*row)`` rebuilds it.
        (Workers send rows: pickling slotted objects costs ~10x more.)"""
        return (self.kind, self.pid, self.tid, self.fd, self.link, self.socket, self.path,
                self.mntns, self.child, self.relation)

    def fast_dict(self) -> dict[str, Any]:
        """to_dict for the common kinds without the generic loop (JSON of big hosts)."""
        make = _REF_DICT.get(self.kind)
        return make(self) if make is not None else self.to_dict()

    def json_text(self) -> str | None:
        """:meth:`fast_dict` as compact JSON text, written directly (see
        :meth:`Namespace.json_text`); None for a bind mount (a path, which needs the
        encoder's escaping) or where a field the kind always has is missing.  (Spelled
        out per kind: a loop over _REF_FIELDS took 2.5 times as long, ~57 ms more for
        the relationships interface's 60,000 thread references.)"""
        kind = self.kind
        if kind == THREAD:
            if self.pid is None or self.tid is None or self.link is None:
                return None
            return f'{{"kind":"thread","pid":{self.pid},"tid":{self.tid},"link":"{self.link}"}}'
        if kind == PROCESS:
            if self.pid is None or self.link is None:
                return None
            return f'{{"kind":"process","pid":{self.pid},"link":"{self.link}"}}'
        if kind == FD or kind == SOCKET:
            if self.pid is None or self.fd is None:
                return None
            if kind == FD:
                return f'{{"kind":"fd","pid":{self.pid},"fd":{self.fd}}}'
            if self.socket is None:
                return None
            return f'{{"kind":"socket","pid":{self.pid},"fd":{self.fd},"socket":{self.socket}}}'
        if kind == CHILD:
            if self.child is None or self.relation is None:
                return None
            return f'{{"kind":"child","child":{self.child},"relation":"{self.relation}"}}'
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, k) for k in self.__slots__))

    def __repr__(self) -> str:
        return f"Reference({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


# The fields each kind of reference sets (to_dict runs once per reference: keep it cheap).
_REF_FIELDS: dict[str, tuple[str, ...]] = {
    PROCESS: ("pid", "link"), THREAD: ("pid", "tid", "link"), FD: ("pid", "fd"),
    SOCKET: ("pid", "fd", "socket"), BINDMOUNT: ("path", "mntns"), CHILD: ("child", "relation"),
}


_REF_DICT = {
    PROCESS: lambda r: {"kind": PROCESS, "pid": r.pid, "link": r.link},
    THREAD: lambda r: {"kind": THREAD, "pid": r.pid, "tid": r.tid, "link": r.link},
    CHILD: lambda r: {"kind": CHILD, "child": r.child, "relation": r.relation},
}


class Container:
    """The container a process is in, as its cgroup path names it (no engine API asked).

    ``id``: the engine's container id (64 hex digits), or the name for engines
    whose cgroup carries only a name (systemd-nspawn, LXC); None on a namespace
    label that stands for a whole Kubernetes pod.  ``name``: set where the
    cgroup path carries one (nspawn, LXC).  ``pod``: the Kubernetes pod UID.
    """

    __slots__ = ("engine", "id", "name", "pod")

    def __init__(self, engine: str, id: str | None, name: str | None = None,
                 pod: str | None = None) -> None:
        self.engine = engine
        self.id = id
        self.name = name
        self.pod = pod

    @property
    def label(self) -> str:
        """Short text for tables: ``docker:3f4e5a6b7c8d``, ``nspawn:web``, or for a
        pod's namespace ``containerd:pod-1a2b3c4d``."""
        if self.id is None:
            return f"{self.engine}:pod-{(self.pod or '')[:8]}"
        return f"{self.engine}:{self.name or self.id[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "id": self.id, "name": self.name, "pod": self.pod}

    def _key(self) -> tuple[str, str | None, str | None, str | None]:
        """Also its row: ``Container(*row)`` rebuilds it."""
        return (self.engine, self.id, self.name, self.pod)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Container) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Container({self.label})"


class Namespace:
    """One namespace: identity, relations and what holds it."""

    __slots__ = ("ino", "type", "dev", "id", "owner", "parent", "owner_uid", "pids", "refs",
                 "container")

    def __init__(self, ino: int, type: str, dev: int | None = None, id: int | None = None,
                 owner: int | None = None, parent: int | None = None,
                 owner_uid: int | None = None) -> None:
        self.ino = ino
        self.type = type
        self.dev = dev
        self.id = id                  # NS_GET_ID, None where the kernel lacks it
        self.owner = owner            # inode of the owning user namespace
        self.parent = parent          # inode of the parent (user and pid only)
        self.owner_uid = owner_uid    # creator UID of the owning (or this) user namespace
        self.pids: list[int] = []     # processes whose ns link points here
        self.refs: list[Reference] = []
        # The container (or Kubernetes pod) all its processes are in; see nsctl.discovery.cgroup_names.
        self.container: Container | None = None

    def __repr__(self) -> str:
        return f"Namespace({self.type}:[{self.ino}] id={self.id} held_by={self.held_by})"

    def row(self) -> tuple:
        """Identity and relations (not what holds it): ``Namespace(*row)`` rebuilds them."""
        return (self.ino, self.type, self.dev, self.id, self.owner, self.parent, self.owner_uid)

    @property
    def held_by(self) -> list[str]:
        kinds = {r.kind for r in self.refs}
        if len(kinds) == 1:
            return list(kinds)
        return [k for k in REF_KINDS if k in kinds]

    @property
    def hidden(self) -> bool:
        """Kept alive only by a child namespace: no process, fd or mount holds it."""
        return all(r.kind == CHILD for r in self.refs)

    def to_dict(self) -> dict[str, Any]:
        refs = self.refs
        if len(refs) == 1:   # most namespaces of a big host: one thread or process each
            ref = refs[0]
            held_by, ref_dicts = [ref.kind], [ref.fast_dict()]
        else:
            held_by, ref_dicts = self.held_by, [r.fast_dict() for r in refs]
        return {
            "ns": self.ino, "type": self.type, "dev": self.dev, "id": self.id,
            "owner": self.owner, "parent": self.parent, "owner_uid": self.owner_uid,
            "hidden": held_by == [CHILD], "held_by": held_by, "pids": sorted(self.pids),
            "refs": ref_dicts,
            "container": self.container.to_dict() if self.container else None,
        }

    def json_text(self) -> str | None:
        """:meth:`to_dict` as compact JSON text, the very text json.dumps writes with
        separators (",", ":"), written directly: 2-3 times as fast as building the dict
        and encoding it (the 60,000 thread namespaces of the relationships
        interface's worst case).  For a live scan's
        namespaces, whose fields are the numbers and names nsctl read from the
        kernel; None where text needs the encoder's escaping: a container, or a
        reference with a path."""
        if self.container is not None:
            return None
        refs = self.refs
        if len(refs) == 1:   # most namespaces of a big host: one thread or process each
            kind = refs[0].kind
            texts = refs[0].json_text()
            if texts is None:
                return None
            held_by, hidden = f'"{kind}"', "true" if kind == CHILD else "false"
        else:
            parts = [r.json_text() for r in refs]
            if None in parts:
                return None
            texts = ",".join(parts)
            kinds = self.held_by
            held_by = ",".join([f'"{k}"' for k in kinds])
            hidden = "true" if kinds == [CHILD] else "false"
        pids = ",".join(map(str, sorted(self.pids))) if self.pids else ""
        dev, ns_id, owner, parent, uid = (self.dev, self.id, self.owner, self.parent,
                                          self.owner_uid)
        return (f'{{"ns":{self.ino},"type":"{self.type}",'
                f'"dev":{"null" if dev is None else dev},'
                f'"id":{"null" if ns_id is None else ns_id},'
                f'"owner":{"null" if owner is None else owner},'
                f'"parent":{"null" if parent is None else parent},'
                f'"owner_uid":{"null" if uid is None else uid},'
                f'"hidden":{hidden},"held_by":[{held_by}],"pids":[{pids}],"refs":[{texts}],'
                f'"container":null}}')


class Process:
    """What discovery read of one process, under its pidfd."""

    __slots__ = ("pid", "ppid", "comm", "cmdline", "uid", "starttime", "ns", "nspid", "state",
                 "pidns_pending", "container", "pidfd_ino")

    def __init__(self, pid: int, ppid: int, comm: str, cmdline: list[str], uid: int,
                 starttime: int, ns: dict[str, int], nspid: list[int] | None = None,
                 state: str = "", pidns_pending: bool = False,
                 container: Container | None = None, pidfd_ino: int | None = None) -> None:
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.cmdline = cmdline
        self.uid = uid
        self.starttime = starttime
        self.ns = ns                  # ns link name -> inode, incl. *_for_children
        self.nspid = nspid            # PID at each level, outermost first
        self.state = state            # R, S, D, Z, ... from /proc/PID/stat
        # unshare(CLONE_NEWPID) done, no child forked yet: the new PID namespace
        # exists but the kernel shows no pid_for_children until it has an init.
        self.pidns_pending = pidns_pending
        self.container = container    # from /proc/PID/cgroup (discovery.containers)
        # Its pidfd's inode when it was read: on pidfs (Linux 6.9) unique to the process
        # for the whole boot, where starttime only has clock-tick (10 ms) resolution.
        # Tells a rescan whether a PID still names this process; not in the JSON.
        self.pidfd_ino = pidfd_ino

    def __repr__(self) -> str:
        return f"Process({self.pid} {self.comm!r})"

    def row(self) -> tuple:
        """Its fields as a tuple: ``Process.from_row`` rebuilds it."""
        return (self.pid, self.ppid, self.comm, self.cmdline, self.uid, self.starttime, self.ns,
                self.nspid, self.state, self.pidns_pending,
                self.container._key() if self.container is not None else None, self.pidfd_ino)

    @classmethod
    def from_row(cls, row: tuple) -> "Process":
        container = row[10]
        return cls(*row[:10], container=Container(*container) if container else None,
                   pidfd_ino=row[11])

    @property
    def command(self) -> str:
        return " ".join(self.cmdline) if self.cmdline else self.comm

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "ppid": self.ppid, "comm": self.comm, "cmdline": self.cmdline,
            "uid": self.uid, "starttime": self.starttime, "ns": dict(self.ns),
            "nspid": self.nspid, "state": self.state,
            "pidns_pending": self.pidns_pending,
            "container": self.container.to_dict() if self.container else None,
        }


class Problem:
    """Something discovery could not see, and why: the reason a result is partial."""

    __slots__ = ("reason", "what", "pid")

    def __init__(self, reason: str, what: str, pid: int | None = None) -> None:
        self.reason = reason  # "vanished", "denied", "unsupported", "error"
        self.what = what      # what was being read
        self.pid = pid

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "what": self.what}
        if self.pid is not None:
            out["pid"] = self.pid
        return out

    def __repr__(self) -> str:
        return f"Problem({self.reason}: {self.what})"


class Snapshot:
    """The whole discovery: every namespace found, the processes read, the gaps."""

    __slots__ = ("namespaces", "processes", "problems", "own", "has_ns_id", "offline",
                 "own_pid_level", "pid_inits", "viewer_pid", "net_views", "views")

    def __init__(self) -> None:
        self.namespaces: dict[int, Namespace] = {}
        self.processes: dict[int, Process] = {}
        self.problems: list[Problem] = []
        self.own: dict[str, int] = {}          # the viewer's namespaces (link -> inode)
        self.has_ns_id: bool | None = None
        # Loaded from a snapshot file: commands must not ask the live kernel about it.
        self.offline = False
        self.own_pid_level: int | None = None  # absolute level of the viewer's PID namespace
        # PID namespace inode -> (init PID, state) as found when a snapshot was taken,
        # for inits discovery could not read (PID 1 may refuse even root).
        self.pid_inits: dict[int, tuple[int, str]] = {}
        self.viewer_pid: int | None = None     # the nsctl process that took it
        # What each network namespace saw (nsctl.views.net), when a snapshot was
        # taken with --views; None when not captured.
        self.net_views: dict[int, dict] | None = None
        # The same for every other type (nsctl.views.read_view), also with --views.
        self.views: dict[int, dict] | None = None

    @property
    def partial(self) -> bool:
        """Something could not be read (processes that merely exited don't count)."""
        return any(p.reason != "vanished" for p in self.problems)

    def of_type(self, ns_type: str) -> list[Namespace]:
        return [ns for ns in self.namespaces.values() if ns.type == ns_type]

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

    def to_dict(self, namespaces: Any = None) -> dict[str, Any]:
        """The document of ``nsctl ls --json``; ``namespaces``, if given, stands in
        for the list of every namespace (a filtered one, or rows converted later)."""
        if namespaces is None:
            namespaces = [ns.to_dict() for ns in sorted(self.namespaces.values(),
                                                        key=lambda n: n.ino)]
        return {
            "namespaces": namespaces,
            "processes": [p.to_dict() for p in sorted(self.processes.values(),
                                                      key=lambda p: p.pid)],
            "partial": self.partial,
            "problems": [p.to_dict() for p in self.problems],
        }
