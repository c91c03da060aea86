"""SPEC: the ways a user names one namespace, resolved against a snapshot.

Forms (a table, tried in order): ``container:NAME-OR-ID/TYPE`` (also
``container:PROJECT/SERVICE/TYPE``), ``pod:NAME/TYPE``, ``type:[inode]``,
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
from ..model import Container, Namespace, Snapshot

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


def _split(rest: str) -> tuple[str, str | None]:
    """``QUERY[/TYPE]`` (QUERY may itself hold one ``/``: a Compose project/service or a
    Kubernetes namespace/name): the query and the type, if the last part is one."""
    head, sep, last = rest.rpartition("/")
    if sep and (last in nsfs.LINK_TYPE or "/" in head):
        return head, last
    return rest, None


def _by_container(spec: str, snap: Snapshot) -> Namespace | None:
    """``container:X/TYPE``: the TYPE namespace of the container whose name, id (or id
    prefix) or Compose ``project/service`` is X, as its top process has it
    (nsctl.discovery.cgroup_names.main_process)."""
    if not spec.startswith("container:"):
        return None
    query, link = _split(spec[len("container:"):])
    types = ", ".join(nsfs.LINK_TYPE)
    if not link and "/" in query:
        from ..discovery import cgroup_names as containers

        if not containers.find(query, snap):   # not a Compose service: X/TYPE, a bad type
            query, _, link = query.rpartition("/")
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
    """The PID that stands for the container named (or id-prefixed) ``query``, or
    for the Compose service ``project/service`` (one container of it)."""
    from ..discovery import cgroup_names as containers

    if not query:
        raise SpecError(f"{spec}: name the container, e.g. container:web/net")
    found = containers.find(query, snap)
    if not found:
        known = sorted(c.label for c in containers.containers(snap))
        seen = (f"containers seen: {', '.join(known[:10])}" + (" ..." if len(known) > 10 else "")
                if known else "no process is in a container")
        raise NotFound(f"{spec}: no container's name or id starts with {query!r} ({seen})")
    if len(found) > 1:
        raise SpecError(f"{spec}: {query!r} matches {len(found)} containers: "
                        f"{_candidates(found)}; write more of the name or id")
    return containers.main_process(found[0], snap)


def _candidates(found: list[Container]) -> str:
    names = sorted(f"{c.engine}:{c.name} ({(c.id or '')[:12]})" if c.name and c.name != c.id
                   else f"{c.engine}:{c.id}" for c in found)
    return ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")


def _by_pod(spec: str, snap: Snapshot) -> Namespace | None:
    """``pod:NAME/TYPE``: the TYPE namespace the containers of the pod named NAME
    (Kubernetes: ``NAMESPACE/NAME`` or NAME; or a pod id prefix) share."""
    if not spec.startswith("pod:"):
        return None
    from ..discovery import cgroup_names as containers

    query, link = _split(spec[len("pod:"):])
    types = ", ".join(nsfs.LINK_TYPE)
    if not query:
        raise SpecError(f"{spec}: name the pod, e.g. pod:web/net")
    pods = containers.find_pod(query, snap)
    if not pods:
        known = sorted({c.pod_name or (c.pod or "")[:12]
                        for c in containers.containers(snap) if c.pod})
        seen = f"pods seen: {', '.join(known[:10])}" if known else "no pod seen"
        raise NotFound(f"{spec}: no pod's name or id starts with {query!r} ({seen})")
    if len(pods) > 1:
        raise SpecError(f"{spec}: {query!r} matches {len(pods)} pods: "
                        f"{', '.join(sorted(pods)[:10])}; write more of the name or id")
    members = next(iter(pods.values()))
    if not link or link not in nsfs.LINK_TYPE:
        raise SpecError(f"{spec} names a pod, not a namespace: write pod:{query}/TYPE "
                        f"(TYPE one of {types})")
    inos: dict[int, list[Container]] = {}
    for c in members:
        ino = snap.processes[containers.main_process(c, snap)].ns.get(link)
        if ino is not None:
            inos.setdefault(ino, []).append(c)
    if not inos:
        raise NotFound(f"{spec}: no process of that pod shows a {link} namespace")
    if len(inos) > 1:
        raise SpecError(f"{spec}: the pod's containers do not share one {link} namespace: "
                        f"name one of them: {_candidates(members)}")
    return _found(snap, next(iter(inos)), spec)


FORMS: list[tuple[str, Callable[[str, Snapshot], Namespace | None]]] = [
    ("container:NAME-OR-ID/TYPE", _by_container),
    ("pod:NAME/TYPE", _by_pod),
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
                    "PID/TYPE, container:NAME-OR-ID/TYPE, pod:NAME/TYPE, a stable path "
                    "(/user.0/net.1), or a path to a namespace file")
