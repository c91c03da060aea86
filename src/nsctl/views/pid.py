"""PID namespace: level, init and process count (what :mod:`nsctl.query.pidmap` knows)."""
from __future__ import annotations

from .base import Context


def view(ctx: Context) -> dict:
    from ..query.pidmap import pid_namespaces

    info = pid_namespaces(ctx.snap)[ctx.ns.ino]
    init = ctx.snap.processes.get(info.init) if info.init is not None else None
    return {
        "level": info.level,
        "init": info.init,
        "init_comm": init.comm if init is not None else None,
        "status": info.status,
        "processes": len(info.pids),
    }
