"""Which mount namespaces that no process is in changed: fanotify mount marks.

A mount namespace with a process in it tells a watcher of its changes through
that process's mountinfo (nsctl.kernel.mounttables).  One that only an fd or a
bind mount holds has no mountinfo to poll; since Linux 6.15 fanotify reports
its changes instead: a group made with FAN_REPORT_MNT and a FAN_MARK_MNTNS mark
on the namespace's nsfs file gets an event for each mount attached to or
detached from it (FAN_MNT_ATTACH, FAN_MNT_DETACH).  A mark holds no reference:
it goes with its namespace, and the group never keeps a namespace alive.

The events name a mount, not its namespace; a watcher takes any of them as
"some marked table changed" and compares the marked tables with what its last
scan found there.  :class:`Unsupported` where the kernel lacks the flags
(EINVAL), fanotify (ENOSYS) or the privilege (EPERM: CAP_SYS_ADMIN): the
watcher then compares those tables once per maximum age instead.
"""
from __future__ import annotations

import errno
import os

from .errors import NsctlError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_UNLIMITED_QUEUE = 0x10
FAN_UNLIMITED_MARKS = 0x20
FAN_REPORT_MNT = 0x4000
FAN_MARK_ADD = 0x1
FAN_MARK_MNTNS = 0x110
FAN_MNT_ATTACH = 0x01000000
FAN_MNT_DETACH = 0x02000000


class Unsupported(NsctlError):
    """No mount marks here (an older kernel, no fanotify, or not privileged)."""


def _libc() -> ctypes.CDLL:
    """libc with fanotify_init(2) and fanotify_mark(2) typed (the mask is 64 bits)."""
    import ctypes

    from .libc import libc

    lib = libc()
    lib.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    lib.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                  ctypes.c_char_p]
    return lib


class MountMarks:
    """A fanotify group reporting mounts attached to or detached from the mount
    namespaces marked in it; ``fileno()`` for poll."""

    def __init__(self) -> None:
        import ctypes

        try:
            lib = _libc()
        except AttributeError:
            raise Unsupported("fanotify mount marks: this libc has no fanotify") from None
        base = FAN_REPORT_MNT | FAN_NONBLOCK | FAN_CLOEXEC
        # Unlimited marks and queue need CAP_SYS_ADMIN; without them the kernel's
        # per-user limits apply (a mark refused then leaves that table polled).
        fd = lib.fanotify_init(base | FAN_UNLIMITED_MARKS | FAN_UNLIMITED_QUEUE, os.O_RDONLY)
        if fd < 0 and ctypes.get_errno() == errno.EPERM:
            fd = lib.fanotify_init(base, os.O_RDONLY)
        if fd < 0:
            raise Unsupported(f"fanotify mount marks: {os.strerror(ctypes.get_errno())}")
        self.fd = int(fd)

    def fileno(self) -> int:
        return self.fd

    def mark(self, mnt_fd: int) -> bool:
        """Mark the mount namespace open at ``mnt_fd``; False if the kernel refused
        (another kind of file, a limit, no privilege over that namespace)."""
        ret = _libc().fanotify_mark(self.fd, FAN_MARK_ADD | FAN_MARK_MNTNS,
                                    FAN_MNT_ATTACH | FAN_MNT_DETACH, mnt_fd, None)
        return ret == 0

    def drain(self) -> int:
        """Read what is queued (events, or an overflow: either says "look"); how many
        reads found something."""
        count = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return count
            except InterruptedError:
                continue
            if not data:
                return count
            count += 1

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
