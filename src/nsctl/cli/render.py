"""Rendering: aligned tables and trees, coloured with rich on a terminal, plain when piped.

Plain output never imports rich, so piping and scripts stay fast.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Sequence


def on_terminal() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Rows:
    """A long list in a JSON document, kept as objects until it is encoded.

    ``print_json`` converts them (``convert(item)`` -> dict) while encoding, so
    that on a big host two processes can share that work (see ``print_json``).
    """

    __slots__ = ("items", "convert")

    def __init__(self, items: Sequence[object], convert: Callable[[object], object]) -> None:
        self.items = items
        self.convert = convert

    def __len__(self) -> int:
        return len(self.items)

    def dicts(self, start: int = 0, stop: int | None = None) -> list[object]:
        convert = self.convert
        return [convert(x) for x in self.items[start:stop]]


# From this many rows on, a forked child converts and encodes a share of them:
# converting 60,000 namespaces takes ~0.27 s, forking even a big nsctl ~8 ms.
PARALLEL_ROWS = 4000
# From this many rows on, orjson encodes them: 6-8 times as fast as the standard
# library's C encoder (0.04 s against 0.32-0.46 s for 60,000 namespaces), but
# importing it takes ~28 ms (dataclasses, inspect, uuid), more than it saves below.
ORJSON_ROWS = 20000


def dumps(doc: object, pretty: bool = False, big: bool = False) -> bytes:
    """``doc`` as UTF-8 JSON, compact or indented by 2; with orjson if ``big``.

    Both encoders write the same bytes: compact separators, text as UTF-8.
    Text that is not valid UTF-8 (a command line kept as lone surrogates by
    surrogateescape) can't be written as UTF-8: orjson refuses it, and the
    standard library then writes that document (or share) with ``\\uXXXX`` escapes.
    """
    if big:
        import orjson

        try:
            # (keys that are not text, as a {pid: ...} map's, become text, as json makes them)
            option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if pretty else 0)
            return orjson.dumps(doc, option=option)
        except orjson.JSONEncodeError:
            pass
    import json

    layout = {"indent": 2 if pretty else None, "check_circular": False,
              "separators": (",", ": ") if pretty else (",", ":")}
    try:
        return json.dumps(doc, ensure_ascii=False, **layout).encode()
    except UnicodeEncodeError:
        return json.dumps(doc, **layout).encode()


def print_json(doc: object) -> None:
    """One JSON document on stdout, indented on a terminal, compact when piped.

    A top-level :class:`Rows` value of ``PARALLEL_ROWS`` or more, in piped
    output, is split among forked children, one per core (at most 4): each
    converts and encodes its share into a memfd; the bytes are the same as
    encoding the whole document here.
    """
    pretty = sys.stdout.isatty()
    if isinstance(doc, dict) and any(isinstance(v, Rows) for v in doc.values()):
        if not pretty and hasattr(sys.stdout, "buffer"):
            _write_split(doc)
            return
        doc = {k: v.dicts() if isinstance(v, Rows) else v for k, v in doc.items()}
    _write_bytes(dumps(doc, pretty) + b"\n")


def _write_bytes(data: bytes) -> None:
    out = sys.stdout
    if hasattr(out, "buffer"):
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()
    else:   # a text stream of no file (a test's, say)
        out.write(data.decode())


def _write_split(doc: dict) -> None:
    """Write ``doc`` compactly, encoding its long Rows values in shares (see print_json)."""
    chunks = [b"{"]
    for i, (key, value) in enumerate(doc.items()):
        chunks.append((b"" if i == 0 else b",") + dumps(key) + b":")
        if not isinstance(value, Rows):
            chunks.append(dumps(value))
            continue
        parts = [part for part in _encode_shares(value) if part]
        chunks.append(b"[" + b",".join(parts) + b"]")
    chunks.append(b"}\n")
    _write_bytes(b"".join(chunks))


def _encode_shares(rows: Rows) -> list[bytes]:
    """The rows encoded without their brackets, in order, as consecutive shares."""
    n = len(rows)
    big = n >= ORJSON_ROWS

    def encode(start: int, stop: int) -> bytes:
        return dumps(rows.dicts(start, stop), big=big)[1:-1]

    shares = min(os.cpu_count() or 1, 4, max(1, n // (PARALLEL_ROWS // 2)))
    if n < PARALLEL_ROWS or shares < 2:
        return [encode(0, n)]
    from ..kernel.forked import Forked

    bounds = [n * i // shares for i in range(shares + 1)]
    children: list[Forked] = []   # shares 1..
    try:
        for k in range(1, shares):
            children.append(Forked(lambda k=k: encode(bounds[k], bounds[k + 1]), "nsctl-json"))
        parts = [encode(bounds[0], bounds[1])]
        for k, child in enumerate(children, start=1):
            data = child.result()
            # A child that failed: encode its share here instead.
            parts.append(data if data is not None else encode(bounds[k], bounds[k + 1]))
        return parts
    finally:
        for child in children:   # interrupted: don't leave a child behind
            child.abandon()


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
