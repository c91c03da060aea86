"""What nsctl starts runs nsctl's own code, whatever a user planted around root.

A hostile local user (uid 65534) plants a ``nsctl`` package, ``sitecustomize``,
``usercustomize`` and a startup file in a directory of their own; root then runs
``nsctl serve`` from that directory, or with ``PYTHONPATH``-like variables that
point there.  The server's helper processes (the launcher, the refresher, the
worker) must never import the planted code: each writes a marker file if it
runs.  The server itself is started isolated (``-I``) here, as the ``nsctl``
console script is not affected by the working directory: what is tested is
what nsctl starts.

The server process that answers HTTP must hold no capability once it serves,
while its helpers hold what they need: read from /proc/PID/status.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import netns_tag
from support import nsfacts, root_only
from support.serve import Server, helpers, running_server

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

# Each planted file writes one line to the marker file when Python runs it.
PLANTED = ("nsctl/__init__.py", "nsctl/__main__.py", "nsctl/serve/__init__.py",
           "nsctl/serve/child.py", "sitecustomize.py", "usercustomize.py", "startup.py",
           "userbase/lib/python{v}/site-packages/usercustomize.py",
           "userbase/lib/python{v}/site-packages/sitecustomize.py")


def _plant(directory: str, marker: str) -> None:
    """Write the planted files as uid 65534, as a hostile user would."""
    code = (f"open({marker!r}, 'a').write(f'ran {{__file__}} in {{__import__(\"os\").getpid()}}'"
            " + chr(10))\n")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    script = "; ".join(
        f"import os; os.makedirs(os.path.dirname({p!r}), exist_ok=True); "
        f"open({p!r}, 'w').write({code!r})"
        for p in (os.path.join(directory, name.format(v=version)) for name in PLANTED))
    subprocess.run([*SETPRIV, sys.executable, "-I", "-c", script], check=True, timeout=30,
                   cwd="/")


@pytest.fixture
def planted() -> Iterator[tuple[str, str]]:
    """(a directory of uid 65534 holding the planted code, the marker file's path)."""
    top = tempfile.mkdtemp(prefix=netns_tag(), dir="/run")
    try:
        os.chmod(top, 0o755)
        directory = os.path.join(top, "checkout")
        os.mkdir(directory, 0o755)
        os.chown(directory, NOBODY, NOBODY)
        marker = os.path.join(directory, "MARKER")
        _plant(directory, marker)
        yield directory, marker
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _environments(directory: str) -> dict[str, dict[str, str]]:
    """The server's cwd/environment for each case: what root might run nsctl with."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {
        "cwd": base,
        "pythonpath": {**base, "PYTHONPATH": directory,
                       "PYTHONSTARTUP": os.path.join(directory, "startup.py"),
                       "PYTHONUSERBASE": os.path.join(directory, "userbase"),
                       "PYTHONSAFEPATH": "", "PYTHONNOUSERSITE": ""},
        "pythonhome": {**base, "PYTHONHOME": directory},
    }


def _status_caps(pid: int) -> dict[str, int]:
    caps = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            caps[key] = int(value, 16)
    return caps


def _environ(pid: int) -> dict[str, str]:
    data = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().partition("=")[::2] for item in data.split(b"\0") if item)


def _start_worker(server: Server) -> None:
    """A view is read by the worker: ask for one so that the worker starts."""
    assert server.get("/api/v1/namespaces/1", params={"view": 1}).status_code in (200, 404)


@root_only
@pytest.mark.parametrize("case", ["cwd", "pythonpath", "pythonhome"])
def test_helpers_never_run_planted_code(planted: tuple[str, str], case: str) -> None:
    directory, marker = planted
    env = _environments(directory)[case]
    with running_server("--max-age", "1", cwd=directory, env=env, python=("-I",),
                        ready=False) as server:
        deadline = time.monotonic() + 60
        while server.get("/api/v1/status").status_code != 200:
            # Planted code that ran leaves the server without a model: stop waiting.
            assert not os.path.exists(marker), Path(marker).read_text()
            assert time.monotonic() < deadline, "no model within 60s"
            time.sleep(0.1)
        _start_worker(server)
        roles = helpers(server)
        assert {"refresher", "worker"} <= set(roles), roles
        for role, pid in roles.items():
            # Each helper runs from /, with an environment of nsctl's making.
            assert os.readlink(f"/proc/{pid}/cwd") == "/", role
            assert not [k for k in _environ(pid) if k.startswith("PYTHON")], role
            assert set(_environ(pid)) <= {"PATH", "LANG"}, (role, _environ(pid))
    assert not os.path.exists(marker), Path(marker).read_text()


@root_only
def test_the_server_holds_no_capability_and_its_helpers_do(tmp_path: Path) -> None:
    sock = str(tmp_path / "api.sock")
    with running_server("--max-age", "1", unix=sock) as server:
        _start_worker(server)
        caps = _status_caps(server.popen.pid)
        assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}, caps
        status = Path(f"/proc/{server.popen.pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status
        roles = helpers(server)
        assert {"refresher", "worker"} <= set(roles), roles
        for role, pid in roles.items():
            assert _status_caps(pid)["CapEff"] == _status_caps(os.getpid())["CapEff"], role
        # Still the full model: every namespace of this test process is in it.
        found = {d["ns"] for d in server.json("/api/v1/namespaces")["namespaces"]}
        for link in ("net", "mnt", "uts", "ipc", "user", "pid", "cgroup"):
            assert nsfacts.link_ino(os.getpid(), link) in found, link


@root_only
def test_dropped_capabilities_do_not_come_back_through_exec() -> None:
    """After the drop, a program run as uid 0 starts with no capability (securebits
    and no_new_privs), where without the drop it would hold root's full set."""
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); "
            "from nsctl.serve.privileges import drop_privileges; "
            "drop_privileges() if sys.argv[2] == 'drop' else None; "
            "os.execv('/bin/grep', ['grep', '-E', '^(CapEff|CapPrm|CapBnd|NoNewPrivs)', "
            "'/proc/self/status'])")
    from nsctl.serve.privileges import package_root

    def run(how: str) -> dict[str, int]:
        out = subprocess.run([sys.executable, "-I", "-c", code, package_root(), how],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return {k: int(v, 16) for k, v in (line.split(":\t") for line in out.splitlines())}

    assert run("keep")["CapEff"] == _status_caps(os.getpid())["CapEff"] != 0
    assert run("drop") == {"CapEff": 0, "CapPrm": 0, "CapBnd": 0, "NoNewPrivs": 1}


def _within(seconds: float, fn, *args):
    """``fn(*args)`` in a thread; its result, or a failure if it takes longer than
    ``seconds`` (the thread is left to finish once the test's cleanup unblocks it)."""
    import threading

    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} took more than {seconds}s"
    return result[0]


def _answer(helper, request: bytes, timeout: float = 30.0) -> dict:
    import json
    import select

    helper.stdin.write(request)
    helper.stdin.flush()
    assert select.select([helper.stdout], [], [], timeout)[0], "the worker did not answer"
    return json.loads(helper.stdout.readline())


@root_only
def test_a_helper_that_does_not_end_holds_up_nothing() -> None:
    """A thread waits for a helper that does not end (stopped here; a scan stuck on
    something a user mounted looks the same from the server).  Meanwhile the server
    must still see that it runs, have the launcher kill it, and get new helpers: the
    wait holds no lock that those need."""
    import signal
    import threading

    from nsctl.serve.privileges import Launcher
    from nsctl.serve.state import _stop_child

    launcher = Launcher()
    started = []
    try:
        stuck = launcher.start("worker", [])
        started.append(stuck)
        os.kill(stuck.pid, signal.SIGSTOP)
        waited: list[int] = []
        waiter = threading.Thread(target=lambda: waited.append(stuck.wait()), daemon=True)
        waiter.start()
        time.sleep(0.3)                       # the waiter is in its wait
        assert waiter.is_alive() and not waited
        assert _within(5, stuck.poll) is None
        other = _within(10, launcher.start, "worker", [])
        started.append(other)
        # The new worker answers (it has no model yet, and says so in one line).
        answer = _answer(other, b'{"op": "view", "ino": 1}\n')
        assert answer["error"] == "no model yet", answer
        _within(5, stuck.signal_group, signal.SIGKILL)
        waiter.join(10)
        assert waited == [-signal.SIGKILL]
    finally:
        for helper in started:
            if helper.returncode is None:
                try:
                    os.kill(helper.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _stop_child(helper, grace=1)
        launcher.close()
