"""Pin a namespace by bind-mounting its file (seed 004), and unpin it.

A bind mount of a namespace file keeps the namespace alive with no process
in it; a network namespace pinned at /run/netns/NAME is what `ip netns` lists.
"""
from __future__ import annotations

import os

from ..handles import open_namespace
from ..kernel import procfs
from ..kernel.errors import AccessDenied, NsctlError
from ..kernel.mounts import MNT_DETACH, MS_BIND, mount, umount
from ..model import Namespace, Snapshot


class PinError(NsctlError):
    """A pin or unpin that could not be done; nothing was changed."""


def _own_nsfs_mounts() -> dict[str, str]:
    """Mount point -> namespace (e.g. 'net:[4026532008]') of nsfs mounts in our mount ns."""
    return {point: root for root, point in
            procfs.nsfs_mounts(procfs.read_text("/proc/self/mountinfo", records=True))}


def _canonical(path: str) -> str:
    """The path as mountinfo will show it: directories resolved, the last component kept."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def pin(ns: Namespace, snap: Snapshot, path: str) -> str:
    """Bind-mount ``ns``'s file at ``path`` (a new empty file); returns the canonical path."""
    path = _canonical(path)
    if os.path.lexists(path):
        raise PinError(f"{path}: already exists (pin to a new path; unpin first if it is a pin)")
    parent = os.path.dirname(path)
    made_dir = False
    if not os.path.isdir(parent):
        if parent != "/run/netns":
            raise PinError(f"{parent}: no such directory")
        os.makedirs(parent, mode=0o755, exist_ok=True)  # as `ip netns add` does
        made_dir = True
    fd = open_namespace(ns, snap)
    created = False
    try:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
            created = True
        except OSError as exc:
            raise PinError(f"{path}: cannot create the file to mount on: {exc.strerror}") from None
        try:
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        except AccessDenied as exc:
            raise PinError(f"{path}: bind mount refused ({exc}); pinning needs CAP_SYS_ADMIN") \
                from None
        except NsctlError as exc:
            hint = ""
            if ns.type == "mnt":
                hint = (" (the kernel refuses to pin a mount namespace inside itself or one "
                        "created after it: pin it from an older mount namespace)")
            raise PinError(f"{path}: bind mount failed: {exc}{hint}") from None
    except BaseException:
        if created:
            os.unlink(path)
        if made_dir:
            try:
                os.rmdir(parent)
            except OSError:
                pass
        raise
    finally:
        os.close(fd)
    return path


def unpin(path: str) -> str:
    """Undo a pin: unmount the namespace file at ``path`` and remove the file.

    Refuses anything that is not a namespace file bind-mounted in our mount
    namespace, so a typo cannot unmount something else.
    """
    path = _canonical(path)
    mounts = _own_nsfs_mounts()
    if path not in mounts:
        if not os.path.lexists(path):
            raise PinError(f"{path}: no such file")
        raise PinError(f"{path}: not a pinned namespace file (no nsfs mount there)")
    what = mounts[path]
    try:
        umount(path, MNT_DETACH)
    except NsctlError as exc:
        raise PinError(f"{path}: unmount failed: {exc}") from None
    if path not in _own_nsfs_mounts():  # stacked pins: remove the file with the last one
        try:
            os.unlink(path)
        except OSError:
            pass
    return what
