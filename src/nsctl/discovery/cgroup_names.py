"""Which container a process is in, read from its cgroup path alone (no engine API).

Container engines put each container's processes in a cgroup whose name
carries the container's id or name: ``docker-<id>.scope`` (systemd driver) or
``/docker/<id>`` (cgroupfs driver), ``machine-<name>.scope`` (systemd-nspawn),
``lxc.payload.<name>`` and so on.  :data:`ROW_PATTERNS` lists those names, one row per
layout; :func:`parse` applies them to one ``/proc/PID/cgroup`` text.

Rules:

- Lines: the cgroup v2 line (``0::/path``) is read first, then a v1
  ``name=systemd`` line, then the other v1 lines in file order; the first path
  that names a container wins.  A hybrid host (v1 controllers plus v2) has both.
- Within one path the innermost component that a row matches wins (a Docker
  container inside an LXC container is the Docker one).  Each row matches one
  component together with its parent's name, written ``parent/component``.
- Rows with engine None name cgroups that sit *beside* a container, not in
  it (podman/CRI-O's conmon, libvirt's QEMU machines); the search then goes on
  with the components above.
- Podman: the pod id comes from the container's parent cgroup (a pod's
  containers sit in a cgroup of the pod's).
- Kubernetes: the pod UID comes from a ``pod<uid>`` component above the
  container (``kubepods-burstable-pod<uid>.slice`` or ``kubepods/.../pod<uid>``,
  underscores turned back into dashes).

Everything here is pure: text in, :class:`~nsctl.model.Container` out; the
discovery source (:mod:`nsctl.discovery.containers`) decides which processes
are read.
"""
from __future__ import annotations

import re
from functools import lru_cache

from ..model import Container, Namespace, Snapshot

_HEX64 = r"[0-9a-f]{64}"
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}"


Row = tuple["str | None", "re.Pattern[str]"]


def _row(engine: str | None, component: str, parent: str = r"[^/]*") -> tuple[str | None, str]:
    """A row: ``component`` (with ``id`` / ``name`` groups) under a parent named ``parent``."""
    return engine, f"(?:{parent})/(?:{component})"


#: (engine, pattern) in priority order; the first row that matches a component decides.
#: Compiled on first use (:func:`_rows`): nsctl pays for it only on hosts with containers.
ROW_PATTERNS: list[tuple[str | None, str]] = [
    # Beside a container, not in it.
    _row(None, rf"(?:libpod|crio)-conmon-{_HEX64}(?:\.scope)?"),
    _row(None, r"machine-qemu\\x2d.*\.scope"),                 # libvirt QEMU virtual machines
    # Docker: systemd driver (also rootless, and dockershim under kubepods); cgroupfs driver.
    _row("docker", rf"docker-(?P<id>{_HEX64})\.scope"),
    _row("docker", rf"(?P<id>{_HEX64})", parent="docker"),
    # containerd: CRI plugin with the systemd driver (Kubernetes), nerdctl.
    _row("containerd", rf"cri-containerd-(?P<id>{_HEX64})\.scope"),
    _row("containerd", rf"nerdctl-(?P<id>{_HEX64})\.scope"),
    # CRI-O: systemd driver (crio-<id>.scope) and cgroupfs driver (crio-<id>).
    _row("cri-o", rf"crio-(?P<id>{_HEX64})(?:\.scope)?"),
    # Podman/libpod: systemd driver (also rootless) and cgroupfs (libpod_parent/libpod-<id>).
    _row("podman", rf"libpod-(?P<id>{_HEX64})(?:\.scope)?"),
    # Kubernetes with the cgroupfs driver: kubepods/<qos>/pod<uid>/<id>; the path does
    # not say which runtime made the container.
    _row("kubernetes", rf"(?P<id>{_HEX64})", parent=rf"pod(?:{_UID})"),
    # systemd-nspawn (and anything machined registers: libvirt LXC keeps its own name).
    _row("libvirt-lxc", r"machine-lxc\\x2d\d+\\x2d(?P<name>[^/]+)\.scope"),
    _row("nspawn", r"machine-(?P<name>[^/]+)\.scope"),
    # LXC/LXD 4+ (lxc.payload.<name>), LXC 3 and cgroup v1 (lxc/<name>, lxc.payload/<name>).
    _row("lxc", r"lxc\.payload\.(?P<name>[^/]+)"),
    _row("lxc", r"(?P<name>[^/]+)", parent=r"lxc|lxc\.payload"),
]

#: Every path a row can match contains one of these (the Kubernetes cgroupfs row through
#: its kubepods ancestor): paths without any skip the table.
HINTS: tuple[str, ...] = ("docker", "containerd", "nerdctl", "crio", "libpod", "kubepods",
                          "machine-", "lxc")
_POD = rf"(?:^|[-/])pod(?P<uid>{_UID})(?:\.slice)?$"


@lru_cache(maxsize=1)
def _rows() -> list[Row]:
    return [(engine, re.compile(pattern)) for engine, pattern in ROW_PATTERNS]


def may_be_in_container(text: str) -> bool:
    """Cheap pre-check on a cgroup path or a whole /proc/PID/cgroup text."""
    return any(word in text for word in HINTS)


def _unescape(name: str) -> str:
    """systemd unit-name escaping: ``my\\x2dbox`` is ``my-box``."""
    if "\\x" not in name:
        return name
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def from_path(path: str) -> Container | None:
    """The container a cgroup path (as /proc/PID/cgroup shows it) places a process in."""
    if not may_be_in_container(path):
        return None
    parts = path.split("/")
    # Innermost component first; parts[0] is "" for an absolute path.
    for i in range(len(parts) - 1, 0, -1):
        text = f"{parts[i - 1]}/{parts[i]}"
        for engine, pattern in _rows():
            m = pattern.fullmatch(text)
            if m is None:
                continue
            if engine is None:
                break  # beside a container: look further up
            groups = m.groupdict()
            name = groups.get("name")
            if name is not None:
                name = _unescape(name)
            pod = _podman_pod(parts[i - 1]) if engine == "podman" else _pod(parts[:i])
            return Container(engine, groups.get("id") or name, name, pod)
    return None


_PODMAN_POD = re.compile(rf"(?:machine-libpod_pod_)?(?P<id>{_HEX64})(?:\.slice)?")


def _podman_pod(parent: str) -> str | None:
    """The Podman pod id named by a container's parent cgroup: ``<pod id>`` under
    ``libpod_parent`` (cgroupfs), ``machine-libpod_pod_<pod id>.slice`` (systemd)."""
    m = _PODMAN_POD.fullmatch(parent)
    return m.group("id") if m else None


def _pod(above: list[str]) -> str | None:
    """The Kubernetes pod UID named by one of the components above a container."""
    if not any(p.startswith("kubepods") for p in above):
        return None
    for part in reversed(above):
        m = re.search(_POD, part)
        if m:
            return m.group("uid").replace("_", "-")
    return None


def _paths(text: str) -> list[str]:
    """The cgroup paths of one /proc/PID/cgroup text, in the order they are tried."""
    v2, systemd, v1 = [], [], []
    for line in text.splitlines():
        if line.endswith(":/"):
            continue  # at the top of that hierarchy (most lines of a hybrid host)
        hier, _, rest = line.partition(":")
        controllers, sep, path = rest.partition(":")
        if not sep or path == "/":
            continue
        if hier == "0" and not controllers:
            v2.append(path)
        elif controllers == "name=systemd":
            systemd.append(path)
        else:
            v1.append(path)
    return v2 + systemd + v1


def parse(text: str) -> Container | None:
    """The container named by one /proc/PID/cgroup text (v1, v2 or hybrid), or None."""
    for path in _paths(text):
        found = from_path(path)
        if found is not None:
            return found
    return None


# --- namespaces and lookups, on a snapshot ----------------------------------------------

def namespace_container(ns: Namespace, snap: Snapshot) -> Container | None:
    """The container a namespace belongs to: the one every process in it is in.

    A namespace with a process outside any container (the host's namespaces,
    shared with ``--net=host`` or ``--cgroupns=host`` containers), with
    processes of different containers, or with no process at all gets None.
    One exception: when its processes are in several containers of one
    pod (a Kubernetes pod's network, IPC and UTS namespaces, shared with the
    pause container; a Podman pod's, shared with its infra container), it is
    labelled with the pod: a Container with ``id`` None, ``pod`` set and
    ``pod_name`` where the engine named it.
    """
    found: set[Container] = set()
    for pid in ns.pids:
        proc = snap.processes.get(pid)
        if proc is None or proc.container is None:
            return None
        found.add(proc.container)
    if len(found) == 1:
        return next(iter(found))
    pods = {c.pod for c in found}
    if len(pods) == 1 and None not in pods:
        engines = {c.engine for c in found}
        engine = engines.pop() if len(engines) == 1 else "kubernetes"
        names = {(c.pod_name, c.pod_namespace) for c in found if c.pod_name}
        pod_name, pod_ns = names.pop() if len(names) == 1 else (None, None)
        return Container(engine, None, None, pods.pop(), pod_name=pod_name,
                         pod_namespace=pod_ns)
    return None


def label_namespaces(snap: Snapshot) -> None:
    """Set ``container`` on every namespace of ``snap`` (see :func:`namespace_container`)."""
    for ns in snap.namespaces.values():
        ns.container = namespace_container(ns, snap) if ns.pids else None


def containers(snap: Snapshot) -> dict[Container, list[int]]:
    """Every container seen in ``snap``, with the PIDs of its processes (ascending)."""
    out: dict[Container, list[int]] = {}
    for pid in sorted(snap.processes):
        c = snap.processes[pid].container
        if c is not None:
            out.setdefault(c, []).append(pid)
    return out


def find(query: str, snap: Snapshot) -> list[Container]:
    """Containers whose name or id is ``query``, else those it is a prefix of; a
    ``project/service`` query: the containers of that Compose service.

    An exact name or id beats a prefix, so a container named ``web`` is found
    even when ``web2`` exists.  Ids are compared in lower case, names as written.
    """
    known = containers(snap)
    if "/" in query:
        project, _, service = query.partition("/")
        return [c for c in known if c.project == project and c.service == service]
    low = query.lower()
    exact = [c for c in known if c.id == low or c.name == query]
    if exact:
        return exact
    return [c for c in known
            if (c.id or "").startswith(low) or (c.name or "").startswith(query)]


def find_pod(query: str, snap: Snapshot) -> dict[str, list[Container]]:
    """Pods (by id, with their containers) whose name (Kubernetes: also
    ``namespace/name``) is ``query``, else whose id starts with it."""
    pods: dict[str, list[Container]] = {}
    for c in containers(snap):
        if c.pod:
            pods.setdefault(c.pod, []).append(c)

    def named(c: Container) -> bool:
        return c.pod_name == query or (
            c.pod_namespace is not None and f"{c.pod_namespace}/{c.pod_name}" == query)

    exact = {pod: cs for pod, cs in pods.items() if any(named(c) for c in cs)}
    if exact:
        return exact
    low = query.lower()
    return {pod: cs for pod, cs in pods.items() if pod.startswith(low)}


def main_process(container: Container, snap: Snapshot) -> int:
    """The process that stands for a container: its top process, the earliest started.

    Top: in the container while its parent is not.  That is the container's
    init (PID 1 inside, when it has a PID namespace of its own); a process
    joined later (``docker exec``) also hangs below the engine's shim, but
    started after the init did.
    """
    procs = [snap.processes[p] for p in containers(snap).get(container, [])]
    if not procs:
        raise LookupError(f"no process of {container.label} in this snapshot")
    tops = [p for p in procs
            if getattr(snap.processes.get(p.ppid), "container", None) != container]
    return min(tops or procs, key=lambda p: (p.starttime, p.pid)).pid
