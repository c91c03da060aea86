"""Stable names: a namespace named by where it sits, not by its inode or id.

Inode numbers and NS_GET_ID ids change from boot to boot and host to host
(and inodes are reused within a boot).  Following the idea in the
"discover relationships between namespaces" thread (the namespace
relationships interface), namespaces
form a tree in which user namespaces are directories and every other
namespace is a file in the directory of its owning user namespace, so each
namespace gets a path::

    /user.0/user.2/net.1

Each step is ``TYPE.RANK``: RANK is the namespace's place (from 0) in creation
order among its siblings of that type.  Siblings of a non-user namespace are
the namespaces of its type with the same owning user namespace; siblings of a
user namespace are the user namespaces with the same parent.  The top user
namespace we can see is ``/user.0``.  A namespace whose owner (or, for a user
namespace, parent) is not visible to us is placed under the marker ``/?``,
ranked among the other such namespaces of its type: ``/?/net.0``,
``/?/user.1/uts.0``.

Creation order is NS_GET_ID order where the kernel has it.  Caveat, checked
on Linux 6.18: ids are handed out from per-CPU batches, so they increase in
creation order only among namespaces created on the same CPU; two created one
after the other on different CPUs can compare either way.  Without ids
(``snap.has_ns_id`` false, or a namespace lacking one) ranks fall back to
inode order, which is *not* creation order (nsfs reuses freed inode numbers);
the result says so in ``ranked_by``.

What keeps a name stable: the same topology created in the same order (what a
checkpoint/restore tool does when it restores it) gets the same names on
another boot or host, although inodes and ids differ.  What does not: a
different creation order, a sibling created or destroyed earlier in the order
(it shifts the ranks of all later siblings), and, with ids, siblings created
concurrently on different CPUs.
"""
from __future__ import annotations

import re

from ..model import Namespace, Snapshot

TOP = "/user.0"
UNSEEN = "/?"   # the marker for namespaces whose owner we cannot see

# One stable path: ``/?`` optionally, then one or more ``/TYPE.RANK`` steps.
PATTERN = re.compile(r"^(?:/\?)?(?:/[a-z]+\.\d+)+$")
_STEP = re.compile(r"/([a-z]+)\.(\d+)")


class StablePaths(dict):
    """inode -> stable path, and how the ranks were ordered.

    ``ranked_by``: ``"id"`` (NS_GET_ID order, creation order per CPU) or
    ``"inode"`` (fallback where ids are missing: not creation order).
    """

    __slots__ = ("ranked_by",)

    def __init__(self) -> None:
        super().__init__()
        self.ranked_by = "id"

    @property
    def by_inode(self) -> bool:
        return self.ranked_by == "inode"


def _up(ns: Namespace) -> int | None:
    """The user namespace ``ns`` sits under: its parent if a user namespace, else its owner."""
    if ns.type == "user":
        return ns.parent if ns.parent is not None else ns.owner
    return ns.owner


def _top(snap: Snapshot, roots: list[Namespace], key) -> Namespace | None:
    """The top user namespace we can see: the root above our own user namespace;
    without that (a snapshot that does not record ours), the only root, or else the
    oldest one."""
    users = [ns for ns in roots if ns.type == "user"]
    own = snap.namespaces.get(snap.own.get("user", -1))
    seen: set[int] = set()
    while own is not None and own.type == "user" and own.ino not in seen:
        seen.add(own.ino)
        up = snap.namespaces.get(_up(own) or -1)
        if up is None or up.type != "user":
            return own if own in users else None
        own = up
    return min(users, key=key) if users else None


def stable_paths(snap: Snapshot) -> StablePaths:
    """Every namespace's stable path (inode -> path), in time linear in the number of
    namespaces plus one sort per sibling group."""
    nss = snap.namespaces
    use_ids = bool(snap.has_ns_id) and all(ns.id is not None for ns in nss.values())
    if use_ids:
        def key(ns: Namespace) -> tuple[int, int]:
            return (ns.id, ns.ino)            # type: ignore[return-value]
    else:
        def key(ns: Namespace) -> tuple[int, int]:
            return (ns.ino, 0)

    # Sibling groups: (user namespace above, or None if not visible) x type.
    groups: dict[tuple[int | None, str], list[Namespace]] = {}
    for ns in nss.values():
        up = _up(ns)
        if up is not None and (up == ns.ino or up not in nss or nss[up].type != "user"):
            up = None
        groups.setdefault((up, ns.type), []).append(ns)

    top = _top(snap, [ns for (up, _t), members in groups.items() if up is None
                      for ns in members], key)
    rank: dict[int, int] = {}
    for (up, _type), group in groups.items():
        members = group
        if up is None and top is not None and _type == "user":
            # The top is /user.0; the other parentless user namespaces rank under /?.
            members = [ns for ns in group if ns is not top]
            rank[top.ino] = 0
        members.sort(key=key)
        for i, ns in enumerate(members):
            rank[ns.ino] = i

    out = StablePaths()
    out.ranked_by = "id" if use_ids else "inode"
    if top is not None:
        out[top.ino] = TOP

    def path_of(ns: Namespace) -> str:
        # Iterative: walk up to a namespace whose path is known (or to the root).
        chain: list[Namespace] = []
        cur: Namespace | None = ns
        on_chain: set[int] = set()
        while cur is not None and cur.ino not in out:
            if cur.ino in on_chain:      # a cycle (a corrupt snapshot): cut it here
                break
            on_chain.add(cur.ino)
            chain.append(cur)
            up = _up(cur)
            nxt = nss.get(up) if up is not None else None
            cur = nxt if nxt is not None and nxt.type == "user" and nxt.ino != cur.ino else None
        base = out[cur.ino] if cur is not None and cur.ino in out else UNSEEN
        for link in reversed(chain):
            base = f"{base}/{link.type}.{rank[link.ino]}"
            out[link.ino] = base
        return base

    for ns in nss.values():
        if ns.ino not in out:
            path_of(ns)
    return out


def parse(path: str) -> list[tuple[str, int]] | None:
    """The (type, rank) steps of a stable path, with ``("?", 0)`` for the marker;
    None if ``path`` is not written like one."""
    if not PATTERN.match(path):
        return None
    steps: list[tuple[str, int]] = [("?", 0)] if path.startswith(UNSEEN) else []
    steps.extend((t, int(r)) for t, r in _STEP.findall(path))
    return steps


def resolve_path(path: str, snap: Snapshot,
                 paths: dict[int, str] | None = None) -> Namespace | None:
    """The namespace whose stable path is ``path`` in ``snap``, or None."""
    if paths is None:
        paths = stable_paths(snap)
    for ino, p in paths.items():
        if p == path:
            return snap.namespaces[ino]
    return None
