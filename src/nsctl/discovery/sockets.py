"""Source: the network namespace of every socket, which may be all that keeps it alive.

Each socket is asked once (a socket shared by several processes after fork
is one socket): pidfd_getfd copies it into nsctl, SIOCGSKNS names its netns.
"""
from __future__ import annotations

import os

from ..kernel import pidfd, sockets
from ..kernel.errors import DENIED, AccessDenied, NoSuchProcess, NsctlError
from ..model import SOCKET, Reference
from .scan import ProcHandle, Scan

_PREFIX = "socket:["


def read(scan: Scan, proc: ProcHandle) -> None:
    """The network namespace of each of the process's sockets."""
    if not proc.fds or proc.pidfd < 0:
        return   # without a pidfd no fd can be copied (the engine said so once)
    cache = scan.socket_netns
    for fd, text in proc.fds:
        if not text.startswith(_PREFIX):
            continue
        sock = int(text[len(_PREFIX):-1])
        netns = cache.get(sock)
        if netns is None:
            try:
                copy = pidfd.get_fd(proc.pidfd, fd)
            except NoSuchProcess:
                continue  # closed meanwhile
            except AccessDenied:
                scan.problem(DENIED, f"pid {proc.pid}: sockets: cannot copy socket fds",
                             proc.pid)
                return
            try:
                nsfd = sockets.socket_netns(copy)
                try:
                    netns = cache[sock] = scan.learn(nsfd, "net")
                finally:
                    os.close(nsfd)
            except (OSError, NsctlError):
                continue
            finally:
                os.close(copy)
        proc.stage("net", netns, Reference(kind=SOCKET, pid=proc.pid, fd=fd, socket=sock))
