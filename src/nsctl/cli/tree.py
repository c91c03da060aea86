"""``nsctl tree``: the user namespace tree with what each user namespace owns;
``--pid``: the PID namespace tree."""
from __future__ import annotations

import argparse

from ..documents.describe import describe_ref, ns_name
from ..documents.tree import Branch, branches, document
from ..model import Namespace, Snapshot
from .args import command_parser
from .common import add_discovery_args, discover_from_args
from .render import Node, print_json, print_tree, separator

MAX_PROCS = 3  # processes named per namespace; the rest are counted


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(prog="nsctl tree",
                                description="Show how namespaces relate, as a tree.")
    p.add_argument("--pid", action="store_true",
                   help="the PID namespace tree instead of the user namespace tree")
    p.add_argument("--json", action="store_true", help="the tree as nested JSON")
    add_discovery_args(p)
    return p


def procs_note(ns: Namespace, snap: Snapshot) -> str:
    """A compact summary of what is in / holds a namespace."""
    parts = []
    if ns.pids:
        # User-space processes first: they say more than kernel threads do.
        pids = sorted(ns.pids, key=lambda p: (not snap.processes[p].cmdline, p))
        named = [f"{snap.processes[p].comm}({p})" for p in pids[:MAX_PROCS]]
        more = f" +{len(pids) - MAX_PROCS} more" if len(pids) > MAX_PROCS else ""
        parts.append(f"{len(pids)} proc{'s' if len(pids) != 1 else ''}: {' '.join(named)}{more}")
    others = [r for r in ns.refs if r.kind not in ("process", "child") or
              (r.kind == "process" and r.link != ns.type)]
    if others:
        text = "; ".join(describe_ref(r, snap) for r in others[:MAX_PROCS])
        more = f" +{len(others) - MAX_PROCS} more" if len(others) > MAX_PROCS else ""
        parts.append(f"held by {text}{more}")
    if ns.hidden:
        parts.append("hidden: only a child namespace keeps it alive")
    return separator().join(parts)


def to_node(branch: Branch, snap: Snapshot) -> Node:
    kids = [to_node(b, snap) for b in branch.children]
    ns = branch.ns
    if ns is None:
        return Node(label=branch.label, style="dim", children=kids)
    style = "bold magenta" if ns.type == "user" else ("dim" if ns.hidden else None)
    label = ns_name(ns) + (" (hidden)" if ns.hidden else "") + \
        (f" [{ns.container.label}]" if ns.container else "")
    return Node(label=label, style=style, note=procs_note(ns, snap), children=kids)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    snap = discover_from_args(args)
    if args.json:
        print_json(document(snap, args.pid))
        return 0
    print_tree([to_node(b, snap) for b in branches(snap, args.pid)])
    return 0
