"""Words for namespaces, references and users: a namespace's display name, one line
that says what keeps a namespace alive and where, the process that stands for a
namespace, a user's name.

Shared by the documents, the commands and ``nsctl watch``'s events; :func:`describe_ref`
accepts a :class:`~nsctl.model.Reference` or its JSON form (a dict, as diffs carry).
Copies of one bind mount (the same path in the mount namespaces made since it was
mounted: every ``unshare -m`` copies ``/run/netns/blue``) are one line
(:func:`describe_refs`); the JSON documents keep every reference.
"""
from __future__ import annotations

from functools import cache

from ..kernel import nsfs
from ..model import Namespace, Process, Reference, Snapshot


def ns_name(ns: Namespace) -> str:
    """The namespace's display name (nsctl.discovery.names), ``type:[inode]`` if it has none."""
    return ns.name or ns.label


def ns_title(ns: Namespace) -> str:
    """``net:[4026532177] blue``: the kernel's name for it, then its display name."""
    name = ns.name
    return ns.label if not name or name == ns.label else f"{ns.label} {name}"


def as_reference(ref: Reference | dict) -> Reference:
    if isinstance(ref, Reference):
        return ref
    return Reference(**{k: v for k, v in ref.items() if k in Reference.__slots__})


def describe_ref(ref: Reference | dict, snap: Snapshot) -> str:
    """One reference in words, e.g. 'fd 5 of sleep(1234)'."""
    def who(pid: int | None) -> str:
        proc = snap.processes.get(pid) if pid is not None else None
        return f"{proc.comm}({pid})" if proc else f"pid {pid}"

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
        # "owned net blue": the child by its type and display name.
        name = (f"{child.type} {child.name}" if child is not None and child.name
                and child.name != child.label else
                child.label if child is not None else f"namespace {ref.child}")
        return f"{'child' if ref.relation == 'parent' else 'owned'} {name}"
    return kind


def describe_refs(refs: list[Reference], snap: Snapshot) -> list[str]:
    """References in words, in order, the copies of one bind mount (one path in
    several mount namespaces) as one: ``bind mount /run/netns/blue (in 7 mount
    namespaces)``."""
    copies: dict[str, int] = {}
    for r in refs:
        if r.kind == "bindmount" and r.path is not None:
            copies[r.path] = copies.get(r.path, 0) + 1
    out = []
    for r in refs:
        if r.kind == "bindmount" and r.path is not None and copies.get(r.path, 1) > 1:
            n = copies.pop(r.path)
            out.append(f"bind mount {r.path} (in {n} mount namespaces)")
        elif r.kind != "bindmount" or r.path is None or r.path in copies:
            out.append(describe_ref(r, snap))
    return out


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
