"""Helper processes for the tests, and the processes the tests look at.

Helper processes are forked from the pytest process (:class:`Child`): a child
closes every inherited fd but its channel, so it holds exactly what its
topology says, and talks to the test over a SOCK_SEQPACKET pair (JSON
messages, namespace fds passed with SCM_RIGHTS).  :func:`terminate` kills and
reaps them (and their orphans, the pytest process being a child subreaper).
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from support.syscalls import set_comm


def children_of(pid: int) -> set[int]:
    """The PIDs of a process's children (of all its threads), from the kernel."""
    found: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(c) for c in f.read().split())
        except FileNotFoundError:
            continue   # the thread ended meanwhile
    return found


def ppid_map() -> dict[int, int]:
    """pid -> ppid of every process visible now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:   # bytes: a process may name itself anything, UTF-8 or not
            text = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        out[int(name)] = int(text[text.rindex(b")") + 2:].split()[1])
    return out


def descendants(pid: int, parents: dict[int, int] | None = None) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    parents = ppid_map() if parents is None else parents
    kids: dict[int, list[int]] = {}
    for child, parent in parents.items():
        kids.setdefault(parent, []).append(child)
    out, todo = [], list(kids.get(pid, ()))
    while todo:
        cur = todo.pop(0)
        out.append(cur)
        todo.extend(kids.get(cur, ()))
    return out


def starttime(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def terminate(pids: list[int], grace: float = 0.0, timeout: float = 10.0) -> None:
    """SIGKILL ``pids`` (after up to ``grace`` seconds to exit on their own) and reap our share.

    pidfds are taken first so that a PID reused meanwhile is never signalled.
    With the pytest process a child subreaper, orphans of these come back to
    us as zombies and are reaped here too; a process that is not our child is
    done once it is gone from /proc (or its PID names a newer process).
    """
    handles: dict[int, tuple[int, int | None]] = {}
    for pid in pids:
        try:
            handles[pid] = (os.pidfd_open(pid), starttime(pid))
        except OSError:
            continue
    try:
        deadline = time.monotonic() + grace
        for fd, _start in handles.values():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        for fd, _start in handles.values():
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        pending = set(handles)
        while pending:
            for pid in sorted(pending):
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0] == pid
                except ChildProcessError:
                    # Not our child: done once gone from /proc (or the PID names a newer
                    # process); a start time unreadable at the start means it was gone then.
                    start = handles[pid][1]
                    done = start is None or starttime(pid) != start
                if done:
                    pending.discard(pid)
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"processes did not go away: {sorted(pending)}")
                time.sleep(0.002)
    finally:
        for fd, _start in handles.values():
            os.close(fd)


class Channel:
    """One end of a SOCK_SEQPACKET pair: JSON messages, fds attached with SCM_RIGHTS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, obj: Any = None, fds: Sequence[int] = ()) -> None:
        data = json.dumps(obj).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self, timeout: float | None = None) -> tuple[Any, list[int]]:
        self.sock.settimeout(timeout)
        msg, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 20, 64)
        if not msg:
            for fd in fds:
                os.close(fd)
            raise EOFError("the other end closed")
        return json.loads(msg), fds

    def wait_closed(self) -> None:
        """Block until the other end goes away (the test's way of saying 'stop')."""
        self.sock.settimeout(None)
        while True:
            try:
                self.recv()
            except EOFError:
                return

    def close(self) -> None:
        self.sock.close()


class ChildError(RuntimeError):
    pass


class Child:
    """A helper process forked from pytest, running ``fn(channel, *args)``.

    The child keeps only fds 0-2 and its channel.  ``stop()`` (or leaving the
    ``with`` block) closes the channel, gives the child a moment to return,
    then kills and reaps it and everything it started.
    """

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                gc.freeze()  # objects shared with pytest are never finalised here
                set_comm("t" + fn.__name__)
                keep = child_sock.fileno()
                os.closerange(3, keep)
                os.closerange(keep + 1, 1 << 16)
                chan = Channel(child_sock)
                try:
                    fn(chan, *args)
                    code = 0
                except BaseException:
                    try:
                        chan.send({"error": traceback.format_exc()})
                    except BaseException:
                        pass
            finally:
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.chan = Channel(parent_sock)
        self.stopped = False

    def recv(self, timeout: float = 20.0) -> tuple[Any, list[int]]:
        try:
            msg, fds = self.chan.recv(timeout)
        except EOFError:
            raise ChildError(f"helper {self.pid} exited without a word") from None
        if isinstance(msg, dict) and "error" in msg:
            raise ChildError(f"helper {self.pid} failed:\n{msg['error']}")
        return msg, fds

    def ready(self, timeout: float = 20.0) -> Any:
        """The child's next message; its fds (if any) are closed."""
        msg, fds = self.recv(timeout)
        for fd in fds:
            os.close(fd)
        return msg

    def send(self, obj: Any = None, fds: Sequence[int] = ()) -> None:
        self.chan.send(obj, fds)

    def stop(self, grace: float = 5.0) -> None:
        """Close the channel, wait for the child to finish, kill what is left, reap."""
        if self.stopped:
            return
        self.stopped = True
        tree = [self.pid] + descendants(self.pid)
        self.chan.close()
        terminate(tree, grace=grace)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()



def state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()[0]


def comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    return sorted(p for p, pp in ppid_map().items() if pp == pid)


def wait_for(pred: Callable[[], object], what: str, timeout: float = 15.0,
             step: float = 0.005):
    """Poll ``pred`` until it returns something true; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)

