"""``nsctl ls``: one row per namespace."""
from __future__ import annotations

import argparse
import sys

from ..documents.ls import document, parse_types, select
from ..kernel.errors import NoSuchProcess
from ..model import Namespace, Snapshot
from .args import command_parser
from .columns import COLUMNS, drop_empty, parse_columns
from .common import UsageError, add_discovery_args, discover_from_args
from .render import Rows, print_json, print_table, printable


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(prog="nsctl ls", description="List every namespace on the host.")
    p.add_argument("-t", "--type", action="append", metavar="TYPE",
                   help="only this type (repeatable, or a comma list)")
    p.add_argument("-o", "--output", metavar="LIST",
                   help="columns to show (+LIST adds to the defaults)")
    p.add_argument("--list-columns", action="store_true", help="describe the columns and exit")
    p.add_argument("-n", "--noheadings", action="store_true", help="don't print headings")
    p.add_argument("-J", "--json", action="store_true", help="one JSON document (see README)")
    # lsns's options that mean the same here
    p.add_argument("-p", "--task", metavar="PID", help="only the namespaces process PID is in")
    p.add_argument("-r", "--raw", action="store_true",
                   help="raw output: cells separated by one space, none padded, blanks "
                        "inside a cell written \\x20 (as lsns -r)")
    p.add_argument("-T", "--tree", nargs="?", const="owner", choices=("owner", "parent"),
                   metavar="REL", help="a tree by owner (the default) or parent, as lsns -T")
    p.add_argument("-u", "--notruncate", action="store_true",
                   help="on a terminal too, every cell in full (lines may wrap)")
    add_discovery_args(p)
    return p


def _raw_lines(headers: list[str], rows: list[list[str]], no_headings: bool) -> list[str]:
    """lsns -r's layout: one space between cells, blanks inside a cell as ``\\x20`` (the
    cells shown :func:`printable` first)."""
    return [" ".join(printable(cell).replace(" ", "\\x20") for cell in row)
            for row in ([] if no_headings else [headers]) + rows]


def _of_task(namespaces: list[Namespace], snap: Snapshot, task: str) -> list[Namespace]:
    """The namespaces process ``task`` is in (lsns -p)."""
    proc = snap.processes.get(int(task))
    if proc is None:
        raise NoSuchProcess(f"-p {task}: no such process (or not readable)")
    inside = set(proc.ns.values())
    return [ns for ns in namespaces if ns.ino in inside]


def _as_tree(namespaces: list[Namespace], rel: str) -> list[tuple[Namespace, str]]:
    """``namespaces`` in depth-first order of ``rel`` (their owning user namespace, or
    their parent), each with the tree guides that go before its first cell."""
    from .render import on_terminal

    mid, last, bar = ("├─", "└─", "│ ") if on_terminal() else ("|-", "`-", "| ")
    listed = {ns.ino for ns in namespaces}
    kids: dict[int | None, list[Namespace]] = {}
    for ns in namespaces:
        up = ns.owner if rel == "owner" else ns.parent
        kids.setdefault(up if up in listed and up != ns.ino else None, []).append(ns)
    out: list[tuple[Namespace, str]] = []
    seen: set[int] = set()

    def walk(ns: Namespace, prefix: str, guide: str) -> None:
        if ns.ino in seen:      # (a snapshot file could say anything)
            return
        seen.add(ns.ino)
        out.append((ns, prefix + guide))
        below = kids.get(ns.ino, [])
        deeper = prefix + ("" if not guide else "  " if guide == last else bar)
        for i, kid in enumerate(below):
            walk(kid, deeper, last if i == len(below) - 1 else mid)

    for root in kids.get(None, []):
        walk(root, "", "")
    out.extend((ns, "") for ns in namespaces if ns.ino not in seen)
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.list_columns:
        for col in COLUMNS.values():
            print(f"{col.name:>9}  {col.help}")
        return 0
    types = parse_types(args.type)
    columns = parse_columns(args.output)
    if args.task is not None and not args.task.isdigit():
        raise UsageError(f"-p/--task wants a PID, not {args.task!r}")
    snap = discover_from_args(args)
    if args.json:
        # (A loaded snapshot's fields are whatever its file said: encoded, never written as is.)
        text = None if snap.offline else Namespace.json_text
        print_json(document(snap, types, rows=lambda namespaces: Rows(
            namespaces if args.task is None else _of_task(namespaces, snap, args.task),
            Namespace.to_dict, text)))
        return 0
    namespaces = select(snap, types)
    if args.task is not None:
        namespaces = _of_task(namespaces, snap, args.task)
    guides = None
    if args.tree:
        ordered = _as_tree(namespaces, args.tree)
        namespaces, guides = [ns for ns, _ in ordered], [g for _, g in ordered]
    rows = [[col.fill(ns, snap) for col in columns] for ns in namespaces]
    columns, rows = drop_empty(columns, rows, args.output)
    right = {i for i, c in enumerate(columns) if c.right}
    if guides is not None and columns:
        for row, guide in zip(rows, guides, strict=True):
            row[0] = guide + row[0]
        right.discard(0)   # the tree grows to the right of the first column
    if args.raw:
        sys.stdout.write("".join(line + "\n" for line in _raw_lines(
            [c.name for c in columns], rows, args.noheadings)))
        return 0
    print_table([c.name for c in columns], rows,
                right=right,
                styles={i: c.style for i, c in enumerate(columns) if c.style},
                cut_first=[i for i, c in enumerate(columns) if c.shrink],
                keep=[i for i, c in enumerate(columns) if c.name == "NAME"],
                no_headings=args.noheadings, fit=not args.notruncate)
    return 0
