"""The ``lsns -Q`` filter: a parsed expression bound to the columns, and its evaluation.

The syntax is :mod:`.filter_syntax`'s.  Evaluation follows libsmartcols: a
column holder has the type of its column (number or string); a comparison is
done in the type of its literal side when one side is a column and the other a
literal (float wins over number); an empty cell makes number comparisons false
and compares as "less than anything" among strings; an expression used as a
value is a boolean.
"""
from __future__ import annotations

import re

from .filter_syntax import (
    BOOLEAN,
    FLOAT,
    NUMBER,
    STRING,
    U64_MAX,
    Expr,
    FilterError,
    Param,
    parse_tree,
)

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from .filter_syntax import Node, Scalar

    #: what a comparison orders: (0, "") or (1, text) for strings, else a number
    Ordered = TypeVar("Ordered", "tuple[int, str]", float)

    #: fetch(column) -> the cell text of that column for the line tested (None: empty)
    Fetch = Callable[[str], "str | None"]
    #: resolve(name as written) -> (column name, "number" | "string"), None if unknown
    Resolve = Callable[[str], "tuple[str, str] | None"]

__all__ = ["Filter", "FilterError", "parse"]


class Filter:
    """A parsed expression; :meth:`bind` to the columns, then :meth:`matches` lines."""

    __slots__ = ("text", "root", "holders")

    def __init__(self, text: str, root: Node, holders: list[Param]) -> None:
        self.text = text
        self.root = root
        self.holders = holders

    def columns(self) -> list[str]:
        """The column names the expression uses, as written, first use first."""
        seen: list[str] = []
        for p in self.holders:
            assert p.column is not None  # a holder names its column
            if p.column not in seen:
                seen.append(p.column)
        return seen

    def bind(self, resolve: Resolve) -> list[str]:
        """Give each holder its column's name and type; returns the column names used.

        Raises FilterError naming every unknown column."""
        unknown: list[str] = []
        used: list[str] = []
        for p in self.holders:
            assert p.column is not None  # a holder names its column
            got = resolve(p.column)
            if got is None:
                if p.column not in unknown:
                    unknown.append(p.column)
                continue
            p.column, json_type = got
            p.type = NUMBER if json_type == "number" else STRING
            if p.column not in used:
                used.append(p.column)
        if unknown:
            raise FilterError(f"unknown column{'s' if len(unknown) > 1 else ''} in filter: "
                              + ", ".join(unknown))
        return used

    def matches(self, fetch: Fetch) -> bool:
        cache: dict[str, str | None] = {}

        def cached(name: str) -> str | None:
            if name not in cache:
                cache[name] = fetch(name)
            return cache[name]

        return _eval(self.root, cached)


def parse(text: str) -> Filter:
    """Parse a filter expression; FilterError with a one-line reason if it is not one."""
    try:
        root = parse_tree(text)
    except FilterError as exc:
        raise FilterError(f'failed to parse "{text}": {exc}') from None
    holders: list[Param] = []

    def walk(node: Node | None) -> None:
        if isinstance(node, Param):
            if node.is_holder:
                holders.append(node)
        elif isinstance(node, Expr):
            walk(node.left)
            walk(node.right)

    walk(root)
    return Filter(text, root, holders)


# --- evaluation (libsmartcols semantics) ----------------------------------------------

class _Value:
    __slots__ = ("type", "value", "empty")

    def __init__(self, type: str, value: Scalar, empty: bool = False) -> None:
        self.type = type
        self.value = value       # str | None, int, float or bool
        self.empty = empty


def _fetch_holder(p: Param, fetch: Fetch) -> _Value:
    """A column's cell as the column's type: text, trimmed, then converted."""
    assert p.column is not None  # a holder names its column
    data = fetch(p.column)
    if data is None or data == "":
        v = _Value(STRING, None, empty=True)
    else:
        v = _Value(STRING, data.strip())
    return _cast(v, p.type or STRING, p.column)


def _literal(p: Param) -> _Value:
    return _Value(p.type or STRING, p.value)


#: Conversions between value types other than from a cell's text (see _from_string).
_CONVERT: dict[tuple[str, str], Callable[[Any], Scalar]] = {
    (NUMBER, STRING): str,
    (NUMBER, FLOAT): float,
    (NUMBER, BOOLEAN): lambda x: x > 0,
    (FLOAT, STRING): lambda x: f"{x:g}",
    (FLOAT, NUMBER): int,
    (FLOAT, BOOLEAN): lambda x: x > 0.0,
    (BOOLEAN, STRING): lambda x: "true" if x else "false",
    (BOOLEAN, NUMBER): lambda x: 1 if x else 0,
    (BOOLEAN, FLOAT): lambda x: 1.0 if x else 0.0,
}


def _cast(v: _Value, to: str, what: str | None = None) -> _Value:
    if v.type == to:
        return v
    if v.type == STRING and to in (NUMBER, FLOAT, BOOLEAN):
        return _from_string(v, to, what)
    convert = _CONVERT.get((v.type, to))
    if convert is None:
        raise FilterError(f"failed to apply filter: cannot compare {v.type} with {to}")
    # A converted copy of a value is never "empty" in libsmartcols.
    return _Value(to, convert(v.value))


def _from_string(v: _Value, to: str, what: str | None) -> _Value:
    """A text (a cell's, or a string literal) as a number, float or (``to`` is
    neither) boolean; an empty cell stays empty."""
    x = v.value
    assert x is None or isinstance(x, str)  # a STRING value is text or None (empty)
    if to == NUMBER:
        if x is None:
            return _Value(NUMBER, 0, v.empty)
        if not re.fullmatch(r"\s*\+?[0-9]+", x) or int(x) > U64_MAX:
            raise FilterError(f"failed to apply filter: {what or 'value'} {x!r} is not "
                              "a number")
        return _Value(NUMBER, int(x), v.empty)
    if to == FLOAT:
        if x is None:
            return _Value(FLOAT, 0.0, v.empty)
        try:
            return _Value(FLOAT, float(x), v.empty)
        except ValueError:
            raise FilterError(f"failed to apply filter: {what or 'value'} {x!r} is not "
                              "a number") from None
    ok = bool(x and (x.lower() in ("1", "true") or x[:1] in ("y", "Y")))
    return _Value(BOOLEAN, ok, v.empty)


def _node_type(node: Node) -> str:
    if isinstance(node, Expr):
        return BOOLEAN
    return node.type or STRING


def _compare_type(left_node: Node, right_node: Node) -> str:
    left, right = _node_type(left_node), _node_type(right_node)
    if left == right:
        return left
    lh = isinstance(left_node, Param) and left_node.is_holder
    rh = isinstance(right_node, Param) and right_node.is_holder
    kind = right if (lh and not rh) else left
    if kind == NUMBER and FLOAT in (left, right):
        kind = FLOAT
    return kind


def _operand(node: Node, to: str, fetch: Fetch) -> _Value:
    if isinstance(node, Expr):
        return _cast(_Value(BOOLEAN, _eval(node, fetch)), to)
    v = _fetch_holder(node, fetch) if node.is_holder else _literal(node)
    return _cast(v, to, node.column)


def _eval(node: Node, fetch: Fetch) -> bool:
    if isinstance(node, Param):
        v = _fetch_holder(node, fetch) if node.is_holder else _literal(node)
        if v.empty:
            return False
        if v.type == STRING:
            return bool(v.value)
        return bool(v.value)
    op = node.op
    if op == "NOT":
        return not _eval(node.right, fetch)
    left_node = node.left
    assert left_node is not None  # every operator but NOT has a left side
    if op == "AND":
        return _eval(left_node, fetch) and _eval(node.right, fetch)
    if op == "OR":
        return _eval(left_node, fetch) or _eval(node.right, fetch)
    if op in ("REG", "NREG"):
        kind = _compare_type(left_node, node.right)
        left = _operand(left_node, kind, fetch)
        text = left.value if left.type == STRING else _cast(left, STRING).value
        assert text is None or isinstance(text, str)  # a STRING value is text or None
        pattern = node.right
        assert isinstance(pattern, Param) and pattern.regex is not None  # see _compile_regex
        hit = pattern.regex.search(text or "") is not None
        return hit if op == "REG" else not hit
    kind = _compare_type(left_node, node.right)
    left = _operand(left_node, kind, fetch)
    right = _operand(node.right, kind, fetch)
    if kind != STRING and (left.empty or right.empty):
        return False
    a, b = left.value, right.value
    if kind == STRING:
        assert (a is None or isinstance(a, str)) and (b is None or isinstance(b, str))
        # NULL (an empty cell) sorts before every string, equal only to NULL.
        return _compare(op, (0, "") if a is None else (1, a), (0, "") if b is None else (1, b))
    # Numbers, floats and booleans: _cast made both sides one of them, never None.
    assert isinstance(a, (int, float)) and isinstance(b, (int, float))
    return _compare(op, a, b)


def _compare(op: str, a: Ordered, b: Ordered) -> bool:
    return {"EQ": a == b, "NE": a != b, "LT": a < b, "LE": a <= b,
            "GT": a > b, "GE": a >= b}[op]

