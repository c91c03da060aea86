"""Snapshots: the whole discovery as one versioned JSON document, and back.

A snapshot is what ``nsctl ls --json`` prints plus what the reading commands
need to work offline exactly as on the live host: the viewer's own
namespaces and PID level, whether the kernel had NS_GET_ID, and where and
when it was taken.  Loading checks the schema name and version first and
builds the whole model before anything is printed, so a broken or newer
file fails with one clear line and never half-prints.
"""
from __future__ import annotations

import json
import os
import time

from ..kernel.errors import NsctlError
from ..model import Container, Namespace, Problem, Process, Reference, Snapshot

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from ..query.pidmap import NoInits

SCHEMA = "nsctl-snapshot"
VERSION = 1


class SnapshotError(NsctlError):
    """A snapshot file that cannot be used."""


class EntryCache:
    """The namespace entries (Namespace.to_dict()) of the last document made through
    it, each kept with what it was made from: a watcher that makes a document per
    change makes anew only the entries of the namespaces that changed, and hands on
    the very dicts of the others (a patch between two documents then finds them
    equal at a glance).  The references are compared by value, so an entry is
    never that of another namespace or of an earlier state.  It keeps, too, which
    PID namespaces the kernel said have no init (nsctl.query.pidmap.NoInits)."""

    def __init__(self) -> None:
        from ..query.pidmap import NoInits

        self.entries: dict[int, tuple[tuple, tuple, dict]] = {}
        self.no_inits = NoInits()

    def dicts(self, namespaces: list[Namespace]) -> list[dict]:
        made: dict[int, tuple[tuple, tuple, dict]] = {}
        out = []
        for ns in namespaces:
            fields = (ns.type, ns.dev, ns.id, ns.owner, ns.parent, ns.owner_uid, ns.name,
                      ns.container)
            refs = tuple(ns.refs)
            hit = self.entries.get(ns.ino)
            if hit is None or hit[0] != fields or hit[1] != refs:
                hit = (fields, refs, ns.to_dict())
            made[ns.ino] = hit
            out.append(hit[2])
        self.entries = made
        return out


def to_document(snap: Snapshot, cache: EntryCache | None = None) -> dict:
    """The versioned document for ``snap`` (taken live); with a ``cache``, the entries
    of namespaces unchanged since the cache's last document are those very dicts."""
    doc = {"schema": SCHEMA, "version": VERSION, "host": os.uname().nodename,
           "kernel": os.uname().release, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
           "own": dict(snap.own), "own_pid_level": _own_level(snap),
           "has_ns_id": snap.has_ns_id,
           "pid_inits": _pid_inits(snap, cache.no_inits if cache is not None else None),
           "viewer_pid": snap.viewer_pid}
    if snap.net_views is not None:
        doc["net_views"] = {str(ino): view for ino, view in snap.net_views.items()}
    if snap.views is not None:
        doc["views"] = {str(ino): view for ino, view in snap.views.items()}
    namespaces = None
    if cache is not None:
        namespaces = cache.dicts(sorted(snap.namespaces.values(), key=lambda n: n.ino))
    doc.update(snap.to_dict(namespaces))
    return doc


def _pid_inits(snap: Snapshot, no_inits: NoInits | None = None) -> list[list]:
    """[ns, init PID, state] of every PID namespace whose init is known."""
    from ..query.pidmap import pid_namespaces

    return [[ino, info.init, info.init_state]
            for ino, info in pid_namespaces(snap, no_inits).items() if info.init is not None]


def _own_level(snap: Snapshot) -> int | None:
    if snap.own_pid_level is not None:
        return snap.own_pid_level
    from ..query.pidmap import own_level

    try:
        return own_level()
    except NsctlError:
        return None


def save(snap: Snapshot, path: str) -> None:
    """Write atomically and owner-only (nsctl.kernel.files.write_atomic): a reader never sees
    half a snapshot, a failure leaves none, and other users read none of it."""
    from ..kernel.files import write_atomic

    write_atomic(path, (json.dumps(to_document(snap)) + "\n").encode())


def load(path: str) -> Snapshot:
    """Read a snapshot file; SnapshotError for anything that is not a usable snapshot."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SnapshotError(f"{path}: not a snapshot (invalid JSON: {exc})") from None
    return from_document(doc, path)


def from_document(doc: object, where: str = "snapshot") -> Snapshot:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise SnapshotError(f"{where}: not an nsctl snapshot (no \"schema\": \"{SCHEMA}\")")
    version = doc.get("version")
    if not isinstance(version, int):
        raise SnapshotError(f"{where}: snapshot without a schema version")
    if version > VERSION:
        raise SnapshotError(f"{where}: snapshot schema version {version} is newer than this "
                            f"nsctl reads ({VERSION}); use a newer nsctl")
    try:
        return _build(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"{where}: broken snapshot ({type(exc).__name__}: {exc})") from None


def _build(doc: dict) -> Snapshot:
    snap = Snapshot()
    snap.offline = True
    snap.own = {str(k): int(v) for k, v in doc["own"].items()}
    snap.own_pid_level = doc.get("own_pid_level")
    snap.has_ns_id = doc.get("has_ns_id")
    snap.viewer_pid = doc.get("viewer_pid")
    if doc.get("net_views") is not None:
        snap.net_views = {int(ino): dict(view) for ino, view in doc["net_views"].items()}
    if doc.get("views") is not None:
        snap.views = {int(ino): dict(view) for ino, view in doc["views"].items()}
    snap.pid_inits = {int(ino): (int(pid), str(state))
                      for ino, pid, state in doc.get("pid_inits", [])}
    for d in doc["namespaces"]:
        ns = Namespace.from_dict(d)
        ns.pids = [int(p) for p in d.get("pids", [])]
        ns.refs = [Reference(**r) for r in d.get("refs", [])]
        container = d.get("container")
        ns.container = Container.from_dict(container) if container else None
        name = d.get("name")
        ns.name = name if isinstance(name, str) else None
        snap.namespaces[ns.ino] = ns
    for d in doc["processes"]:
        proc = Process.from_dict(d)
        snap.processes[proc.pid] = proc
    snap.problems = [Problem(p["reason"], p["what"], p.get("pid")) for p in doc["problems"]]
    if any(ns.name is None for ns in snap.namespaces.values()):
        # A file from before display names: named by the rule a scan names them by.
        from ..discovery.names import name_all

        name_all(snap, unnamed_only=True)
    return snap
