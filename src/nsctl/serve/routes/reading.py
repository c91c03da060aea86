"""Reading the current model: health, status, and the documents of ``nsctl ls``,
``show``, ``tree``, ``pidtree``, ``net`` and ``snapshot`` (``--json``), and metrics.
No route scans or forks: views come from the helper workers."""
from __future__ import annotations

import json
import os
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ... import __version__
from .. import documents, metrics
from ..service import OBJECT, iso, json_response, tagged_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..service import Service


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz", responses={200: {"content": OBJECT}, 503: {"content": OBJECT}})
    async def healthz() -> Response:
        """For probes, no token needed: ``{"ok": true}``, or 503 ``{"ok": false}`` while
        there is no model yet or the model is older than the refresher timeout (the
        background scanner is stuck)."""
        age = service.store.age()
        ok = service.store.current is not None and age is not None and \
            age <= service.store.hang_after
        return json_response({"ok": ok}, 200 if ok else 503)

    @routes.get("/api/v1/status", responses={200: {"content": OBJECT}})
    async def status() -> Response:
        """How current the model is: generation, scan time and duration, trigger."""
        model = service.model()
        store = service.store
        stats = store.stats
        age = store.age()
        uname = os.uname()
        return json_response({
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

    @routes.get("/api/v1/namespaces", responses={200: {"content": OBJECT}})
    async def namespaces(
            request: Request,
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
            body = model.cached("ls", lambda: documents.ls_text(model.doc, rest=rest))
            return tagged_response(request, body, service.tag(model, "ls", body))
        chosen = documents.select(model.snap, types, container, pid, q)
        return tagged_response(request, documents.ls_text(
            model.doc, [model.entries[i] for i in chosen], rest))

    @routes.get("/api/v1/namespaces/{spec:path}", responses={200: {"content": OBJECT}})
    async def namespace(request: Request, spec: str, view: bool = False) -> Response:
        """``nsctl show SPEC --json``; ``view=1`` adds what the namespace sees (read by
        a helper process).  SPEC: inode or id, type:[inode], PID/TYPE,
        container:NAME-OR-ID/TYPE, or a stable path; never a file path."""
        model = service.model()
        ns = documents.find(spec, model.snap)
        shown = await service.serialized(f"show:{ns.ino}",
                                         lambda snap: documents.show(ns, snap), model)
        if not view:
            return tagged_response(request, shown)
        asked = {"op": "view", "ino": ns.ino}
        seen = await run_in_threadpool(service.fresh, model, f"view:{ns.ino}",
                                       lambda: service.worker.call(model, asked))
        # The show document is an object: its view goes in as the last key, as in show.
        return tagged_response(request,
                               shown[:-1] + b', "view": ' + json.dumps(seen).encode() + b"}")

    @routes.get("/api/v1/tree", responses={200: {"content": OBJECT}})
    async def tree(request: Request) -> Response:
        """``nsctl tree --json``: user namespaces, each with what it owns."""
        return await service.document(request, "tree", documents.tree)

    @routes.get("/api/v1/pidtree", responses={200: {"content": OBJECT}})
    async def pidtree(request: Request) -> Response:
        """``nsctl pidtree --json``: processes inside the PID namespace tree."""
        return await service.document(request, "pidtree", documents.pidtree)

    @routes.get("/api/v1/net", responses={200: {"content": OBJECT}})
    async def net(request: Request) -> Response:
        """``nsctl net --json``: network namespaces, interfaces, links (read by a
        helper process)."""
        model = service.model()

        def build() -> bytes:
            views = service.net_worker.call(model, {"op": "net",
                                                    "max_age": service.store.max_age})
            return json.dumps(documents.net(model.snap, {int(k): v for k, v in
                                                         views.items()})).encode()

        body = await run_in_threadpool(service.fresh, model, "net", build)
        return tagged_response(request, body)

    @routes.get("/api/v1/processes", responses={200: {"content": OBJECT}})
    async def processes(request: Request) -> Response:
        """Every process read, as in the snapshot document."""
        return await service.document(request, "processes", documents.processes)

    @routes.get("/api/v1/snapshot", responses={200: {"content": OBJECT}})
    async def snapshot(request: Request) -> Response:
        """The ``nsctl snapshot`` document of the current model."""
        model = service.model()
        return tagged_response(request, model.text, service.tag(model, "snapshot", model.text))

    @routes.get("/metrics", responses={200: {"content": {"text/plain": {
        "schema": {"type": "string"}}}}})
    async def metrics_text() -> Response:
        """Prometheus text format: namespaces by type and holder, processes, hidden
        namespaces, scan durations, refresh errors, events per kind."""
        return Response(metrics.render(service.store, service.guard),
                        media_type=metrics.CONTENT_TYPE)

    return routes
