"""``nsctl pidtree``: the process tree drawn inside the PID namespace tree.

Each process shows its PID in every PID namespace from ours down to its own
(``bash (4182/12/1)``); each namespace's init (its child reaper, PID 1 there)
is marked.
"""
from __future__ import annotations

import argparse

from ..documents.pid import pid_namespace
from ..documents.pidtree import build, document
from ..model import Process, Snapshot
from ..query.pidmap import PidNsInfo
from .args import command_parser
from .common import add_discovery_args, discover_from_args
from .render import Node, print_json, print_tree, separator


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
        pending = ", ".join(map(str, info.pending))
        parts.append(f"new PID namespace pending (no child yet) in {pending}")
    return f"pid:[{info.ns.ino}]", separator().join(p for p in parts if p)


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
    ns = pid_namespace(args.ns or None, snap)
    top = None if ns is None else ns.ino
    if args.json:
        print_json(document(snap, top))
        return 0
    tree, infos = build(snap, top)
    print_tree([_to_render(n, infos, snap) for n in tree])
    return 0
