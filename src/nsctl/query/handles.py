"""Reopen a discovered namespace: an fd for it through any reference that still holds it.

Discovery keeps no fds; commands that act on one namespace (translate PIDs in
it, show what it sees, pin or enter it) reopen it here.  Every path is opened
only once it is known to be that namespace file (nsctl.kernel.nsfs): a
reference that changed since the scan is never taken for the namespace, and a
FIFO or device put in its place is never opened.  Tried in order: processes,
threads, fds, bind mounts (ours, then through a process in that mount
namespace, then from a forked child that enters it), sockets, and finally
walking up from a child namespace.
"""
from __future__ import annotations

import os

from ..kernel import nsfs, pidfd, procfs, sockets
from ..kernel.errors import NsctlError
from ..model import Namespace, Reference, Snapshot


class Unreachable(NsctlError):
    """No reference of the namespace could be opened (it is gone, or not ours to open)."""


def _open_checked(path: str, ino: int) -> int | None:
    """``path`` (in our /proc) opened if it is still namespace ``ino``, else None."""
    try:
        return nsfs.open_ns(path, expect_ino=ino)
    except NsctlError:
        return None


def _open_mounted(root: str, point: str, ino: int) -> int | None:
    """Mount point ``point`` below ``root`` opened if it is namespace ``ino``, else None."""
    try:
        return nsfs.open_mounted_ns(root, point, expect_ino=ino)
    except NsctlError:
        return None


def _via_ref(ref: Reference, ns: Namespace, snap: Snapshot) -> int | None:
    kind = ref.kind
    if kind == "process":
        return _open_checked(f"{procfs.PROC}/{ref.pid}/ns/{ref.link}", ns.ino)
    if kind == "thread":
        return _open_checked(f"{procfs.PROC}/{ref.pid}/task/{ref.tid}/ns/{ref.link}", ns.ino)
    if kind == "fd":
        return _open_checked(f"{procfs.PROC}/{ref.pid}/fd/{ref.fd}", ns.ino)
    if kind == "bindmount":
        return _via_mount(ref, ns, snap)
    if kind == "socket":
        return _via_socket(ref, ns)
    if kind == "child":
        return _via_child(ref, ns, snap)
    return None


def _via_mount(ref: Reference, ns: Namespace, snap: Snapshot) -> int | None:
    # Resolved inside the mount namespace's root through no symlink, and opened only
    # once it is the namespace (nsfs.open_mounted_ns): the path is in a table that
    # the namespace's owner controls.
    path = ref.path
    if path is None:   # a bind mount reference always has one
        return None
    if ref.mntns == snap.own.get("mnt"):
        fd = _open_mounted("/", path, ns.ino)
        if fd is not None:
            return fd
    mnt = snap.namespaces.get(ref.mntns) if ref.mntns is not None else None
    if mnt is None:
        return None
    for pid in mnt.pids:  # /proc/PID/root is that process's root, in its mount namespace
        fd = _open_mounted(f"{procfs.PROC}/{pid}/root", path, ns.ino)
        if fd is not None:
            return fd
    # No process in that mount namespace: an O_PATH fd from a forked child that enters it.
    # A mount namespace that is gone since the scan leaves the namespace's other
    # references to try.
    try:
        mnt_fd = open_namespace(mnt, snap)
    except NsctlError:
        return None
    try:
        from ..kernel.enter import run_inside

        def work(_self_dir: int):
            top = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield None, nsfs.open_beneath(top, path)
            except OSError:
                return
            finally:
                os.close(top)

        items = run_inside([(mnt_fd, nsfs.CLONE_NEWNS)], work)
    except NsctlError:
        return None
    finally:
        os.close(mnt_fd)
    found = None
    for _item, path_fd in items:
        if path_fd is None:
            continue
        try:
            if found is None:
                found = nsfs.reopen_ns(path_fd, ns.ino, path)
        except NsctlError:
            pass
        finally:
            os.close(path_fd)
    return found


def _via_socket(ref: Reference, ns: Namespace) -> int | None:
    if ref.pid is None or ref.fd is None:   # a socket reference always has both
        return None
    try:
        pfd = pidfd.open_pidfd(ref.pid)
    except NsctlError:
        return None
    try:
        copy = pidfd.get_fd(pfd, ref.fd)
        try:
            fd = sockets.socket_netns(copy)
        finally:
            os.close(copy)
    except NsctlError:
        return None
    finally:
        os.close(pfd)
    if os.fstat(fd).st_ino == ns.ino:
        return fd
    os.close(fd)
    return None


def _via_child(ref: Reference, ns: Namespace, snap: Snapshot) -> int | None:
    child = snap.namespaces.get(ref.child) if ref.child is not None else None
    if child is None:
        return None
    try:
        child_fd = open_namespace(child, snap)
    except NsctlError:
        return None
    try:
        if ref.relation == "parent":
            fd = nsfs.parent_ns(child_fd)
        else:
            fd = nsfs.owning_userns(child_fd)
    except NsctlError:
        return None
    finally:
        os.close(child_fd)
    if fd is None:
        return None
    if os.fstat(fd).st_ino == ns.ino:
        return fd
    os.close(fd)
    return None


def open_namespace(ns: Namespace, snap: Snapshot) -> int:
    """A new read-only fd on ``ns``; Unreachable if nothing that held it can be opened."""
    order = ("process", "thread", "fd", "bindmount", "socket", "child")
    for kind in order:
        for ref in ns.refs:
            if ref.kind == kind:
                fd = _via_ref(ref, ns, snap)
                if fd is not None:
                    return fd
    raise Unreachable(f"{ns.label}: cannot open it any more (gone, or not ours "
                      "to open)")
