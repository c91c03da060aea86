"""Incremental rescans (nsctl.discovery.rescan, used by watch and serve).

An incremental rescan reads afresh only the processes it is told about (and
new ones), taking the rest over from the previous scan.  These tests change
real namespaces between two scans and check the incremental result against
the kernel (os.stat of the namespace files) and against a full scan of the
same moment.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Set as AbstractSet
from contextlib import ExitStack

import pytest
from support import namespaces, nsfacts, processes, root_only, syscalls

from nsctl.discovery import discover, rescan
from nsctl.model import Snapshot


def _shape(snap: Snapshot, pids: set[int] | None = None, inos: AbstractSet[int] = frozenset()
           ) -> dict[int, tuple]:
    """Everything a reader sees of each namespace, in a form two scans can share;
    with ``pids`` and ``inos``, only the namespaces ``inos`` and the references of
    processes ``pids`` (the rest of a busy test host changes without us)."""
    def mine(ino: int, ref) -> bool:
        return pids is None or (ref.pid in pids if ref.pid is not None else ino in inos)

    return {ino: (ns.type, ns.id, ns.owner, ns.parent, ns.owner_uid,
                  tuple(sorted(str(sorted(r.to_dict().items()))
                               for r in ns.refs if mine(ino, r))))
            for ino, ns in snap.namespaces.items()
            if pids is None or ino in inos or any(r.pid in pids for r in ns.refs)}


def _settled_full_and_incremental(memo, dirty: set[int], pids: set[int], inos: set[int]
                                  ) -> tuple[Snapshot, Snapshot]:
    """An incremental and a full scan of one moment (other tests on the host may make
    namespaces meanwhile: retry until two full scans around the incremental agree)."""
    for _ in range(20):
        before = discover()
        inc, _memo, complete = rescan(memo, dirty)
        after = discover()
        assert complete
        if _shape(before, pids, inos) == _shape(after, pids, inos):
            return inc, after
    pytest.skip("the host's namespaces kept changing under the test")


@root_only
def test_incremental_rescan_equals_a_full_scan(scratch):
    with ExitStack() as stack:
        users = stack.enter_context(namespaces.nested_userns(3, keep="fd"))
        pinned = stack.enter_context(namespaces.netns_bindmount(scratch, "before"))
        leaving = stack.enter_context(namespaces.unshare_command(["--net", "--ipc"]))
        leaving_net = nsfacts.link_ino(leaving.child, "net")
        leaving_id = nsfacts.facts(f"/proc/{leaving.child}/ns/net").id
        _snap, memo, complete = rescan(None)
        assert complete and leaving_net in _snap.namespaces

        # Between the scans: one process (and its namespaces) goes, two come.
        dirty = {leaving.pid, leaving.child}
        leaving.popen.kill()
        processes.terminate([leaving.pid, leaving.child])
        leaving.popen.wait(timeout=10)
        fresh = stack.enter_context(namespaces.unshare_command(["--net", "--uts"]))
        fresh_users = stack.enter_context(namespaces.nested_userns(2, keep="process"))
        dirty |= {fresh.pid, fresh.child, fresh_users.pid}

        # Compared: the fixtures' processes and namespaces (the rest of a busy host
        # changes without events: an fd or socket opened is seen by full scans only).
        pids = dirty | {users.holder, fresh_users.pid}
        inos = {level.ino for level in users.levels + fresh_users.levels} | \
            {pinned.net.ino, leaving_net} | \
            {nsfacts.link_ino(fresh.child, link) for link in ("net", "uts")}
        inc, full = _settled_full_and_incremental(memo, dirty, pids, inos)
        assert _shape(inc, pids, inos) == _shape(full, pids, inos)
        assert len(_shape(inc, pids, inos)) >= len(inos) - 1   # all but the one gone
        # And what the kernel says: the new namespaces are there, held by their processes...
        for link in ("net", "uts"):
            ino = nsfacts.link_ino(fresh.child, link)
            assert fresh.child in inc.namespaces[ino].pids
        for level in fresh_users.levels:
            assert inc.namespaces[level.ino].owner == level.owner
        # ...the taken-over ones keep their hierarchy (hidden ancestors too)...
        for level in users.levels:
            ns = inc.namespaces[level.ino]
            assert (ns.id, ns.owner) == (level.id, level.owner)
        assert inc.namespaces[users.levels[0].ino].hidden
        assert pinned.path in [r.path for r in inc.namespaces[pinned.net.ino].refs]
        # ...and the gone process's network namespace is gone with it (its inode may
        # already name a new namespace: the kernel reuses them at once; ids it never does).
        assert leaving_id not in {ns.id for ns in inc.namespaces.values()}


def _spawn_with_pid(pid: int, argv: list[str]) -> subprocess.Popen | None:
    """Start ``argv`` as PID ``pid`` (ns_last_pid, as checkpoint/restore tools do);
    None if another fork on the host took the PID first."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    if popen.pid == pid:
        return popen
    popen.kill()
    popen.wait(timeout=10)
    return None


def _wait_exec(pid: int, comm: str) -> None:
    deadline = time.monotonic() + 10
    while processes.comm(pid) != comm:
        assert time.monotonic() < deadline, f"pid {pid} never became {comm}"
        time.sleep(0.005)


@root_only
@pytest.mark.parametrize("tick", ["later", "same"])
def test_a_reused_pid_is_not_taken_for_the_old_process(tick):
    """With no event saying so (events lost, or polling), the PID of a process that
    exited now names another process in other namespaces: it must be read afresh.

    tick="same": starttime counts clock ticks (10 ms), so a PID reused within one
    tick of the old process's start looks the same by it; where pidfd inodes are
    unique (pidfs) nsctl tells the processes apart by those.  The same tick is made
    by giving the memo's old process the new one's start time."""
    from nsctl.kernel import pidfd

    if tick == "same" and not pidfd.inodes_are_unique():
        pytest.skip("pidfd inodes do not tell processes apart here (no pidfs: Linux < 6.9)")
    argv = ["unshare", "--net", "sleep", "600"]
    for _attempt in range(30):
        old = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            _wait_exec(old.pid, "sleep")
            old_net = nsfacts.link_ino(old.pid, "net")
            _snap, memo, _ = rescan(None)
            assert old_net in _snap.namespaces
        finally:
            old.kill()
            old.wait(timeout=10)
        new = _spawn_with_pid(old.pid, argv)
        if new is None:
            continue
        try:
            _wait_exec(new.pid, "sleep")
            new_net = nsfacts.link_ino(new.pid, "net")
            if tick == "same":
                with open(f"/proc/{new.pid}/stat") as f:
                    starttime = int(f.read().rsplit(")", 1)[1].split()[19])
                memo.procs[new.pid][0].starttime = starttime
            inc, _memo, _ = rescan(memo, set())
            assert new_net != old_net
            assert new.pid in inc.namespaces[new_net].pids
            assert old_net not in inc.namespaces
            return
        finally:
            new.kill()
            new.wait(timeout=10)
    pytest.skip("other forks on the host kept taking the PID")


@root_only
def test_watcher_reacts_to_process_and_mount_events_without_full_rescans(scratch):
    """With CN_PROC and a 60 s interval, only process events and mount-table changes
    can bring these events in time, through incremental rescans."""
    from nsctl.timeline.watch import Watcher

    with Watcher(interval=60, handle_signals=False) as watcher:
        if watcher.trigger != "cn_proc":
            pytest.skip(f"no process events here: {watcher.why_no_cnproc}")
        watcher.start()

        def until(match) -> tuple[dict, float]:
            start = time.monotonic()
            deadline = start + 5
            while watcher.wait(deadline):
                for event in watcher.step():
                    if match(event):
                        return event, time.monotonic() - start
            raise AssertionError("no such event within 5 s")

        with namespaces.unshare_command(["--uts"]) as cmd:
            uts = nsfacts.link_ino(cmd.child, "uts")
            born, born_latency = until(lambda e: e["event"] == "born" and e["ns"] == uts)
            path = scratch / "pin"
            path.touch()
            try:
                syscalls.bind_mount(f"/proc/{cmd.child}/ns/uts", path)
                try:
                    pinned, pin_latency = until(
                        lambda e: e["event"] == "pinned" and e.get("path") == str(path))
                finally:
                    syscalls.umount(path)
                assert pinned["ns"] == uts
                until(lambda e: e["event"] == "unpinned" and e.get("path") == str(path))
            finally:
                path.unlink()
        gone, gone_latency = until(lambda e: e["event"] == "gone" and e["ns"] == uts)
        assert watcher.full_scans == 1, "only the first scan may be a full one"
    print(f"latency: born {born_latency:.3f}s, pinned {pin_latency:.3f}s, "
          f"gone {gone_latency:.3f}s")
    assert max(born_latency, pin_latency, gone_latency) < 1.0


def _kernel_reports_mounts() -> None:
    """Skip unless fanotify reports mount events here (FAN_REPORT_MNT, Linux 6.15),
    asked of the kernel directly."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.fanotify_init(ctypes.c_uint(0x4000 | 0x2 | 0x1), ctypes.c_uint(os.O_RDONLY))
    if fd < 0:
        pytest.skip(f"no fanotify mount events here: {os.strerror(ctypes.get_errno())}")
    os.close(fd)


@root_only
def test_a_mount_in_a_mount_namespace_no_process_is_in_comes_at_once(scratch):
    """A mount namespace that only an fd holds has no mountinfo to poll; its mounts
    are compared with the last scan once per round of checks (60 s here), and at
    once where fanotify marks it: a namespace file bind-mounted there is "pinned"
    within a second, and "unpinned" once unmounted."""
    from nsctl.timeline.watch import Watcher

    _kernel_reports_mounts()
    with namespaces.foreign_mount_netns(scratch, keep="fd") as t, \
            Watcher(interval=60, coverage=60, handle_signals=False) as watcher:
        watcher.start()
        assert watcher.memo is not None and t.mnt.ino in watcher.memo.foreign
        assert watcher.marked.get(t.mnt.ino) is not None, watcher.why_no_mount_marks
        point = scratch / "bound-in-the-other"
        point.touch()
        inside = ["nsenter", f"--mount=/proc/{t.holder}/fd/{t.holder_fd}"]
        uts = nsfacts.link_ino(os.getpid(), "uts")

        def until(kind: str) -> float:
            start = time.monotonic()
            while watcher.wait(start + 5):
                if any(e["event"] == kind and e["ns"] == uts and e.get("path") == str(point)
                       for e in watcher.step()):
                    return time.monotonic() - start
            raise AssertionError(f"no {kind} event within 5 s")

        try:
            subprocess.run(inside + ["mount", "--bind", f"/proc/{os.getpid()}/ns/uts",
                                     str(point)], check=True, timeout=30)
            try:
                pinned = until("pinned")
            finally:
                subprocess.run(inside + ["umount", str(point)], check=True, timeout=30)
            unpinned = until("unpinned")
        finally:
            point.unlink()
        assert watcher.full_scans == 1
    print(f"pinned after {pinned:.3f}s, unpinned after {unpinned:.3f}s")


@root_only
def test_rolling_rescan_finds_what_makes_no_event():
    """A short interval makes each periodic rescan read only a slice of the processes;
    a process that unshares (no event at all) is still seen within a round of slices."""
    from nsctl.timeline.watch import Watcher

    with processes.Child(namespaces.unshare_net_on_cue) as mover, \
            Watcher(interval=0.01, handle_signals=False) as watcher:
        pid = mover.ready()["pid"]
        watcher.start()
        if watcher.slices < 2:
            pytest.skip(f"a full scan here is too quick to need slices ({watcher.full_seconds}s)")
        mover.send({})
        assert mover.ready() == {"moved": True}
        new_net = nsfacts.link_ino(pid, "net")
        round_trip = watcher.slices * watcher.interval
        start = time.monotonic()
        deadline = start + 10 * round_trip + 5
        found = None
        while found is None and watcher.wait(deadline):
            found = next((e for e in watcher.step()
                          if e["event"] == "born" and e["ns"] == new_net), None)
        took = time.monotonic() - start
        assert found is not None, f"not seen in {took:.2f}s ({watcher.slices} slices)"
        assert watcher.full_scans == 1
    print(f"{watcher.slices} slices of {watcher.interval}s: seen after {took:.3f}s")


@root_only
def test_revalidation_finds_an_fd_opened_without_any_event():
    """An fd opened on a namespace makes no process event; the rolling check of the
    processes' fingerprints (their fd links among them) finds the holder changed and
    reads it, within a round of the maximum age, without a full rescan."""
    from nsctl.timeline.watch import Watcher

    with processes.Child(namespaces.unshare_and_wait, namespaces.CLONE_NEWUTS) as owner, \
            processes.Child(namespaces.hold) as holder, \
            Watcher(interval=0.2, coverage=0.4, handle_signals=False) as watcher:
        uts = nsfacts.link_ino(owner.ready()["pid"], "uts")
        holder.send({})
        holder.ready()
        watcher.start()
        # A first round reads every process in full (fingerprinting it): only after it
        # is the holder's fingerprint all that stands between the fd and the model.
        settle = time.monotonic() + 10
        while holder.pid not in watcher.prints and watcher.wait(settle):
            watcher.step()
        assert holder.pid in watcher.prints
        holder.send({"open": [f"/proc/{owner.pid}/ns/uts"]})
        (fd,) = holder.ready()["fds"]
        start = time.monotonic()
        found = None
        while found is None and watcher.wait(start + 10):
            found = next((e for e in watcher.step() if e["event"] == "held" and
                          e["ns"] == uts and e.get("pid") == holder.pid), None)
        took = time.monotonic() - start
        assert found is not None and found["ref"]["fd"] == fd, f"not seen in {took:.2f}s"
        assert watcher.full_scans == 1
    print(f"held seen after {took:.3f}s")


@root_only
def test_a_process_gone_before_its_rescan_costs_no_rescan():
    """A process that forked, ran and exited before the rescan its events asked for
    was never in the model and is not in /proc: nothing is read, and the model stays
    the very same object."""
    from nsctl.timeline.watch import Watcher

    with Watcher(interval=60, handle_signals=False) as watcher:
        before = watcher.start()
        scans = watcher.scans
        short = subprocess.Popen(["true"])
        short.wait(timeout=10)
        assert watcher.memo is not None and short.pid not in watcher.memo.procs
        watcher.dirty = {short.pid}      # what its fork, exec and exit events named
        assert watcher.step() == []
        assert watcher.snapshot is before and watcher.scans == scans
        assert watcher.skipped == 1


def _change_on_cue(chan: processes.Channel) -> None:
    """Open a path, close an fd, or unshare a UTS namespace, as the test says."""
    import os

    while True:
        try:
            msg, _fds = chan.recv()
        except EOFError:
            return
        if "open" in msg:
            chan.send(os.open(msg["open"], os.O_RDONLY))
            continue
        if "close" in msg:
            os.close(msg["close"])
        if "unshare" in msg:
            syscalls.unshare(syscalls.CLONE_NEWUTS)
        chan.send("done")


@root_only
def test_the_c_and_python_fingerprints_see_the_same_changes():
    """The fingerprint is made in C where nsctl.kernel._native was built and in Python
    elsewhere: both change when a process opens or closes a namespace fd or moves to
    another namespace (none of which makes a process event), and neither when nothing
    happened."""
    import os

    from nsctl.discovery import revalidate

    if revalidate._NATIVE is None:
        pytest.skip("nsctl.kernel._native is not built here")
    proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    me = os.getpid()
    with processes.Child(namespaces.unshare_and_wait, syscalls.CLONE_NEWNET) as owner, \
            processes.Child(_change_on_cue) as child:
        owner_pid = owner.ready()["pid"]
        child.send({})
        child.ready()

        def prints() -> tuple:
            return (revalidate.fingerprint_py(child.pid, proc_fd, me),
                    revalidate.fingerprint(child.pid, proc_fd, me))

        try:
            before = prints()
            assert all(p is not None for p in before)
            assert isinstance(before[1], bytes)
            assert prints() == before
            opened: list[int] = []
            for step in ("open", "close", "unshare"):
                msg = {"open": {"open": f"/proc/{owner_pid}/ns/net"},
                       "close": {"close": opened[0] if opened else -1},
                       "unshare": {"unshare": True}}[step]
                child.send(msg)
                answer = child.ready()
                if step == "open":
                    opened.append(answer)
                after = prints()
                assert after[0] != before[0] and after[1] != before[1], step
                assert prints() == after
                before = after
            child.stop()
            assert prints() == (None, None)   # gone
        finally:
            os.close(proc_fd)


def _uts_again_under_the_same_inode(chan: processes.Channel) -> None:
    """Unshare a UTS namespace; on cue leave it (it is freed: nothing else holds it) and
    unshare new ones until one gets its inode number back (the kernel hands out the
    lowest free one: the holes below are filled by holding each new one open, then
    closed again), so that only the namespace's id tells the two apart."""
    import os

    outside = os.open("/proc/self/ns/uts", os.O_RDONLY)     # (held throughout)
    syscalls.unshare(syscalls.CLONE_NEWUTS)
    first = os.stat("/proc/self/ns/uts").st_ino
    chan.send({"pid": os.getpid(), "ino": first})
    chan.recv()
    held: list[int] = []
    try:
        syscalls.setns(outside, syscalls.CLONE_NEWUTS)
        for _ in range(2000):
            syscalls.unshare(syscalls.CLONE_NEWUTS)
            if os.stat("/proc/self/ns/uts").st_ino == first:
                break
            held.append(os.open("/proc/self/ns/uts", os.O_RDONLY))
    finally:
        for fd in held:
            os.close(fd)
    chan.send(os.stat("/proc/self/ns/uts").st_ino == first)
    chan.recv()


@root_only
def test_a_fingerprint_holds_still_and_tells_a_reused_inode_apart():
    """A process in namespaces nobody holds open keeps its fingerprint over time (nsfs
    makes such a namespace's inode anew at each lookup, so its ctime moves: it cannot
    be part of a fingerprint); and a process that moved to a new namespace under the
    old one's inode number has a new fingerprint, in C and in Python alike."""
    import os

    from nsctl.discovery import revalidate
    from nsctl.kernel import nsfs

    proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    me = os.getpid()
    makers = [revalidate.fingerprint_py] + ([revalidate.fingerprint]
                                            if revalidate._NATIVE is not None else [])
    try:
        with processes.Child(_uts_again_under_the_same_inode) as child:
            pid = child.ready()["pid"]
            before = [make(pid, proc_fd, me) for make in makers]
            assert all(p is not None for p in before)
            ctimes = set()
            for _ in range(3):
                time.sleep(0.01)
                ctimes.add(os.stat(f"/proc/{pid}/ns/uts").st_ctime_ns)
            for _ in range(3):
                time.sleep(0.1)
                assert [make(pid, proc_fd, me) for make in makers] == before
            child.send("move")
            reused = child.ready()
            if not reused:
                pytest.skip("the kernel did not hand the UTS inode number out again")
            if nsfs.link_identity(f"{pid}/ns/uts", proc_fd)[0] != "n":
                pytest.skip("no nsfs file handles here: a reused inode looks the same")
            after = [make(pid, proc_fd, me) for make in makers]
            assert all(a != b for a, b in zip(after, before, strict=True))
            assert len(ctimes) > 1, "nsfs kept the inode: the ctime premise no longer holds"
    finally:
        os.close(proc_fd)


@root_only
def test_a_quiet_host_is_checked_without_reading_anything():
    """What a watcher checks each maximum age finds nothing to read where nothing
    changed: processes in namespaces of their own, one holding namespace fds, kernel
    threads (whose comm names the work of the moment), and a process that refuses
    even root (taken over as refused, its problem reported again, unless an event
    names it)."""
    import os

    from nsctl.discovery import revalidate
    from nsctl.timeline.watch import Watcher

    with ExitStack() as stack:
        owner = stack.enter_context(processes.Child(
            namespaces.unshare_and_wait, syscalls.CLONE_NEWNET | syscalls.CLONE_NEWUTS))
        owner_pid = owner.ready()["pid"]
        holder = stack.enter_context(processes.Child(_change_on_cue))
        holder.send({})
        holder.ready()
        for link in ("net", "uts"):
            holder.send({"open": f"/proc/{owner_pid}/ns/{link}"})
            holder.ready()
        watcher = stack.enter_context(Watcher(interval=60, handle_signals=False,
                                              coverage=60))
        watcher.start()
        memo = watcher.memo
        assert memo is not None
        kthreads = {p for p in memo.procs if memo.procs[p][0] is not None
                    and memo.procs[p][0].ppid == 2}
        assert kthreads, "no kernel threads in the model"
        mine = {owner_pid, holder.pid} | kthreads
        watcher._fingerprint(mine)      # as a rescan of them would
        time.sleep(1.0)                 # (kernel threads change work meanwhile)
        assert watcher._revalidate(mine) & mine == set()
        proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
        try:
            refused = [p for p in (1,) if revalidate.fingerprint_py(p, proc_fd, 0) is None]
        finally:
            os.close(proc_fd)
        if refused:
            assert 1 in memo.refused
            assert 1 not in watcher._revalidate(set())
            snap, again, _ok = rescan(memo, set())
            assert 1 in again.refused and any(p.pid == 1 for p in snap.problems)
            snap, again, _ok = rescan(memo, {1})     # an event about it: asked again
            assert 1 in again.refused and any(p.pid == 1 for p in snap.problems)


@root_only
def test_an_exited_process_not_yet_reaped_changes_nothing():
    """A short-lived process spends most of its life in /proc as a zombie, holding no
    namespace: a watcher does not read it, and a rescan told to read it anyway (it
    exited between the check and the read) returns the very same model."""
    from nsctl.timeline.watch import Watcher

    with Watcher(interval=60, handle_signals=False) as watcher:
        before = watcher.start()
        memo = watcher.memo
        assert memo is not None
        zombie = subprocess.Popen(["true"])
        try:
            deadline = time.monotonic() + 10
            while processes.state(zombie.pid) != "Z":
                assert time.monotonic() < deadline, "true never exited"
                time.sleep(0.005)
            scans = watcher.scans
            watcher.dirty = {zombie.pid}     # what its fork, exec and exit events named
            assert watcher.step() == []
            assert watcher.snapshot is before and watcher.scans == scans
            snap, again, complete = rescan(memo, {zombie.pid})
            assert snap is before and again is memo and complete
            assert zombie.pid not in snap.processes
        finally:
            zombie.wait(timeout=10)


@root_only
def test_a_document_made_through_an_entry_cache_is_the_same_document():
    """The refresher makes a document per change through an EntryCache: the document is
    the one made without it, the entries of namespaces nothing changed are the very
    dicts of the last one, and those of what changed are made anew."""
    from nsctl.documents.snapshot import EntryCache, to_document

    def plain(doc: dict) -> dict:
        return {k: v for k, v in doc.items() if k != "time"}

    snap, memo, _ok = rescan(None)
    cache = EntryCache()
    first = to_document(snap, cache)
    assert plain(first) == plain(to_document(snap))
    with processes.Child(namespaces.unshare_and_wait,
                         syscalls.CLONE_NEWNET | syscalls.CLONE_NEWUTS) as child:
        pid = child.ready()["pid"]
        net = nsfacts.link_ino(pid, "net")
        snap, memo, _ok = rescan(memo, {pid})
        second = to_document(snap, cache)
        assert plain(second) == plain(to_document(snap))
        entries = {e["ns"]: e for e in second["namespaces"]}
        assert pid in entries[net]["pids"]
        before = {e["ns"]: e for e in first["namespaces"]}
        own_user = nsfacts.link_ino(os.getpid(), "user")
        # The test's own user namespace owns the new ones: its child references changed.
        assert entries[own_user] is not before[own_user]
        # Every entry that is what it was is the very dict (on a small host the
        # test's process is in most of the host's namespaces: those changed).
        plain_now = {e["ns"]: e for e in to_document(snap)["namespaces"]}
        unchanged = [ino for ino in before.keys() & entries.keys()
                     if plain_now[ino] == before[ino]]
        assert unchanged, "no namespace stayed as it was"
        assert all(entries[ino] is before[ino] for ino in unchanged)
