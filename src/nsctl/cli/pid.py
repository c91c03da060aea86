"""``nsctl pid PID [--from SPEC] [--to SPEC]``: a PID as seen from another PID namespace."""
from __future__ import annotations

import argparse
import sys

from ..documents.pid import levels, pid_namespace, translation
from ..query import pidmap
from .args import command_parser
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
    p.add_argument("--json", action="store_true",
                   help="one JSON document (it names each namespace, which takes a scan of "
                        "the host)")
    return p


def _direct(args: argparse.Namespace, pid: int) -> bool:
    """Answer from the kernel alone, as the text output needs no names: SPECs opened
    directly (nsctl.query.direct), the translation ioctls, NSpid and NS_GET_PARENT.
    False (nothing printed) when a SPEC or the kernel needs the scan instead."""
    import os

    from ..documents.pid import NotPidNamespace
    from ..kernel.errors import Unsupported
    from ..query.direct import open_spec

    opened: list[tuple[int, str] | None] = []
    try:
        for spec in (args.from_spec, args.to_spec):
            if spec is None:
                opened.append(None)
                continue
            got = open_spec(spec)
            if got is None:
                return False
            found, fd = got
            opened.append((fd, found.label))
            if found.type != "pid":
                raise NotPidNamespace(f"{spec} is a {found.type} namespace, not a PID namespace")
        frm, to = opened
        try:
            if to is not None:
                print(pidmap.translate_direct(pid, frm, to, tgid=args.tgid))
                return True
            ours = pidmap.translate_direct(pid, frm, None) if frm is not None else pid
            found_levels = pidmap.levels_direct(ours, tgid=args.tgid)
        except Unsupported:
            if args.via == pidmap.IOCTL:
                raise
            return False
    finally:
        for item in opened:
            if item is not None:
                os.close(item[0])
    base = pidmap.own_level()
    for i, (ns, p) in enumerate(found_levels):
        sys.stdout.write(f"pid:[{ns}]  level {base + i}  {p}\n")
    return True


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.pid.isdigit() or int(args.pid) < 1:
        raise UsageError(f"not a PID: {args.pid!r}")
    pid = int(args.pid)
    if not args.json and args.via != pidmap.PROC and _direct(args, pid):
        return 0
    snap = discover_from_args(args)
    from_ns, to_ns = pid_namespace(args.from_spec, snap), pid_namespace(args.to_spec, snap)
    if to_ns is not None:
        doc = translation(pid, snap, from_ns, to_ns, tgid=args.tgid, via=args.via)
        if args.json:
            print_json(doc)
        else:
            print(doc["result"])
        return 0
    doc = levels(pid, snap, from_ns, tgid=args.tgid, via=args.via)
    if args.json:
        print_json(doc)
        return 0
    for level in doc["levels"]:
        sys.stdout.write(f"pid:[{level['ns']}]  level {level['level']}  {level['pid']}\n")
    return 0
