"""Discovery: find every namespace on the host and what holds it.

``discover()`` is the library entry point; it prints nothing and returns a
:class:`~nsctl.model.Snapshot`.  The sources run in the order of
:data:`SOURCES`: per process (links first, then its container from its cgroup,
then the bind mounts of its mount namespace so that fds opened through them
are recognised, then fds, sockets, threads), then the host-wide passes.
"""
from __future__ import annotations

from ..model import Snapshot
from .bindmounts import BindMountSource
from .containers import ContainerSource
from .engine import Memo, Options, run, run_scan
from .fds import FdSource
from .hierarchy import HierarchySource
from .procs import ProcessSource
from .sockets import SocketSource
from .tasks import ThreadSource

SOURCES = [ProcessSource(), ContainerSource(), BindMountSource(), FdSource(), SocketSource(),
           ThreadSource(), HierarchySource()]


def discover(options: Options | None = None, **switches: bool) -> Snapshot:
    """Scan the live host.  ``switches`` override fields of :class:`Options`,
    e.g. ``discover(threads=True)``."""
    opts = options or Options()
    for name, value in switches.items():
        if not hasattr(opts, name):
            raise TypeError(f"unknown discovery option {name!r}")
        setattr(opts, name, value)
    return run(opts, SOURCES)


def rescan(memo: Memo | None, dirty: set[int] | None = None, options: Options | None = None
           ) -> tuple[Snapshot, Memo, bool]:
    """An incremental scan for watchers: read afresh the processes in ``dirty`` (and
    any the memo lacks), take the rest over from ``memo`` (None: a full scan).
    Returns the snapshot, the memo for the next call, and whether everything could
    be taken over (False: the caller should scan fully soon)."""
    scan = run_scan(options or Options(), SOURCES, memo, dirty)
    return scan.snap, scan.record, not scan.stale


__all__ = ["discover", "rescan", "Memo", "Options", "SOURCES"]
