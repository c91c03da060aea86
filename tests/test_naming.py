"""Stable paths (nsctl.query.naming): the same topology built twice gets the same names.

The topologies are real: a helper process (tests/processes.Child) pinned to one
CPU unshares user, net and uts namespaces and makes sibling and nested user
namespaces, holding every one of them by an open fd, and reports their inodes
as the kernel gives them (os.fstat).  NS_GET_ID ids are handed out from
per-CPU batches on Linux 6.18, so only namespaces made on the same CPU are
ordered by id: the helpers pin themselves with os.sched_setaffinity.

Ranks of the namespaces under the fixture's own user namespace depend on
nothing but the fixture; the rank of that user namespace itself among the
host's user namespaces depends on what others on this host do meanwhile, so
the full paths are compared only when no other user namespace came or went.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from support import nsfacts, processes, root_only, syscalls
from support.processes import Child
from support.syscalls import CLONE_NEWNET, CLONE_NEWUTS

import nsctl
from nsctl.model import Namespace, Snapshot
from nsctl.query.naming import parse, resolve_path, stable_paths


def one_cpu() -> int:
    return min(os.sched_getaffinity(0))


# --- what the helpers run ----------------------------------------------------------------------

def _user_in_child() -> int:
    """A new user namespace made by a forked child (a sibling of the ones made before
    it): returns an fd on it; the child has exited."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            syscalls.new_userns()
            os.write(ready_w, b"x")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    try:
        assert os.read(ready_r, 1) == b"x", "the child did not make its user namespace"
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
        os.write(done_w, b"x")
    finally:
        os.waitpid(pid, 0)
        for end in (ready_r, ready_w, done_r, done_w):
            os.close(end)
    return fd


def _build(chan: processes.Channel, cpu: int) -> None:
    """The topology, in this order (expected paths relative to U, the first user ns):

    U                 (new user ns)          .
    U/netA, U/uts     unshare net, then uts  ./net.0, ./uts.0
    U/netB, U/netC    two more netns         ./net.1, ./net.2
    U/userX, U/userY  two user ns, by forks  ./user.0, ./user.1
    U/V               a nested user ns       ./user.2
    U/V/net, U/V/uts  its net and uts        ./user.2/net.0, ./user.2/uts.0
    """
    os.sched_setaffinity(0, {cpu})
    held: dict[str, int] = {}

    def hold(name: str, link: str) -> None:
        held[name] = os.open(f"/proc/self/ns/{link}", os.O_RDONLY)

    syscalls.new_userns()
    hold("U", "user")
    syscalls.unshare(CLONE_NEWNET)
    hold("U/netA", "net")
    syscalls.unshare(CLONE_NEWUTS)
    hold("U/uts", "uts")
    syscalls.unshare(CLONE_NEWNET)
    hold("U/netB", "net")
    syscalls.unshare(CLONE_NEWNET)
    hold("U/netC", "net")
    held["U/userX"] = _user_in_child()
    held["U/userY"] = _user_in_child()
    syscalls.new_userns()
    hold("U/V", "user")
    syscalls.unshare(CLONE_NEWNET | CLONE_NEWUTS)
    hold("U/V/net", "net")
    hold("U/V/uts", "uts")
    chan.send({"pid": os.getpid(),
               "ns": {name: os.fstat(fd).st_ino for name, fd in held.items()}})
    chan.wait_closed()


EXPECTED = {"U": ".", "U/netA": "./net.0", "U/uts": "./uts.0", "U/netB": "./net.1",
            "U/netC": "./net.2", "U/userX": "./user.0", "U/userY": "./user.1",
            "U/V": "./user.2", "U/V/net": "./user.2/net.0", "U/V/uts": "./user.2/uts.0"}


def _spacer(chan: processes.Channel, wanted: list[int]) -> None:
    """Take the inode numbers in ``wanted`` once they are free (nsfs hands out the
    lowest free number), so that the next build cannot reuse them: make uts
    namespaces, keeping those that land on a wanted number or below one."""
    home = os.open("/proc/self/ns/uts", os.O_RDONLY)
    left, kept = set(wanted), []
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        syscalls.unshare(CLONE_NEWUTS)
        fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
        syscalls.setns(home, CLONE_NEWUTS)
        ino = os.fstat(fd).st_ino
        if ino in left or ino < max(left):
            left.discard(ino)
            kept.append(fd)
        else:                 # the rest are still in use (netns are freed by a worker)
            os.close(fd)
            time.sleep(0.01)
    chan.send({"missing": sorted(left), "kept": len(kept)})
    chan.wait_closed()


# --- helpers -----------------------------------------------------------------------------------

def relative(paths: dict[int, str], inodes: dict[str, int]) -> dict[str, str]:
    """Each fixture namespace's path with the fixture's top user namespace as ``.``."""
    top = paths[inodes["U"]]
    out = {}
    for name, ino in inodes.items():
        path = paths[ino]
        assert path == top or path.startswith(top + "/"), (name, path, top)
        out[name] = "." + path[len(top):]
    return out


def other_user_namespaces(snap: Snapshot, ours: set[int]) -> set[int]:
    return {ns.ino for ns in snap.of_type("user") if ns.ino not in ours}


def nsctl_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsctl", *args], capture_output=True,
                          text=True, timeout=60)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines()
            if not line.startswith("nsctl: partial result")]


# --- real topologies ---------------------------------------------------------------------------

@root_only
def test_same_topology_built_twice_gets_the_same_names():
    cpu = one_cpu()
    with Child(_build, cpu) as first:
        inodes1 = first.ready()["ns"]
        snap1 = nsctl.discover()
    paths1 = stable_paths(snap1)
    assert paths1.ranked_by == ("id" if snap1.has_ns_id else "inode")
    rel1 = relative(paths1, inodes1)
    assert rel1 == EXPECTED
    assert paths1[inodes1["U"]].startswith("/user.0/user.")   # a child of the top: ours
    # Keep the first build's inode numbers taken, so that the second gets other ones.
    with Child(_spacer, sorted(inodes1.values())) as spacer:
        assert spacer.ready()["missing"] == []
        with Child(_build, cpu) as second:
            inodes2 = second.ready()["ns"]
            snap2 = nsctl.discover()
    paths2 = stable_paths(snap2)
    assert not set(inodes1.values()) & set(inodes2.values())
    assert relative(paths2, inodes2) == rel1
    ours1, ours2 = set(inodes1.values()), set(inodes2.values())
    if other_user_namespaces(snap1, ours1) == other_user_namespaces(snap2, ours2):
        # Nobody else made or dropped a user namespace meanwhile: whole paths agree too.
        assert {n: paths2[i] for n, i in inodes2.items()} == \
            {n: paths1[i] for n, i in inodes1.items()}
    # Each path names its namespace back.
    for ino in inodes2.values():
        assert resolve_path(paths2[ino], snap2).ino == ino


@root_only
def test_ranks_follow_creation_order_on_one_cpu():
    """Three sibling netns of the host's user namespace, made one after the other on
    one CPU: their ids increase, and so do their ranks (others' netns may fall between)."""
    def three_netns(chan: processes.Channel, cpu: int) -> None:
        os.sched_setaffinity(0, {cpu})
        fds = []
        for _ in range(3):
            syscalls.unshare(CLONE_NEWNET)
            fds.append(os.open("/proc/self/ns/net", os.O_RDONLY))
        chan.send({"ns": [os.fstat(fd).st_ino for fd in fds],
                   "ids": [nsfacts.ns_id(fd) for fd in fds]})
        chan.wait_closed()

    with Child(three_netns, one_cpu()) as maker:
        made = maker.ready()
        snap = nsctl.discover()
    if made["ids"][0] is None:
        pytest.skip("no NS_GET_ID on this kernel")
    assert made["ids"] == sorted(made["ids"]) and len(set(made["ids"])) == 3
    paths = stable_paths(snap)
    steps = [parse(paths[ino]) for ino in made["ns"]]
    assert all(s[:-1] == [("user", 0)] and s[-1][0] == "net" for s in steps), steps
    ranks = [s[-1][1] for s in steps]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3, ranks


@root_only
def test_show_ls_tree_and_spec_by_stable_path():
    with Child(_build, one_cpu()) as maker:
        inodes = maker.ready()["ns"]
        ino = inodes["U/V/net"]
        for _attempt in range(3):   # a user namespace made elsewhere meanwhile shifts ranks
            path = stable_paths(nsctl.discover())[ino]
            proc = nsctl_cli("show", path, "--no-view")
            assert proc.returncode == 0, proc.stderr
            if proc.stdout.splitlines()[0].split()[0] == f"net:[{ino}]":   # then its name
                break
        else:
            pytest.fail(f"nsctl show {path} did not name net:[{ino}]:\n{proc.stdout}")
        assert f"stable path: {path}" in proc.stdout
        assert path.startswith("/user.0/user.") and path.endswith("/user.2/net.0")

        doc = json.loads(nsctl_cli("show", f"net:[{ino}]", "--json", "--no-view").stdout)
        assert doc["stable_path"].endswith("/user.2/net.0") and doc["ns"] == ino
        assert doc["stable_path_ranked_by"] in ("id", "inode")

        out = nsctl_cli("ls", "-o", "NS,TYPE,SPATH", "-t", "net,uts").stdout
        rows = {int(line.split()[0]): line.split() for line in out.splitlines()[1:]}
        assert rows[inodes["U/V/uts"]][2].endswith("/user.2/uts.0")
        assert out.splitlines()[0].split() == ["NS", "TYPE", "SPATH"]

        tree = json.loads(nsctl_cli("tree", "--json").stdout)
        found = {}

        def walk(node: dict) -> None:
            if "ns" in node:
                found[node["ns"]] = node["stable_path"]
            for child in node["children"]:
                walk(child)

        for node in tree["tree"]:
            walk(node)
        top = found[inodes["U"]]
        assert {n: found[i] for n, i in inodes.items()} == \
            {n: top + rel[1:] for n, rel in EXPECTED.items()}


@root_only
def test_snapshot_file_keeps_the_names():
    """A saved snapshot (nsctl snapshot / --from FILE) names every namespace as live did."""
    from nsctl.documents import snapshot

    with Child(_build, one_cpu()) as maker:
        maker.ready()
        snap = nsctl.discover()
    doc = json.loads(json.dumps(snapshot.to_document(snap)))
    offline = snapshot.from_document(doc)
    assert stable_paths(offline) == stable_paths(snap)
    assert stable_paths(offline).ranked_by == stable_paths(snap).ranked_by


@root_only
def test_unknown_stable_path_is_one_line_error():
    for spec in ("/user.0/user.99999/net.0", "/?/net.99999", "/user.0/net.999999"):
        proc = nsctl_cli("show", spec, "--no-view")
        assert proc.returncode == 1, (spec, proc.stdout, proc.stderr)
        lines = error_lines(proc)
        assert len(lines) == 1 and "no namespace has this stable path" in lines[0], proc.stderr
        assert spec in lines[0] and "Traceback" not in proc.stderr


def test_ls_lists_spath_column_but_not_by_default():
    from nsctl.cli.columns import COLUMNS, DEFAULT

    assert "SPATH" in COLUMNS and "SPATH" not in DEFAULT
    assert "stable path" in COLUMNS["SPATH"].help


# --- synthetic snapshots: the rule itself ------------------------------------------------------

def synthetic(ids: bool = True) -> Snapshot:
    """Top user ns 10; under it nets 21 (id 7) and 22 (id 5), user ns 30 (id 9) owning
    net 40; user ns 50 whose parent 99 is not in the snapshot, owning uts 51; net 60
    with no owner known."""
    snap = Snapshot()
    snap.has_ns_id = ids
    specs = [(10, "user", 1, None), (21, "net", 7, 10), (22, "net", 5, 10),
             (30, "user", 9, 10), (40, "net", 3, 30), (50, "user", 2, 99),
             (51, "uts", 4, 50), (60, "net", 8, None)]
    for ino, ns_type, ns_id, up in specs:
        ns = Namespace(ino, ns_type, id=ns_id if ids else None, owner=up,
                       parent=up if ns_type == "user" else None)
        snap.namespaces[ino] = ns
    snap.own = {"user": 10}
    return snap


def test_rule_with_ids():
    paths = stable_paths(synthetic())
    assert paths.ranked_by == "id" and not paths.by_inode
    assert paths == {10: "/user.0", 22: "/user.0/net.0", 21: "/user.0/net.1",
                     30: "/user.0/user.0", 40: "/user.0/user.0/net.0",
                     50: "/?/user.0", 51: "/?/user.0/uts.0", 60: "/?/net.0"}


def test_rule_falls_back_to_inode_order_and_says_so():
    paths = stable_paths(synthetic(ids=False))
    assert paths.ranked_by == "inode" and paths.by_inode
    assert paths[21] == "/user.0/net.0" and paths[22] == "/user.0/net.1"


def test_resolve_path_round_trip_and_misses():
    snap = synthetic()
    for ino, path in stable_paths(snap).items():
        assert resolve_path(path, snap).ino == ino
        assert parse(path) is not None
    assert resolve_path("/user.0/net.2", snap) is None
    assert parse("/run/netns/x") is None and parse("/?") is None
    assert parse("/?/user.1/net.0") == [("?", 0), ("user", 1), ("net", 0)]


def test_spec_form_comes_before_file_paths():
    from nsctl.query.spec import FORMS, SpecError, resolve

    names = [name for name, _form in FORMS]
    assert names.index("stable path (/user.0/.../TYPE.N)") < \
        names.index("path to a namespace file")
    snap = synthetic()
    assert resolve("/user.0/user.0/net.0", snap).ino == 40
    with pytest.raises(SpecError, match="no namespace has this stable path"):
        resolve("/user.0/user.3", snap)


def test_sixty_thousand_namespaces_quickly():
    """The seed thread's worst case: ~60k namespaces, named in well under a second."""
    snap = Snapshot()
    snap.has_ns_id = True
    snap.namespaces[1] = Namespace(1, "user", id=1)
    snap.own = {"user": 1}
    ino = 2
    for _ in range(2000):
        user = Namespace(ino, "user", id=ino, owner=1, parent=1)
        snap.namespaces[ino] = user
        ino += 1
        for t in ("net", "uts", "ipc", "mnt", "cgroup") * 6:
            snap.namespaces[ino] = Namespace(ino, t, id=ino, owner=user.ino)
            ino += 1
    start = time.perf_counter()
    paths = stable_paths(snap)
    took = time.perf_counter() - start
    assert len(paths) == len(snap.namespaces) > 60000
    assert paths[ino - 1] == "/user.0/user.1999/cgroup.5"
    assert took < 1.0, took
