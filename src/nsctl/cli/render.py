"""Rendering: aligned tables and trees, coloured on a terminal, plain when piped.

Text a process chose is shown :func:`printable`.  On a terminal, columns are
measured in cells (nsctl.cli.cells: wide characters take two) and styles are
plain SGR escape codes (see _Terminal).
"""
from __future__ import annotations

import os
import sys

from .cells import cell_width, safe, terminal_width, truncate

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Generic as _Generic
    from typing import TypeVar

    Item = TypeVar("Item")
else:
    class _Generic:
        """``Rows`` is generic over its item type for the type checker only: at run
        time ``_Generic[...]`` is this plain base, and ``typing`` is not imported."""

        __slots__ = ()

        def __class_getitem__(cls, _item: object) -> type:
            return cls


def printable(text: str) -> str:
    """``text`` safe to show a person: control characters (which could drive their
    terminal: a process can name itself anything) and bytes that were not UTF-8
    (kept by surrogateescape, which a strict stdout would refuse) written as
    ``\\xNN``, as lsns writes them."""
    return safe(text)


def on_terminal() -> bool:
    """Output goes to a terminal that draws (not TERM=dumb): Unicode guides, rules,
    and tables fitted to its width."""
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def in_colour() -> bool:
    """On a terminal and colour not turned off (NO_COLOR, https://no-color.org)."""
    return on_terminal() and not os.environ.get("NO_COLOR")


def separator() -> str:
    """Between the parts of a note: a middle dot on a terminal, plain ASCII when piped
    (text that scripts read has no decoration the data does not have)."""
    return " · " if on_terminal() else " | "


class Rows(_Generic["Item"]):
    """A long list in a JSON document, kept as objects until it is encoded.

    ``print_json`` converts them (``convert(item)`` -> dict) while encoding, so
    that on a big host two processes can share that work (see ``print_json``).
    ``text(item)``, where given, writes an item's compact JSON text itself (the
    text the encoder would write for its dict), or returns None to have it
    converted and encoded.
    """

    __slots__ = ("items", "convert", "text")

    def __init__(self, items: Sequence[Item], convert: Callable[[Item], object],
                 text: Callable[[Item], str | None] | None = None) -> None:
        self.items = items
        self.convert = convert
        self.text = text

    def __len__(self) -> int:
        return len(self.items)

    def dicts(self, start: int = 0, stop: int | None = None) -> list[object]:
        convert = self.convert
        return [convert(x) for x in self.items[start:stop]]


# From this many rows on, a forked child converts and encodes a share of them: below
# it, the fork costs more than the share saves (bench/README.md, "Costs behind
# thresholds in the code").
PARALLEL_ROWS = 4000
# From this many rows on (converted to dicts), orjson encodes them: it is several
# times as fast as the standard library's encoder, but its import costs more than it
# saves below this (same section).
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

    indent = 2 if pretty else None
    separators = (",", ": ") if pretty else (",", ":")
    try:
        return json.dumps(doc, ensure_ascii=False, indent=indent, check_circular=False,
                          separators=separators).encode()
    except UnicodeEncodeError:
        return json.dumps(doc, indent=indent, check_circular=False,
                          separators=separators).encode()


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


def print_lines(lines: list[str]) -> None:
    """Lines of text, each shown :func:`printable`."""
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))


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


def _encode_shares(rows: Rows[Item]) -> list[bytes]:
    """The rows encoded without their brackets, in order, as consecutive shares."""
    n = len(rows)
    big = n >= ORJSON_ROWS

    def encode(start: int, stop: int) -> bytes:
        if rows.text is None:
            return dumps(rows.dicts(start, stop), big=big)[1:-1]
        return _encode_rows(rows, start, stop)

    shares = min(os.cpu_count() or 1, 4, max(1, n // (PARALLEL_ROWS // 2)))
    if n < PARALLEL_ROWS or shares < 2:
        return [encode(0, n)]
    from functools import partial

    from ..kernel.forked import Forked

    bounds = [n * i // shares for i in range(shares + 1)]
    children: list[Forked] = []   # shares 1..
    try:
        for k in range(1, shares):
            children.append(Forked(partial(encode, bounds[k], bounds[k + 1]), "nsctl-json"))
        parts = [encode(bounds[0], bounds[1])]
        for k, child in enumerate(children, start=1):
            data = child.result()
            # A child that failed: encode its share here instead.
            parts.append(data if data is not None else encode(bounds[k], bounds[k + 1]))
        return parts
    finally:
        for child in children:   # interrupted: don't leave a child behind
            child.abandon()


def _encode_rows(rows: Rows[Item], start: int, stop: int) -> bytes:
    """Rows start..stop as the members of a JSON list (no brackets), in order: the
    text ``rows.text`` writes where it writes one, the other rows converted and
    encoded together in runs (with orjson for a run of ORJSON_ROWS or more)."""
    text, convert = rows.text, rows.convert
    assert text is not None  # the caller encodes rows without a text function itself
    out: list[bytes] = []
    written: list[str] = []    # texts (ASCII: numbers and nsctl's names) not yet joined
    pending: list[object] = []  # dicts not yet encoded
    for item in rows.items[start:stop]:
        got = text(item)
        if got is None:
            if written:
                out.append(",".join(written).encode())
                written = []
            pending.append(convert(item))
        else:
            if pending:
                out.append(dumps(pending, big=len(pending) >= ORJSON_ROWS)[1:-1])
                pending = []
            written.append(got)
    if written:
        out.append(",".join(written).encode())
    if pending:
        out.append(dumps(pending, big=len(pending) >= ORJSON_ROWS)[1:-1])
    return b",".join(out)


def print_table(headers: list[str], rows: list[list[str]], right: set[int],
                styles: dict[int, str] | None = None, no_headings: bool = False,
                cut_first: Sequence[int] = ()) -> None:
    """An aligned table; the last column is never padded (it may be long).

    On a terminal: styled, the header in bold over a rule, two spaces between
    columns, and every row fitted to the terminal's width: the last column keeps at
    least a third of it, the columns ``cut_first`` give way first (in that order),
    then the other left-aligned ones, each down to its header's width; cut cells end
    in an ellipsis.  Right-aligned (number) columns are never cut.  Cells are shown
    :func:`printable`."""
    rows = [[printable(cell) for cell in row] for row in rows]
    if on_terminal():
        _terminal_table(headers, rows, right, styles or {}, no_headings, cut_first)
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


# Select Graphic Rendition codes (ECMA-48) of the style words nsctl uses.
_SGR = {"bold": "1", "dim": "2", "italic": "3", "underline": "4", "reverse": "7",
        "black": "30", "red": "31", "green": "32", "yellow": "33", "blue": "34",
        "magenta": "35", "cyan": "36", "white": "37"}


class _Terminal:
    """What drawing on a terminal needs: its width, and each style's escape codes.

    Layout is done here, not by a library's table and tree widgets: rich's measure
    and render every cell as an object of its own, 54 s (table) and 10 s (tree) for
    the 60,000 namespaces of the relationships interface's worst case, and
    importing rich's console
    alone took ~0.1 s here.
    """

    def __init__(self) -> None:
        self.width = terminal_width()
        self.colour = in_colour()
        self._codes: dict[str, tuple[str, str]] = {}

    def paint(self, text: str, style: str | None) -> str:
        if not style or not text or not self.colour:
            return text
        codes = self._codes.get(style)
        if codes is None:   # ("bold cyan" -> ESC[1;36m)
            on = ";".join(_SGR[word] for word in style.split())
            codes = self._codes[style] = (f"\x1b[{on}m", "\x1b[0m")
        return codes[0] + text + codes[1]

    @staticmethod
    def cut(text: str, room: int) -> str:
        """``text`` in at most ``room`` columns, an ellipsis marking the cut."""
        if cell_width(text) <= room:
            return text
        return truncate(text, room - 1) + "…" if room > 0 else ""


def fit_widths(widths: list[int], minimum: list[int], right: set[int], width: int,
               cut_first: Sequence[int] = ()) -> list[int]:
    """Column widths that fit ``width`` (two spaces between columns) where they can:
    the last column keeps up to a third of ``width``; to make room, the columns
    ``cut_first``, then the other left-aligned ones but the last, widest first, give
    way down to their ``minimum``."""
    widths = list(widths)
    last = len(widths) - 1
    want_last = min(widths[last], max(minimum[last], width // 3))
    over = sum(widths[:last]) + 2 * last + want_last - width
    order = [i for i in cut_first if i != last and i not in right]
    rest = sorted((i for i in range(last) if i not in right and i not in order),
                  key=lambda i: -widths[i])
    for i in order + rest:
        if over <= 0:
            break
        give = min(over, widths[i] - minimum[i])
        if give > 0:
            widths[i] -= give
            over -= give
    return widths


def _terminal_table(headers: list[str], rows: list[list[str]], right: set[int],
                    styles: dict[int, str], no_headings: bool,
                    cut_first: Sequence[int] = ()) -> None:
    term = _Terminal()
    cells = cell_width
    widths = [cells(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            n = cells(cell)
            if n > widths[i]:
                widths[i] = n
    full = list(widths)
    last = len(headers) - 1
    widths = fit_widths(widths, [cells(h) for h in headers], right, term.width, cut_first)
    before_last = sum(widths[:last]) + 2 * last
    room = max(term.width - before_last, cells(headers[last]))
    widths[last] = min(widths[last], room)
    cut = {i for i in range(last) if widths[i] < full[i]}

    def line(row: list[str], style_of) -> str:
        out = []
        for i, text in enumerate(row):
            cell = term.cut(text, room) if i == last else \
                term.cut(text, widths[i]) if i in cut else text
            pad = " " * (widths[i] - cells(cell)) if i != last or i in right else ""
            painted = term.paint(cell, style_of(i))
            out.append(pad + painted if i in right else painted + pad)
        return "  ".join(out)

    lines = []
    if not no_headings:
        lines.append(line(headers, lambda i: "bold"))
        lines.append(term.paint("─" * (before_last + widths[last]), "dim"))
    lines.extend(line(row, styles.get) for row in rows)
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))


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
    """Each root and its descendants, one per line under guides: Unicode and
    styled on a terminal, ASCII when piped."""
    term = _Terminal() if on_terminal() else None
    if term is not None:
        guides = (term.paint("├── ", "dim"), term.paint("└── ", "dim"),
                  term.paint("│   ", "dim"), "    ")
    else:
        guides = ("|-- ", "`-- ", "|   ", "    ")
    branch, last_branch, through, after_last = guides
    lines: list[str] = []

    def label(node: Node, default_style: str | None) -> str:
        name, note = printable(node.label), printable(node.note)
        if term is None:
            return name + (f"  {note}" if note else "")
        text = term.paint(name, node.style or default_style)
        return text + ("  " + term.paint(note, "dim") if note else "")

    def walk(node: Node, prefix: str) -> None:
        children = node.children
        for i, child in enumerate(children):
            end = i == len(children) - 1
            lines.append(prefix + (last_branch if end else branch) + label(child, None))
            if child.children:
                walk(child, prefix + (after_last if end else through))

    for root in roots:
        lines.append(label(root, "bold"))
        walk(root, "")
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
