"""Containers by their real names: real Podman and Docker containers (tests/support/engines.py).

The engines start once for this module (each with private state, removed at
the end with everything it made, checked); each test points nsctl at them through the
environment variables the README documents.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import engines
from support.cli import error_lines, nsctl, ok
from support.processes import wait_for
from support.serve import running_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the engines need root")

SLEEP = ["sleep", "1000000"]
HOSTILE = "evil\x1b[31mred\x07"


def _link(pid: int, link: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{link}").st_ino


def _start(make: type[engines.Engine]) -> engines.Engine:
    try:
        return make()
    except engines.EngineUnavailable as exc:
        pytest.skip(f"{make.name} cannot run here: {exc}")


def _engine_for_module(make: type[engines.Engine], populate: Callable[[Any], None]
             ) -> Iterator[Any]:
    """This module's engine (started once for all its tests, gone before the next test
    file runs, so no other test sees its containers): started, pointed at (every nsctl
    the tests run asks it, not the host's), given its containers; at the end removed,
    with a check of the host."""
    if os.geteuid() != 0:
        pytest.skip("the engines need root")
    t0 = time.monotonic()
    e = _start(make)
    os.environ.update(e.env())
    try:
        populate(e)
        e.startup = time.monotonic() - t0
        print(f"\n{e.name} fixture ready in {e.startup:.2f} s", file=sys.stderr)
        yield e
    finally:
        for k in e.env():
            os.environ.pop(k, None)
        e.close()
    assert engines.host_residue(e) == []


def _podman_containers(p: engines.Podman) -> None:
    p.run("run", "-d", "--name", "web1", "--network", "none",
          "--label", "com.docker.compose.project=shop",
          "--label", "com.docker.compose.service=web", engines.IMAGE, *SLEEP)
    p.run("pod", "create", "--name", "accp-pod", "--network", "none",
          "--infra-image", engines.IMAGE, "--infra-command", "/bin/pause")
    for name in ("pod-a", "pod-b"):
        p.run("run", "-d", "--pod", "accp-pod", "--name", name, engines.IMAGE, *SLEEP)


def _docker_containers(d: engines.Docker) -> None:
    d.run("run", "-d", "--name", "web", "--network", "none",
          "--label", "com.docker.compose.project=store",
          "--label", "com.docker.compose.service=db", engines.IMAGE, *SLEEP)
    for name in ("db-1", "db-2"):
        d.run("run", "-d", "--name", name, "--network", "none",
              "--label", "com.docker.compose.project=store",
              "--label", "com.docker.compose.service=replica",
              "--label", f"com.docker.compose.container-number={name[-1]}",
              engines.IMAGE, *SLEEP)
    d.run("run", "-d", "--name", "odd", "--network", "none",
          "--label", f"com.docker.compose.project={HOSTILE}", engines.IMAGE, *SLEEP)


@pytest.fixture(scope="module")
def with_podman() -> Iterator[engines.Podman]:
    yield from _engine_for_module(engines.Podman, _podman_containers)


@pytest.fixture(scope="module")
def with_docker() -> Iterator[engines.Docker]:
    yield from _engine_for_module(engines.Docker, _docker_containers)


def _ls() -> tuple[dict[int, dict], dict[int, dict], str]:
    """``nsctl ls --json``: processes and namespaces by key; and plain ``nsctl ls``."""
    doc = json.loads(ok("ls", "--json").stdout)
    table = ok("ls").stdout
    return ({p["pid"]: p for p in doc.get("processes", [])},
            {n["ns"]: n for n in doc["namespaces"]}, table)


def _row(table: str, ino: int) -> str:
    return next(line for line in table.splitlines() if line.lstrip().startswith(f"{ino} "))


def _show(spec: str) -> dict:
    return json.loads(ok("show", spec, "--json", "--no-view").stdout)


# --- Podman ----------------------------------------------------------------------------------

# A named, Compose-labelled container of each engine: (name, project, service).
NAMED = {"podman": ("web1", "shop", "web"), "docker": ("web", "store", "db")}


@pytest.fixture(params=sorted(NAMED))
def engine(request: pytest.FixtureRequest, with_docker: engines.Docker,
           with_podman: engines.Podman) -> engines.Engine:
    # Both named, not looked up: a module fixture set up inside a test (after the leak
    # check's first look) would count as that test's leak.
    return {"docker": with_docker, "podman": with_podman}[request.param]


def test_container_by_name(engine: engines.Engine) -> None:
    name, project, service = NAMED[engine.name]
    pid = engine.container_pid(name)
    _procs, spaces, table = _ls()
    mnt = _link(pid, "mnt")
    c = spaces[mnt]["container"]
    assert (c["engine"], c["name"], c["image"]) == (engine.name, name, engines.IMAGE)
    assert (c["project"], c["service"]) == (project, service)
    cid = engine.run("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert c["id"] == cid
    assert f"{engine.name}:{name}" in _row(table, mnt)
    assert _show(f"container:{name}/net")["ns"] == _link(pid, "net")
    assert _show(f"container:{cid[:10]}/uts")["ns"] == _link(pid, "uts")
    assert _show(f"container:{project}/{service}/mnt")["ns"] == mnt
    text = ok("show", f"container:{name}/mnt", "--no-view").stdout
    assert f"name {name}" in text and engines.IMAGE in text
    assert f"project {project} service {service}" in text
    # The container's namespaces are named by it (their display name, said once).
    assert f"mnt:[{mnt}] {engine.name}:{name}" in ok("tree").stdout


def test_podman_pod_shares_net_uts_ipc(with_podman: engines.Podman) -> None:
    a, b = with_podman.container_pid("pod-a"), with_podman.container_pid("pod-b")
    _procs, spaces, table = _ls()
    for link in ("net", "uts", "ipc"):
        ino = _link(a, link)
        assert _link(b, link) == ino
        c = spaces[ino]["container"]
        assert (c["id"], c["pod_name"]) == (None, "accp-pod"), link
        assert "pod:accp-pod" in _row(table, ino)
        assert _show(f"pod:accp-pod/{link}")["ns"] == ino
    assert spaces[_link(a, "mnt")]["container"]["name"] == "pod-a"
    assert spaces[_link(a, "mnt")]["container"]["pod_name"] == "accp-pod"
    err = nsctl("show", "pod:accp-pod/mnt")
    assert err.returncode == 1
    line = error_lines(err.stderr)[0]
    assert "do not share one mnt namespace" in line and "pod-a" in line and "pod-b" in line
    net = json.loads(ok("net", "--json").stdout)
    names = json.dumps(net)
    assert "pod:accp-pod" in names


def test_podman_api_socket(with_podman: engines.Podman, monkeypatch: pytest.MonkeyPatch) -> None:
    # With the state files out of reach, the names can only come from the API socket.
    monkeypatch.setenv("NSCTL_PODMAN_ROOT", "/nonexistent/nsctl-test")
    with_podman.start_service()
    try:
        pid = with_podman.container_pid("web1")
        assert _show("container:web1/net")["ns"] == _link(pid, "net")
        _procs, spaces, _table = _ls()
        assert spaces[_link(pid, "mnt")]["container"]["project"] == "shop"
        assert spaces[_link(with_podman.container_pid("pod-a"), "net")][
            "container"]["pod_name"] == "accp-pod"
    finally:
        with_podman.stop_service()


def test_podman_store_without_state_database(with_podman: engines.Podman, scratch: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A store with only the container list (no libpod database): names and images, no pods.
    root = scratch / "store"
    for entry in os.listdir(with_podman.root):
        if entry.endswith("-containers"):
            (root / entry).mkdir(parents=True)
            data = (Path(with_podman.root) / entry / "containers.json").read_bytes()
            (root / entry / "containers.json").write_bytes(data)
    monkeypatch.setenv("NSCTL_PODMAN_ROOT", str(root))
    pid = with_podman.container_pid("web1")
    _procs, spaces, _table = _ls()
    c = spaces[_link(pid, "mnt")]["container"]
    assert (c["name"], c["image"], c["project"]) == ("web1", engines.IMAGE, None)
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    root.rmdir()


# --- Docker ----------------------------------------------------------------------------------

def test_docker_ambiguous_names_list_the_candidates(with_docker: engines.Docker) -> None:
    one = with_docker.container_pid("db-1")
    assert _show("container:db-1/mnt")["ns"] == _link(one, "mnt")   # a whole name: no doubt
    for spec in ("container:db/net", "container:store/replica/net"):
        proc = nsctl("show", spec)
        assert proc.returncode == 1, proc.stdout
        line = error_lines(proc.stderr)
        # Two by name; another container whose random id starts with "db" is a third.
        assert len(line) == 1 and re.search(r"matches [23] containers", line[0]), proc.stderr
        assert "docker:db-1" in line[0] and "docker:db-2" in line[0]


def test_docker_hostile_label_is_shown_escaped(with_docker: engines.Docker) -> None:
    pid = with_docker.container_pid("odd")
    text = ok("show", "container:odd/mnt", "--no-view").stdout
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[31mred\\x07" in text
    assert _show("container:odd/mnt")["container"]["project"] == HOSTILE
    assert _show("container:odd/mnt")["ns"] == _link(pid, "mnt")


def test_stopped_engine_keeps_the_cgroup_labels(with_docker: engines.Docker, scratch: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # No socket where the engine's was (a stopped daemon): cgroup labels, one clear line.
    gone = scratch / "docker.sock"
    monkeypatch.setenv("NSCTL_DOCKER_SOCKET", str(gone))
    pid = with_docker.container_pid("web")
    cid = with_docker.run("inspect", "--format", "{{.Id}}", "web").stdout.strip()
    proc = nsctl("ls")
    assert proc.returncode == 0, proc.stderr
    assert f"nsctl: engine docker: no API socket at {gone} (No such file or directory) " \
           "(its containers show by id)" in proc.stderr.splitlines()
    assert f"docker:{cid[:12]}" in _row(proc.stdout, _link(pid, "mnt"))
    shown = nsctl("show", f"container:{cid[:8]}/net", "--json", "--no-view")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ns"] == _link(pid, "net")


def _silent_socket(path: Path, listen: bool) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    if listen:
        s.listen(8)
    return s


@pytest.mark.parametrize("listen", [True, False], ids=["slow", "refusing"])
def test_slow_or_refusing_engine_costs_a_bounded_time(with_docker: engines.Docker,
                                                      scratch: Path, listen: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = scratch / "docker.sock"
    s = _silent_socket(path, listen)
    try:
        monkeypatch.setenv("NSCTL_DOCKER_SOCKET", str(path))
        from nsctl.discovery import engines as lookup

        lookup.forget()
        problems: list[str] = []
        t0 = time.monotonic()
        assert lookup.ask(["docker"], problems.append) == {}
        took = time.monotonic() - t0
        assert took < lookup.BUDGET + 0.3, took   # the budget, and a loaded machine's slack
        assert len(problems) == 1 and problems[0].startswith(f"engine docker: {path}: ")
        proc = nsctl("ls")
        assert proc.returncode == 0 and "engine docker: " in proc.stderr
        assert "docker:" in proc.stdout
    finally:
        s.close()
        lookup.forget()
        path.unlink()


def _hostile_server(path: Path, answer: bytes) -> tuple[socket.socket, threading.Thread]:
    """A unix socket that answers every request with ``answer`` and closes."""
    s = _silent_socket(path, True)

    def serve() -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(answer)
                except OSError:
                    pass   # nsctl hung up: the answer was too big, as it should

    t = threading.Thread(target=serve)
    t.start()
    return s, t


def test_hostile_engine_answers(with_docker: engines.Docker, scratch: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket whose answers a container's owner could shape: names with control
    # characters (for the real container's id), nonsense, an endless body.
    cid = with_docker.run("inspect", "--format", "{{.Id}}", "web").stdout.strip()
    pid = with_docker.container_pid("web")
    items = json.dumps([{"Id": cid, "Names": ["/x\x1b]0;pwn\x07y"], "Image": 7,
                         "Labels": {"com.docker.compose.project": ["no"]}}, "junk", {"Id": 1}])
    body = items.encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    path = scratch / "docker.sock"
    monkeypatch.setenv("NSCTL_DOCKER_SOCKET", str(path))
    answers = {
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        "not json": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{[}",
        "error": b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        "huge": b"HTTP/1.1 200 OK\r\n\r\n" + b" " * (17 << 20),
        "not http": b"\x00\xff" * 100,
    }
    for what, answer in answers.items():
        s, t = _hostile_server(path, answer)
        try:
            proc = nsctl("ls")
        finally:
            s.close()
            socket.socket(socket.AF_UNIX).connect_ex(str(path))
            t.join()
            path.unlink()
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (what, proc.stderr)
        row = _row(proc.stdout, _link(pid, "mnt"))
        if what == "chunked":
            assert "docker:x\\x1b]0;pwn\\x07y" in row, row
            assert "\x1b" not in proc.stdout
        else:
            assert f"docker:{cid[:12]}" in row, (what, row)
            assert "nsctl: engine docker: " in proc.stderr, (what, proc.stderr)


def test_removed_and_renamed_containers_followed_by_ls_and_serve(
        with_docker: engines.Docker) -> None:
    d = with_docker
    d.run("run", "-d", "--name", "brief", "--network", "none", engines.IMAGE, *SLEEP)
    try:
        pid = d.container_pid("brief")
        mnt = _link(pid, "mnt")
        with running_server() as server:
            def label() -> str | None:
                doc = server.json("/api/v1/namespaces", params={"type": "mnt"})
                ns = next((n for n in doc["namespaces"] if n["ns"] == mnt), None)
                return ns["container"]["name"] if ns and ns["container"] else None

            wait_for(lambda: label() == "brief", "serve names the new container", 10)
            assert server.json("/api/v1/namespaces/container:brief/mnt")["ns"] == mnt
            shown = server.json("/api/v1/namespaces/container:store/db/net")
            assert shown["ns"] == _link(d.container_pid("web"), "net")
            d.run("rename", "brief", "briefer")
            t0 = time.monotonic()
            wait_for(lambda: label() == "briefer", "serve follows the rename", 10)
            renamed = time.monotonic() - t0
            assert "docker:briefer" in _row(ok("ls").stdout, mnt)
            d.rm("briefer")
            t0 = time.monotonic()
            wait_for(lambda: label() is None, "serve drops the removed container", 10)
            removed = time.monotonic() - t0
        assert renamed < 2.5 and removed < 2.5, (renamed, removed)
        assert "docker:brief" not in ok("ls").stdout   # (its inode may name another ns now)
    finally:
        d.run("rm", "-f", "brief", "briefer", check=False)
        engines.reap_orphans()


def test_bolt_reader_refuses_garbage(with_podman: engines.Podman) -> None:
    from nsctl.discovery.boltdb import Bolt, BoltError

    data = (Path(with_podman.root) / "libpod" / "bolt_state.db").read_bytes()
    bolt = Bolt(data)
    inline = 0

    def walk(where: int | bytes) -> int:
        nonlocal inline
        n = 0
        for _key, value, is_bucket in bolt.items(where):
            n += 1
            if is_bucket:
                sub = bolt.bucket(value)
                inline += isinstance(sub, bytes)
                n += walk(sub)
        return n

    assert walk(bolt.root) > 20              # every bucket of the real database reads,
    assert inline > 0                        # also those stored inline in their parent
    ids = {c.decode() for c in bolt.get([b"ctr"])}
    want = with_podman.run("ps", "-a", "--no-trunc", "--format", "{{.ID}}").stdout.split()
    assert ids == set(want)
    for bad in (b"", b"\0" * 8192, data[:4096], data[:9000] + b"\xff" * 8192):
        try:
            Bolt(bad).get([b"ctr"])
        except BoltError:
            pass


def test_watch_names_a_container_born_and_gone(with_docker: engines.Docker) -> None:
    from test_watch import Watch

    d = with_docker
    with Watch() as w:
        try:
            d.run("run", "-d", "--name", "newborn", "--network", "none", engines.IMAGE, *SLEEP)
            mnt = _link(d.container_pid("newborn"), "mnt")
            born = w.wait_for(event="born", ns=mnt, type="mnt")
            assert born["container"]["name"] == "newborn"
            assert born["cause"].endswith(" in docker:newborn"), born
            d.rm("newborn")
            gone = w.wait_for(event="gone", ns=mnt, type="mnt")
            seen = [e for e in w.seen if e["ns"] == mnt]
            assert (gone.get("container") or {}).get("name") == "newborn", seen
        finally:
            d.run("rm", "-f", "newborn", check=False)
            engines.reap_orphans()
        w.stop()


def test_a_podman_rename_is_followed_by_serve(with_podman: engines.Podman) -> None:
    """serve follows a Podman rename within seconds.  (Podman sends nsctl no events; a
    rename through its API service makes no process event either, so the refresher also
    asks Podman again every second while it has Podman containers.)"""
    p = with_podman
    before = engines.monitors()
    p.run("run", "-d", "--name", "loner", "--network", "none", engines.IMAGE, *SLEEP)
    try:
        mnt = _link(p.container_pid("loner"), "mnt")
        with running_server() as server:
            def name() -> str | None:
                doc = server.json("/api/v1/namespaces", params={"type": "mnt"})
                ns = next((n for n in doc["namespaces"] if n["ns"] == mnt), None)
                return ns["container"]["name"] if ns and ns["container"] else None

            wait_for(lambda: name() == "loner", "serve names the new container", 10)
            p.run("rename", "loner", "loner2")
            t0 = time.monotonic()
            wait_for(lambda: name() == "loner2", "serve follows the Podman rename", 10)
            renamed = time.monotonic() - t0
        assert renamed < 3.5, renamed
    finally:
        for left in ("loner", "loner2"):   # (podman rm stops at a name it doesn't know)
            p.run("rm", "-f", "-t", "0", left, check=False)
        engines.reap_orphans(wait=5.0, keep=before)
