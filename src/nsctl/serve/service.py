"""What the routes share: the store of models, the helper workers, the policy, and
the ways a route answers (a cached document's bytes, a JSON object, an error)."""
from __future__ import annotations

import hashlib
import json
import os
import time

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .documents import ApiError
from .hub import Hub

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import Any, TypeVar

    from ..model import Snapshot
    from .security import Guard, Policy
    from .state import Model, Store, Worker

    T = TypeVar("T")

JSON = "application/json"
OBJECT = {JSON: {"schema": {"type": "object"}}}   # OpenAPI: "answers a JSON object"


def iso(when: float) -> str:
    """ISO 8601 UTC with milliseconds and Z, as nsctl watch writes times."""
    from ..timeline.watch import iso_now

    return iso_now(when)


def json_response(doc: object, status: int = 200) -> Response:
    return Response(json.dumps(doc).encode(), status_code=status, media_type=JSON)


def bytes_response(body: bytes) -> Response:
    """An already serialized JSON document."""
    return Response(body, media_type=JSON)


def etag(body: bytes) -> str:
    """A document's entity tag: a hash of its bytes, so a document that did not change
    from one model to the next keeps its tag (weak: the gzip layer may re-encode it)."""
    return f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def _has(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag`` (compared weakly, as RFC 9110 says
    for If-None-Match), or is ``*``."""
    if not if_none_match:
        return False
    opaque = tag.removeprefix("W/")
    return any(item == "*" or item.removeprefix("W/") == opaque
               for item in (word.strip() for word in if_none_match.split(",")))


def tagged_response(request: Request, body: bytes, tag: str | None = None) -> Response:
    """A serialized JSON document with its ETag; 304 without a body when the client's
    If-None-Match names it already (the page then keeps what it has: nothing fetched,
    parsed or redrawn)."""
    tag = tag or etag(body)
    if _has(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type=JSON, headers={"ETag": tag})


class Service:
    """What the routes share: the store, the workers, the settings.

    Two workers: ``net_worker`` reads the network picture (``/net``: seconds on a host
    with a thousand network namespaces), ``worker`` everything else (one namespace's
    view, pins), so that those never wait behind the picture."""

    def __init__(self, store: Store, worker: Worker, policy: Policy, allow_ops: bool = False,
                 pin_dirs: list[str] | None = None, keepalive: float = 15.0,
                 net_worker: Worker | None = None,
                 access_log: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.worker = worker
        self.net_worker = net_worker or worker
        net_worker = self.net_worker
        self.policy = policy
        self.allow_ops = allow_ops
        self.pin_dirs = pin_dirs or ["/run/netns"]
        self.keepalive = keepalive
        self.access_log = access_log
        self.streams: dict[asyncio.Queue, str] = {}   # event stream -> its peer
        self.hub = Hub()
        self.guard: Guard | None = None
        store.listeners.append(self.hub.from_thread)
        store.own_pids = lambda: ({os.getpid()} | store.helper_pids() | worker.pids()
                                  | net_worker.pids())

    def model(self) -> Model:
        model = self.store.current
        if model is None:
            if self.store.fatal:
                raise ApiError(f"discovery failed: {self.store.fatal}", 500)
            raise ApiError("starting: the first scan has not finished yet", 503)
        return model

    def fresh(self, model: Model, key: str, build: Callable[[], T]) -> T:
        """``build()`` cached on the model for the maximum age, or five times as long
        as it took to build (views can change without the model changing: an
        interface going up; reading a thousand network namespaces takes seconds)."""
        now = time.monotonic()
        hit = model.cache.get(key)
        if hit is not None and now < hit[0]:
            return hit[1]
        value = build()
        took = time.monotonic() - now
        model.cache[key] = (time.monotonic() + max(self.store.max_age, 5 * took), value)
        return value

    async def document(self, request: Request, key: str, build: Callable[[Snapshot], object],
                       model: Model | None = None) -> Response:
        """``build(snapshot)`` as JSON (:meth:`serialized`), with its ETag."""
        model = model or self.model()
        body = await self.serialized(key, build, model)
        return tagged_response(request, body, self.tag(model, key, body))

    @staticmethod
    def tag(model: Model, key: str, body: bytes) -> str:
        """The ETag of the document cached on ``model`` under ``key`` (hashed once)."""
        return model.cached(f"etag:{key}", lambda: etag(body))

    async def serialized(self, key: str, build: Callable[[Snapshot], object],
                         model: Model | None = None) -> bytes:
        """``build(snapshot)`` serialized once per model; built in a thread, so a big
        host's first build after a change does not stall the event loop."""
        model = model or self.model()
        body: bytes | None = model.cache.get(key)
        if body is None:
            body = await run_in_threadpool(
                model.cached, key, lambda: json.dumps(build(model.snap)).encode())
        return body

    def body_budget(self) -> int:
        """Bytes that parsing one request body may build: room for a snapshot as big
        as the largest body allowed (about eight times its size)."""
        return max(64 << 20, 10 * self.policy.max_body)

    async def call_worker(self, model: Model, request: dict) -> Any:
        return await run_in_threadpool(self.worker.call, model, request)


__all__ = ["Service", "json_response", "bytes_response", "tagged_response", "etag", "iso",
           "JSON", "OBJECT"]
