"""The few system calls Python 3.11's os module lacks: pidfd_getfd, setns, unshare, openat2,
open_by_handle_at, prctl.

From nsctl.kernel._native (C) where it was built; else through ctypes, loaded
lazily: importing ctypes is a cost plain listing need not pay.
mount(2) and the new mount API go through ``libc()`` (nsctl.kernel.mounts).
"""
from __future__ import annotations

import os
from functools import lru_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes

# Syscall numbers are the same on x86_64 and the asm-generic table (aarch64)
# for these late additions.
SYS_PIDFD_GETFD = 438
SYS_OPENAT2 = 437
SYS_SETNS = 308 if os.uname().machine == "x86_64" else 268
SYS_UNSHARE = 272 if os.uname().machine == "x86_64" else 97


@lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    import ctypes

    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def _check(ret: int) -> int:
    if ret < 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def ctypes_pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """Duplicate fd ``targetfd`` of the process behind ``pidfd`` into ours."""
    import ctypes

    return _check(libc().syscall(SYS_PIDFD_GETFD, ctypes.c_int(pidfd), ctypes.c_int(targetfd),
                                 ctypes.c_uint(0)))


def ctypes_setns(fd: int, nstype: int = 0) -> None:
    """Move the calling thread into the namespace behind ``fd``."""
    import ctypes

    _check(libc().syscall(SYS_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)))


def ctypes_unshare(flags: int) -> None:
    """Move the calling thread into new namespaces of the given CLONE_NEW* kinds."""
    import ctypes

    _check(libc().syscall(SYS_UNSHARE, ctypes.c_int(flags)))


def ctypes_openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) (Linux 5.6): open ``path`` below ``dirfd`` under the RESOLVE_* rules."""
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    how = OpenHow(flags, 0, resolve)
    return _check(libc().syscall(SYS_OPENAT2, ctypes.c_int(dirfd), os.fsencode(path),
                                 ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))))


def ctypes_prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    """prctl(2) with the later arguments 0."""
    import ctypes

    return _check(libc().prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                               ctypes.c_ulong(0), ctypes.c_ulong(0)))


def ctypes_open_by_handle_at(mount_fd: int, handle_type: int, handle: bytes,
                             flags: int) -> int:
    """open_by_handle_at(2): open the file a ``struct file_handle`` of ``handle_type``
    with the bytes ``handle`` names, relative to ``mount_fd`` (a negative FD_* root too)."""
    import ctypes
    import struct

    buf = ctypes.create_string_buffer(struct.pack("=Ii", len(handle), handle_type) + handle)
    return _check(libc().open_by_handle_at(ctypes.c_int(mount_fd), buf, ctypes.c_int(flags)))


def name_to_handle_at(dir_fd: int, path: str, flags: int) -> tuple[int, bytes]:
    """name_to_handle_at(2): (handle type, handle bytes) of the file at ``path`` below
    ``dir_fd``.  Only nsctl's Python fingerprint calls it (the C one makes the call
    itself), so it stays in ctypes."""
    import ctypes

    buf = ctypes.create_string_buffer(8 + 128)
    ctypes.memmove(buf, (128).to_bytes(4, "little"), 4)
    mount_id = ctypes.c_int()
    _check(libc().name_to_handle_at(ctypes.c_int(dir_fd), os.fsencode(path), buf,
                                    ctypes.byref(mount_id), ctypes.c_int(flags)))
    raw = buf.raw
    size, kind = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little",
                                                                     signed=True)
    return kind, raw[8:8 + size]


try:
    from ._native import openat2, pidfd_getfd, setns, unshare
except ImportError:   # not built: the same calls through ctypes
    pidfd_getfd, setns, unshare = ctypes_pidfd_getfd, ctypes_setns, ctypes_unshare
    openat2 = ctypes_openat2
try:   # (a C module built before these two were added lacks them)
    from ._native import open_by_handle_at, prctl
except ImportError:
    open_by_handle_at, prctl = ctypes_open_by_handle_at, ctypes_prctl
