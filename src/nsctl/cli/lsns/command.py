"""``nsctl lsns``: the command, in lsns.c's three passes.

Options -> a run configuration (:mod:`.options`); a snapshot (live, or read
with --from) -> rows in lsns's order, nested by the tree mode (:mod:`.rows`);
the table rendered as text, raw or JSON (:mod:`.layout`).
"""
from __future__ import annotations

import sys

from ...kernel.errors import NsctlError
from .layout import Style, render
from .options import ERR_PROG, UsageError, parse_args
from .rows import Builder, Source, build_rows, make_table

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from .options import Config


def run(cfg: Config, out=None) -> int:
    import nsctl

    out = out or sys.stdout
    if cfg.source is not None:
        from ...documents.snapshot import load

        snap = load(cfg.source)
    else:
        snap = nsctl.discover()
    rows = build_rows(cfg, snap)
    table = make_table(cfg)
    src = Source(snap, "," if cfg.no_wrap else "\n")
    try:
        builder = Builder(cfg, snap, rows, table, src)
        if cfg.ns:
            row = rows.get(cfg.ns)
            if row is None:
                raise UsageError(f"not found namespace: {cfg.ns}")
            builder.show_processes(row)
        else:
            builder.show_namespaces()
        text = render(table, Style.detect())
    finally:
        src.close()
    out.write(text)
    out.flush()
    # lsns says nothing about processes it cannot read: scripts that read both streams
    # see lsns's output only, unless asked.
    problems = [p for p in snap.problems if p.reason != "vanished"] if cfg.warn_partial else []
    if problems:
        counts: dict[str, int] = {}
        for p in problems:
            counts[p.reason] = counts.get(p.reason, 0) + 1
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        print(f"{ERR_PROG}: partial result: some processes could not be read ({detail})",
              file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    try:
        got = parse_args(argv)
        if isinstance(got, str):
            sys.stdout.write(got)
            return 0
        return run(got)
    except UsageError as exc:
        msg = f"{ERR_PROG}: {exc}"
        if str(exc).startswith(("unrecognized option", "invalid option", "option ")):
            msg += f"\nTry '{ERR_PROG} --help' for more information."   # as getopt errors
        print(msg, file=sys.stderr)
        return 1
    except NsctlError as exc:
        print(f"{ERR_PROG}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise                     # the caller silences a reader that went away
    except OSError as exc:
        print(f"{ERR_PROG}: {exc.strerror or exc}", file=sys.stderr)
        return 1
