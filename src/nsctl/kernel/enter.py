"""Do work inside other namespaces from a forked child, never in nsctl itself.

setns(CLONE_NEWNS) needs a single-threaded caller and changes the caller for
good; a fresh child is single-threaded and disposable.  The child streams
results back over a SOCK_SEQPACKET pair, each item JSON with at most one fd
attached (SCM_RIGHTS: nsfs namespace files are handles you can pass).
One child visits any number of targets in turn (a fork costs milliseconds,
a setns microseconds); with hundreds of targets, a few children share them.
"""
from __future__ import annotations

import errno
import json
import os
import socket

from .errors import NsctlError, classify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    # What the child's work function yields: a JSON-able item and an optional fd.
    Item = tuple[Any, int | None]

CLONE_NEWNS = 0x00020000
BATCH = 2000  # fd-less items per message (a message must fit the socket buffer)
SHARE_FROM = 64   # targets from which a second child is worth its fork


def workers_for(targets: int) -> int:
    """How many children to share ``targets`` between: one per core (at most 4),
    and one only below SHARE_FROM targets."""
    return 1 if targets < SHARE_FROM else max(1, min(4, os.cpu_count() or 1))


def visit_each(targets: Sequence[Sequence[tuple[int, int]]],
               work: Callable[[int], Iterable[Item]],
               workers: int = 1) -> list[list[Item] | NsctlError]:
    """For each target (a list of (fd, CLONE_NEW*) to enter in order), run ``work``
    inside it, from forked children: one, or up to ``workers`` sharing the targets
    (worth it when there are hundreds: each child costs a fork, and the parent reads
    them all at once, so they run on every core).

    ``work(proc_self_dirfd)`` gets the child's /proc/PID directory opened before
    entering anything, so it stays usable where a target mount namespace has no
    /proc.  Returns, per target, its items (fds now owned by the caller) or the
    error that kept the child from entering it.
    """
    import selectors

    results: list[list[Item] | NsctlError] = [[] for _ in targets]
    if not targets:
        return results
    workers = max(1, min(workers, len(targets)))
    children: list[tuple[int, socket.socket]] = []
    selector = selectors.DefaultSelector()
    try:
        for share in range(workers):   # all forked before any reading: no threads here
            indexes = list(range(share, len(targets), workers))
            pid, sock = _visitor([targets[i] for i in indexes], indexes, work)
            children.append((pid, sock))
            selector.register(sock, selectors.EVENT_READ, sock)
        open_socks = len(children)
        while open_socks:
            for key, _mask in selector.select():
                if not _receive(key.data, results):
                    selector.unregister(key.data)
                    open_socks -= 1
    except BaseException:
        for bucket in results:
            if isinstance(bucket, list):
                for _item, fd in bucket:
                    if fd is not None:
                        os.close(fd)
        raise
    finally:
        selector.close()
        for pid, sock in children:
            sock.close()
            os.waitpid(pid, 0)
    return results


def _visitor(targets: Sequence[Sequence[tuple[int, int]]], indexes: list[int],
             work: Callable[[int], Iterable[Item]]) -> tuple[int, socket.socket]:
    """Fork a child that visits ``targets`` in turn and streams what ``work`` yields
    back, each message tagged with the target's index among all targets."""
    from .libc import setns

    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 0
        try:
            parent_sock.close()
            self_dir = os.open(f"/proc/{os.getpid()}",
                               os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_PATH)
            for index, target in zip(indexes, targets, strict=True):
                try:
                    for ns_fd, flag in target:
                        setns(ns_fd, flag)
                except OSError as exc:
                    child_sock.send(json.dumps([index, "error", exc.errno]).encode())
                    continue
                if any(flag == CLONE_NEWNS for _fd, flag in target):
                    os.chdir("/")
                plain: list = []  # items without an fd travel together
                for item, fd in work(self_dir):
                    if fd is None:
                        plain.append(item)
                        if len(plain) >= BATCH:
                            _send_items(child_sock, index, plain)
                            plain = []
                    else:
                        socket.send_fds(child_sock, [json.dumps([index, "item", item]).encode()],
                                        [fd])
                        os.close(fd)
                if plain:
                    _send_items(child_sock, index, plain)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    child_sock.close()
    return pid, parent_sock


def _receive(sock: socket.socket, results: list[list[Item] | NsctlError]) -> bool:
    """Take one message from a visiting child into ``results``; False at its end."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 1)
    if not msg:
        return False
    index, kind, value = json.loads(msg)
    if kind == "error":
        results[index] = classify(OSError(value, os.strerror(value)), "setns")
        return True
    bucket = results[index]
    if not isinstance(bucket, list):
        for fd in fds:
            os.close(fd)
    elif kind == "items":
        bucket.extend((item, None) for item in value)
    else:
        bucket.append((value, fds[0] if fds else None))
    return True


def _send_items(sock: socket.socket, index: int, items: list) -> None:
    """Send fd-less items in as few messages as fit the socket buffer (EMSGSIZE: halve)."""
    try:
        sock.send(json.dumps([index, "items", items]).encode())
    except OSError as exc:
        if exc.errno != errno.EMSGSIZE or len(items) < 2:
            raise
        half = len(items) // 2
        _send_items(sock, index, items[:half])
        _send_items(sock, index, items[half:])


def run_inside(ns_fds: Sequence[tuple[int, int]],
               work: Callable[[int], Iterable[Item]]) -> list[Item]:
    """Enter the namespaces ``ns_fds`` in a forked child and return what ``work`` yields."""
    result = visit_each([ns_fds], work)[0]
    if isinstance(result, NsctlError):
        raise result
    return result


class Parked:
    """A forked child that entered some namespaces and waits there until closed.

    For what the kernel shows only about a process *in* a namespace, read from
    outside it: /proc/PID/uid_map of a user namespace nobody is in, say, shown
    in the reader's terms.  ``pid`` is the child; ``close()`` ends and reaps it.
    """

    def __init__(self, ns_fds: Sequence[tuple[int, int]]) -> None:
        from .libc import setns

        ready_r, ready_w = os.pipe()
        stop_r, stop_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 0
            try:
                os.close(ready_r)
                os.close(stop_w)
                try:
                    for fd, flag in ns_fds:
                        setns(fd, flag)
                    os.write(ready_w, b"\0\0\0\0")
                except OSError as exc:
                    os.write(ready_w, (exc.errno or 0).to_bytes(4, "little"))
                os.read(stop_r, 1)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(stop_r)
        self.pid = pid
        self._stop = stop_w
        try:
            answer = os.read(ready_r, 4)
        finally:
            os.close(ready_r)
        err = int.from_bytes(answer, "little") if len(answer) == 4 else -1
        if err:
            self.close()
            if err < 0:
                raise NsctlError("setns: the helper process died")
            raise classify(OSError(err, os.strerror(err)), "setns")

    def close(self) -> None:
        if self._stop >= 0:
            os.close(self._stop)
            self._stop = -1
            os.waitpid(self.pid, 0)

    def __enter__(self) -> Parked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
