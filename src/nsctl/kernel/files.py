"""The files nsctl writes (snapshots, history databases): owner-only, whatever the umask.

They hold what unprivileged users cannot see (every process's command line,
fds and bind mounts in other mount namespaces), so nsctl makes them 0600 and
writes only to a regular file of its own user: a symlink (which would send the
write elsewhere), a FIFO (whose open or read blocks), a device, a directory or
another user's file at the path is refused with one line.  A new file is made
with O_CREAT | O_EXCL | O_NOFOLLOW, then set to 0600 with fchmod, since the
umask only removes bits from the mode asked for; an existing one of ours is
tightened to 0600 before anything is written to it.
"""
from __future__ import annotations

import os
import stat

from .errors import NsctlError

#: The mode of every file nsctl writes.
PRIVATE = 0o600

_KIND = {stat.S_IFLNK: "a symlink", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
         stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket"}


class UnsafeFile(NsctlError):
    """A path nsctl refuses to write to (or cannot make private)."""


def claim_existing(path: str) -> bool:
    """Whether ``path`` exists; if it does, it must be a regular file of our user
    (UnsafeFile otherwise, naming what it is) and is made 0600."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot write: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        kind = stat.S_IFMT(st.st_mode)
        if kind != stat.S_IFREG:
            what = _KIND.get(kind, "something else")
            raise UnsafeFile(f"{path}: refusing to write: it is {what}, not a regular file")
        if st.st_uid != os.geteuid():
            raise UnsafeFile(f"{path}: refusing to write: it belongs to uid {st.st_uid}, "
                             f"not to uid {os.geteuid()}")
        if stat.S_IMODE(st.st_mode) != PRIVATE:
            # An O_PATH fd takes no fchmod; its /proc/self/fd link is that very file.
            os.chmod(f"/proc/self/fd/{fd}", PRIVATE)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot make it private: {exc.strerror}") from None
    finally:
        os.close(fd)
    return True


def create_private(path: str) -> None:
    """Make ``path`` an empty 0600 file unless it exists; an existing one goes
    through :func:`claim_existing`."""
    if claim_existing(path):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     PRIVATE)
    except FileExistsError:   # made meanwhile: check what it is
        claim_existing(path)
        return
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot create: {exc.strerror}") from None
    try:
        os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def make_private_dir(directory: str) -> None:
    """Create ``directory`` (and its parents) if missing; a new one is 0700."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UnsafeFile(f"{directory}: cannot create: {exc.strerror}") from None


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a reader never sees half of it, a
    failure leaves no file.  Written to a new 0600 file in the same directory
    (random name, O_EXCL | O_NOFOLLOW) that is then renamed over ``path``; an
    existing ``path`` must pass :func:`claim_existing` first."""
    import tempfile

    claim_existing(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=directory)
    except OSError as exc:
        raise UnsafeFile(f"{path}: cannot write: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, PRIVATE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UnsafeFile(f"{path}: cannot write: {exc.strerror}") from None
