"""mount(2) and umount2(2) through libc (Python has no wrappers)."""
from __future__ import annotations

import ctypes
import os

from .errors import classify
from .libc import libc

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
