"""``nsctl show SPEC``: all that is known about one namespace."""
from __future__ import annotations

import argparse
import os

from ..documents.describe import describe_refs, ns_title, user_name
from ..documents.show import document, has_view, view
from ..model import Container, Namespace, Snapshot
from ..query.spec import SPEC_HELP, resolve
from .args import command_parser
from .common import add_discovery_args, discover_from_args
from .render import print_json, print_lines

MAX_LISTED = 20


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl show", description="Show one namespace: identity, relations, processes and "
        "every reference that keeps it alive.",
        epilog=SPEC_HELP)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.add_argument("--all", action="store_true", help="list every process, not the first 20")
    p.add_argument("--no-view", action="store_true",
                   help="skip what the namespace sees (its interfaces, hostname, ID maps, ...)")
    add_discovery_args(p)
    return p


def _name(snap: Snapshot, ino: int | None) -> str:
    if ino is None:
        return "-"
    ns = snap.namespaces.get(ino)
    return ns_title(ns) if ns else str(ino)


def _pod(c: Container) -> str:
    """A pod as show names it: its name (Kubernetes: namespace/name) and id."""
    if not c.pod_name:
        return c.pod or "-"
    where = f"{c.pod_namespace}/" if c.pod_namespace else ""
    return f"{where}{c.pod_name} ({c.pod})"


def _container_rows(ns: Namespace, snap: Snapshot) -> list[tuple[str, str]]:
    """The container (or pod) the namespace belongs to; else the containers whose
    processes share it with others (e.g. the host's, with --net=host)."""
    c = ns.container
    if c is not None:
        if c.id is None:
            return [("container", f"{c.engine} pod {_pod(c)} (shared by its containers)")]
        text = f"{c.engine} {c.id}" + (f" name {c.name}" if c.name and c.name != c.id else "")
        rows = [("container", text + (f" pod {_pod(c)}" if c.pod else ""))]
        if c.image:
            rows.append(("image", c.image))
        if c.project or c.service:
            rows.append(("compose", f"project {c.project or '-'} service {c.service or '-'}"))
        return rows
    inside: dict[str, int] = {}
    for pid in ns.pids:
        proc = snap.processes.get(pid)
        if proc is not None and proc.container is not None:
            inside[proc.container.label] = inside.get(proc.container.label, 0) + 1
    if not inside:
        return []
    return [("container", "- (shared with " + ", ".join(
        f"{k}: {n} proc{'s' if n != 1 else ''}" for k, n in sorted(inside.items())) + ")")]


def _stable_path(ns: Namespace, snap: Snapshot) -> str:
    """Its stable path (nsctl.query.naming), noting when ranks are by inode, not creation."""
    from ..query.naming import stable_paths

    paths = stable_paths(snap)
    return paths.get(ns.ino, "-") + (" (ranked by inode: no NS_GET_ID)" if paths.by_inode else "")


def facts(ns: Namespace, snap: Snapshot) -> list[tuple[str, str]]:
    """(label, value) lines, in the order shown."""
    rows = [
        ("name", ns.name or ns.label),
        ("type", ns.type),
        ("inode", str(ns.ino)),
        ("device", "-" if ns.dev is None else f"{os.major(ns.dev)}:{os.minor(ns.dev)}"),
        ("id", "-" if ns.id is None else str(ns.id)),
        ("stable path", _stable_path(ns, snap)),
        ("owner", _name(snap, ns.owner) +
         ("" if ns.owner_uid is None else f" (created by uid {ns.owner_uid} "
                                           f"{user_name(ns.owner_uid)})")),
    ]
    if ns.type == "user":
        rows.append(("parent", _name(snap, ns.parent)))
        rows.append(("level", str(snap.level(ns.ino))))
    if ns.type == "pid":
        from ..query.pidmap import pid_namespaces

        info = pid_namespaces(snap)[ns.ino]
        init = snap.processes.get(info.init) if info.init is not None else None
        rows.append(("parent", _name(snap, ns.parent)))
        rows.append(("level", str(info.level)))
        rows.append(("init", "-" if info.init is None else
                     f"{init.comm if init else '?'} ({info.init}) {info.init_state}".rstrip()))
        rows.append(("status", info.status))
        if info.children_elsewhere:
            rows.append(("forks into", ", ".join(
                f"{p} -> pid:[{snap.processes[p].ns['pid_for_children']}]"
                for p in info.children_elsewhere)))
        if info.pending:
            rows.append(("pending", ", ".join(map(str, info.pending)) +
                         " unshared a new PID namespace and forked nothing yet"))
    rows.extend(_container_rows(ns, snap))
    rows.append(("held by", ", ".join(ns.held_by) + (" (hidden)" if ns.hidden else "")))
    rows.append(("processes", str(len(ns.pids))))
    return rows


def _live(args: argparse.Namespace) -> tuple[Snapshot, Namespace]:
    """The scan and the namespace in it.  A SPEC that names a file, PID/TYPE, an inode
    or an id is opened first (nsctl.query.direct): a wrong one fails before any scan,
    and the namespace shown is the one opened, held open while the scan runs (its
    processes and holders, what owns it and its stable path need the scan)."""
    from ..query.direct import open_spec
    from ..query.spec import NotFound

    got = open_spec(args.spec)
    try:
        snap = discover_from_args(args)
        if got is None:
            return snap, resolve(args.spec, snap)
        found = got[0]
        ns = snap.namespaces.get(found.ino)
        if ns is None or ns.type != found.type:
            raise NotFound(f"{args.spec}: {found.label} is held by nothing nsctl can see "
                           "any more (its last holder went during the scan)")
        return snap, ns
    finally:
        if got is not None:
            os.close(got[1])


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.from_file is not None:
        snap = discover_from_args(args)
        ns = resolve(args.spec, snap)
    else:
        snap, ns = _live(args)
    with_view = not args.no_view and has_view(ns, snap)
    if args.json:
        print_json(document(ns, snap, with_view))
        return 0
    out = [ns_title(ns)]
    rows = facts(ns, snap)
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        out.append(f"  {label + ':':<{width}}{value}")
    if ns.pids:
        out.append("  in it:")
        pids = sorted(ns.pids)
        limit = len(pids) if args.all else MAX_LISTED
        for pid in pids[:limit]:
            proc = snap.processes[pid]
            out.append(f"    {pid:>7}  {user_name(proc.uid):<8} {proc.command[:200]}")
        if len(pids) > limit:
            out.append(f"    ... and {len(pids) - limit} more (--all lists them)")
    others = describe_refs([r for r in ns.refs if not (r.kind == "process" and r.link == ns.type)],
                           snap)
    if others:
        out.append("  also held by:")
        out.extend(f"    {text}" for text in others[:MAX_LISTED if not args.all
                                                     else len(others)])
        if not args.all and len(others) > MAX_LISTED:
            out.append(f"    ... and {len(others) - MAX_LISTED} more (--all lists them)")
    if with_view:
        from .viewtext import view_lines

        out.append("  sees:")
        out.extend(view_lines(view(ns, snap), snap, ns.ino))
    print_lines(out)
    return 0
