"""Source: threads whose namespaces differ from their process's (``--threads``).

A thread cannot differ from its process in user, pid or time namespace (the
kernel refuses those to multithreaded callers), so five links are read per
thread, compared as text with the process's own links (parsing only what
differs).  A process with very many threads (the relationships interface's worst case: tens of
thousands, each in its own namespace) is shared among forked workers, one
per core, which take its threads from one queue a batch at a time while
nsctl is still listing them; each worker learns the namespaces its threads
show and sends them back, so the whole scan stays linear and uses every core.
The per-thread loop runs in C (nsctl.kernel._native) where that was built,
with the same system calls and outcome as the Python loop kept here.
"""
from __future__ import annotations

import os
from fcntl import ioctl as _ioctl

from ..kernel import nsfs, procfs
from ..model import THREAD, Namespace, Reference
from .scan import ProcHandle, Scan

THREAD_LINKS: tuple[str, ...] = ("mnt", "net", "uts", "ipc", "cgroup")
PARALLEL_MIN_THREADS = 4000   # below this, forking costs more than it saves
TAKE_TIDS = 256               # threads a worker takes from the queue at a time (<= 1024:
                              # a batch is written into the pipe whole, PIPE_BUF bytes at most)

# What scanning a set of threads yields: (tid, link, inode) for each link that differs.
Found = list  # list[tuple[int, str, int]]


def read(scan: Scan, proc: ProcHandle) -> None:
    """The threads of the process whose namespaces differ from its own."""
    if proc.process is None or proc.threads == 1:
        return   # one thread: it is the process (task/ is not listed for it)
    own = {link: f"{link}:[{ino}]" for link, ino in proc.process.ns.items()
           if link in THREAD_LINKS}
    task_fd = procfs.open_dir("task", dir_fd=proc.dirfd)
    try:
        workers = min(os.cpu_count() or 1, 8)
        if proc.threads >= PARALLEL_MIN_THREADS and workers > 1:
            found = _scan_parallel(scan, task_fd, proc.pid, proc.threads, own, workers)
        else:
            tids = [tid for tid in procfs.list_tasks(proc.dirfd) if tid != proc.pid]
            found = _scan(scan, task_fd, tids, own)
    finally:
        os.close(task_fd)
    pid = proc.pid
    proc.staged.extend([(link, ino, Reference(THREAD, pid, tid, None, link))
                        for tid, link, ino in found])


def _c_module():
    """The C loop (nsctl.kernel._native), or None where it was not built."""
    try:
        from ..kernel import _native
    except ImportError:
        return None
    return _native


NATIVE = _c_module()


def _scan(scan: Scan, task_fd: int, tids: list[int], own: dict[str, str]) -> Found:
    """The hot loop of the worst case: the same system calls in C where it was
    built (faster by Python's wrapper costs: see kernel/_native.c), else in Python."""
    if NATIVE is not None:
        return _scan_native(scan, task_fd, tids, own)
    return _scan_python(scan, task_fd, tids, own)


def _scan_native(scan: Scan, task_fd: int, tids: list[int], own: dict[str, str]) -> Found:
    """_scan_python's outcome through nsctl.kernel._native: C makes the system
    calls, these callbacks build the model."""
    resolved, learned, namespaces = scan.resolved, scan.learned, scan.snap.namespaces

    def general(ns_dir: int, link: str, ino: int) -> bool:
        return scan.learn_link(link, ns_dir, ino, link) is not None

    def learn_owner(user_fd: int) -> None:
        scan.learn(user_fd, "user")

    def adopt(ino: int, link: str, dev: int, ns_id: int | None, owner: int | None) -> None:
        ns = namespaces.get(ino)
        if ns is None:
            ns = namespaces[ino] = Namespace(ino, link)
        ns.dev, ns.id = dev, ns_id
        if owner is not None:
            ns.owner = owner
            ns.owner_uid = namespaces[owner].owner_uid
        resolved.add(ino)
        learned.append(ns)

    own_bytes = tuple(own[link].encode() if link in own else None for link in THREAD_LINKS)
    return NATIVE.scan_tasks(task_fd, tids, THREAD_LINKS, own_bytes, resolved,
                             scan.opts.hierarchy, general, learn_owner, adopt)


def _scan_python(scan: Scan, task_fd: int, tids: list[int], own: dict[str, str]) -> Found:
    """The hot loop of the worst case: keep per-thread work to syscalls."""
    found = []
    resolved = scan.resolved
    readlink, open_, close = os.readlink, os.open, os.close
    learn_fast = _fast_learner(scan)
    pairs = [(link, own.get(link), len(link) + 2) for link in THREAD_LINKS]
    for tid in tids:
        try:  # one lookup of TID/ns, then five one-component readlinks (cheaper)
            ns_dir = open_(f"{tid}/ns", procfs.DIR_FLAGS, dir_fd=task_fd)
        except FileNotFoundError:
            continue  # the thread exited
        try:
            for link, own_text, cut in pairs:
                text = readlink(link, dir_fd=ns_dir)
                if text == own_text:
                    continue
                ino = int(text[cut:-1])
                if ino not in resolved and not learn_fast(ns_dir, link, ino):
                    continue
                found.append((tid, link, ino))
        except FileNotFoundError:
            pass  # exited mid-read: what was found stays true of that moment
        except PermissionError:
            if not _thread_gone(task_fd, tid):
                raise
        finally:
            close(ns_dir)
    return found


def _thread_gone(task_fd: int, tid: int) -> bool:
    """After EACCES on a thread's link: whether the thread has exited.  An exiting
    thread loses its memory before its /proc entry, and meanwhile the kernel's access
    check on its links fails (seen about once in 80,000 reads of threads that come
    and go)."""
    try:
        os.stat(str(tid), dir_fd=task_fd)
    except FileNotFoundError:
        return True
    return False


def _fast_learner(scan: Scan):
    """Learn a thread's namespace: the general path of Scan.learn, unrolled.

    A thread's own namespace types (mnt, net, uts, ipc, cgroup) have no
    parent, so only the id and the owner are needed; mount namespaces take
    the general path (they need an fd kept for the bind-mount pass).
    """
    open_, fstat, close, ioctl = os.open, os.fstat, os.close, _ioctl
    flags = os.O_RDONLY | os.O_CLOEXEC
    resolved, learned, namespaces = scan.resolved, scan.learned, scan.snap.namespaces
    hierarchy = scan.opts.hierarchy

    def learn(ns_dir: int, link: str, ino: int) -> bool:
        if link == "mnt" or not hierarchy:
            return scan.learn_link(link, ns_dir, ino, link) is not None
        try:
            fd = open_(link, flags, dir_fd=ns_dir)
        except OSError:
            return False
        try:
            st = fstat(fd)
            if st.st_ino != ino:
                return False  # the thread moved meanwhile
            ns = namespaces.get(ino)
            if ns is None:
                ns = namespaces[ino] = Namespace(ino, link)
            ns.dev = st.st_dev
            ns.id = nsfs.ns_id(fd)
            try:
                ufd = ioctl(fd, nsfs.NS_GET_USERNS)
            except OSError:
                ufd = -1   # owner outside our view
            if ufd >= 0:
                try:
                    ust = fstat(ufd)
                    owner = ust.st_ino
                    if owner not in resolved:
                        scan.learn(ufd, "user", ust)
                    ns.owner = owner
                    ns.owner_uid = namespaces[owner].owner_uid
                finally:
                    close(ufd)
            resolved.add(ino)
            learned.append(ns)
            return True
        finally:
            close(fd)

    return learn


def _scan_parallel(scan: Scan, task_fd: int, pid: int, threads: int, own: dict[str, str],
                   workers: int) -> Found:
    """Share the threads of ``pid`` among forked workers and this process: each takes
    TAKE_TIDS at a time from one pipe (nsctl.discovery.shares), so all finish together.

    This process lists the threads into the pipe as the listing goes (60,000 take
    ~0.1 s), so the workers start at once.  (Listing them in each worker instead
    is no faster: two listings of one process's threads at once each take twice
    as long.)"""
    # Workers answer in marshal: both ends are one interpreter (forked), and for these
    # plain rows it is faster than pickle.
    import marshal

    from ..kernel.forked import Forked
    from .shares import take

    queue, feed = os.pipe2(os.O_CLOEXEC)

    def share() -> tuple[list[int], Found]:
        taken: list[int] = []
        found: Found = []
        while batch := take(queue, TAKE_TIDS):
            taken.extend(batch)
            found.extend(_scan(scan, task_fd, batch, own))
        return taken, found

    def work() -> bytes:   # in a worker
        os.close(feed)     # (so that the queue ends when this process closes it)
        start = len(scan.learned)
        taken, found = share()
        new = [ns.row() for ns in scan.learned[start:]]
        return marshal.dumps((taken, found, new))

    children: list[Forked] = []
    try:
        for _ in range(1, workers):
            children.append(Forked(work, "nsctl-threads"))
        tids, kept = _list_into(task_fd, pid, threads, feed)
        os.close(feed)
        feed = -1
        done, found = kept, _scan(scan, task_fd, kept, own)
        more_done, more_found = share()
        done.extend(more_done)
        found.extend(more_found)
        os.close(queue)
        queue = -1
        failed = False
        for child in children:
            data = child.result()
            if not data:
                failed = True
                continue
            taken, their_found, new = marshal.loads(data)
            for row in new:
                _merge(scan, row, task_fd, their_found)
            found.extend(their_found)
            done.extend(taken)
        if failed:   # do what the failed workers took here, rather than lose it
            seen = set(done)
            found.extend(_scan(scan, task_fd, [t for t in tids if t not in seen], own))
        return found
    finally:
        for fd in (queue, feed):
            if fd >= 0:
                os.close(fd)
        for child in children:   # interrupted: leave no worker behind
            child.abandon()


def _list_into(task_fd: int, pid: int, threads: int, feed: int) -> tuple[list[int], list[int]]:
    """List the threads of ``pid`` (all but the main one) into the pipe ``feed``,
    TAKE_TIDS at a time as the listing goes.  Returns every TID listed, and those
    the pipe had no room for (this process reads them)."""
    import fcntl
    from array import array

    fcntl.fcntl(feed, fcntl.F_SETFL, fcntl.fcntl(feed, fcntl.F_GETFL) | os.O_NONBLOCK)
    try:   # room for every thread, where the pipe may be that big
        fcntl.fcntl(feed, fcntl.F_SETPIPE_SZ, 4 * (threads + 2 * TAKE_TIDS))
    except OSError:
        pass
    tids: list[int] = []
    kept: list[int] = []

    def send(batch: list[int]) -> None:
        try:   # (a batch is at most PIPE_BUF bytes: written whole or not at all)
            os.write(feed, array("i", batch).tobytes())
        except BlockingIOError:
            kept.extend(batch)

    listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=task_fd)
    try:   # (task_fd is O_PATH: it can't be listed)
        with os.scandir(listing) as entries:
            batch: list[int] = []
            for entry in entries:
                tid = int(entry.name)
                if tid != pid:
                    batch.append(tid)
                    if len(batch) == TAKE_TIDS:
                        send(batch)
                        tids.extend(batch)
                        batch = []
            if batch:
                send(batch)
                tids.extend(batch)
    finally:
        os.close(listing)
    return tids, kept


def _merge(scan: Scan, row: tuple, task_fd: int, found: Found) -> None:
    """Adopt a namespace a worker learned, unless this process learned it too."""
    ino, ns_type, dev, ns_id, owner, parent, owner_uid = row
    if ino in scan.resolved:
        return
    if ns_type == "mnt" and scan.opts.bindmounts:
        # Mount namespaces need an fd kept for the bind-mount pass: open it here.
        for tid, link, f_ino in found:
            if f_ino == ino and scan.learn_link(f"{tid}/ns/{link}", task_fd, ino, link):
                return
    ns = scan.namespace(ns_type, ino)
    ns.dev, ns.id, ns.owner, ns.parent, ns.owner_uid = dev, ns_id, owner, parent, owner_uid
    scan.resolved.add(ino)
    scan.learned.append(ns)
