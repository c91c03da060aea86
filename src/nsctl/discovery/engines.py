"""Names of containers, asked of their engines: Docker, Podman, and Kubernetes' pod logs.

The cgroup path (:mod:`nsctl.discovery.cgroup_names`) says which engine made a
container and its id; this module asks that engine what the user calls it:
its name, image, Compose project and service (the ``com.docker.compose.project``
and ``com.docker.compose.service`` labels) and pod.  An engine is asked only
when some process is in one of its containers, so a host without containers
pays nothing.

Where each engine is asked (each place overridable by an environment variable):

- Docker: its Engine API on ``/run/docker.sock`` (``NSCTL_DOCKER_SOCKET``),
  ``GET /containers/json?all=1``.
- Podman: its API socket ``/run/podman/podman.sock`` (``NSCTL_PODMAN_SOCKET``)
  where ``podman system service`` runs, ``GET /v4.0.0/libpod/containers/json``;
  else its own files under the storage root (``NSCTL_PODMAN_ROOT``, else
  ``graphroot`` of ``/etc/containers/storage.conf``, else
  ``/var/lib/containers/storage``): the state database ``libpod/bolt_state.db``
  (names, pods, labels; :mod:`nsctl.discovery.boltdb`), else the container
  store's ``*-containers/containers.json`` (names and images only).
- Kubernetes pods (a pod UID from the cgroup path): the kubelet's pod log
  directories ``/var/log/pods/NAMESPACE_NAME_UID`` (``NSCTL_KUBE_PODS_DIR``),
  or the ``io.kubernetes.pod.*`` labels an engine reports.

``NSCTL_ENGINES=off`` asks no engine.  All engines together get :data:`BUDGET`
seconds; an engine that is missing, refuses, is slow or answers nonsense is
one problem (``engine docker: ...``) and its containers keep their cgroup
labels.  Everything an engine says is hostile text: answers and files are
size-capped, fields type-checked and cut to :data:`MAX_TEXT` characters
(renderers escape control characters as for every other name).

A running ``nsctl serve`` or ``nsctl watch`` rescans often (and follows
Docker's event stream, :class:`Events`, to rescan when a container is renamed); answers are kept
for :data:`FRESH` seconds (failures for :data:`RETRY`), so a renamed or
removed container shows within about a second of the next rescan; a scan
that finds a container the remembered answer neither names nor was asked
about asks again at once, so a new container has its name from its first scan.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time

from ..kernel import unixhttp
from ..kernel.errors import NsctlError
from ..model import Container, Process

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

#: Seconds all engines together may take in one scan.
BUDGET = 0.2
#: Seconds an engine's answer is reused by the next scans of the same process.
FRESH = 1.0
#: Seconds before an engine that failed is asked again.
RETRY = 5.0
#: The longest name, image or label nsctl keeps from an engine.
MAX_TEXT = 256

DOCKER_SOCKET = "/run/docker.sock"
PODMAN_SOCKET = "/run/podman/podman.sock"
PODMAN_ROOT = "/var/lib/containers/storage"
PODMAN_STORAGE_CONF = "/etc/containers/storage.conf"
KUBE_PODS_DIR = "/var/log/pods"

_PROJECT = "com.docker.compose.project"
_SERVICE = "com.docker.compose.service"
_K8S_NAME = "io.kubernetes.pod.name"
_K8S_NAMESPACE = "io.kubernetes.pod.namespace"
_K8S_UID = "io.kubernetes.pod.uid"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Info:
    """What an engine says of one container."""

    __slots__ = ("name", "image", "labels", "pod", "pod_name", "pod_namespace")

    def __init__(self, name: str | None, image: str | None, labels: dict[str, str],
                 pod: str | None = None, pod_name: str | None = None,
                 pod_namespace: str | None = None) -> None:
        self.name = name
        self.image = image
        self.labels = labels
        self.pod = pod or labels.get(_K8S_UID)
        self.pod_name = pod_name or labels.get(_K8S_NAME)
        self.pod_namespace = pod_namespace or labels.get(_K8S_NAMESPACE)


class EngineError(NsctlError):
    """An engine could not be asked, or said nothing nsctl can use."""


# --- hostile text ----------------------------------------------------------------------

def _text(value: object) -> str | None:
    """A string field of an engine's answer, cut to MAX_TEXT; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    return value[:MAX_TEXT]


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k[:MAX_TEXT]: v[:MAX_TEXT] for k, v in list(value.items())[:1000]
            if isinstance(k, str) and isinstance(v, str)}


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise EngineError(f"{what} is not JSON") from None


# --- Docker ----------------------------------------------------------------------------

def docker(deadline: float) -> dict[str, Info]:
    """Every container the Docker daemon knows, by id."""
    path = os.environ.get("NSCTL_DOCKER_SOCKET") or DOCKER_SOCKET
    body = unixhttp.get(path, "/containers/json?all=1", _left(deadline))
    return _api_list(_json(body, "the answer"), "Names")


def _api_list(items: object, names_key: str) -> dict[str, Info]:
    """Docker's /containers/json (and Podman's libpod list, which has Pod and PodName)."""
    if not isinstance(items, list):
        raise EngineError("the answer is not a list of containers")
    out = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        cid = item.get("Id")
        if not isinstance(cid, str) or not _HEX64.fullmatch(cid):
            continue
        names = item.get(names_key)
        name = None
        if isinstance(names, list) and names:
            name = _text(names[0])
            if name is not None:
                name = name.lstrip("/") or None
        out[cid] = Info(name, _text(item.get("Image")), _labels(item.get("Labels")),
                        _text(item.get("Pod")), _text(item.get("PodName")))
    return out


# --- Podman ----------------------------------------------------------------------------

def podman(deadline: float) -> dict[str, Info]:
    """Every container Podman knows, by id: from its API socket, else its files."""
    path = os.environ.get("NSCTL_PODMAN_SOCKET") or PODMAN_SOCKET
    try:
        os.lstat(path)
    except OSError:
        socket_error = None   # no service runs: its files are the place to look
    else:
        try:
            body = unixhttp.get(path, "/v4.0.0/libpod/containers/json?all=true",
                                _left(deadline))
            return _api_list(_json(body, "the answer"), "Names")
        except NsctlError as exc:
            socket_error = exc
    root = _podman_root()
    try:
        return _podman_store(root)
    except (NsctlError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if socket_error is not None:
            raise EngineError(f"{socket_error}; store {root}: {why}") from None
        raise EngineError(f"no API socket at {path}, store {root}: {why}") from None


def _podman_root() -> str:
    root = os.environ.get("NSCTL_PODMAN_ROOT")
    if root:
        return root
    try:
        import tomllib

        conf = tomllib.loads(unixhttp.read_file(PODMAN_STORAGE_CONF, 1 << 20).decode())
        graphroot = conf.get("storage", {}).get("graphroot")
        if isinstance(graphroot, str) and graphroot.startswith("/"):
            return graphroot
    except (OSError, NsctlError, ValueError, AttributeError):
        pass
    return PODMAN_ROOT


def _podman_store(root: str) -> dict[str, Info]:
    """Podman's own files: the bolt state database, else the container store's list."""
    db = os.path.join(root, "libpod", "bolt_state.db")
    try:
        data = unixhttp.read_file(db)
    except FileNotFoundError:
        return _containers_json(root)
    from .boltdb import Bolt

    bolt = Bolt(data)
    pods: dict[str, str | None] = {}
    for pid, (_value, is_bucket) in bolt.get([b"pod"]).items():
        if is_bucket:
            config = bolt.get([b"pod", pid]).get(b"config")
            if config is not None:
                conf = _json(config[0], "a pod's config")
                if isinstance(conf, dict):
                    pods[pid.decode("ascii", "replace")] = _text(conf.get("name"))
    out = {}
    for cid, (_value, is_bucket) in bolt.get([b"ctr"]).items():
        if not is_bucket or not _HEX64.fullmatch(cid.decode("ascii", "replace")):
            continue
        config = bolt.get([b"ctr", cid]).get(b"config")
        if config is None:
            continue
        conf = _json(config[0], "a container's config")
        if not isinstance(conf, dict):
            continue
        pod = _text(conf.get("pod"))
        out[cid.decode("ascii")] = Info(_text(conf.get("name")),
                                        _text(conf.get("rootfsImageName")),
                                        _labels(conf.get("labels")), pod,
                                        pods.get(pod) if pod else None)
    return out


def _containers_json(root: str) -> dict[str, Info]:
    """The container store's ``containers.json`` (one per storage driver): names, images."""
    out: dict[str, Info] = {}
    found = False
    for entry in sorted(os.listdir(root)):
        if not entry.endswith("-containers"):
            continue
        try:
            data = unixhttp.read_file(os.path.join(root, entry, "containers.json"))
        except FileNotFoundError:
            continue
        found = True
        items = _json(data, "containers.json")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            names = item.get("names")
            name = _text(names[0]) if isinstance(names, list) and names else None
            meta = item.get("metadata")
            image = None
            if isinstance(meta, str):
                try:
                    image = _text(json.loads(meta).get("image-name"))
                except (ValueError, AttributeError, RecursionError):
                    pass
            out[item["id"]] = Info(name, image, {})
    if not found:
        raise EngineError("no libpod/bolt_state.db or *-containers/containers.json")
    return out


# --- Kubernetes ------------------------------------------------------------------------

def kube_pods() -> dict[str, tuple[str, str]]:
    """Pod UID -> (namespace, name), from the kubelet's pod log directories."""
    where = os.environ.get("NSCTL_KUBE_PODS_DIR") or KUBE_PODS_DIR
    out: dict[str, tuple[str, str]] = {}
    try:
        entries = os.listdir(where)
    except OSError:
        return out
    for entry in entries[:100000]:
        parts = entry.split("_")
        if len(parts) == 3 and all(parts):
            out[parts[2]] = (parts[0][:MAX_TEXT], parts[1][:MAX_TEXT])
    return out


# --- asking them, with a budget and a short memory ---------------------------------------

READERS: dict[str, Callable[[float], dict[str, Info]]] = {"docker": docker, "podman": podman}

# engine -> (when, its answer or why it failed, the ids that scan asked about)
_cache: dict[str, tuple[float, dict[str, Info] | str, set[str]]] = {}


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise EngineError("no time left in this scan's budget")
    return left


def _still_good(cached: tuple[float, dict[str, Info] | str, set[str]] | None,
                ids: set[str]) -> bool:
    """Whether a remembered answer serves: young enough, and asked for (or naming) every
    container asked about now, so a new container is named from its first scan."""
    if cached is None:
        return False
    age = time.monotonic() - cached[0]
    if isinstance(cached[1], str):
        return age < RETRY
    return age < FRESH and ids <= (cached[1].keys() | cached[2])


def ask(engines: Iterable[str], problem: Callable[[str], None],
        ids: dict[str, set[str]] | None = None) -> dict[str, dict[str, Info]]:
    """What each engine in ``engines`` knows (engine -> id -> Info); each one that
    could not be asked is reported with ``problem("engine NAME: why")``.  ``ids``:
    the containers of each engine the caller wants (an answer remembered without
    one of them is not used)."""
    out: dict[str, dict[str, Info]] = {}
    deadline = time.monotonic() + BUDGET
    for engine in sorted(engines):
        reader = READERS.get(engine)
        if reader is None:
            continue
        wanted = (ids or {}).get(engine, set())
        cached = _cache.get(engine)
        if _still_good(cached, wanted):
            assert cached is not None
            result = cached[1]
        else:
            try:
                result = reader(deadline)
            except (NsctlError, OSError, ValueError) as exc:
                result = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                          else str(exc)) or type(exc).__name__
            _cache[engine] = (time.monotonic(), result, wanted)
        if isinstance(result, str):
            problem(f"engine {engine}: {result}")
        else:
            out[engine] = result
    return out


class Events:
    """Docker's event stream (``GET /events``, container events only), for a program
    that rescans (``nsctl watch``, ``nsctl serve``): its socket is polled with the
    others, and whatever arrives (a container started, died, renamed, destroyed)
    drops the remembered answers and asks for a rescan.  Opened only while the host
    has Docker containers; a stream that fails is opened again after :data:`RETRY`."""

    TARGET = ('/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A'
              '%5B%22start%22%2C%22die%22%2C%22rename%22%2C%22destroy%22%5D%7D')

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.failed_at = -RETRY

    def want(self, processes: Iterable[Process]) -> bool:
        """Whether the stream should be open: the engines are asked and some process
        is in a Docker container."""
        return enabled() and any(p.container is not None and p.container.engine == "docker"
                                 for p in processes)

    def open(self) -> int | None:
        """Open the stream if it is not (and did not fail just now); its fd, or None."""
        if self.sock is not None:
            return self.sock.fileno()
        if time.monotonic() - self.failed_at < RETRY:
            return None
        path = os.environ.get("NSCTL_DOCKER_SOCKET") or DOCKER_SOCKET
        try:
            self.sock = unixhttp.open_stream(path, self.TARGET, BUDGET)
        except NsctlError:
            self.failed_at = time.monotonic()
            return None
        return self.sock.fileno()

    def arrived(self) -> bool:
        """Drain what arrived (call when its fd polls readable); False once the stream
        ended (closed: open it again later)."""
        forget()
        if self.sock is not None and unixhttp.drain(self.sock):
            return True
        self.close()
        self.failed_at = time.monotonic()
        return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def forget() -> None:
    """Drop every remembered answer (the next scan asks again)."""
    _cache.clear()


#: The environment variables that say where the engines are (and NSCTL_ENGINES).
ENV_VARS = ("NSCTL_ENGINES", "NSCTL_DOCKER_SOCKET", "NSCTL_PODMAN_SOCKET", "NSCTL_PODMAN_ROOT",
            "NSCTL_KUBE_PODS_DIR")


def settings() -> dict[str, str]:
    """The engine variables of this process's environment that hold a sane value (an
    absolute path, or a word for NSCTL_ENGINES): what nsctl serve hands its helpers."""
    out = {}
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value and len(value) < 4096 and "\0" not in value and \
                (value.startswith("/") or (name == "NSCTL_ENGINES" and value.isalnum())):
            out[name] = value
    return out


def enabled() -> bool:
    return os.environ.get("NSCTL_ENGINES", "").lower() not in ("off", "0", "no", "none")


def named(c: Container, info: Info | None, pods: dict[str, tuple[str, str]]) -> Container:
    """``c`` with what its engine (``info``) and the pod directories say of it."""
    if info is None:
        if c.pod and not c.pod_name and c.pod in pods:
            ns, name = pods[c.pod]
            return Container(c.engine, c.id, c.name, c.pod, c.image, c.project, c.service,
                             name, ns)
        return c
    pod = info.pod or c.pod
    pod_name, pod_ns = info.pod_name, info.pod_namespace
    if pod and not pod_name and pod in pods:
        pod_ns, pod_name = pods[pod]
    return Container(c.engine, c.id, info.name or c.name, pod, info.image,
                     info.labels.get(_PROJECT), info.labels.get(_SERVICE), pod_name, pod_ns)


def name_containers(processes: Iterable[Process], problem: Callable[[str], None]) -> None:
    """Give every process's container what its engine says of it (see the module)."""
    procs = [p for p in processes if p.container is not None]
    if not procs or not enabled():
        return
    ids: dict[str, set[str]] = {}
    for p in procs:
        if p.container is not None and p.container.engine in READERS and p.container.id:
            ids.setdefault(p.container.engine, set()).add(p.container.id)
    answers = ask(ids, problem, ids)
    pods = kube_pods() if any(p.container is not None and p.container.pod
                              and p.container.engine not in READERS for p in procs) else {}
    done: dict[Container, Container] = {}
    for p in procs:
        c = p.container
        assert c is not None
        new = done.get(c)
        if new is None:
            info = answers.get(c.engine, {}).get(c.id or "")
            new = done[c] = named(c, info, pods)
        p.container = new
