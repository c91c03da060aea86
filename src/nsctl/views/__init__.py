"""What each namespace sees: one module per type, each ``view(ctx) -> dict``.

``read_view(ns, snap)`` reads the view of one namespace as plain JSON-able
data.  nsctl's own process never enters another namespace: a view that must
be read from inside is read by a forked child that setns()es into it and
sends JSON back (:mod:`nsctl.kernel.enter`); where /proc/PID of a process in
the namespace shows the same, that is read instead.  Namespaces held only by
a bind mount, an fd or a socket are viewed through the fd that
:func:`nsctl.query.handles.open_namespace` reopens.

Errors never escape: a view that cannot be read at all is
``{"type": ..., "error": "..."}``; a part that cannot be read is
``{"error": "..."}`` in place of that part's value.

The modules are imported only when a view of their type is read (the net view
imports pyroute2, which ``nsctl ls`` must never pay for).
"""
from __future__ import annotations

import importlib

from ..model import Namespace, Snapshot
from .base import Context, error_text

#: namespace type -> module under nsctl.views
VIEWS: dict[str, str] = {t: t for t in ("net", "uts", "user", "mnt", "pid", "time", "cgroup",
                                        "ipc")}


def read_view(ns: Namespace, snap: Snapshot) -> dict:
    """The view of ``ns``: ``{"type": ns.type, ...}``, never raising for kernel errors."""
    out: dict = {"type": ns.type}
    module_name = VIEWS.get(ns.type)
    if module_name is None:
        out["error"] = f"no view for {ns.type} namespaces"
        return out
    module = importlib.import_module(f".{module_name}", __package__)
    try:
        with Context(ns, snap) as ctx:
            out.update(module.view(ctx))
    except Exception as exc:  # one line for the user, never a traceback
        out = {"type": ns.type, "error": error_text(exc, f"{ns.label}")}
    return out


__all__ = ["read_view", "VIEWS", "Context"]
