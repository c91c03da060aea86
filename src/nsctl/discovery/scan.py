"""The state of one discovery run, which every source reads and writes.

A :class:`Scan` becomes a :class:`~nsctl.model.Snapshot`.  Sources read each
process into a :class:`ProcHandle` (committed only if the process is still alive
when every source has read it), learn namespaces through :meth:`Scan.learn`, and
record what they could not read with :meth:`Scan.problem_from`.  A namespace's
hierarchy (id, owner, parent) is resolved the first time any source holds an fd
for it, walking up through owners and parents that nothing else may show: that
is how hidden ancestors are found, each namespace costing a constant number of
ioctls (no pairwise comparisons).
"""
from __future__ import annotations

import os

from ..kernel import nsfs, procfs
from ..kernel.errors import AccessDenied, NsctlError, Unsupported, classify
from ..model import Namespace, Problem, Process, Reference, Snapshot

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable

    # A namespace link or bind mount read, kept until the process is known alive:
    # (type, inode, the reference to it).
    Staged = tuple[str, int, Reference]
    # What a Memo keeps of one process (see there).
    MemoEntry = tuple[Process | None, list[Staged], tuple[int, set[str]] | None]


class Options:
    """Which sources run.  All on by default except threads (costly on big hosts).

    ``exclude_trees``: PIDs whose process trees (they and every descendant, by the
    ppid chain of /proc/PID/stat) the scan leaves out, as if they did not exist:
    ``nsctl serve`` names itself, so that its helpers (and the children they fork
    to enter namespaces) never show as holders.  No process can make itself a
    descendant of another, so a hostile one cannot hide this way."""

    __slots__ = ("processes", "threads", "fds", "sockets", "bindmounts", "hierarchy",
                 "containers", "proc", "exclude_trees")

    def __init__(self, processes: bool = True, threads: bool = False, fds: bool = True,
                 sockets: bool = True, bindmounts: bool = True, hierarchy: bool = True,
                 containers: bool = True, proc: str = procfs.PROC,
                 exclude_trees: frozenset[int] = frozenset()) -> None:
        self.processes = processes
        self.threads = threads
        self.fds = fds
        self.sockets = sockets
        self.bindmounts = bindmounts
        self.hierarchy = hierarchy
        self.containers = containers
        self.proc = proc
        self.exclude_trees = exclude_trees


class LeftOut(Exception):
    """Raised by the processes source for a process in an excluded tree
    (``Options.exclude_trees``): the scan drops it without a problem."""

    def __init__(self, starttime: int) -> None:
        super().__init__("left out")
        self.starttime = starttime


class ProcHandle:
    """One process being read: its pidfd (-1 where the host gives none), its /proc
    directory fd, and what was staged."""

    __slots__ = ("pid", "pidfd", "dirfd", "view", "process", "staged", "fds", "threads")

    def __init__(self, pid: int, pidfd: int, dirfd: int) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.dirfd = dirfd
        # Where its ns/, mountinfo and root are read: /proc/PID, or a live thread's
        # task dir once the main thread has exited.
        self.view = dirfd
        self.process: Process | None = None
        self.staged: list[Staged] = []
        self.fds: list[tuple[int, str]] | None = None
        self.threads = 0   # as /proc/PID/stat counted them (0: not read)

    def stage(self, ns_type: str, ino: int, ref: Reference) -> None:
        self.staged.append((ns_type, ino, ref))


class Source:
    """A discovery source, as the engine's list ``SOURCES`` declares it.

    ``read(scan, proc)`` runs for each process, while nsctl holds its pidfd, in the
    order of the list; ``finish(scan)`` runs once after every process was read,
    again in that order.  A source has either or both.  ``wanted(options)`` says
    whether the options ask for it; ``name`` is how problems name it
    ("pid 12: fds: ...").
    """

    __slots__ = ("name", "wanted", "read", "finish")

    def __init__(self, name: str, wanted: Callable[[Options], bool],
                 read: Callable[[Scan, ProcHandle], None] | None = None,
                 finish: Callable[[Scan], None] | None = None) -> None:
        self.name = name
        self.wanted = wanted
        self.read = read
        self.finish = finish


class Memo:
    """What one scan read, for the next one to take over (see nsctl.discovery.engine).

    ``procs``: pid -> (its Process or None, what it staged, the (mount ns, nsfs
    mount points) read through it or None); ``foreign``: mount ns no process is in ->
    the (type, inode, mount point, Reference) of the namespace files mounted in it;
    ``snap``: the scan's snapshot, for the hierarchy of the namespaces taken over; ``excluded``: pid
    -> (pidfd inode or None, start time) of the processes left out (``exclude_trees``),
    so that the next scan leaves them out without reading them again; ``refused``: pid
    -> (pidfd inode or None, start time, the problem) of the processes that refused
    to be read at all (a process may refuse even root), so that the next scan reports
    them again without asking (a process event about one has it asked again);
    ``children``: the child references made (nsctl.discovery.hierarchy), for the next
    scan to use again.
    """

    __slots__ = ("snap", "procs", "foreign", "excluded", "refused", "children")

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.procs: dict[int, MemoEntry] = {}
        self.foreign: dict[int, list[tuple[str, int, str, Reference]]] = {}
        self.excluded: dict[int, tuple[int | None, int]] = {}
        self.refused: dict[int, tuple[int | None, int, Problem]] = {}
        self.children: dict[tuple[int, int | None, str], Reference] = {}


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
        self.outside: dict[int, bool] = {}   # pid -> in an excluded tree (this scan)

    def sub(self) -> Scan:
        """A scan of its own for one share of the processes (nsctl.discovery.shares):
        the same options and viewpoint, its own findings."""
        sub = Scan(self.opts)
        sub.snap.own = self.snap.own
        sub.proc_fd = self.proc_fd
        sub.self_pid = self.self_pid
        return sub

    def left_out(self, pid: int, ppid: int) -> bool:
        """Whether process ``pid`` (whose parent is ``ppid``) is in a tree that
        ``Options.exclude_trees`` leaves out: its ppid chain, read from /proc/PID/stat
        where this scan has not met that ancestor yet, reaches one of those PIDs."""
        roots = self.opts.exclude_trees
        chain = [pid]
        cur: int | None = ppid
        verdict = pid in roots
        while not verdict and cur is not None:
            if cur in roots:
                verdict = True
                break
            known = self.outside.get(cur)
            if known is not None:
                verdict = known
                break
            if cur <= 1 or cur in chain:   # (a chain read while processes exit: no loop)
                break
            chain.append(cur)
            try:
                cur = procfs.parse_stat(procfs.read_text(f"{cur}/stat", self.proc_fd))[2]
            except (OSError, NsctlError):
                cur = None     # gone: its children were reparented, to be read so
        for p in chain:
            self.outside[p] = verdict
        return verdict

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
            self._resolve(ns, fd)
        return ino

    def _resolve(self, ns: Namespace, fd: int) -> None:
        """Fill id, owner, parent and owner UID of ``ns`` from its open fd (NS_GET_USERNS,
        NS_GET_PARENT): owners and parents are learned in turn, up to the top."""
        ns.id = nsfs.ns_id(fd)
        owner_fd = None
        if "NS_GET_USERNS" not in self.unsupported:
            try:
                owner_fd = nsfs.owning_userns(fd)
            except AccessDenied:
                pass  # owned from outside our user namespace: not ours to see
            except Unsupported as exc:  # kernels before 4.9: no owners, say so once
                self.unsupported.add("NS_GET_USERNS")
                self.problem_from(exc)
        if owner_fd is not None:
            try:
                ns.owner = self.learn(owner_fd, "user")
            finally:
                os.close(owner_fd)
        if ns.type == "user":
            ns.parent = ns.owner  # a user namespace's owner is its parent
            try:
                ns.owner_uid = nsfs.owner_uid(fd)
            except NsctlError:
                pass
        else:
            if ns.owner is not None:
                ns.owner_uid = self.snap.namespaces[ns.owner].owner_uid
            if ns.type == "pid" and "NS_GET_PARENT" not in self.unsupported:
                try:
                    parent_fd = nsfs.parent_ns(fd)
                except Unsupported as exc:
                    self.unsupported.add("NS_GET_PARENT")
                    self.problem_from(exc)
                    return
                if parent_fd is not None:
                    try:
                        ns.parent = self.learn(parent_fd, "pid")
                    finally:
                        os.close(parent_fd)

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
        self.snap.problems.append(Problem(reason, what, pid))

    def problem_from(self, exc: BaseException, what: str | None = None,
                     pid: int | None = None) -> None:
        self.snap.problems.append(problem_of(exc, what, pid))

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

    def _commit_refs(self, pid: int, staged: list[Staged]) -> None:
        for ns_type, ino, ref in staged:
            ns = self.namespace(ns_type, ino)
            ns.refs.append(ref)
            if ref.kind == "process" and ref.link == ns_type:
                ns.pids.append(pid)

    def take_over(self, pid: int, entry: MemoEntry) -> None:
        """Commit what the memo has of a process that did nothing since."""
        process, staged, read = entry
        if read is not None and read[0] in self.mnt_reader:
            # Its mount namespace was read afresh through another process already.
            staged = [s for s in staged if s[2].kind != "bindmount" or s[2].mntns != read[0]]
            read = None
            entry = (process, staged, read)
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
        self.record.procs[pid] = entry      # (the memo's own, where nothing was dropped)


def problem_of(exc: BaseException, what: str | None = None, pid: int | None = None) -> Problem:
    """The problem record of a failure while reading ``what`` (of process ``pid``, else
    the one the exception names): its reason is the exception's (an OSError is
    classified first), its text the exception's message, led by ``what`` unless
    the message already starts with it."""
    if isinstance(exc, OSError):
        exc = classify(exc, what or "read")
    if isinstance(exc, NsctlError):
        reason = exc.reason
        if pid is None:
            pid = exc.pid
    else:
        reason = NsctlError.reason
    text = str(exc)
    if what is not None and not text.startswith(what):
        text = f"{what}: {text}"
    return Problem(reason, text, pid)
