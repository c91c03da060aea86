"""nsctl diff: snapshots around a fixture that creates, pins, moves and destroys namespaces.

What the fixture did is known from the kernel (os.stat inodes, its own NS_GET_ID
ioctl); the diff must list exactly those changes for the fixture's namespaces
and processes (the rest of the host may change meanwhile and is not asserted on).
"""
from __future__ import annotations

import json
import os

import pytest
from support import cli, namespaces, nsfacts, processes, root_only

nsctl = cli.run_nsctl


def _ids(path: str) -> tuple[int, int | None]:
    """Inode and NS_GET_ID (None where the kernel has no NS_GET_ID) of a namespace."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.fstat(fd).st_ino, nsfacts.ns_id(fd)
    finally:
        os.close(fd)


@root_only
def test_diff_lists_what_the_fixture_did(scratch):
    snap = {name: str(scratch / f"{name}.json") for name in "abc"}
    pin = scratch / "pinned-uts"
    with processes.Child(namespaces.unshare_net_on_cue) as mover:
        mover_pid = mover.ready()["pid"]
        net_before = os.stat(f"/proc/{mover_pid}/ns/net").st_ino
        mover_comm = processes.comm(mover_pid)
        assert nsctl("snapshot", "-o", snap["a"]).returncode == 0
        with namespaces.unshare_command(["--net", "--uts"]) as cmd:
            net_ino, net_id = _ids(f"/proc/{cmd.child}/ns/net")
            uts_ino, uts_id = _ids(f"/proc/{cmd.child}/ns/uts")
            assert nsctl("pin", f"{cmd.child}/uts", str(pin)).returncode == 0
            try:
                mover.send({})
                assert mover.ready() == {"moved": True}
                net_after = os.stat(f"/proc/{mover_pid}/ns/net").st_ino
                assert nsctl("snapshot", "-o", snap["b"]).returncode == 0
                holders = sorted({cmd.pid, cmd.child})  # unshare(1) and its forked child
            except BaseException:
                nsctl("unpin", str(pin))
                raise
        try:
            assert nsctl("snapshot", "-o", snap["c"]).returncode == 0
        finally:
            assert nsctl("unpin", str(pin)).returncode == 0

    ab = nsctl("diff", snap["a"], snap["b"], "--json")
    assert ab.returncode == 1
    d = json.loads(ab.stdout)
    appeared = {n["ns"]: n for n in d["appeared"]}
    assert appeared[net_ino]["id"] == net_id and appeared[net_ino]["held_by"] == ["process"]
    assert appeared[uts_ino]["id"] == uts_id
    assert appeared[uts_ino]["held_by"] == ["process", "bindmount"]
    assert appeared[net_after]["pids"] == [mover_pid]
    assert [m for m in d["moved"] if m["pid"] == mover_pid] == [
        {"pid": mover_pid, "comm": mover_comm, "link": "net", "from": net_before,
         "to": net_after}]
    # (type, inode): an inode freed by a namespace of another type (another session's
    # mnt namespace, say) may be handed to one of ours between the snapshots.
    assert not [n for n in d["disappeared"]
                if (n["type"], n["ns"]) in {("net", net_ino), ("uts", uts_ino),
                                            ("net", net_after)}]

    bc = json.loads(nsctl("diff", snap["b"], snap["c"], "--json").stdout)
    gone = {n["ns"] for n in bc["disappeared"]}
    assert net_ino in gone and uts_ino not in gone   # the pin keeps the uts namespace
    uts_change = [c for c in bc["changed"] if c["ns"] == uts_ino]
    assert len(uts_change) == 1
    assert uts_change[0]["added"] == []
    assert sorted(r["pid"] for r in uts_change[0]["dropped"]) == holders
    assert all(r == {"kind": "process", "pid": r["pid"], "link": "uts"}
               for r in uts_change[0]["dropped"])

    text = nsctl("diff", snap["b"], snap["c"]).stdout
    assert f"- net:[{net_ino}] id {net_id}" in text
    assert f"~ uts:[{uts_ino}] id {uts_id}" in text
    assert all(f"- process pid {pid} via uts" in text for pid in holders)


@root_only
def test_diff_narrowed_by_type_and_without_host_process_churn(scratch):
    """-t keeps namespaces of those types; --hide-host-processes leaves out processes
    starting and exiting in the host's namespaces, not the namespaces that appear."""
    a, b = str(scratch / "a.json"), str(scratch / "b.json")
    host_uts = nsfacts.link_ino("self", "uts")
    assert nsctl("snapshot", "-o", a).returncode == 0
    with processes.Child(namespaces.hold) as bystander:   # a host process that starts
        bystander.send({})
        bystander.ready()
        with namespaces.unshare_command(["--net", "--uts"]) as cmd:
            net_ino, uts_ino = _ids(f"/proc/{cmd.child}/ns/net")[0], \
                _ids(f"/proc/{cmd.child}/ns/uts")[0]
            assert nsctl("snapshot", "-o", b).returncode == 0
    full = json.loads(nsctl("diff", a, b, "--json").stdout)
    started = [c for c in full["changed"] if c["ns"] == host_uts]
    assert any(r.get("pid") == bystander.pid for c in started for r in c["added"])
    only_uts = json.loads(nsctl("diff", a, b, "-t", "uts", "--json").stdout)
    assert {n["type"] for n in only_uts["appeared"] + only_uts["changed"]} == {"uts"}
    assert uts_ino in {n["ns"] for n in only_uts["appeared"]}
    assert net_ino not in {n["ns"] for n in only_uts["appeared"]}
    quiet = nsctl("diff", a, b, "--hide-host-processes", "--json")
    assert quiet.returncode == 1
    doc = json.loads(quiet.stdout)
    assert {net_ino, uts_ino} <= {n["ns"] for n in doc["appeared"]}
    assert not [r for c in doc["changed"] if c["ns"] == host_uts for r in c["added"]
                if r["kind"] in ("process", "thread")]
    assert nsctl("diff", a, b, "-t", "nett").returncode == 2


@root_only
def test_diff_of_a_snapshot_with_itself_is_empty(scratch):
    path = str(scratch / "a.json")
    assert nsctl("snapshot", "-o", path).returncode == 0
    proc = nsctl("diff", path, path)
    assert proc.returncode == 0 and proc.stdout == ""
    doc = json.loads(nsctl("diff", path, path, "--json").stdout)
    assert doc["equal"] is True and doc["appeared"] == doc["disappeared"] == doc["moved"] == []


@pytest.mark.parametrize("content", ["", "{}", '{"schema": "nsctl-snapshot", "version": 9}'])
def test_diff_trouble_is_exit_2(scratch, content):
    bad = scratch / "bad.json"
    bad.write_text(content)
    proc = nsctl("diff", str(bad), str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


@root_only
def test_diff_by_path_matches_a_rebuilt_topology(scratch):
    """The same topology built twice has other inodes and ids (so by id it is all new)
    but the same stable paths (so by path the fixture's namespaces match).  Both are
    built on one CPU: ranks follow NS_GET_ID order, and ids come from per-CPU batches,
    so among a thousand siblings (a big host) a namespace made on the other CPU could
    rank elsewhere (naming.py's caveat)."""
    paths = []
    inodes = []
    cpu = min(os.sched_getaffinity(0))
    for name in ("a", "b"):
        with namespaces.unshare_command(["--user", "--map-root-user", "--net", "--uts"],
                                        cpu=cpu) as cmd:
            inodes.append({t: os.stat(f"/proc/{cmd.child}/ns/{t}").st_ino
                           for t in ("user", "net", "uts")})
            path = str(scratch / f"{name}.json")
            assert nsctl("snapshot", "-o", path).returncode == 0
            paths.append(path)
    by_id = json.loads(nsctl("diff", paths[0], paths[1], "--json").stdout)
    gone_by_id = {n["ns"] for n in by_id["disappeared"]}
    assert set(inodes[0].values()) <= gone_by_id
    by_path = json.loads(nsctl("diff", paths[0], paths[1], "--by", "path", "--json").stdout)
    gone_by_path = {n["ns"] for n in by_path["disappeared"]}
    appeared_by_path = {n["ns"] for n in by_path["appeared"]}
    assert not set(inodes[0].values()) & gone_by_path
    assert not set(inodes[1].values()) & appeared_by_path
    assert by_path["moved"] == []
