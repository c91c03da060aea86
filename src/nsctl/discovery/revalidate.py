"""Cheap checks of what a full read of a process would find, for watchers.

A watcher re-reads every process within its maximum age, because some changes
make no process event: setns(), an fd opened or closed, a process moved to
another cgroup, a bind mount in a mount namespace no process is in.  Reading a
process with every source costs a namespace lookup, a Reference and an ioctl
or two per namespace it holds; :func:`fingerprint` instead keeps the raw text
those sources start from (its ns links, fd links, stat fields, cmdline, cgroup,
owner), a few system calls and no parsing.  A process whose fingerprint is
unchanged since just before its last full read holds what it held then; one
whose fingerprint changed is read in full.  Namespace and socket links are
fingerprinted by identity, not by their text: a namespace's inode number is
reused as soon as it is freed, so ``net:[4026532236]`` may name another namespace
than a moment ago (an fd closed and opened again, a process that moved twice).
A namespace's identity is the never reused id in its nsfs file handle (Linux
6.18; the inode alone before), a socket's its inode and that inode's ctime.

Mount namespaces that no process is in have their nsfs mounts listed
(listmount/statmount) through an fd a process holds on them, and compared with
what the last scan found there (:func:`foreign_suspects`).
"""
from __future__ import annotations

import os
from functools import partial

from ..kernel import nsfs, procfs
from ..kernel.errors import NsctlError
from ..model import BINDMOUNT, FD

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..model import Reference
    from .scan import Memo

LINKS: tuple[str, ...] = tuple(nsfs.LINK_TYPE)
PF_KTHREAD = 0x00200000     # in /proc/PID/stat's flags: a kernel thread


# What an fd link names that is fingerprinted by identity (see the module's docstring).
NUMBERED: tuple[str, ...] = ("socket:[",) + tuple(f"{t}:[" for t in nsfs.CLONE_FLAGS)


def _native_fingerprint() -> Callable[[int, int, int, tuple, tuple], bytes | None] | None:
    """nsctl.kernel._native's fingerprint, where it was built."""
    try:
        from ..kernel._native import fingerprint as native
    except ImportError:
        return None
    return native


_NATIVE = _native_fingerprint()


def fingerprint(pid: int, proc_fd: int, self_pid: int) -> tuple | bytes | None:
    """The raw data a full read of ``pid`` starts from (None: gone, or unreadable);
    equal fingerprints mean equal reads.  Stat's clock and counter fields, which
    no source keeps, are left out; nsctl's own fds are its working handles, not
    read by the fd source either.  Made in C where nsctl.kernel._native was built
    (the same system calls, without Python's wrapper around each), else here."""
    if _NATIVE is not None:
        return _NATIVE(proc_fd, pid, self_pid, LINKS, NUMBERED)
    return fingerprint_py(pid, proc_fd, self_pid)


def fingerprint_py(pid: int, proc_fd: int, self_pid: int) -> tuple | None:
    """:func:`fingerprint` in Python."""
    try:
        dirfd = procfs.open_dir(str(pid), dir_fd=proc_fd)
    except OSError:
        return None
    try:
        stat = procfs.read_text("stat", dirfd)
        right = stat.rindex(")")
        fields = stat[right + 2:].split(None, 20)
        # comm, state, ppid, starttime (proc_pid_stat(5) fields 2-4 and 22); a kernel
        # thread's comm and state say what work it does at the moment
        # (kworker/1:2-events, idle or running): not a change to read it for.
        if int(fields[6]) & PF_KTHREAD:
            # In the initial namespaces for life, with no fds and no command line:
            # only its cgroup and owner can change.
            return ((stat[:stat.index("(")], fields[1], fields[19]),
                    procfs.read_text("cgroup", dirfd), os.stat(dirfd).st_uid)
        head = (stat[:right], fields[0], fields[1], fields[19])
        ns_dir = procfs.open_dir("ns", dirfd)
        try:
            links = tuple(nsfs.link_identity(link, ns_dir) for link in LINKS)
        finally:
            os.close(ns_dir)
        fds: tuple = ()
        if pid != self_pid:
            fds = tuple((fd, text, _fd_identity(fd, text, dirfd))
                        for fd, text in procfs.list_fds(dirfd))
        return (head, links, fds, procfs.read_text("cmdline", dirfd),
                procfs.read_text("cgroup", dirfd), os.stat(dirfd).st_uid)
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(dirfd)


def _fd_identity(fd: int, text: str, dir_fd: int) -> tuple | None:
    """What tells the socket or namespace behind fd ``fd`` (link text ``text``) apart
    from an earlier one of the same number, nothing opened: a socket's (inode, ctime)
    (its inode lives as long as the socket), a namespace's nsfs identity; None for
    anything else, or when the fd is gone."""
    if text.startswith("socket:["):
        try:
            st = os.stat(f"fd/{fd}", dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_ctime_ns
    if nsfs.parse_link(text) is None:
        return None
    return nsfs.link_identity(f"fd/{fd}", dir_fd)


def alive(pid: int, proc_fd: int) -> bool:
    """Whether ``pid`` is a live process now: in /proc and not a zombie (one that has
    exited and waits for its parent to reap it: it holds no namespace any more, and
    a short-lived process spends most of its life in /proc that way)."""
    try:
        stat = procfs.read_text(f"{pid}/stat", proc_fd)
    except OSError:
        return False
    right = stat.rfind(") ")
    return right < 0 or stat[right + 2:right + 3] not in ("Z", "X")


def foreign_suspects(memo: Memo, mnts: list[int], proc_fd: int) -> set[int]:
    """Of the mount namespaces ``mnts`` that no process is in (keys of
    ``memo.foreign``), those whose nsfs mounts may have changed since ``memo``:
    the processes to read again so that the next scan reads them afresh (the
    holders of each: its fds, the mount tables it is bind-mounted in).  A table
    is compared through one holder's fd where the kernel lists mounts without
    entering (listmount); else its holders are read."""
    readers = mount_readers(memo)
    out: set[int] = set()
    for mnt in mnts:
        kept = memo.foreign.get(mnt)
        if kept is None or mnt not in memo.snap.namespaces:
            continue
        holders, via = foreign_access(memo, mnt, readers, proc_fd)
        if via is not None and _same_table(via, kept):
            continue
        out |= holders
    return out


def mount_readers(memo: Memo) -> dict[int, int]:
    """mount namespace -> a process in it, of the processes ``memo`` read."""
    return {read[0]: pid for pid, (_p, _s, read) in memo.procs.items() if read is not None}


def foreign_access(memo: Memo, mnt: int, readers: dict[int, int], proc_fd: int
                   ) -> tuple[set[int], Callable[[], int] | None]:
    """(the processes holding mount namespace ``mnt``: by an fd, or by a bind mount in
    a mount table they are in; what opens ``mnt`` through one of them, or None)."""
    holders: set[int] = set()
    via: Callable[[], int] | None = None
    ns = memo.snap.namespaces.get(mnt)
    for ref in ns.refs if ns is not None else ():
        if ref.kind == FD and ref.pid is not None and ref.fd is not None:
            holders.add(ref.pid)
            via = via or partial(nsfs.open_ns, f"{ref.pid}/fd/{ref.fd}", proc_fd, mnt)
        elif ref.kind == BINDMOUNT and ref.mntns in readers and ref.path is not None:
            holders.add(readers[ref.mntns])
            # The mount point, resolved inside the root of a process in that mount
            # namespace, as the bind mount source reads it.
            via = via or partial(nsfs.open_mounted_ns, f"{readers[ref.mntns]}/root",
                                 ref.path, proc_fd, mnt)
    return holders, via


def _same_table(open_fd: Callable[[], int], kept: list[tuple[str, int, str, Reference]]
                ) -> bool:
    try:
        fd = open_fd()
    except NsctlError:
        return False
    try:
        mounts = nsfs.mounted_namespaces(fd)
    finally:
        os.close(fd)
    if mounts is None:
        return False
    now = set()
    for root, point in mounts:
        parsed = nsfs.parse_link(root)
        if parsed is not None:
            now.add((parsed[1], point))
    return now == {(ino, point) for _t, ino, point, _r in kept}
