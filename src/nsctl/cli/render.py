"""Rendering: aligned tables and trees, coloured with rich on a terminal, plain when piped.

Plain output never imports rich, so piping and scripts stay fast.
"""
from __future__ import annotations

import os
import sys


def on_terminal() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def print_json(doc: object) -> None:
    """One JSON document on stdout, indented on a terminal.

    json.dumps, not json.dump: only dumps uses the C encoder, and dump writes
    each token separately (millions of writes for a big host).  Documents are
    trees built for the occasion, never cyclic: no cycle check (20 % of the time).
    """
    import json

    sys.stdout.write(json.dumps(doc, indent=2 if sys.stdout.isatty() else None,
                                check_circular=False))
    sys.stdout.write("\n")


def print_table(headers: list[str], rows: list[list[str]], right: set[int],
                styles: dict[int, str] | None = None, no_headings: bool = False) -> None:
    """An aligned table; the last column is never padded (it may be long)."""
    if on_terminal():
        _rich_table(headers, rows, right, styles or {}, no_headings)
        return
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = []
    last = len(headers) - 1
    for row in ([] if no_headings else [headers]) + rows:
        cells = []
        for i, cell in enumerate(row):
            if i == last:
                cells.append(cell.rjust(widths[i]) if i in right else cell)
            else:
                cells.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        out.append(" ".join(cells).rstrip())
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))


def _rich_table(headers, rows, right, styles, no_headings) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_header=not no_headings, pad_edge=False,
                  header_style="bold")
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if i in right else "left",
                         style=styles.get(i), overflow="ellipsis",
                         no_wrap=i != len(headers) - 1)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


class Node:
    """A tree node for rendering: a label (with an optional style), a note, children."""

    __slots__ = ("label", "style", "note", "children")

    def __init__(self, label: str, style: str | None = None, note: str = "",
                 children: list[Node] | None = None) -> None:
        self.label = label
        self.style = style
        self.note = note
        self.children = children or []


def print_tree(roots: list[Node]) -> None:
    if on_terminal():
        from rich.console import Console
        from rich.text import Text
        from rich.tree import Tree

        console = Console()

        def build(node: Node, parent) -> None:
            text = Text(node.label, style=node.style or "")
            if node.note:
                text.append("  " + node.note, style="dim")
            branch = parent.add(text)
            for child in node.children:
                build(child, branch)

        for root in roots:
            text = Text(root.label, style=root.style or "bold")
            if root.note:
                text.append("  " + root.note, style="dim")
            tree = Tree(text, guide_style="dim")
            for child in root.children:
                build(child, tree)
            console.print(tree)
        return
    lines: list[str] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        label = node.label + (f"  {node.note}" if node.note else "")
        if top:
            lines.append(label)
            child_prefix = ""
        else:
            lines.append(prefix + ("`-- " if last else "|-- ") + label)
            child_prefix = prefix + ("    " if last else "|   ")
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
