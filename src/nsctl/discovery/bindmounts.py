"""Source: namespace files bind-mounted in any mount namespace on the host.

Each mount namespace has its own mount table, so one mountinfo is read per
mount namespace: through the first process found in it.  A mount namespace
that no process is in (held by an fd or a bind mount) is read from here with
listmount and statmount (Linux 6.11+) where the kernel has them; a forked
child enters it and reads its mountinfo where it does not, or where a mounted
namespace file names a namespace found nowhere else (an O_PATH handle of it,
made inside, is handed back over SCM_RIGHTS).  nsctl's own process never
changes namespace.

Mount points come from tables that the namespace's owner controls, and what is
at a mount point now may be another mount stacked over the nsfs one (a FIFO, a
device) or a path through a symlink.  So a mount point is resolved inside its
namespace's root through no symlink and opened only once it is known to be the
namespace file the table names (nsctl.kernel.nsfs.open_mounted_ns; the forked
child's O_PATH handle is checked the same way, by nsfs.reopen_ns).
"""
from __future__ import annotations

import os
from functools import partial

from ..kernel import nsfs, procfs
from ..kernel.errors import NsctlError
from ..model import BINDMOUNT, Reference
from .scan import ProcHandle, Scan

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def read(scan: Scan, proc: ProcHandle) -> None:
    """The namespace files mounted in the process's mount namespace, read once per
    mount namespace (through the first process found in it)."""
    if proc.process is None:
        return
    mnt = proc.process.ns.get("mnt")
    if mnt is None or mnt in scan.mnt_reader:
        return
    mounts = procfs.nsfs_mounts(procfs.read_mountinfo(proc.view))
    scan.mnt_reader[mnt] = proc.pid
    points = scan.nsfs_mountpoints[mnt] = set()
    for root, point in mounts:
        parsed = nsfs.parse_link(root)
        if parsed is None:
            continue
        ns_type, ino = parsed
        points.add(point)
        if scan.wants_fd(ino):
            # /proc/PID/root is that process's root, in its mount namespace.
            scan.learn_from(partial(nsfs.open_mounted_ns, "root", point, proc.view, ino),
                            ns_type)
        # Staged: kept only if the process is still alive after its read.
        proc.stage(ns_type, ino, Reference(BINDMOUNT, path=point, mntns=mnt))


def finish(scan: Scan) -> None:
    """Read the mount namespaces no process is in, until no new one turns up."""
    while _take_over_foreign(scan) or _read_foreign(scan):
        pass
    if scan.memo is not None:
        held = scan.snap.namespaces
        if any(ns.type == "mnt" and ns.refs and ino not in scan.mnt_reader
               for ino, ns in held.items()):
            scan.stale = True   # one we have no fd for and no memo of: scan fully


def _read_foreign(scan: Scan) -> bool:
    # Only mount namespaces something holds: one learned from a process that
    # then exited may be gone, and would be pruned with its mounts' refs.
    held = scan.snap.namespaces
    todo = [ino for ino in scan.kept_fds
            if ino not in scan.mnt_reader and ino in held and held[ino].refs]
    if not todo:
        return False
    found_all = read_foreign_tables([scan.kept_fds[m] for m in todo], scan.resolved)
    for mnt, found in zip(todo, found_all, strict=True):
        scan.mnt_reader[mnt] = 0
        if isinstance(found, NsctlError):
            scan.problem_from(found, f"mount namespace {mnt}: bind mounts")
            continue
        points = scan.nsfs_mountpoints[mnt] = set()
        kept = scan.record.foreign[mnt] = []
        for root, point, path_fd in found:
            try:
                parsed = nsfs.parse_link(root)
                if parsed is None:
                    continue
                points.add(point)
                ino = parsed[1]
                if path_fd is not None:
                    scan.learn_from(partial(nsfs.reopen_ns, path_fd, ino, point), parsed[0])
                kept.append((parsed[0], ino, point, _add(scan, parsed[0], ino, point, mnt)))
            finally:
                if path_fd is not None:
                    os.close(path_fd)
    return True


def _take_over_foreign(scan: Scan) -> bool:
    """In an incremental scan, take the bind mounts of held mount namespaces that no
    process is in over from the memo (they are read afresh in full scans)."""
    if scan.memo is None:
        return False
    held = scan.snap.namespaces
    todo = [mnt for mnt in scan.memo.foreign if mnt not in scan.mnt_reader
            and mnt not in scan.kept_fds and mnt in held and held[mnt].refs]
    for mnt in todo:
        scan.mnt_reader[mnt] = 0
        kept = scan.record.foreign[mnt] = scan.memo.foreign[mnt]
        scan.nsfs_mountpoints[mnt] = {point for _t, _i, point, _r in kept}
        for ns_type, ino, _point, ref in kept:
            scan.adopt(ino)
            # The memo's very Reference: a watcher's diff sees it unchanged at a glance.
            scan.namespace(ns_type, ino).refs.append(ref)
    return bool(todo)


def _add(scan: Scan, ns_type: str, ino: int, point: str, mnt: int) -> Reference:
    ref = Reference(kind=BINDMOUNT, path=point, mntns=mnt)
    scan.namespace(ns_type, ino).refs.append(ref)
    return ref


def read_foreign_tables(mnt_fds: list[int], known: set[int]
                        ) -> list[list[tuple[str, str, int | None]] | NsctlError]:
    """As :func:`read_foreign_mounts`, but each mount namespace whose nsfs mounts
    can be listed from here (nsfs.mounted_namespaces) and name only ``known``
    namespaces is not entered: no fork, where the kernel allows."""
    found: list = [None] * len(mnt_fds)
    for i, fd in enumerate(mnt_fds):
        mounts = nsfs.mounted_namespaces(fd)
        if mounts is None:
            continue
        parsed = [nsfs.parse_link(root) for root, _point in mounts]
        if all(p is None or p[1] in known for p in parsed):
            found[i] = [(root, point, None) for root, point in mounts]
    enter = [i for i, got in enumerate(found) if got is None]
    if enter:
        for i, got in zip(enter, read_foreign_mounts([mnt_fds[i] for i in enter], known),
                          strict=True):
            found[i] = got
    return found


def read_foreign_mounts(mnt_fds: list[int], known: set[int]
                        ) -> list[list[tuple[str, str, int | None]] | NsctlError]:
    """For each mount namespace, (root, mount point, O_PATH fd or None) of its nsfs
    mounts, or the error that kept us out.  One forked child visits them all, and
    passes back an O_PATH fd (nsfs.open_beneath: nothing is opened inside) only
    for the namespace files of namespaces not ``known`` yet; the caller checks
    it with nsfs.reopen_ns."""

    from ..kernel.enter import visit_each, workers_for  # socket, json: only when needed

    nsfs_dev = nsfs.nsfs_dev()   # read here: the child's /proc is the namespace's

    def work(self_dir: int) -> Iterator[tuple[Any, int | None]]:
        opened: set[str] = set()
        top = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)   # this namespace's root
        try:
            for root, point in procfs.nsfs_mounts(procfs.read_text("mountinfo", self_dir,
                                                                   records=True)):
                parsed = nsfs.parse_link(root)
                fd: int | None = None
                if parsed is not None and parsed[1] not in known and root not in opened:
                    fd = _path_fd(top, point, nsfs_dev, parsed[1])
                    if fd is not None:
                        opened.add(root)
                yield [root, point], fd
        finally:
            os.close(top)

    results = visit_each([[(fd, nsfs.CLONE_NEWNS)] for fd in mnt_fds], work,
                         workers_for(len(mnt_fds)))
    return [r if isinstance(r, NsctlError) else [(item[0], item[1], fd) for item, fd in r]
            for r in results]


def _path_fd(top: int, point: str, nsfs_dev: int, ino: int) -> int | None:
    """An O_PATH fd on mount point ``point`` below ``top`` if it is namespace file
    ``ino`` (not, say, a FIFO mounted over it), else None; for the child of
    :func:`read_foreign_mounts`, which then tries the namespace's next mount."""
    try:
        fd = nsfs.open_beneath(top, point)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_dev == nsfs_dev and st.st_ino == ino:
        return fd
    os.close(fd)
    return None
