"""A full scan's processes shared among forked workers, one per core.

Reading a process is nearly all system calls (about 45 for a process, 7 more
for each namespace first seen), so on a big host the cores can share them.
The PIDs go into one pipe; each worker, and this process, takes a few at a
time and reads them into a scan of its own (:meth:`Scan.sub`).  Taking them
a few at a time balances the load: one process that holds thousands of
namespace fds keeps one worker busy while the others take the rest.

A worker hands back rows (tuples) in a memfd, and the mount namespace fds it
kept over SCM_RIGHTS.  The parent merges the namespaces first and then every
process in PID order, as a serial scan commits them (:meth:`Scan.take_over`).
So the snapshot is the same, in the same order.  A mount namespace read by
processes in two shares keeps the bind mounts read through the lower PID.
A worker that fails has its processes read by the parent.

Only a privileged nsctl shares.  Fds in flight over a unix socket count
against the sender's RLIMIT_NOFILE unless it has CAP_SYS_ADMIN or
CAP_SYS_RESOURCE in the initial user namespace, and an unprivileged scan
sees little to share anyway.
"""
from __future__ import annotations

import os
from array import array

from ..kernel.errors import UNSUPPORTED
from ..kernel.forked import Forked
from ..model import Namespace, Problem, Process, Reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from .scan import Scan

SHARE_FROM = 300   # processes from which a second core pays for itself (~even at 270 here)
TAKE = 16          # PIDs a worker takes from the pipe at a time
FDS_PER_MESSAGE = 64
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24


def workers_for(processes: int) -> int:
    """How many workers (this process included) share a scan of ``processes``."""
    if processes < SHARE_FROM:
        return 1
    cores = os.cpu_count() or 1
    return min(cores, 8) if cores > 1 and _may_pass_fds() else 1


def _may_pass_fds() -> bool:
    """CAP_SYS_ADMIN or CAP_SYS_RESOURCE in the initial user namespace (the kernel
    checks them there): our effective set has one, and our user namespace maps
    every UID to itself."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            if f.read().split() != [b"0", b"0", b"4294967295"]:
                return False
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    caps = int(line.split()[1], 16)
                    return bool(caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE))
    except (OSError, ValueError):
        pass
    return False


class Part:
    """What one share read.  A worker sends it as rows (``to_bytes``); the share read
    here is merged as it is."""

    __slots__ = ("taken", "learned", "procs", "problems", "unsupported", "kept")

    def __init__(self, taken: list[int], learned: list[tuple], procs: list[tuple],
                 problems: list[tuple], unsupported: list[str], kept: dict[int, int]) -> None:
        self.taken = taken              # every PID this share took from the pipe
        self.learned = learned          # Namespace rows, in the order learned
        self.procs = procs              # (pid, Process or None, staged, read), as a Memo's
        self.problems = problems        # (reason, what, pid)
        self.unsupported = unsupported  # kernel interfaces found missing
        self.kept = kept                # mount ns inode -> fd kept for the bind-mount pass

    @classmethod
    def of(cls, sub: Scan, taken: list[int]) -> Part:
        return cls(taken, [ns.row() for ns in sub.learned],
                   [(pid, *entry) for pid, entry in sub.record.procs.items()],
                   [(p.reason, p.what, p.pid) for p in sub.snap.problems],
                   sorted(sub.unsupported), dict(sub.kept_fds))

    def to_bytes(self) -> bytes:
        """Rows of plain values, marshalled: both ends are one interpreter (forked), and
        marshal takes about half pickle's time for them, on the critical path."""
        import marshal

        procs = [(pid, process.row() if process is not None else None,
                  [(ns_type, ino, ref.row()) for ns_type, ino, ref in staged], read)
                 for pid, process, staged, read in self.procs]
        return marshal.dumps((self.taken, self.learned, procs, self.problems,
                              self.unsupported))

    @classmethod
    def from_bytes(cls, data: bytes, fds: dict[int, int]) -> Part:
        import marshal

        taken, learned, rows, problems, unsupported = marshal.loads(data)
        procs = [(pid, Process.from_row(process) if process is not None else None,
                  [(ns_type, ino, Reference(*ref)) for ns_type, ino, ref in staged], read)
                 for pid, process, staged, read in rows]
        return cls(taken, learned, procs, problems, unsupported, fds)


def read_shared(scan: Scan, pids: list[int], read: Callable[[Scan, int], None],
                workers: int) -> bool:
    """Read ``pids`` into ``scan`` with ``workers`` processes (this one included);
    False if the PIDs could not be queued (nothing was read: read them serially)."""
    queue = pid_queue(pids)
    if queue < 0:
        return False
    children: list[tuple[Forked, socket.socket]] = []   # (worker, socket its fds come over)
    parts: list[Part] = []
    try:
        for _ in range(workers - 1):
            children.append(_fork_worker(scan, queue, read))
        parts.append(_read_share(scan, queue, read))
        os.close(queue)
        queue = -1
        failed = False
        for child, sock in children:
            part = _collect(child, sock)
            if part is None:
                failed = True
            else:
                parts.append(part)
        if failed:
            # Read here what the failed workers took (and never sent back).
            done = {pid for part in parts for pid in part.taken}
            parts.append(_read_share(scan, -1, read, [p for p in pids if p not in done]))
        _merge(scan, parts)
        parts = []
    finally:
        if queue >= 0:
            os.close(queue)
        for child, sock in children:   # interrupted: leave no worker behind
            sock.close()
            child.abandon()
        for part in parts:             # not merged: close the fds it brought
            for fd in part.kept.values():
                os.close(fd)
    return True


def pid_queue(pids: list[int]) -> int:
    """A pipe holding every PID (or TID), its write end closed: the read end, or -1.
    Workers forked after this share it with :func:`take`."""
    import fcntl

    data = array("i", pids).tobytes()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        if len(data) > 65536:
            fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, len(data))
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]
    except OSError:
        os.close(rfd)
        return -1
    finally:
        os.close(wfd)
    return rfd


def take(queue: int, count: int) -> list[int]:
    """Up to ``count`` PIDs from a :func:`pid_queue`; [] once it is empty.  A pipe
    read is atomic, so workers reading at once never split a PID."""
    return list(array("i", os.read(queue, 4 * count)))


def _read_share(scan: Scan, queue: int, read: Callable[[Scan, int], None],
                pids: list[int] | None = None) -> Part:
    """Read PIDs taken from ``queue`` (or the given ``pids``) into a scan of their own."""
    sub = scan.sub()
    taken: list[int] = []
    try:
        if pids is None:
            while batch := take(queue, TAKE):
                taken.extend(batch)
                for pid in batch:
                    read(sub, pid)
        else:
            taken = pids
            for pid in pids:
                read(sub, pid)
    except BaseException:
        for fd in sub.kept_fds.values():   # a long-running caller must not leak them
            os.close(fd)
        raise
    return Part.of(sub, taken)


def _fork_worker(scan: Scan, queue: int, read: Callable[[Scan, int], None]
                 ) -> tuple[Forked, socket.socket]:
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def work() -> bytes:   # in the worker: read a share; its fds go over the socket
        ours.close()
        part = _read_share(scan, queue, read)
        data = part.to_bytes()
        kept = list(part.kept.items())
        for i in range(0, len(kept), FDS_PER_MESSAGE):
            batch = kept[i:i + FDS_PER_MESSAGE]
            socket.send_fds(theirs, [array("q", [ino for ino, _fd in batch]).tobytes()],
                            [fd for _ino, fd in batch])
        return data

    try:
        child = Forked(work)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return child, ours


def _collect(child: Forked, sock: socket.socket) -> Part | None:
    """A worker's part, once it has sent everything and exited; None if it failed."""
    import socket

    fds: dict[int, int] = {}
    try:
        while True:
            msg, got, _flags, _addr = socket.recv_fds(sock, 8 * FDS_PER_MESSAGE,
                                                      FDS_PER_MESSAGE)
            if not msg:
                break
            # Fewer fds than inodes where the kernel truncated them (RLIMIT_NOFILE):
            # an inode without its fd is simply not kept.
            fds.update(zip(array("q", msg), got, strict=False))
    finally:
        sock.close()
    data = child.result()
    if not data:
        for fd in fds.values():
            os.close(fd)
        return None
    return Part.from_bytes(data, fds)


def _merge(scan: Scan, parts: list[Part]) -> None:
    """Commit the parts into ``scan`` as a serial scan would have (module docstring)."""
    resolved, namespaces = scan.resolved, scan.snap.namespaces
    for part in parts:
        for row in part.learned:
            if row[0] not in resolved:
                ns = namespaces[row[0]] = Namespace(*row)
                resolved.add(row[0])
                scan.learned.append(ns)
    entries = sorted((entry for part in parts for entry in part.procs), key=lambda e: e[0])
    for pid, process, staged, read in entries:
        scan.take_over(pid, (process, staged, read))
    # Each share says once what this kernel lacks: say it once in all.
    said = {p.what for p in scan.snap.problems if p.reason == UNSUPPORTED}
    problems = sorted((p for part in parts for p in part.problems),
                      key=lambda p: p[2] if p[2] is not None else 0)
    for reason, what, pid in problems:
        if reason == UNSUPPORTED:
            if what in said:
                continue
            said.add(what)
        scan.snap.problems.append(Problem(reason, what, pid))
    for part in parts:
        scan.unsupported.update(part.unsupported)
        for ino, fd in part.kept.items():
            if ino in scan.kept_fds:
                os.close(fd)
            else:
                scan.kept_fds[ino] = fd
        part.kept = {}
