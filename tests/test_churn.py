"""Discovery while namespaces come and go: no exception, and nothing reported that never was.

A churner (tests/support/churn.py) runs its workers inside a user
namespace of its own, so every namespace they make is owned, directly or
through nested user namespaces, by that one user namespace, which nobody
else on the host can create namespaces in.  Every worker logs each state it
passes through: every ns link with inode, NS_GET_ID (never reused, unlike
inodes), type and owner.  Meanwhile discover() runs over and over (or nsctl
watch's incremental rescans do); then each snapshot is checked against the log.
"""
from __future__ import annotations

import os
import time

import pytest
import support.churn
from support import namespaces, root_only

import nsctl
from nsctl.model import Reference

pytestmark = root_only

PLAIN_LINKS = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}
CHURN_SECONDS = 6.0     # churn at least this long...
MIN_SCANS = 3           # ...and until this many scans are done (a loaded host scans slowly)...
MAX_SECONDS = 30.0      # ...but no longer than this


def _owned_by(snap, ns, user_ino: int) -> bool:
    """ns is user_ino or lies below it (owner/parent chain as nsctl reported it)."""
    seen = set()
    cur = ns
    while cur is not None and cur.ino not in seen:
        if cur.ino == user_ino:
            return True
        seen.add(cur.ino)
        up = cur.parent if cur.type == "user" else cur.owner
        cur = snap.namespaces.get(up) if up is not None else None
    return False


@pytest.mark.parametrize("how", ["in-turn", "shared"])
def test_discover_while_namespaces_churn(scratch, monkeypatch, how):
    """Scans read the processes in turn, or shared among 3 forked workers as on a host
    of hundreds of processes (workers meet processes that exit mid-share)."""
    from nsctl.discovery import shares

    shared: list[bool] = []
    if how == "shared":
        monkeypatch.setattr(shares, "SHARE_FROM", 1)
        monkeypatch.setattr(os, "cpu_count", lambda: 3)
        real_read_shared = shares.read_shared

        def spy(*args, **kwargs):
            shared.append(real_read_shared(*args, **kwargs))
            return shared[-1]

        monkeypatch.setattr(shares, "read_shared", spy)
    # A pinned netns: every mount namespace the workers make copies that bind mount.
    with namespaces.netns_bindmount(scratch, "pinned") as pin, \
            support.churn.churn(scratch) as churn:
        errors = []
        threads_cost = [0.0]

        def scan(taken: int, costs: list) -> object:
            # Every third scan reads threads too, unless that is slow on this host
            # (someone's benchmark with tens of thousands of threads, say).
            threads = taken % 3 == 2 and threads_cost[0] < 1.0
            t0 = time.monotonic()
            try:
                return nsctl.discover(threads=threads)
            except Exception as exc:   # noqa: BLE001 - the test is that there are none
                errors.append(repr(exc))
            finally:
                costs.append((threads, round(time.monotonic() - t0, 2)))
                if threads:
                    threads_cost[0] = costs[-1][1]
            return None

        snaps, costs = _while_churning(churn, scan)
        summary = churn.stop()
        log = churn.log()
        pinned, user = pin.net, churn.user

    assert errors == []
    _check(snaps, log, summary, user, pinned, costs)
    assert (bool(shared) and all(shared)) == (how == "shared")


def test_incremental_watch_while_namespaces_churn(scratch):
    """The same checks on the snapshots of nsctl watch's incremental rescans (only the
    processes the kernel's events name are read again, the rest taken over), and at the
    end the watcher's model agrees with a full scan."""
    from nsctl.timeline.watch import Watcher

    # A long interval: nearly every rescan is one triggered by process events.
    with namespaces.netns_bindmount(scratch, "pinned") as pin, \
            support.churn.churn(scratch) as churn, \
            Watcher(interval=3.0, handle_signals=False) as watcher:
        watcher.start()

        def scan(taken: int, costs: list) -> object:
            if not watcher.wait(time.monotonic() + 0.5):
                return None
            t0 = time.monotonic()
            watcher.step()
            costs.append((False, round(time.monotonic() - t0, 3)))
            return watcher.snapshot

        snaps, costs = _while_churning(churn, scan)
        summary = churn.stop()
        log = churn.log()
        pinned, user = pin.net, churn.user
        # The churn is over: what the watcher holds now must be what a full scan sees.
        for _ in range(20):
            watcher.wait(time.monotonic() + 0.3)
            watcher.step()
            full = nsctl.discover()
            if _ids(watcher.snapshot, user.ino) == _ids(full, user.ino):
                break
        assert _ids(watcher.snapshot, user.ino) == _ids(full, user.ino)
        incremental_steps = watcher.scans - watcher.full_scans
    print(f"{len(snaps)} rescans during the churn, {incremental_steps} incremental")
    assert incremental_steps >= len(snaps) // 2, (watcher.scans, watcher.full_scans)
    _check(snaps, log, summary, user, pinned, costs)


def _while_churning(churn, scan) -> tuple[list, list]:
    """Start the churn; take snapshots with ``scan(taken, costs)`` (None: none this time)
    for CHURN_SECONDS and at least MIN_SCANS of them, but no longer than MAX_SECONDS."""
    snaps: list = []
    costs: list = []
    churn.go()
    churn.wait_started()
    start = time.monotonic()
    while time.monotonic() - start < CHURN_SECONDS or len(snaps) < MIN_SCANS:
        if time.monotonic() - start > MAX_SECONDS:
            break
        snap = scan(len(snaps), costs)
        if snap is not None:
            snaps.append(snap)
    return snaps, costs


def _ids(snap, user_ino: int) -> set[tuple[int, str, int]]:
    """The churner's namespaces in a snapshot, and who holds them (no PIDs: those are
    what two scans may see at different moments)."""
    return {(ns.id, ns.type, len(ns.refs)) for ns in snap.namespaces.values()
            if _owned_by(snap, ns, user_ino)}


def _check(snaps: list, log: list[dict], summary: dict, user, pinned, costs: list) -> None:
    """Every snapshot against the churn log: nothing reported that never was."""
    assert [e["error"] for e in log if "error" in e] == []
    assert summary["failed"] == 0 and summary["workers"] > 50, summary
    assert len(snaps) >= 2, costs

    by_id: dict[int, tuple[int, str, int | None]] = {user.id: (user.ino, "user", user.owner)}
    by_task: dict[int, set[tuple[str, int]]] = {}       # pid or tid -> (link, inode) it had
    by_process: dict[int, set[tuple[str, int]]] = {}    # pid -> the same, any of its threads
    for entry in log:
        task = entry["tid"] or entry["pid"]
        for link, (ino, ns_id, ns_type, owner) in entry["links"].items():
            known = by_id.setdefault(ns_id, (ino, ns_type, owner))
            assert known[:2] == (ino, ns_type), (ns_id, known, entry)
            by_task.setdefault(task, set()).add((link, ino))
            by_process.setdefault(entry["pid"], set()).add((link, ino))

    problems: dict[str, list] = {}
    churned = 0
    wrong: dict[str, list] = {}   # what kind of mistake -> examples

    def bad(kind: str, *example: object) -> None:
        wrong.setdefault(kind, []).append(example)

    for snap in snaps:
        for p in snap.problems:
            problems.setdefault(p.reason, []).append(p.what)
        ids = [ns.id for ns in snap.namespaces.values() if ns.id is not None]
        if len(ids) != len(set(ids)):
            bad("two namespaces with one NS_GET_ID", sorted(ids))
        # A churn process in this snapshot: its PID in the log and its name ours (this host
        # may wrap PIDs quickly; a PID the log knows may belong to someone else by now).
        workers = {pid for pid, proc in snap.processes.items()
                   if pid in by_task and proc.comm in support.churn.CHURN_COMMS}

        def had(r: Reference, workers: set[int] = workers) -> set[tuple[str, int]] | None:
            """What the task behind a process or thread reference ever had, if it is ours.

            A process's links are those of its main thread, but once that has exited
            (as when the whole process exits) another thread's may stand for them.
            """
            if r.kind not in ("process", "thread") or r.pid is None or r.pid not in workers:
                return None
            if r.kind == "thread":
                assert r.tid is not None, "a thread reference without its tid"
                return by_task.get(r.tid, set())
            return by_process[r.pid]

        for ns in snap.namespaces.values():
            mine = _owned_by(snap, ns, user.ino) or any(had(r) is not None for r in ns.refs)
            if ns.dev is None or (ns.id is None and snap.has_ns_id):
                bad("a namespace reported but never opened (no device or id)", ns, ns.refs)
            elif ns.id in by_id:
                ino, ns_type, owner = by_id[ns.id]
                if (ns.ino, ns.type) != (ino, ns_type):
                    bad("inode or type differs from the worker's for that id", ns, by_id[ns.id])
                if owner is not None and ns.owner != owner:
                    bad("owner differs from the worker's NS_GET_USERNS", ns, owner)
            elif mine:
                bad("the churner's, but none of its workers made it", ns)
            churned += mine and ns.ino != user.ino
            for r in ns.refs:
                links = had(r)
                if links is not None and (r.link, ns.ino) not in links:
                    bad("a worker never had this namespace", ns, r)
                if r.kind == "bindmount" and r.mntns not in snap.namespaces:
                    bad("bind mount in a mount namespace missing from the snapshot", ns, r)
        for pid in workers:
            proc = snap.processes[pid]
            if not set(proc.ns.items()) <= by_process[pid]:
                bad("a process's links were never all its own", proc,
                    set(proc.ns.items()) - by_process[pid])
            if not PLAIN_LINKS <= set(proc.ns):
                bad("a process reported without all its namespace links", proc, proc.ns)
        if pinned.ino not in snap.namespaces:
            bad("the pinned netns went missing", len(snap.namespaces))
    assert not wrong, {kind: (len(ex), ex[:3]) for kind, ex in wrong.items()}
    assert churned > 0, f"no snapshot saw any churned namespace: {summary}, scans {costs}"
    # (and a container engine this test does not run may be out of reach for names)
    unexpected = {r: w[:5] for r, w in problems.items()
                  if r not in ("vanished", "denied", "engine")}
    assert not unexpected, "processes vanish and some refuse even root; nothing else"
