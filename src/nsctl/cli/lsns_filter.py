"""The ``lsns -Q`` filter language: libsmartcols filter expressions (scols-filter(5)).

Grammar, as libsmartcols parses it::

    expr  := param | '(' expr ')' | NOT expr | expr BINOP expr
    param := integer | float | string | true | false | holder (a column name)

Two precedence levels, both left-associative: ``and``/``or`` (equal to each
other, so ``a or b and c`` is ``(a or b) and c``) below the comparisons
``== != < <= > >= =~ !~`` and the prefix ``not``, which binds to a single
operand (``not A == B`` is ``(not A) == B``).  Operator spellings:
``and AND &&``, ``or OR ||``, ``not NOT !``, ``eq EQ ==``, ``ne NE !=``,
``lt LT <``, ``le LE <=``, ``gt GT >``, ``ge GE >=``; ``=~``/``!~`` take a
POSIX extended regular expression in a string.  Integers may carry a size
suffix (``K M G T P E Z Y``, optionally ``iB``; powers of 1024).

Evaluation follows libsmartcols too: a column holder has the type of its
column (number or string); a comparison is done in the type of its literal
side when one side is a column and the other a literal (float wins over
number); an empty cell makes number comparisons false and compares as "less
than anything" among strings; an expression used as a value is a boolean.

Parsing is a small recursive-descent (precedence-climbing) parser; nothing
is ever ``eval()``'d.
"""
from __future__ import annotations

import re

from ..kernel.errors import NsctlError

TYPE_CHECKING = False  # typing is for type checkers only (import cost)

if TYPE_CHECKING:
    from typing import Callable, Union

    Node = Union["Param", "Expr"]
    #: fetch(column) -> the cell text of that column for the line tested (None: empty)
    Fetch = Callable[[str], "str | None"]
    #: resolve(name as written) -> (column name, "number" | "string"), None if unknown
    Resolve = Callable[[str], "tuple[str, str] | None"]


class FilterError(NsctlError):
    """A filter that cannot be parsed, names an unknown column, or cannot be applied."""


# --- tokens ------------------------------------------------------------------

_KEYWORDS = {
    "and": "AND", "AND": "AND", "&&": "AND",
    "or": "OR", "OR": "OR", "||": "OR",
    "!": "NOT", "not": "NOT", "NOT": "NOT",
    "eq": "EQ", "EQ": "EQ", "==": "EQ",
    "ne": "NE", "NE": "NE", "!=": "NE",
    "le": "LE", "LE": "LE", "<=": "LE",
    "lt": "LT", "LT": "LT", "<": "LT",
    "ge": "GE", "GE": "GE", ">=": "GE",
    "gt": "GT", "GT": "GT", ">": "GT",
    "=~": "REG", "!~": "NREG",
    "false": "FALSE", "FALSE": "FALSE", "true": "TRUE", "TRUE": "TRUE",
}
# Longest match wins, keywords before names on a tie (as flex does).
_TOKEN = re.compile(r"""
    (?P<blank>[ \t\n]+)
  | (?P<float>[0-9]+\.[0-9]+)
  | (?P<sized>[0-9]+[KMGTPEZY](?:iB)?)
  | (?P<int>[0-9]+)
  | (?P<word>[a-zA-Z][a-zA-Z_.%:/\-0-9]*)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<op>&&|\|\||==|!=|<=|>=|=~|!~|[()!<>'])
""", re.VERBOSE)
_SUFFIX_POWER = {s: i + 1 for i, s in enumerate("KMGTPEZY")}
U64_MAX = (1 << 64) - 1


class Token:
    __slots__ = ("kind", "text", "pos", "value")

    def __init__(self, kind: str, text: str, pos: int, value: object = None) -> None:
        self.kind = kind      # AND OR NOT EQ ... NUMBER FLOAT STRING HOLDER TRUE FALSE ( ) ' END
        self.text = text
        self.pos = pos
        self.value = value


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterError(f"syntax error, unexpected character {text[pos]!r}")
        kind = m.lastgroup
        word = m.group()
        if kind == "blank":
            pass
        elif kind == "float":
            out.append(Token("FLOAT", word, pos, float(word)))
        elif kind == "sized":
            digits = word.rstrip("iB")[:-1]
            value = int(digits) * 1024 ** _SUFFIX_POWER[word.rstrip("iB")[-1]]
            if value > U64_MAX:
                raise FilterError(f'"{word}" number too large')
            out.append(Token("NUMBER", word, pos, value))
        elif kind == "int":
            out.append(Token("NUMBER", word, pos, min(int(word), U64_MAX)))
        elif kind == "word":
            out.append(Token(_KEYWORDS.get(word, "HOLDER"), word, pos, word))
        elif kind == "string":
            out.append(Token("STRING", word, pos, word[1:-1].strip()))
        else:
            out.append(Token(_KEYWORDS.get(word, word), word, pos))
        pos = m.end()
    out.append(Token("END", "", pos))
    return out


# --- syntax tree ---------------------------------------------------------------

STRING, NUMBER, FLOAT, BOOLEAN = "string", "number", "float", "boolean"


class Param:
    """A literal or a column holder (``column`` set; type bound later)."""

    __slots__ = ("type", "value", "column", "regex")

    def __init__(self, type: str | None, value: object = None, column: str | None = None
                 ) -> None:
        self.type = type
        self.value = value
        self.column = column           # as written in the expression, then as bound
        self.regex: re.Pattern[str] | None = None

    @property
    def is_holder(self) -> bool:
        return self.column is not None


class Expr:
    __slots__ = ("op", "left", "right")

    def __init__(self, op: str, left: Node | None, right: Node) -> None:
        self.op = op                   # AND OR NOT EQ NE LT LE GT GE REG NREG
        self.left = left
        self.right = right

_LOGIC = ("AND", "OR")
_COMPARE = ("EQ", "NE", "LT", "LE", "GT", "GE", "REG", "NREG")
_PRECEDENCE = {op: 1 for op in _LOGIC} | {op: 2 for op in _COMPARE}
_NOT_PRECEDENCE = 2
_NAMES = {"AND": "'and'", "OR": "'or'", "NOT": "'not'", "EQ": "'=='", "NE": "'!='",
          "LT": "'<'", "LE": "'<='", "GT": "'>'", "GE": "'>='", "REG": "'=~'", "NREG": "'!~'",
          "END": "end of expression"}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def unexpected(self, expecting: str | None = None) -> FilterError:
        tok = self.tok
        what = _NAMES.get(tok.kind) or repr(tok.text)
        msg = f"syntax error, unexpected {what}"
        if expecting:
            msg += f", expecting {expecting}"
        return FilterError(msg)

    def parse(self) -> Node:
        node = self.expr(1)
        if self.tok.kind != "END":
            raise self.unexpected()
        return node

    def expr(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            op = self.tok.kind
            prec = _PRECEDENCE.get(op)
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + 1)
            if op in ("REG", "NREG"):
                right = _compile_regex(right)
            left = Expr(op, left, right)

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind == "NOT":
            self.take()
            return Expr("NOT", None, self.expr(_NOT_PRECEDENCE + 1))
        if tok.kind == "(":
            self.take()
            node = self.expr(1)
            if self.tok.kind != ")":
                raise self.unexpected("')'")
            self.take()
            return node
        self.take()
        if tok.kind == "NUMBER":
            return Param(NUMBER, tok.value)
        if tok.kind == "FLOAT":
            return Param(FLOAT, tok.value)
        if tok.kind == "STRING":
            return Param(STRING, tok.value)
        if tok.kind in ("TRUE", "FALSE"):
            return Param(BOOLEAN, tok.kind == "TRUE")
        if tok.kind == "HOLDER":
            return Param(None, None, column=tok.text)
        self.i -= 1
        raise self.unexpected()


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f", "print": r" -~", "graph": r"!-~",
}


def _compile_regex(node: Node) -> Param:
    if not isinstance(node, Param) or node.type != STRING:
        raise FilterError("the right side of =~ and !~ must be a string (a regular expression)")
    pattern = re.sub(r"\[:([a-z]+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)),
                     str(node.value))
    try:
        node.regex = re.compile(pattern)
    except re.error as exc:
        raise FilterError(f"invalid regular expression {node.value!r}: {exc}") from None
    return node


# --- the filter ----------------------------------------------------------------

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
            if p.column not in seen:
                seen.append(p.column)
        return seen

    def bind(self, resolve: Resolve) -> list[str]:
        """Give each holder its column's name and type; returns the column names used.

        Raises FilterError naming every unknown column."""
        unknown: list[str] = []
        used: list[str] = []
        for p in self.holders:
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
        root = _Parser(tokenize(text)).parse()
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

    def __init__(self, type: str, value: object, empty: bool = False) -> None:
        self.type = type
        self.value = value       # str | None, int, float or bool
        self.empty = empty


def _fetch_holder(p: Param, fetch: Fetch) -> _Value:
    """A column's cell as the column's type: text, trimmed, then converted."""
    data = fetch(p.column)
    if data is None or data == "":
        v = _Value(STRING, None, empty=True)
    else:
        v = _Value(STRING, data.strip())
    return _cast(v, p.type or STRING, p.column)


def _literal(p: Param) -> _Value:
    return _Value(p.type or STRING, p.value)


def _cast(v: _Value, to: str, what: str | None = None) -> _Value:
    if v.type == to:
        return v
    x = v.value
    if v.type == STRING:
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
        if to == BOOLEAN:
            ok = bool(x) and (x.lower() in ("1", "true") or x[:1] in ("y", "Y"))
            return _Value(BOOLEAN, ok, v.empty)
    if v.type == NUMBER:
        # A converted copy of a number is never "empty" in libsmartcols.
        if to == STRING:
            return _Value(STRING, str(x))
        if to == FLOAT:
            return _Value(FLOAT, float(x))
        if to == BOOLEAN:
            return _Value(BOOLEAN, x > 0)
    if v.type == FLOAT:
        if to == STRING:
            return _Value(STRING, f"{x:g}")
        if to == NUMBER:
            return _Value(NUMBER, int(x))
        if to == BOOLEAN:
            return _Value(BOOLEAN, x > 0.0)
    if v.type == BOOLEAN:
        if to == STRING:
            return _Value(STRING, "true" if x else "false")
        if to == NUMBER:
            return _Value(NUMBER, 1 if x else 0)
        if to == FLOAT:
            return _Value(FLOAT, 1.0 if x else 0.0)
    raise FilterError(f"failed to apply filter: cannot compare {v.type} with {to}")


def _node_type(node: Node) -> str:
    if isinstance(node, Expr):
        return BOOLEAN
    return node.type or STRING


def _compare_type(e: Expr) -> str:
    left, right = _node_type(e.left), _node_type(e.right)
    if left == right:
        return left
    lh = isinstance(e.left, Param) and e.left.is_holder
    rh = isinstance(e.right, Param) and e.right.is_holder
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
    if op == "AND":
        return _eval(node.left, fetch) and _eval(node.right, fetch)
    if op == "OR":
        return _eval(node.left, fetch) or _eval(node.right, fetch)
    if op == "NOT":
        return not _eval(node.right, fetch)
    if op in ("REG", "NREG"):
        kind = _compare_type(node)
        left = _operand(node.left, kind, fetch)
        text = left.value if left.type == STRING else _cast(left, STRING).value
        hit = node.right.regex.search(text or "") is not None
        return hit if op == "REG" else not hit
    kind = _compare_type(node)
    left = _operand(node.left, kind, fetch)
    right = _operand(node.right, kind, fetch)
    if kind != STRING and (left.empty or right.empty):
        return False
    a, b = left.value, right.value
    if kind == STRING:
        # NULL (an empty cell) sorts before every string, equal only to NULL.
        ka = (0, "") if a is None else (1, a)
        kb = (0, "") if b is None else (1, b)
        a, b = ka, kb
    return {"EQ": a == b, "NE": a != b, "LT": a < b, "LE": a <= b,
            "GT": a > b, "GE": a >= b}[op]
