"""Text as a terminal shows it: the cells it takes, cutting it to a width, and
escaping what must not reach a terminal raw (util-linux's mbs_* rules, which
lsns follows: control characters and bytes that are not UTF-8 as \\xNN).

Shared by nsctl lsns's libsmartcols-compatible tables and nsctl's own output.
"""
from __future__ import annotations


def terminal_width(default: int = 80) -> int:
    """The terminal's columns as shutil.get_terminal_size() tells them (COLUMNS first,
    then stdout's terminal, else ``default``), without importing shutil (see
    :mod:`nsctl.cli.args`)."""
    import os
    import sys

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            if sys.__stdout__ is not None:   # None: started without a stdout
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else default


_WIDTHS: dict[str, int] = {}


def char_width(ch: str) -> int:
    w = _WIDTHS.get(ch)
    if w is None:
        import unicodedata

        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            w = 0
        else:
            w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        _WIDTHS[ch] = w
    return w


def cell_width(s: str) -> int:
    """Terminal cells that ``s`` takes (wide characters 2, combining 0)."""
    if s.isascii():
        return len(s)
    return sum(1 if ch < "\x80" else char_width(ch) for ch in s)


def truncate(s: str, width: int) -> str:
    if s.isascii():
        return s[:width]
    out, w = [], 0
    for ch in s:
        cw = 1 if ch < "\x80" else char_width(ch)
        if w + cw > width:
            break
        out.append(ch)
        w += cw
    return "".join(out)


def _bytes_of(ch: str) -> bytes:
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:        # a byte that was not UTF-8 (surrogateescape)
        return bytes([o - 0xDC00])
    return ch.encode("utf-8", "surrogatepass")


def safe(s: str, utf8: bool = True, keep: str = "") -> str:
    """Table-safe text: control and undecodable bytes as \\xNN (mbs_safe_encode)."""
    if s.isascii() and s.isprintable() and "\\x" not in s:
        return s
    out = []
    for i, ch in enumerate(s):
        o = ord(ch)
        if ch in keep:
            out.append(ch)
        elif ch == "\\" and s[i + 1:i + 2] == "x":
            out.append("\\x5c")
        elif o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or 0xD800 <= o <= 0xDFFF \
                or (o > 0x7F and not utf8):
            out.append("".join(f"\\x{b:02x}" for b in _bytes_of(ch)))
        else:
            out.append(ch)
    return "".join(out)


def nonblank(s: str) -> str:
    """Raw-output text: blanks, backslashes and non-printable bytes as \\xNN."""
    if s.isascii() and s.isprintable() and " " not in s and "\\" not in s:
        return s
    out = []
    for ch in s:
        o = ord(ch)
        if 0x21 <= o <= 0x7E and ch != "\\":
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in _bytes_of(ch)))
    return "".join(out)
