"""Do work inside other namespaces from a forked child, never in nsctl itself.

setns(CLONE_NEWNS) needs a single-threaded caller and changes the caller for
good; a fresh child is single-threaded and disposable.  The child streams
results back over a SOCK_SEQPACKET pair, each item JSON with at most one fd
attached (SCM_RIGHTS, seed 004: namespace files are handles you can pass).
"""
from __future__ import annotations

import json
import os
import socket
TYPE_CHECKING = False  # typing costs ~10 ms to import; only type checkers need it

if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Sequence

from .errors import classify

# What the child's work function yields: a JSON-able item and an optional fd.
Item = tuple  # (Any, int | None)


def run_inside(ns_fds: Sequence[tuple[int, int]],
               work: Callable[[int], Iterable[Item]]) -> list[Item]:
    """Fork, setns into each (fd, CLONE_NEW*) in order, run ``work(proc_self_dirfd)``.

    ``proc_self_dirfd`` is the child's /proc/PID directory opened before
    entering, so it stays usable even where the target mount namespace has
    no /proc.  Returns the items with fds now owned by the caller.
    """
    from .libc import setns

    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 0
        try:
            parent_sock.close()
            self_dir = os.open(f"/proc/{os.getpid()}",
                               os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_PATH)
            for fd, flag in ns_fds:
                try:
                    setns(fd, flag)
                except OSError as exc:
                    child_sock.send(json.dumps({"_error": exc.errno}).encode())
                    os._exit(0)
            if any(flag == 0x00020000 for _fd, flag in ns_fds):
                os.chdir("/")
            for item, fd in work(self_dir):
                msg = json.dumps({"_item": item}).encode()
                if fd is None:
                    child_sock.send(msg)
                else:
                    socket.send_fds(child_sock, [msg], [fd])
                    os.close(fd)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    child_sock.close()
    out: list[Item] = []
    try:
        while True:
            msg, fds, _flags, _addr = socket.recv_fds(parent_sock, 1 << 20, 1)
            if not msg:
                break
            data = json.loads(msg)
            if "_error" in data:
                err = data["_error"]
                raise classify(OSError(err, os.strerror(err)), "setns")
            out.append((data["_item"], fds[0] if fds else None))
    except BaseException:
        for _item, fd in out:
            if fd is not None:
                os.close(fd)
        raise
    finally:
        parent_sock.close()
        _, status = os.waitpid(pid, 0)
    return out
