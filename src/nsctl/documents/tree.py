"""The ``nsctl tree --json`` document (``GET /api/v1/tree``): user namespaces nested by
parent, each with the namespaces it owns; with ``pid``, PID namespaces nested by parent.

The branches (:class:`Branch`) are also what the command line draws as text.
"""
from __future__ import annotations

from ..model import Namespace, Snapshot
from .problems import gaps


class Branch:
    """A namespace and the branches under it; ``ns`` None for a labelled group."""

    __slots__ = ("ns", "children", "label")

    def __init__(self, ns: Namespace | None, children: list[Branch] | None = None,
                 label: str = "") -> None:
        self.ns = ns
        self.children = children or []
        self.label = label


_ORDER = {t: i for i, t in enumerate(("user", "mnt", "net", "pid", "uts", "ipc", "cgroup",
                                      "time"))}


def user_branches(snap: Snapshot) -> list[Branch]:
    """User namespaces nested by parent; each lists the namespaces it owns first."""
    owned: dict[int | None, list[Namespace]] = {}
    for ns in snap.namespaces.values():
        key = ns.owner if ns.owner in snap.namespaces else None
        owned.setdefault(key, []).append(ns)

    def build(ns: Namespace) -> Branch:
        kids = sorted(owned.get(ns.ino, []),
                      key=lambda n: (n.type == "user", _ORDER[n.type], n.ino))
        return Branch(ns, [build(k) if k.type == "user" else Branch(k) for k in kids])

    top = sorted(owned.get(None, []), key=lambda n: (n.type != "user", _ORDER[n.type], n.ino))
    roots = [build(ns) for ns in top if ns.type == "user"]
    orphans = [Branch(ns) for ns in top if ns.type != "user"]
    if orphans:
        roots.append(Branch(None, orphans, label="(owner not visible)"))
    return roots


def pid_branches(snap: Snapshot) -> list[Branch]:
    """PID namespaces nested by parent."""
    children: dict[int | None, list[Namespace]] = {}
    for ns in snap.of_type("pid"):
        key = ns.parent if ns.parent in snap.namespaces else None
        children.setdefault(key, []).append(ns)

    def build(ns: Namespace) -> Branch:
        return Branch(ns, [build(k) for k in sorted(children.get(ns.ino, []),
                                                    key=lambda n: n.ino)])

    return [build(ns) for ns in sorted(children.get(None, []), key=lambda n: n.ino)]


def branches(snap: Snapshot, pid: bool = False) -> list[Branch]:
    """The user namespace tree, or with ``pid`` the PID one."""
    return pid_branches(snap) if pid else user_branches(snap)


def to_json(branch: Branch, snap: Snapshot, paths: dict[int, str] | None = None) -> dict:
    if paths is None:
        from ..query.naming import stable_paths

        paths = stable_paths(snap)
    ns = branch.ns
    out: dict = ({"label": branch.label} if ns is None else
                 {"ns": ns.ino, "type": ns.type, "id": ns.id, "name": ns.name or ns.label,
                  "stable_path": paths.get(ns.ino),
                  "hidden": ns.hidden, "held_by": ns.held_by, "pids": sorted(ns.pids),
                  "container": ns.container.to_dict() if ns.container else None})
    out["children"] = [to_json(b, snap, paths) for b in branch.children]
    return out


def document(snap: Snapshot, pid: bool = False) -> dict:
    """The document: the user namespace tree, or with ``pid`` the PID one."""
    return {"tree": [to_json(b, snap) for b in branches(snap, pid)], **gaps(snap)}
