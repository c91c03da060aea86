"""Namespace files (nsfs): identity, type and the NS_GET_* ioctls.

An nsfs file is the user-space handle of a namespace (seed 004).  Its identity
within one boot is its inode on the single nsfs superblock; NS_GET_ID (Linux
6.18) adds a 64-bit id that is never reused.  Every function here takes an
open fd and returns plain values; missing ioctls are feature-detected once.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct

from .errors import AccessDenied, NotANamespace, Unsupported, classify

# CLONE_NEW* flags, which NS_GET_NSTYPE returns.
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

#: The eight namespace types, in the order lsns prints them for one process.
NS_TYPES: tuple[str, ...] = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")
CLONE_FLAGS: dict[str, int] = {
    "mnt": CLONE_NEWNS, "net": CLONE_NEWNET, "pid": CLONE_NEWPID, "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC, "user": CLONE_NEWUSER, "cgroup": CLONE_NEWCGROUP, "time": CLONE_NEWTIME,
}
TYPE_OF_FLAG: dict[int, str] = {flag: name for name, flag in CLONE_FLAGS.items()}
#: Types whose namespaces form a tree of their own (NS_GET_PARENT works).
HIERARCHICAL: frozenset[str] = frozenset({"user", "pid"})

_NSIO = 0xB7


def _io(nr: int) -> int:
    return (_NSIO << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (2 << 30) | (size << 16) | (_NSIO << 8) | nr


NS_GET_USERNS = _io(1)
NS_GET_PARENT = _io(2)
NS_GET_NSTYPE = _io(3)
NS_GET_OWNER_UID = _io(4)
NS_GET_ID = _ior(13, 8)

# ns link names that are not plain type names, and the type they hold.
LINK_TYPE: dict[str, str] = {name: name for name in NS_TYPES}
LINK_TYPE.update({"pid_for_children": "pid", "time_for_children": "time"})


def parse_link(text: str) -> tuple[str, int] | None:
    """Split an ns link text such as ``net:[4026531833]`` into (type, inode)."""
    kind, sep, rest = text.partition(":[")
    if not sep or kind not in CLONE_FLAGS or not rest.endswith("]"):
        return None
    number = rest[:-1]
    return (kind, int(number)) if number.isdigit() else None


def open_ns(path: str, dir_fd: int | None = None) -> int:
    """Open a namespace file read-only; the fd keeps the namespace alive."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise classify(exc, f"open {path}") from exc


def ns_type(fd: int) -> str:
    """The type of the namespace behind ``fd``; NotANamespace for other files."""
    try:
        flag = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            raise NotANamespace("not a namespace file") from exc
        raise classify(exc, "NS_GET_NSTYPE") from exc
    try:
        return TYPE_OF_FLAG[flag]
    except KeyError:
        raise NotANamespace(f"unknown namespace type 0x{flag:x}") from None


def owning_userns(fd: int) -> int:
    """A new fd for the user namespace that owns the namespace behind ``fd``.

    AccessDenied when the owner lies outside the caller's user namespace.
    """
    try:
        return fcntl.ioctl(fd, NS_GET_USERNS)
    except OSError as exc:
        raise classify(exc, "NS_GET_USERNS") from exc


def parent_ns(fd: int) -> int | None:
    """A new fd for the parent of a user or PID namespace, None at the top.

    The kernel answers EPERM both for the initial namespace and for a parent
    outside the caller's scope; either way there is nothing above we may see.
    """
    try:
        return fcntl.ioctl(fd, NS_GET_PARENT)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return None
        raise classify(exc, "NS_GET_PARENT") from exc


def owner_uid(fd: int) -> int:
    """The UID (in the caller's user namespace) that created a user namespace."""
    buf = bytearray(4)
    try:
        fcntl.ioctl(fd, NS_GET_OWNER_UID, buf)
    except OSError as exc:
        raise classify(exc, "NS_GET_OWNER_UID") from exc
    return struct.unpack("=I", buf)[0]


_has_ns_id: bool | None = None


def ns_id(fd: int) -> int | None:
    """The 64-bit namespace id (NS_GET_ID, Linux 6.18), None where unsupported."""
    global _has_ns_id
    if _has_ns_id is False:
        return None
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, NS_GET_ID, buf)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
            _has_ns_id = False
            return None
        raise classify(exc, "NS_GET_ID") from exc
    _has_ns_id = True
    return struct.unpack("=Q", buf)[0]


def has_ns_id() -> bool | None:
    """Whether NS_GET_ID worked so far (None: not tried yet)."""
    return _has_ns_id


_can_list_mounts: bool | None = None


def mounted_namespaces(mnt_fd: int) -> list[tuple[str, str]] | None:
    """(root, mount point) of every nsfs mount in the mount namespace behind
    ``mnt_fd``, read without entering it (listmount and statmount, Linux 6.11+,
    through nsctl.kernel._native); None where that can't be done here: an older
    kernel, no C module, no permission, or the namespace is gone.  The caller
    then enters the namespace and reads its mountinfo instead."""
    global _can_list_mounts
    if _can_list_mounts is False:
        return None
    try:
        from ._native import nsfs_mounts
    except ImportError:
        _can_list_mounts = False
        return None
    try:
        found = nsfs_mounts(mnt_fd)
    except OSError as exc:
        # A kernel without a piece: NS_GET_MNTNS_ID (ENOTTY, before 6.11), the calls
        # (ENOSYS), or statmount's mount root and point (EOPNOTSUPP): don't ask again.
        # Anything else (EPERM, E2BIG or EINVAL where a kernel has the ioctl but not
        # listmount of another namespace) concerns this namespace: enter it instead.
        if exc.errno in (errno.ENOTTY, errno.ENOSYS, errno.EOPNOTSUPP):
            _can_list_mounts = False
        return None
    _can_list_mounts = True
    return found


def identity(fd: int) -> tuple[int, int]:
    """(st_dev, st_ino) of an open namespace file."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


__all__ = [
    "AccessDenied", "Unsupported", "NS_TYPES", "CLONE_FLAGS", "HIERARCHICAL", "LINK_TYPE",
    "parse_link", "open_ns", "ns_type", "owning_userns", "parent_ns", "owner_uid", "ns_id",
    "identity", "mounted_namespaces",
]
