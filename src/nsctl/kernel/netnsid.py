"""The id the caller's network namespace gives another one (RTM_GETNSID, NETNSA_FD).

The network stack numbers the peer namespaces it talks about (veth peers,
``ip netns set``); ``ip -all netns`` and lsns's NETNSID column show that
number.  It is asked over rtnetlink: one RTM_GETNSID request carrying an fd of
the namespace, answered by RTM_NEWNSID with NETNSA_NSID (-1 when none is
assigned).  Asking never assigns an id.

Only the lsns NETNSID column needs this, so nothing imports it at start-up.
"""
from __future__ import annotations

import errno
import os
import socket
import struct

from . import nsfs
from .errors import NsctlError, classify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

RTM_NEWNSID = 88
RTM_GETNSID = 90
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NETNSA_NSID = 1
NETNSA_FD = 3
#: NETNSA_NSID value of a namespace that has no id in the caller's namespace.
NOT_ASSIGNED = -1

_NLMSGHDR = struct.Struct("=IHHII")     # len, type, flags, seq, pid
_RTGENMSG = struct.Struct("=B3x")       # family, padded to NLMSG_ALIGNTO
_RTATTR = struct.Struct("=HH")          # len, type
_NLMSGERR = struct.Struct("=i")         # error (then the offending header)


def _align(n: int) -> int:
    return (n + 3) & ~3


class NetnsIds:
    """One rtnetlink socket, asked once per namespace; use as a context manager."""

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK,
                                       socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                       socket.NETLINK_ROUTE)
        except OSError as exc:
            raise classify(exc, "rtnetlink socket") from exc
        self._sock.settimeout(2.0)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetnsIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def of_fd(self, ns_fd: int) -> int:
        """The nsid of the network namespace behind ``ns_fd`` (NOT_ASSIGNED if none)."""
        self._seq += 1
        seq = self._seq
        attr = _RTATTR.pack(_RTATTR.size + 4, NETNSA_FD) + struct.pack("=i", ns_fd)
        body = _RTGENMSG.pack(socket.AF_UNSPEC) + attr
        msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETNSID, NLM_F_REQUEST, seq, 0) + body
        try:
            self._sock.send(msg)
            while True:
                data = self._sock.recv(8192)
                found = _parse_reply(data, seq)
                if found is not None:
                    return found
        except (TimeoutError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise classify(exc, "RTM_GETNSID") from exc
            raise NsctlError("RTM_GETNSID: no answer") from exc

    def of_path(self, path: str, expect_ino: int | None = None) -> int | None:
        """The nsid of the network namespace at ``path`` (an ns or fd link in our
        /proc); None if it cannot be opened or is no longer ``expect_ino``."""
        return self._of_opened(lambda: nsfs.open_ns(path, expect_ino=expect_ino))

    def of_mount(self, root: str, point: str, expect_ino: int | None = None) -> int | None:
        """The nsid of the network namespace mounted at ``point`` of the mount namespace
        whose root is ``root`` (``/``, ``/proc/PID/root``); None as for :meth:`of_path`."""
        return self._of_opened(lambda: nsfs.open_mounted_ns(root, point,
                                                              expect_ino=expect_ino))

    def _of_opened(self, open_fd: Callable[[], int]) -> int | None:
        try:
            fd = open_fd()
        except NsctlError:
            return None
        try:
            return self.of_fd(fd)
        except NsctlError:
            return None
        finally:
            os.close(fd)

    def of_socket(self, pid: int, sock_fd: int, expect_ino: int | None = None) -> int | None:
        """The nsid of the network namespace a socket of process ``pid`` lives in."""
        from . import pidfd, sockets

        try:
            pfd = pidfd.open_pidfd(pid)
        except NsctlError:
            return None
        try:
            copy = pidfd.get_fd(pfd, sock_fd)
        except NsctlError:
            os.close(pfd)
            return None
        os.close(pfd)
        try:
            nsfd = sockets.socket_netns(copy)
        except NsctlError:
            return None
        finally:
            os.close(copy)
        try:
            if expect_ino is not None and os.fstat(nsfd).st_ino != expect_ino:
                return None
            return self.of_fd(nsfd)
        except NsctlError:
            return None
        finally:
            os.close(nsfd)


def _parse_reply(data: bytes, seq: int) -> int | None:
    """NETNSA_NSID from the messages in ``data`` that answer ``seq``; None if none does."""
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        payload = data[off + _NLMSGHDR.size:off + length]
        off += _align(length)
        if mseq != seq:
            continue
        if mtype == NLMSG_ERROR:
            (err,) = _NLMSGERR.unpack_from(payload, 0)
            if err == 0:
                continue  # an ack, not an answer
            code = -err
            raise OSError(code, os.strerror(code))
        if mtype != RTM_NEWNSID:
            continue
        pos = _align(_RTGENMSG.size)
        while pos + _RTATTR.size <= len(payload):
            alen, atype = _RTATTR.unpack_from(payload, pos)
            if alen < _RTATTR.size:
                break
            if atype == NETNSA_NSID and alen >= _RTATTR.size + 4:
                return struct.unpack_from("=i", payload, pos + _RTATTR.size)[0]
            pos += _align(alen)
        raise OSError(errno.EPROTO, "RTM_NEWNSID without NETNSA_NSID")
    return None
