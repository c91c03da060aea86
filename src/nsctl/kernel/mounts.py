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
    from collections.abc import Iterator

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
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


def umount_fd(fd: int, flags: int = 0) -> None:
    """Unmount the mount whose root ``fd`` (an O_PATH fd will do) is open on.

    Through the fd's ``/proc/self/fd/N`` magic link, which leads to the opened
    file and not to whatever its path names now: a name swapped for a symlink
    after the fd was opened changes nothing.  EINVAL when the fd is not on the
    root of a mount of the caller's mount namespace.
    """
    umount(f"/proc/self/fd/{fd}", flags)


# The new mount API's open_tree(2) and move_mount(2) (Linux 5.2); the same numbers on
# x86_64 and the generic table.
SYS_OPEN_TREE, SYS_MOVE_MOUNT = 428, 429
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_EMPTY_PATH = 1, 0o2000000, 0x1000
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x04, 0x40
_has_open_tree: bool | None = None   # None: not tried yet; tests set False to take mount(2)


def bind_fd(source_fd: int, target_fd: int) -> None:
    """Bind-mount the file open at ``source_fd`` onto the file open at ``target_fd``.

    Both ends are open files, so no path is resolved at mount time and a name
    swapped for a symlink meanwhile leads nowhere.  With the new mount API
    (open_tree(OPEN_TREE_CLONE) of the source, move_mount onto the target fd)
    where the kernel has it; else mount(2) with MS_BIND from one
    ``/proc/self/fd/N`` magic link to the other, which the kernel resolves to
    the opened files themselves.  ENOSYS from open_tree is remembered; EPERM,
    EINVAL or EOPNOTSUPP (a seccomp filter, a kernel that lacks a flag) fall
    back for that call only, and mount(2) then says what is wrong, if anything.
    """
    global _has_open_tree
    if _has_open_tree is not False:
        call = libc().syscall
        tree = call(SYS_OPEN_TREE, ctypes.c_int(source_fd), ctypes.c_char_p(b""),
                    ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH))
        if tree >= 0:
            _has_open_tree = True
            try:
                if call(SYS_MOVE_MOUNT, ctypes.c_int(tree), ctypes.c_char_p(b""),
                        ctypes.c_int(target_fd), ctypes.c_char_p(b""),
                        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)) < 0:
                    err = ctypes.get_errno()
                    raise classify(OSError(err, os.strerror(err)), "move_mount")
            finally:
                os.close(tree)   # a tree that was not moved is dropped with its fd
            return
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            _has_open_tree = False
        elif err not in (errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP):
            raise classify(OSError(err, os.strerror(err)), "open_tree")
    mount(f"/proc/self/fd/{source_fd}", f"/proc/self/fd/{target_fd}", None, MS_BIND)


_private = False


def private_mount_ns() -> None:
    """Move the caller into a new mount namespace where nothing propagates out (once).

    For a forked child only (tagged sysfs: what sysfs or mqueue show is decided
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
