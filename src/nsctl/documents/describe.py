"""Words for references: one line that says what keeps a namespace alive and where.

Shared by the commands and by ``nsctl watch``'s events; accepts a
:class:`~nsctl.model.Reference` or its JSON form (a dict, as diffs carry).
"""
from __future__ import annotations

from ..kernel import nsfs
from ..model import Namespace, Reference, Snapshot


def ns_name(ns: Namespace) -> str:
    return f"{ns.type}:[{ns.ino}]"


def as_reference(ref: Reference | dict) -> Reference:
    if isinstance(ref, Reference):
        return ref
    return Reference(**{k: v for k, v in ref.items() if k in Reference.__slots__})


def describe_ref(ref: Reference | dict, snap: Snapshot) -> str:
    """One reference in words, e.g. 'fd 5 of sleep (1234)'."""
    def who(pid: int | None) -> str:
        proc = snap.processes.get(pid) if pid is not None else None
        return f"{proc.comm} ({pid})" if proc else f"pid {pid}"

    ref = as_reference(ref)
    kind = ref.kind
    if kind == "process":
        via = "" if ref.link in nsfs.CLONE_FLAGS else f" via {ref.link}"
        return f"process {who(ref.pid)}{via}"
    if kind == "thread":
        return f"thread {ref.tid} of {who(ref.pid)}"
    if kind == "fd":
        return f"fd {ref.fd} of {who(ref.pid)}"
    if kind == "socket":
        return f"socket:[{ref.socket}] (fd {ref.fd}) of {who(ref.pid)}"
    if kind == "bindmount":
        where = "" if ref.mntns == snap.own.get("mnt") else f" in mnt:[{ref.mntns}]"
        return f"bind mount {ref.path}{where}"
    if kind == "child":
        child = snap.namespaces.get(ref.child)
        name = ns_name(child) if child else str(ref.child)
        return f"{'child' if ref.relation == 'parent' else 'owned'} {name}"
    return kind
