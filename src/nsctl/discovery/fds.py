"""Source: open file descriptors that are namespace files.

An fd opened through a bind mount (e.g. /run/netns/x) reads back as that
path, not as ``net:[...]``, and still does (or reads "/") after the mount is
gone, which is what `ip netns delete` leaves behind while `ip netns exec`
runs.  So an fd whose link is a path is stat'ed and kept if it lies on nsfs,
except for device paths under /dev/ that are not nsfs mount points (terminals
and /dev/null are most of a host's fds, and a namespace file is not mounted
there in practice).
"""
from __future__ import annotations

import os

from ..kernel import nsfs, procfs
from ..model import FD, Reference
from .scan import ProcHandle, Scan


def read(scan: Scan, proc: ProcHandle) -> None:
    """The process's fds that are namespace files (and its fd list, for sockets)."""
    if proc.pid == scan.self_pid:
        return  # our own fds are the scan's working handles, not the host's
    proc.fds = fds = procfs.list_fds(proc.view)
    if not scan.opts.fds:
        return
    mnt = proc.process.ns.get("mnt") if proc.process else None
    mountpoints = scan.nsfs_mountpoints.get(mnt, ()) if mnt is not None else ()
    nsfs_dev = scan.nsfs_dev
    for fd, text in fds:
        if text[0] == "/":
            if text.startswith("/dev/") and text not in mountpoints:
                continue
            try:
                st = os.stat(f"fd/{fd}", dir_fd=proc.view)
            except OSError:
                continue
            if st.st_dev != nsfs_dev:
                continue
            ino = st.st_ino
            ns_type = None
        else:
            parsed = nsfs.parse_link(text)
            if parsed is None:
                continue
            ns_type, ino = parsed
        if scan.wants_fd(ino):
            got = scan.learn_path(f"fd/{fd}", proc.view, ino, ns_type)
            if got is None:
                continue  # closed or replaced meanwhile
        if ns_type is None:
            ns_type = scan.snap.namespaces[ino].type
        proc.stage(ns_type, ino, Reference(kind=FD, pid=proc.pid, fd=fd))
