"""Discovery as an unprivileged user (nobody): what it can see, and 'denied' for the rest.

The discovering process runs under setpriv(1) as uid/gid 65534 with no
groups.  It records its own namespaces with os.stat before calling nsctl,
and the test checks nsctl's answer against that, and against what the test
(root) reads of the processes nsctl reported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.syscalls import LINK_TYPE, NS_LINKS

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to switch to nobody (setpriv)")

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
TESTS = str(Path(__file__).resolve().parent)

# Runs as nobody: its own view first (os.stat, and NS_GET_* through the test's
# own helpers), then nsctl's.
SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from support import nsfacts, syscalls
if sys.argv[2:] == ["userns"]:
    try:
        syscalls.new_userns()
        syscalls.unshare(syscalls.CLONE_NEWNET)
    except OSError as exc:
        json.dump({"no_userns": str(exc)}, sys.stdout)
        sys.exit(0)
own = {link: nsfacts.facts(f"/proc/self/ns/{link}").__dict__
       for link in syscalls.NS_LINKS if os.path.exists(f"/proc/self/ns/{link}")}
import nsctl
snap = nsctl.discover()
json.dump({"pid": os.getpid(), "uid": os.getuid(), "own": own, "snapshot": snap.to_dict()},
          sys.stdout)
"""


def _env() -> dict[str, str]:
    # No TMPDIR: the session's temp dir is root's and closed to nobody.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def as_nobody(argv: list[str], prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*SETPRIV, *prefix, *argv], capture_output=True, text=True,
                          timeout=60, cwd="/", env=_env())


@pytest.fixture(scope="module")
def nobody_can_run_nsctl() -> None:
    """nobody must be able to run this venv's python and import nsctl and the test helpers."""
    probe = as_nobody([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                       "import nsctl, support.nsfacts", TESTS])
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run {sys.executable} with nsctl and tests/ "
                    f"(a venv or checkout under a directory closed to others?): "
                    f"{probe.stderr.strip().splitlines()[-1:]}")


def _check_own_view(doc: dict) -> dict:
    """nsctl's namespaces for the nobody process are what it saw itself; returns them by ino."""
    namespaces = {ns["ns"]: ns for ns in doc["snapshot"]["namespaces"]}
    pid = doc["pid"]
    for link, want in doc["own"].items():
        ns = namespaces.get(want["ino"])
        assert ns is not None, f"own {link} namespace {want['ino']} missing"
        got = {k: ns[k] for k in ("type", "dev", "id", "owner", "parent", "owner_uid")}
        assert got == {k: want[k] for k in got}, link
        if LINK_TYPE[link] == link:
            assert {"kind": "process", "pid": pid, "link": link} in ns["refs"]
            assert pid in ns["pids"]
    return namespaces


def test_discover_as_nobody(nobody_can_run_nsctl):
    out = as_nobody([sys.executable, "-c", SCRIPT, TESTS])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["uid"] == NOBODY
    _check_own_view(doc)
    snap = doc["snapshot"]
    reasons = {p["reason"] for p in snap["problems"]}
    assert "denied" in reasons, snap["problems"][:5]
    assert snap["partial"] is True
    # Every process it could read is one it may read: its own uid (checked by root, now).
    pids = [p["pid"] for p in snap["processes"]]
    assert doc["pid"] in pids
    for pid in pids:
        try:
            assert os.stat(f"/proc/{pid}").st_uid == NOBODY, pid
        except FileNotFoundError:
            pass


def test_nsctl_ls_json_as_nobody(nobody_can_run_nsctl):
    out = as_nobody([sys.executable, "-m", "nsctl", "ls", "--json"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["partial"] is True
    assert "denied" in {p["reason"] for p in doc["problems"]}
    assert out.stderr.strip(), "a partial result says so on stderr"
    # nobody runs in the namespaces this test runs in: those are listed.
    found = {ns["ns"] for ns in doc["namespaces"]}
    for link in NS_LINKS:
        assert os.stat(f"/proc/self/ns/{link}").st_ino in found, link


def test_discover_as_nobody_in_its_own_user_namespace(nobody_can_run_nsctl):
    """In a user namespace of its own, nobody is root there: it sees its new namespaces
    (owner: its user namespace; that one's owner lies outside its view)."""
    out = as_nobody([sys.executable, "-c", SCRIPT, TESTS, "userns"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    if "no_userns" in doc:
        pytest.skip(f"nobody may not create a user namespace here: {doc['no_userns']}")
    assert doc["uid"] == 0   # root in its own user namespace
    namespaces = _check_own_view(doc)
    own = doc["own"]
    assert own["net"]["owner"] == own["user"]["ino"]       # what the process saw itself
    assert own["user"]["owner"] is None and own["user"]["parent"] is None
    assert namespaces[own["net"]["ino"]]["owner"] == own["user"]["ino"]
    assert own["net"]["ino"] != os.stat("/proc/self/ns/net").st_ino
    assert "denied" in {p["reason"] for p in doc["snapshot"]["problems"]}
