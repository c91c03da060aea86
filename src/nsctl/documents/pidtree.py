"""The ``nsctl pidtree --json`` document (``GET /api/v1/pidtree``): each PID namespace
with its facts, the process tree inside it (every process with its PID at every level)
and the PID namespaces below it."""
from __future__ import annotations

from ..model import Process, Snapshot
from ..query.pidmap import PidNsInfo, pid_namespaces
from .problems import gaps


def _process_forest(snap: Snapshot, ns_ino: int) -> tuple[list[Process], dict[int, list[Process]]]:
    """Roots (parent not in this namespace) and children, for the processes of one namespace."""
    procs = [p for p in snap.processes.values() if p.ns.get("pid") == ns_ino]
    here = {p.pid for p in procs}
    kids: dict[int, list[Process]] = {}
    roots = []
    for p in sorted(procs, key=lambda p: p.pid):
        if p.ppid in here and p.ppid != p.pid:
            kids.setdefault(p.ppid, []).append(p)
        else:
            roots.append(p)
    return roots, kids


def build(snap: Snapshot, top: int | None) -> tuple[list[dict], dict[int, PidNsInfo]]:
    """The tree as plain dicts (from the PID namespace ``top`` down, or all), and the
    facts of every PID namespace."""
    infos = pid_namespaces(snap)
    children: dict[int | None, list[int]] = {}
    for ino, info in infos.items():
        parent = info.ns.parent if info.ns.parent in infos else None
        children.setdefault(parent, []).append(ino)

    def proc_node(p: Process, kids: dict[int, list[Process]], init: int | None) -> dict:
        return {"pid": p.pid, "nspid": p.nspid or [p.pid], "comm": p.comm, "state": p.state,
                "init": p.pid == init,
                "pid_for_children": p.ns.get("pid_for_children"),
                "children": [proc_node(k, kids, init) for k in kids.get(p.pid, [])]}

    def ns_node(ino: int) -> dict:
        info = infos[ino]
        roots, kids = _process_forest(snap, ino)
        node = info.to_dict()
        node["name"] = info.ns.name or info.ns.label
        node["processes"] = [proc_node(p, kids, info.init) for p in roots]
        node["children"] = [ns_node(c) for c in sorted(children.get(ino, []))]
        return node

    roots = [top] if top is not None else sorted(children.get(None, []))
    return [ns_node(r) for r in roots], infos


def document(snap: Snapshot, top: int | None = None) -> dict:
    """The document (from the PID namespace ``top`` down, or all)."""
    return {"pid_namespaces": build(snap, top)[0], **gaps(snap)}
