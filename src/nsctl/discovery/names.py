"""Source: every namespace's display name, the one a person knows it by.

The rule, the first that applies (one place: :func:`name_of`):

1. a network namespace bind-mounted directly under ``/run/netns``: that file's
   name, as ``ip netns`` lists it (``blue``); a mount in nsctl's own mount
   namespace before copies elsewhere;
2. its container or pod: the container's label (``docker:web``, ``pod:NAME``);
3. another bind mount of its namespace file: the mount point's path (nsctl's own
   mount namespace first);
4. its leading process, the lowest PID in it: ``comm(PID)`` (``sleep(4242)``);
5. no process in it: what holds it (the first holder in HELD-BY order, the lowest
   PID first), with the holder process as in 4:
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

from ..model import BINDMOUNT, CHILD, FD, PROCESS, SOCKET, THREAD, Namespace, Reference, Snapshot
from .scan import Scan

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Iterable

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
        # The common cases first (rules 4 and 5 by hand): one reference, or processes
        # and no bind mount, and no container.
        if ns.container is None:
            if len(refs) == 1:
                ref = refs[0]
                kind = ref.kind
                if kind == PROCESS and ns.pids or kind == FD:
                    pid = min(ns.pids) if kind == PROCESS else ref.pid
                    proc = procs.get(pid) if pid is not None else None
                    who = f"{proc.comm}({pid})" if proc is not None else f"pid {pid}"
                    ns.name = who if kind == PROCESS else f"fd {ref.fd} of {who}"
                    continue
            elif ns.pids and BINDMOUNT not in [r.kind for r in refs]:
                pid = min(ns.pids)
                proc = procs.get(pid)
                ns.name = f"{proc.comm}({pid})" if proc is not None else f"pid {pid}"
                continue
        if ns.pids or any(r.kind != CHILD for r in refs):
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
    refs = ns.refs
    # Each path once: a mount is copied into every mount namespace made after it.
    paths: set[str] = {r.path for r in refs if r.kind == BINDMOUNT and r.path} \
        if ns.type == "net" or ns.container is None else set()
    if ns.type == "net":
        named = [p for p in paths if p.startswith(RUN_NETNS)
                 and p[len(RUN_NETNS):] and "/" not in p[len(RUN_NETNS):]]
        if named:
            return _ours_first(named, refs, own_mnt)[len(RUN_NETNS):], NETNS
    if ns.container is not None:
        return ns.container.label, CONTAINER
    if paths:
        return _ours_first(paths, refs, own_mnt), MOUNT
    procs = snap.processes
    if ns.pids:
        return _who(min(ns.pids), procs), LEADER
    # The first holder in the order of HELD-BY, then by PID: the same name however the
    # scan read the processes (in turn, in shares, incrementally).
    holders = [r for r in ns.refs if r.kind in _HOLDER_RANK]
    if holders:
        ref = min(holders, key=lambda r: (_HOLDER_RANK[r.kind], r.pid or 0, r.tid or 0,
                                          r.fd or 0, r.link or ""))
        who = _who(ref.pid, procs)
        kind = ref.kind
        if kind == PROCESS:
            return f"{ref.link} of {who}", HOLDER
        if kind == THREAD:
            return f"thread {ref.tid} of {who}", HOLDER
        if kind == FD:
            return f"fd {ref.fd} of {who}", HOLDER
        return f"socket of {who}", HOLDER
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


_HOLDER_RANK = {PROCESS: 0, THREAD: 1, FD: 2, SOCKET: 3}


def _ours_first(paths: Iterable[str], refs: list[Reference], own_mnt: int | None) -> str:
    """Of bind mount ``paths``, one mounted in nsctl's own mount namespace where there
    is one; the shortest, then the first in order."""
    ours = {r.path for r in refs if r.kind == BINDMOUNT and r.mntns == own_mnt}
    candidates = list(paths)
    mine = [p for p in candidates if p in ours]
    return min(mine or candidates, key=lambda p: (len(p), p))


def _who(pid: int | None, procs: dict) -> str:
    """A process as names write it: ``comm(PID)`` (``pid PID`` where it was not read)."""
    proc = procs.get(pid) if pid is not None else None
    return f"{proc.comm}({pid})" if proc is not None else f"pid {pid}"
