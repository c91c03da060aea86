"""Source: open file descriptors that are namespace files.

An fd opened through a bind mount (e.g. /run/netns/x) reads back as that
path, not as ``net:[...]``; such fds are recognised by comparing the path with
the nsfs mount points of the process's mount namespace (found by the
bind-mount source) and confirmed with one stat.
"""
from __future__ import annotations

import os

from ..kernel import nsfs, procfs
from ..model import FD, Reference
from .engine import Options, ProcHandle, Scan


class FdSource:
    name = "fds"

    def enabled(self, opts: Options) -> bool:
        return opts.fds or opts.sockets

    def read_process(self, scan: Scan, proc: ProcHandle) -> None:
        if proc.pid == scan.self_pid:
            return  # our own fds are the scan's working handles, not the host's
        proc.fds = fds = procfs.list_fds(proc.dirfd)
        if not scan.opts.fds:
            return
        mnt = proc.process.ns.get("mnt") if proc.process else None
        mountpoints = scan.nsfs_mountpoints.get(mnt, ()) if mnt is not None else ()
        for fd, text in fds:
            if text[0] == "/":
                if text not in mountpoints:
                    continue
                try:
                    ino = os.stat(f"fd/{fd}", dir_fd=proc.dirfd).st_ino
                except OSError:
                    continue
                ns_type = None
            else:
                parsed = nsfs.parse_link(text)
                if parsed is None:
                    continue
                ns_type, ino = parsed
            if ino not in scan.resolved:
                got = scan.learn_path(f"fd/{fd}", proc.dirfd, ino, ns_type)
                if got is None:
                    continue  # closed or replaced meanwhile
            if ns_type is None:
                ns_type = scan.snap.namespaces[ino].type
            proc.stage(ns_type, ino, Reference(kind=FD, pid=proc.pid, fd=fd))
