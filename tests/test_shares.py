"""A full scan shared among forked workers (nsctl.discovery.shares) finds what one
process reading in turn finds, leaves no worker or fd behind, survives a
worker that fails, and is not tried where the kernel would refuse the fds.

Which namespaces exist comes from the fixtures' own reading of the kernel;
the shared scan is held against it and against a scan in turn of the same
host, moments apart.
"""
from __future__ import annotations

import os
import subprocess
import time
from contextlib import ExitStack

import pytest
from support import namespaces, root_only, syscalls
from support.processes import Child, children_of

import nsctl
from nsctl.discovery import shares

pytestmark = root_only


def _scan(monkeypatch, shared: bool):
    monkeypatch.setattr(shares, "SHARE_FROM", 1 if shared else 1 << 30)
    return nsctl.discover()


def _open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


@pytest.fixture
def host(scratch):
    """Namespaces held every way a share must hand back: a netns held only by a bind
    mount in a mount namespace that only an fd holds (its fd crosses over SCM_RIGHTS),
    one held by a socket, and user namespaces two of which only a child holds."""
    with ExitStack() as stack:
        foreign = stack.enter_context(namespaces.foreign_mount_netns(scratch, keep="fd"))
        socket = stack.enter_context(namespaces.netns_held_by_socket())
        users = stack.enter_context(namespaces.nested_userns(3, keep="process"))
        yield [foreign.net, foreign.mnt, socket.net, *users.levels]


def _model(snap, inos) -> dict:
    """What the scan says of these namespaces, refs in a stable order."""
    out = {}
    for ino in inos:
        doc = snap.namespaces[ino].to_dict()
        doc["refs"] = sorted(doc["refs"], key=lambda r: sorted(r.items(), key=str))
        out[ino] = doc
    return out


def test_shared_scan_finds_what_a_scan_in_turn_finds(monkeypatch, host):
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    fds, children = _open_fds(), children_of(os.getpid())
    shared = _scan(monkeypatch, shared=True)
    assert _open_fds() == fds and children_of(os.getpid()) == children
    in_turn = _scan(monkeypatch, shared=False)
    wanted = [f.ino for f in host]
    for want in host:
        ns = shared.namespaces[want.ino]
        assert (ns.type, ns.id, ns.owner, ns.parent, ns.owner_uid) == \
            (want.type, want.id, want.owner, want.parent, want.owner_uid)
    assert _model(shared, wanted) == _model(in_turn, wanted)
    assert set(shared.namespaces) == set(in_turn.namespaces)
    assert sorted(shared.processes) == list(shared.processes), "processes in PID order"


def test_a_failed_worker_has_its_processes_read_by_the_parent(monkeypatch, host):
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    parent = os.getpid()
    real = shares.Part.to_bytes

    def to_bytes(self):
        if os.getpid() != parent:
            raise RuntimeError("a worker that fails")
        return real(self)

    monkeypatch.setattr(shares.Part, "to_bytes", to_bytes)
    fds, children = _open_fds(), children_of(parent)
    snap = _scan(monkeypatch, shared=True)
    assert _open_fds() == fds and children_of(parent) == children
    in_turn = _scan(monkeypatch, shared=False)
    wanted = [f.ino for f in host]
    assert _model(snap, wanted) == _model(in_turn, wanted)


def _may_share_in_userns(chan) -> None:
    syscalls.new_userns()   # root in there: every capability, none in the initial one
    chan.send({"caps": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
               "may": shares._may_pass_fds()})


def test_no_sharing_in_a_user_namespace_of_its_own():
    """Fds in flight count against RLIMIT_NOFILE unless the sender is privileged in the
    initial user namespace: full capabilities in a user namespace do not count."""
    assert shares._may_pass_fds()   # root here, in the initial user namespace
    with Child(_may_share_in_userns) as child:
        got = child.ready()
    assert int(got["caps"], 16) & (1 << shares.CAP_SYS_ADMIN)
    assert got["may"] is False


def test_an_interrupted_shared_scan_leaves_no_worker_or_fd(monkeypatch, host):
    from nsctl.discovery import engine

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    monkeypatch.setattr(shares, "TAKE", 1)
    parent = os.getpid()
    real, calls = engine.read_process, []

    def interrupted(scan, pid, readers):
        if os.getpid() != parent:
            time.sleep(0.05)   # slow workers: the parent surely reads 3 PIDs, even on a host of few
        else:
            calls.append(pid)
            if len(calls) == 3:   # by now this scan holds fds, the workers are reading
                raise KeyboardInterrupt
        return real(scan, pid, readers)

    monkeypatch.setattr(engine, "read_process", interrupted)
    # Enough processes for the parent's share, on a host with few of its own.
    crowd = [subprocess.Popen(["sleep", "60"]) for _ in range(12)]
    try:
        fds, children = _open_fds(), children_of(parent)
        with pytest.raises(KeyboardInterrupt):
            _scan(monkeypatch, shared=True)
        assert _open_fds() == fds and children_of(parent) == children
    finally:
        for proc in crowd:
            proc.kill()
            proc.wait()
