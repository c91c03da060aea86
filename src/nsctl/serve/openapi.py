"""The OpenAPI document ``/openapi.json``: what each route answers, with which status,
media type and schema, and how a client authenticates.

FastAPI writes the paths and parameters from the routes; this module writes the rest
as the server behaves: every error is ``{"error": "one line"}`` (400 where FastAPI
would say 422), the guard's refusals (401, 403, 408, 413, 415, 421, 429) and the
model's (500 discovery failed, 503 starting or busy) are listed on the routes that
can give them, documents have schemas (:data:`SCHEMAS`), ETags and 304 are listed
where the server gives them, and the bearer token is declared.
``tests/test_hostile_serve.py`` checks real answers against it.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .security import PUBLIC


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _int(nullable: bool = False) -> dict[str, Any]:
    return {"type": ["integer", "null"]} if nullable else {"type": "integer"}


def _str(nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"]} if nullable else {"type": "string"}


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _object(required: list[str], properties: dict[str, Any],
            description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": required, "properties": properties}
    if description:
        out["description"] = description
    return out


_PARTIAL = {"partial": {"type": "boolean"}, "problems": _list(_ref("Problem"))}

# The documents, as far as clients rely on them (docs/json.md has every key); each
# allows more keys than it lists.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object(["error"], {"error": _str()}, "Every error: one line, no traceback."),
    "Problem": _object(["reason", "what"], {
        "reason": {"type": "string", "enum": ["vanished", "denied", "unsupported", "error"]},
        "what": _str(), "pid": _int()}, "Something discovery could not read, and why."),
    "Reference": _object(["kind"], {
        "kind": _str(), "pid": _int(), "tid": _int(), "fd": _int(), "link": _str(),
        "socket": _int(), "path": _str(), "mntns": _int(), "child": _int(),
        "relation": _str()}, "One thing that keeps a namespace alive."),
    "Container": _object(["engine", "id"], {"engine": _str(), "id": _str(True)}),
    "Namespace": _object(
        ["ns", "type", "hidden", "held_by", "pids", "refs"],
        {"ns": _int(), "type": _str(), "dev": _int(True), "id": _int(True),
         "owner": _int(True), "parent": _int(True), "owner_uid": _int(True),
         "name": _str(), "hidden": {"type": "boolean"}, "held_by": _list(_str()),
         "pids": _list(_int()), "refs": _list(_ref("Reference")),
         "container": {"anyOf": [_ref("Container"), {"type": "null"}]}}),
    "Process": _object(["pid", "ppid", "comm", "cmdline", "uid", "ns"], {
        "pid": _int(), "ppid": _int(), "comm": _str(), "cmdline": _list(_str()),
        "uid": _int(), "ns": {"type": "object", "additionalProperties": _int()},
        "nspid": {"type": ["array", "null"], "items": _int()}}),
    "NamespaceList": _object(["namespaces", "processes", "partial", "problems"], {
        "namespaces": _list(_ref("Namespace")), "processes": _list(_ref("Process")),
        **_PARTIAL}, "nsctl ls --json"),
    "NamespaceShown": {"allOf": [_ref("Namespace"), _object(
        ["processes", "partial", "problems"],
        {"stable_path": _str(True), "processes": _list(_ref("Process")),
         "view": {"type": "object"}, **_PARTIAL})], "description": "nsctl show --json"},
    "Tree": _object(["tree", "partial", "problems"], {
        "tree": _list({"type": "object"}), **_PARTIAL}, "nsctl tree --json"),
    "PidTree": _object(["pid_namespaces", "partial", "problems"], {
        "pid_namespaces": _list({"type": "object"}), **_PARTIAL}, "nsctl pidtree --json"),
    "Net": _object(["partial", "problems"], _PARTIAL, "nsctl net --json"),
    "Processes": _object(["processes", "partial"], {
        "processes": _list(_ref("Process")), "partial": {"type": "boolean"}}),
    "Snapshot": {"type": "object", "description": "nsctl snapshot: a document that "
                 "nsctl diff and POST /api/v1/diff read back"},
    "Diff": _object(["appeared", "disappeared", "changed", "moved"], {
        "appeared": _list({"type": "object"}), "disappeared": _list({"type": "object"}),
        "changed": _list({"type": "object"}), "moved": _list({"type": "object"})},
        "nsctl diff --json"),
    "Status": _object(["generation", "scanned_at", "age", "partial", "problems", "version",
                       "namespaces", "processes", "stale"], {
        "generation": _int(), "scanned_at": _str(), "age": {"type": "number"},
        "version": _str(), "namespaces": _int(), "processes": _int(),
        "stale": {"type": "boolean"}, **_PARTIAL}),
    "Health": _object(["ok"], {"ok": {"type": "boolean"}}),
    "Pinned": _object(["pinned", "ns", "type"], {"pinned": _str(), "ns": _int(),
                                                 "type": _str(), "id": _int(True)}),
    "Unpinned": _object(["unpinned"], {"unpinned": _str(), "was": {}}),
}

# The schema of each route's answer, by (method, path): (status, media type, schema).
_SUCCESS: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = {
    ("get", "/healthz"): (200, "application/json", _ref("Health")),
    ("get", "/api/v1/status"): (200, "application/json", _ref("Status")),
    ("get", "/api/v1/namespaces"): (200, "application/json", _ref("NamespaceList")),
    ("get", "/api/v1/namespaces/{spec}"): (200, "application/json", _ref("NamespaceShown")),
    ("get", "/api/v1/tree"): (200, "application/json", _ref("Tree")),
    ("get", "/api/v1/pidtree"): (200, "application/json", _ref("PidTree")),
    ("get", "/api/v1/net"): (200, "application/json", _ref("Net")),
    ("get", "/api/v1/processes"): (200, "application/json", _ref("Processes")),
    ("get", "/api/v1/snapshot"): (200, "application/json", _ref("Snapshot")),
    ("post", "/api/v1/diff"): (200, "application/json", _ref("Diff")),
    ("get", "/api/v1/diff"): (200, "application/json", _ref("Diff")),
    ("get", "/api/v1/events"): (200, "text/event-stream", _str()),
    ("get", "/metrics"): (200, "text/plain", _str()),
    ("post", "/api/v1/pins"): (201, "application/json", _ref("Pinned")),
    ("delete", "/api/v1/pins"): (200, "application/json", _ref("Unpinned")),
}

# The documents answered with an ETag (a hash of the document): a GET with
# If-None-Match naming it gets 304 without a body.
_TAGGED = {"/api/v1/namespaces", "/api/v1/namespaces/{spec}", "/api/v1/tree",
           "/api/v1/pidtree", "/api/v1/net", "/api/v1/processes", "/api/v1/snapshot"}
_ETAG = {"ETag": {"description": "the document's entity tag (weak): the same for the "
                                 "same document, whatever model it came from",
                  "schema": {"type": "string"}}}

_WHY = {
    400: "bad input (a parameter, the body, a SPEC)",
    401: "missing or wrong bearer token (when the server has a token)",
    403: "refused: a cross-site request, the metrics token on another route, or "
         "a pin by a user who may not",
    404: "no such namespace, file or earlier model",
    408: "the request body came too slowly",
    409: "the pin directory or path is not safe to use",
    413: "the request body is larger than the server takes",
    415: "the body is not application/json",
    421: "the Host header names another server (TCP without a token)",
    429: "too many requests (Retry-After says when to try again)",
    500: "discovery failed, or a helper process did",
    503: "starting (no model yet), stopping, or busy (Retry-After)",
    504: "a helper process took too long",
}


def _errors(method: str, path: str, op: dict[str, Any]) -> list[int]:
    """The error statuses a route can answer with, as the guard and the route decide."""
    if path == "/healthz":
        return [503]
    codes = {429, 500, 503}
    if not PUBLIC.match(path):
        codes |= {401, 403, 421}
    if op.get("parameters") or op.get("requestBody") or path == "/api/v1/events":
        codes.add(400)   # (the event stream's is a bad Last-Event-ID header)
    if method in ("post", "put", "patch"):
        codes |= {400, 408, 413, 415}
    if path in ("/api/v1/namespaces/{spec}", "/api/v1/diff", "/api/v1/pins"):
        codes.add(404)
    if path in ("/api/v1/namespaces/{spec}", "/api/v1/net", "/api/v1/pins"):
        codes.add(504)
    if path == "/api/v1/pins":
        codes |= {403, 409}
    return sorted(codes)


def build(app: FastAPI) -> dict[str, Any]:
    """The document: FastAPI's paths and parameters, the rest written here."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {})
    components["schemas"] = dict(SCHEMAS)
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "The server's --token-file (or --metrics-token-file for /metrics "
                       "only); not needed on the unix socket without a token."}}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            status, media, schema = _SUCCESS.get((method, path),
                                                 (200, "application/json", {"type": "object"}))
            responses: dict[str, Any] = {str(status): {
                "description": op.get("summary") or "the answer",
                "content": {media: {"schema": schema}}}}
            if method == "get" and path in _TAGGED:
                responses[str(status)]["headers"] = _ETAG
                responses["304"] = {"description": "not modified: If-None-Match names the "
                                                   "document's ETag", "headers": _ETAG}
            for code in _errors(method, path, op):
                responses[str(code)] = {
                    "description": _WHY[code],
                    "content": {"application/json": {"schema": _ref("Error")}}}
            op["responses"] = responses
            op["security"] = [] if PUBLIC.match(path) else [{"bearer": []}, {}]
    return doc


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document at the app's openapi_url (built once)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(build(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
