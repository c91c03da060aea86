"""``nsctl ls``: one row per namespace."""
from __future__ import annotations

import argparse

from ..documents.ls import document, parse_types, select
from ..model import Namespace
from .args import command_parser
from .columns import COLUMNS, drop_empty, parse_columns
from .common import add_discovery_args, discover_from_args
from .render import Rows, print_json, print_table


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(prog="nsctl ls", description="List every namespace on the host.")
    p.add_argument("-t", "--type", action="append", metavar="TYPE",
                   help="only this type (repeatable, or a comma list)")
    p.add_argument("-o", "--output", metavar="LIST",
                   help="columns to show (+LIST adds to the defaults)")
    p.add_argument("--list-columns", action="store_true", help="describe the columns and exit")
    p.add_argument("-n", "--noheadings", action="store_true", help="don't print headings")
    p.add_argument("--json", action="store_true", help="one JSON document (see README)")
    add_discovery_args(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.list_columns:
        for col in COLUMNS.values():
            print(f"{col.name:>9}  {col.help}")
        return 0
    types = parse_types(args.type)
    columns = parse_columns(args.output)
    snap = discover_from_args(args)
    if args.json:
        # (A loaded snapshot's fields are whatever its file said: encoded, never written as is.)
        text = None if snap.offline else Namespace.json_text
        print_json(document(
            snap, types, rows=lambda namespaces: Rows(namespaces, Namespace.to_dict, text)))
        return 0
    namespaces = select(snap, types)
    rows = [[col.fill(ns, snap) for col in columns] for ns in namespaces]
    columns, rows = drop_empty(columns, rows, args.output)
    print_table([c.name for c in columns], rows,
                right={i for i, c in enumerate(columns) if c.right},
                styles={i: c.style for i, c in enumerate(columns) if c.style},
                cut_first=[i for i, c in enumerate(columns) if c.shrink],
                no_headings=args.noheadings)
    return 0
