"""SPEC: the ways a user names one namespace, resolved against a snapshot.

Forms (a table, tried in order): ``container:NAME-OR-ID/TYPE`` (also
``container:PROJECT/SERVICE/TYPE``), ``pod:NAME/TYPE``, ``type:[inode]``,
``PID/TYPE`` (also ``PID/pid_for_children``), a stable path
(``/user.0/user.2/net.1``, see nsctl.query.naming), a path to a namespace file
(``/proc/PID/ns/net``, a bind mount such as ``/run/netns/x``), and a bare
number, which is an inode or an NS_GET_ID id (an error if it could be either
and they differ, or if it is an id and a PID too).  Where they all fail, a
display name (nsctl.discovery.names): ``blue``, ``docker:web`` or ``web``,
``sleep(4242)``, with ``/TYPE`` where one name names several namespaces
(``web/net``; a name without a namespace of that type stands for its processes:
the TYPE namespace of the lowest PID in them).
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


# Every SPEC form in words, for the commands' --help.
SPEC_HELP = ("SPEC names one namespace: its display name (the NAME column of nsctl ls: "
             "an ip netns name such as blue, a container such as docker:web or just web, "
             "a bind mount's path, a process as sleep(4242)), with /TYPE where one name "
             "names several (web/net); type:[inode] (net:[4026532177]); an inode; an "
             "NS_GET_ID id (a number that is also a PID is refused: write PID/TYPE or "
             "type:[inode]); PID/TYPE (4242/net, also 4242/pid_for_children); "
             "container:NAME-OR-ID/TYPE (or container:PROJECT/SERVICE/TYPE); "
             "pod:NAME/TYPE; a stable path (/user.0/net.1, see nsctl ls -o "
             "+SPATH); or a path to a namespace file (/proc/PID/ns/net, /run/netns/NAME).")

PID_MAX_LIMIT = 4194304   # the kernel's bound on pid_max: no PID is larger
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
    is_pid = number in snap.processes or (
        not snap.offline and number <= PID_MAX_LIMIT and os.path.exists(f"/proc/{number}"))
    if not candidates:
        hint = f"; {number} is a PID: write {number}/TYPE (e.g. {number}/net)" if is_pid else ""
        raise NotFound(f"no namespace with inode or id {spec}{hint}")
    if by_ino is None and is_pid:
        raise SpecError(f"{spec} is ambiguous: it is the id of {by_id[0].label} and a PID; "
                        f"write {by_id[0].label} for that namespace, or {spec}/TYPE for the "
                        "process's")
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
    failed: SpecError | None = None
    for _name, form in FORMS:
        try:
            ns = form(spec, snap)
        except SpecError as exc:
            # Found nothing, or no such file: a display name may still be it.
            if not exc.not_found and form is not _by_path:
                raise
            failed = exc
            break
        if ns is not None:
            return ns
    return by_name(spec, snap, failed)


MAX_CANDIDATES = 10


def _name_matches(ns: Namespace, query: str) -> bool:
    """Whether ``query`` is the display name of ``ns``, or (for a container's) the
    container's name without its engine (``web`` for ``docker:web``)."""
    name = ns.name
    if name is None:
        return False
    if name == query:
        return True
    return ns.container is not None and name == ns.container.label and \
        name.partition(":")[2] == query


def _listed(namespaces: list[Namespace], with_name: bool = False) -> str:
    """At most MAX_CANDIDATES namespaces, as a SPEC writes each."""
    shown = sorted(namespaces, key=lambda n: (n.type, n.ino))[:MAX_CANDIDATES]
    text = ", ".join(f"{n.label}" + (f" ({n.name})" if with_name and n.name else "")
                     for n in shown)
    return text + (f" and {len(namespaces) - MAX_CANDIDATES} more"
                   if len(namespaces) > MAX_CANDIDATES else "")


def by_name(spec: str, snap: Snapshot, failed: SpecError | None = None) -> Namespace:
    """The namespace whose display name is ``spec``, or ``NAME/TYPE``; where none is,
    ``failed`` (what an earlier form said) or NotFound naming similar names."""
    spaces = list(snap.namespaces.values())
    found = [ns for ns in spaces if _name_matches(ns, spec)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        types = sorted({ns.type for ns in found})
        raise SpecError(f"{spec!r} names {len(found)} namespaces: {_listed(found)}; add the "
                        f"type ({spec}/{types[0]}) or write type:[inode]")
    head, sep, link = spec.rpartition("/")
    if sep and head and link in nsfs.LINK_TYPE:
        named = [ns for ns in spaces if _name_matches(ns, head)]
        if named:
            ns_type = nsfs.LINK_TYPE[link]
            typed = [ns for ns in named if ns.type == ns_type]
            if len(typed) == 1:
                return typed[0]
            if len(typed) > 1:
                raise SpecError(f"{spec!r} names {len(typed)} namespaces: {_listed(typed)}; "
                                "write type:[inode]")
            pids = [p for ns in named for p in ns.pids if p in snap.processes]
            if not pids:
                raise NotFound(f"{spec}: no process is in {head!r}, so it has no {link} "
                               f"namespace to follow ({_listed(named)})")
            return _found(snap, snap.processes[min(pids)].ns.get(link, -1), spec)
    if failed is not None:
        raise failed
    low = spec.lower()
    alike = sorted({ns.name for ns in spaces if ns.name and low in ns.name.lower()})
    seen = (f"; names like it: {', '.join(alike[:MAX_CANDIDATES])}"
            + (f" and {len(alike) - MAX_CANDIDATES} more" if len(alike) > MAX_CANDIDATES else "")
            if alike else "")
    raise NotFound(f"cannot read {spec!r} as a namespace: no namespace is named so{seen} "
                   "(a SPEC is a name, type:[inode], an inode or id, PID/TYPE, "
                   "container:NAME-OR-ID/TYPE, pod:NAME/TYPE, a stable path (/user.0/net.1), "
                   "or a path to a namespace file)")
