"""ctypes access to the few syscalls Python 3.11's os module lacks.

Loaded lazily: importing ctypes costs a few milliseconds that plain listing
does not need.
"""
from __future__ import annotations

import ctypes
import os
import platform
from functools import lru_cache

# Syscall numbers are the same on x86_64 and the asm-generic table (aarch64)
# for these late additions.
SYS_PIDFD_GETFD = 438
SYS_SETNS = 308 if platform.machine() == "x86_64" else 268
SYS_UNSHARE = 272 if platform.machine() == "x86_64" else 97


@lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def _check(ret: int) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """Duplicate fd ``targetfd`` of the process behind ``pidfd`` into ours."""
    return _check(libc().syscall(SYS_PIDFD_GETFD, ctypes.c_int(pidfd), ctypes.c_int(targetfd),
                                 ctypes.c_uint(0)))


def setns(fd: int, nstype: int = 0) -> None:
    """Move the calling thread into the namespace behind ``fd``."""
    _check(libc().syscall(SYS_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)))


def unshare(flags: int) -> None:
    """Move the calling thread into new namespaces of the given CLONE_NEW* kinds."""
    _check(libc().syscall(SYS_UNSHARE, ctypes.c_int(flags)))
