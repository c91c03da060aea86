"""Namespace files (nsfs): identity, type and the NS_GET_* ioctls.

An nsfs file is the user-space handle of a namespace (the nsfs design).  Its identity
within one boot is its inode on the single nsfs superblock; NS_GET_ID (Linux
6.18) adds a 64-bit id that is never reused.  The ioctls take an open fd and
return plain values; missing ioctls are feature-detected once.

Opening one by path is where a hostile user gets a say: a path below
/proc/PID/root, a process's fd link or a mount point of another mount namespace
can be made to name a FIFO (whose open blocks), a device (whose open runs its
driver) or a symlink by the time it is opened.  So every path is first opened
with O_PATH, which opens nothing, checked to be a namespace file with the
expected inode, and only then opened for real through /proc/self/fd.  Mount
points are resolved inside their namespace's root and through no symlink
(openat2, else one component at a time).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

from .errors import AccessDenied, NotANamespace, NsctlError, Unsupported, classify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

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

#: Every namespace inode is at least this: the initial namespaces have fixed inodes
#: from here up (0xEFFFFFF8..0xEFFFFFFF), the others come from PROC_DYNAMIC_FIRST
#: (0xF0000000) on.  A smaller number can only be a namespace id (NS_GET_ID).
MIN_INODE = 0xEFFFFFF8

# nsfs file handles (Linux 6.18): open_by_handle_at(FD_NSFS_ROOT, ...) with handle type
# FILEID_NSFS and the 16 bytes of struct nsfs_file_handle {u64 ns_id; u32 ns_type; u32 ns_inum}.
FD_NSFS_ROOT = -10003
FILEID_NSFS = 0xF1

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


# openat2 RESOLVE_* flags (linux/openat2.h).
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_BENEATH = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
_PATH = os.O_PATH | os.O_CLOEXEC
_NO_FOLLOW = _PATH | os.O_NOFOLLOW

_nsfs_dev: int | None = None


def nsfs_dev() -> int:
    """st_dev of the nsfs superblock, which holds every namespace file (read once,
    from our own /proc/self/ns/user)."""
    global _nsfs_dev
    if _nsfs_dev is None:
        _nsfs_dev = os.stat("/proc/self/ns/user").st_dev
    return _nsfs_dev


def reopen_ns(path_fd: int, expect_ino: int | None = None, what: str = "namespace file") -> int:
    """A read-only fd on the file behind the O_PATH fd ``path_fd``, opened only once
    it is known to be a namespace file (and namespace ``expect_ino``, if given).

    NotANamespace for any other file, NsctlError when it names another namespace.
    The ioctls need a real fd (they answer EBADF on an O_PATH one); reopening
    through /proc/self/fd opens that very file, not whatever a path names now.
    """
    st = os.fstat(path_fd)
    if st.st_dev != nsfs_dev() or not stat.S_ISREG(st.st_mode):
        raise NotANamespace(f"{what}: not a namespace file")
    if expect_ino is not None and st.st_ino != expect_ino:
        raise NsctlError(f"{what}: names another namespace now")
    try:
        return os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise classify(exc, f"open {what}") from exc


def open_ns(path: str, dir_fd: int | None = None, expect_ino: int | None = None) -> int:
    """Open a namespace file read-only; the fd keeps the namespace alive.

    Symlinks and /proc magic links (/proc/PID/fd/N) are followed, but what they
    lead to is opened only if it is a namespace file (see :func:`reopen_ns`): a
    FIFO or device there is refused, never opened.  For paths whose directories
    the caller trusts (given by the user, or in our /proc); a mount point of
    another mount namespace goes through :func:`open_mounted_ns`.
    """
    return _checked(lambda: os.open(path, _PATH, dir_fd=dir_fd), expect_ino, path)


def _checked(find: Callable[[], int], expect_ino: int | None, what: str) -> int:
    """:func:`reopen_ns` of the O_PATH fd that ``find()`` returns (closed after)."""
    try:
        path_fd = find()
    except OSError as exc:
        raise classify(exc, f"open {what}") from exc
    try:
        return reopen_ns(path_fd, expect_ino, what)
    finally:
        os.close(path_fd)


def open_ns_link(link: str, ns_dir: int) -> int:
    """Open link ``link`` of a /proc/PID/ns (or task/TID/ns) directory fd ``ns_dir``.

    Those links can name nothing but a namespace file, so they are opened
    directly: discovery's hot path, one open per namespace.  OSError as raised.
    """
    return os.open(link, os.O_RDONLY | os.O_CLOEXEC, dir_fd=ns_dir)


_has_openat2: bool | None = None


def open_beneath(root_fd: int, path: str) -> int:
    """An O_PATH fd on ``path`` (absolute in the tree of directory fd ``root_fd``, as
    mountinfo prints mount points), resolved below ``root_fd`` without following
    any symlink; mount points on the way are crossed.  OSError as the kernel says
    (ELOOP for a symlink, EXDEV for a way out).

    Through openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    Linux 5.6); where the kernel lacks it, one O_NOFOLLOW component at a time.
    Nothing is opened for real, so a FIFO or device at ``path`` neither blocks
    nor runs a driver.
    """
    global _has_openat2
    rel = path.lstrip("/") or "."
    if _has_openat2 is not False:
        from .libc import openat2

        try:
            fd = openat2(root_fd, rel, _NO_FOLLOW, _BENEATH)
        except OSError as exc:
            # ENOSYS: no openat2; E2BIG, EINVAL: no such RESOLVE_* flags.  EPERM may
            # be a seccomp filter that denies the call: walk, but ask again next time.
            if exc.errno in (errno.ENOSYS, errno.E2BIG, errno.EINVAL):
                _has_openat2 = False
            elif exc.errno != errno.EPERM:
                raise
        else:
            _has_openat2 = True
            return fd
    return walk_beneath(root_fd, rel)


def walk_beneath(root_fd: int, path: str) -> int:
    """:func:`open_beneath` without openat2: each component opened with O_PATH |
    O_NOFOLLOW (O_DIRECTORY but for the last, so a symlink on the way fails with
    ENOTDIR); ``..`` is refused with EXDEV."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise OSError(errno.EXDEV, f"{path}: leads out of the tree")
    fd = os.open(".", _PATH | os.O_DIRECTORY, dir_fd=root_fd)
    try:
        for i, part in enumerate(parts):
            flags = _NO_FOLLOW | (os.O_DIRECTORY if i < len(parts) - 1 else 0)
            step = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_mounted_ns(root: str, point: str, dir_fd: int | None = None,
                    expect_ino: int | None = None) -> int:
    """Open the namespace file mounted at ``point`` of the mount namespace whose root
    directory is ``root`` (``/``, ``/proc/PID/root``, or ``root`` below a /proc/PID
    directory fd ``dir_fd``): resolved inside that root through no symlink
    (:func:`open_beneath`), checked (:func:`reopen_ns`), then opened read-only."""
    def find() -> int:
        root_fd = os.open(root, _PATH | os.O_DIRECTORY, dir_fd=dir_fd)
        try:
            return open_beneath(root_fd, point)
        finally:
            os.close(root_fd)

    return _checked(find, expect_ino, point if root == "/" else f"{root}{point}")


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


_has_handles: bool | None = None


def open_by_id(id_: int, ns_type: str, ino: int) -> int | None:
    """A read-only fd on the namespace with id ``id_`` (NS_GET_ID), type ``ns_type``
    and inode ``ino``, opened by its nsfs file handle: no path and no process in
    between.  None when no live namespace has all three (the kernel matches each),
    or where the kernel has no nsfs handles (then :func:`handles_work` is False).
    AccessDenied where the kernel refuses (opening a namespace we are not in needs
    CAP_SYS_ADMIN in the initial user and PID namespaces)."""
    global _has_handles
    if _has_handles is False:
        return None
    from .libc import open_by_handle_at

    handle = struct.pack("=QII", id_, CLONE_FLAGS[ns_type], ino)
    try:
        fd = open_by_handle_at(FD_NSFS_ROOT, FILEID_NSFS, handle, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ESTALE:       # no such namespace (now)
            _has_handles = True
            return None
        if exc.errno in (errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
            _has_handles = False            # no FD_NSFS_ROOT or no nsfs handles here
            return None
        raise classify(exc, f"open {ns_type} namespace {id_} by handle") from exc
    _has_handles = True
    return fd


_names_handles = True          # False once the kernel said nsfs has no file handles
AT_HANDLE_FID = 0x200          # a handle to tell files apart, not to open them by
AT_SYMLINK_FOLLOW = 0x400


def link_identity(path: str, dir_fd: int) -> tuple | None:
    """What tells the namespace a /proc link (``ns/net``, ``fd/7``) names apart from
    every other, without opening it: ("n", id, inode) from its nsfs file handle
    (Linux 6.18; the id is never handed out again), else ("i", inode); None when the
    link is gone.  Not the ctime: nsfs makes the inode of a namespace nobody holds
    open anew at each lookup, so it moves on every stat."""
    global _names_handles
    if _names_handles:
        from .libc import name_to_handle_at

        try:
            kind, handle = name_to_handle_at(dir_fd, path, AT_HANDLE_FID | AT_SYMLINK_FOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.EOVERFLOW):
                raise
            _names_handles = False
        else:
            if kind == FILEID_NSFS and len(handle) >= 16:
                id_, _type, ino = struct.unpack_from("=QII", handle)
                return ("n", id_, ino)
    try:
        return ("i", os.stat(path, dir_fd=dir_fd).st_ino)
    except FileNotFoundError:
        return None


def handles_work() -> bool | None:
    """Whether opening namespaces by handle worked so far (None: not tried yet)."""
    return _has_handles


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
    "parse_link", "nsfs_dev", "reopen_ns", "open_ns", "open_ns_link", "open_beneath",
    "walk_beneath", "open_mounted_ns", "ns_type", "owning_userns", "parent_ns", "owner_uid",
    "ns_id", "identity", "mounted_namespaces", "open_by_id", "handles_work", "MIN_INODE",
]
