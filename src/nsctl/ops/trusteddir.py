"""Directories that only root can change, opened so that nobody else can redirect them.

nsctl creates files and mounts namespaces in directories (pins, ``run --pin``,
serve's ``--pin-dir``).  A root process that does that in a directory another
user can change lets that user decide where the mount lands: a name swapped for
a symlink to /etc/shadow between the check and the mount is the classic case.
So a directory is used only when every step of the way to it is root's, and it
is then used through an fd, never through its path again.

The rule, checked on every use (not once at start: ownership and modes change):

- The directory itself is owned by root (or by the caller's effective uid, when
  that is not root) and is not writable by group or others.  Sticky is not
  enough here: others could still create names in it, ahead of a pin.
- Every ancestor is owned by root (or that uid) and is not writable by group or
  others, unless it is sticky (the entries below it, checked to be root's, can
  then be renamed or removed by nobody else): /tmp is a fine ancestor, not a
  fine pin directory.  An ancestor owned by another user is refused even when
  it is not writable by others, since its owner can rename what is in it.
- A symbolic link on the way is followed only when root (or that uid) owns it;
  its directory passed the rule, so only root could have made it.  ``..``
  steps back along the path already walked.  Callers that need the path to be
  the directory's own (serve checks client paths as text) refuse every symlink.
- POSIX ACLs need no check of their own: an ACL entry that grants write to a
  user or group shows as the group write bit (the ACL mask) in the mode.

The walk opens each component with O_PATH|O_NOFOLLOW relative to the one
before it, starting at ``/``, and checks what it opened (fstat), so a component
replaced between check and use is the one that was checked or nothing.  A
filesystem reports owners itself (a FUSE server can claim anything); the rule
then rests on the mount onto an opened file, which no later rename redirects.
"""
from __future__ import annotations

import os
import stat

from ..kernel.errors import NsctlError

MAX_SYMLINKS = 40   # as the kernel's path walk allows
_OPEN = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class UntrustedDirectory(NsctlError):
    """A directory that fails the rule above, or is missing; the message names the
    component and the cause."""


def open_trusted_dir(path: str, *, exact: bool = False,
                     create: bool = False) -> tuple[int, str, bool]:
    """An O_PATH fd on the directory ``path`` (absolute), the path it resolved to,
    and whether this call made it.

    ``exact``: refuse any symbolic link on the way (the result is then ``path``,
    normalised).  ``create``: make the last component (mode 0755) if it is
    missing, as ``ip netns add`` makes /run/netns.  Raises UntrustedDirectory.
    The caller closes the fd.
    """
    if not path.startswith("/"):
        raise ValueError(f"{path}: not an absolute path")
    trusted = {0, os.geteuid()}
    todo = _parts(path)
    fd, here = os.open("/", _OPEN), "/"
    links, made = 0, False
    try:
        _check(os.fstat(fd), here, last=not todo, trusted=trusted)
        while todo:
            name = todo.pop(0)
            if name == "..":
                # ``here`` holds no symbolic link, so its parent is its textual parent:
                # walk there again from the root, checking every step anew.
                todo = _parts(os.path.dirname(here)) + todo
                os.close(fd)
                fd, here = os.open("/", _OPEN), "/"
                _check(os.fstat(fd), here, last=not todo, trusted=trusted)
                continue
            full = os.path.join(here, name)
            child, made = _open_child(fd, name, full, create=create and not todo)
            st = os.fstat(child)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if exact:
                        raise UntrustedDirectory(f"{full}: a symbolic link; give the "
                                                 "directory's own path")
                    if st.st_uid not in trusted:
                        raise UntrustedDirectory(f"{full}: a symbolic link owned by uid "
                                                 f"{st.st_uid}, not {_whom()}")
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise UntrustedDirectory(f"{path}: too many levels of symbolic links")
                    target = os.readlink("", dir_fd=child)   # the very link checked above
                finally:
                    os.close(child)
                todo = _parts(target) + todo
                if target.startswith("/"):
                    os.close(fd)
                    fd, here = os.open("/", _OPEN), "/"
                    _check(os.fstat(fd), here, last=not todo, trusted=trusted)
                continue
            try:
                _check(st, full, last=not todo, trusted=trusted)
            except BaseException:
                os.close(child)
                raise
            os.close(fd)
            fd, here = child, full
        return fd, here, made
    except BaseException:
        os.close(fd)
        raise


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _open_child(fd: int, name: str, full: str, create: bool) -> tuple[int, bool]:
    """``name`` in ``fd`` opened O_PATH|O_NOFOLLOW, and whether it was made now."""
    try:
        return os.open(name, _OPEN, dir_fd=fd), False
    except FileNotFoundError:
        if not create:
            raise UntrustedDirectory(f"{full}: no such directory") from None
    except OSError as exc:
        raise UntrustedDirectory(f"{full}: {exc.strerror}") from None
    made = True
    try:
        os.mkdir(name, 0o755, dir_fd=fd)
    except FileExistsError:
        made = False   # made meanwhile (by root: the parent passed the rule); checked below
    except OSError as exc:
        raise UntrustedDirectory(f"{full}: cannot create the directory: {exc.strerror}") \
            from None
    return os.open(name, _OPEN, dir_fd=fd), made


def _check(st: os.stat_result, full: str, *, last: bool, trusted: set[int]) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedDirectory(f"{full}: not a directory")
    if st.st_uid not in trusted:
        raise UntrustedDirectory(f"{full}: directory is owned by uid {st.st_uid}, not {_whom()}")
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o022:
        return
    if last:
        raise UntrustedDirectory(f"{full}: directory is writable by group or others (mode "
                                 f"{mode:04o}); only root may write where pins go "
                                 "(chmod go-w it)")
    if not mode & stat.S_ISVTX:
        raise UntrustedDirectory(f"{full}: directory is writable by group or others (mode "
                                 f"{mode:04o}) and not sticky, so others could replace what "
                                 "is below it")


def _whom() -> str:
    euid = os.geteuid()
    return "root" if euid == 0 else f"root or uid {euid}"
