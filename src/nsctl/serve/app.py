"""The HTTP API (FastAPI): routes over the cached model; no route scans or forks.

Every JSON answer is one of the CLI's documents (see :mod:`.documents`), or
``{"error": "one line"}`` with a 4xx/5xx status.  Documents that depend only on
the model are serialized once per model generation and sent as bytes.  The routes
live in :mod:`.routes`, one module per concern; this module puts them together
behind the error handlers, compression and the guard.
"""
from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from . import openapi
from .documents import ApiError
from .routes import diff, events, page, pins, reading
from .security import Guard
from .service import JSON, Service, json_response
from .state import WorkerError


def create_app(service: Service) -> Guard:
    """The ASGI application: FastAPI's routes behind the guard."""
    app = FastAPI(title="nsctl serve", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Every Linux namespace on this host, as nsctl sees it: the "
                              "documents of nsctl ls/show/tree/pidtree/net/snapshot/diff "
                              "--json, live events, metrics.")
    _add_error_handlers(app)
    for module in (page, reading, diff, events):
        app.include_router(module.router(service))
    if service.allow_ops:
        app.include_router(pins.router(service))
    openapi.install(app)
    # Big documents (the list is 4 MB on a host with 10,000 namespaces) go gzipped to
    # clients that ask for it: level 1 costs little and sends a tenth of the bytes.
    # The event stream is never compressed (Starlette leaves it out).
    from starlette.middleware.gzip import GZipMiddleware

    app.add_middleware(GZipMiddleware, minimum_size=16 << 10, compresslevel=1)
    service.guard = Guard(app, service.policy, service.access_log)
    return service.guard


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"error": "one line"}`` with its status (never FastAPI's 422
    details, never a traceback)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return Response(json.dumps({"error": str(exc)}).encode(), status_code=exc.status,
                        media_type=JSON, headers=headers)

    @app.exception_handler(WorkerError)
    async def _worker_error(request: Request, exc: WorkerError) -> Response:
        return json_response({"error": str(exc)}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return json_response({"error": f"{where}: {first.get('msg', 'invalid')}".strip(": ")},
                             400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"error": str(exc.detail).lower() if exc.status_code in (404, 405)
                              else str(exc.detail)}, exc.status_code)


__all__ = ["create_app", "Service"]
