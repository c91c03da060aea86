"""Snapshots: saved whole, read back by every reading command exactly as live, bad files refused.

The fixture builds real namespaces (a user namespace owning a net, uts and PID
namespace with a process in it) and learns their inodes with os.stat; the
tests compare what commands print from a snapshot with what the same commands
print live, restricted to the fixture's namespaces (other processes on the
host, nsctl's own included, come and go between two runs).
"""
from __future__ import annotations

import json
import os
import socket
from functools import partial

import pytest
from support import cli, namespaces, nsfacts, processes, root_only, syscalls

nsctl = partial(cli.run_nsctl, check=True)


@pytest.fixture
def box(scratch):
    """A process (unshare's child) in new user, net, uts and PID namespaces, and a
    snapshot file taken while it runs."""
    with namespaces.unshare_command(["--user", "--map-root-user", "--net", "--uts",
                                     "--pid"]) as cmd:
        inos = {t: os.stat(f"/proc/{cmd.child}/ns/{t}").st_ino for t in ("user", "net", "uts",
                                                                            "pid")}
        path = str(scratch / "snap.json")
        nsctl("snapshot", "-o", path)
        yield cmd, inos, path


def _by_ns(doc: dict) -> dict[int, dict]:
    return {n["ns"]: n for n in doc["namespaces"]}


def _find(nodes: list[dict], ino: int) -> dict | None:
    for node in nodes:
        if node.get("ns") == ino:
            return node
        found = _find(node.get("children", []), ino)
        if found:
            return found
    return None


@root_only
def test_snapshot_document_carries_schema_host_kernel_time(box):
    cmd, inos, path = box
    with open(path) as f:
        doc = json.load(f)
    assert doc["schema"] == "nsctl-snapshot" and doc["version"] == 1
    assert doc["host"] == os.uname().nodename and doc["kernel"] == os.uname().release
    assert doc["time"].endswith("Z")
    assert doc["own"]["net"] == os.stat("/proc/self/ns/net").st_ino
    assert set(inos.values()) <= set(_by_ns(doc))
    assert cmd.child in _by_ns(doc)[inos["net"]]["pids"]


@root_only
def test_ls_from_snapshot_equals_live(box):
    cmd, inos, path = box
    live = _by_ns(json.loads(nsctl("ls", "--json").stdout))
    saved = _by_ns(json.loads(nsctl("ls", "--json", "--from", path).stdout))
    for ino in inos.values():
        assert saved[ino] == live[ino]
    table_live = nsctl("ls", "-o", "NS,TYPE,NPROCS,PID,HELD-BY").stdout.splitlines()
    table_saved = nsctl("ls", "-o", "NS,TYPE,NPROCS,PID,HELD-BY", "--from", path).stdout
    for line in table_live:
        if line.split()[0] in {str(i) for i in inos.values()}:
            assert line in table_saved.splitlines()


@root_only
def test_tree_pidtree_show_lsns_from_snapshot_equal_live(box):
    cmd, inos, path = box
    # command, its top-level key, the fixture namespace whose subtree is compared
    for argv, key, ns_type in ((["tree", "--json"], "tree", "user"),
                               (["tree", "--pid", "--json"], "tree", "pid"),
                               (["pidtree", "--json"], "pid_namespaces", "pid")):
        live = _find(json.loads(nsctl(*argv).stdout)[key], inos[ns_type])
        saved = _find(json.loads(nsctl(*argv, "--from", path).stdout)[key], inos[ns_type])
        assert live is not None and saved == live, argv
    for spec in (str(inos["net"]), f"net:[{inos['net']}]", f"{cmd.child}/net"):
        live = json.loads(nsctl("show", spec, "--json", "--no-view").stdout)
        saved = json.loads(nsctl("show", spec, "--json", "--from", path).stdout)
        assert saved == live, spec
    lsns_live = json.loads(nsctl("lsns", "-J", "-o", "NS,TYPE,NPROCS,PID,USER,NSFS").stdout)
    lsns_saved = json.loads(nsctl("lsns", "-J", "-o", "NS,TYPE,NPROCS,PID,USER,NSFS",
                                  "--from", path).stdout)

    def flat(rows):
        out = {}
        for r in rows:
            out[r["ns"]] = {k: v for k, v in r.items() if k != "children"}
            out.update(flat(r.get("children", [])))
        return out

    live_rows, saved_rows = flat(lsns_live["namespaces"]), flat(lsns_saved["namespaces"])
    for ino in inos.values():
        assert saved_rows[ino] == live_rows[ino]


@root_only
def test_snapshot_outlives_the_namespaces(box, scratch):
    cmd, inos, path = box
    processes.terminate([cmd.popen.pid] + processes.descendants(cmd.popen.pid))
    cmd.popen.wait(timeout=10)
    saved = _by_ns(json.loads(nsctl("ls", "--json", "--from", path).stdout))
    assert all(ino in saved for ino in inos.values())
    proc = nsctl("show", "/proc/self/ns/net", "--from", path, check=False)
    assert proc.returncode == 1 and "a path names a live namespace file" in proc.stderr


@pytest.mark.parametrize("content, message", [
    ("", "not a snapshot"),
    ("{not json", "not a snapshot"),
    ('{"schema": "something-else", "version": 1}', "not an nsctl snapshot"),
    ('{"schema": "nsctl-snapshot"}', "without a schema version"),
    ('{"schema": "nsctl-snapshot", "version": 999}', "newer than this nsctl reads"),
    ('{"schema": "nsctl-snapshot", "version": 1, "own": {}}', "broken snapshot"),
    ('{"schema": "nsctl-snapshot", "version": 1, "own": {}, "namespaces": [{"type": "net"}],'
     ' "processes": [], "problems": []}', "broken snapshot"),
])
@pytest.mark.parametrize("command", [["ls"], ["tree"], ["pidtree"], ["show", "1"], ["lsns"]])
def test_bad_snapshots_fail_cleanly_and_print_nothing(scratch, content, message, command):
    path = scratch / "bad.json"
    path.write_text(content)
    proc = nsctl(*command, "--from", str(path), check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_missing_snapshot_file(scratch):
    proc = nsctl("ls", "--from", str(scratch / "nope.json"), check=False)
    assert proc.returncode == 1 and "No such file" in proc.stderr and proc.stdout == ""


@root_only
def test_views_in_a_snapshot_serve_net_show_and_interface_diff(scratch):
    """snapshot --views keeps what each network namespace sees: `net --from` prints it as
    live, `show --from` shows it, and diff sees a veth end move to another namespace."""
    from conftest import netns_tag
    from support import views as vt

    tag = netns_tag()
    first, second = str(scratch / "a.json"), str(scratch / "b.json")
    with vt.veth_pair(tag) as pair:
        mac = vt.links_of(pair.b)["eth0"]["address"]
        nsctl("snapshot", "--views", "-o", first)
        live = {n["ns"]: n for n in json.loads(nsctl("net", "--json").stdout)["namespaces"]}
        saved = {n["ns"]: n for n in json.loads(nsctl("net", "--json", "--from",
                                                      first).stdout)["namespaces"]}
        for ino in (pair.a_ino, pair.b_ino):
            assert [i["name"] for i in saved[ino]["interfaces"]] == \
                [i["name"] for i in live[ino]["interfaces"]]
            assert saved[ino]["interfaces"] == live[ino]["interfaces"]
        shown = json.loads(nsctl("show", f"net:[{pair.b_ino}]", "--json", "--from",
                                 first).stdout)
        assert [i["mac"] for i in shown["view"]["interfaces"] if i["name"] == "eth0"] == [mac]
        pair.move_b_to_c(tag)
        nsctl("snapshot", "--views", "-o", second)
        moved = json.loads(nsctl("diff", first, second, "--json", check=False).stdout)[
            "interfaces"]["moved"]
        mine = [m for m in moved if m["mac"] == mac]
        assert len(mine) == 1
        assert (mine[0]["from"], mine[0]["to"], mine[0]["name"]) == (pair.b_ino, pair.c_ino,
                                                                     "eth0")


@root_only
def test_net_from_a_snapshot_without_views_is_refused(scratch):
    path = str(scratch / "plain.json")
    nsctl("snapshot", "-o", path)
    proc = nsctl("net", "--from", path, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "holds no network views" in proc.stderr and "Traceback" not in proc.stderr


def _named_uts(chan: processes.Channel, hostname: str) -> None:
    syscalls.unshare(syscalls.CLONE_NEWUTS)
    socket.sethostname(hostname)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


@root_only
def test_views_of_every_type_are_kept_and_shown_offline(scratch):
    """snapshot --views keeps the other types' views too: a hostname set in a new uts
    namespace and the ID map of a new user namespace come back from show --from after
    the namespaces are gone."""
    path = str(scratch / "views.json")
    hostname = f"nsctl-view-{os.getpid()}"
    with processes.Child(_named_uts, hostname) as named, \
            namespaces.unshare_command(["--user", "--map-root-user"], fork=False) as mapped:
        uts = nsfacts.link_ino(named.ready()["pid"], "uts")
        user = nsfacts.link_ino(mapped.pid, "user")
        with open(f"/proc/{mapped.pid}/uid_map") as f:
            uid_map = [[int(x) for x in line.split()] for line in f if line.strip()]
        nsctl("snapshot", "--views", "-o", path)
    shown_uts = json.loads(nsctl("show", f"uts:[{uts}]", "--json", "--from", path).stdout)
    assert shown_uts["view"]["hostname"] == hostname
    shown_user = json.loads(nsctl("show", f"user:[{user}]", "--json", "--from", path).stdout)
    assert shown_user["view"]["uid_map"] == uid_map
    text = nsctl("show", f"uts:[{uts}]", "--from", path).stdout
    assert hostname in text


@root_only
def test_a_snapshots_odd_fields_come_back_as_json_says_them(scratch):
    """ls --json writes most namespaces' text directly from numbers it read; what a
    snapshot file says goes through the encoder instead, whatever it holds."""
    path = scratch / "snap.json"
    nsctl("snapshot", "-o", str(path))
    doc = json.loads(path.read_text())
    odd = {"owner": 'x"y', "dev": "4\n", "id": [1, {"z": None}]}
    doc["namespaces"][0].update(odd)
    path.write_text(json.dumps(doc))
    got = json.loads(nsctl("ls", "--json", "--from", str(path)).stdout)
    row = _by_ns(got)[doc["namespaces"][0]["ns"]]
    assert {k: row[k] for k in odd} == odd
