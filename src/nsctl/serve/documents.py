"""The API's JSON documents, built from a model by :mod:`nsctl.documents` as the commands
build theirs (so ``GET /api/v1/tree`` is ``nsctl tree --json``), plus what only the
service has: filters, the SPEC forms a client may use, status.

Nothing here reads the live kernel: the model is an offline snapshot.
"""
from __future__ import annotations

import json
import re

from ..kernel.errors import NoSuchProcess, NsctlError
from ..model import Namespace, Snapshot


class ApiError(NsctlError):
    """A request the API refuses: ``status`` is the HTTP status, the text one line."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- GET /api/v1/namespaces ----------------------------------------------------------------

def check_types(values: list[str] | None) -> set[str] | None:
    """``type`` query values, as ``ls -t`` takes them (:func:`nsctl.documents.ls.parse_types`)."""
    from ..documents.ls import UnknownType, parse_types

    try:
        types = parse_types(values)
    except UnknownType as exc:
        raise ApiError(str(exc)) from None
    return None if types is None else set(types)


def _container_matches(query: str, ns: Namespace, snap: Snapshot) -> bool:
    """The namespace is a container's (or pod's), or one of its processes is in a
    container, whose label, name, id (prefix), Compose project/service, pod or pod
    name matches ``query``."""
    def match(c) -> bool:
        return c is not None and (query in c.label.lower() or
                                  (c.name is not None and query in c.name.lower()) or
                                  (c.id is not None and c.id.lower().startswith(query)) or
                                  (c.pod is not None and c.pod.lower().startswith(query)) or
                                  (c.pod_name is not None and query in c.pod_name.lower()) or
                                  (c.project is not None and
                                   query in f"{c.project}/{c.service or ''}".lower()))

    if match(ns.container):
        return True
    return any(match(snap.processes[p].container) for p in ns.pids if p in snap.processes)


def _search_text(ns: Namespace, snap: Snapshot, paths: dict[int, str]) -> str:
    """What ``q`` looks in: name, stable path, bind-mount paths, container, commands."""
    parts = [ns.label, paths.get(ns.ino) or ""]
    parts.extend(r.path for r in ns.refs if r.path)
    if ns.container is not None:
        parts.append(ns.container.label)
    for pid in ns.pids:
        proc = snap.processes.get(pid)
        if proc is not None:
            parts.append(proc.command)
            if proc.container is not None:
                parts.append(proc.container.label)
    return "\n".join(parts).lower()


def select(snap: Snapshot, types: set[str] | None = None, container: str | None = None,
           pid: int | None = None, q: str | None = None) -> list[int]:
    """The inodes of the namespaces that pass every filter given, in inode order."""
    keep = list(snap.namespaces.values())
    if types is not None:
        keep = [ns for ns in keep if ns.type in types]
    if pid is not None:
        proc = snap.processes.get(pid)
        inos = set(proc.ns.values()) if proc is not None else set()
        keep = [ns for ns in keep if ns.ino in inos]
    if container:
        query = container.lower()
        keep = [ns for ns in keep if _container_matches(query, ns, snap)]
    if q:
        from ..query.naming import stable_paths

        paths = stable_paths(snap)
        needle = q.lower()
        keep = [ns for ns in keep if needle in _search_text(ns, snap, paths)]
    return sorted(ns.ino for ns in keep)


LS_KEYS = ("namespaces", "processes", "partial", "problems")   # Snapshot.to_dict's keys


def ls_text(doc: dict, namespaces: list[dict] | None = None,
            rest: bytes | None = None) -> bytes:
    """``nsctl ls --json`` as bytes, from the snapshot document ``doc`` (whose
    namespace entries are already ``Namespace.to_dict()``), with ``namespaces``
    in place of all of them (the ``-t`` behaviour: processes, partial and problems
    stay whole).  ``rest``: :func:`ls_rest` of ``doc``, if at hand."""
    if rest is None:
        rest = ls_rest(doc)
    listed = doc["namespaces"] if namespaces is None else namespaces
    return b'{"namespaces": ' + json.dumps(listed).encode() + b", " + rest


def ls_rest(doc: dict) -> bytes:
    """The part of the ls document after its namespace list (serialized once per model)."""
    return json.dumps({k: doc[k] for k in LS_KEYS[1:]}).encode()[1:]


# --- GET /api/v1/namespaces/{spec} --------------------------------------------------------

# The SPEC forms a client may use: all but paths to files (which would name files on
# this host to open).  A stable path is checked with nsctl.query.naming's own pattern.
_CLIENT_FORMS = (
    re.compile(r"^\d{1,20}$"),                                   # inode or id
    re.compile(r"^[a-z]{2,6}:\[\d{1,20}\]$"),                    # type:[inode]
    re.compile(r"^\d{1,10}/[a-z_]{2,20}$"),                      # PID/TYPE
    re.compile(r"^container:[A-Za-z0-9_.:@-]{0,256}(?:/[A-Za-z0-9_.:@-]{0,256})?"
               r"(?:/[a-z_]{0,20})?$"),                          # also project/service
    re.compile(r"^pod:[A-Za-z0-9_.:@-]{1,256}(?:/[A-Za-z0-9_.:@-]{0,256})?/[a-z_]{2,20}$"),
)


def client_spec(spec: str) -> str:
    """``spec`` if it is a form the API takes; ApiError (400) for paths and junk."""
    from ..query.naming import parse

    spec = spec.strip()
    if any(form.match(spec) for form in _CLIENT_FORMS):
        return spec
    for candidate in (spec, "/" + spec):
        if parse(candidate) is not None and len(candidate) <= 1024:
            return candidate
    raise ApiError(f"{spec[:100]!r} is not a SPEC this API takes: use an inode or id, "
                   "type:[inode], PID/TYPE, container:NAME-OR-ID/TYPE, pod:NAME/TYPE or a stable "
                   "path (/user.0/net.1); paths to namespace files are refused")


def find(spec: str, snap: Snapshot) -> Namespace:
    """The namespace ``spec`` names; ApiError 404 (names nothing) or 400."""
    from ..query.spec import SpecError, resolve

    spec = client_spec(spec)
    try:
        return resolve(spec, snap)
    except NoSuchProcess as exc:
        raise ApiError(str(exc), 404) from None
    except SpecError as exc:
        raise ApiError(str(exc), 404 if exc.not_found else 400) from None


def show(ns: Namespace, snap: Snapshot) -> dict:
    from ..documents.show import document

    return document(ns, snap)


# --- the other views of the model ------------------------------------------------------------

def tree(snap: Snapshot) -> dict:
    from ..documents.tree import document

    return document(snap)


def pidtree(snap: Snapshot) -> dict:
    from ..documents.pidtree import document

    return document(snap)


def net(snap: Snapshot, views: dict[int, dict]) -> dict:
    from ..documents.net import topology

    return topology(snap, {ino: v for ino, v in views.items() if ino in snap.namespaces})


def processes(snap: Snapshot) -> dict:
    return {"processes": [p.to_dict() for p in sorted(snap.processes.values(),
                                                       key=lambda p: p.pid)],
            "partial": snap.partial}


def diff(a: Snapshot, b: Snapshot) -> dict:
    """``nsctl diff A B --json`` (A the client's or an earlier model, B the current one)."""
    from ..documents.diff import document

    return document(a, b)


# --- request bodies ------------------------------------------------------------------------

# The most parsing builds per item of a JSON text (CPython, 64-bit): an object with a
# few keys, an array, a string or number with its pointer.
_OBJECT_COST, _ARRAY_COST, _ITEM_COST = 240, 72, 64


def parse_body(body: bytes, budget: int) -> object:
    """A request body as JSON, refused (413) before anything is built when what it
    would build could exceed ``budget`` bytes: 16 MiB of ``[{},{},...]`` would be
    half a gigabyte of empty dicts, where a real snapshot builds about eight times
    its size.  The counts are upper bounds (a brace inside a string counts too)."""
    cost = (body.count(b"{") * _OBJECT_COST + body.count(b"[") * _ARRAY_COST
            + (body.count(b",") + 1) * _ITEM_COST + len(body))
    if cost > budget:
        raise ApiError(f"the body would take about {cost >> 20} MiB to parse, more than "
                       f"the {budget >> 20} MiB a request may use", 413)
    try:
        return json.loads(body)
    except RecursionError:
        raise ApiError("the body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(f"the body is not JSON: {exc}") from None
