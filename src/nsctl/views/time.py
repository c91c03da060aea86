"""Time namespace: its CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets.

/proc/PID/timens_offsets shows the offsets of the process's
*time_for_children* namespace (offsets are written after unshare, before any
process is in it), so it is read of a process whose time_for_children is this
namespace, else of a child that entered it (setns sets both links).
"""
from __future__ import annotations

from ..kernel import procfs
from .base import Context, attempt, failed


def parse_offsets(text: str) -> dict[str, dict[str, int]]:
    """``{"monotonic": {"seconds": s, "nanoseconds": n}, "boottime": {...}}``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = {"seconds": int(parts[1]), "nanoseconds": int(parts[2])}
    return out


def _inside(self_dir: int):
    yield {"offsets": attempt("timens_offsets", procfs.read_text, "timens_offsets", self_dir)}


def view(ctx: Context) -> dict:
    found = ctx.read_proc(("timens_offsets",), "time_for_children")
    if found is not None:
        pid, text = found[0], found[1]["timens_offsets"]
    else:
        pid, text = None, ctx.inside(_inside)[0]["offsets"]
        if failed(text):
            return text
    return {**parse_offsets(text), "seen_from": pid}
