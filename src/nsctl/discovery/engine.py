"""The discovery engine: runs the sources over every process, then the host-wide passes.

Each process is read once, in one pass, while nsctl holds its pidfd: every
per-process source reads from the same /proc/PID directory fd, and what they
found is committed only if the pidfd says the process is still alive at the
end (so a PID reused mid-read can't lend its namespaces to another process).

A namespace's hierarchy (id, owner, parent) is resolved the first time any
source holds an fd for it (:meth:`Scan.learn`), walking up through owners and
parents that nothing else may show: that is how hidden ancestors are found,
each namespace costing a constant number of ioctls (no pairwise comparisons).

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
TYPE_CHECKING = False  # typing costs ~10 ms to import; only type checkers need it

from ..kernel import nsfs, pidfd, procfs
from ..kernel.errors import AccessDenied, NoSuchProcess, NsctlError, Unsupported, classify
from ..model import Namespace, Problem, Process, Reference, Snapshot
from . import shares
from .hierarchy import resolve


class Options:
    """Which sources run.  All on by default except threads (costly on big hosts)."""

    __slots__ = ("processes", "threads", "fds", "sockets", "bindmounts", "hierarchy",
                 "containers", "proc")

    def __init__(self, processes: bool = True, threads: bool = False, fds: bool = True,
                 sockets: bool = True, bindmounts: bool = True, hierarchy: bool = True,
                 containers: bool = True, proc: str = procfs.PROC) -> None:
        self.processes = processes
        self.threads = threads
        self.fds = fds
        self.sockets = sockets
        self.bindmounts = bindmounts
        self.hierarchy = hierarchy
        self.containers = containers
        self.proc = proc


class ProcHandle:
    """One process being read: its pidfd, its /proc directory fd, and what was staged."""

    __slots__ = ("pid", "pidfd", "dirfd", "view", "process", "staged", "fds", "threads")

    def __init__(self, pid: int, pidfd: int, dirfd: int) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.dirfd = dirfd
        # Where its ns/, mountinfo and root are read: /proc/PID, or a live thread's
        # task dir once the main thread has exited.
        self.view = dirfd
        self.process: Process | None = None
        self.staged: list[tuple[str, int, Reference]] = []
        self.fds: list[tuple[int, str]] | None = None
        self.threads = 0   # as /proc/PID/stat counted them (0: not read)

    def stage(self, ns_type: str, ino: int, ref: Reference) -> None:
        self.staged.append((ns_type, ino, ref))


if TYPE_CHECKING:
    from typing import Callable, Protocol

    class Source(Protocol):
        """A discovery source: a per-process reader (``read_process``), a host-wide
        pass (``finish``), or both; ``enabled`` says whether the options want it."""

        name: str

        def enabled(self, opts: Options) -> bool: ...


class Memo:
    """What one scan read, for the next one to take over (see the module docstring).

    ``procs``: pid -> (its Process, what it staged, the (mount ns, nsfs mount points)
    read through it or None); ``foreign``: mount ns no process is in -> the
    (type, inode, mount point) of the namespace files mounted in it; ``snap``: the
    scan's snapshot, for the hierarchy of the namespaces taken over.
    """

    __slots__ = ("snap", "procs", "foreign")

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.procs: dict[int, tuple[Process, list, tuple[int, set[str]] | None]] = {}
        self.foreign: dict[int, list[tuple[str, int, str]]] = {}


class Scan:
    """Working state of one discovery run; becomes a :class:`Snapshot`."""

    def __init__(self, opts: Options, memo: Memo | None = None) -> None:
        self.opts = opts
        self.snap = Snapshot()
        self.memo = memo                  # the previous scan's, when taking over from it
        self.record = Memo(self.snap)     # this scan's, for the next one
        self.stale = False                # something could not be taken over: scan fully
        self.resolved: set[int] = set()
        self.learned: list[Namespace] = []   # in the order first seen
        self.unsupported: set[str] = set()    # kernel interfaces found missing
        # Shared between sources: filled by one, read by another.
        self.socket_netns: dict[int, int] = {}           # socket inode -> netns inode
        self.mnt_reader: dict[int, int] = {}              # mnt ns -> pid whose mountinfo we read
        self.nsfs_mountpoints: dict[int, set[str]] = {}   # mnt ns -> nsfs mount points in it
        self.kept_fds: dict[int, int] = {}                # ns inode -> fd kept for a later pass
        self.cgroup_everywhere: bool | None = None        # nsctl is in a container (containers)
        self.proc_fd = -1                                 # directory fd of /proc
        self.self_pid = os.getpid()
        self.nsfs_dev = nsfs.nsfs_dev()  # one superblock for all

    def sub(self) -> "Scan":
        """A scan of its own for one share of the processes (nsctl.discovery.shares):
        the same options and viewpoint, its own findings."""
        sub = Scan(self.opts)
        sub.snap.own = self.snap.own
        sub.proc_fd = self.proc_fd
        sub.self_pid = self.self_pid
        return sub

    # --- namespaces -------------------------------------------------------
    def namespace(self, ns_type: str, ino: int) -> Namespace:
        ns = self.snap.namespaces.get(ino)
        if ns is None:
            ns = self.snap.namespaces[ino] = Namespace(ino, ns_type)
        return ns

    def learn(self, fd: int, ns_type: str | None = None, st: os.stat_result | None = None) -> int:
        """Record the namespace behind ``fd`` and, on first sight, its hierarchy.

        Returns its inode.  Owners and parents are opened through the ioctls
        and learned the same way, so ancestors that only a child keeps alive
        are found too.  ``st`` saves an fstat when the caller has one.
        """
        if st is None:
            st = os.fstat(fd)
        ino = st.st_ino
        if ino in self.resolved:
            if self.wants_fd(ino):
                # Taken over from the memo, now open again: its mounts are read afresh.
                self.kept_fds[ino] = os.dup(fd)
            return ino
        if ns_type is None:
            ns_type = nsfs.ns_type(fd)
        ns = self.namespace(ns_type, ino)
        ns.dev = st.st_dev
        self.resolved.add(ino)
        self.learned.append(ns)
        if ns_type == "mnt" and ino not in self.kept_fds and self.opts.bindmounts:
            self.kept_fds[ino] = os.dup(fd)   # a mount ns no process is in is read later
        if self.opts.hierarchy:
            resolve(self, ns, fd)
        return ino

    def wants_fd(self, ino: int) -> bool:
        """Whether an fd for namespace ``ino`` is still of use: it is not learned yet,
        or it is a mount namespace taken over from the memo (with an fd, the mounts
        in it are read afresh instead of taken over)."""
        if ino not in self.resolved:
            return True
        return self.memo is not None and self.opts.bindmounts and ino not in self.kept_fds \
            and self.snap.namespaces[ino].type == "mnt"

    def learn_link(self, link: str, ns_dir: int, expect_ino: int | None,
                   ns_type: str | None = None) -> int | None:
        """Open ns link ``link`` of the /proc ns directory fd ``ns_dir`` and learn the
        namespace; None if it changed or vanished.

        ``expect_ino`` (from a readlink) guards against the link now naming
        another namespace than the one the caller saw.
        """
        try:
            fd = nsfs.open_ns_link(link, ns_dir)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if expect_ino is not None and st.st_ino != expect_ino:
                return None
            return self.learn(fd, ns_type, st)
        except NsctlError:
            return None
        finally:
            os.close(fd)

    def learn_path(self, path: str, dir_fd: int | None, expect_ino: int | None,
                   ns_type: str | None = None) -> int | None:
        """As :meth:`learn_link`, for any other path that our /proc resolves (an fd
        link): opened only once it is known to be namespace ``expect_ino``
        (nsfs.open_ns), so a FIFO or device swapped in meanwhile is never opened."""
        return self.learn_from(lambda: nsfs.open_ns(path, dir_fd, expect_ino), ns_type)

    def learn_from(self, open_fd: Callable[[], int], ns_type: str | None = None) -> int | None:
        """Learn the namespace behind the fd that ``open_fd()`` returns (a checked
        opener of nsctl.kernel.nsfs; the fd is closed after); None where it fails."""
        try:
            fd = open_fd()
        except NsctlError:
            return None
        try:
            return self.learn(fd, ns_type)
        except NsctlError:
            return None
        finally:
            os.close(fd)

    def adopt(self, ino: int | None) -> None:
        """Take over a namespace (and its owner and parent) from the memo's snapshot."""
        if ino is None or ino in self.resolved:
            return
        prev = self.memo.snap.namespaces.get(ino) if self.memo is not None else None
        if prev is None:
            self.stale = True
            return
        ns = self.namespace(prev.type, ino)
        ns.dev, ns.id, ns.owner, ns.parent, ns.owner_uid = (
            prev.dev, prev.id, prev.owner, prev.parent, prev.owner_uid)
        self.resolved.add(ino)
        self.learned.append(ns)
        self.adopt(prev.owner)
        self.adopt(prev.parent)

    def problem(self, reason: str, what: str, pid: int | None = None) -> None:
        self.snap.problems.append(Problem(reason=reason, what=what, pid=pid))

    def problem_from(self, exc: BaseException, what: str, pid: int | None = None) -> None:
        if isinstance(exc, OSError):
            exc = classify(exc, what)
        reason = {NoSuchProcess: "vanished", AccessDenied: "denied",
                  Unsupported: "unsupported"}.get(type(exc), "error")
        self.problem(reason, str(exc) if str(exc).startswith(what) else f"{what}: {exc}", pid)

    # --- commit -----------------------------------------------------------
    def commit(self, proc: ProcHandle) -> None:
        """Make what was read of a live process part of the result."""
        process = proc.process
        if process is not None:
            self.snap.processes[proc.pid] = process
        self._commit_refs(proc.pid, proc.staged)
        mnt = process.ns.get("mnt") if process is not None else None
        read = None
        if mnt is not None and self.mnt_reader.get(mnt) == proc.pid:
            read = (mnt, self.nsfs_mountpoints.get(mnt, set()))
        self.record.procs[proc.pid] = (process, proc.staged, read)

    def _commit_refs(self, pid: int, staged: list[tuple[str, int, Reference]]) -> None:
        for ns_type, ino, ref in staged:
            ns = self.namespace(ns_type, ino)
            ns.refs.append(ref)
            if ref.kind == "process" and ref.link == ns_type:
                ns.pids.append(pid)

    def take_over(self, pid: int,
                  entry: tuple[Process, list, tuple[int, set[str]] | None]) -> None:
        """Commit what the memo has of a process that did nothing since."""
        process, staged, read = entry
        if read is not None and read[0] in self.mnt_reader:
            # Its mount namespace was read afresh through another process already.
            staged = [s for s in staged if s[2].kind != "bindmount" or s[2].mntns != read[0]]
            read = None
        resolved = self.resolved
        for _type, ino, _ref in staged:   # (a process's every ns link is staged)
            if ino not in resolved:
                self.adopt(ino)
        if read is not None:
            self.mnt_reader[read[0]] = pid
            self.nsfs_mountpoints[read[0]] = read[1]
        if process is not None:
            self.snap.processes[pid] = process
        self._commit_refs(pid, staged)
        self.record.procs[pid] = (process, staged, read)


def _drop(scan: Scan, proc: ProcHandle) -> None:
    """Forget a process that is not committed: what it staged goes with it, and a
    mount namespace read through it may be read again through another process."""
    for mnt in [m for m, reader in scan.mnt_reader.items() if reader == proc.pid]:
        del scan.mnt_reader[mnt]
        scan.nsfs_mountpoints.pop(mnt, None)


def read_process(scan: Scan, pid: int, readers: list[Source]) -> None:
    """Read one process with every per-process source, under its pidfd."""
    try:
        pfd = pidfd.open_pidfd(pid)
    except NsctlError:
        return  # gone before we started: never part of this scan
    try:
        try:
            dirfd = procfs.open_dir(str(pid), dir_fd=scan.proc_fd)
        except OSError as exc:
            scan.problem_from(exc, f"pid {pid}", pid)
            return
        proc = ProcHandle(pid=pid, pidfd=pfd, dirfd=dirfd)
        try:
            for source in readers:
                try:
                    source.read_process(scan, proc)
                except (OSError, NsctlError) as exc:
                    gone = isinstance(exc, (NoSuchProcess, FileNotFoundError, ProcessLookupError))
                    if gone or not pidfd.is_alive(pfd):
                        scan.problem("vanished", f"pid {pid}: exited during the scan", pid)
                        _drop(scan, proc)
                        return
                    scan.problem_from(exc, f"pid {pid}: {source.name}", pid)
                    if proc.process is None:
                        _drop(scan, proc)  # nothing of it could be read
                        return
            if pidfd.is_alive(pfd):
                scan.commit(proc)
            else:
                scan.problem("vanished", f"pid {pid}: exited during the scan", pid)
                _drop(scan, proc)
        finally:
            if proc.view != dirfd:
                os.close(proc.view)
            os.close(dirfd)
    finally:
        os.close(pfd)


def run(opts: Options, sources: list[Source]) -> Snapshot:
    """Run every enabled source and return the snapshot."""
    return run_scan(opts, sources).snap


def run_scan(opts: Options, sources: list[Source], memo: Memo | None = None,
             dirty: set[int] | None = None) -> Scan:
    """Run every enabled source; with a ``memo``, read afresh only the processes
    in ``dirty`` and those the memo lacks, and take the others over.  The scan's
    ``snap`` is the result, ``record`` the memo for the next scan, and ``stale``
    says that something could not be taken over (scan fully next)."""
    # A scan allocates ~10 objects per namespace and frees none of them: the cyclic
    # collector would only walk them again and again (~10 % of a big scan), and the
    # model holds no cycles to collect.  Back on afterwards, as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_scan(opts, sources, memo, dirty)
    finally:
        if collecting:
            gc.enable()


def _run_scan(opts: Options, sources: list[Source], memo: Memo | None,
              dirty: set[int] | None) -> Scan:
    scan = Scan(opts, memo)
    active = [s for s in sources if s.enabled(opts)]
    readers = [s for s in active if hasattr(s, "read_process")]
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
                if entry is None or pid in dirty or entry[0] is None or \
                        not _same_process(pid, entry[0], scan.proc_fd):
                    fresh.append(pid)   # new, busy, or its PID now names another process
                else:
                    scan.take_over(pid, entry)
        workers = shares.workers_for(len(fresh)) if memo is None else 1
        if workers < 2 or not shares.read_shared(
                scan, fresh, lambda sub, pid: read_process(sub, pid, readers), workers):
            for pid in fresh:
                read_process(scan, pid, readers)
        if memo is not None:
            scan.snap.processes = dict(sorted(scan.snap.processes.items()))
        for source in active:
            if hasattr(source, "finish"):
                source.finish(scan)
    finally:
        os.close(scan.proc_fd)
        for fd in scan.kept_fds.values():
            os.close(fd)
    scan.snap.has_ns_id = nsfs.has_ns_id()
    scan.snap.viewer_pid = scan.self_pid
    return scan


def _same_process(pid: int, process: Process, proc_fd: int) -> bool:
    """Whether ``pid`` still names ``process``: by its pidfd's inode where those are
    unique (pidfs), else by its start time (clock ticks: a PID reused within the
    same 10 ms would pass for the old process)."""
    if process.pidfd_ino is not None and pidfd.inodes_are_unique():
        return pidfd.same_process(pid, process.pidfd_ino)
    return procfs.starttime(pid, proc_fd) == process.starttime


def _read_own(scan: Scan) -> None:
    """nsctl's own namespaces: the viewpoint every PID and path is relative to."""
    for link in nsfs.LINK_TYPE:
        try:
            parsed = nsfs.parse_link(os.readlink(f"/proc/self/ns/{link}"))
        except OSError:
            continue
        if parsed:
            scan.snap.own[link] = parsed[1]
