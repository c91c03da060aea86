"""``/api/v1/events``: the model's changes as server-sent events."""
from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..documents import ApiError
from ..security import peer_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..service import Service


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/v1/events", responses={200: {"content": {"text/event-stream": {
        "schema": {"type": "string"}}}}})
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: each ``nsctl watch`` event (``event: born`` ...), and
        ``event: generation`` each time the model changes, with the generation as the
        event id; comments keep it alive.  A reconnecting client's ``Last-Event-ID``
        gets it the changes it missed (``event: reset`` if they are no longer kept)."""
        hub = service.hub
        if hub.closed:
            raise ApiError("shutting down", 503)
        peer = peer_key(request.scope.get("client"))
        policy = service.policy
        # A stream's queue leaves the hub when the stream ends (or falls behind).
        service.streams = {q: p for q, p in service.streams.items() if q in hub.queues}
        if len(hub.queues) >= policy.max_streams or \
                sum(p == peer for p in service.streams.values()) >= policy.peer_streams:
            raise ApiError("too many open event streams; close one and try again", 503)
        last_id = request.headers.get("last-event-id", "").strip()
        if last_id and not (last_id.isascii() and last_id.isdigit() and len(last_id) <= 19):
            raise ApiError("Last-Event-ID: not an event id this server sent (a generation "
                           "number)")
        queue = hub.subscribe()
        service.streams[queue] = peer
        current = service.store.current
        replay: list[tuple[int, str]] = []
        if last_id and current is not None:
            replay = hub.missed(int(last_id), current.generation)
        first = current.generation if current is not None else None
        return StreamingResponse(_stream(service, queue, replay, first),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    return routes


async def _stream(service: Service, queue: asyncio.Queue, replay: list[tuple[int, str]],
                  current: int | None) -> AsyncIterator[str]:
    """One client's stream: the replay of what it missed (or the current generation),
    then each change from ``queue`` until the hub ends it (``None``)."""
    try:
        yield "retry: 2000\n\n"
        seen = 0
        for generation, chunk in replay:
            seen = generation
            yield chunk
        if current is not None and not replay:
            seen = current
            yield (f"id: {seen}\nevent: generation\n"
                   f"data: {json.dumps({'generation': seen})}\n\n")
        # A comment every `keepalive` seconds, busy or not: proxies and clients see
        # the stream alive, and a gone client is noticed.
        due = time.monotonic() + service.keepalive
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, due - time.monotonic()))
            except TimeoutError:
                item = (0, "")
            if item is None:
                return
            generation, chunk = item
            if chunk and generation <= seen:
                continue   # already sent from the replay
            seen = max(seen, generation)
            if time.monotonic() >= due:
                chunk += ": keep-alive\n\n"
                due = time.monotonic() + service.keepalive
            if chunk:
                yield chunk
    finally:
        service.hub.queues.discard(queue)
        service.streams.pop(queue, None)
