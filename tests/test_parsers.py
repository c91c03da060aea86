"""nsctl's /proc parsers on recorded texts (tests/data/): no root, no namespaces needed.

The texts are real ones recorded on a test host (how each was made is in
tests/data/README.md), a few written from the formats of proc(5) and
cgroups(7) where the host had no such layout.  The expected values below were
read off the texts by hand, not computed by nsctl.  Files are opened the way
nsctl opens /proc/PID: a directory fd, the file read relative to it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsctl.discovery import cgroup_names
from nsctl.kernel import procfs
from nsctl.views import mnt

DATA = Path(__file__).parent / "data"


@pytest.fixture
def proc_dir(request: pytest.FixtureRequest) -> Iterator[int]:
    """A directory fd on tests/data/proc/CASE, as nsctl holds one on /proc/PID."""
    fd = procfs.open_dir(str(DATA / "proc" / request.param))
    try:
        yield fd
    finally:
        os.close(fd)


# --- /proc/PID/stat -----------------------------------------------------------------------

STAT = [
    # case: (comm, state, ppid, starttime, threads)
    ("host-sleep", ("sleep", "S", 2273, 1214290, 1)),
    ("kthreadd", ("kthreadd", "S", 0, 28, 1)),
    ("nested-pidns", ("python3", "R", 2344, 1214284, 1)),
    ("zombie", ("python3", "Z", 2273, 1214264, 1)),
    # comm set by prctl(PR_SET_NAME) to "a) b (c\nd)": stat prints it unescaped.
    ("odd-comm", ("a) b (c\nd)", "S", 2273, 1214264, 1)),
]


@pytest.mark.parametrize("proc_dir, want", STAT, indirect=["proc_dir"],
                         ids=[c for c, _ in STAT])
def test_read_stat(proc_dir: int, want: tuple) -> None:
    assert procfs.read_stat(proc_dir) == want


# --- /proc/PID/status ---------------------------------------------------------------------

STATUS = [
    ("host-sleep", {"Name": "sleep", "PPid": "2273", "Uid": "0\t0\t0\t0", "NSpid": "2350"}),
    ("nested-pidns", {"Name": "python3", "PPid": "2344", "NSpid": "2345\t1",
                      "NStgid": "2345\t1"}),
    ("zombie", {"Name": "python3", "State": "Z (zombie)", "Threads": "1"}),
    # status escapes what stat does not: the newline of the name is "\n", two characters.
    ("odd-comm", {"Name": "a) b (c\\nd)", "NSpid": "2323"}),
]


@pytest.mark.parametrize("proc_dir, want", STATUS, indirect=["proc_dir"],
                         ids=[c for c, _ in STATUS])
def test_read_status_fields(proc_dir: int, want: dict) -> None:
    keys = tuple(want) + ("NoSuchKey",)
    assert procfs.read_status_fields(proc_dir, keys) == want


# --- /proc/PID/cmdline (lsns COMMAND) -------------------------------------------------------

CMDLINE = [
    ("host-sleep", ["sleep", "60"]),
    # An empty argument, one with a space, one with a byte that is not UTF-8.
    ("nested-pidns", ["python3", "-c", "import time; time.sleep(60)", "", "two words",
                      "\udcffx"]),
    ("zombie", []),
    ("kthreadd", []),
]


@pytest.mark.parametrize("proc_dir, want", CMDLINE, indirect=["proc_dir"],
                         ids=[c for c, _ in CMDLINE])
def test_read_cmdline(proc_dir: int, want: list[str]) -> None:
    assert procfs.read_cmdline(proc_dir) == want


# --- /proc/PID/mountinfo ------------------------------------------------------------------

@pytest.mark.parametrize("proc_dir", ["mounts-odd"], indirect=True)
def test_nsfs_mounts_of_a_table_with_escapes_and_optional_fields(proc_dir: int) -> None:
    """The one nsfs mount (shared:7, a space in its point) among mounts with shared:,
    master: and unbindable optional fields and escaped space, tab, newline, backslash."""
    text = procfs.read_mountinfo(proc_dir)
    assert procfs.nsfs_mounts(text) == [("net:[4026531833]", "/tmp/nsctl-rec/ns/net file")]


@pytest.mark.parametrize("escaped, plain", [
    ("/tmp/nsctl-rec/with\\040space", "/tmp/nsctl-rec/with space"),
    ("/tmp/nsctl-rec/tab\\011here", "/tmp/nsctl-rec/tab\there"),
    ("/tmp/nsctl-rec/new\\012line", "/tmp/nsctl-rec/new\nline"),
    ("/tmp/nsctl-rec/back\\134slash", "/tmp/nsctl-rec/back\\slash"),
    ("/tmp/nsctl-rec/peer", "/tmp/nsctl-rec/peer"),
])
def test_unescape_of_recorded_mount_points(escaped: str, plain: str) -> None:
    lines = (DATA / "proc" / "mounts-odd" / "mountinfo").read_text().splitlines()
    assert escaped in [line.split(" ")[4] for line in lines]   # as the kernel wrote it
    assert procfs.unescape(escaped) == plain


@pytest.mark.parametrize("proc_dir", ["mounts-odd"], indirect=True)
def test_mount_view_summary_of_a_recorded_table(proc_dir: int) -> None:
    summary = mnt.summarize(procfs.read_mountinfo(proc_dir))
    assert summary == {"mounts": 11, "root": {"fstype": "ext4", "source": "/dev/vda",
                                              "root": "/", "mount_id": 74}}


def test_nsfs_mounts_with_propagate_from() -> None:
    """proc(5)'s optional fields include propagate_from:X (a slave whose master is not
    visible here); written from the format: it must not shift the fields after it."""
    line = ("61 45 0:4 uts:[4026532301] /run/a\\040b rw master:3 propagate_from:2 "
            "- nsfs nsfs rw\n")
    assert procfs.nsfs_mounts(line) == [("uts:[4026532301]", "/run/a b")]


# --- /proc/PID/cgroup -----------------------------------------------------------------------

DOCKER = "d548c5b83fa61d8e3bd86ad42a7ffea9b7c86e3f9d8095c1577d3e1270bb9420"
PODMAN = "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"
K8S = "17c132990e8e8523ccd403287b6ae761c1cd57f764df278bce7ed310bbddd7f1"
POD = "8d3f0e0a-1b2c-4d5e-9f60-718293a4b5c6"

CGROUP = [
    # file: (engine, id, name, pod) or None (no container)
    ("docker-systemd", ("docker", DOCKER, None, None)),
    ("docker-cgroupfs", ("docker", DOCKER, None, None)),
    ("podman-systemd", ("podman", PODMAN, None, None)),
    ("podman-conmon", None),                     # podman's monitor: beside the container
    ("k8s-systemd", ("containerd", K8S, None, POD)),
    ("k8s-cgroupfs", ("kubernetes", K8S, None, POD)),
    ("nspawn", ("nspawn", "my-box", "my-box", None)),
    ("systemd-service", None),
    ("user-session", None),
    ("host-sandbox", None),
    ("written-v1-docker", ("docker", DOCKER, None, None)),
    ("written-v2-podman-rootless", ("podman", PODMAN, None, None)),
    ("written-v2-host-init", None),
]


@pytest.mark.parametrize("name, want", CGROUP, ids=[c for c, _ in CGROUP])
def test_cgroup_names_parse(name: str, want: tuple | None) -> None:
    found = cgroup_names.parse((DATA / "cgroup" / f"{name}.txt").read_text())
    assert (None if found is None else (found.engine, found.id, found.name, found.pod)) == want


def test_every_recorded_text_is_used() -> None:
    """A text added to tests/data/ without a case here would be checked by nothing."""
    cases = {c for c, _ in STAT + STATUS + CMDLINE} | {"mounts-odd"}
    assert {p.name for p in (DATA / "proc").iterdir()} == cases
    assert {p.stem for p in (DATA / "cgroup").glob("*.txt")} == {c for c, _ in CGROUP}
