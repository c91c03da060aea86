"""``nsctl tree``: the user namespace tree with what each user namespace owns;
``--pid``: the PID namespace tree."""
from __future__ import annotations

import argparse

from .args import command_parser
from ..documents.problems import gaps
from ..model import Namespace, Snapshot
from .common import add_discovery_args, describe_ref, discover_from_args, ns_name
from .render import Node, print_json, print_tree

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
    return " · ".join(parts)


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


def to_node(branch: Branch, snap: Snapshot) -> Node:
    kids = [to_node(b, snap) for b in branch.children]
    ns = branch.ns
    if ns is None:
        return Node(label=branch.label, style="dim", children=kids)
    style = "bold magenta" if ns.type == "user" else ("dim" if ns.hidden else None)
    label = ns_name(ns) + (" (hidden)" if ns.hidden else "") + \
        (f" [{ns.container.label}]" if ns.container else "")
    return Node(label=label, style=style, note=procs_note(ns, snap), children=kids)


def to_json(branch: Branch, snap: Snapshot, paths: dict[int, str] | None = None) -> dict:
    if paths is None:
        from ..query.naming import stable_paths

        paths = stable_paths(snap)
    ns = branch.ns
    out: dict = ({"label": branch.label} if ns is None else
                 {"ns": ns.ino, "type": ns.type, "id": ns.id, "stable_path": paths.get(ns.ino),
                  "hidden": ns.hidden, "held_by": ns.held_by, "pids": sorted(ns.pids),
                  "container": ns.container.to_dict() if ns.container else None})
    out["children"] = [to_json(b, snap, paths) for b in branch.children]
    return out


def document(snap: Snapshot, pid: bool = False) -> dict:
    """The ``--json`` document: the user namespace tree, or with ``pid`` the PID one."""
    branches = pid_branches(snap) if pid else user_branches(snap)
    return {"tree": [to_json(b, snap) for b in branches], **gaps(snap)}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    snap = discover_from_args(args)
    if args.json:
        print_json(document(snap, args.pid))
        return 0
    branches = pid_branches(snap) if args.pid else user_branches(snap)
    print_tree([to_node(b, snap) for b in branches])
    return 0
