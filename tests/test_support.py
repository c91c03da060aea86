"""The leak check of conftest.py (support.leaks) reports every kind of leak.

Each test makes one deliberate leak of a kind, asks the check's own machinery
(:meth:`LeakScope.capture`, :meth:`LeakScope.new_since`) what is new, and
then cleans up (with :meth:`LeakScope.clean` where that is what undoes it), so
the autouse check around the test itself still finds nothing.
"""
from __future__ import annotations

import os
import select
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import netns_tag
from support import root_only
from support.leaks import RUN_NETNS, LeakScope, Residue
from support.syscalls import bind_mount, umount


def _kinds(left: Residue) -> set[str]:
    """The kinds of resource in a residue that are not empty."""
    return {k for k in ("processes", "mounts", "netns_names", "files", "fds", "threads")
            if getattr(left, k)}


def _wait_state(pid: int, state: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = Path(f"/proc/{pid}/stat").read_text()
        if text[text.rindex(")") + 2] == state:
            return
        assert time.monotonic() < deadline, f"{pid} did not reach state {state}"
        time.sleep(0.005)


def test_a_running_child_is_reported_and_cleaned(leak_scope: LeakScope) -> None:
    before = leak_scope.capture()
    proc = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
    try:
        left = leak_scope.new_since(before, leak_scope.capture())
        assert _kinds(left) == {"processes"}, left.describe()
        assert list(left.processes) == [proc.pid]
        assert "sleep" in left.processes[proc.pid]
        leak_scope.clean(left)
        assert not os.path.exists(f"/proc/{proc.pid}")   # killed and reaped by clean()
        proc.poll()   # (the status went to clean()'s waitpid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not leak_scope.new_since(before, leak_scope.capture())


def test_an_unreaped_child_is_reported(leak_scope: LeakScope) -> None:
    before = leak_scope.capture()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        _wait_state(pid, "Z")
        left = leak_scope.new_since(before, leak_scope.capture())
        assert list(left.processes) == [pid], left.describe()
        assert "state Z" in left.processes[pid]
    finally:
        os.waitpid(pid, 0)
    assert not leak_scope.new_since(before, leak_scope.capture())


def test_an_orphaned_grandchild_is_reported(leak_scope: LeakScope) -> None:
    """A daemon that double-forked comes back to pytest (a child subreaper), and counts."""
    before = leak_scope.capture()
    out = subprocess.run(["sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    orphan = int(out.stdout)
    left = leak_scope.new_since(before, leak_scope.capture())
    try:
        assert list(left.processes) == [orphan], left.describe()
        assert f"parent {os.getpid()}" in left.processes[orphan]
    finally:
        leak_scope.clean(left)
    assert not leak_scope.new_since(before, leak_scope.capture())


def test_a_thread_left_running_is_reported(leak_scope: LeakScope) -> None:
    before = leak_scope.capture()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="leaky")
    thread.start()
    try:
        left = leak_scope.new_since(before, leak_scope.capture())
        assert _kinds(left) == {"threads"}, left.describe()
        assert list(left.threads) == [thread.native_id]
    finally:
        release.set()
        thread.join(timeout=10)
    assert not leak_scope.new_since(before, leak_scope.capture())


def test_a_temp_file_is_reported_and_removed(leak_scope: LeakScope, tmp_path: Path) -> None:
    before = leak_scope.capture()
    fd, name = tempfile.mkstemp()     # under TMPDIR: the session's temp dir
    os.close(fd)
    (tmp_path / "kept").write_text("x")
    left = leak_scope.new_since(before, leak_scope.capture())
    assert _kinds(left) == {"files"}, left.describe()
    assert left.files == {os.path.realpath(name), str((tmp_path / "kept").resolve())}
    leak_scope.clean(left)
    assert not os.path.exists(name) and not (tmp_path / "kept").exists()


MAKE_FD: dict[str, Callable[[], Any]] = {
    "pipe": os.pipe,
    "socketpair": socket.socketpair,
    "memfd": lambda: os.memfd_create("leaky", os.MFD_CLOEXEC),
    "eventfd": lambda: os.eventfd(0, os.EFD_CLOEXEC),
    "epoll": select.epoll,
    "pidfd": lambda: os.pidfd_open(os.getpid()),
    "namespace": lambda: os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC),
    "file": lambda: open("/dev/zero", "rb"),
}


EXPECTED_LINK = {"pipe": "pipe:[", "socketpair": "socket:[", "memfd": "/memfd:leaky",
                 "eventfd": "anon_inode:[eventfd]", "epoll": "anon_inode:[eventpoll]",
                 "pidfd": "pidfd", "namespace": "net:[", "file": "/dev/zero"}


def _fds_of(made: Any) -> list[int]:
    items = made if isinstance(made, tuple) else (made,)
    return [i if isinstance(i, int) else i.fileno() for i in items]


def _close(made: Any) -> None:
    for item in made if isinstance(made, tuple) else (made,):
        if isinstance(item, int):
            os.close(item)
        else:
            item.close()


@pytest.mark.parametrize("kind", list(MAKE_FD))
def test_an_fd_of_each_kind_is_reported(leak_scope: LeakScope, kind: str) -> None:
    """An fd left open is reported with what it is open on; clean() points it at /dev/null
    (its owner may still close it later), and closing it is then the owner's business."""
    before = leak_scope.capture()
    made = MAKE_FD[kind]()
    try:
        fds = _fds_of(made)
        left = leak_scope.new_since(before, leak_scope.capture())
        assert _kinds(left) == {"fds"}, left.describe()
        assert sorted(left.fds) == sorted(fds)
        assert all(EXPECTED_LINK[kind] in text for text in left.fds.values()), left.fds
        leak_scope.clean(left)
        assert all(os.readlink(f"/proc/self/fd/{fd}") == os.devnull for fd in fds)
    finally:
        _close(made)
    assert not leak_scope.new_since(before, leak_scope.capture())


@pytest.mark.filterwarnings("ignore::ResourceWarning")   # the collector's, on purpose
def test_an_unreachable_socket_is_not_a_leak(leak_scope: LeakScope) -> None:
    """An object in a reference cycle that nothing refers to is closed by the collector
    the check runs first: not reported (a real leak is a reachable one)."""
    before = leak_scope.capture()
    a, b = socket.socketpair()
    cycle: list[object] = [a, b]
    cycle.append(cycle)
    del a, b, cycle
    assert not leak_scope.new_since(before, leak_scope.capture())


@root_only
def test_a_mount_under_tmp_is_reported_and_undone(leak_scope: LeakScope, tmp_path: Path) -> None:
    point = tmp_path / "point"
    point.mkdir()
    before = leak_scope.capture()
    bind_mount(point, point)
    try:
        left = leak_scope.new_since(before, leak_scope.capture())
        assert _kinds(left) == {"mounts"}, left.describe()
        assert list(left.mounts.values())[0].endswith(f" at {point.resolve()}")
        leak_scope.clean(left)
        assert os.stat(point).st_dev == os.stat(tmp_path).st_dev   # unmounted
    finally:
        if os.stat(point).st_dev != os.stat(tmp_path).st_dev:
            umount(point)
        point.rmdir()
    assert not leak_scope.new_since(before, leak_scope.capture())


@root_only
def test_a_run_netns_entry_of_our_tag_is_reported_and_removed(leak_scope: LeakScope) -> None:
    """A /run/netns name of ours (a file, and one with a netns mounted on it, as
    `ip netns add` leaves): reported as entries and as an nsfs mount, and removed."""
    os.makedirs(RUN_NETNS, exist_ok=True)
    plain = os.path.join(RUN_NETNS, netns_tag() + "plain")
    mounted = os.path.join(RUN_NETNS, netns_tag() + "mounted")
    before = leak_scope.capture()
    try:
        Path(plain).touch()
        Path(mounted).touch()
        bind_mount("/proc/self/ns/net", mounted)
        left = leak_scope.new_since(before, leak_scope.capture())
        assert _kinds(left) == {"netns_names", "mounts"}, left.describe()
        assert left.netns_names == {os.path.basename(plain), os.path.basename(mounted)}
        assert list(left.mounts.values()) == [f"nsfs at {mounted}"]
        leak_scope.clean(left)
        assert not os.path.lexists(plain) and not os.path.lexists(mounted)
    finally:
        for path in (mounted, plain):
            if os.path.lexists(path):
                if os.stat(path).st_dev != os.stat(RUN_NETNS).st_dev:
                    umount(path)
                os.unlink(path)
    assert not leak_scope.new_since(before, leak_scope.capture())


@root_only
def test_a_run_netns_entry_of_someone_else_is_not_ours(leak_scope: LeakScope) -> None:
    """Other sessions' /run/netns names do not count (outside strict mode)."""
    if leak_scope.strict:
        pytest.skip("strict mode: every /run/netns entry counts")
    os.makedirs(RUN_NETNS, exist_ok=True)
    other = os.path.join(RUN_NETNS, f"nsctl-test-other-{os.getpid()}")
    before = leak_scope.capture()
    Path(other).touch()
    try:
        assert not leak_scope.new_since(before, leak_scope.capture())
    finally:
        os.unlink(other)
