"""nsctl serve: a real server process, real namespaces, real clients.

The fixtures (tests/support/) build namespaces and learn their inodes from
the kernel; the tests check that the API reports them, follows them as they
come and go (also over the event stream), and refuses the wrong callers.
Each test starts its own server (tests/support/serve.py) and stops it with
SIGTERM, so nothing outlives the test.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import netns_tag
from support import cli, namespaces, nsfacts, processes, root_only, syscalls
from support.serve import EventReader, Server, helpers, running_server, stop

nsctl = cli.run_nsctl

TOKEN = "s3cret-token-for-the-tests-0123"


def inodes(doc: dict) -> dict[int, dict]:
    return {d["ns"]: d for d in doc["namespaces"]}


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def public_dir():
    """A directory under /run that any uid can reach (the socket for another uid's
    client; tmp_path is private to root)."""
    path = tempfile.mkdtemp(prefix=netns_tag(), dir="/run")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- what the API reports ---------------------------------------------------------------

@root_only
def test_reports_fixture_namespaces_by_every_spec(scratch: Path) -> None:
    with namespaces.netns_bindmount(scratch) as pinned, \
            namespaces.unshare_command(["--uts", "--ipc"]) as cmd, \
            running_server() as server:
        uts = nsfacts.link_ino(cmd.child, "uts")
        ipc = nsfacts.link_ino(cmd.child, "ipc")
        doc = server.json("/api/v1/namespaces")
        found = inodes(doc)
        assert found[pinned.net.ino]["type"] == "net"
        assert {"kind": "bindmount", "path": pinned.path, "mntns": pinned.mntns} in \
            found[pinned.net.ino]["refs"]
        assert found[uts]["type"] == "uts" and cmd.child in found[uts]["pids"]
        assert found[ipc]["type"] == "ipc"
        assert any(p["pid"] == cmd.child for p in doc["processes"])

        # Filters: type, pid (the child's namespaces as /proc shows them), q.
        nets = server.json("/api/v1/namespaces", params={"type": "net"})
        assert {d["type"] for d in nets["namespaces"]} == {"net"}
        assert pinned.net.ino in inodes(nets)
        both = server.json("/api/v1/namespaces", params=[("type", "uts"), ("type", "ipc")])
        assert {uts, ipc} <= set(inodes(both)) and \
            {d["type"] for d in both["namespaces"]} == {"uts", "ipc"}
        links = {nsfacts.link_ino(cmd.child, link) for link in syscalls.NS_LINKS
                 if os.path.exists(f"/proc/{cmd.child}/ns/{link}")}
        assert set(inodes(server.json("/api/v1/namespaces",
                                      params={"pid": cmd.child}))) == links
        by_path = server.json("/api/v1/namespaces", params={"q": scratch.name})
        assert pinned.net.ino in inodes(by_path)
        assert inodes(server.json("/api/v1/namespaces", params={"q": "no such thing x"})) == {}

        # One namespace by each SPEC form the API takes.
        for spec in (str(pinned.net.ino), f"net:[{pinned.net.ino}]"):
            assert server.json(f"/api/v1/namespaces/{spec}")["ns"] == pinned.net.ino
        if pinned.net.id is not None:
            assert server.json(f"/api/v1/namespaces/{pinned.net.id}")["ns"] == pinned.net.ino
        shown = server.json(f"/api/v1/namespaces/{cmd.child}/uts")
        assert shown["ns"] == uts and cmd.child in [p["pid"] for p in shown["processes"]]
        # By its display name (its leading process), with the type.
        lead = min(shown["pids"])
        assert shown["name"] == f"{processes.comm(lead)}({lead})"
        assert server.json(f"/api/v1/namespaces/{shown['name']}/uts")["ns"] == uts
        path = shown["stable_path"]
        assert server.json(f"/api/v1/namespaces/{path}")["ns"] == uts         # //user.0/...
        assert server.json("/api/v1/namespaces/" + path.replace("/", "%2F"))["ns"] == uts


def test_spec_errors_are_one_line() -> None:
    with running_server() as server:
        cases = {
            "999999999999": 404,                  # no such inode or id
            "net:[999999999999]": 404,
            "4194303/net": 404,                   # above pid_max: no such process
            "/user.0/net.999": 404,
            "uts:[1]x": 400,
            "bogus:[1]": 400,
            "1/bogus": 400,
            "%2Fproc%2F1%2Fns%2Fnet": 400,       # a file path: refused from clients
            "%2Frun%2Fnetns%2Fx": 400,
            "..%2F..%2Fetc%2Fpasswd": 400,
            "etc/passwd": 400,
            "hello": 404,                         # a name, of no namespace
        }
        for spec, status in cases.items():
            r = server.get(f"/api/v1/namespaces/{spec}")
            assert r.status_code == status, (spec, r.status_code, r.text)
            body = r.json()
            assert list(body) == ["error"] and "\n" not in body["error"], body
        assert server.get("/api/v1/namespaces", params={"type": "bogus"}).status_code == 400
        assert server.get("/api/v1/namespaces", params={"pid": "x"}).status_code == 400
        assert server.get("/api/v1/nothing-here").json() == {"error": "not found"}


def test_documents_of_the_commands() -> None:
    with running_server("--view-timeout", "600") as server:
        status = server.json("/api/v1/status")
        assert status["generation"] >= 1 and status["host"] == os.uname().nodename
        assert status["kernel"] == os.uname().release and status["trigger"] in ("cn_proc", "poll")
        assert 0 <= status["age"] < 60 and status["scan_seconds"] > 0
        own_net = os.stat("/proc/self/ns/net").st_ino
        tree = server.json("/api/v1/tree")
        assert tree["tree"] and "partial" in tree

        def walk(nodes):
            for n in nodes:
                yield n
                yield from walk(n["children"])

        assert own_net in {n.get("ns") for n in walk(tree["tree"])}
        pidtree = server.json("/api/v1/pidtree")
        assert os.stat("/proc/self/ns/pid").st_ino in {n["ns"] for n in
                                                       walk(pidtree["pid_namespaces"])}
        procs = server.json("/api/v1/processes")["processes"]
        assert os.getpid() in {p["pid"] for p in procs}
        snap = server.json("/api/v1/snapshot")
        assert snap["schema"] == "nsctl-snapshot" and snap["host"] == os.uname().nodename
        # The topology needs every network namespace's view: slow when other tests
        # on this machine hold a thousand of them.
        net = server.json("/api/v1/net", timeout=600)
        here = [n for n in net["namespaces"] if n["ns"] == own_net]
        assert here and here[0]["ours"] is True
        # Our own namespace's devices, as our own sysfs lists them.
        assert {i["name"] for i in here[0]["interfaces"]} == set(os.listdir("/sys/class/net"))


@root_only
def test_view_is_read_outside_the_server(scratch: Path) -> None:
    with namespaces.netns_bindmount(scratch) as pinned, running_server() as server:
        doc = server.json(f"/api/v1/namespaces/{pinned.net.ino}", params={"view": 1})
        view = doc["view"]
        assert view["type"] == "net"
        # A fresh network namespace has only its loopback device.
        assert [i["name"] for i in view["interfaces"]] == ["lo"]
        mine = {link: os.stat(f"/proc/self/ns/{link}").st_ino for link in ("net", "mnt")}
        theirs = {link: os.stat(f"/proc/{server.popen.pid}/ns/{link}").st_ino
                  for link in ("net", "mnt")}
        assert theirs == mine   # the server process itself never entered anything
        shown = server.json(f"/api/v1/namespaces/{pinned.net.ino}")
        assert "view" not in shown
        # The document nsctl show prints, from its own scan.  What others on this machine
        # do meanwhile may differ between the two scans: a stable path shifts when their
        # namespaces come and go, and their tools' forked children visit every network
        # namespace for a moment (process references).
        cli = json.loads(nsctl("show", str(pinned.net.ino), "--json", "--no-view").stdout)
        for doc in (shown, cli):
            for key in ("stable_path", "pids", "processes", "held_by", "hidden"):
                doc.pop(key)
            doc["refs"] = [r for r in doc["refs"] if r["kind"] == "bindmount"]
        assert shown == cli and shown["refs"]


@root_only
def test_the_servers_own_processes_are_left_out(scratch: Path) -> None:
    """Neither the server nor its helpers (the launcher, the refresher, the workers that
    read views and what they fork to enter namespaces) show in what it serves: no
    process, no holder."""
    with namespaces.netns_bindmount(scratch) as pinned, \
            running_server("--max-age", "1") as server:
        server.json(f"/api/v1/namespaces/{pinned.net.ino}", params={"view": 1})
        server.json("/api/v1/net", timeout=600)
        ours = {server.popen.pid, *processes.descendants(server.popen.pid)}
        assert len(ours) >= 5, ours   # the server, the launcher, a refresher, two workers
        # A namespace made after the helpers started: the model that has it was
        # scanned with them running.
        with namespaces.netns_bindmount(scratch, name="later", how="unshare") as later:
            wait_until(lambda: later.net.ino in inodes(server.json("/api/v1/namespaces")),
                       15, "the new namespace in the model")
            server.json(f"/api/v1/namespaces/{pinned.net.ino}", params={"view": 1})
            snap = server.json("/api/v1/snapshot")
            listed = server.json("/api/v1/namespaces")
        assert not {p["pid"] for p in snap["processes"]} & ours
        assert os.getpid() in {p["pid"] for p in snap["processes"]}   # (not its parents')
        assert not {r.get("pid") for ns in snap["namespaces"] for r in ns["refs"]} & ours
        assert not {pid for ns in listed["namespaces"] for pid in ns.get("pids", ())} & ours


# --- following changes -------------------------------------------------------------------

@root_only
@pytest.mark.parametrize("trigger", ["cnproc", "poll"])
def test_namespace_appears_and_goes_within_max_age(scratch: Path, trigger: str) -> None:
    max_age = 1.0
    args = ["--max-age", str(max_age), "--keepalive", "0.5"] + \
        (["--no-cnproc"] if trigger == "poll" else [])
    with running_server(*args) as server, EventReader(server) as events:
        events.wait_for(lambda kind, data: kind == "generation", 10)
        gen = server.json("/api/v1/status")["generation"]
        # A bind mount makes no process event: only the periodic rescan sees it.
        with namespaces.netns_bindmount(scratch, how="unshare") as pinned:
            ino = pinned.net.ino
            made = time.monotonic()
            wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")),
                       max_age + 5, "the new namespace in the list")
            seen = time.monotonic() - made
            born = events.wait_for(lambda kind, data: kind == "born" and data["ns"] == ino, 10)
            assert born[1]["type"] == "net"
            events.wait_for(lambda kind, data: kind == "generation" and
                            data["generation"] > gen, 10)
        gone_at = time.monotonic()
        wait_until(lambda: ino not in inodes(server.json("/api/v1/namespaces")),
                   max_age + 5, "the namespace gone from the list")
        events.wait_for(lambda kind, data: kind == "gone" and data["ns"] == ino, 10)
        assert seen < max_age + 3 and time.monotonic() - gone_at < max_age + 3
        wait_until(lambda: events.comments >= 1, 5, "a keep-alive comment")
        metrics = server.get("/metrics").text
        assert 'nsctl_events_total{kind="born"}' in metrics


@root_only
def test_net_views_are_kept_across_models_and_a_new_namespace_is_read_alone(
        scratch: Path) -> None:
    """/api/v1/net reads a network namespace new to the model at once, and keeps the
    views it read before (their read_at stays) until they are older than --max-age:
    reading every one again for each model took seconds on a host with a thousand."""
    own = os.stat("/proc/self/ns/net").st_ino
    with running_server("--max-age", "20", "--view-timeout", "600") as server:
        first = inodes(server.json("/api/v1/net", timeout=600))
        assert first[own]["read_at"]
        with namespaces.netns_bindmount(scratch, how="unshare") as pinned:
            ino = pinned.net.ino
            # The list follows within the periodic rescan (max age 20 s); then /net has it.
            wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")), 40,
                       "the new namespace in the model")
            second = inodes(server.json("/api/v1/net", timeout=600))
            assert [i["name"] for i in second[ino]["interfaces"]] == ["lo"]
            assert second[ino]["read_at"] >= first[own]["read_at"]
            assert second[own]["read_at"] == first[own]["read_at"]   # kept, not read again
            assert second[own]["interfaces"] == first[own]["interfaces"]
        gone = wait_until(lambda: ino not in (net := inodes(server.json(
            "/api/v1/net", timeout=600))) and net, 40, "the namespace gone from /net")
        assert gone[own]["read_at"] == first[own]["read_at"]
    with running_server("--max-age", "1", "--view-timeout", "600") as server:
        first = inodes(server.json("/api/v1/net", timeout=600))[own]["read_at"]
        # Older than the max age (or 5 times what reading them all took): read again.
        wait_until(lambda: inodes(server.json("/api/v1/net", timeout=600))[own]["read_at"]
                   > first, 60, "our namespace's view read again")


@root_only
def test_diff_posted_and_since(scratch: Path) -> None:
    with running_server("--max-age", "1") as server:
        before = server.get("/api/v1/snapshot").content
        time.sleep(1.5)
        t0 = time.time()
        with namespaces.unshare_command(["--net"]) as cmd:
            ino = nsfacts.link_ino(cmd.child, "net")
            wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")), 10,
                       "the new namespace")
            with server.client() as c:
                r = c.post("/api/v1/diff", content=before,
                           headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            assert ino in {d["ns"] for d in r.json()["appeared"]}
            since = server.json("/api/v1/diff", params={"since": f"{time.time() - t0 + 0.5:.3f}"})
            assert ino in {d["ns"] for d in since["appeared"]}
            assert since["from"]["generation"] < since["to"]["generation"]
            iso = datetime.fromtimestamp(t0 - 0.3, UTC).isoformat()
            assert ino in {d["ns"] for d in server.json("/api/v1/diff",
                                                        params={"since": iso})["appeared"]}
        with server.client() as c:
            assert c.post("/api/v1/diff", content=b"{not json",
                          headers={"Content-Type": "application/json"}).status_code == 400
            bad = c.post("/api/v1/diff", json={"schema": "something-else"})
            assert bad.status_code == 400 and "not an nsctl snapshot" in bad.json()["error"]
        assert server.get("/api/v1/diff", params={"since": "86400"}).status_code == 404
        assert server.get("/api/v1/diff", params={"since": "yesterday"}).status_code == 400


# --- the service around the API --------------------------------------------------------------

def test_openapi_validates_and_no_external_docs() -> None:
    from openapi_spec_validator import validate

    with running_server() as server:
        doc = server.json("/openapi.json")
        validate(doc)
        for path in ("/api/v1/status", "/api/v1/namespaces", "/api/v1/namespaces/{spec}",
                     "/api/v1/tree", "/api/v1/pidtree", "/api/v1/net", "/api/v1/processes",
                     "/api/v1/snapshot", "/api/v1/diff", "/api/v1/events", "/metrics"):
            assert path in doc["paths"], path
        assert "/api/v1/pins" not in doc["paths"]       # no ops without --allow-ops
        for page in ("/docs", "/redoc"):
            assert server.get(page).status_code == 404


def test_the_openapi_document_says_what_the_server_answers(scratch: Path) -> None:
    """Errors are 400 {"error"} where FastAPI would document 422, the token is declared,
    /metrics is text, and a refusal the guard makes is one the document lists, with the
    error schema (schemathesis checks every route's answers: test_hostile_serve)."""
    token = scratch / "token"
    token.write_text("t0ken-for-the-openapi-test\n")
    token.chmod(0o600)
    with running_server("--token-file", str(token), token="t0ken-for-the-openapi-test") as server:
        doc = server.json("/openapi.json")
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                assert "422" not in op["responses"], (method, path)
                if path != "/healthz":
                    assert {"bearer": []} in op["security"] and "401" in op["responses"]
        assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == \
            ["text/plain"]
        with server.client() as anonymous:
            refused = anonymous.get("/api/v1/namespaces")
        assert refused.status_code == 401 and set(refused.json()) == {"error"}
        bad = server.get("/api/v1/namespaces?pid=-1")
        assert bad.status_code == 400 and set(bad.json()) == {"error"}
        listed = doc["paths"]["/api/v1/namespaces"]["get"]["responses"]
        assert listed["400"]["content"]["application/json"]["schema"] == \
            {"$ref": "#/components/schemas/Error"}


def test_metrics_parse() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with running_server() as server:
        r = server.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        by_type = {s.labels["type"]: s.value for s in families["nsctl_namespaces"].samples}
        assert set(by_type) == {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}
        assert all(v >= 1 for v in by_type.values())      # the host's own, at least
        held = {s.labels["kind"]: s.value for s in families["nsctl_namespaces_held"].samples}
        assert held["process"] >= 8
        assert families["nsctl_processes"].samples[0].value >= 1
        assert "nsctl_namespaces_hidden" in families
        duration = {s.name: s.value for s in families["nsctl_discovery_duration_seconds"].samples}
        assert duration["nsctl_discovery_duration_seconds_count"] >= 1
        assert families["nsctl_refresh_errors"].type == "counter"
        routes = {s.labels["route"] for s in
                  families["nsctl_http_request_duration_seconds"].samples}
        assert "/api/v1/status" in routes           # the requests that waited for a model
        kinds = {s.labels["kind"] for s in families["nsctl_events"].samples}
        assert kinds == {"born", "gone", "entered", "left", "pinned", "unpinned", "held",
                         "released"}


def test_static_page_and_paths() -> None:
    with running_server() as server, server.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert c.get("/api/v1/status").headers["cache-control"] == "no-store"
        static = Path(__file__).parent.parent / "src/nsctl/serve/static"
        js = sorted(p.name for p in static.glob("*.js"))
        if js:
            r = c.get(f"/static/{js[0]}")
            assert r.status_code == 200 and "javascript" in r.headers["content-type"]
        for bad in ("/static/..%2F__init__.py", "/static/%2E%2E%2Fapp.py", "/static/.x",
                    "/static/nonexistent.js", "/static/../app.py"):
            assert c.get(bad).status_code == 404, bad


def test_token_checked_on_every_api_request(scratch: Path) -> None:
    token_file = scratch / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with running_server("--token-file", str(token_file), token=TOKEN) as server:
        for path in ("/api/v1/status", "/api/v1/namespaces", "/metrics", "/openapi.json",
                     "/api/v1/namespaces/1"):
            with server.client() as c:
                assert c.get(path).status_code == 401, path
            with server.client("wrong-" + TOKEN) as c:
                assert c.get(path).status_code == 401, path
            with server.client(TOKEN[:-1]) as c:
                assert c.get(path).status_code == 401, path
        with server.client() as c:
            assert c.get("/api/v1/status", params={"token": TOKEN}).status_code == 401
            assert c.get("/").status_code == 200     # the page itself asks for the token
            # With a token, any Host name is fine (a name in front of a proxy).
            r = c.get("/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}",
                                                 "Host": "nsctl.example"})
            assert r.status_code == 200
        with server.client(TOKEN) as c:
            assert c.get("/api/v1/status").status_code == 200
            assert c.get("/metrics").status_code == 200
        # EventSource cannot send headers: the stream takes ?token=.
        assert server.url is not None
        host = server.url.split("//")[1]
        hostname, port = host.rsplit(":", 1)
        with socket.create_connection((hostname, int(port))) as s:
            s.sendall(f"GET /api/v1/events?token={TOKEN} HTTP/1.0\r\nHost: {host}\r\n\r\n"
                      .encode())
            assert s.recv(100).split()[1] == b"200"


def test_loopback_without_token_checks_host() -> None:
    with running_server() as server, server.client() as c:
        assert c.get("/api/v1/status").status_code == 200
        r = c.get("/api/v1/status", headers={"Host": "attacker.example"})
        assert r.status_code == 421 and "error" in r.json()


def test_rate_and_size_limits() -> None:
    with running_server("--rate", "1", "--burst", "5", "--max-body", "1000") as server, \
            server.client() as c:
        # Waiting for the first model used up some of the burst: take what is left.
        wait_until(lambda: c.get("/api/v1/status").status_code == 200, 10, "a token")
        codes = [c.get("/api/v1/status").status_code for _ in range(8)]
        assert 429 in codes and set(codes) <= {200, 429}
        r = c.get("/api/v1/status")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json() == {"error": "too many requests"}
        time.sleep(1.2)
        big = c.post("/api/v1/diff", content=b"x" * 5000,
                     headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and "larger than 1000" in big.json()["error"]


def test_start_and_stop_cleanly(scratch: Path) -> None:
    sock = str(scratch / "api.sock")
    started = time.monotonic()
    with running_server("--keepalive", "60", unix=sock, ready=False) as server:
        # Listening at once: the first request may come before the first scan ends.
        r = server.get("/api/v1/status")
        assert r.status_code in (200, 503)
        assert time.monotonic() - started < 30
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        wait_until(lambda: server.get("/api/v1/status").status_code == 200, 60, "a model")
        with EventReader(server) as events:
            events.wait_for(lambda kind, data: kind == "generation", 10)
            # SIGTERM with a stream open: the stream ends, the server exits 0 promptly.
            t = time.monotonic()
            assert stop(server.popen) == 0
            assert time.monotonic() - t < 8
            wait_until(lambda: events.ended, 5, "the event stream to end")
    assert not os.path.exists(sock)


def test_started_from_python(scratch: Path) -> None:
    """The service without the command line: a Config and run() in a fresh interpreter
    serve the status on a unix socket, and SIGTERM stops it cleanly (status 0, its
    helper processes gone, the socket file removed)."""
    sock = str(scratch / "py.sock")
    code = ("import sys\n"
            "from nsctl.serve.config import Config\n"
            "from nsctl.serve.run import run\n"
            f"sys.exit(run(Config(unix={sock!r}, max_age=2.0)))\n")
    popen = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(popen, None, sock)
    assert popen.stderr is not None   # stderr=PIPE
    try:
        wait_until(lambda: os.path.exists(sock) or popen.poll() is not None, 30, "the socket")
        assert popen.poll() is None, popen.stderr.read().decode()
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        wait_until(lambda: server.get("/api/v1/status").status_code == 200, 60, "a model")
        assert server.json("/api/v1/status")["generation"] >= 1
        running = helpers(server)
        assert {"launcher", "refresher"} <= set(running), running
    finally:
        status = stop(popen)
    assert status == 0
    assert not os.path.exists(sock)
    for pid in running.values():
        assert not os.path.exists(f"/proc/{pid}"), pid


def test_config_errors_from_python_are_the_command_lines(scratch: Path) -> None:
    """A Config made in Python refuses what the command line refuses, with the same
    line, and says which option it was."""
    from nsctl.serve.config import Config, ConfigError

    token = scratch / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    cases: list[tuple[dict[str, Any], str, str]] = [
             ({"listen": "0.0.0.0:0"}, "--listen", "--listen 0.0.0.0:0"),
             ({"listen": "nonsense"}, "--listen", "--listen nonsense"),
             ({"listen": "127.0.0.1:0", "token_file": str(token)}, "--token-file",
              f"--listen 127.0.0.1:0 --token-file {token}"),
             ({"unix": "x.sock", "unix_mode": 0o1777}, "--unix-mode",
              "--unix x.sock --unix-mode 1777"),
             ({"unix": "x.sock", "unix_mode": "9"}, "--unix-mode",
              "--unix x.sock --unix-mode 9"),
             ({"max_age": 0}, "--max-age", "--max-age 0"),
             ({"allow_ops": True}, "--allow-ops", "--allow-ops")]
    for settings, option, argv in cases:
        with pytest.raises(ConfigError) as caught:
            Config(**settings)
        r = nsctl("serve", *argv.split())
        assert r.returncode == 1 and r.stderr == f"nsctl: {caught.value}\n", (argv, r.stderr)
        assert caught.value.option == option and caught.value.cause in r.stderr


# What the one line says -> the options that make nsctl serve say it.
BAD_OPTIONS = {
    "not a loopback address": "--listen 0.0.0.0:0",
    "write ADDR:PORT": "--listen nonsense",
    "at least 16": "--listen 127.0.0.1:0 --token short",
    "No such file": "--listen 127.0.0.1:0 --token-file /nonexistent/token",
    "needs --unix": "--allow-ops",
    "must be positive": "--max-age 0",
    "--unix /nonexistent-dir/x.sock: No such file": "--unix /nonexistent-dir/x.sock",
    "/nonexistent/cert.pem: No such file":
        "--listen 127.0.0.1:0 --no-token --tls-cert /nonexistent/cert.pem",
    "apply to TCP": "--token-file /nonexistent/token",
    "--tls-key needs --tls-cert": "--tls-key /nonexistent/key.pem",
    "writable by group or others": "--unix x.sock --allow-ops --pin-dir /tmp",
}


@pytest.mark.parametrize("message", BAD_OPTIONS)
def test_bad_options_are_one_line(message: str) -> None:
    r = nsctl("serve", *BAD_OPTIONS[message].split())
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_port_in_use_and_world_readable_token(scratch: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = nsctl("serve", "--listen", f"127.0.0.1:{port}", "--no-token")
        assert r.returncode == 1 and r.stderr.count("\n") == 1
        assert "address already in use" in r.stderr.lower(), r.stderr
    token = scratch / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    r = nsctl("serve", "--listen", "127.0.0.1:0", "--token-file", str(token))
    assert r.returncode == 1 and "lets others read or change it" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_help_does_not_import_the_web_stack() -> None:
    code = ("import sys, contextlib, io\n"
            "from nsctl.cli.main import main\n"
            "for argv in (['--help'], ['serve', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main(argv)\n"
            "        except SystemExit:\n"
            "            pass\n"
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


# --- the unix socket: peer credentials and operations ------------------------------------------

NOBODY = 65534


def _as_nobody(sock: str, request: bytes, groups: Sequence[int] = ()) -> tuple[int, dict]:
    """The request sent by a process running as uid/gid 65534 (connects as that uid),
    with only ``groups`` as its supplementary groups."""
    code = ("import json, sys\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from support.serve import raw_request\n"
            f"print(json.dumps(raw_request({sock!r}, {request!r})))\n")
    grouping = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", *grouping,
                        sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    status, body = json.loads(r.stdout)
    return status, body


def _pinned_as_nobody(server, sock: str, ino: int, target: str, groups: Sequence[int] = ()) -> None:
    """Pin net:[ino] at ``target`` as uid 65534 (with ``groups``): it must work; then
    unpin it as root."""
    status, body = _as_nobody(sock, _post_pin(f"net:[{ino}]", target), groups)
    try:
        assert status == 201, body
        assert os.stat(target).st_ino == ino
    finally:
        with server.unix_client() as c:
            r = c.delete("/api/v1/pins", params={"path": target})
    assert r.status_code == 200 and not os.path.lexists(target)


def _post_pin(spec: str, path: str) -> bytes:
    body = json.dumps({"spec": spec, "path": path}).encode()
    return (f"POST /api/v1/pins HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@root_only
def test_peer_credentials_decide_operations(public_dir: str, scratch: Path) -> None:
    sock = os.path.join(public_dir, "ops.sock")
    pins = scratch / "pins"
    pins.mkdir()
    with namespaces.unshare_command(["--net"]) as cmd, \
            running_server("--allow-ops", "--unix-mode", "0666", "--pin-dir", str(pins),
                           unix=sock) as server:
        ino = nsfacts.link_ino(cmd.child, "net")
        wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")), 10, "the netns")
        target = str(pins / "blue")
        # Another uid: may read (the socket's mode let it connect), may not operate.
        status, body = _as_nobody(sock, b"GET /api/v1/status HTTP/1.0\r\nHost: x\r\n\r\n")
        assert status == 200 and body["ops"] is True
        status, body = _as_nobody(sock, _post_pin(f"net:[{ino}]", target))
        assert status == 403 and f"uid {NOBODY}" in body["error"]
        assert not os.path.lexists(target)
        # Ops are not served on TCP at all.
        with server.client() as c:
            assert c.post("/api/v1/pins", json={"spec": str(ino), "path": target}
                          ).status_code == 404
        # Root: pinned, as the kernel shows (the file is that namespace), then undone.
        with server.unix_client() as c:
            from openapi_spec_validator import validate

            spec = c.get("/openapi.json").json()
            validate(spec)
            assert {"post", "delete"} <= set(spec["paths"]["/api/v1/pins"])
            r = c.post("/api/v1/pins", json={"spec": f"net:[{ino}]", "path": target})
            assert r.status_code == 201, r.text
            try:
                assert os.stat(target).st_ino == ino
                again = c.post("/api/v1/pins", json={"spec": f"net:[{ino}]", "path": target})
                assert again.status_code == 409 and "already exists" in again.json()["error"]
            finally:
                r = c.delete("/api/v1/pins", params={"path": target})
            assert r.status_code == 200, r.text
            assert not os.path.lexists(target)
            # Not a pin: refused, and the file stays.
            plain = pins / "plain"
            plain.write_text("")
            r = c.delete("/api/v1/pins", params={"path": str(plain)})
            assert r.status_code == 409 and plain.exists()
            plain.unlink()


@root_only
def test_pin_paths_are_checked(public_dir: str, scratch: Path) -> None:
    sock = os.path.join(public_dir, "ops.sock")
    pins = scratch / "pins"
    pins.mkdir()
    (pins / "sub").mkdir()
    os.symlink("/etc", pins / "link")
    bad = [f"{pins}/../escape", f"{pins}/sub/x", f"{pins}/link/x", f"{pins}/.hidden",
           f"{pins}//x", "relative/x", "/etc/x", f"{pins}/..", f"{pins}/", "",
           "/run/netns/x", f"{pins}/a\nb"]
    try:
        with running_server("--allow-ops", "--pin-dir", str(pins), unix=sock,
                            tcp=False) as server, \
                server.unix_client() as c:
            own = os.stat("/proc/self/ns/net").st_ino
            for path in bad:
                r = c.post("/api/v1/pins", json={"spec": f"net:[{own}]", "path": path})
                assert r.status_code == 400, (path, r.status_code, r.text)
                r = c.delete("/api/v1/pins", params={"path": path})
                assert r.status_code == 400, (path, r.status_code, r.text)
            assert c.post("/api/v1/pins", json={"spec": "/proc/self/ns/net",
                                                "path": f"{pins}/ok"}).status_code == 400
            assert c.post("/api/v1/pins", content=b"[1]",
                          headers={"Content-Type": "application/json"}).status_code == 400
            assert sorted(os.listdir(pins)) == ["link", "sub"]
            assert not os.path.exists("/escape") and not os.path.exists("/etc/x")
    finally:
        (pins / "link").unlink()
        (pins / "sub").rmdir()


def test_helpers_follow_a_killed_server(scratch: Path) -> None:
    """SIGKILL leaves the server no chance to clean up: its helper processes notice and
    exit by themselves, and the next server replaces the stale socket file."""
    sock = str(scratch / "api.sock")
    with running_server("--max-age", "1", unix=sock) as server:
        assert server.get("/api/v1/namespaces/1", params={"view": 1}).status_code in (200, 404)
        started = helpers(server)
        assert set(started) == {"launcher", "refresher", "worker"}, started
        # A second server cannot take a socket that one is listening on.
        r = nsctl("serve", "--unix", sock)
        assert r.returncode == 1 and "another server is listening" in r.stderr
        server.popen.kill()
        server.popen.wait()
        deadline = time.monotonic() + 15
        left = set(started.values())
        while left and time.monotonic() < deadline:
            for pid in list(left):
                # Orphans come to us (the tests run as a child subreaper when root).
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid if not os.path.exists(f"/proc/{pid}") else 0
                if done:
                    left.discard(pid)
            time.sleep(0.05)
        assert not left, f"helpers still running after their server died: {left}"
    assert os.path.exists(sock)                    # nobody removed it...
    with running_server(unix=sock, tcp=False) as again:   # ...and the next server may
        assert again.get("/api/v1/status").status_code == 200
    assert not os.path.exists(sock)


def test_tls(scratch: Path) -> None:
    cert, key = scratch / "cert.pem", scratch / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    try:
        with running_server("--tls-cert", str(cert), "--tls-key", str(key), "--token", TOKEN,
                            ready=False) as server:
            assert server.url is not None and server.url.startswith("https://")
            with httpx.Client(base_url=server.url, verify=False, timeout=30,
                              headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                wait_until(lambda: c.get("/api/v1/status").status_code == 200, 60, "a model")
                assert c.get("/api/v1/namespaces").status_code == 200
            plain = "http://" + server.url.split("://", 1)[1]
            with pytest.raises(httpx.HTTPError):
                httpx.get(plain + "/api/v1/status", timeout=10)
    finally:
        cert.unlink()
        key.unlink()


def test_a_dead_refresher_is_replaced() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with running_server("--max-age", "1") as server:
        refresher = helpers(server)
        assert set(refresher) == {"launcher", "refresher"}, refresher   # no worker yet
        os.kill(refresher["refresher"], signal.SIGKILL)
        before = server.json("/api/v1/status")["generation"]

        def replaced() -> bool:
            now = helpers(server).get("refresher")
            return now is not None and now != refresher["refresher"] and \
                server.json("/api/v1/status")["refresh_errors"] >= 1
        wait_until(replaced, 30, "a new refresher")
        # Still served meanwhile, and new scans arrive from the new one.
        assert server.get("/api/v1/namespaces").status_code == 200
        def scans() -> float:
            return next(s.value for f in text_string_to_metric_families(
                server.get("/metrics").text) for s in f.samples
                if s.name == "nsctl_discovery_duration_seconds_count")

        count = scans()
        wait_until(lambda: scans() > count, 30, "a scan by the new refresher")
        assert server.json("/api/v1/status")["generation"] >= before


def test_a_stuck_refresher_is_replaced() -> None:
    with running_server("--max-age", "0.5", "--refresher-timeout", "2") as server:
        first = [helpers(server)["refresher"]]
        os.kill(first[0], signal.SIGSTOP)          # a scan that never ends, as seen from outside
        try:
            def replaced() -> bool:
                now = helpers(server).get("refresher")
                return now is not None and now != first[0]
            wait_until(replaced, 30, "the stuck refresher replaced")
        finally:
            if os.path.exists(f"/proc/{first[0]}"):
                os.kill(first[0], signal.SIGCONT)
        assert server.json("/api/v1/status")["refresh_errors"] >= 1
        wait_until(lambda: server.json("/api/v1/status")["age"] < 2, 30, "fresh scans again")


@root_only
def test_ops_group_may_pin(public_dir: str, scratch: Path) -> None:
    import grp

    group = grp.getgrgid(NOBODY).gr_name
    sock = os.path.join(public_dir, "ops.sock")
    pins = scratch / "pins"
    pins.mkdir()
    with namespaces.unshare_command(["--net"]) as cmd, \
            running_server("--allow-ops", "--ops-group", group, "--pin-dir", str(pins),
                           unix=sock, tcp=False) as server:
        info = os.stat(sock)
        assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == NOBODY
        ino = nsfacts.link_ino(cmd.child, "net")
        wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")), 10, "the netns")
        _pinned_as_nobody(server, sock, ino, str(pins / "by-group"))


@root_only
def test_ops_group_counts_the_groups_the_peer_has(public_dir: str, scratch: Path) -> None:
    """Membership is what the connecting process has (SO_PEERGROUPS), not what the group
    database says: a supplementary group the database does not list for the user counts,
    and without it the same user is refused."""
    import grp

    group = next(g for g in grp.getgrall()
                 if g.gr_gid not in (0, NOBODY) and "nobody" not in g.gr_mem)
    sock = os.path.join(public_dir, "ops.sock")
    pins = scratch / "pins"
    pins.mkdir()
    with namespaces.unshare_command(["--net"]) as cmd, \
            running_server("--allow-ops", "--ops-group", group.gr_name, "--unix-mode", "0666",
                           "--pin-dir", str(pins), unix=sock, tcp=False) as server:
        ino = nsfacts.link_ino(cmd.child, "net")
        wait_until(lambda: ino in inodes(server.json("/api/v1/namespaces")), 10, "the netns")
        target = str(pins / "by-supplementary-group")
        status, body = _as_nobody(sock, _post_pin(f"net:[{ino}]", target))
        assert status == 403 and not os.path.lexists(target), body
        _pinned_as_nobody(server, sock, ino, target, [group.gr_gid])


@root_only
def test_a_reconnecting_client_gets_what_it_missed() -> None:
    """SSE ids are model generations: reconnecting with Last-Event-ID replays the
    changes made while the client was away (and only those); an id the server cannot
    serve (here: from before it started) gets `reset`."""
    with running_server() as server:
        with EventReader(server) as first:
            with namespaces.unshare_command(["--uts"]) as before:
                # Ids, not inodes: the kernel hands a freed inode to the next namespace.
                seen_id = nsfacts.facts(f"/proc/{before.child}/ns/uts").id
                first.wait_for(lambda kind, data: kind == "born" and data["id"] == seen_id, 10)
                born_at = first.ids[[(k, d.get("id")) for k, d in first.events]
                                    .index(("born", seen_id))]
                assert born_at is not None
        # Away: one namespace goes (the one seen born), another comes.
        with namespaces.unshare_command(["--net"]) as away:
            missed = nsfacts.facts(f"/proc/{away.child}/ns/net")
            wait_until(lambda: missed.id in {n["id"] for n in server.json(
                "/api/v1/namespaces")["namespaces"]}, 10, "the new netns in the model")
            with EventReader(server, last_event_id=born_at) as again:
                again.wait_for(lambda kind, data: kind == "born" and data["id"] == missed.id, 10)
                again.wait_for(lambda kind, data: kind == "gone" and data["id"] == seen_id, 10)
                assert ("born", seen_id) not in [(k, d.get("id")) for k, d in again.events]
                assert all(i is None or i > born_at for i in again.ids), (born_at, again.ids)
        with EventReader(server, last_event_id=10 ** 9) as stranger:
            kind, data = stranger.wait_for(lambda kind, data: kind == "reset", 10)
            assert data["last_event_id"] == 10 ** 9


def test_big_documents_are_gzipped_for_clients_that_ask() -> None:
    with running_server() as server:
        plain = server.get("/api/v1/snapshot", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        if len(plain.content) < 16 << 10:
            pytest.skip(f"this host's snapshot is too small to be compressed "
                        f"({len(plain.content)} bytes)")
        packed = server.get("/api/v1/snapshot", headers={"Accept-Encoding": "gzip"})
        assert packed.headers.get("content-encoding") == "gzip"
        assert int(packed.headers["content-length"]) < len(plain.content) / 3
        assert json.loads(packed.content)["schema"] == "nsctl-snapshot"   # httpx inflates


@root_only
def test_a_changed_model_travels_as_a_patch(scratch: Path) -> None:
    """After the first model the refresher sends what changed (nsctl.serve.wire): a
    patch that makes the next document out of the one before, leaving that one as it was,
    smaller than the model; the server's model follows real changes through them."""
    import copy

    from nsctl import discover
    from nsctl.documents.snapshot import to_document
    from nsctl.serve import wire

    before = to_document(discover())
    kept = copy.deepcopy(before)
    with namespaces.netns_bindmount(scratch, how="unshare") as pinned, \
            namespaces.unshare_command(["--uts"]) as cmd:
        after = to_document(discover())
        change = wire.patch(before, after)
        assert change is not None and "whole" not in change
        put = {e["ns"] for e in change["namespaces"][0]}
        assert {pinned.net.ino, nsfacts.link_ino(cmd.child, "uts")} <= put
        assert cmd.child in {p["pid"] for p in change["processes"][0]}
        assert wire.apply(before, change) == after
        assert before == kept
        assert len(wire.dumps(change)) < len(wire.dumps(after))   # (the host's entries are most)
    assert wire.patch(after, after) is None
    gone = to_document(discover())
    change = wire.patch(after, gone)
    assert change is not None and pinned.net.ino in change["namespaces"][1]
    assert wire.apply(after, change) == gone
    with pytest.raises(ValueError):
        wire.apply(before, {"namespaces": [[], [1]]})


def test_documents_carry_etags_and_an_unchanged_one_is_304() -> None:
    """The page asks again with the ETag it has; an unchanged document costs neither
    side a body (the model may change between two requests: then a new tag)."""
    with running_server() as server, server.client() as c:
        for path in ("/api/v1/tree", "/api/v1/pidtree", "/api/v1/namespaces",
                     "/api/v1/processes", "/api/v1/snapshot",
                     f"/api/v1/namespaces/{os.stat('/proc/self/ns/net').st_ino}"):
            for _ in range(20):
                first = c.get(path)
                assert first.status_code == 200, (path, first.text[:200])
                tag = first.headers["etag"]
                assert tag.startswith('W/"')
                again = c.get(path, headers={"If-None-Match": f'W/"other", {tag}'})
                if again.status_code == 304:
                    break
                assert again.status_code == 200 and again.headers["etag"] != tag
            assert again.status_code == 304 and again.headers["etag"] == tag, path
            assert not again.content
            assert c.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200
