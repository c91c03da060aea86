"""The smartcols-like layout of ``nsctl lsns``: one output model, several switches.

A :class:`Table` holds the columns (each with libsmartcols-style flags: right
alignment, truncation, multi-line cells, tree drawing) and the lines, nested
when a column draws the tree.  JSON, raw and no-headings are switches on that
table, as libsmartcols has them; :func:`render` turns it into text the way
libsmartcols does (column widths from content and width hints, truncation to a
terminal's width, tree art, multi-line cells, its JSON layout).  Nothing here
knows about namespaces, and nothing heavy is imported.
"""
from __future__ import annotations

import os

from ..cells import (
    cell_width as _cell_width,
)
from ..cells import (
    nonblank as _nonblank,
)
from ..cells import (
    safe as _safe,
)
from ..cells import (
    truncate as _truncate,
)

# Column flags (libsmartcols' SCOLS_FL_*).
RIGHT = 1      # right-aligned
TRUNC = 2      # may be truncated to fit a terminal
WRAP = 4       # multi-line cell (one bind mount path per line)
TREE = 8       # carries the tree drawing (set per run, never in the column table)

#: A column as printed: (header, flags, width hint, JSON type "number" or "string").
ColumnSpec = tuple[str, int, float, str]


class Line:
    """One line's cells (None: empty) and its place in the tree."""

    __slots__ = ("cells", "parent", "children")

    def __init__(self, cells: list[str | None], parent: Line | None) -> None:
        self.cells = cells
        self.parent = parent
        self.children: list[Line] = []


class Table:
    """What is printed: columns (with this run's flags), lines, roots, and the
    output switches (JSON, raw, no headings)."""

    __slots__ = ("name", "columns", "lines", "roots", "json", "raw", "no_headings")

    def __init__(self, name: str, columns: list[ColumnSpec], *, json: bool = False,
                 raw: bool = False, no_headings: bool = False) -> None:
        self.name = name                  # the JSON document's one key
        self.columns = columns
        self.lines: list[Line] = []       # in the order added
        self.roots: list[Line] = []
        self.json = json
        self.raw = raw
        self.no_headings = no_headings

    @property
    def is_tree(self) -> bool:
        return any(flags & TREE for _n, flags, _w, _j in self.columns)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        (line.parent.children if line.parent else self.roots).append(line)

    def in_print_order(self) -> list[Line]:
        if not self.is_tree:
            return list(self.lines)
        out: list[Line] = []
        stack = list(reversed(self.roots))
        while stack:
            ln = stack.pop()
            out.append(ln)
            stack.extend(reversed(ln.children))
        return out


def utf8_locale() -> bool:
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value:
            v = value.lower()
            return "utf-8" in v or "utf8" in v
    return False


class Style:
    """Where the table goes: UTF-8 tree glyphs or ASCII, a terminal of some width or not."""

    __slots__ = ("utf8", "is_term", "termwidth")

    def __init__(self, utf8: bool, is_term: bool, termwidth: int) -> None:
        self.utf8 = utf8
        self.is_term = is_term
        self.termwidth = termwidth

    @property
    def symbols(self) -> tuple[str, str, str]:
        """(branch, last branch, vertical)."""
        return ("\u251c\u2500", "\u2514\u2500", "\u2502 ") if self.utf8 else ("|-", "`-", "| ")

    @classmethod
    def detect(cls) -> Style:
        is_term = os.isatty(1)
        width = 0
        if is_term:
            try:
                width = os.get_terminal_size(1).columns
            except OSError:
                width = 0
        if width <= 0:
            try:
                width = int(os.environ.get("COLUMNS", "0"))
            except ValueError:
                width = 0
        return cls(utf8_locale(), is_term, width if width > 0 else 80)


def _art(line: Line, sym: tuple[str, str, str]) -> str:
    """Tree drawing before a line's tree cell."""
    if line.parent is None:
        return ""
    parts = [sym[1] if line.parent.children[-1] is line else sym[0]]
    node = line.parent
    while node.parent is not None:
        parts.append("  " if node.parent.children[-1] is node else sym[2])
        node = node.parent
    return "".join(reversed(parts))


def _continuation_art(line: Line, sym: tuple[str, str, str], pending: bool) -> str:
    """Tree drawing of an extra line of a multi-line row."""
    parts = []
    node = line
    while node.parent is not None:
        parts.append("  " if node.parent.children[-1] is node else sym[2])
        node = node.parent
    art = "".join(reversed(parts))
    if line.children and pending:
        art += sym[2]
    return art

def render(table: Table, style: Style) -> str:
    if table.json:
        return _render_json(table)
    if not table.lines:
        return ""
    if table.raw:
        return _render_raw(table, style)
    return _TextLayout(table, style).render()


def _render_raw(table: Table, style: Style) -> str:
    sym = style.symbols
    out = []
    if not table.no_headings:
        out.append(" ".join(_nonblank(name) for name, _f, _w, _j in table.columns))
    for line in table.in_print_order():
        cells = []
        for i, (_n, flags, _w, _j) in enumerate(table.columns):
            text = line.cells[i] or ""
            if flags & TREE:
                text = _art(line, sym) + text
            cells.append(_nonblank(text))
        out.append(" ".join(cells))
    return "".join(s + "\n" for s in out)


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                        "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}"))
        elif 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _JsonWriter:
    """libsmartcols' JSON layout: three-space indent, "},{" between objects."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.indent = 0
        self.after_close = False

    def _name(self, name: str | None) -> None:
        if self.after_close:
            self.parts.append(",\n" if name else ",")
        if name or not self.after_close:
            self.parts.append("   " * self.indent)
        if name:
            self.parts.append(_json_string(name.lower()))

    def open(self, name: str | None, kind: str) -> None:
        self._name(name)
        self.parts.append((": " if name else "") + kind + "\n")
        self.indent += 1
        self.after_close = False

    def close(self, kind: str) -> None:
        self.indent -= 1
        self.parts.append("\n" + "   " * self.indent + kind)
        if kind == "}" and self.indent == 0:
            self.parts.append("\n")
        self.after_close = True

    def value(self, name: str, raw: str) -> None:
        self._name(name)
        self.parts.append(": " + raw)
        self.after_close = True


def _render_json(table: Table) -> str:
    w = _JsonWriter()
    w.open(None, "{")
    w.open(table.name, "[")

    def emit(line: Line, nested: bool) -> None:
        w.open(None, "{")
        for i, (name, _flags, _w, jtype) in enumerate(table.columns):
            data = line.cells[i]
            if not data:
                w.value(name, "null")
            elif jtype == "number":
                w.value(name, data)
            else:
                w.value(name, _json_string(data))
        if nested and line.children:
            w.open("children", "[")
            for child in line.children:
                emit(child, nested)
            w.close("]")
        w.close("}")

    if table.is_tree:
        for root in table.roots:
            emit(root, True)
    else:
        for line in table.lines:
            emit(line, False)
    w.close("]")
    w.close("}")
    return "".join(w.parts)


class _TextLayout:
    """The table as text (not raw): libsmartcols' column widths, then one row at a
    time, with the extra lines of multi-line and overflowing cells."""

    def __init__(self, table: Table, style: Style) -> None:
        self.cols = table.columns
        self.no_headings = table.no_headings
        self.sym = style.symbols
        self.lines = table.in_print_order()
        self.texts, treeart = self._cell_texts(style.utf8)
        self.widths, mins = self._widths()
        hidden = [False] * len(self.cols)
        if style.is_term:
            _fit_to_terminal(self.cols, self.widths, mins, treeart, hidden, style.termwidth)
        self.visible = [i for i in range(len(self.cols)) if not hidden[i]]
        self.last = self.visible[-1] if self.visible else -1

    def _cell_texts(self, utf8: bool) -> tuple[list[list[list[str]]], list[int]]:
        """Cell texts (tree art + safe-encoded data, multi-line cells as chunk
        lists), and the widest tree art of each column."""
        texts: list[list[list[str]]] = []
        treeart = [0] * len(self.cols)
        for line in self.lines:
            row = []
            for i, (_n, flags, _w, _j) in enumerate(self.cols):
                data = _safe(line.cells[i] or "", utf8, "\n" if flags & WRAP else "")
                if flags & TREE:
                    art = _art(line, self.sym)
                    treeart[i] = max(treeart[i], _cell_width(art))
                    data = art + data
                row.append(data.split("\n") if flags & WRAP else [data])
            texts.append(row)
        return texts, treeart

    def _widths(self) -> tuple[list[int], list[int]]:
        """Each column's width and minimum width (libsmartcols' count_column_width)."""
        widths, mins = [], []
        for i, (name, _flags, whint, _j) in enumerate(self.cols):
            wmin = max(_cell_width(name), 1)
            w = max((max(_cell_width(c) for c in row[i]) for row in self.texts), default=0)
            if w < wmin:
                w = wmin
            elif whint >= 1 and w < whint and wmin < whint:
                w = int(whint)
            widths.append(w)
            mins.append(wmin)
        return widths, mins

    def render(self) -> str:
        out: list[str] = []
        if not self.no_headings:
            out.append(self._row([[name] for name, _f, _w, _j in self.cols], None))
        for line, cells in zip(self.lines, self.texts, strict=True):
            out.append(self._row(cells, line))
        return "".join(s + "\n" for s in out)

    def _empty_cell(self, i: int, line: Line | None, pending: bool) -> str:
        s = ""
        if line is not None and self.cols[i][1] & TREE:
            s = _continuation_art(line, self.sym, pending)
        if i == self.last:
            return s
        return s + " " * max(self.widths[i] - _cell_width(s), 0) + " "

    def _cell(self, i: int, data: str) -> tuple[str, bool]:
        """A cell's text and separator, and whether it overflows its width."""
        flags = self.cols[i][1]
        width = self.widths[i]
        n = _cell_width(data)
        if i == self.last and n < width and not flags & RIGHT:
            width = n
        if n > width and flags & TRUNC:
            data = _truncate(data, width)
            n = _cell_width(data)
        s = ""
        if data:
            if flags & RIGHT:
                s += " " * max(width - n, 0)
                n = width
            s += data
        if i == self.last:
            return s, False
        s += " " * max(width - n, 0)
        if n > width and not flags & TRUNC:
            return s, True
        return s + " ", False

    def _row(self, cells: list[list[str]], line: Line | None) -> str:
        """One row: its first line, then the rest of its multi-line cells."""
        buf = []
        pending: dict[int, list[str]] = {}
        for i in self.visible:
            chunks = cells[i]
            if len(chunks) > 1:
                pending[i] = chunks[1:]
            s, overflow = self._cell(i, chunks[0])
            buf.append(s)
            if overflow:
                buf.append("\n")
                for j in self.visible:
                    if j > i:
                        break
                    buf.append(self._empty_cell(j, line, bool(pending)))
        while pending:
            buf.append("\n")
            self._continuation(buf, pending, line)
        return "".join(buf)

    def _continuation(self, buf: list[str], pending: dict[int, list[str]],
                      line: Line | None) -> None:
        """The next line of a row's multi-line cells (``pending``: the chunks left)."""
        for i in self.visible:
            if i in pending:
                chunk = pending[i].pop(0)
                if not pending[i]:
                    del pending[i]
                chunk = _truncate(chunk, self.widths[i])
                if i == self.last:
                    buf.append(chunk)
                else:
                    buf.append(chunk + " " * max(self.widths[i] - _cell_width(chunk), 0) + " ")
            else:
                buf.append(self._empty_cell(i, line, bool(pending)))

def _fit_to_terminal(cols, widths: list[int], mins: list[int], treeart: list[int],
                     hidden: list[bool], termwidth: int) -> None:
    """Shrink truncatable columns until the table fits (libsmartcols' stages)."""
    n = len(cols)
    total = sum(widths) + n - 1
    if total < termwidth:
        if not cols[-1][1] & RIGHT:
            widths[-1] += termwidth - total
        return
    # Stage 1 and 3 concern relative width hints, which no lsns column has.
    while total > termwidth:
        before = total
        for i, (_n, flags, _w, _j) in enumerate(cols):
            if hidden[i] or total <= termwidth:
                continue
            if widths[i] == mins[i] or widths[i] == 0:
                continue
            if flags & TREE and total <= treeart[i]:
                continue
            if flags & TRUNC:
                widths[i] -= 1
                total -= 1
                if widths[i] == 0:
                    hidden[i] = True
        if total == before:
            return


