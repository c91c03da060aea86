"""POST/DELETE ``/api/v1/pins``: pin and unpin, only on the unix socket, only for root
or the ops group, and only when the server runs with ``--allow-ops``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from .. import documents
from ..documents import ApiError
from ..security import Peer, pin_path
from ..service import JSON, OBJECT, json_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..service import Service


def router(service: Service) -> APIRouter:
    routes = APIRouter()

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

    @routes.post("/api/v1/pins", status_code=201, responses={201: {"content": OBJECT}},
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
        return json_response({"pinned": pinned, "ns": ns.ino, "type": ns.type, "id": ns.id},
                             201)

    @routes.delete("/api/v1/pins", responses={200: {"content": OBJECT}})
    async def unpin(request: Request,
                    path: Annotated[str, Query(max_length=4096)]) -> Response:
        """Undo a pin (``nsctl unpin PATH``); refuses anything but a pinned namespace
        file in an allowed directory."""
        authorize(request)
        path = checked(path)
        what = await service.call_worker(service.model(), {"op": "unpin", "path": path})
        return json_response({"unpinned": path, "was": what})

    return routes
