"""The web page: ``/`` and ``/static/NAME``, served from the package's static files."""
from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response

from ..documents import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..service import Service

STATIC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json", ".txt": "text/plain; charset=utf-8",
         ".woff2": "font/woff2"}


def static_file(name: str) -> Response:
    """A file of the static directory; only names listed in the directory itself, so a
    client's text is never joined to a path."""
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


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.get("/", include_in_schema=False)
    async def index() -> Response:
        return static_file("index.html")

    @routes.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return static_file(name)

    return routes
