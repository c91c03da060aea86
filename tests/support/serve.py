"""A real ``nsctl serve`` process for the tests, and clients for it.

:func:`running_server` starts ``python -m nsctl serve`` on a free loopback port
(``--listen 127.0.0.1:0``, with ``--no-token`` unless a token is given; the port
is read from the line it prints) and/or a unix socket, waits until the first model is
served, and at the end stops it with SIGTERM and checks that it exited cleanly.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.processes import descendants

_LISTENING = re.compile(r"listening on (?P<where>.*?)(?: \(|$)")


@dataclass
class Server:
    popen: subprocess.Popen
    url: str | None                       # http://127.0.0.1:PORT, None if unix only
    unix: str | None
    token: str | None = None
    stderr: list[str] = field(default_factory=list)

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        """An HTTP client for the TCP address (bearer ``token`` if given)."""
        assert self.url is not None, "this server listens on no TCP address"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def unix_client(self) -> httpx.Client:
        assert self.unix is not None
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.unix),
                            base_url="http://nsctl", timeout=30)

    def get(self, path: str, timeout: float = 30, **kw: Any) -> httpx.Response:
        with self.client(self.token) if self.url else self.unix_client() as c:
            return c.get(path, timeout=timeout, **kw)

    def json(self, path: str, **kw: Any) -> Any:
        r = self.get(path, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.json()


def _read_line(popen: subprocess.Popen, timeout: float) -> str:
    assert popen.stderr is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = popen.stderr.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise RuntimeError(f"nsctl serve printed nothing within {timeout}s")
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError(f"nsctl serve exited: {buf.decode(errors='replace')}")
        buf += chunk
    return buf.decode()


@contextmanager
def running_server(*args: str, unix: str | None = None, tcp: bool = True,
                   token: str | None = None, ready: bool = True,
                   timeout: float = 60.0, cwd: str | None = None,
                   env: dict[str, str] | None = None,
                   python: tuple[str, ...] = (),
                   prefix: tuple[str, ...] = ()) -> Iterator[Server]:
    """``nsctl serve ARGS`` on 127.0.0.1:0 (with ``tcp``) and/or ``unix``; waits for
    the first model unless ``ready`` is false.  ``cwd``, ``env`` and the interpreter's
    options (``python``) are the server's; ``prefix`` is a command that execs it (in
    place: the server keeps its pid)."""
    argv = [*prefix, sys.executable, *python, "-m", "nsctl", "serve", *args]
    if tcp:
        argv += ["--listen", "127.0.0.1:0"]
        if not {"--token", "--token-file", "--no-token"} & set(args):
            argv.append("--no-token")
    if unix:
        argv += ["--unix", unix]
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=cwd, env=env)
    try:
        lines = [_read_line(popen, timeout)]
        while (m := _LISTENING.search(lines[-1])) is None:
            assert len(lines) < 10, lines          # a warning or two come first
            lines.append(_read_line(popen, timeout))
        wheres = m.group("where").split(", ")
        url = next((w for w in wheres if w.startswith(("http://", "https://"))), None)
        # The default listener (neither --listen nor --unix) is a unix socket.
        unix = unix or next((w[5:] for w in wheres if w.startswith("unix:")), None)
        server = Server(popen, url, unix, token, lines)
        if ready:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if server.get("/api/v1/status").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert popen.poll() is None, "nsctl serve exited"
                assert time.monotonic() < deadline, "no model within the timeout"
                time.sleep(0.05)
        yield server
    finally:
        stop(popen)


HELPER_ROLES = ("launcher", "refresher", "worker")


def helpers(server: Server) -> dict[str, int]:
    """The server's helper processes now, by role (the argument after the interpreter's
    options that names it); the newest one of each role."""
    out: dict[str, int] = {}
    for pid in descendants(server.popen.pid):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        role = next((a.decode() for a in argv[1:] if a.decode(errors="replace") in HELPER_ROLES),
                    None)
        if role is not None:
            out[role] = pid
    return out


def stop(popen: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM; the exit status (SIGKILL and a failed assertion if it hangs)."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
    try:
        status = popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
        raise AssertionError(f"nsctl serve did not stop within {timeout}s of SIGTERM") from None
    finally:
        if popen.stderr is not None:
            popen.stderr.close()
    return status


def raw_request(path: str, request: bytes, timeout: float = 30.0) -> tuple[int, dict]:
    """One HTTP/1.0 request over the unix socket at ``path`` (for callers that cannot
    import httpx, e.g. a child under another uid); (status, JSON body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"null")


class EventReader:
    """Follows /api/v1/events over a plain socket (HTTP/1.0: the body is the bare
    stream) in a background thread, collecting (event, data) pairs."""

    def __init__(self, server: Server, token: str | None = None,
                 last_event_id: int | None = None) -> None:
        import threading
        from urllib.parse import urlsplit

        self.events: list[tuple[str, Any]] = []
        self.ids: list[int | None] = []      # each event's SSE id, beside self.events
        self.comments = 0
        self.status: int | None = None
        if server.url:
            parts = urlsplit(server.url)
            self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
            host = parts.netloc
        else:
            assert server.unix is not None, "this server listens on neither TCP nor a unix socket"
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(server.unix)
            host = "localhost"
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        if last_event_id is not None:
            auth += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock.sendall(f"GET /api/v1/events HTTP/1.0\r\nHost: {host}\r\n{auth}\r\n"
                          .encode())
        self.sock.settimeout(None)
        self.ended = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        head_done = False
        kind = None
        event_id = None
        try:
            while chunk := self.sock.recv(65536):
                buf += chunk
                if not head_done:
                    if b"\r\n\r\n" not in buf:
                        continue
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.status = int(head.split()[1])
                    head_done = True
                while b"\n" in buf:
                    raw, _, buf = buf.partition(b"\n")
                    line = raw.decode()
                    if line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("id: "):
                        event_id = int(line[4:])
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind is not None:
                        self.ids.append(event_id)
                        self.events.append((kind, json.loads(line[6:])))
                        kind = event_id = None
        except OSError:
            pass
        self.ended = True

    def wait_for(self, pred, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for item in self.events[seen:]:
                if pred(*item):
                    return item
            seen = len(self.events)
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout}s "
                             f"(got {[k for k, _ in self.events][-20:]})")

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
