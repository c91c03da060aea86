"""nsctl.discover() against real topologies built by the fixtures (tests/support/).

Every expected value comes from the fixture's own reading of the kernel
(os.stat of nsfs files, NS_GET_* ioctls, /proc/PID/status), never from nsctl.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support import churn, cli, namespaces, nsfacts, processes, root_only, syscalls
from support.nsfacts import NsFacts, facts, link_ino
from support.syscalls import LINK_TYPE, NS_LINKS

import nsctl

pytestmark = root_only


@pytest.fixture(params=["in-turn", "shared"])
def scan_how(request, monkeypatch):
    """Run a test's full scans both ways: processes read in turn, and shared among
    3 forked workers (nsctl.discovery.shares) as on a host with hundreds of
    processes.  Checks that the shared way really ran (no silent fallback)."""
    from nsctl.discovery import shares

    if request.param == "in-turn":
        monkeypatch.setattr(shares, "SHARE_FROM", 1 << 30)
        yield request.param
        return
    monkeypatch.setattr(shares, "SHARE_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    ran: list[bool] = []
    real = shares.read_shared

    def spy(*args, **kwargs):
        ran.append(real(*args, **kwargs))
        return ran[-1]

    monkeypatch.setattr(shares, "read_shared", spy)
    yield request.param
    assert ran and all(ran), "the scan was not shared"


@pytest.fixture(params=["c", "python"])
def thread_loop(request, monkeypatch):
    """Run a test's thread scans with the C loop (nsctl.kernel._native, which the
    project's install builds) and with the Python loop it falls back to."""
    from nsctl.discovery import tasks

    if request.param == "c":
        assert tasks._c_module() is not None, "nsctl.kernel._native was not built"
        monkeypatch.setattr(tasks, "NATIVE", tasks._c_module())
    else:
        monkeypatch.setattr(tasks, "NATIVE", None)
    return request.param


# --- comparing a snapshot with what the fixture knows ----------------------------------------

def find(snap, want: NsFacts):
    ns = snap.namespaces.get(want.ino)
    assert ns is not None, f"nsctl did not find {want.type}:[{want.ino}]"
    return ns


def assert_same(ns, want: NsFacts) -> None:
    """Identity and relations: type, inode, device, NS_GET_ID, owner, parent, owner UID."""
    got = {"type": ns.type, "ino": ns.ino, "dev": ns.dev, "id": ns.id, "owner": ns.owner,
           "parent": ns.parent, "owner_uid": ns.owner_uid}
    assert got == want.__dict__


def _key(d: dict) -> list:
    return sorted(d.items(), key=str)


def refs(ns) -> list[dict]:
    """ns's references, less the fds that other people's scanners hold on it right now.

    Others run nsctl on this host too, and a scan holds fds on the mount
    namespaces it has seen (and briefly on anything it learns), so an fd
    reference from a process outside this pytest's tree may come and go.  Any
    other reference, and every one from our own processes, must be as expected.
    """
    ours = {os.getpid(), *processes.descendants(os.getpid())}
    return sorted((r.to_dict() for r in ns.refs if r.kind != "fd" or r.pid in ours), key=_key)


def held_by(ns) -> list[str]:
    kinds = {r["kind"] for r in refs(ns)}
    return [k for k in ("process", "thread", "fd", "socket", "bindmount", "child") if k in kinds]


def ref(kind: str, **fields) -> dict:
    return {"kind": kind, **fields}


def same_refs(ns, *expected: dict) -> None:
    assert refs(ns) == sorted(expected, key=_key)


def proc_ref(pid: int, link: str) -> dict:
    return ref("process", pid=pid, link=link)


def only_bindmounts(ns, path: str, mntns: int) -> None:
    """Held by bind mounts only, ours among them.

    Other mount namespaces made meanwhile (anyone on this host may unshare one)
    copy our mounts, so a copy of ours at the same path may show as well.
    """
    assert held_by(ns) == ["bindmount"], refs(ns)
    assert ref("bindmount", path=path, mntns=mntns) in refs(ns)
    assert all(r.path == path for r in ns.refs if r.kind == "bindmount"), refs(ns)


# --- our own namespaces, ids and devices ------------------------------------------------------

def test_own_namespaces_match_the_kernel():
    own = {link: facts(f"/proc/self/ns/{link}") for link in NS_LINKS}
    snap = nsctl.discover()
    me = os.getpid()
    assert snap.own == {link: f.ino for link, f in own.items()}
    for link, want in own.items():
        ns = find(snap, want)
        assert_same(ns, want)
        if LINK_TYPE[link] == link:
            assert proc_ref(me, link) in refs(ns)
            assert me in ns.pids
    assert snap.processes[me].ns == {link: f.ino for link, f in own.items()}
    if own["net"].id is not None:
        assert snap.has_ns_id is True


def test_ids_and_devices_of_every_namespace_a_process_shows():
    """A sweep: each namespace that a live process's link shows, checked against that link."""
    snap = nsctl.discover()
    checked = 0
    for ns in snap.namespaces.values():
        for r in ns.refs:
            if r.kind != "process":
                continue
            try:
                want = facts(f"/proc/{r.pid}/ns/{r.link}")
            except OSError:
                continue   # exited, or refuses even root
            if want.ino != ns.ino:
                continue   # moved (setns) since the scan, or a new process under that PID
            assert_same(ns, want)
            checked += 1
            break
    assert checked >= 8


def test_nsctl_reports_no_fd_of_its_own():
    """nsctl's working fds (e.g. the mount namespaces it keeps for the bind-mount pass)
    are not references: the caller holds no namespace fd, so nsctl must report none."""
    me = os.getpid()
    ours = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            ours[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass
    held = {fd for fd, text in ours.items() if text.partition(":[")[0] in LINK_TYPE}
    snap = nsctl.discover()
    reported = [(ns.type, ns.ino, r.fd) for ns in snap.namespaces.values() for r in ns.refs
                if r.kind == "fd" and r.pid == me and r.fd not in held]
    assert reported == []


# --- 1. user namespaces that only a child keeps alive -----------------------------------------

@pytest.mark.parametrize("keep", ["process", "fd"])
def test_nested_user_namespaces_with_hidden_ancestors(keep, scan_how):
    with namespaces.nested_userns(3, keep=keep) as t:
        a, b, c = t.levels
        # What the fixture itself learned with NS_GET_PARENT.
        assert (a.parent, b.parent, c.parent) == (t.top.ino, a.ino, b.ino)
        snap = nsctl.discover()
        for want in (a, b, c):
            assert_same(find(snap, want), want)
        ns_a, ns_b, ns_c = (snap.namespaces[f.ino] for f in (a, b, c))
        assert ns_a.hidden and ns_b.hidden and not ns_c.hidden
        assert held_by(ns_a) == held_by(ns_b) == ["child"]
        same_refs(ns_a, ref("child", child=b.ino, relation="parent"))
        same_refs(ns_b, ref("child", child=c.ino, relation="parent"))
        if keep == "process":
            same_refs(ns_c, proc_ref(t.pid, "user"))
            assert ns_c.pids == [t.pid]
        else:
            same_refs(ns_c, ref("fd", pid=t.holder, fd=t.holder_fd))
            assert ns_c.pids == []
        assert ref("child", child=a.ino, relation="parent") in refs(find(snap, t.top))


# --- 2. a netns held by a bind mount in our mount namespace -----------------------------------

@pytest.mark.parametrize("how", ["bind", "unshare"], ids=["mount-bind", "unshare-net=FILE"])
def test_netns_held_by_bindmount(scratch, how):
    with namespaces.netns_bindmount(scratch, how=how) as t:
        snap = nsctl.discover()
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        only_bindmounts(ns, t.path, t.mntns)
        assert ns.pids == []


# --- 3. a netns held by a bind mount inside another mount namespace ---------------------------

@pytest.mark.parametrize("keep", ["process", "fd", "bindmount"])
def test_netns_bindmount_in_other_mount_namespace(scratch, keep, scan_how):
    with namespaces.foreign_mount_netns(scratch, keep=keep) as t:
        snap = nsctl.discover()
        net = find(snap, t.net)
        assert_same(net, t.net)
        same_refs(net, ref("bindmount", path=t.path, mntns=t.mnt.ino))
        mnt = find(snap, t.mnt)
        assert_same(mnt, t.mnt)
        if keep == "process":
            same_refs(mnt, proc_ref(t.pid, "mnt"))
        elif keep == "fd":
            same_refs(mnt, ref("fd", pid=t.holder, fd=t.holder_fd))
        else:
            only_bindmounts(mnt, t.mnt_path, link_ino("self", "mnt"))


def test_a_mount_namespace_gone_since_the_scan_leaves_the_other_mounts_to_try(scratch):
    """A netns bind-mounted in our mount namespace and in a copy of it: when the copy's
    only process exits after the scan, reopening the netns through that mount fails
    and the mount in our namespace still opens it."""
    from nsctl.query.handles import open_namespace

    with namespaces.netns_bindmount(scratch) as t:
        copy = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                 "sleep", "600"])
        try:
            deadline = time.monotonic() + 10
            while link_ino(copy.pid, "mnt") == t.mntns:
                assert time.monotonic() < deadline, "unshare -m did not start"
                time.sleep(0.01)
            other = link_ino(copy.pid, "mnt")
            snap = nsctl.discover()
        finally:
            copy.kill()
            copy.wait()
        net = find(snap, t.net)
        mounts = [r for r in net.refs if r.kind == "bindmount"]
        assert {r.mntns for r in mounts} == {t.mntns, other}
        # The gone mount namespace's reference first, as a scan may list it.
        net.refs.sort(key=lambda r: r.kind != "bindmount" or r.mntns != other)
        fd = open_namespace(net, snap)
        try:
            assert os.fstat(fd).st_ino == t.net.ino
        finally:
            os.close(fd)


# --- 3b. mount namespaces no process is in, read without entering them ----------------------

def _listing_needs_kernel_and_build() -> None:
    from nsctl.discovery import tasks

    if not syscalls.can_list_mounts():
        pytest.skip("this kernel has no listmount(2) (Linux 6.8+): nsctl enters instead")
    assert tasks._c_module() is not None, "nsctl.kernel._native was not built"


def test_a_foreign_mount_table_is_listed_without_entering_it(scratch):
    """nsfs.mounted_namespaces against the namespace's own mountinfo, with more mounts
    than one listmount(2) page."""
    from nsctl.kernel import nsfs

    _listing_needs_kernel_and_build()
    with namespaces.foreign_mount_table(scratch, count=600) as t:
        fd = os.open(f"/proc/{t.holder}/fd/{t.holder_fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            got = nsfs.mounted_namespaces(fd)
        finally:
            os.close(fd)
        assert got is not None
        assert len(t.nsfs_mounts) >= 600   # more than one page of 512
        assert sorted(got) == sorted(t.nsfs_mounts)


def test_one_namespace_that_cannot_be_listed_turns_nothing_off(monkeypatch):
    """An error about one namespace (here: the kernel's EINVAL for a file that is no
    mount namespace) has that one entered instead; the next is still listed."""
    from nsctl.kernel import nsfs

    _listing_needs_kernel_and_build()
    monkeypatch.setattr(nsfs, "_can_list_mounts", None)
    net = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert nsfs.mounted_namespaces(net) is None
        assert nsfs.mounted_namespaces(mnt) is not None
    finally:
        os.close(net)
        os.close(mnt)


@pytest.mark.parametrize("unknown", [False, True], ids=["all-known", "one-unknown"])
@pytest.mark.parametrize("listing", ["listmount", "enter"])
def test_foreign_mount_tables_with_and_without_entering(scratch, unknown, listing, monkeypatch):
    """A mount namespace no process is in is read from here where the kernel lists its
    mounts, and entered (by a forked child) only where it must: where a mounted file
    names a namespace found nowhere else, whose fd only the child can open.  Either
    way the snapshot is the same."""
    from nsctl.discovery import bindmounts
    from nsctl.kernel import nsfs

    if listing == "listmount":
        _listing_needs_kernel_and_build()
    else:
        monkeypatch.setattr(nsfs, "_can_list_mounts", False)
    entered: set[int] = set()
    real = bindmounts.read_foreign_mounts

    def spy(mnt_fds, known):
        entered.update(os.fstat(fd).st_ino for fd in mnt_fds)
        return real(mnt_fds, known)

    monkeypatch.setattr(bindmounts, "read_foreign_mounts", spy)
    with namespaces.foreign_mount_table(scratch, count=3, unknown=unknown) as t:
        snap = nsctl.discover()
        assert_same(find(snap, t.mnt), t.mnt)
        own = snap.namespaces[t.own_net]
        assert sorted(r.path for r in own.refs
                      if r.kind == "bindmount" and r.mntns == t.mnt.ino) == t.points
        if unknown:
            hidden = find(snap, t.hidden)
            assert_same(hidden, t.hidden)
            same_refs(hidden, ref("bindmount", path=t.hidden_path, mntns=t.mnt.ino))
    assert (t.mnt.ino in entered) == (listing == "enter" or unknown)


# --- 4. a netns held by an open fd ------------------------------------------------------------

@pytest.mark.parametrize("listing", ["by-path", "by-fd"])
def test_netns_held_by_fd(scan_how, listing, monkeypatch):
    """by-path: fd/ listed through /proc/self/fd/N; by-fd: as where /proc shows no
    /proc/self (listed through an open directory fd)."""
    from nsctl.kernel import procfs

    monkeypatch.setattr(procfs, "_self_fd", None if listing == "by-path" else "")
    with namespaces.netns_held_by_fd() as t:
        assert t.link_text == f"net:[{t.net.ino}]"
        snap = nsctl.discover()
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        same_refs(ns, ref("fd", pid=t.holder, fd=t.fd))
        assert held_by(ns) == ["fd"]


def test_netns_held_by_fd_opened_through_a_since_detached_bindmount(scratch):
    """`ip netns exec` has /run/netns/X open when `ip netns delete X` detaches the mount:
    the fd reads back as "/" and is all that keeps the netns alive."""
    with namespaces.netns_held_by_fd(scratch, via="detached") as t:
        assert t.link_text == "/"
        snap = nsctl.discover()
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        same_refs(ns, ref("fd", pid=t.holder, fd=t.fd))


def test_fd_opened_through_a_bindmount(scratch):
    """An fd opened through a bind mount reads back as the mount's path, not net:[...]."""
    with namespaces.netns_bindmount(scratch) as pin:
        with processes.Child(namespaces.hold) as holder:
            holder.send({"open": [pin.path]})
            fd = holder.ready()["fds"][0]
            assert os.readlink(f"/proc/{holder.pid}/fd/{fd}") == pin.path
            snap = nsctl.discover()
            ns = find(snap, pin.net)
            assert held_by(ns) == ["fd", "bindmount"]
            assert ref("fd", pid=holder.pid, fd=fd) in refs(ns)
            assert ref("bindmount", path=pin.path, mntns=pin.mntns) in refs(ns)


# --- 5. a netns held by a socket --------------------------------------------------------------

@pytest.mark.parametrize("passed", [False, True], ids=["kept", "passed-over-scm-rights"])
def test_netns_held_by_socket(passed, scan_how):
    with namespaces.netns_held_by_socket(passed=passed) as t:
        assert os.readlink(f"/proc/{t.holder}/fd/{t.fd}") == f"socket:[{t.socket}]"
        assert link_ino(t.holder, "net") != t.net.ino
        snap = nsctl.discover()
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        same_refs(ns, ref("socket", pid=t.holder, fd=t.fd, socket=t.socket))
        assert held_by(ns) == ["socket"]


# --- 6. a thread in its own netns -------------------------------------------------------------

def test_thread_in_its_own_netns(scan_how, thread_loop):
    with namespaces.thread_netns() as t:
        assert t.net.ino != t.process_net
        snap = nsctl.discover(threads=True)
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        same_refs(ns, ref("thread", pid=t.pid, tid=t.tid, link="net"))
        assert held_by(ns) == ["thread"]
        assert snap.processes[t.pid].ns["net"] == t.process_net

        plain = nsctl.discover()
        assert plain.processes[t.pid].ns["net"] == t.process_net
        # Not required without threads; if there, never as the process's own.
        if t.net.ino in plain.namespaces:
            assert all(r.kind != "process" for r in plain.namespaces[t.net.ino].refs)


@pytest.mark.parametrize("worker", ["works", "fails", "pipe-full"])
def test_many_threads_shared_among_workers(monkeypatch, worker, thread_loop):
    """Past PARALLEL_MIN_THREADS, forked workers take shares of the threads (here 3
    for 24 threads): each thread's own namespace is found with its id and owner.
    A worker that fails has its share read by the parent; none is left behind.
    Threads the queue had no room for (pipe-full) are read by the parent."""
    import marshal

    from nsctl.discovery import shares, tasks

    # Processes in turn, so that this process is the one whose workers share the threads
    # (on a host of 300 processes or more, a process-share worker would be).
    monkeypatch.setattr(shares, "SHARE_FROM", 1 << 30)
    monkeypatch.setattr(tasks, "PARALLEL_MIN_THREADS", 2)
    monkeypatch.setattr(tasks, "TAKE_TIDS", 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    parent = os.getpid()
    real_scan, real_merge, merged = tasks._scan, tasks._merge, []

    def slow_parent_scan(*args):
        if os.getpid() == parent:
            time.sleep(0.05)   # so that the workers surely take their share
        return real_scan(*args)

    def counting_merge(*args):
        merged.append(args[1])
        return real_merge(*args)

    monkeypatch.setattr(tasks, "_scan", slow_parent_scan)
    monkeypatch.setattr(tasks, "_merge", counting_merge)
    if worker == "fails":
        real_dumps = marshal.dumps

        def dumps(*args, **kwargs):
            if os.getpid() != parent:
                raise RuntimeError("a worker that fails")
            return real_dumps(*args, **kwargs)

        monkeypatch.setattr(marshal, "dumps", dumps)
    refused: list[int] = []
    if worker == "pipe-full":
        real_write = os.write

        def write(fd, data):   # every other batch of TIDs meets a full pipe
            if os.getpid() == parent and len(data) == 4 * tasks.TAKE_TIDS:
                refused.append(len(refused))
                if len(refused) % 2:
                    raise BlockingIOError(11, "Resource temporarily unavailable")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)
    with namespaces.threads_in_uts(24) as t:
        children = processes.children_of(parent)
        snap = nsctl.discover(threads=True)
        assert processes.children_of(parent) == children
        assert len({f.ino for f in t.uts.values()}) == 24
        for tid, want in t.uts.items():
            ns = find(snap, want)
            assert_same(ns, want)
            assert ref("thread", pid=t.pid, tid=tid, link="uts") in refs(ns)
        assert bool(merged) == (worker != "fails")   # namespaces the workers learned
        assert (len(refused) >= 12) == (worker == "pipe-full")


@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_process_whose_main_thread_exited(threads, thread_loop):
    """A process lives as long as any thread does.  Once its main thread has exited,
    /proc/PID/ns/* are gone (ENOENT) and /proc/PID/mountinfo says EINVAL, yet the
    process is alive and its other threads hold its namespaces: here a netns that
    nothing else holds.  It is neither 'vanished' nor to be missed."""
    with namespaces.leader_exited() as t:
        with pytest.raises(FileNotFoundError):
            os.readlink(f"/proc/{t.pid}/ns/net")
        assert os.path.exists(f"/proc/{t.pid}/task/{t.tid}")
        snap = nsctl.discover(threads=threads)
        assert [p.what for p in snap.problems if p.pid == t.pid] == []
        ns = find(snap, t.net)
        assert_same(ns, t.net)
        assert refs(ns) in ([proc_ref(t.pid, "net")],
                            [ref("thread", pid=t.pid, tid=t.tid, link="net")]), refs(ns)


# --- 7. PID namespaces three deep -------------------------------------------------------------

def test_pid_namespaces_three_deep(scan_how):
    with namespaces.pid_chain(3) as t:
        levels = t.levels
        parents = [t.top.ino] + [lvl.ns.ino for lvl in levels[:-1]]
        assert [lvl.ns.parent for lvl in levels] == parents   # the fixture's NS_GET_PARENT
        assert [len(lvl.nspid) for lvl in levels] == [2, 3, 4]
        snap = nsctl.discover()
        makers = [t.maker] + [lvl.pid for lvl in levels[:-1]]   # each one's pid_for_children
        for i, lvl in enumerate(levels):
            ns = find(snap, lvl.ns)
            assert_same(ns, lvl.ns)
            assert snap.processes[lvl.pid].nspid == lvl.nspid
            assert ns.pids == [lvl.pid]
            expected = [proc_ref(lvl.pid, "pid"), proc_ref(makers[i], "pid_for_children")]
            if i + 1 < len(levels):
                expected.append(ref("child", child=levels[i + 1].ns.ino, relation="parent"))
            same_refs(ns, *expected)
        assert snap.processes[t.maker].nspid in (None, nsfacts.nspid(t.maker))
        assert snap.processes[t.maker].ns["pid_for_children"] == levels[0].ns.ino


def test_an_excluded_process_tree_is_left_out(scan_how):
    """Options.exclude_trees leaves out a process and all its descendants (and what
    only they hold), in a full scan and in rescans that take the rest over."""
    with namespaces.pid_chain(3) as t:
        tree = {t.maker, *(lvl.pid for lvl in t.levels)}
        opts = nsctl.Options(exclude_trees=frozenset({t.maker}))
        from nsctl.discovery import rescan

        snap, memo, _ = rescan(None, None, opts)
        if scan_how == "in-turn":     # (a shared scan's workers keep no record of them)
            assert set(memo.excluded) == tree
        for current in (snap, rescan(memo, {t.levels[1].pid}, opts)[0],
                        nsctl.discover(nsctl.Options(exclude_trees=frozenset({os.getpid()})))):
            assert not tree & set(current.processes)
            for lvl in t.levels:
                assert lvl.ns.ino not in current.namespaces
            assert not {r.pid for ns in current.namespaces.values() for r in ns.refs} & tree
        assert os.getpid() in snap.processes
        assert tree <= set(nsctl.discover().processes)


# --- 8. time namespaces and the *_for_children links ------------------------------------------

def test_time_namespace_from_unshare_time_fork():
    with namespaces.unshare_command(["--time"]) as cmd:
        want = facts(f"/proc/{cmd.child}/ns/time")
        assert want.type == "time" and want.ino != link_ino("self", "time")
        assert link_ino(cmd.pid, "time") != want.ino
        assert link_ino(cmd.pid, "time_for_children") == want.ino
        snap = nsctl.discover()
        ns = find(snap, want)
        assert_same(ns, want)
        same_refs(ns, proc_ref(cmd.child, "time"), proc_ref(cmd.pid, "time_for_children"))
        assert ns.pids == [cmd.child]


def test_for_children_links_after_unshare_and_fork():
    with namespaces.for_children(fork=True) as t:
        snap = nsctl.discover()
        for want, link in ((t.pid_ns, "pid"), (t.time_ns, "time")):
            ns = find(snap, want)
            assert_same(ns, want)
            same_refs(ns, proc_ref(t.child, link), proc_ref(t.maker, f"{link}_for_children"))
            assert ns.pids == [t.child]
        assert snap.processes[t.maker].ns["pid_for_children"] == t.pid_ns.ino
        assert snap.processes[t.maker].ns["time_for_children"] == t.time_ns.ino


def test_time_for_children_without_fork():
    """After unshare(CLONE_NEWTIME) and no fork, only the time_for_children link holds it."""
    with namespaces.for_children(fork=False) as t:
        assert link_ino(t.maker, "time") != t.time_ns.ino
        snap = nsctl.discover()
        ns = find(snap, t.time_ns)
        assert_same(ns, t.time_ns)
        same_refs(ns, proc_ref(t.maker, "time_for_children"))
        assert held_by(ns) == ["process"] and ns.pids == [] and not ns.hidden


# --- the PID-reuse guard ----------------------------------------------------------------------

def test_a_pid_reused_every_few_ms_is_one_whole_process(scratch):
    """In a PID namespace of its own (own /proc, ns_last_pid), one PID is taken by a new
    process every few milliseconds, each in a uts namespace of its own and named after
    its generation; discover() runs there meanwhile.  Whatever it reports under that
    PID must be one process: its name and its uts namespace from the same generation
    (or the uts it started with, read before its unshare)."""
    with churn.pid_reuse_scan(scratch, seconds=2.0) as (report, log):
        assert report["scans"] >= 3
        assert len(log) > 100, "the PID was not reused often enough to mean anything"
        reused = sum(pid == churn.REUSED_PID for pid, _uts in log.values())
        assert reused > len(log) / 2
        assert report["seen"], "no scan met a generation"
        for pid, k, ppid, uts, missing in report["seen"]:
            assert (pid, ppid) == (log[k][0], report["reuser"])
            assert missing == [], f"pid {pid} (g{k}) reported without its {missing} links"
            assert uts in (log[k][1], report["base_uts"]), (pid, k, uts, log[k])


# --- one process's odd /proc text is a problem of that process ------------------------

def _named(chan: processes.Channel, name: bytes) -> None:
    """Name itself ``name`` (PR_SET_NAME: any bytes but NUL, 15 at most), say so,
    and wait until the test is done."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(15, name, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    chan.send({})
    chan.wait_closed()


def test_a_comm_with_parens_spaces_and_newlines_parses():
    """A process may name itself anything: ')', '(', spaces and newlines in its comm
    must not shift the fields of /proc/PID/stat that follow it."""
    name = b") x (\n) 1 2 3 )"
    with processes.Child(_named, name) as child:
        child.ready()
        with open(f"/proc/{child.pid}/comm", "rb") as f:
            assert f.read() == name + b"\n"   # the kernel keeps it as given
        snap = nsctl.discover()
        got = snap.processes[child.pid]
        assert got.comm == name.decode()
        assert got.ppid == os.getpid()
        assert got.state == "S"
        assert not [p for p in snap.problems if p.pid == child.pid]


def _with_field(text: str, index: int, value: str) -> str:
    """``text`` (a /proc/PID/stat) with field ``index`` after the comm (0: state)
    replaced by ``value``."""
    head, _, tail = text.rpartition(") ")
    fields = tail.split(" ")
    fields[index] = value
    return f"{head}) {' '.join(fields)}"


# Odd texts made from the child's real /proc/PID/stat: cut short, garbled, empty.
ODD_STATS = {
    "truncated": lambda text: text[:text.index(")") + 12],
    "no-parentheses": lambda text: text.replace("(", " ").replace(")", " "),
    "no-closing-parenthesis": lambda text: text.replace(")", "]"),
    "ppid-not-a-number": lambda text: _with_field(text, 1, "1x2"),
    "empty": lambda text: "",
}


@pytest.mark.parametrize("odd", sorted(ODD_STATS))
def test_an_unparsable_stat_is_a_problem_of_that_process_and_the_scan_goes_on(odd, tmp_path):
    """A /proc root (Options.proc) in which one real process's stat is an odd text
    and every other file of it is the kernel's: the scan records a problem for that
    process alone, and reads the other process in full."""
    with processes.Child(_named, b"odd") as odd_one, processes.Child(_named, b"fine") as fine:
        odd_one.ready()
        fine.ready()
        real = Path(f"/proc/{odd_one.pid}")
        text = (real / "stat").read_text()
        assert text.startswith(f"{odd_one.pid} (odd) ")   # (what the odd texts start from)
        assert text.rpartition(") ")[2].split()[1] == str(os.getpid())
        root = tmp_path / "proc"
        try:
            fake = root / str(odd_one.pid)
            fake.mkdir(parents=True)
            for entry in ("ns", "cmdline", "status", "fd", "task", "mountinfo", "cgroup",
                          "root"):
                (fake / entry).symlink_to(real / entry)
            (fake / "stat").write_text(ODD_STATS[odd](text))
            (root / str(fine.pid)).symlink_to(f"/proc/{fine.pid}")

            snap = nsctl.discover(nsctl.Options(proc=str(root)))
        finally:
            shutil.rmtree(root)   # (symlinks are unlinked, never followed)

        assert sorted(snap.processes) == [fine.pid]
        assert snap.processes[fine.pid].comm == "fine"
        assert snap.processes[fine.pid].ppid == os.getpid()
        problems = [p.to_dict() for p in snap.problems]
        assert problems == [{"reason": "error", "pid": odd_one.pid,
                             "what": f"pid {odd_one.pid}: processes: stat: "
                                     "not in the form of proc_pid_stat(5)"}]
        assert snap.partial


def test_errors_carry_their_facts_and_make_the_problem_record():
    """A process that is gone: the exception says why, of what and of which process, as
    attributes, and its problem record is what documents show under ``problems``."""
    from nsctl.discovery.scan import problem_of
    from nsctl.kernel import pidfd
    from nsctl.kernel.errors import NoSuchProcess

    proc = subprocess.Popen(["true"])
    assert proc.wait(timeout=10) == 0   # reaped: its PID names nothing now (or another process)
    if os.path.exists(f"/proc/{proc.pid}"):
        pytest.skip("the PID was reused at once")
    with pytest.raises(NoSuchProcess) as caught:
        pidfd.open_pidfd(proc.pid)
    exc = caught.value
    assert (exc.reason, exc.what, exc.pid) == ("vanished", f"pid {proc.pid}", proc.pid)
    assert str(exc) == f"pid {proc.pid}: No such process"
    assert problem_of(exc).to_dict() == {"reason": "vanished", "what": str(exc), "pid": proc.pid}
    assert problem_of(exc, f"pid {proc.pid}: fds").to_dict()["what"] == \
        f"pid {proc.pid}: fds: pid {proc.pid}: No such process"


# --- a host without pidfds ---------------------------------------------------------------------

@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM], ids=["kernel-lacks", "seccomp"])
def test_without_pidfds_the_scan_goes_on_through_proc(err):
    """pidfd_open fails (a kernel before 5.3; a container's seccomp filter): nsctl
    still finds what processes and fds hold, tells processes apart by their /proc
    directories, and says once, as a partial result, what it could not read (the
    sockets, which only a pidfd can copy)."""
    with namespaces.netns_held_by_fd() as by_fd, \
            namespaces.netns_held_by_socket() as by_socket, \
            processes.Child(namespaces.unshare_and_wait, syscalls.CLONE_NEWUTS) as in_uts:
        in_uts.ready()
        uts = link_ino(in_uts.pid, "uts")
        proc = cli.nsctl("ls", "--json", prefix=syscalls.deny_syscall(syscalls.SYS_PIDFD_OPEN,
                                                                       err))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        doc = json.loads(proc.stdout)
        found = {ns["ns"]: ns for ns in doc["namespaces"]}
        assert {"kind": "fd", "pid": by_fd.holder, "fd": by_fd.fd} in found[by_fd.net.ino]["refs"]
        assert in_uts.pid in found[uts]["pids"]
        assert by_socket.net.ino not in found          # only a pidfd could copy the socket
        said = [p for p in doc["problems"] if p["what"].startswith("pidfd_open")]
        assert len(said) == 1 and said[0]["reason"] == "unsupported", doc["problems"]
        assert os.strerror(err) in said[0]["what"] and "sockets" in said[0]["what"]
        assert doc["partial"] is True
        assert cli.PARTIAL in proc.stderr
