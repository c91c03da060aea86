"""Source: processes and their /proc/PID/ns links (incl. *_for_children)."""
from __future__ import annotations

import os

from ..kernel import nsfs, pidfd, procfs
from ..kernel.errors import NoSuchProcess
from ..model import PROCESS, Process, Reference
from .scan import LeftOut, ProcHandle, Scan

LINKS: tuple[str, ...] = tuple(nsfs.LINK_TYPE)


def _read_links(scan: Scan, base_fd: int) -> dict[str, int] | None:
    """The ns links under ``base_fd`` (/proc/PID or a task dir), learning new
    namespaces; None if a link this kernel has is missing."""
    ns: dict[str, int] = {}
    try:
        ns_dir = procfs.open_dir("ns", base_fd)  # one lookup of ns/, then short readlinks
    except FileNotFoundError:
        return None
    try:
        for link in LINKS:
            try:
                text = os.readlink(link, dir_fd=ns_dir)
            except FileNotFoundError:
                if link in scan.snap.own and link in nsfs.CLONE_FLAGS:
                    return None
                # A link this kernel lacks (time before 5.6), or pid_for_children
                # after unshare(CLONE_NEWPID) before the first fork: the kernel shows
                # no namespace until it has an init.
                continue
            parsed = nsfs.parse_link(text)
            if parsed is None:
                continue
            ns_type, ino = parsed
            if ino not in scan.resolved and scan.learn_link(link, ns_dir, ino, ns_type) is None:
                # Changed between readlink and open (setns/unshare) or gone: read again.
                try:
                    parsed = nsfs.parse_link(os.readlink(link, dir_fd=ns_dir))
                except FileNotFoundError:
                    return None
                if parsed is None or (parsed[1] not in scan.resolved and scan.learn_link(
                        link, ns_dir, parsed[1], ns_type) is None):
                    return None
                ino = parsed[1]
            ns[link] = ino
    finally:
        os.close(ns_dir)
    return ns


def read(scan: Scan, proc: ProcHandle) -> None:
    """The process's namespace links and its facts (stat, cmdline, owner, NSpid)."""
    dirfd = proc.dirfd
    comm, state, ppid, starttime, proc.threads = procfs.read_stat(dirfd)
    if scan.opts.exclude_trees and scan.left_out(proc.pid, ppid):
        raise LeftOut(starttime)   # (before its links: nothing of it is learned)
    ns = _read_links(scan, dirfd)
    if ns is None:
        # A link the kernel has (we do) is missing: either the process is exiting,
        # or only its main thread has exited and its other threads live on with
        # the namespaces; then one of them stands for the process.
        for tid in procfs.list_tasks(dirfd):
            if tid == proc.pid:
                continue
            try:
                view = procfs.open_dir(f"task/{tid}", dirfd)
            except FileNotFoundError:
                continue
            ns = _read_links(scan, view)
            if ns is not None:
                proc.view = view
                break
            os.close(view)
        else:
            raise NoSuchProcess(f"pid {proc.pid}: exiting", pid=proc.pid)
    try:
        cmdline = procfs.read_cmdline(dirfd)
    except OSError:
        cmdline = []
    uid = os.stat(dirfd).st_uid
    nspid = None
    if ns.get("pid") != scan.snap.own.get("pid"):
        fields = procfs.read_status_fields(dirfd, ("NSpid",))
        if "NSpid" in fields:
            nspid = procfs.parse_pids(fields["NSpid"], "status: NSpid")
    proc.process = Process(pid=proc.pid, ppid=ppid, comm=comm, cmdline=cmdline, uid=uid,
                           starttime=starttime, ns=ns, nspid=nspid, state=state,
                           pidns_pending="pid_for_children" not in ns
                           and "pid_for_children" in scan.snap.own,
                           pidfd_ino=pidfd.inode(proc.pidfd) if proc.pidfd >= 0 else None)
    for link, ino in ns.items():
        ns_type = nsfs.LINK_TYPE[link]
        if link != ns_type and ns.get(ns_type) == ino:
            continue  # pid_for_children equal to pid: the process ref covers it
        proc.stage(ns_type, ino, Reference(kind=PROCESS, pid=proc.pid, link=link))
