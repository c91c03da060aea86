"""mount(2) and umount2(2) through libc (Python has no wrappers)."""
from __future__ import annotations

import ctypes
import errno
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


_private = False


def private_mount_ns() -> None:
    """Move the caller into a new mount namespace where nothing propagates out (once).

    For a forked child only (seeds 000/003: what sysfs or mqueue show is decided
    by the namespace of whoever mounts them, so a child that entered a namespace
    mounts fresh instances where nobody else sees them).
    """
    global _private
    if _private:
        return
    from .libc import unshare

    try:
        unshare(0x00020000)  # CLONE_NEWNS
    except OSError as exc:
        raise classify(exc, "unshare(CLONE_NEWNS)") from exc
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    _private = True


# The new mount API (Linux 5.2); the same numbers on x86_64 and the generic table.
SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
_has_fsmount: bool | None = None


def _detached(fstype: str) -> int:
    """fsopen + fsconfig(CREATE) + fsmount: a mount fd attached nowhere."""
    lib = libc()

    def call(*args) -> int:
        ret = lib.syscall(*args)
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return ret

    ctx = call(SYS_FSOPEN, ctypes.c_char_p(fstype.encode()), ctypes.c_uint(FSOPEN_CLOEXEC))
    try:
        call(SYS_FSCONFIG, ctypes.c_int(ctx), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None,
             ctypes.c_int(0))
        return call(SYS_FSMOUNT, ctypes.c_int(ctx), ctypes.c_uint(FSMOUNT_CLOEXEC),
                    ctypes.c_uint(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                                  | MOUNT_ATTR_NOEXEC))
    finally:
        os.close(ctx)


@contextmanager
def fresh_mount(fstype: str) -> Iterator[int]:
    """A directory fd on the root of a new read-only instance of ``fstype``, made by the
    caller now (so in the caller's namespaces); read below it with ``dir_fd``.

    A detached mount (fsmount, Linux 5.2) that nobody else can see and that goes
    away with the fd; on older kernels a mount on a temporary directory in a
    private mount namespace (:func:`private_mount_ns`), unmounted and removed on
    exit.  For a forked child only.
    """
    global _has_fsmount
    if _has_fsmount is not False:
        try:
            mnt = _detached(fstype)
            try:  # the mount fd is O_PATH; a real directory fd keeps the mount alive too
                fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=mnt)
            finally:
                os.close(mnt)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EOPNOTSUPP):
                raise classify(exc, f"fsmount {fstype}") from exc
            _has_fsmount = False
        else:
            _has_fsmount = True
            try:
                yield fd
            finally:
                os.close(fd)
            return
    import tempfile

    private_mount_ns()
    point = tempfile.mkdtemp(prefix=f"nsctl-{fstype}-")
    try:
        mount(fstype, point, fstype, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        try:
            fd = os.open(point, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            umount(point, MNT_DETACH)
    finally:
        os.rmdir(point)
