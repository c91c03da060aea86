"""The kernel's process events connector (CN_PROC): "a process forked, exec'd or exited".

A netlink NETLINK_CONNECTOR socket bound to the CN_IDX_PROC multicast group,
after a PROC_CN_MCAST_LISTEN op, receives one message per process event.  We
decode only which process (thread group) an event is about: a fork names the
child, an exec or exit the process itself, so a rescan can read just those.

Needs CAP_NET_ADMIN in the initial user namespace, and the kernel delivers the
events only to sockets in the initial network and PID namespaces; anything
else fails at socket/bind/send (or stays silent).  :func:`open_listener`
raises :class:`CnProcUnavailable` for every such failure so callers can fall
back to polling.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import time

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

PROC_EVENT_NONE = 0x00000000      # the kernel's answer to LISTEN
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")       # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")        # idx, val, seq, ack, len, flags
_HEADERS = _NLMSGHDR.size + _CN_MSG.size  # 36: then the proc_event, 'what' first


class CnProcUnavailable(OSError):
    """No process events here (not root, not the initial namespaces, no connector)."""


class Listener:
    """An open CN_PROC subscription.  ``fileno()`` for select; ``drain()`` reads what is
    queued, adds the thread-group ids the events were about to ``pids`` and returns
    how many events it held."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lost = 0       # times the socket buffer overflowed (events dropped)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self, pids: set[int] | None = None) -> int:
        count = 0
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return count
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # overflow: events lost, "something happened"
                    self.lost += 1
                    count += 1
                    continue
                raise
            count += _decode(data, pids)

    def close(self) -> None:
        try:
            self.sock.send(_op(PROC_CN_MCAST_IGNORE))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _op(op: int) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0)
    return _NLMSGHDR.pack(_HEADERS + len(payload), NLMSG_DONE, 0, 0, os.getpid()) + cn + payload


# struct proc_event: what, cpu, timestamp_ns, then the event's data.  Offsets in the
# data of the thread-group id the event is about: fork -> child_tgid, exec / exit ->
# process_tgid.  Other events (uid, gid, sid, ptrace, comm, coredump) name no new
# namespaces and are only counted.
_DATA = 16
_TGID_AT = {PROC_EVENT_FORK: 12, PROC_EVENT_EXEC: 4, PROC_EVENT_EXIT: 4}


def _decode(data: bytes, pids: set[int] | None) -> int:
    """Process events in one datagram (normally one message; walk them anyway)."""
    count, off = 0, 0
    while off + _HEADERS + 4 <= len(data):
        length = _NLMSGHDR.unpack_from(data, off)[0]
        what = struct.unpack_from("=I", data, off + _HEADERS)[0]
        if what != PROC_EVENT_NONE:
            count += 1
            at = _TGID_AT.get(what)
            end = off + _HEADERS + _DATA + (at or 0) + 4
            if pids is not None and at is not None and end <= len(data):
                pids.add(struct.unpack_from("=I", data, end - 4)[0])
        if length < _NLMSGHDR.size:
            break
        off += (length + 3) & ~3
    return count


def open_listener() -> Listener:
    """Subscribe to process events, or raise CnProcUnavailable saying why not."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    except (OSError, AttributeError) as exc:
        raise CnProcUnavailable(getattr(exc, "errno", None) or errno.ENOSYS,
                                f"netlink connector socket: "
                                f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.bind((0, CN_IDX_PROC))
        sock.send(_op(PROC_CN_MCAST_LISTEN))
    except OSError as exc:
        sock.close()
        raise CnProcUnavailable(exc.errno or errno.EPERM,
                                f"cn_proc subscribe: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass
    return Listener(sock)


SO_ATTACH_FILTER = 26
# Offsets in a CN_PROC message (netlink and connector headers, then the proc_event):
# 'what', then a fork's child pid and tgid, an exit's pid and tgid.
_WHAT, _FORK_PID, _FORK_TGID, _EXIT_PID, _EXIT_TGID = 36, 60, 64, 52, 56


def ignore_threads(listener: Listener) -> bool:
    """Have the kernel drop the fork and exit events of threads other than a process's
    first (a socket filter): a program that starts and ends threads all the time (a
    Go or Java service, a thread pool) then costs its listener nothing.  Everything
    else passes: process forks and exits, execs, the other kinds.  False where the
    filter could not be attached (then every event still arrives)."""
    import ctypes

    def swap(value: int) -> int:   # a filter loads words in network byte order
        return int.from_bytes(value.to_bytes(4, "little"), "big")

    ld, tax, jeq_k, jeq_x, ret = 0x20, 0x07, 0x15, 0x1D, 0x06
    program = [
        (ld, 0, 0, _WHAT),
        (jeq_k, 2, 0, swap(PROC_EVENT_FORK)),      # -> 4
        (jeq_k, 5, 0, swap(PROC_EVENT_EXIT)),      # -> 8
        (ret, 0, 0, 0xFFFFFFFF),                   # anything else: keep
        (ld, 0, 0, _FORK_PID), (tax, 0, 0, 0), (ld, 0, 0, _FORK_TGID),
        (jeq_x, 4, 5, 0),                          # pid == tgid: a process (-> 12, else 13)
        (ld, 0, 0, _EXIT_PID), (tax, 0, 0, 0), (ld, 0, 0, _EXIT_TGID),
        (jeq_x, 0, 1, 0),                          # -> 12, else 13
        (ret, 0, 0, 0xFFFFFFFF),                   # 12: keep
        (ret, 0, 0, 0),                            # 13: drop (a thread's)
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in program))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(code))
    try:
        listener.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def probe(listener: Listener, timeout: float = 0.5) -> bool:
    """Fork a child that exits at once and see its events arrive: a subscription the
    kernel accepted but does not feed (a namespace it does not report to) is useless."""
    import select

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if select.select([listener], [], [], left)[0] and listener.drain():
            return True
