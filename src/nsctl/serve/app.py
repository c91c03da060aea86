"""The HTTP API (FastAPI): routes over the cached model; no route scans or forks.

Every JSON answer is one of the CLI's documents (see :mod:`.documents`), or
``{"error": "one line"}`` with a 4xx/5xx status.  Documents that depend only on
the model are serialized once per model generation and sent as bytes.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..model import Snapshot
from . import documents, metrics
from .documents import ApiError
from .security import Guard, Peer, Policy, peer_key, pin_path
from .state import Model, Store, Worker, WorkerError

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json", ".txt": "text/plain; charset=utf-8",
         ".woff2": "font/woff2"}
JSON = "application/json"
_OBJECT = {JSON: {"schema": {"type": "object"}}}   # OpenAPI: "answers a JSON object"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


def iso(when: float) -> str:
    """ISO 8601 UTC with milliseconds and Z, as nsctl watch writes times."""
    from ..timeline.watch import iso_now

    return iso_now(when)


def parse_since(text: str, now: float | None = None) -> float:
    """``since``: seconds ago (``90``, ``2.5``) or an ISO time; a Unix time back."""
    now = time.time() if now is None else now
    try:
        ago = float(text)
    except ValueError:
        pass
    else:
        if not 0 <= ago <= now:
            raise ApiError("since: seconds ago must be a number from 0 to the Unix time now")
        return now - ago
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    except (ValueError, OverflowError):
        raise ApiError(f"since: {text[:60]!r} is neither seconds ago nor an ISO time") from None


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

    async def document(self, key: str, build: Callable[[Snapshot], object],
                       model: Model | None = None) -> Response:
        """``build(snapshot)`` as JSON (:meth:`serialized`)."""
        return _bytes(await self.serialized(key, build, model))

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


def _json(doc: object, status: int = 200) -> Response:
    return Response(json.dumps(doc).encode(), status_code=status, media_type=JSON)


def _bytes(body: bytes) -> Response:
    return Response(body, media_type=JSON)


def create_app(service: Service) -> Guard:
    """The ASGI application: FastAPI's routes behind the guard."""
    app = FastAPI(title="nsctl serve", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Every Linux namespace on this host, as nsctl sees it: the "
                              "documents of nsctl ls/show/tree/pidtree/net/snapshot/diff "
                              "--json, live events, metrics.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return Response(json.dumps({"error": str(exc)}).encode(), status_code=exc.status,
                        media_type=JSON, headers=headers)

    @app.exception_handler(WorkerError)
    async def _worker_error(request: Request, exc: WorkerError) -> Response:
        return _json({"error": str(exc)}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return _json({"error": f"{where}: {first.get('msg', 'invalid')}".strip(": ")}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail).lower() if exc.status_code in (404, 405)
                      else str(exc.detail)}, exc.status_code)

    # --- the page ---------------------------------------------------------------------------

    def static_file(name: str) -> Response:
        # Only names listed in the directory itself: a client's text is never joined
        # to a path.
        try:
            listed = set(os.listdir(STATIC))
        except OSError:
            listed = set()
        if name not in listed or name.startswith("."):
            raise ApiError(f"no such file: {name[:100]!r}", 404)
        media = MEDIA.get(os.path.splitext(name)[1].lower(), "application/octet-stream")
        with open(os.path.join(STATIC, name), "rb") as f:
            body = f.read()
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return static_file("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return static_file(name)

    # --- reading ----------------------------------------------------------------------------

    @app.get("/healthz", responses={200: {"content": _OBJECT}, 503: {"content": _OBJECT}})
    async def healthz() -> Response:
        """For probes, no token needed: ``{"ok": true}``, or 503 ``{"ok": false}`` while
        there is no model yet or the model is older than the refresher timeout (the
        background scanner is stuck)."""
        age = service.store.age()
        ok = service.store.current is not None and age is not None and \
            age <= service.store.hang_after
        return _json({"ok": ok}, 200 if ok else 503)

    @app.get("/api/v1/status", responses={200: {"content": _OBJECT}})
    async def status() -> Response:
        """How current the model is: generation, scan time and duration, trigger."""
        model = service.model()
        store = service.store
        stats = store.stats
        age = store.age()
        uname = os.uname()
        return _json({
            "generation": model.generation, "scanned_at": iso(stats.last_scan),
            "age": round(age if age is not None else 0.0, 3),
            "scan_seconds": round(stats.scan_seconds, 6), "trigger": stats.trigger,
            "partial": model.snap.partial,
            "problems": [p.to_dict() for p in model.snap.problems],
            "host": uname.nodename, "kernel": uname.release, "version": __version__,
            "max_age": store.max_age, "stale": age is None or age > store.max_age,
            "model_time": iso(model.scanned_at), "namespaces": len(model.snap.namespaces),
            "processes": len(model.snap.processes), "ops": service.allow_ops,
            "refresh_errors": stats.refresh_errors, "last_error": stats.last_error,
        })

    @app.get("/api/v1/namespaces", responses={200: {"content": _OBJECT}})
    async def namespaces(
            type: Annotated[list[str] | None, Query(description="only these types")] = None,
            container: Annotated[str | None, Query(max_length=256)] = None,
            pid: Annotated[int | None, Query(ge=0)] = None,
            q: Annotated[str | None, Query(max_length=256)] = None) -> Response:
        """``nsctl ls --json``, its namespaces narrowed by type, container, a process's
        PID, or a substring of name, command, container or stable path."""
        model = service.model()
        types = documents.check_types(type)
        rest = model.cached("ls-rest", lambda: documents.ls_rest(model.doc))
        if types is None and container is None and pid is None and not q:
            return _bytes(model.cached("ls", lambda: documents.ls_text(model.doc, rest=rest)))
        chosen = documents.select(model.snap, types, container, pid, q)
        return _bytes(documents.ls_text(model.doc, [model.entries[i] for i in chosen], rest))

    @app.get("/api/v1/namespaces/{spec:path}", responses={200: {"content": _OBJECT}})
    async def namespace(spec: str, view: bool = False) -> Response:
        """``nsctl show SPEC --json``; ``view=1`` adds what the namespace sees (read by
        a helper process).  SPEC: inode or id, type:[inode], PID/TYPE,
        container:NAME-OR-ID/TYPE, or a stable path; never a file path."""
        model = service.model()
        ns = documents.find(spec, model.snap)
        shown = await service.serialized(f"show:{ns.ino}",
                                         lambda snap: documents.show(ns, snap), model)
        if not view:
            return _bytes(shown)
        request = {"op": "view", "ino": ns.ino}
        seen = await run_in_threadpool(service.fresh, model, f"view:{ns.ino}",
                                       lambda: service.worker.call(model, request))
        # The show document is an object: its view goes in as the last key, as in show.
        return _bytes(shown[:-1] + b', "view": ' + json.dumps(seen).encode() + b"}")

    @app.get("/api/v1/tree", responses={200: {"content": _OBJECT}})
    async def tree() -> Response:
        """``nsctl tree --json``: user namespaces, each with what it owns."""
        return await service.document("tree", documents.tree)

    @app.get("/api/v1/pidtree", responses={200: {"content": _OBJECT}})
    async def pidtree() -> Response:
        """``nsctl pidtree --json``: processes inside the PID namespace tree."""
        return await service.document("pidtree", documents.pidtree)

    @app.get("/api/v1/net", responses={200: {"content": _OBJECT}})
    async def net() -> Response:
        """``nsctl net --json``: network namespaces, interfaces, links (read by a
        helper process)."""
        model = service.model()

        def build() -> bytes:
            views = service.net_worker.call(model, {"op": "net",
                                                    "max_age": service.store.max_age})
            return json.dumps(documents.net(model.snap, {int(k): v for k, v in
                                                         views.items()})).encode()

        return _bytes(await run_in_threadpool(service.fresh, model, "net", build))

    @app.get("/api/v1/processes", responses={200: {"content": _OBJECT}})
    async def processes() -> Response:
        """Every process read, as in the snapshot document."""
        return await service.document("processes", documents.processes)

    @app.get("/api/v1/snapshot", responses={200: {"content": _OBJECT}})
    async def snapshot() -> Response:
        """The ``nsctl snapshot`` document of the current model."""
        return _bytes(service.model().text)

    @app.post("/api/v1/diff", responses={200: {"content": _OBJECT}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  JSON: {"schema": {"type": "object",
                                    "description": "an nsctl snapshot document"}}}}})
    async def diff_posted(request: Request) -> Response:
        """``nsctl diff --json`` of the posted snapshot against the current model."""
        from ..documents.snapshot import SnapshotError, from_document

        model = service.model()
        body = await request.body()

        def compare() -> dict:
            doc = documents.parse_body(body, service.body_budget())
            try:
                before = from_document(doc, "the posted snapshot")
            except SnapshotError as exc:
                raise ApiError(str(exc)) from None
            return documents.diff(before, model.snap)

        return _json(await run_in_threadpool(compare))

    @app.get("/api/v1/diff", responses={200: {"content": _OBJECT}})
    async def diff_since(since: Annotated[str, Query(max_length=64,
                                                     description="seconds ago, or an ISO time")]
                         ) -> Response:
        """``nsctl diff --json`` of the model the server had at ``since`` against now."""
        from ..documents.snapshot import from_document

        model = service.model()
        when = parse_since(since)
        if when > time.time() + 1:
            raise ApiError(f"since: {since} is in the future")
        found = service.store.history.at(when)
        if found is None:
            oldest = service.store.history.oldest()
            raise ApiError(f"no model from {iso(when)} is kept (the oldest is from "
                           f"{iso(oldest) if oldest else 'nothing yet'})", 404)
        since_model, generation, text = found

        def compare() -> dict:
            doc = documents.diff(from_document(json.loads(text), "an earlier model"),
                                 model.snap)
            # Which models were compared (the one in force at `since`, or the
            # closest earlier one kept).
            doc["from"] = {"generation": generation, "time": iso(since_model)}
            doc["to"] = {"generation": model.generation, "time": iso(model.scanned_at)}
            return doc

        return _json(await run_in_threadpool(compare))

    @app.get("/api/v1/events", responses={200: {"content": {"text/event-stream": {
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

        async def stream():
            try:
                yield "retry: 2000\n\n"
                seen = 0
                for generation, chunk in replay:
                    seen = generation
                    yield chunk
                if current is not None and not replay:
                    seen = current.generation
                    yield (f"id: {seen}\nevent: generation\n"
                           f"data: {json.dumps({'generation': seen})}\n\n")
                # A comment every `keepalive` seconds, busy or not: proxies and
                # clients see the stream alive, and a gone client is noticed.
                due = time.monotonic() + service.keepalive
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(),
                                                      max(0.0, due - time.monotonic()))
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
                hub.queues.discard(queue)
                service.streams.pop(queue, None)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @app.get("/metrics", responses={200: {"content": {"text/plain": {
        "schema": {"type": "string"}}}}})
    async def metrics_text() -> Response:
        """Prometheus text format: namespaces by type and holder, processes, hidden
        namespaces, scan durations, refresh errors, events per kind."""
        return Response(metrics.render(service.store, service.guard),
                        media_type=metrics.CONTENT_TYPE)

    if service.allow_ops:
        _add_ops(app, service)
    # Big documents (the list is 4 MB on a host with 10,000 namespaces) go gzipped to
    # clients that ask for it: level 1 costs little and sends a tenth of the bytes.
    # The event stream is never compressed (Starlette leaves it out).
    from starlette.middleware.gzip import GZipMiddleware

    app.add_middleware(GZipMiddleware, minimum_size=16 << 10, compresslevel=1)
    service.guard = Guard(app, service.policy, service.access_log)
    return service.guard


def _add_ops(app: FastAPI, service: Service) -> None:
    """POST/DELETE /api/v1/pins: only on the unix socket, only for root or the ops group."""

    def authorize(request: Request) -> None:
        peer = request.scope.get("client")
        if not isinstance(peer, Peer):
            raise ApiError("not found", 404)     # ops do not exist on TCP
        if not service.policy.may_operate(peer):
            raise ApiError(f"uid {peer.uid} may not pin or unpin (root or the ops group only)",
                           403)

    def checked(path: object) -> str:
        try:
            return pin_path(path, service.pin_dirs)
        except ValueError as exc:
            raise ApiError(str(exc)) from None

    @app.post("/api/v1/pins", status_code=201, responses={201: {"content": _OBJECT}},
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
                  "type": "object", "required": ["spec", "path"],
                  "properties": {"spec": {"type": "string"}, "path": {"type": "string"}}}}}}})
    async def pin(request: Request) -> Response:
        """Pin a namespace (``nsctl pin SPEC PATH``); PATH a new file directly in an
        allowed directory (``--pin-dir``, default /run/netns), which must still be root's
        alone (checked on every pin; 409 with the cause if not)."""
        authorize(request)
        body = documents.parse_body(await request.body(), service.body_budget())
        if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
            raise ApiError('the body must be {"spec": SPEC, "path": PATH}')
        path = checked(body.get("path"))
        model = service.model()
        ns = documents.find(body["spec"], model.snap)
        pinned = await service.call_worker(model, {"op": "pin", "ino": ns.ino, "path": path})
        return _json({"pinned": pinned, "ns": ns.ino, "type": ns.type, "id": ns.id}, 201)

    @app.delete("/api/v1/pins", responses={200: {"content": _OBJECT}})
    async def unpin(request: Request,
                    path: Annotated[str, Query(max_length=4096)]) -> Response:
        """Undo a pin (``nsctl unpin PATH``); refuses anything but a pinned namespace
        file in an allowed directory."""
        authorize(request)
        path = checked(path)
        what = await service.call_worker(service.model(), {"op": "unpin", "path": path})
        return _json({"unpinned": path, "was": what})


__all__ = ["create_app", "Service"]
