"""``nsctl pid PID [--from SPEC] [--to SPEC]``: a PID as seen from another PID namespace."""
from __future__ import annotations

import argparse
import sys

from .args import command_parser
from ..documents.problems import gaps
from ..query import pidmap
from ..query.spec import resolve
from .common import UsageError, discover_from_args
from .render import print_json


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl pid",
        description="Translate a PID between PID namespaces. Without --to: the PID at every "
                    "level, from ours down to the process's own namespace.",
        epilog="A process is visible only in its own PID namespace and its ancestors.")
    p.add_argument("pid", metavar="PID", help="a process or thread ID")
    p.add_argument("--from", dest="from_spec", metavar="SPEC",
                   help="the PID namespace PID is meant in (default: nsctl's own)")
    p.add_argument("--to", dest="to_spec", metavar="SPEC",
                   help="the PID namespace to see it from (default: nsctl's own)")
    p.add_argument("--tgid", action="store_true",
                   help="give the thread group (process) ID rather than the thread's ID")
    p.add_argument("--via", choices=(pidmap.AUTO, pidmap.IOCTL, pidmap.PROC), default=pidmap.AUTO,
                   help="translate with the NS_GET_*_PIDNS ioctls, with /proc NSpid, or "
                        "whichever works (default)")
    p.add_argument("--json", action="store_true", help="one JSON document")
    return p


def _pid_ns(spec: str | None, snap):
    if spec is None:
        return None
    ns = resolve(spec, snap)
    if ns.type != "pid":
        raise UsageError(f"{spec} is a {ns.type} namespace, not a PID namespace")
    return ns


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.pid.isdigit() or int(args.pid) < 1:
        raise UsageError(f"not a PID: {args.pid!r}")
    pid = int(args.pid)
    snap = discover_from_args(args)
    from_ns, to_ns = _pid_ns(args.from_spec, snap), _pid_ns(args.to_spec, snap)
    if to_ns is not None:
        result = pidmap.translate(pid, snap, from_ns, to_ns, tgid=args.tgid, via=args.via)
        if args.json:
            print_json({"pid": pid, "from": (from_ns or snap.namespaces[snap.own["pid"]]).ino,
                        "to": to_ns.ino, "result": result, **gaps(snap)})
        else:
            print(result)
        return 0
    ours = pidmap.to_ours(pid, from_ns or snap.namespaces[snap.own["pid"]], snap, via=args.via)
    levels = pidmap.levels_of(ours, snap, tgid=args.tgid)
    base = pidmap.own_level()
    if args.json:
        print_json({"pid": pid, "levels": [{"ns": ns, "level": base + i, "pid": p}
                                           for i, (ns, p) in enumerate(levels)], **gaps(snap)})
        return 0
    for i, (ns, p) in enumerate(levels):
        sys.stdout.write(f"pid:[{ns}]  level {base + i}  {p}\n")
    return 0
