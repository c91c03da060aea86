"""Source: the namespace hierarchy, once every reference is known.

Owners and parents (NS_GET_USERNS, NS_GET_PARENT) are resolved as each namespace
is first learned (:meth:`nsctl.discovery.scan.Scan.learn`); this pass then drops
what nothing holds any more and adds the 'child' references.
"""
from __future__ import annotations

from ..model import CHILD, Reference, Snapshot
from .scan import Scan


def finish(scan: Scan) -> None:
    """Prune and link (always; the ioctls of the hierarchy run with ``opts.hierarchy``)."""
    prune_and_link(scan.snap, scan.memo.children if scan.memo is not None else None,
                   scan.record.children)


ChildRefs = dict[tuple[int, "int | None", str], Reference]


def prune_and_link(snap: Snapshot, before: ChildRefs | None = None,
                   made: ChildRefs | None = None) -> None:
    """Drop namespaces nothing holds any more, then add the 'child' references.

    A namespace learned from a process that exited before it was committed has
    no reference left; it stays only as an owner or parent of a held one.  The
    child references of an earlier scan (``before``: by child inode, id and
    relation) are used again, the very objects (a watcher's diff sees them
    unchanged at a glance); ``made`` collects this scan's.
    """
    before = before or {}
    made = {} if made is None else made
    namespaces = snap.namespaces
    # Those nothing holds (few: hidden ancestors, and what exited mid-scan) stay if a
    # held one is below them, through any chain of owners and parents.
    unheld = {ino for ino, ns in namespaces.items() if not ns.refs}
    if unheld:
        kept: set[int] = set()
        stack = [up for ns in namespaces.values() if ns.refs
                 for up in (ns.owner, ns.parent) if up in unheld]
        while stack:
            ino = stack.pop()
            if ino not in kept:
                kept.add(ino)
                ns = namespaces[ino]
                stack.extend(up for up in (ns.owner, ns.parent) if up in unheld)
        for ino in unheld - kept:
            del namespaces[ino]
    # In inode order, not the order found: the same children in the same order
    # however the processes were read (in turn, incrementally, or in shares).
    # (Reference's fields by position: kind, pid, tid, fd, link, socket, path, mntns,
    # child, relation; 60,000 of them on a big host.)
    for ino in sorted(namespaces):
        ns = namespaces[ino]
        parent, owner = ns.parent, ns.owner
        if parent is not None and parent in namespaces:
            namespaces[parent].refs.append(_child(before, made, ino, ns.id, "parent"))
        if owner is not None and owner != parent and owner in namespaces:
            namespaces[owner].refs.append(_child(before, made, ino, ns.id, "owner"))


def _child(before: ChildRefs, made: ChildRefs, ino: int, id_: int | None,
           relation: str) -> Reference:
    key = (ino, id_, relation)
    ref = before.get(key)
    if ref is None:
        ref = Reference(CHILD, None, None, None, None, None, None, None, ino, relation)
    made[key] = ref
    return ref
