"""The thread scan's C loop (nsctl.kernel._native) against its Python loop and
the kernel: the same snapshot, the fallback paths it calls back for, and no fd
left open when a callback fails.

What each thread's namespace is comes from the fixture's own reading of the
kernel (stat and its own ioctls); the two loops are also held to each other.
"""
from __future__ import annotations

import os

import pytest

import nsctl
import topology
from nsctl.discovery import tasks
from topology import root_only

pytestmark = root_only


@pytest.fixture
def native():
    module = tasks._c_module()
    assert module is not None, "nsctl.kernel._native was not built"
    return module


def _fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def _threads(snap, pid: int) -> dict:
    """What the snapshot says of the namespaces the threads of ``pid`` hold."""
    out = {}
    for ino, ns in snap.namespaces.items():
        thread_refs = sorted((r.tid, r.link) for r in ns.refs if r.kind == "thread" and r.pid == pid)
        if thread_refs:
            out[ino] = (ns.type, ns.id, ns.owner, ns.owner_uid, ns.dev, thread_refs)
    return out


def test_the_c_loop_finds_what_the_kernel_and_the_python_loop_find(monkeypatch, native):
    with topology.threads_in_uts(12) as t:
        monkeypatch.setattr(tasks, "NATIVE", native)
        fds = _fds()
        with_c = nsctl.discover(threads=True)
        assert _fds() == fds
        monkeypatch.setattr(tasks, "NATIVE", None)
        with_python = nsctl.discover(threads=True)
        for tid, want in t.uts.items():
            ns = with_c.namespaces[want.ino]
            assert (ns.type, ns.id, ns.owner, ns.owner_uid, ns.dev) == \
                (want.type, want.id, want.owner, want.owner_uid, want.dev)
            assert [(r.tid, r.link) for r in ns.refs if r.kind == "thread"] == [(tid, "uts")]
        assert _threads(with_c, t.pid) == _threads(with_python, t.pid)
        assert len(_threads(with_c, t.pid)) == 12


def test_without_the_hierarchy_each_namespace_is_learned_the_general_way(monkeypatch, native):
    """With hierarchy off the C loop calls back for every new namespace (as for
    mount namespaces, which need an fd kept): found, but no id or owner asked."""
    with topology.thread_netns() as t:
        got = {}
        for loop in (native, None):
            monkeypatch.setattr(tasks, "NATIVE", loop)
            snap = nsctl.discover(threads=True, hierarchy=False)
            ns = snap.namespaces[t.net.ino]
            got[loop is None] = (ns.type, ns.id, ns.owner, ns.dev,
                                 [(r.kind, r.pid, r.tid, r.link) for r in ns.refs])
        assert got[False] == got[True] == \
            ("net", None, None, t.net.dev, [("thread", t.pid, t.tid, "net")])


def test_a_failing_callback_raises_and_leaves_no_fd(native):
    """An error in the model's callback reaches the caller as it was; the C loop
    closes what it opened on the way out."""
    with topology.threads_in_uts(4) as t:
        task_fd = os.open(f"/proc/{t.pid}/task", os.O_RDONLY | os.O_DIRECTORY)
        try:
            tids = [tid for tid in map(int, os.listdir(task_fd)) if tid != t.pid]
            own = tuple(os.readlink(f"/proc/{t.pid}/ns/{link}").encode()
                        for link in tasks.THREAD_LINKS)
            fds = _fds()

            def adopt(*_args):
                raise RuntimeError("the model failed")

            with pytest.raises(RuntimeError, match="the model failed"):
                native.scan_tasks(task_fd, tids, tasks.THREAD_LINKS, own, set(), True,
                                  None, lambda fd: None, adopt)
            assert _fds() == fds
            # Each thread's uts differs from the process's; every other link is the same.
            found = native.scan_tasks(task_fd, tids, tasks.THREAD_LINKS, own,
                                      {w.ino for w in t.uts.values()}, True, None, None, None)
            assert found == [(tid, "uts", t.uts[tid].ino) for tid in tids]
            assert _fds() == fds
        finally:
            os.close(task_fd)


def test_a_thread_that_is_gone_is_skipped(native):
    with topology.threads_in_uts(2) as t:
        task_fd = os.open(f"/proc/{t.pid}/task", os.O_RDONLY | os.O_DIRECTORY)
        try:
            tids = [tid for tid in map(int, os.listdir(task_fd)) if tid != t.pid]
            own = (None,) * len(tasks.THREAD_LINKS)   # (a process whose links are gone)
            gone = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 100000
            resolved = {os.stat(f"/proc/{t.pid}/task/{tid}/ns/{link}").st_ino
                        for tid in tids for link in tasks.THREAD_LINKS}
            found = native.scan_tasks(task_fd, [gone, *tids], tasks.THREAD_LINKS, own,
                                      resolved, True, None, None, None)
            assert {tid for tid, _link, _ino in found} == set(tids)
            assert len(found) == len(tids) * len(tasks.THREAD_LINKS)
        finally:
            os.close(task_fd)
