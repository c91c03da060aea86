"""SPEC: the ways a user names one namespace, resolved against a snapshot.

Forms (a table, tried in order): ``container:NAME-OR-ID/TYPE``, ``type:[inode]``,
``PID/TYPE`` (also ``PID/pid_for_children``), a stable path
(``/user.0/user.2/net.1``, see nsctl.query.naming), a path to a namespace file
(``/proc/PID/ns/net``, a bind mount such as ``/run/netns/x``), and a bare
number, which is an inode or an NS_GET_ID id (an error if it could be either
and they differ).
"""
from __future__ import annotations

import os
import re

from ..kernel import nsfs
from ..kernel.errors import NoSuchProcess, NotANamespace, NsctlError
from ..model import Namespace, Snapshot

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable


class SpecError(NsctlError):
    """A SPEC that is malformed or names more than one namespace, or, with
    ``not_found``, is well formed but names nothing (the server's 404, not 400)."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


class NotFound(SpecError):
    """A well-formed SPEC that names no namespace (now)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, not_found=True)


_TYPED = re.compile(r"^(?P<type>[a-z]+):\[(?P<ino>\d+)\]$")
_PID_TYPE = re.compile(r"^(?P<pid>\d+)/(?P<link>[a-z_]+)$")
_CONTAINER = re.compile(r"^container:(?P<query>[^/]*)(?:/(?P<link>[^/]*))?$")


def _by_typed(spec: str, snap: Snapshot) -> Namespace | None:
    m = _TYPED.match(spec)
    if not m:
        return None
    ns_type, ino = m.group("type"), int(m.group("ino"))
    if ns_type not in nsfs.CLONE_FLAGS:
        raise SpecError(f"unknown namespace type {ns_type!r} in {spec!r}")
    ns = _found(snap, ino, spec)
    if ns.type != ns_type:
        raise SpecError(f"{spec}: namespace {ino} is a {ns.type} namespace, not {ns_type}")
    return ns


def _by_pid_type(spec: str, snap: Snapshot) -> Namespace | None:
    m = _PID_TYPE.match(spec)
    if not m:
        return None
    pid, link = m.group("pid"), m.group("link")
    if link not in nsfs.LINK_TYPE:
        raise SpecError(f"unknown namespace type {link!r} in {spec!r} "
                        f"(one of {', '.join(nsfs.LINK_TYPE)})")
    if snap.offline:  # a snapshot: the process as it was then
        proc = snap.processes.get(int(pid))
        if proc is None or link not in proc.ns:
            raise NotFound(f"{spec}: no process with PID {pid} (or no {link} link) in the "
                            "snapshot")
        return _found(snap, proc.ns[link], spec)
    try:
        text = os.readlink(f"/proc/{pid}/ns/{link}")
    except FileNotFoundError:
        raise NoSuchProcess(f"{spec}: no process with PID {pid}") from None
    except OSError as exc:
        raise SpecError(f"{spec}: {exc.strerror}") from None
    parsed = nsfs.parse_link(text)
    if parsed is None:
        raise SpecError(f"{spec}: unexpected link {text!r}")
    return _found(snap, parsed[1], spec)


def _by_path(spec: str, snap: Snapshot) -> Namespace | None:
    if "/" not in spec and not os.path.exists(spec):
        return None
    if snap.offline:
        raise SpecError(f"{spec}: a path names a live namespace file; with a snapshot use "
                        "type:[inode], an inode or id, or PID/TYPE")
    try:
        fd = nsfs.open_ns(spec)
    except NsctlError as exc:
        raise SpecError(str(exc)) from None
    try:
        try:
            nsfs.ns_type(fd)
        except NotANamespace:
            raise SpecError(f"{spec}: not a namespace file") from None
        ino = os.fstat(fd).st_ino
    finally:
        os.close(fd)
    return _found(snap, ino, spec)


def _by_stable_path(spec: str, snap: Snapshot) -> Namespace | None:
    """``/user.0/user.2/net.1``: a stable path (nsctl.query.naming); ``/?/...`` for namespaces
    whose owner is not visible."""
    from . import naming

    steps = naming.parse(spec)
    if steps is None or any(t != "?" and t not in nsfs.CLONE_FLAGS for t, _r in steps):
        return None  # not written like a stable path: maybe a file path
    ns = naming.resolve_path(spec, snap)
    if ns is not None:
        return ns
    if not getattr(snap, "offline", False) and os.path.exists(spec):
        return None  # a real file that happens to look like one
    raise NotFound(f"{spec}: no namespace has this stable path "
                    "(nsctl ls -o +SPATH lists them)")


def _by_number(spec: str, snap: Snapshot) -> Namespace | None:
    if not spec.isdigit():
        return None
    number = int(spec)
    by_ino = snap.namespaces.get(number)
    by_id = [ns for ns in snap.namespaces.values() if ns.id == number]
    candidates = {ns.ino: ns for ns in ([by_ino] if by_ino else []) + by_id}
    if len(candidates) > 1:
        assert by_ino is not None   # ids are unique: of two candidates, one has this inode
        raise SpecError(f"{spec} is ambiguous: it is the inode of "
                        f"{by_ino.label} and the id of "
                        f"{by_id[0].label}; write type:[inode] instead")
    if not candidates:
        raise NotFound(f"no namespace with inode or id {spec}")
    return next(iter(candidates.values()))


def _by_container(spec: str, snap: Snapshot) -> Namespace | None:
    """``container:X/TYPE``: the TYPE namespace of the container whose name or id
    (or id prefix) is X, as its top process has it (nsctl.discovery.cgroup_names.main_process)."""
    m = _CONTAINER.match(spec)
    if not m:
        return None
    query, link = m.group("query"), m.group("link")
    types = ", ".join(nsfs.LINK_TYPE)
    if not link:
        container_process(query, snap, spec)  # an unknown or ambiguous name says so first
        raise SpecError(f"{spec} names a container, not a namespace: add the type, "
                        f"container:{query}/TYPE (TYPE one of {types})")
    if link not in nsfs.LINK_TYPE:
        raise SpecError(f"unknown namespace type {link!r} in {spec!r} (one of {types})")
    pid = container_process(query, snap, spec)
    ino = snap.processes[pid].ns.get(link)
    if ino is None:
        raise NotFound(f"{spec}: process {pid} of that container shows no {link} namespace")
    return _found(snap, ino, spec)


def container_process(query: str, snap: Snapshot, spec: str) -> int:
    """The PID that stands for the container named (or id-prefixed) ``query``."""
    from ..discovery import cgroup_names as containers

    if not query:
        raise SpecError(f"{spec}: name the container, e.g. container:3f4e5a/net")
    found = containers.find(query, snap)
    if not found:
        known = sorted(c.label for c in containers.containers(snap))
        seen = (f"containers seen: {', '.join(known[:10])}" + (" ..." if len(known) > 10 else "")
                if known else "no process is in a container")
        raise NotFound(f"{spec}: no container's name or id starts with {query!r} ({seen})")
    if len(found) > 1:
        names = sorted(f"{c.engine}:{c.name or c.id}" for c in found)
        raise SpecError(f"{spec}: {query!r} matches {len(found)} containers: "
                        f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}; "
                        "write more of the id")
    return containers.main_process(found[0], snap)


FORMS: list[tuple[str, Callable[[str, Snapshot], Namespace | None]]] = [
    ("container:NAME-OR-ID/TYPE", _by_container),
    ("type:[inode]", _by_typed),
    ("PID/TYPE", _by_pid_type),
    ("number (inode or id)", _by_number),
    ("stable path (/user.0/.../TYPE.N)", _by_stable_path),
    ("path to a namespace file", _by_path),
]


def _found(snap: Snapshot, ino: int, spec: str) -> Namespace:
    ns = snap.namespaces.get(ino)
    if ns is None:
        raise NotFound(f"{spec}: namespace {ino} not found (gone, or not visible to us)")
    return ns


def resolve(spec: str, snap: Snapshot) -> Namespace:
    """The namespace that ``spec`` names in ``snap``; SpecError otherwise."""
    spec = spec.strip()
    if not spec:
        raise SpecError("empty namespace spec")
    for _name, form in FORMS:
        ns = form(spec, snap)
        if ns is not None:
            return ns
    raise SpecError(f"cannot read {spec!r} as a namespace: use type:[inode], an inode or id, "
                    "PID/TYPE, container:NAME-OR-ID/TYPE, a stable path (/user.0/net.1), "
                    "or a path to a namespace file")
