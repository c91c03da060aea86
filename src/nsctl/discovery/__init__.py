"""Discovery: find every namespace on the host and what holds it.

``discover()`` is the library entry point; it prints nothing and returns a
:class:`~nsctl.model.Snapshot`.  The engine (:mod:`nsctl.discovery.engine`)
runs the sources of its list :data:`SOURCES` over a scan
(:mod:`nsctl.discovery.scan`).
"""
from __future__ import annotations

from ..model import Snapshot
from .engine import SOURCES, run, run_scan
from .scan import Memo, Options


def discover(options: Options | None = None, **switches: bool) -> Snapshot:
    """Scan the live host.  ``switches`` override fields of :class:`Options`,
    e.g. ``discover(threads=True)``."""
    opts = options or Options()
    for name, value in switches.items():
        if not hasattr(opts, name):
            raise TypeError(f"unknown discovery option {name!r}")
        setattr(opts, name, value)
    return run(opts)


def rescan(memo: Memo | None, dirty: set[int] | None = None, options: Options | None = None,
           settled: bool = True) -> tuple[Snapshot, Memo, bool]:
    """An incremental scan for watchers: read afresh the processes in ``dirty`` (and
    any the memo lacks), take the rest over from ``memo`` (None: a full scan).
    Returns the snapshot, the memo for the next call, and whether everything could
    be taken over (False: the caller should scan fully soon).  ``settled``: nothing
    but the processes in ``dirty`` can have changed, so when none of them is there to
    read the memo's own snapshot is returned (False: the container engines have news,
    which the passes after the reads ask for)."""
    scan = run_scan(options or Options(), memo, dirty, settled)
    return scan.snap, scan.record, not scan.stale


__all__ = ["discover", "rescan", "Memo", "Options", "SOURCES"]
