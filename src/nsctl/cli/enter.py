"""``nsctl enter SPEC... [-- CMD ...]``: run a command inside existing namespaces."""
from __future__ import annotations

import argparse
import os

from ..kernel import nsfs
from ..ops.enter import enter
from ..query.spec import container_process, resolve
from .args import command_parser
from .common import UsageError, discover_from_args, split_command


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl enter",
        usage="nsctl enter [--all PID] [SPEC ...] [-- CMD [ARG ...]]",
        description="Run CMD (default: your shell) inside the given namespaces, named by any "
                    "SPEC form. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to "
                    "nsctl reach CMD, CMD dies with nsctl, and its exit status is nsctl's.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="namespaces to enter")
    p.add_argument("--all", metavar="PID|container:NAME",
                   help="every namespace of process PID, or of a container's top process "
                        "(those that differ from ours), and its root and working directory")
    return p


def main(argv: list[str]) -> int:
    argv, command = split_command(argv)
    args = build_parser().parse_args(argv)
    if not args.specs and not args.all:
        raise UsageError("nothing to enter: give SPECs or --all PID")
    command = command or [os.environ.get("SHELL") or "/bin/sh"]
    snap = discover_from_args(args)
    targets = [resolve(spec, snap) for spec in args.specs]
    root_of = None
    if args.all:
        if args.all.startswith("container:"):
            pid = container_process(args.all[len("container:"):], snap, args.all)
        elif args.all.isdigit():
            pid = int(args.all)
        else:
            raise UsageError(f"--all wants a PID or container:NAME, not {args.all!r}")
        proc = snap.processes.get(pid)
        if proc is None:
            raise UsageError(f"--all {pid}: no such process (or not readable)")
        for link in nsfs.NS_TYPES:
            ino = proc.ns.get(link)
            if ino is not None and ino != snap.own.get(link) and ino in snap.namespaces \
                    and all(t.type != link for t in targets):
                targets.append(snap.namespaces[ino])
        root_of = pid
    return enter(targets, snap, command, root_of=root_of)
