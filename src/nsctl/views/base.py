"""What every view needs: the namespace's fd, its processes, and a child inside it.

A view is read in the cheapest way that is still right: from /proc/PID of a
process in the namespace where the kernel shows it there (checked by inode
and pidfd, so a process that left or a PID reused meanwhile is never taken
for the namespace), else from a forked child that entered the namespace
(:mod:`nsctl.kernel.enter`); nsctl's own process never enters one.

A part of a view that could not be read is ``{"error": "one line"}`` in place
of its value; the rest of the view is still there.
"""
from __future__ import annotations

import os

from ..kernel import nsfs, pidfd, procfs
from ..kernel.errors import NsctlError, classify
from ..model import Namespace, Snapshot
from ..query.handles import open_namespace

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


def error_text(exc: BaseException, what: str = "") -> str:
    """One line for an exception, the way the CLI words kernel errors."""
    if isinstance(exc, NsctlError):
        return str(exc)
    if isinstance(exc, OSError):
        return str(classify(exc, what or "read"))
    return f"{what + ': ' if what else ''}{type(exc).__name__}: {exc}"


def attempt(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or ``{"error": ...}`` if it fails (never raises)."""
    try:
        return fn(*args)
    except Exception as exc:  # a view part must never take the rest down with it
        return {"error": error_text(exc, what)}


def failed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"}


class Context:
    """One namespace being viewed: opens what it needs once, closes it in :meth:`close`."""

    def __init__(self, ns: Namespace, snap: Snapshot) -> None:
        self.ns = ns
        self.snap = snap
        self._fd: int | None = None

    def fd(self) -> int:
        """An fd on the namespace (through any reference that still holds it)."""
        if self._fd is None:
            self._fd = open_namespace(self.ns, self.snap)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def members(self, link: str | None = None) -> list[int]:
        """Processes (in the snapshot) whose ``link`` (default: the type) is this namespace."""
        link = link or self.ns.type
        if link == self.ns.type:
            return sorted(self.ns.pids)
        return sorted(p.pid for p in self.snap.processes.values() if p.ns.get(link) == self.ns.ino)

    def read_proc(self, names: Iterable[str], link: str | None = None
                  ) -> tuple[int, dict[str, str]] | None:
        """(pid, {name: text}) of /proc/PID/NAME for the first process whose ``link``
        still is this namespace across the read; None when no process will do."""
        link = link or self.ns.type
        for pid in self.members(link):
            try:
                handle = pidfd.open_pidfd(pid)
            except NsctlError:
                continue
            try:
                dirfd = procfs.open_dir(f"{procfs.PROC}/{pid}")
                try:
                    texts = {name: procfs.read_text(name, dirfd, records=True) for name in names}
                    still = nsfs.parse_link(os.readlink(f"ns/{link}", dir_fd=dirfd))
                finally:
                    os.close(dirfd)
            except OSError:
                continue
            finally:
                alive = pidfd.is_alive(handle)
                os.close(handle)
            if alive and still is not None and still[1] == self.ns.ino:
                return pid, texts
        return None

    def inside(self, work: Callable[[int], Iterable[Any]]) -> list[Any]:
        """Items that ``work(proc_self_dirfd)`` yields in a forked child that entered
        this namespace; ``work`` must catch its own errors (see :func:`attempt`)."""
        from ..kernel.enter import run_inside

        def wrapped(self_dir: int):
            for item in work(self_dir):
                yield item, None

        # A child of ours is in our namespaces already: no setns (which needs privilege).
        ours = self.ns.ino == self.snap.own.get(self.ns.type)
        enter = [] if ours else [(self.fd(), nsfs.CLONE_FLAGS[self.ns.type])]
        items = run_inside(enter, wrapped)
        if not items:
            raise NsctlError(f"{self.ns.label}: the process reading it inside "
                             "the namespace failed")
        return [item for item, _fd in items]

    def parked(self):
        """A child waiting inside this namespace (:class:`nsctl.kernel.enter.Parked`)."""
        from ..kernel.enter import Parked

        return Parked([(self.fd(), nsfs.CLONE_FLAGS[self.ns.type])])
