"""Source: every namespace's display name, the one a person knows it by.

The rule, the first that applies (one place: :func:`name_of`):

1. a network namespace bind-mounted directly under ``/run/netns``: that file's
   name, as ``ip netns`` lists it (``blue``); a mount in nsctl's own mount
   namespace before copies elsewhere;
2. its container or pod: the container's label (``docker:web``, ``pod:NAME``);
3. another bind mount of its namespace file: the mount point's path (nsctl's own
   mount namespace first);
4. its leading process, the lowest PID in it: ``comm(PID)`` (``sleep(4242)``);
5. no process in it: what holds it, with the holder process as in 4:
   ``fd 5 of sleep(4242)``, ``socket of sleep(4242)``, ``thread 4243 of
   sleep(4242)``, ``pid_for_children of unshare(4242)``; one that only a child
   namespace keeps alive is named after that child: ``owner of blue``,
   ``parent of sleep(4242)``;
6. ``type:[inode]``.

Names are not unique (the initial namespaces are all ``systemd(1)``): a SPEC
that is a name adds ``/TYPE`` where it must (nsctl.query.spec).  A name is text
from hostile input (a process names itself, a path, an engine's answer): it is
escaped wherever it is shown, never parsed.

Runs after the containers and the hierarchy (containers labelled, child
references linked), in full and incremental scans alike; a snapshot file
without names gets them from here when loaded (nsctl.documents.snapshot).
"""
from __future__ import annotations

from ..model import BINDMOUNT, CHILD, FD, PROCESS, SOCKET, THREAD, Namespace, Snapshot
from .scan import Scan

RUN_NETNS = "/run/netns/"

# How a name was found (named_by in nsctl net --json), in the rule's order.
NETNS, CONTAINER, MOUNT, LEADER, HOLDER, CHILD_OF, LABEL = (
    "netns", "container", "bindmount", "process", "holder", "child", "inode")


def finish(scan: Scan) -> None:
    """Name every namespace of the scan."""
    name_all(scan.snap)


def name_all(snap: Snapshot, unnamed_only: bool = False) -> None:
    """Set ``name`` on every namespace of ``snap`` (with ``unnamed_only``, on those
    that have none: a snapshot file's from before names)."""
    own_mnt = snap.own.get("mnt")
    procs = snap.processes
    later = []
    for ns in snap.namespaces.values():
        if unnamed_only and ns.name is not None:
            continue
        refs = ns.refs
        # The common case first: processes in it, no container, no bind mount.
        if ns.pids and ns.container is None and (
                len(refs) == 1 or all(r.kind != BINDMOUNT for r in refs)):
            pid = min(ns.pids)
            ns.name = _who(pid, procs)
        elif ns.pids or any(r.kind != CHILD for r in refs):
            ns.name = name_of(ns, snap, own_mnt)[0]
        else:
            later.append(ns)   # named after a child: once the children are named
    for ns in later:
        ns.name = name_of(ns, snap, own_mnt)[0]


def name_of(ns: Namespace, snap: Snapshot, own_mnt: int | None = None,
            depth: int = 0) -> tuple[str, str]:
    """(the display name of ``ns``, how it was found: one of NETNS ... LABEL)."""
    if own_mnt is None:
        own_mnt = snap.own.get("mnt")
    mounts = [(r.mntns != own_mnt, r.path) for r in ns.refs if r.kind == BINDMOUNT and r.path]
    if ns.type == "net":
        named = [(elsewhere, path) for elsewhere, path in mounts
                 if path.startswith(RUN_NETNS) and path[len(RUN_NETNS):]
                 and "/" not in path[len(RUN_NETNS):]]
        if named:
            return min(named)[1][len(RUN_NETNS):], NETNS
    if ns.container is not None:
        return ns.container.label, CONTAINER
    if mounts:
        return min(mounts, key=lambda m: (m[0], len(m[1]), m[1]))[1], MOUNT
    procs = snap.processes
    if ns.pids:
        return _who(min(ns.pids), procs), LEADER
    for ref in ns.refs:
        kind = ref.kind
        if kind == PROCESS:
            return f"{ref.link} of {_who(ref.pid, procs)}", HOLDER
        if kind == THREAD:
            return f"thread {ref.tid} of {_who(ref.pid, procs)}", HOLDER
        if kind == FD:
            return f"fd {ref.fd} of {_who(ref.pid, procs)}", HOLDER
        if kind == SOCKET:
            return f"socket of {_who(ref.pid, procs)}", HOLDER
    if depth < 64:   # (a hierarchy is far shallower: user namespaces nest 32 deep)
        for ref in ns.refs:
            child = snap.namespaces.get(ref.child) if ref.kind == CHILD and ref.child else None
            if child is None:
                continue
            name = child.name
            how = None
            if name is None:
                name, how = name_of(child, snap, own_mnt, depth + 1)
            if how != LABEL and name != child.label:
                return f"{ref.relation} of {name}", CHILD_OF
    return ns.label, LABEL


def _who(pid: int | None, procs: dict) -> str:
    """A process as names write it: ``comm(PID)`` (``pid PID`` where it was not read)."""
    proc = procs.get(pid) if pid is not None else None
    return f"{proc.comm}({pid})" if proc is not None else f"pid {pid}"
