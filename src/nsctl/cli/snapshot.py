"""``nsctl snapshot [-o FILE]``: the whole discovery as one versioned JSON document."""
from __future__ import annotations

import json
import sys

from ..documents.snapshot import save, to_document
from .args import command_parser
from .common import discover_from_args


def main(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl snapshot",
        description="Save the whole discovery (namespaces, references, processes, PID maps) "
                    "with host, kernel, time and schema version; every reading command reads "
                    "it back with --from FILE.")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument("--threads", action="store_true", help="also read every thread")
    p.add_argument("--views", action="store_true",
                   help="also what every namespace sees (network: interfaces, peers, nsids; "
                        "uts: names; user: ID maps; mnt, pid, time, cgroup, ipc: theirs), "
                        "for `nsctl net --from`, `show --from` and interface diffs")
    args = p.parse_args(argv)
    if args.output:
        from ..kernel.files import claim_existing

        claim_existing(args.output)   # refuse a FIFO, symlink or other's file before the scan
    snap = discover_from_args(args)
    if args.views:
        from ..views import read_view
        from ..views.net import read_all

        snap.net_views = read_all(snap)   # one child for all network namespaces
        snap.views = {ino: read_view(ns, snap) for ino, ns in snap.namespaces.items()
                      if ns.type != "net"}
    if args.output:
        save(snap, args.output)
        print(f"{len(snap.namespaces)} namespaces, {len(snap.processes)} processes "
              f"saved to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(json.dumps(to_document(snap)) + "\n")
    return 0
