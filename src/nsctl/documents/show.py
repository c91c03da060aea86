"""The ``nsctl show SPEC --json`` document (``GET /api/v1/namespaces/{spec}``): one
namespace, its stable path, its PID namespace facts, its processes and what it sees."""
from __future__ import annotations

from ..model import Namespace, Snapshot
from .problems import gaps


def stored_view(ns: Namespace, snap: Snapshot) -> dict | None:
    """The view a snapshot file holds for ``ns`` (None: it holds none)."""
    return (snap.net_views or {}).get(ns.ino) or (snap.views or {}).get(ns.ino)


def has_view(ns: Namespace, snap: Snapshot) -> bool:
    """Whether :func:`view` has something to give: always live, offline only what the
    snapshot holds (views are read from the live namespace)."""
    return not snap.offline or stored_view(ns, snap) is not None


def view(ns: Namespace, snap: Snapshot) -> dict:
    """What ``ns`` sees: read now from the live namespace, or a snapshot's stored view."""
    stored = stored_view(ns, snap) if snap.offline else None
    if stored is not None:
        return stored
    from ..views import read_view

    return read_view(ns, snap)


def document(ns: Namespace, snap: Snapshot, with_view: bool = False) -> dict:
    """The document; with ``with_view`` also what the namespace sees (nsctl serve adds
    that from a helper instead)."""
    doc = ns.to_dict()
    from ..query.naming import stable_paths

    paths = stable_paths(snap)
    doc["stable_path"] = paths.get(ns.ino)
    doc["stable_path_ranked_by"] = paths.ranked_by
    if ns.type == "pid":
        from ..query.pidmap import pid_namespaces

        doc["pid_namespace"] = pid_namespaces(snap)[ns.ino].to_dict()
    doc["processes"] = [snap.processes[p].to_dict() for p in sorted(ns.pids)
                        if p in snap.processes]
    doc.update(gaps(snap))
    if with_view:
        doc["view"] = view(ns, snap)
    return doc
