"""The ``nsctl pid PID --json`` documents: a PID as seen from another PID namespace
(with a target namespace), or at every level from ours down to the process's own."""
from __future__ import annotations

from ..kernel.errors import NsctlError
from ..model import Namespace, Snapshot
from ..query import pidmap
from .problems import gaps


class NotPidNamespace(NsctlError):
    """A SPEC that names a namespace of another type where a PID namespace is meant."""


def pid_namespace(spec: str | None, snap: Snapshot) -> Namespace | None:
    """The PID namespace ``spec`` names (None for None)."""
    if spec is None:
        return None
    from ..query.spec import resolve

    ns = resolve(spec, snap)
    if ns.type != "pid":
        raise NotPidNamespace(f"{spec} is a {ns.type} namespace, not a PID namespace")
    return ns


def translation(pid: int, snap: Snapshot, from_ns: Namespace | None, to_ns: Namespace,
                tgid: bool = False, via: str = pidmap.AUTO) -> dict:
    """``pid`` (meant in ``from_ns``, default ours) as ``to_ns`` sees it."""
    result = pidmap.translate(pid, snap, from_ns, to_ns, tgid=tgid, via=via)
    return {"pid": pid, "from": (from_ns or snap.namespaces[snap.own["pid"]]).ino,
            "to": to_ns.ino, "result": result, **gaps(snap)}


def levels(pid: int, snap: Snapshot, from_ns: Namespace | None, tgid: bool = False,
           via: str = pidmap.AUTO) -> dict:
    """``pid`` (meant in ``from_ns``, default ours) in every PID namespace from ours down
    to its own, each with its level."""
    ours = pidmap.to_ours(pid, from_ns or snap.namespaces[snap.own["pid"]], snap, via=via)
    found = pidmap.levels_of(ours, snap, tgid=tgid)
    base = pidmap.own_level()
    def name(ino: int) -> str:
        ns = snap.namespaces.get(ino)
        return ns.name or ns.label if ns is not None else f"pid:[{ino}]"
    return {"pid": pid, "levels": [{"ns": ns, "name": name(ns), "level": base + i, "pid": p}
                                   for i, (ns, p) in enumerate(found)], **gaps(snap)}
