"""Words for namespaces, references and users: one line that says what keeps a namespace
alive and where, the process that stands for a namespace, a user's name.

Shared by the documents, the commands and ``nsctl watch``'s events; :func:`describe_ref`
accepts a :class:`~nsctl.model.Reference` or its JSON form (a dict, as diffs carry).
"""
from __future__ import annotations

from functools import cache

from ..kernel import nsfs
from ..model import Namespace, Process, Reference, Snapshot


def ns_name(ns: Namespace) -> str:
    return ns.label


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
        child = snap.namespaces.get(ref.child) if ref.child is not None else None
        name = ns_name(child) if child else str(ref.child)
        return f"{'child' if ref.relation == 'parent' else 'owned'} {name}"
    return kind


@cache
def user_name(uid: int | None) -> str:
    """The login name of ``uid``, its number when it has none, "" for None."""
    if uid is None:
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def representative(ns: Namespace, snap: Snapshot) -> Process | None:
    """The process shown for a namespace: the lowest PID in it."""
    if not ns.pids:
        return None
    return snap.processes.get(min(ns.pids))
