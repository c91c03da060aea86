"""The discovery engine: runs the sources over every process, then the host-wide passes.

Each process is read once, in one pass, while nsctl holds its pidfd: every
per-process source reads from the same /proc/PID directory fd, and what they
found is committed only if the pidfd says the process is still alive at the
end (so a PID reused mid-read can't lend its namespaces to another process).
Where pidfd_open fails for another reason than a gone process (a kernel before
5.3, a seccomp filter), the /proc/PID directory fd is the handle instead (reads
through it fail once its process has exited), sockets go unread, and the
result says so once.

The sources run in the order of :data:`SOURCES`: per process, its links first,
then its container from its cgroup, then the bind mounts of its mount namespace
(so that fds opened through them are recognised), then fds, sockets, threads;
then the host-wide passes (containers labelled, mount namespaces no process is
in read, the hierarchy pruned and linked, every namespace named).  The scan state they share is
:mod:`nsctl.discovery.scan`; a source never imports this engine.

Incremental rescans (``nsctl watch``, ``nsctl serve``): a scan can leave a
:class:`Memo` of what it read per process; the next scan, told which processes
did something since (the kernel's process events name them), reads only those
afresh and takes the rest over from the memo, with the hierarchy of their
namespaces.  A process that did nothing still holds the same namespaces, so an
inode it held then names the same namespace now (the kernel reuses an inode
only after the namespace is gone).  What makes no process event (setns, an fd
opened, a mount in a namespace no process is in) waits until that process is
read afresh again (nsctl.timeline.watch names a rolling slice of them every interval).

A full scan of many processes is shared among forked workers, one per core
(:mod:`nsctl.discovery.shares`): each reads its share into a :meth:`Scan.sub`,
and the parent takes their results over in PID order, as the memo's are.
"""
from __future__ import annotations

import gc
import os

from ..kernel import nsfs, pidfd, procfs
from ..kernel.errors import UNSUPPORTED, VANISHED, AccessDenied, NoSuchProcess, NsctlError
from ..model import Snapshot
from . import bindmounts, containers, fds, hierarchy, names, procs, shares, sockets, tasks
from .scan import LeftOut, Memo, Options, ProcHandle, Scan, Source

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable

    Reader = tuple[str, Callable[[Scan, ProcHandle], None]]

SOURCES: tuple[Source, ...] = (
    Source("processes", lambda o: o.processes, procs.read),
    Source("containers", lambda o: o.containers and o.processes, containers.read,
           containers.finish),
    Source("bindmounts", lambda o: o.bindmounts, bindmounts.read, bindmounts.finish),
    Source("fds", lambda o: o.fds or o.sockets, fds.read),
    Source("sockets", lambda o: o.sockets, sockets.read),
    Source("threads", lambda o: o.threads, tasks.read),
    # Pruning and the 'child' references always; the ioctls run with opts.hierarchy.
    Source("hierarchy", lambda o: True, finish=hierarchy.finish),
    # Display names, from all the above (nsctl.discovery.names).
    Source("names", lambda o: True, finish=names.finish),
)


def _drop(scan: Scan, proc: ProcHandle) -> None:
    """Forget a process that is not committed: what it staged goes with it, and a
    mount namespace read through it may be read again through another process."""
    for mnt in [m for m, reader in scan.mnt_reader.items() if reader == proc.pid]:
        del scan.mnt_reader[mnt]
        scan.nsfs_mountpoints.pop(mnt, None)


def read_process(scan: Scan, pid: int, readers: list[Reader]) -> None:
    """Read one process with every per-process source (``readers``: (name, read)),
    under its pidfd."""
    pfd = -1
    if "pidfd_open" not in scan.unsupported:
        try:
            pfd = pidfd.open_pidfd(pid)
        except NoSuchProcess:
            return  # gone before we started: never part of this scan
        except NsctlError as exc:
            _no_pidfds(scan, exc)
    try:
        try:
            dirfd = procfs.open_dir(str(pid), dir_fd=scan.proc_fd)
        except OSError as exc:
            if pfd < 0 and isinstance(exc, FileNotFoundError):
                return  # gone before we started
            scan.problem_from(exc, f"pid {pid}", pid)
            return
        proc = ProcHandle(pid=pid, pidfd=pfd, dirfd=dirfd)
        try:
            for name, read in readers:
                try:
                    read(scan, proc)
                except LeftOut as out:
                    ino = pidfd.inode(pfd) if pfd >= 0 else None
                    scan.record.excluded[pid] = (ino, out.starttime)
                    _drop(scan, proc)
                    return
                except (OSError, NsctlError) as exc:
                    gone = isinstance(exc, (NoSuchProcess, FileNotFoundError, ProcessLookupError))
                    if gone or not _alive(proc):
                        scan.problem(VANISHED, f"pid {pid}: exited during the scan", pid)
                        _drop(scan, proc)
                        return
                    scan.problem_from(exc, f"pid {pid}: {name}", pid)
                    if proc.process is None:
                        _drop(scan, proc)  # nothing of it could be read
                        _note_refusal(scan, proc, exc)
                        return
            if _alive(proc):
                scan.commit(proc)
            else:
                scan.problem(VANISHED, f"pid {pid}: exited during the scan", pid)
                _drop(scan, proc)
        finally:
            if proc.view != dirfd:
                os.close(proc.view)
            os.close(dirfd)
    finally:
        if pfd >= 0:
            os.close(pfd)


def _note_refusal(scan: Scan, proc: ProcHandle, exc: BaseException) -> None:
    """A process that refused to be read at all (EACCES, EPERM): remembered, with the
    problem just reported, so that the next incremental scan says it again without
    asking (see :class:`~nsctl.discovery.scan.Memo`)."""
    if not isinstance(exc, (PermissionError, AccessDenied)):
        return
    started = procfs.starttime(proc.pid, scan.proc_fd)
    if started is None or not _alive(proc):
        return
    ino = pidfd.inode(proc.pidfd) if proc.pidfd >= 0 else None
    scan.record.refused[proc.pid] = (ino, started, scan.snap.problems[-1])


def _no_pidfds(scan: Scan, exc: NsctlError) -> None:
    """pidfd_open fails for a reason other than the process being gone: the kernel
    lacks it (before Linux 5.3), or a seccomp filter refuses it (a container's).  The
    scan goes on without pidfds; said once, as what this host lacks."""
    scan.unsupported.add("pidfd_open")
    cause = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else None
    scan.problem(UNSUPPORTED, f"pidfd_open: {cause or exc}: processes are told apart by "
                              "their /proc directories, and sockets are not read")


def _alive(proc: ProcHandle) -> bool:
    """Whether the process read is still the one alive at ``proc.pid``: by its pidfd,
    or without one by its /proc directory fd (which fails to read once that process
    has exited, even when the PID names another process by then)."""
    if proc.pidfd >= 0:
        return pidfd.is_alive(proc.pidfd)
    return procfs.dir_alive(proc.dirfd)


def run(opts: Options) -> Snapshot:
    """Run every wanted source and return the snapshot."""
    return run_scan(opts).snap


def run_scan(opts: Options, memo: Memo | None = None, dirty: set[int] | None = None,
             settled: bool = True) -> Scan:
    """Run every wanted source; with a ``memo``, read afresh only the processes
    in ``dirty`` and those the memo lacks, and take the others over.  The scan's
    ``snap`` is the result, ``record`` the memo for the next scan, and ``stale``
    says that something could not be taken over (scan fully next)."""
    # A scan allocates ~10 objects per namespace and frees none of them: the cyclic
    # collector would only walk them again and again (~10 % of a big scan), and the
    # model holds no cycles to collect.  Back on afterwards, as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_scan(opts, memo, dirty, settled)
    finally:
        if collecting:
            gc.enable()


def _run_scan(opts: Options, memo: Memo | None, dirty: set[int] | None,
              settled: bool = True) -> Scan:
    scan = Scan(opts, memo)
    wanted = [s for s in SOURCES if s.wanted(opts)]
    readers: list[Reader] = [(s.name, s.read) for s in wanted if s.read is not None]
    passes = [s.finish for s in wanted if s.finish is not None]
    scan.proc_fd = procfs.open_dir(opts.proc)
    try:
        _read_own(scan)
        pids = procfs.list_pids(opts.proc)
        fresh = pids
        if memo is not None:
            fresh = []
            dirty = dirty or set()
            for pid in pids:
                entry = memo.procs.get(pid)
                if entry is None and pid in memo.excluded:
                    # Left out before and still the same process: left out again
                    # (what it does is never read).
                    pidfd_ino, started = memo.excluded[pid]
                    if _same_process(pid, pidfd_ino, started, scan.proc_fd):
                        scan.record.excluded[pid] = (pidfd_ino, started)
                        scan.outside[pid] = True     # (its children need not ask again)
                        continue
                refused = memo.refused.get(pid) if entry is None else None
                if refused is not None and pid not in dirty and \
                        _same_process(pid, refused[0], refused[1], scan.proc_fd):
                    # Refused before and the same process, with no event since: it
                    # would refuse again (an event about it has it asked again).
                    scan.record.refused[pid] = refused
                    scan.snap.problems.append(refused[2])
                    continue
                if entry is None or pid in dirty or entry[0] is None or \
                        not _same_process(pid, entry[0].pidfd_ino, entry[0].starttime,
                                          scan.proc_fd):
                    fresh.append(pid)   # new, busy, or its PID now names another process
                else:
                    scan.take_over(pid, entry)
        workers = shares.workers_for(len(fresh)) if memo is None else 1
        if workers < 2 or not shares.read_shared(
                scan, fresh, lambda sub, pid: read_process(sub, pid, readers), workers):
            for pid in fresh:
                read_process(scan, pid, readers)
        if memo is not None and settled and _as_before(scan, memo):
            # What was read afresh was gone by then: the model is the memo's, the
            # very same object (a watcher then has nothing to compare or send).
            memo.excluded = scan.record.excluded
            scan.snap, scan.record = memo.snap, memo
            return scan
        if memo is not None:
            scan.snap.processes = dict(sorted(scan.snap.processes.items()))
        for finish in passes:
            finish(scan)
    finally:
        os.close(scan.proc_fd)
        for fd in scan.kept_fds.values():
            os.close(fd)
    scan.snap.has_ns_id = nsfs.has_ns_id()
    scan.snap.viewer_pid = scan.self_pid
    return scan


def _as_before(scan: Scan, memo: Memo) -> bool:
    """Whether an incremental scan took every process over from ``memo`` unchanged and
    committed none afresh (those it read had exited, as short-lived ones do): then
    every pass would find what the memo's scan found."""
    procs, before = scan.record.procs, memo.procs
    return (not scan.stale and procs.keys() == before.keys()
            and scan.record.refused.keys() == memo.refused.keys()
            and all(entry is before[pid] for pid, entry in procs.items()))


def _same_process(pid: int, pidfd_ino: int | None, started: int, proc_fd: int) -> bool:
    """Whether ``pid`` still names the process read with pidfd inode ``pidfd_ino`` and
    start time ``started``: by its pidfd's inode where those are unique (pidfs), else
    by its start time (clock ticks: a PID reused within the same 10 ms would pass
    for the old process)."""
    if pidfd_ino is not None and pidfd.inodes_are_unique():
        return pidfd.same_process(pid, pidfd_ino)
    return procfs.starttime(pid, proc_fd) == started


def _read_own(scan: Scan) -> None:
    """nsctl's own namespaces: the viewpoint every PID and path is relative to."""
    for link in nsfs.LINK_TYPE:
        try:
            parsed = nsfs.parse_link(os.readlink(f"/proc/self/ns/{link}"))
        except OSError:
            continue
        if parsed:
            scan.snap.own[link] = parsed[1]
