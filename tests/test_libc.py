"""pidfd_getfd, setns and unshare (nsctl.kernel.libc): from the C module where it
was built, else through ctypes.  Both are run here against the kernel, each in
a forked helper where it changes namespaces."""
from __future__ import annotations

import errno
import os

import pytest

from nsctl.kernel import libc
from topology import Child, root_only

CLONE_NEWUTS = 0x04000000


IMPLS = ["c", "ctypes"]


def _impl(name: str) -> tuple:
    """(pidfd_getfd, setns, unshare) from the C module or through ctypes."""
    if name == "ctypes":
        return libc.ctypes_pidfd_getfd, libc.ctypes_setns, libc.ctypes_unshare
    try:
        from nsctl.kernel import _native
    except ImportError:
        pytest.fail("nsctl.kernel._native was not built")
    return _native.pidfd_getfd, _native.setns, _native.unshare


def test_the_c_module_is_what_nsctl_uses():
    assert (libc.pidfd_getfd, libc.setns, libc.unshare) == _impl("c")


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
    _getfd, setns, unshare = impl
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
