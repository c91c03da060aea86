"""PID translation between PID namespaces (NS_GET_{PID,TGID}_{FROM,IN}_PIDNS, Linux 6.11).

The ioctl's argument is the PID itself (not a pointer) and its result is the
translated PID.  A process is visible only in its own PID namespace and its
ancestors: asking elsewhere gives ESRCH, which :class:`NotVisible` says.
"""
from __future__ import annotations

import errno
import fcntl

from .errors import NsctlError, Unsupported, classify

_NSIO = 0xB7


def _ior_int(nr: int) -> int:
    return (2 << 30) | (4 << 16) | (_NSIO << 8) | nr


NS_GET_PID_FROM_PIDNS = _ior_int(6)
NS_GET_TGID_FROM_PIDNS = _ior_int(7)
NS_GET_PID_IN_PIDNS = _ior_int(8)
NS_GET_TGID_IN_PIDNS = _ior_int(9)


class NotVisible(NsctlError):
    """The process has no PID in that PID namespace (or does not exist there)."""


def _call(ns_fd: int, request: int, pid: int, what: str) -> int:
    try:
        return fcntl.ioctl(ns_fd, request, pid)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            raise NotVisible(what) from exc
        if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
            raise Unsupported(f"{what}: PID translation ioctls not supported by this kernel") \
                from exc
        raise classify(exc, what) from exc


def pid_from_ns(ns_fd: int, pid: int, tgid: bool = False) -> int:
    """``pid`` as meant inside the PID namespace ``ns_fd`` -> the caller's view of it."""
    request = NS_GET_TGID_FROM_PIDNS if tgid else NS_GET_PID_FROM_PIDNS
    return _call(ns_fd, request, pid, f"no process {pid} in that PID namespace")


def pid_in_ns(ns_fd: int, pid: int, tgid: bool = False) -> int:
    """``pid`` in the caller's PID namespace -> its PID inside ``ns_fd``."""
    request = NS_GET_TGID_IN_PIDNS if tgid else NS_GET_PID_IN_PIDNS
    return _call(ns_fd, request, pid, f"process {pid} is not visible in that PID namespace")
