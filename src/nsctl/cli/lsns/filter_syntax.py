"""The syntax of ``lsns -Q`` filters: libsmartcols filter expressions (scols-filter(5)).

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

Parsing is a small recursive-descent (precedence-climbing) parser; nothing
is ever ``eval()``'d.  What an expression means is :mod:`.filter`'s concern.
"""
from __future__ import annotations

import re

from ...kernel.errors import NsctlError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from typing import TypeAlias

    Node: TypeAlias = "Param | Expr"
    #: a literal's or a cell's value (None: an empty cell)
    Scalar: TypeAlias = "str | int | float | bool | None"


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

    def __init__(self, kind: str, text: str, pos: int, value: Scalar = None) -> None:
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

    def __init__(self, type: str | None, value: Scalar = None, column: str | None = None
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
_PRECEDENCE = dict.fromkeys(_LOGIC, 1) | dict.fromkeys(_COMPARE, 2)
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


def parse_tree(text: str) -> Node:
    """The syntax tree of an expression; FilterError saying where it goes wrong."""
    return _Parser(tokenize(text)).parse()
