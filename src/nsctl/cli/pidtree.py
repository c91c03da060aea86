"""``nsctl pidtree``: the process tree drawn inside the PID namespace tree.

Each process shows its PID in every PID namespace from ours down to its own
(``bash (4182/12/1)``); each namespace's init (its child reaper, PID 1 there)
is marked.
"""
from __future__ import annotations

import argparse

from .args import command_parser
from ..documents.problems import gaps
from ..model import Process, Snapshot
from ..query.pidmap import PidNsInfo, pid_namespaces
from ..query.spec import resolve
from .common import UsageError, add_discovery_args, discover_from_args
from .render import Node, print_json, print_tree


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(prog="nsctl pidtree",
                                description="Processes inside the PID namespace tree, with "
                                            "their PID at every level.")
    p.add_argument("--ns", metavar="SPEC", help="only this PID namespace and those below it")
    p.add_argument("--json", action="store_true", help="the tree as nested JSON")
    add_discovery_args(p)
    return p


def pid_chain(proc: Process) -> str:
    return "/".join(str(p) for p in proc.nspid) if proc.nspid else str(proc.pid)


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


def _ns_label(info: PidNsInfo, snap: Snapshot) -> tuple[str, str]:
    parts = [f"level {info.level}"]
    if info.init is not None:
        init = snap.processes.get(info.init)
        name = init.comm if init else "?"
        parts.append(f"init {name} ({info.init}){' ' + info.init_state if info.init_state else ''}")
    parts.append(info.status if info.status != "active" else "")
    parts.append(f"{len(info.pids)} proc{'s' if len(info.pids) != 1 else ''}")
    if info.ns.hidden:
        parts.append("hidden")
    if info.pending:
        parts.append(f"new PID namespace pending (no child yet) in {', '.join(map(str, info.pending))}")
    return f"pid:[{info.ns.ino}]", " · ".join(p for p in parts if p)


def build(snap: Snapshot, top: int | None) -> tuple[list[dict], dict[int, PidNsInfo]]:
    """The tree as plain dicts (also the JSON document)."""
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
        node["processes"] = [proc_node(p, kids, info.init) for p in roots]
        node["children"] = [ns_node(c) for c in sorted(children.get(ino, []))]
        return node

    roots = [top] if top is not None else sorted(children.get(None, []))
    return [ns_node(r) for r in roots], infos


def document(snap: Snapshot, top: int | None = None) -> dict:
    """The ``--json`` document (from the PID namespace ``top`` down, or all)."""
    return {"pid_namespaces": build(snap, top)[0], **gaps(snap)}


def _to_render(node: dict, infos: dict[int, PidNsInfo], snap: Snapshot) -> Node:
    label, note = _ns_label(infos[node["ns"]], snap)
    out = Node(label=label, style="bold magenta", note=note)

    def proc(n: dict) -> Node:
        chain = "/".join(map(str, n["nspid"]))
        marks = []
        if n["init"]:
            marks.append("init")
        if n["pid_for_children"] not in (None, node["ns"]):
            marks.append(f"children -> pid:[{n['pid_for_children']}]")
        if n["state"] == "Z":
            marks.append("zombie")
        return Node(label=f"{n['comm']} ({chain})", style="bold" if n["init"] else None,
                    note=" ".join(f"[{m}]" for m in marks),
                    children=[proc(k) for k in n["children"]])

    out.children = [proc(p) for p in node["processes"]]
    out.children += [_to_render(c, infos, snap) for c in node["children"]]
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    snap = discover_from_args(args)
    top = None
    if args.ns:
        ns = resolve(args.ns, snap)
        if ns.type != "pid":
            raise UsageError(f"{args.ns} is a {ns.type} namespace, not a PID namespace")
        top = ns.ino
    if args.json:
        print_json(document(snap, top))
        return 0
    tree, infos = build(snap, top)
    print_tree([_to_render(n, infos, snap) for n in tree])
    return 0
