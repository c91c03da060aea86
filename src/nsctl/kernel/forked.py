"""A share of the work done on another core: a forked child whose answer is bytes.

The child computes its answer, writes it into a memfd of its own and exits;
it never returns into the caller's code.  The parent reads the answer once
the child has exited.  A child that failed answers None, so the caller can
do that share itself.  Used by the discovery shares, the thread workers and
the JSON encoder.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Forked:
    """``Forked(produce)`` forks a child that answers ``produce()``; ``result()`` waits
    for it, ``abandon()`` kills and reaps it if the caller gives up (always call one)."""

    __slots__ = ("pid", "memfd")

    def __init__(self, produce: Callable[[], bytes], name: str = "nsctl-share") -> None:
        self.memfd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            self.pid = os.fork()
        except BaseException:
            os.close(self.memfd)
            raise
        if self.pid == 0:  # the child: answer, never return
            code = 1
            try:
                data = memoryview(produce())
                while data:
                    data = data[os.write(self.memfd, data):]
                code = 0
            finally:
                os._exit(code)

    def result(self) -> bytes | None:
        """The child's answer once it has exited; None if it failed."""
        try:
            _, status = os.waitpid(self.pid, 0)
            self.pid = -1
            size = os.fstat(self.memfd).st_size
            return os.pread(self.memfd, size, 0) if status == 0 else None
        finally:
            os.close(self.memfd)
            self.memfd = -1

    def abandon(self) -> None:
        """Kill and reap the child if it is still running; close its memfd."""
        if self.pid > 0:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            self.pid = -1
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1
