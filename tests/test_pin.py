"""nsctl pin / unpin: a namespace held by a bind mount, and taken down again.

Everything is checked against what the kernel says, read by the test itself:
os.stat inodes and NS_GET_ID of nsfs files (support.nsfacts.facts), /proc/PID/*
read from outside, /proc/self/mountinfo.  What nsctl prints about itself is never
taken as evidence; the autouse leak check of conftest.py checks that nothing
(process, mount, file, /run/netns entry, fd) outlives a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import support
from conftest import netns_tag
from support import cli, namespaces, processes, syscalls
from support import ops as ot
from support.cli import nsctl, ok, one_error
from support.nsfacts import facts, link_ino
from support.ops import TYPES

pytestmark = support.root_only

UNSHARE_ARG = {"mnt": "--mount", "net": "--net", "pid": "--pid", "uts": "--uts",
               "ipc": "--ipc", "user": "--user", "cgroup": "--cgroup", "time": "--time"}


def own(ns_type: str) -> int:
    return link_ino("self", ns_type)


# === pin / unpin ===============================================================================

@pytest.mark.parametrize("ns_type", TYPES)
def test_pin_outlives_the_process_and_unpin_lets_it_go(ns_type, scr):
    path = scr / f"pinned-{ns_type}"
    # A new namespace of the type, held by one process (for mnt: newer than ours, as the
    # kernel wants; the pin lives in our mount namespace).
    with namespaces.unshare_command([UNSHARE_ARG[ns_type]]) as cmd:
        before = facts(f"/proc/{cmd.child}/ns/{ns_type}")
        assert before.type == ns_type and before.ino != own(ns_type) and before.id is not None
        ok("pin", f"{cmd.child}/{ns_type}", path)
        assert ot.nsfs_mounts()[str(path)] == f"{ns_type}:[{before.ino}]"
    # The process is gone (killed and reaped): only the pin holds the namespace now.
    try:
        now = facts(path)
        assert (now.type, now.ino, now.id) == (before.type, before.ino, before.id)
        doc = cli.ls_json()
        ns = cli.ns_by_ino(doc, before.ino)
        assert ns is not None, "the pinned namespace is not listed"
        assert ns["id"] == before.id and ns["type"] == ns_type
        # Only the pin holds it (an fd some other program on this machine holds for a
        # moment, e.g. a scan of its own, is no process of ours: tolerated).
        assert "bindmount" in ns["held_by"] and set(ns["held_by"]) <= {"bindmount", "fd"}, ns
        assert ns["pids"] == [] and not any(r.get("pid") in _ours() for r in ns["refs"]), ns
        assert {"kind": "bindmount", "path": str(path), "mntns": own("mnt")} in ns["refs"]

        ok("unpin", path)
        assert str(path) not in ot.nsfs_mounts()
        assert not os.path.lexists(path)
        with pytest.raises(FileNotFoundError):
            os.open(path, os.O_RDONLY)
        _gone(before.id)
    finally:
        ot.unpin_quietly(path)


def _gone(ns_id: int) -> None:
    """No namespace with this (never reused) NS_GET_ID is found any more.  Polled briefly:
    another program on this machine may have had the pin open at the moment we unpinned."""
    processes.wait_for(lambda: not cli.ns_with_id(cli.ls_json(), ns_id),
                       f"namespace id {ns_id} to be gone", timeout=5, step=0.1)


def _ours() -> set[int]:
    return {os.getpid(), *processes.descendants(os.getpid())}


def test_pinned_netns_shows_in_ip_netns():
    name = f"{netns_tag()}pin"
    path = f"/run/netns/{name}"
    try:
        with ot.target(syscalls.CLONE_NEWNET, ifname="nsctlpin0") as t:
            before = facts(f"/proc/{t.pid}/ns/net")
            ok("pin", f"net:[{before.ino}]", path)
        assert name in [n["name"] for n in _ip_netns_list()]
        assert facts(path).ino == before.ino
        # ip(8) reaches the pinned netns by its name: the fixture's veth pair is in it.
        out = subprocess.run(["ip", "-n", name, "-j", "link"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        assert sorted(link["ifname"] for link in json.loads(out)) == ["lo", "nsctlpin0",
                                                                      "nsctlpin0p"]
        ok("unpin", path)
        assert name not in [n["name"] for n in _ip_netns_list()]
        assert path not in ot.nsfs_mounts() and not os.path.lexists(path)
        _gone(before.id)
    finally:
        ot.unpin_quietly(path)


def _ip_netns_list() -> list[dict]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return json.loads(out or "[]")


def test_unpin_takes_the_path_pin_printed_through_a_symlinked_directory(scr):
    """pin accepts PATH through a symlinked directory; unpin must accept the same PATH."""
    (scr / "real").mkdir()
    (scr / "link").symlink_to("real")
    path = scr / "link" / "uts"
    try:
        with namespaces.unshare_command(["--uts"]) as cmd:
            ino = link_ino(cmd.child, "uts")
            ok("pin", f"{cmd.child}/uts", path)
        assert facts(path).ino == ino
        proc = nsctl("unpin", path)
        assert proc.returncode == 0, \
            f"unpin refuses the path pin was given: {cli.error_lines(proc.stderr)}"
        assert str(scr / "real" / "uts") not in ot.nsfs_mounts()
        assert not os.path.lexists(scr / "real" / "uts")
    finally:
        ot.unpin_quietly(scr / "real" / "uts")
        (scr / "link").unlink()


# --- pin and unpin errors: one line, exit 1, nothing changed ----------------------------------

@pytest.mark.parametrize("spec, message", [
    ("frob:[4026531840]", "unknown namespace type 'frob'"),
    ("net:[1]", "not found"),
    ("99999999/net", "no process with PID 99999999"),
    ("1/frob", "unknown namespace type 'frob'"),
    ("nonsense", "cannot read 'nonsense'"),
    ("/etc/hostname", "not a namespace file"),
])
def test_pin_unknown_spec(spec, message, scr):
    path = scr / "pin"
    err = one_error(nsctl("pin", spec, path))
    assert message in err
    assert not os.path.lexists(path) and str(path) not in ot.nsfs_mounts()


def test_pin_path_that_exists(scr):
    path = scr / "taken"
    path.write_text("keep\n")
    st = path.stat()
    err = one_error(nsctl("pin", f"{os.getpid()}/uts", path))
    assert "exists" in err
    assert path.read_text() == "keep\n" and path.stat().st_ino == st.st_ino
    assert ot.mounts_under(path) == []


def test_pin_parent_directory_missing(scr):
    path = scr / "no-such-dir" / "pin"
    err = one_error(nsctl("pin", f"{os.getpid()}/uts", path))
    assert "no such directory" in err
    assert not os.path.lexists(path.parent)


def test_pin_own_mount_namespace_is_refused_and_leaves_no_file(scr):
    path = scr / "mnt"
    err = one_error(nsctl("pin", f"{os.getpid()}/mnt", path))
    assert "bind mount failed" in err
    assert not os.path.lexists(path) and ot.mounts_under(path) == []


@pytest.mark.parametrize("what", ["/etc/hostname", "/proc", "regular", "missing"])
def test_unpin_refuses_what_is_not_a_pin(what, scr):
    if what == "regular":
        path = scr / "plain"
        path.write_text("keep\n")
    elif what == "missing":
        path = scr / "missing"
    else:
        path = Path(what)
        if not path.exists():
            pytest.skip(f"{path} does not exist here")
    mounted = ot.mounts_under(path) if what != "missing" else []
    existed = os.path.lexists(path)
    err = one_error(nsctl("unpin", path))
    assert ("no such file" if what == "missing" else "not a pinned namespace file") in err
    assert os.path.lexists(path) == existed
    assert ot.mounts_under(path) == mounted  # /proc is still mounted, and so on
    if what == "regular":
        assert path.read_text() == "keep\n"


def test_pin_swapped_arguments_say_so(scr):
    """`nsctl pin PATH SPEC`: the error names the order (exit 2, a usage error), nothing
    is pinned."""
    path = scr / "pin"
    err = one_error(nsctl("pin", path, f"{os.getpid()}/net"), code=2)
    assert "is a SPEC, not a path" in err and "nsctl pin SPEC PATH" in err
    assert not os.path.lexists(path)


def test_pin_by_pid_type_scans_nothing(scr):
    """A SPEC that names the namespace directly is pinned without a scan of the host:
    nothing of nsctl.discovery imported, no partial-result line."""
    path = scr / "uts"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "nsctl", "pin",
                           f"{os.getpid()}/uts", path], capture_output=True, text=True,
                          timeout=60)
    try:
        assert proc.returncode == 0, proc.stderr
        lines = proc.stderr.splitlines()
        assert [ln for ln in lines if not ln.startswith("import time:")] == []
        assert not any(ln.rpartition("|")[2].strip().startswith("nsctl.discovery")
                       for ln in lines)
        assert os.stat(path).st_ino == own("uts")
    finally:
        ok("unpin", path)
