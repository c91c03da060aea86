"""The thread scan's C loop (nsctl.kernel._native) against its Python loop and
the kernel: the same snapshot, the fallback paths it calls back for, and no fd
left open when a callback fails.

What each thread's namespace is comes from the fixture's own reading of the
kernel (stat and its own ioctls); the two loops are also held to each other.
"""
from __future__ import annotations

import os

import pytest
import support.churn
from support import namespaces, root_only

import nsctl
from nsctl.discovery import tasks

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
        thread_refs = sorted((r.tid, r.link) for r in ns.refs
                             if r.kind == "thread" and r.pid == pid)
        if thread_refs:
            out[ino] = (ns.type, ns.id, ns.owner, ns.owner_uid, ns.dev, thread_refs)
    return out


def test_the_c_loop_finds_what_the_kernel_and_the_python_loop_find(monkeypatch, native):
    with namespaces.threads_in_uts(12) as t:
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
    with namespaces.thread_netns() as t:
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
    with namespaces.threads_in_uts(4) as t:
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
    with namespaces.threads_in_uts(2) as t:
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


@pytest.mark.parametrize("loop", ["c", "python"])
@pytest.mark.parametrize("parallel", [False, True], ids=["in-turn", "shared"])
def test_threads_that_come_and_go_meanwhile(monkeypatch, loop, parallel):
    """Threads making uts namespaces and exiting while --threads scans run over and over:
    no error, and every thread-held namespace reported is one the threads made (NS_GET_ID
    is never reused), owned by the user namespace they are in."""
    import time

    monkeypatch.setattr(tasks, "NATIVE", tasks._c_module() if loop == "c" else None)
    if loop == "c":
        assert tasks.NATIVE is not None, "nsctl.kernel._native was not built"
    listed: list[int] = []
    if parallel:   # the churner's threads shared among 3 workers, fed while listing
        monkeypatch.setattr(tasks, "PARALLEL_MIN_THREADS", 2)
        monkeypatch.setattr(tasks, "TAKE_TIDS", 4)
        monkeypatch.setattr(os, "cpu_count", lambda: 3)
        real_list_into = tasks._list_into

        def list_into(task_fd, pid, threads, feed):
            tids, kept = real_list_into(task_fd, pid, threads, feed)
            listed.append(len(tids))
            return tids, kept

        monkeypatch.setattr(tasks, "_list_into", list_into)
    our_user = os.stat("/proc/self/ns/user").st_ino
    fds = _fds()
    reported: dict[int, int] = {}   # NS_GET_ID -> owner, of thread-held uts namespaces
    with support.churn.thread_churn() as churn:
        deadline, scans = time.monotonic() + 2, 0
        while time.monotonic() < deadline or scans < 5:
            snap = nsctl.discover(threads=True)
            scans += 1
            assert not [p for p in snap.problems if p.pid == churn.pid and
                        p.reason != "vanished"], snap.problems
            for ns in snap.namespaces.values():
                if any(r.kind == "thread" and r.pid == churn.pid for r in ns.refs):
                    assert ns.type == "uts"
                    reported[ns.id] = ns.owner
        made = churn.stop()
    assert _fds() == fds
    assert made["threads"] > 100 and reported, (made["threads"], len(reported))
    assert set(reported) <= set(made["made"]), "a namespace no thread made"
    assert set(reported.values()) == {our_user}
    assert bool(listed) == parallel and all(n > 0 for n in listed)
