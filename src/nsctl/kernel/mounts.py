"""mount(2) and umount2(2) through libc (Python has no wrappers)."""
from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager

from .errors import classify
from .libc import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    def b(s: str | None):
        return None if s is None else os.fsencode(s)

    lib = libc()
    lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                          ctypes.c_char_p]
    if lib.mount(b(source), b(target), b(fstype), flags, b(data)) != 0:
        err = ctypes.get_errno()
        raise classify(OSError(err, os.strerror(err)), f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    lib = libc()
    lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    if lib.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise classify(OSError(err, os.strerror(err)), f"umount {target}")


def private_mount_ns() -> None:
    """Move the caller into a new mount namespace where nothing propagates out.

    For a forked child only (seeds 000/003: what sysfs or mqueue show is decided
    by the namespace of whoever mounts them, so a child that entered a namespace
    mounts fresh instances where nobody else sees them).
    """
    from .libc import unshare

    try:
        unshare(0x00020000)  # CLONE_NEWNS
    except OSError as exc:
        raise classify(exc, "unshare(CLONE_NEWNS)") from exc
    mount(None, "/", None, MS_REC | MS_PRIVATE)


@contextmanager
def fresh_mount(fstype: str) -> Iterator[str]:
    """A new read-only instance of ``fstype`` on a temporary directory, unmounted and
    the directory removed on exit; call :func:`private_mount_ns` first."""
    import tempfile

    point = tempfile.mkdtemp(prefix=f"nsctl-{fstype}-")
    try:
        mount(fstype, point, fstype, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        try:
            yield point
        finally:
            umount(point, MNT_DETACH)
    finally:
        os.rmdir(point)
