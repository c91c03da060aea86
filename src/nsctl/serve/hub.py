"""The live event fan-out: model changes to every open event stream."""
from __future__ import annotations

import asyncio
import json
from collections import deque


class Hub:
    """Fans model changes out to the event streams (each a bounded queue; a client
    too slow to keep up is dropped, and its EventSource reconnects).

    Each change's events carry the model generation as their SSE ``id``, and the
    last ``RECENT`` changes are kept, so a client that reconnects with
    ``Last-Event-ID`` gets what it missed (or ``event: reset`` when that is
    older than what is kept: refetch everything)."""

    QUEUE = 256      # model changes a stream may fall behind by
    RECENT = 256     # model changes kept for reconnecting clients

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue] = set()
        self.recent: deque[tuple[int, str]] = deque(maxlen=self.RECENT)
        self.evicted = 0    # the newest generation no longer kept
        self.closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def from_thread(self, generation: int, events: list[dict]) -> None:
        """The store's listener (runs in its reader thread)."""
        if self.loop is not None and not self.closed:
            try:
                self.loop.call_soon_threadsafe(self.publish, generation, events)
            except RuntimeError:
                pass            # the loop closed: the server is stopping

    def publish(self, generation: int, events: list[dict]) -> None:
        """One chunk per model change (a thousand namespaces born at once is one item)."""
        chunk = "".join(f"id: {generation}\nevent: {e.get('event', 'message')}\n"
                        f"data: {json.dumps(e)}\n\n" for e in events)
        chunk += (f"id: {generation}\nevent: generation\n"
                  f"data: {json.dumps({'generation': generation})}\n\n")
        if len(self.recent) == self.RECENT:
            self.evicted = self.recent[0][0]
        self.recent.append((generation, chunk))
        for q in list(self.queues):
            if q.full():
                self.queues.discard(q)
                _end(q)
            else:
                q.put_nowait((generation, chunk))

    def missed(self, last_id: int, current: int) -> list[tuple[int, str]]:
        """What a client that saw generation ``last_id`` missed: the kept changes after
        it, or a reset when some of them are no longer kept, or the id is from before
        this server started (generations count from 1 again)."""
        if last_id < self.evicted or last_id > current:
            reset = json.dumps({"generation": current, "last_event_id": last_id})
            return [(current, f"id: {current}\nevent: reset\ndata: {reset}\n\n")]
        return [item for item in self.recent if item[0] > last_id]

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(self.QUEUE)
        self.queues.add(q)
        return q

    def close(self) -> None:
        """Server shutdown: end every stream now (else shutdown waits for them)."""
        self.closed = True
        for q in list(self.queues):
            _end(q)
        self.queues.clear()


def _end(q: asyncio.Queue) -> None:
    """Make the stream reading ``q`` end at its next read (None is the end)."""
    while not q.empty():
        q.get_nowait()
    q.put_nowait(None)


__all__ = ["Hub"]
