"""Source: owners and parents (NS_GET_USERNS, NS_GET_PARENT), up to the top.

:func:`resolve` runs the first time any source holds an fd for a namespace;
walking up through the returned fds finds ancestors that nothing but a child
keeps alive (hidden ancestors).  :class:`HierarchySource` then, once all
references are known, drops what nothing holds and adds the 'child' references.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False  # typing costs ~10 ms to import; only type checkers need it

from ..kernel import nsfs
from ..kernel.errors import AccessDenied, NsctlError
from ..model import CHILD, Namespace, Reference, Snapshot

if TYPE_CHECKING:
    from .engine import Options, Scan


def resolve(scan: "Scan", ns: Namespace, fd: int) -> None:
    """Fill id, owner, parent and owner UID of ``ns`` from its open fd."""
    ns.id = nsfs.ns_id(fd)
    try:
        owner_fd = nsfs.owning_userns(fd)
    except AccessDenied:
        owner_fd = None  # owned from outside our user namespace: not ours to see
    if owner_fd is not None:
        try:
            ns.owner = scan.learn(owner_fd, "user")
        finally:
            os.close(owner_fd)
    if ns.type == "user":
        ns.parent = ns.owner  # a user namespace's owner is its parent
        try:
            ns.owner_uid = nsfs.owner_uid(fd)
        except NsctlError:
            pass
    else:
        if ns.owner is not None:
            ns.owner_uid = scan.snap.namespaces[ns.owner].owner_uid
        if ns.type == "pid":
            parent_fd = nsfs.parent_ns(fd)
            if parent_fd is not None:
                try:
                    ns.parent = scan.learn(parent_fd, "pid")
                finally:
                    os.close(parent_fd)


class HierarchySource:
    name = "hierarchy"

    def enabled(self, opts: "Options") -> bool:
        return True  # pruning runs always; the ioctls only with opts.hierarchy

    def finish(self, scan: "Scan") -> None:
        prune_and_link(scan.snap)


def prune_and_link(snap: Snapshot) -> None:
    """Drop namespaces nothing holds any more, then add the 'child' references.

    A namespace learned from a process that exited before it was committed has
    no reference left; it stays only as an owner or parent of a held one.
    """
    keep: set[int] = set()
    for ns in snap.namespaces.values():
        if ns.refs:
            _keep_with_ancestors(snap, ns.ino, keep)
    for ino in [i for i in snap.namespaces if i not in keep]:
        del snap.namespaces[ino]
    for ns in snap.namespaces.values():
        if ns.parent is not None and ns.parent in snap.namespaces:
            snap.namespaces[ns.parent].refs.append(
                Reference(kind=CHILD, child=ns.ino, relation="parent"))
        if ns.owner is not None and ns.owner != ns.parent and ns.owner in snap.namespaces:
            snap.namespaces[ns.owner].refs.append(
                Reference(kind=CHILD, child=ns.ino, relation="owner"))


def _keep_with_ancestors(snap: Snapshot, ino: int, keep: set[int]) -> None:
    stack = [ino]
    while stack:
        cur = stack.pop()
        if cur in keep or cur not in snap.namespaces:
            continue
        keep.add(cur)
        ns = snap.namespaces[cur]
        stack.extend(i for i in (ns.owner, ns.parent) if i is not None)
