"""Who may ask what: bearer token, Host check, peer credentials, rate and size limits,
and the checks on a client's pin paths.

One plain ASGI middleware (:class:`Guard`) runs before any route, so no route
can forget a check.  On TCP: the Host header must name this server (so a web
page elsewhere cannot reach a loopback server through DNS rebinding) unless a
token is set, and with a token every request but the page's own static files
must carry it (``Authorization: Bearer``, or ``?token=`` for the event stream,
which browsers open without headers), compared in constant time.  On the unix
socket the kernel tells who connected (SO_PEERCRED, recorded at connect()
time): reading is open to whoever the socket file's mode lets connect;
operations need root or the ``--ops-group``.
"""
from __future__ import annotations

import hmac
import json
import os
import re
import socket
import time

from ..kernel.peercred import in_group, peer_credentials, peer_groups
from .state import Histogram

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable

    Scope = dict[str, Any]
    Receive = Callable[[], Awaitable[dict]]
    Send = Callable[[dict], Awaitable[None]]


class Peer(tuple):
    """``scope["client"]`` for a unix-socket connection: still a (host, port) pair for
    whoever formats it, carrying the peer's pid, uid, gid and supplementary groups
    (None: unknown, the group database decides)."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] | None

    def __new__(cls, pid: int, uid: int, gid: int,
                groups: tuple[int, ...] | None = None) -> "Peer":
        self = super().__new__(cls, (f"unix:pid={pid},uid={uid}", 0))
        self.pid, self.uid, self.gid, self.groups = pid, uid, gid, groups
        return self


def peer_protocol():
    """uvicorn's h11 protocol, but a unix-socket connection's client is its :class:`Peer`."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class PeerProtocol(H11Protocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family == socket.AF_UNIX:
                try:
                    self.client = Peer(*peer_credentials(sock), groups=peer_groups(sock))
                except OSError:
                    self.client = None

    return PeerProtocol


class Policy:
    """The settings the guard enforces."""

    def __init__(self, token: str | None = None, hosts: set[str] | None = None,
                 rate: float = 20.0, burst: int = 100, max_body: int = 16 << 20,
                 ops_group: int | None = None) -> None:
        self.token = token.encode() if token else None
        self.hosts = hosts or set()           # Host header names we answer to (no port)
        self.rate = rate                      # requests per second per client; 0: no limit
        self.burst = burst
        self.max_body = max_body
        self.ops_group = ops_group

    def may_operate(self, peer: object) -> bool:
        """Root, or a member of the ops group; only a unix-socket peer ever may."""
        if not isinstance(peer, Peer):
            return False
        if peer.uid == 0:
            return True
        return self.ops_group is not None and in_group(peer.uid, peer.gid, self.ops_group,
                                                       peer.groups)


# Paths served without a token: the page itself (it holds no data and asks for the token).
PUBLIC = re.compile(r"^/(?:static/[A-Za-z0-9_.-]+|index\.html)?$")


class Buckets:
    """Per-client token buckets; idle clients are forgotten so the table stays small."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.state: dict[str, tuple[float, float]] = {}   # client -> (tokens, when)

    def take(self, client: str) -> float:
        """0 if the request may go, else seconds until it could."""
        now = time.monotonic()
        tokens, when = self.state.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        if tokens < 1.0:
            self.state[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self.state[client] = (tokens - 1.0, now)
        if len(self.state) > 10000:
            idle = now - self.burst / self.rate
            self.state = {k: v for k, v in self.state.items() if v[1] >= idle}
        return 0.0


async def _refuse(send: Send, status: int, message: str,
                  headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
]


HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Routes by their path (a metrics label must not grow with what clients send).
_ROUTES = frozenset({"/", "/api/v1/status", "/api/v1/namespaces", "/api/v1/tree",
                     "/api/v1/pidtree", "/api/v1/net", "/api/v1/processes", "/api/v1/snapshot",
                     "/api/v1/diff", "/api/v1/events", "/api/v1/pins", "/metrics",
                     "/openapi.json"})


def route_of(path: str) -> str:
    if path in _ROUTES:
        return path
    if path.startswith("/api/v1/namespaces/"):
        return "/api/v1/namespaces/{spec}"
    if path.startswith("/static/"):
        return "/static/{name}"
    return "other"


class Guard:
    """The ASGI middleware: checks, then limits, then the app; counts answers by class."""

    def __init__(self, app, policy: Policy) -> None:
        self.app = app
        self.policy = policy
        self.buckets = Buckets(policy.rate, policy.burst) if policy.rate > 0 else None
        self.answered: dict[str, int] = {}
        self.latency: dict[str, Histogram] = {}

    def _count(self, status: int) -> None:
        key = f"{status // 100}xx"
        self.answered[key] = self.answered.get(key, 0) + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                self._count(message["status"])
                route = route_of(scope["path"])
                if route not in self.latency:
                    self.latency[route] = Histogram(HTTP_BUCKETS)
                self.latency[route].observe(time.perf_counter() - started)
                headers = list(message.get("headers") or []) + SECURITY_HEADERS
                if scope["path"] != "/" and not scope["path"].startswith("/static/"):
                    # What a host's namespaces look like is nothing for caches to keep.
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        refusal = self._check(scope)
        if refusal is not None:
            await _refuse(counted, *refusal)
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, receive)
            if body is None:
                await _refuse(counted, 413, f"request body larger than {self.policy.max_body} "
                                            "bytes")
                return
            receive = _replay(body)
        await self.app(scope, receive, counted)

    def _check(self, scope: Scope) -> tuple | None:
        """None if the request may go on, else (status, message[, headers])."""
        client = scope.get("client")
        headers = dict(scope.get("headers") or [])
        if not isinstance(client, Peer):
            host = headers.get(b"host", b"").decode("latin-1")
            name = host.partition("]")[0] + "]" if host.startswith("[") else \
                host.partition(":")[0]
            if self.policy.token is None and name.lower() not in self.policy.hosts:
                return 421, f"this server answers to {', '.join(sorted(self.policy.hosts))}, " \
                            f"not Host {host[:100]!r}"
            if self.policy.token is not None and not PUBLIC.match(scope["path"]):
                if not self._token_ok(scope, headers):
                    return 401, "missing or wrong bearer token", \
                        [(b"www-authenticate", b'Bearer realm="nsctl"')]
        if self.buckets is not None:
            who = f"uid {client.uid}" if isinstance(client, Peer) else \
                (client[0] if client else "?")
            wait = self.buckets.take(who)
            if wait:
                return 429, "too many requests", [(b"retry-after",
                                                   str(max(1, round(wait))).encode())]
        return None

    def _token_ok(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        assert self.policy.token is not None
        given = b""
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        elif scope["path"] == "/api/v1/events":
            from urllib.parse import parse_qs

            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            given = values[0].encode("latin-1") if values else b""
        return hmac.compare_digest(given, self.policy.token)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to be too big."""
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.policy.max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.policy.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


# --- pin paths ----------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,200}$")


def pin_path(path: object, allowed: list[str]) -> str:
    """``path`` if it is a plain name directly in one of the ``allowed`` directories
    (absolute, canonical, checked as text: nothing is joined or resolved); else
    ValueError with the reason."""
    if not isinstance(path, str) or not path:
        raise ValueError("path must be a non-empty string")
    if "\0" in path or len(path) > 4096:
        raise ValueError("path holds a NUL byte or is too long")
    if not path.startswith("/"):
        raise ValueError(f"{path[:200]!r}: path must be absolute")
    parent, name = os.path.split(path)
    if not _NAME.match(name):
        raise ValueError(f"{path[:200]!r}: the last part must be a plain file name "
                         "(letters, digits, . _ - + @; not starting with a dot)")
    if parent not in allowed or path != f"{parent}/{name}":
        raise ValueError(f"{path[:200]!r}: pins may only go directly in "
                         f"{', '.join(allowed)}")
    return path
