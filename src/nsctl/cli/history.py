"""``nsctl history``: the events ``nsctl watch --record`` stored."""
from __future__ import annotations

import json

from ..timeline.history import DEFAULT_DB, query
from ..timeline.watch import EVENTS
from .args import command_parser
from .render import print_lines


def main(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl history",
        description="When did a namespace appear, what held it, when did it go: the events "
                    "recorded by nsctl watch --record, oldest first.")
    p.add_argument("spec", metavar="SPEC", nargs="?",
                   help="only this namespace: inode, NS_GET_ID id, TYPE:[INODE], its display name "
                        "(as the events name it), or a TYPE")
    p.add_argument("--db", default=DEFAULT_DB, help=f"the database (default {DEFAULT_DB})")
    p.add_argument("--since", metavar="T",
                   help="only events since T: ISO time (2026-11-23T02:00Z) or ago "
                        "(30s, 10m, 2h, 1d)")
    p.add_argument("--event", action="append", choices=EVENTS, metavar="EVENT",
                   help=f"only these events ({', '.join(EVENTS)}; repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    from .watch import event_line

    rows = query(args.db, args.spec, args.since, args.event)
    out = []
    for e in rows:
        out.append(json.dumps(e) if args.json else f"{event_line(e)}  [run {e['run']}]")
    if out:
        print_lines(out)
    return 0
