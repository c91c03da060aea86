"""argparse as nsctl's commands build it, without a costly first step.

argparse builds a help formatter for every ``add_argument`` (to check the
option's metavar), and the formatter asks shutil for the terminal's width:
importing shutil (and with it bz2, lzma and fnmatch) is a cost every command
would pay.  This formatter asks the same question of os directly.
"""
from __future__ import annotations

import argparse

from .cells import terminal_width


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, with the width found without shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_width() - 2 if width is None else width)


def command_parser(**kwargs) -> argparse.ArgumentParser:
    """``argparse.ArgumentParser(**kwargs)`` with :class:`HelpFormatter`."""
    kwargs.setdefault("formatter_class", HelpFormatter)
    return argparse.ArgumentParser(**kwargs)
