"""pidfd_getfd, setns, unshare and openat2 (nsctl.kernel.libc): from the C module
where it was built, else through ctypes.  Both are run here against the kernel,
each in a forked helper where it changes namespaces."""
from __future__ import annotations

import errno
import os

import pytest
from support import root_only
from support.processes import Child

from nsctl.kernel import libc

CLONE_NEWUTS = 0x04000000


IMPLS = ["c", "ctypes"]


def _impl(name: str) -> tuple:
    """(pidfd_getfd, setns, unshare, openat2) from the C module or through ctypes."""
    if name == "ctypes":
        return (libc.ctypes_pidfd_getfd, libc.ctypes_setns, libc.ctypes_unshare,
                libc.ctypes_openat2)
    try:
        from nsctl.kernel import _native
    except ImportError:
        pytest.fail("nsctl.kernel._native was not built")
    return _native.pidfd_getfd, _native.setns, _native.unshare, _native.openat2


def test_the_c_module_is_what_nsctl_uses():
    assert (libc.pidfd_getfd, libc.setns, libc.unshare, libc.openat2) == _impl("c")


def _hold_a_pipe(chan) -> None:
    r, w = os.pipe()
    chan.send({"fd": r, "ino": os.fstat(r).st_ino})
    chan.recv()


@pytest.mark.parametrize("impl", IMPLS)
def test_pidfd_getfd_copies_another_process_fd(impl):
    pidfd_getfd = _impl(impl)[0]
    with Child(_hold_a_pipe) as child:
        held = child.ready()
        pidfd = os.pidfd_open(child.pid)
        try:
            fd = pidfd_getfd(pidfd, held["fd"])
            try:
                assert os.fstat(fd).st_ino == held["ino"]
            finally:
                os.close(fd)
            with pytest.raises(OSError) as bad:
                pidfd_getfd(pidfd, 999)
            assert bad.value.errno == errno.EBADF
        finally:
            os.close(pidfd)


def _unshare_then_setns_back(chan, impl) -> None:
    _getfd, setns, unshare, _openat2 = impl
    before = os.readlink("/proc/self/ns/uts")
    back = os.open("/proc/self/ns/uts", os.O_RDONLY)
    unshare(CLONE_NEWUTS)
    inside = os.readlink("/proc/self/ns/uts")
    try:
        setns(os.open("/proc/self/ns/net", os.O_RDONLY), CLONE_NEWUTS)   # wrong type
        wrong_type = None
    except OSError as exc:
        wrong_type = exc.errno
    setns(back, CLONE_NEWUTS)
    chan.send({"before": before, "inside": inside, "after": os.readlink("/proc/self/ns/uts"),
               "wrong_type": wrong_type})


@root_only
@pytest.mark.parametrize("impl", IMPLS)
def test_unshare_and_setns_move_the_caller(impl):
    with Child(_unshare_then_setns_back, _impl(impl)) as child:
        got = child.ready()
    assert got["inside"] != got["before"] == os.readlink("/proc/self/ns/uts")
    assert got["after"] == got["before"]
    assert got["wrong_type"] == errno.EINVAL


RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08


@pytest.mark.parametrize("impl", IMPLS)
def test_openat2_resolves_beneath_its_directory(impl, scratch):
    openat2 = _impl(impl)[3]
    (scratch / "dir").mkdir()
    (scratch / "dir" / "file").write_text("x")
    os.symlink("dir", scratch / "link")
    top = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = openat2(top, "dir/file", flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        try:
            assert os.fstat(fd).st_ino == (scratch / "dir" / "file").stat().st_ino
        finally:
            os.close(fd)
        for path, resolve, code in (("../x", RESOLVE_BENEATH, errno.EXDEV),
                                    ("/etc/hostname", RESOLVE_BENEATH, errno.EXDEV),
                                    ("link/file", RESOLVE_NO_SYMLINKS, errno.ELOOP),
                                    ("dir/none", 0, errno.ENOENT)):
            with pytest.raises(OSError) as bad:
                openat2(top, path, flags, resolve)
            assert bad.value.errno == code, path
    finally:
        os.close(top)
        os.unlink(scratch / "link")
