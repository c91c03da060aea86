"""Which mount tables changed: poll() on /proc/PID/mountinfo.

The kernel reports POLLPRI | POLLERR on an open mountinfo file once its mount
namespace's table has changed since the file last reported (proc(5)), so one
open file per mount namespace tells a watcher that a namespace file was bind
mounted or unmounted there without rereading any table.

Polling itself takes the news (the file remembers what it last reported), so
the files must be polled directly, not through an epoll fd inside select():
epoll's readiness check would take it and leave nothing for the poll after.
The caller's ``select.poll`` object holds them, beside its other fds, and
passes what it returned to :meth:`MountTables.changed`.
"""
from __future__ import annotations

import os
import select


class MountTables:
    """One open mountinfo per watched mount namespace, registered in ``poller``."""

    def __init__(self, poller: select.poll, limit: int = 4096) -> None:
        import resource

        self.poller = poller
        # Files we allow ourselves: a quarter of RLIMIT_NOFILE, the rest is discovery's.
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.limit = limit if soft == resource.RLIM_INFINITY else min(limit, soft // 4)
        self.watched: dict[int, tuple[int, int]] = {}   # mount ns -> (pid, fd)
        self.by_fd: dict[int, int] = {}                  # fd -> mount ns

    def sync(self, readers: dict[int, int]) -> None:
        """Watch exactly the mount namespaces in ``readers`` (mount ns -> a pid in it)."""
        for mnt in [m for m, (pid, _fd) in self.watched.items() if readers.get(m) != pid]:
            self._forget(mnt)
        for mnt, pid in readers.items():
            if mnt in self.watched or len(self.watched) >= self.limit:
                continue
            try:
                fd = os.open(f"/proc/{pid}/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue   # gone: the next scan finds another reader
            # The first poll reports the table as changed (nothing was reported yet).
            first = select.poll()
            first.register(fd, select.POLLPRI)
            first.poll(0)
            self.poller.register(fd, select.POLLPRI)
            self.watched[mnt] = (pid, fd)
            self.by_fd[fd] = mnt

    def changed(self, ready: list[tuple[int, int]]) -> set[int]:
        """Mount namespaces whose table changed, from what ``poller.poll()`` returned."""
        return {self.by_fd[fd] for fd, _mask in ready if fd in self.by_fd}

    def _forget(self, mnt: int) -> None:
        _pid, fd = self.watched.pop(mnt)
        self.by_fd.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        os.close(fd)

    def close(self) -> None:
        for mnt in list(self.watched):
            self._forget(mnt)
