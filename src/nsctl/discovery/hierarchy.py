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
from ..kernel.errors import AccessDenied, NsctlError, Unsupported
from ..model import CHILD, Namespace, Reference, Snapshot

if TYPE_CHECKING:
    from .engine import Options, Scan


def resolve(scan: "Scan", ns: Namespace, fd: int) -> None:
    """Fill id, owner, parent and owner UID of ``ns`` from its open fd."""
    ns.id = nsfs.ns_id(fd)
    owner_fd = None
    if "NS_GET_USERNS" not in scan.unsupported:
        try:
            owner_fd = nsfs.owning_userns(fd)
        except AccessDenied:
            pass  # owned from outside our user namespace: not ours to see
        except Unsupported as exc:  # kernels before 4.9: no owners, say so once
            scan.unsupported.add("NS_GET_USERNS")
            scan.problem("unsupported", str(exc))
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
        if ns.type == "pid" and "NS_GET_PARENT" not in scan.unsupported:
            try:
                parent_fd = nsfs.parent_ns(fd)
            except Unsupported as exc:
                scan.unsupported.add("NS_GET_PARENT")
                scan.problem("unsupported", str(exc))
                return
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
            namespaces[parent].refs.append(
                Reference(CHILD, None, None, None, None, None, None, None, ino, "parent"))
        if owner is not None and owner != parent and owner in namespaces:
            namespaces[owner].refs.append(
                Reference(CHILD, None, None, None, None, None, None, None, ino, "owner"))
