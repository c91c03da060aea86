"""pidfds: race-free process handles (user space's ``struct pid``).

Read a process while holding its pidfd, then ask the pidfd whether the
process is still alive: if it is, the PID was not reused during the read.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select

from .errors import NoSuchProcess, classify

_PIDFS_IOC = 0xFF
# PIDFD_GET_*_NAMESPACE = _IO(0xFF, n), Linux 6.11.
PIDFD_NS_IOCTL: dict[str, int] = {
    name: (_PIDFS_IOC << 8) | nr
    for nr, name in enumerate(
        ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
         "time_for_children", "user", "uts"), start=1)
}


def open_pidfd(pid: int) -> int:
    """A pidfd for ``pid``; NoSuchProcess if it is gone."""
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        raise classify(exc, f"pid {pid}", pid) from exc


def open_task_pidfd(pid: int) -> int:
    """A pidfd for a process or, failing that, a thread (PIDFD_THREAD, Linux 6.9)."""
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        # Not a thread-group leader: EINVAL on older kernels, ENOENT on 6.18.
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise classify(exc, f"pid {pid}", pid) from exc
    try:
        return os.pidfd_open(pid, os.O_EXCL)  # PIDFD_THREAD == O_EXCL
    except OSError as exc:
        raise classify(exc, f"pid {pid}", pid) from exc


def inode(pidfd: int) -> int:
    """The inode of a pidfd: on pidfs (Linux 6.9) its process's own for the whole
    boot; before that one anonymous inode that every pidfd shares."""
    return os.fstat(pidfd).st_ino


_unique_inodes: bool | None = None


def inodes_are_unique(proc: str = "/proc") -> bool:
    """Whether pidfd inodes tell processes apart (pidfs): ours differs from another
    process's.  (Alone in a PID namespace there is none to compare with: no, for now.)"""
    global _unique_inodes
    if _unique_inodes is None:
        me = os.getpid()
        others = (int(name) for name in os.listdir(proc) if name.isdigit() and int(name) != me)
        for other in others:
            try:
                theirs = os.pidfd_open(other)
            except OSError:
                continue   # gone meanwhile
            try:
                mine = os.pidfd_open(me)
                try:
                    _unique_inodes = inode(mine) != inode(theirs)
                finally:
                    os.close(mine)
            finally:
                os.close(theirs)
            break
    return bool(_unique_inodes)


def same_process(pid: int, pidfd_ino: int) -> bool:
    """Whether ``pid`` still names the process whose pidfd had inode ``pidfd_ino``
    (meaningful where :func:`inodes_are_unique`)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False   # gone
    try:
        return inode(fd) == pidfd_ino
    finally:
        os.close(fd)


def is_alive(pidfd: int) -> bool:
    """True while the process behind ``pidfd`` has not exited.

    A pidfd polls readable once the process has exited, zombie or not (a
    signal-0 probe would still succeed on a zombie, whose namespaces are
    already released).  Its PID cannot be reused while we hold the pidfd's
    process unreaped or not: either way "not readable" means the same process.
    """
    return not select.select([pidfd], [], [], 0)[0]


def get_fd(pidfd: int, targetfd: int) -> int:
    """Our own copy of another process's fd (pidfd_getfd, Linux 5.6)."""
    from .libc import pidfd_getfd

    try:
        return pidfd_getfd(pidfd, targetfd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise NoSuchProcess(f"fd {targetfd}: closed") from exc
        raise classify(exc, f"pidfd_getfd fd {targetfd}") from exc


def namespace_fd(pidfd: int, link: str) -> int:
    """An nsfs fd for one of the process's namespaces (PIDFD_GET_*_NAMESPACE)."""
    try:
        return fcntl.ioctl(pidfd, PIDFD_NS_IOCTL[link])
    except OSError as exc:
        raise classify(exc, f"PIDFD_GET_{link.upper()}_NAMESPACE") from exc
