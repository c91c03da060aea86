"""``nsctl diff --json`` over HTTP: a posted snapshot, or the model the server had at
an earlier time, against the current model."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import documents
from ..documents import ApiError
from ..service import JSON, OBJECT, iso, json_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..service import Service


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


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.post("/api/v1/diff", responses={200: {"content": OBJECT}},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     JSON: {"schema": {"type": "object",
                                       "description": "an nsctl snapshot document"}}}}})
    async def diff_posted(request: Request) -> Response:
        """``nsctl diff --json`` of the posted snapshot against the current model."""
        from ...documents.snapshot import SnapshotError, from_document

        model = service.model()
        body = await request.body()

        def compare() -> dict:
            doc = documents.parse_body(body, service.body_budget())
            try:
                before = from_document(doc, "the posted snapshot")
            except SnapshotError as exc:
                raise ApiError(str(exc)) from None
            return documents.diff(before, model.snap)

        return json_response(await run_in_threadpool(compare))

    @routes.get("/api/v1/diff", responses={200: {"content": OBJECT}})
    async def diff_since(since: Annotated[str, Query(max_length=64,
                                                     description="seconds ago, or an ISO time")]
                         ) -> Response:
        """``nsctl diff --json`` of the model the server had at ``since`` against now."""
        from ...documents.snapshot import from_document

        model = service.model()
        when = parse_since(since)
        if when > time.time() + 1:
            raise ApiError(f"since: {since} is in the future")
        found = service.store.history.at(when)
        if found is None:
            oldest = service.store.history.oldest()
            raise ApiError(f"no model from {iso(when)} is kept (the oldest is from "
                           f"{iso(oldest) if oldest else 'nothing yet'})", 404)
        since_model, generation, earlier = found

        def compare() -> dict:
            doc = documents.diff(from_document(earlier, "an earlier model"),
                                 model.snap)
            # Which models were compared (the one in force at `since`, or the
            # closest earlier one kept).
            doc["from"] = {"generation": generation, "time": iso(since_model)}
            doc["to"] = {"generation": model.generation, "time": iso(model.scanned_at)}
            return doc

        return json_response(await run_in_threadpool(compare))

    return routes
