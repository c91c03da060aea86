"""Who may ask what: bearer tokens, Host and Origin checks, peer credentials, rate,
size, time and connection limits, and the checks on a client's pin paths.

One plain ASGI middleware (:class:`Guard`) runs before any route, so no route
can forget a check.  On TCP: the Host header must name this server (so a web
page elsewhere cannot reach a loopback server through DNS rebinding) unless a
token is set, and with a token every request but the page's own static files
and ``/healthz`` must carry it (``Authorization: Bearer``, or ``?token=`` for
the event stream, which browsers open without headers), compared in constant
time.  A second, metrics-only token opens ``/metrics`` and nothing else.  On
the unix socket the kernel tells who connected (SO_PEERCRED, recorded at
connect() time): reading is open to whoever the socket file's mode lets
connect; operations need root or the ``--ops-group``.

Every API request a browser sends on behalf of another site (``Origin`` not
this server, ``Sec-Fetch-Site`` other than same-origin) is refused, and a body
is taken only as ``application/json``.  Limits are per peer (:func:`peer_key`:
all of loopback is one peer on TCP, each uid one on the unix socket) and
global, so one local user cannot lock another out.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import re
import socket
import time

from ..kernel.peercred import in_group, peer_credentials, peer_groups
from .state import Histogram

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Any

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
                groups: tuple[int, ...] | None = None) -> Peer:
        self = super().__new__(cls, (f"unix:pid={pid},uid={uid}", 0))
        self.pid, self.uid, self.gid, self.groups = pid, uid, gid, groups
        return self


def peer_key(client: tuple[str, int] | None) -> str:
    """Who a client is for the limits: ``uid N`` on the unix socket; on TCP all of
    loopback is one peer (every local user shares it: they cannot be told apart
    there), an IPv4 address one, an IPv6 /64 one."""
    if isinstance(client, Peer):
        return f"uid {client.uid}"
    if not client:
        return "?"
    try:
        address = ipaddress.ip_address(str(client[0]).split("%")[0])
    except ValueError:
        return str(client[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


_BUSY_BODY = b'{"error": "too many open connections from this peer"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
         b"retry-after: 5\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
         % (len(_BUSY_BODY), _BUSY_BODY))


def peer_protocol(policy: Policy):
    """uvicorn's h11 protocol, plus: a unix-socket connection's client is its
    :class:`Peer`; a peer holds at most ``policy.peer_connections`` connections (the
    next is answered 503 and closed); a connection that has not sent a request's
    complete headers within ``policy.header_timeout`` seconds of connecting or of
    its previous answer is closed (uvicorn's own keep-alive timer stops at the
    first byte, so one byte a minute would hold a connection forever)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    held: dict[str, int] = {}     # peer key -> open connections

    class PeerProtocol(H11Protocol):
        peer: str | None = None
        header_timer: asyncio.TimerHandle | None = None

        # asyncio.Transport, as H11Protocol narrows it (and ignores the same check).
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family == socket.AF_UNIX:
                try:
                    self.client = Peer(*peer_credentials(sock), groups=peer_groups(sock))
                except OSError:
                    self.client = None
            key = peer_key(self.client)
            if held.get(key, 0) >= policy.peer_connections:
                policy.refused_connections += 1
                transport.write(_BUSY)
                transport.close()
                return
            held[key] = held.get(key, 0) + 1
            self.peer = key
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            if self.peer is not None:
                left = held.get(self.peer, 1) - 1
                if left > 0:
                    held[self.peer] = left
                else:
                    held.pop(self.peer, None)
                self.peer = None
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._disarm_header_timer()     # a request's headers are in

        def on_response_complete(self) -> None:
            self._arm_header_timer()
            super().on_response_complete()

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            if not self.transport.is_closing():
                self.header_timer = self.loop.call_later(policy.header_timeout,
                                                         self._header_timeout)

        def _disarm_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _header_timeout(self) -> None:
            self.header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                policy.timed_out_connections += 1
                self.transport.close()

    return PeerProtocol


class Policy:
    """The settings the guard and the protocol enforce, and what they counted."""

    def __init__(self, token: str | None = None, hosts: set[str] | None = None,
                 rate: float = 20.0, burst: int = 100, max_body: int = 16 << 20,
                 ops_group: int | None = None, metrics_token: str | None = None,
                 header_timeout: float = 10.0, peer_connections: int = 32,
                 max_streams: int = 64, peer_streams: int = 8, heavy: int = 2) -> None:
        self.token = token.encode() if token else None
        self.metrics_token = metrics_token.encode() if metrics_token else None
        self.hosts = hosts or set()           # Host header names we answer to (no port)
        self.rate = rate                      # requests per second per peer; 0: no limit
        self.burst = burst
        self.max_body = max_body
        self.ops_group = ops_group
        self.header_timeout = header_timeout  # seconds to send a request's headers
        self.peer_connections = peer_connections
        self.max_streams = max_streams        # open event streams, all peers
        self.peer_streams = peer_streams       # ... and per peer
        self.heavy = heavy                    # diffs computed at once
        self.refused_connections = 0
        self.timed_out_connections = 0

    def may_operate(self, peer: object) -> bool:
        """Root, or a member of the ops group; only a unix-socket peer ever may."""
        if not isinstance(peer, Peer):
            return False
        if peer.uid == 0:
            return True
        return self.ops_group is not None and in_group(peer.uid, peer.gid, self.ops_group,
                                                       peer.groups)


# Paths served without a token: the page itself (it holds no data and asks for the
# token) and the health probe (it says ok or not, nothing else).
PUBLIC = re.compile(r"^/(?:static/[A-Za-z0-9_.-]+|index\.html|healthz)?$")
# What the metrics-only token opens.
METRICS_ONLY = frozenset({"/metrics"})
# Answers that cost more than a lookup in the model: a few at a time.
HEAVY = frozenset({"/api/v1/diff"})
# A body is read for these methods, and must be JSON.
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Global limit: this many times one peer's rate and burst, so no one peer (nor one
# user, who is at most two peers: loopback and its uid) can use it up alone.
GLOBAL_FACTOR = 5


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
                  headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
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
                     "/openapi.json", "/healthz"})


def route_of(path: str) -> str:
    if path in _ROUTES:
        return path
    if path.startswith("/api/v1/namespaces/"):
        return "/api/v1/namespaces/{spec}"
    if path.startswith("/static/"):
        return "/static/{name}"
    return "other"


_SECRET_KEYS = ("token", "access_token")


def redacted_target(scope: Scope) -> str:
    """The request's path and query for a log line, the value of any parameter whose
    name decodes to ``token`` (however it is percent-encoded) replaced."""
    from urllib.parse import unquote_plus

    query = scope.get("query_string", b"").decode("latin-1")
    parts = []
    for part in query.split("&") if query else ():
        key, sep, _value = part.partition("=")
        secret = sep and unquote_plus(key).lower() in _SECRET_KEYS
        parts.append(f"{key}=REDACTED" if secret else part)
    path = scope.get("path", "")
    return f"{path}?{'&'.join(parts)}" if query else path


def _media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")


class Guard:
    """The ASGI middleware: checks, then limits, then the app; counts answers by class
    and, with ``access_log``, hands it one line per answer (secrets redacted)."""

    def __init__(self, app, policy: Policy,
                 access_log: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.policy = policy
        self.access_log = access_log
        self.buckets = Buckets(policy.rate, policy.burst) if policy.rate > 0 else None
        self.everyone = Buckets(policy.rate * GLOBAL_FACTOR, policy.burst * GLOBAL_FACTOR) \
            if policy.rate > 0 else None
        self.heavy = 0            # heavy requests being answered
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
                if self.access_log is not None:
                    client = scope.get("client")
                    who = client[0] if client else "-"
                    self.access_log(f'{who} - "{scope["method"]} {redacted_target(scope)} '
                                    f'HTTP/{scope.get("http_version", "1.1")}" '
                                    f'{message["status"]}')
            await send(message)

        refusal = self._check(scope)
        if refusal is not None:
            await _refuse(counted, *refusal)
            return
        heavy = scope["path"] in HEAVY
        if heavy:
            if self.heavy >= self.policy.heavy:
                await _refuse(counted, 503, "busy: too many diffs at once, try again",
                              [(b"retry-after", b"1")])
                return
            self.heavy += 1
        try:
            if scope["method"] in WITH_BODY:
                try:
                    body = await asyncio.wait_for(self._read_body(scope, receive),
                                                  max(30.0, 3 * self.policy.header_timeout))
                except TimeoutError:
                    await _refuse(counted, 408, "the request body came too slowly")
                    return
                if body is None:
                    await _refuse(counted, 413, f"request body larger than "
                                                f"{self.policy.max_body} bytes")
                    return
                receive = _replay(body)
            await self.app(scope, receive, counted)
        finally:
            if heavy:
                self.heavy -= 1

    def _check(self, scope: Scope) -> tuple | None:
        """None if the request may go on, else (status, message[, headers])."""
        client = scope.get("client")
        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        public = bool(PUBLIC.match(path))
        if path == "/healthz":
            return None           # reveals nothing; probes must not be rate limited
        if not isinstance(client, Peer):
            host = headers.get(b"host", b"").decode("latin-1")
            name = host.partition("]")[0] + "]" if host.startswith("[") else \
                host.partition(":")[0]
            if self.policy.token is None and name.lower() not in self.policy.hosts:
                return 421, f"this server answers to {', '.join(sorted(self.policy.hosts))}, " \
                            f"not Host {host[:100]!r}"
            if self.policy.token is not None and not public:
                granted = self._token_scope(scope, headers)
                if granted is None:
                    return 401, "missing or wrong bearer token", \
                        [(b"www-authenticate", b'Bearer realm="nsctl"')]
                if granted == "metrics" and path not in METRICS_ONLY:
                    return 403, "this token opens /metrics only"
        if not public:
            refusal = _cross_site(scope, headers)
            if refusal is not None:
                return 403, refusal
            if scope["method"] in WITH_BODY and _media_type(headers) != "application/json":
                return 415, "send the body as Content-Type: application/json"
        if self.buckets is not None and self.everyone is not None:
            wait = self.buckets.take(peer_key(client)) or self.everyone.take("")
            if wait:
                return 429, "too many requests", [(b"retry-after",
                                                   str(max(1, round(wait))).encode())]
        return None

    def _token_scope(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """``all`` for the main token, ``metrics`` for the metrics token, else None."""
        assert self.policy.token is not None
        given = b""
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        elif scope["path"] == "/api/v1/events":
            from urllib.parse import parse_qs

            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            given = values[0].encode("latin-1") if values else b""
        # Both compared, always: the time taken says nothing about which matched.
        main = hmac.compare_digest(given, self.policy.token)
        metrics = self.policy.metrics_token is not None and \
            hmac.compare_digest(given, self.policy.metrics_token)
        return "all" if main else "metrics" if metrics else None

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


def _cross_site(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    """Why a request comes from another site (a browser says so: ``Sec-Fetch-Site``,
    ``Origin``), or None.  A page elsewhere must not make a browser spend this
    server's work or change its state, even where it cannot read the answer."""
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    if site and site not in ("same-origin", "none"):
        return f"a cross-site request (Sec-Fetch-Site: {site[:40]})"
    origin = headers.get(b"origin")
    if origin is None:
        return None
    host = headers.get(b"host", b"").decode("latin-1").lower()
    scheme = scope.get("scheme", "http")
    if origin.decode("latin-1").lower() != f"{scheme}://{host}":
        return f"a cross-site request (Origin: {origin.decode('latin-1')[:100]})"
    return None


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
