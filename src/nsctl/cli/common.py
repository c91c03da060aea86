"""What the reading commands share: discovery switches, the partial-result warning,
splitting off a command."""
from __future__ import annotations

import os
import sys

from ..kernel.errors import DENIED, ENGINE, REASONS, VANISHED, NsctlError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    import argparse

    from ..model import Snapshot


class UsageError(NsctlError):
    """Bad command-line input (unknown column, option, ...): exit status 2, as argparse
    and util-linux give it."""

    exit_status = 2


def add_version(parser: argparse.ArgumentParser, prog: str) -> None:
    """``--version``, as every command takes it."""
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")


def add_discovery_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", action="store_true",
                        help="also read every thread (finds namespaces only a thread is in)")
    parser.add_argument("--from", dest="from_file", metavar="FILE",
                        help="read a snapshot (nsctl snapshot -o FILE) instead of the live host")


def discover_from_args(args: argparse.Namespace) -> Snapshot:
    """The live host, or the snapshot named by --from."""
    source = getattr(args, "from_file", None)
    if source is not None:
        from ..documents.snapshot import load

        snap = load(source)
    else:
        from ..discovery import discover

        snap = discover(threads=getattr(args, "threads", False))
    warn_partial(snap)
    return snap


def warn_partial(snap: Snapshot, prog: str = "nsctl") -> None:
    """One stderr line when something could not be seen (processes that merely
    exited during the scan are not a gap in the result and are not reported)."""
    for p in snap.problems:
        if p.reason == ENGINE:   # its own line: the names are missing, not namespaces
            from .cells import safe

            print(f"{prog}: {safe(p.what)} (its containers show by id)", file=sys.stderr)
    gaps = [p for p in snap.problems if p.reason not in (VANISHED, ENGINE)]
    if not gaps:
        return
    by_reason: dict[str, list[str]] = {}
    for p in gaps:
        by_reason.setdefault(p.reason, []).append(f"pid {p.pid}" if p.pid is not None else p.what)
    parts = []
    for reason, whats in by_reason.items():
        label = REASONS.get(reason, reason)
        shown = ", ".join(whats[:5]) + (f" and {len(whats) - 5} more" if len(whats) > 5 else "")
        parts.append(f"{label}: {shown}")
    hint = "; run as root to see them" if DENIED in by_reason and os.geteuid() != 0 else ""
    print(f"{prog}: partial result, {len(gaps)} item(s) not read ({'; '.join(parts)}){hint}",
          file=sys.stderr)


def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Options before ``--``, the command after it."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []
