"""Pin a namespace by bind-mounting its nsfs file (a namespace handle), and unpin it.

A bind mount of a namespace file keeps the namespace alive with no process
in it; a network namespace pinned at /run/netns/NAME is what `ip netns` lists.

nsctl pins as root, so where the mount lands must be root's choice alone.  The
directory must pass :mod:`nsctl.ops.trusteddir`'s rule, checked on every pin
and unpin, and is then used only through an fd: the pin file is created in it
with O_CREAT|O_EXCL|O_NOFOLLOW (a name someone planted, symlink or not, is
refused), and the namespace is mounted onto that opened file
(:func:`nsctl.kernel.mounts.bind_fd`), not onto a path that could since lead
elsewhere.  Unpin opens the name with O_PATH|O_NOFOLLOW, checks that what it
opened is a namespace file mounted there, and unmounts that very mount through
the fd.
"""
from __future__ import annotations

import os
import stat

from ..kernel import nsfs, procfs
from ..kernel.errors import AccessDenied, NsctlError
from ..kernel.mounts import MNT_DETACH, bind_fd, umount_fd
from ..model import Namespace, Snapshot
from ..query.handles import open_namespace
from .trusteddir import UntrustedDirectory, open_trusted_dir

NETNS_DIR = "/run/netns"   # made on first use, as `ip netns add` does


class PinError(NsctlError):
    """A pin or unpin that could not be done; nothing was changed."""


def pin(ns: Namespace, snap: Snapshot, path: str, *, exact: bool = False) -> str:
    """Bind-mount ``ns``'s file at ``path`` (a new file); returns the path it resolved to.

    ``exact``: refuse a directory reached through any symbolic link (serve, which
    checked the path as text)."""
    fd = open_namespace(ns, snap)
    try:
        return pin_fd(fd, path, exact=exact)
    finally:
        os.close(fd)


def pin_fd(ns_fd: int, path: str, *, exact: bool = False) -> str:
    """Bind-mount the namespace open at ``ns_fd`` at ``path``, a new file in a
    directory that only root can change; returns the path it resolved to."""
    dir_fd, where, name, made_dir = _open_dir("pin", path, exact=exact,
                                              create=os.path.dirname(os.path.abspath(path))
                                              == NETNS_DIR)
    full = os.path.join(where, name)
    try:
        try:
            target = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o444, dir_fd=dir_fd)
        except FileExistsError:
            raise PinError(f"pin: {full}: already exists (pin to a new path; unpin first if "
                           "it is a pin)") from None
        except OSError as exc:
            raise PinError(f"pin: {full}: cannot create the file to mount on: "
                           f"{exc.strerror}") from None
        try:
            bind_fd(ns_fd, target)
        except NsctlError as exc:
            os.unlink(name, dir_fd=dir_fd)   # ours: only root can change this directory
            if isinstance(exc, AccessDenied):
                raise PinError(f"pin: {full}: bind mount refused ({exc}); pinning needs "
                               "CAP_SYS_ADMIN") from None
            hint = ""
            if _type_of(ns_fd) == "mnt":
                hint = (" (the kernel refuses to pin a mount namespace inside itself or one "
                        "created after it: pin it from an older mount namespace)")
            raise PinError(f"pin: {full}: bind mount failed: {exc}{hint}") from None
        finally:
            os.close(target)
    except BaseException:
        if made_dir:
            _remove_made_dir(where)
        raise
    finally:
        os.close(dir_fd)
    return full


def unpin(path: str, *, exact: bool = False) -> str:
    """Undo a pin: unmount the namespace file at ``path`` and remove the file;
    returns what was pinned there (e.g. ``net:[4026532008]``).

    Refuses anything that is not a namespace file bind-mounted in our mount
    namespace (a symbolic link included, whatever it points to), so a typo or a
    swapped name cannot unmount something else.
    """
    dir_fd, where, name, _ = _open_dir("unpin", path, exact=exact, create=False)
    full = os.path.join(where, name)
    try:
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise PinError(f"unpin: {full}: no such file") from None
        except OSError as exc:
            raise PinError(f"unpin: {full}: {exc.strerror}") from None
        try:
            what = _pinned(fd, full)
            if what is None:
                kind = "a symbolic link" if stat.S_ISLNK(os.fstat(fd).st_mode) else "no nsfs mount"
                raise PinError(f"unpin: {full}: not a pinned namespace file ({kind} there)")
            try:
                umount_fd(fd, MNT_DETACH)   # the very mount checked above, not the name's
            except NsctlError as exc:
                raise PinError(f"unpin: {full}: unmount failed: {exc}") from None
        finally:
            os.close(fd)
        # Stacked pins: the file goes with the last one.  What the name shows now is
        # root's doing (the directory passed the rule): remove only the empty file.
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return what
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_dev != _nsfs_dev():
            os.unlink(name, dir_fd=dir_fd)
        return what
    finally:
        os.close(dir_fd)


def check_pin_dir(path: str, *, exact: bool = False) -> str:
    """The cause (one line) why ``path`` cannot take pins now, or '' if it can.

    /run/netns may be missing (the first pin makes it); then /run is checked."""
    if path == NETNS_DIR and not os.path.lexists(path):
        path = os.path.dirname(path)
    try:
        fd, _, _ = open_trusted_dir(path, exact=exact)
    except UntrustedDirectory as exc:
        return str(exc)
    os.close(fd)
    return ""


def _open_dir(step: str, path: str, *, exact: bool, create: bool) -> tuple[int, str, str, bool]:
    """(fd, resolved path) of ``path``'s directory, its last component, and whether
    the directory was made now."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise PinError(f"{step}: {path}: give a file name as the last part of the path")
    try:
        fd, where, made = open_trusted_dir(parent, exact=exact, create=create)
    except UntrustedDirectory as exc:
        raise PinError(f"{step}: {exc}") from None
    return fd, where, name, made


def _remove_made_dir(path: str) -> None:
    """Best effort: the error that got us here is what the user needs to see."""
    try:
        parent_fd, _, _ = open_trusted_dir(os.path.dirname(path))
    except UntrustedDirectory:
        return
    try:
        os.rmdir(os.path.basename(path), dir_fd=parent_fd)
    except OSError:
        pass   # not empty: another pin went there meanwhile
    finally:
        os.close(parent_fd)


def _pinned(fd: int, full: str) -> str | None:
    """``TYPE:[INODE]`` if ``fd`` (O_PATH, not followed) is on a namespace file mounted
    at ``full`` in our mount namespace; else None."""
    st = os.fstat(fd)
    if stat.S_ISLNK(st.st_mode) or st.st_dev != _nsfs_dev():
        return None   # a namespace file is reached only through a mount (or a /proc link)
    for root, point in procfs.nsfs_mounts(procfs.read_text("/proc/self/mountinfo",
                                                           records=True)):
        parsed = nsfs.parse_link(root)
        if point == full and parsed is not None and parsed[1] == st.st_ino:
            return root
    return None


def _nsfs_dev() -> int:
    """The device of nsfs, the one filesystem every namespace file is on."""
    return os.stat("/proc/self/ns/net").st_dev


def _type_of(fd: int) -> str | None:
    try:
        return nsfs.ns_type(fd)
    except NsctlError:
        return None
