"""Container labels from cgroup paths: the parser on literal texts, then real cgroups.

The real tests make cgroups named as each engine names its containers (under
this session's own ``nsctl-test-<pid>`` directory of the host's cgroup v2
and, on a hybrid host, a v1 hierarchy without controllers), move a helper
process into one, let it unshare namespaces as a container runtime would,
and check what ``nsctl ls --json``, ``show container:X/TYPE``, ``ls`` and
``tree`` make of it (with ``NSCTL_ENGINES=off``: no engine made them; the real
engines are tests/test_engines.py's).  The fixture removes every cgroup directory it made and
fails the test if one is left (the autouse leak check does not look at cgroups).
"""
from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
from support import cli, leaks, nsfacts, processes, syscalls

from nsctl.discovery import cgroup_names as containers
from nsctl.model import Container, Namespace, Process, Snapshot

nsctl = partial(cli.run_nsctl, check=True)

H1 = "0123456789abcdef" * 4
H2 = "fedcba9876543210" * 4
UID = "1a2b3c4d-1111-2222-3333-444455556666"


# --- the parser: literal /proc/PID/cgroup texts ------------------------------------------

def hybrid(path: str, v2: str = "/") -> str:
    """A hybrid host's /proc/PID/cgroup: v1 hierarchies at ``path``, the v2 line at ``v2``."""
    return (f"12:pids:{path}\n11:memory:{path}\n10:devices:{path}\n"
            f"1:name=systemd:{path}\n0::{v2}\n")


def v2(path: str) -> str:
    return f"0::{path}\n"


PARSED = [
    # Docker: systemd driver (v2, hybrid), cgroupfs driver (v1 and v2), rootless, nested units.
    (v2(f"/system.slice/docker-{H1}.scope"), ("docker", H1, None, None)),
    (hybrid(f"/system.slice/docker-{H1}.scope", f"/system.slice/docker-{H1}.scope"),
     ("docker", H1, None, None)),
    (hybrid(f"/docker/{H1}"), ("docker", H1, None, None)),
    (v2(f"/docker/{H1}"), ("docker", H1, None, None)),
    (v2(f"/user.slice/user-1000.slice/user@1000.service/docker-{H1}.scope"),
     ("docker", H1, None, None)),
    (v2(f"/system.slice/docker-{H1}.scope/system.slice/nginx.service"),
     ("docker", H1, None, None)),
    # A path seen from outside the reader's cgroup namespace.
    (v2(f"/../../system.slice/docker-{H1}.scope"), ("docker", H1, None, None)),
    # Docker in Docker: the innermost wins.
    (hybrid(f"/docker/{H2}/docker/{H1}"), ("docker", H1, None, None)),
    # containerd / Kubernetes, systemd driver: pod UID from the slice, underscores undone.
    (v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"{UID.replace('-', '_')}.slice/cri-containerd-{H1}.scope"),
     ("containerd", H1, None, UID)),
    (v2(f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/cri-containerd-{H1}.scope"),
     ("containerd", H1, None, UID)),
    (hybrid("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
            f"{UID.replace('-', '_')}.slice/cri-containerd-{H1}.scope"),
     ("containerd", H1, None, UID)),
    (v2(f"/system.slice/nerdctl-{H1}.scope"), ("containerd", H1, None, None)),
    # Kubernetes, cgroupfs driver: the runtime is not in the path.
    (hybrid(f"/kubepods/burstable/pod{UID}/{H1}"), ("kubernetes", H1, None, UID)),
    (v2(f"/kubepods/pod{UID}/{H1}"), ("kubernetes", H1, None, UID)),
    (v2(f"/kubepods/besteffort/pod{'ab' * 16}/{H1}"), ("kubernetes", H1, None, "ab" * 16)),
    # CRI-O: systemd and cgroupfs drivers; its conmon is beside the container, not in it.
    (v2(f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        f"{UID.replace('-', '_')}.slice/crio-{H1}.scope"), ("cri-o", H1, None, UID)),
    (hybrid(f"/kubepods/burstable/pod{UID}/crio-{H1}"), ("cri-o", H1, None, UID)),
    (v2(f"/kubepods.slice/kubepods-burstable.slice/crio-conmon-{H1}.scope"), None),
    # Podman: systemd (rootful, rootless, split), cgroupfs; conmon excluded.
    (v2(f"/machine.slice/libpod-{H1}.scope"), ("podman", H1, None, None)),
    (v2(f"/machine.slice/libpod-{H1}.scope/container"), ("podman", H1, None, None)),
    (v2(f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{H1}.scope"),
     ("podman", H1, None, None)),
    (hybrid(f"/libpod_parent/libpod-{H1}"), ("podman", H1, None, None)),
    (v2(f"/machine.slice/libpod-conmon-{H1}.scope"), None),
    # systemd-nspawn: the machine name, \x2d unescaped; payload and supervisor subgroups.
    (v2("/machine.slice/machine-my\\x2dbox.scope"), ("nspawn", "my-box", "my-box", None)),
    (v2("/machine.slice/machine-web.scope/payload"), ("nspawn", "web", "web", None)),
    (hybrid("/machine.slice/machine-web.scope"), ("nspawn", "web", "web", None)),
    (v2("/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt/emulator"), None),
    (v2("/machine.slice/machine-lxc\\x2d4242\\x2dguest.scope"),
     ("libvirt-lxc", "guest", "guest", None)),
    # LXC / LXD: v2 (lxc.payload.NAME), v1 (lxc/NAME), LXC 3 (lxc.payload/NAME); monitor not.
    (v2("/lxc.payload.c1"), ("lxc", "c1", "c1", None)),
    (v2("/lxc.payload.c1/init.scope"), ("lxc", "c1", "c1", None)),
    (hybrid("/lxc/c1"), ("lxc", "c1", "c1", None)),
    (hybrid("/lxc.payload/c1"), ("lxc", "c1", "c1", None)),
    (v2("/lxc.monitor.c1"), None),
    # Docker inside LXC is Docker; podman's conmon inside LXC is in the LXC container.
    (v2(f"/lxc.payload.c1/system.slice/docker-{H1}.scope"), ("docker", H1, None, None)),
    (v2(f"/lxc.payload.c1/system.slice/libpod-conmon-{H1}.scope"), ("lxc", "c1", "c1", None)),
    # Hosts and things that only look similar.
    (hybrid("/"), None),
    (hybrid("/user.slice/user-1000.slice/session-2.scope", "/user.slice"), None),
    ("4:memory:/process_api/da2629f8744934aeebe9abee83511f88\n0::/\n", None),
    (v2("/system.slice/docker.service"), None),
    (v2("/system.slice/containerd.service"), None),
    (v2(f"/docker/{H1[:12]}"), None),                # not a full id
    (v2(f"/system.slice/docker-{H1.upper()}.scope"), None),
    ("", None),
]


@pytest.mark.parametrize("text, want", PARSED)
def test_parse(text: str, want: tuple | None) -> None:
    got = containers.parse(text)
    if want is None:
        assert got is None
    else:
        assert got is not None and (got.engine, got.id, got.name, got.pod) == want


def test_v2_line_comes_first_then_name_systemd() -> None:
    text = (f"5:pids:/docker/{H2}\n1:name=systemd:/lxc/c1\n"
            f"0::/system.slice/docker-{H1}.scope\n")
    both = containers.parse(text)
    assert both is not None and both.id == H1
    only_v1 = containers.parse(text.replace(f"0::/system.slice/docker-{H1}.scope", "0::/"))
    assert only_v1 is not None and only_v1.id == "c1"


def _cdict(engine: str, cid: str | None, name: str | None = None,
           pod: str | None = None) -> dict[str, str | None]:
    """A container's JSON as the cgroup path alone gives it (no engine asked)."""
    return Container(engine, cid, name, pod).to_dict()


def _squeezed(text: str) -> str:
    """show's labels are padded to the longest one: compare with single spaces."""
    import re

    return re.sub(r":  +", ": ", text)


def test_host_cgroups_skip_the_table() -> None:
    # A host process's cgroup text names no engine: the cheap pre-check says so.
    text = "0::/user.slice/user-0.slice/session-3.scope\n1:name=systemd:/init.scope\n"
    assert not containers.may_be_in_container(text)
    assert containers.parse(text) is None


def test_container_json_keys() -> None:
    c = Container("docker", H1)
    assert c.to_dict() == {"engine": "docker", "id": H1, "name": None, "pod": None,
                           "image": None, "project": None, "service": None,
                           "pod_name": None, "pod_namespace": None}
    assert c.label == "docker:0123456789ab"
    assert Container("nspawn", "web", "web").label == "nspawn:web"
    assert Container("containerd", None, None, UID).label == "containerd:pod-1a2b3c4d"
    assert Container("podman", None, None, H1, pod_name="accp").label == "pod:accp"
    assert Container("containerd", None, None, UID, pod_name="web",
                     pod_namespace="shop").label == "pod:shop/web"


# --- the namespace rule, on plain data -------------------------------------------------------

def _snap(members: dict[int, Container | None]) -> tuple[Snapshot, Namespace]:
    snap = Snapshot()
    ns = snap.namespaces[100] = Namespace(100, "net")
    for pid, c in members.items():
        snap.processes[pid] = Process(pid, 1, "x", [], 0, pid, {"net": 100}, container=c)
        ns.pids.append(pid)
    return snap, ns


A = Container("containerd", H1, None, UID)
B = Container("containerd", H2, None, UID)
D = Container("docker", H1)


@pytest.mark.parametrize("members, want", [
    ({10: D, 11: D}, D),                                    # all in one container
    ({10: D, 11: None}, None),                              # shared with the host
    ({10: D, 11: Container("docker", H2)}, None),           # two unrelated containers
    ({10: A, 11: B}, Container("containerd", None, None, UID)),   # one pod's containers
    ({10: A, 11: B, 12: None}, None),
    ({}, None),                                             # no process: no label
])
def test_namespace_rule(members, want) -> None:
    snap, ns = _snap(members)
    containers.label_namespaces(snap)
    assert ns.container == want


# --- real cgroups ---------------------------------------------------------------------------

def _hierarchies() -> dict[str, Path]:
    """This host's cgroup v2 mount ("v2") and a v1 hierarchy without a controller ("v1")."""
    out: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        fstype, _source, options = (tail.split(" ") + ["", ""])[:3]
        point = Path(leaks.unescape(head.split(" ")[4]))
        if fstype == "cgroup2":
            out.setdefault("v2", point)
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            out.setdefault("v1", point)
    return out


HIERARCHIES = _hierarchies()
needs = {kind: pytest.mark.skipif(kind not in HIERARCHIES or os.geteuid() != 0,
                                  reason=f"needs root and a cgroup {kind} hierarchy")
         for kind in ("v1", "v2")}


def _rmdir(path: Path) -> None:
    """rmdir a cgroup, giving the kernel a moment to let go of a just-reaped process."""
    deadline = time.monotonic() + 5
    while True:
        try:
            path.rmdir()
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Cgroups:
    """Cgroup directories under ``nsctl-test-<pid>`` of each hierarchy; all removed at exit."""

    def __init__(self) -> None:
        self.made: list[tuple[str, Path]] = []

    def make(self, kind: str, rel: str) -> Path:
        path = HIERARCHIES[kind]
        for part in (f"nsctl-test-{os.getpid()}", *rel.split("/")):
            path = path / part
            if not path.exists():
                path.mkdir()
                self.made.append((kind, path))
        return path

    def cleanup(self) -> None:
        left = []
        for kind, path in reversed(self.made):
            procs = (path / "cgroup.procs").read_text().split()
            if procs:  # a helper still in it (the test failed half-way): back to the top
                left.append(f"{path}: {procs}")
                for pid in procs:
                    try:
                        (HIERARCHIES[kind] / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass  # exited meanwhile
            _rmdir(path)
        self.made.clear()
        assert not left, f"processes left in cgroups: {left}"


@pytest.fixture
def cgroups(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cgroups]:
    # No engine made these containers: nsctl asks none (tests/test_engines.py asks real ones).
    monkeypatch.setenv("NSCTL_ENGINES", "off")
    made = Cgroups()
    try:
        yield made
    finally:
        made.cleanup()
        for root in HIERARCHIES.values():
            mine = root / f"nsctl-test-{os.getpid()}"
            assert not mine.exists(), f"cgroup left behind: {mine}"


NS_FLAGS = syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC


def _container_payload(chan: processes.Channel, flags: int, join_net: int | None) -> None:
    """As a runtime starts a container: wait to be put in its cgroup, then unshare."""
    chan.send({"pid": os.getpid()})
    chan.recv()
    if join_net is not None:
        fd = os.open(f"/proc/{join_net}/ns/net", os.O_RDONLY)
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
        os.close(fd)
    syscalls.unshare(flags)
    chan.send({"ready": True})
    chan.wait_closed()


def payload(stack: ExitStack, cgroup: Path, flags: int = NS_FLAGS | syscalls.CLONE_NEWNET,
            join_net: int | None = None) -> int:
    """A helper process moved into ``cgroup`` that then unshares ``flags`` (and joins
    ``join_net``'s network namespace); ``stack`` kills and reaps it."""
    child = stack.enter_context(processes.Child(_container_payload, flags, join_net))
    child.ready()
    (cgroup / "cgroup.procs").write_text(str(child.pid))
    child.send({})
    child.ready()
    return child.pid


def ls_json() -> tuple[dict[int, dict], dict[int, dict]]:
    doc = json.loads(nsctl("ls", "--json").stdout)
    return ({p["pid"]: p for p in doc["processes"]}, {n["ns"]: n for n in doc["namespaces"]})


def new_id() -> str:
    return os.urandom(32).hex()


@needs["v2"]
def test_docker_with_host_cgroupns_is_labelled(cgroups):
    """docker --cgroupns=host: the process's cgroup namespace is the host's, yet it is labelled."""
    cid = new_id()
    group = cgroups.make("v2", f"system.slice/docker-{cid}.scope")
    with ExitStack() as stack:
        pid = payload(stack, group)
        assert nsfacts.link_ino(pid, "cgroup") == nsfacts.link_ino("self", "cgroup")
        procs, spaces = ls_json()
        want = _cdict("docker", cid)
        assert procs[pid]["container"] == want
        for link in ("mnt", "net", "uts", "ipc"):
            assert spaces[nsfacts.link_ino(pid, link)]["container"] == want, link
        for link in ("user", "cgroup", "pid"):   # the host's, shared with everyone
            assert spaces[nsfacts.link_ino(pid, link)]["container"] is None, link
        assert procs[os.getpid()]["container"] is None

        doc = json.loads(nsctl("show", f"container:{cid[:10]}/net", "--json").stdout)
        assert doc["ns"] == nsfacts.link_ino(pid, "net")
        assert doc["container"] == want
        # enter --all container:ID enters the container's namespaces
        inside = nsctl("enter", "--all", f"container:{cid[:10]}", "--",
                       "readlink", "/proc/self/ns/net", "/proc/self/ns/uts").stdout.split()
        assert inside == [f"net:[{nsfacts.link_ino(pid, 'net')}]",
                          f"uts:[{nsfacts.link_ino(pid, 'uts')}]"]
        text = nsctl("show", f"container:{cid[:10]}/uts").stdout
        assert f"container: docker {cid}" in _squeezed(text)

        table = nsctl("ls", "-t", "net").stdout.splitlines()
        assert table[0].split()[:7] == ["NS", "TYPE", "NPROCS", "PID", "USER", "HELD-BY",
                                        "CONTAINER"]
        row = next(r for r in table if r.split()[0] == str(nsfacts.link_ino(pid, "net")))
        assert f"docker:{cid[:12]}" in row.split()
        tree = nsctl("tree").stdout
        assert f"net:[{nsfacts.link_ino(pid, 'net')}] [docker:{cid[:12]}]" in tree
        tree_doc = json.loads(nsctl("tree", "--json").stdout)
        assert want in _tree_containers(tree_doc["tree"])


def _tree_containers(nodes: list[dict]) -> list[dict]:
    out = []
    for node in nodes:
        if node.get("container"):
            out.append(node["container"])
        out.extend(_tree_containers(node.get("children", [])))
    return out


@needs["v2"]
def test_podman_with_private_cgroupns(cgroups):
    """The runtime's usual order: into the cgroup, then a cgroup namespace rooted there."""
    cid = new_id()
    group = cgroups.make("v2", f"machine.slice/libpod-{cid}.scope")
    with ExitStack() as stack:
        pid = payload(stack, group, NS_FLAGS | syscalls.CLONE_NEWNET |
                                       syscalls.CLONE_NEWCGROUP)
        assert nsfacts.link_ino(pid, "cgroup") != nsfacts.link_ino("self", "cgroup")
        procs, spaces = ls_json()
        want = _cdict("podman", cid)
        assert procs[pid]["container"] == want
        assert spaces[nsfacts.link_ino(pid, "cgroup")]["container"] == want
        doc = json.loads(nsctl("show", f"container:{cid[:8]}/cgroup", "--json").stdout)
        assert doc["ns"] == nsfacts.link_ino(pid, "cgroup")


@needs["v2"]
def test_nspawn_name_is_unescaped_and_resolves(cgroups):
    name = f"nsctl-test-{os.urandom(4).hex()}"
    group = cgroups.make("v2", "machine.slice/machine-" + name.replace("-", "\\x2d") +
                         ".scope/payload")
    with ExitStack() as stack:
        pid = payload(stack, group)
        procs, _spaces = ls_json()
        assert procs[pid]["container"] == _cdict("nspawn", name, name)
        doc = json.loads(nsctl("show", f"container:{name}/uts", "--json").stdout)
        assert doc["ns"] == nsfacts.link_ino(pid, "uts")
        assert f"nspawn:{name}" in nsctl("ls", "-t", "uts").stdout


@needs["v1"]
@pytest.mark.parametrize("layout, engine", [("docker/{id}", "docker"), ("lxc/{name}", "lxc")])
def test_cgroup_v1_layouts(cgroups, layout, engine):
    """On a v1 hierarchy (the v2 line stays at /): docker's cgroupfs driver, LXC 1-3."""
    cid, name = new_id(), f"c{os.urandom(4).hex()}"
    group = cgroups.make("v1", layout.format(id=cid, name=name))
    with ExitStack() as stack:
        pid = payload(stack, group)
        text = Path(f"/proc/{pid}/cgroup").read_text()
        assert "name=systemd:/nsctl-test-" in text, text
        procs, spaces = ls_json()
        ident = cid if engine == "docker" else name
        assert procs[pid]["container"]["engine"] == engine
        assert procs[pid]["container"]["id"] == ident
        doc = json.loads(nsctl("show", f"container:{ident[:9]}/net", "--json").stdout)
        assert doc["ns"] == nsfacts.link_ino(pid, "net")


@needs["v2"]
def test_kubernetes_pod_shares_its_network_namespace(cgroups):
    """Two containers of one pod: the pod's netns is labelled with the pod, each mnt with its
    container, and container:X/net names the shared netns."""
    uid = f"{os.urandom(4).hex()}-1111-2222-3333-{os.urandom(6).hex()}"
    pod = ("kubepods.slice/kubepods-burstable.slice/"
           f"kubepods-burstable-pod{uid.replace('-', '_')}.slice")
    pause_id, app_id = new_id(), new_id()
    with ExitStack() as stack:
        pause_group = cgroups.make("v2", f"{pod}/cri-containerd-{pause_id}.scope")
        app_group = cgroups.make("v2", f"{pod}/cri-containerd-{app_id}.scope")
        pause = payload(stack, pause_group)
        app = payload(stack, app_group, NS_FLAGS, join_net=pause)
        net = nsfacts.link_ino(pause, "net")
        assert nsfacts.link_ino(app, "net") == net
        procs, spaces = ls_json()
        assert procs[app]["container"] == _cdict("containerd", app_id, pod=uid)
        assert spaces[net]["container"] == _cdict("containerd", None, pod=uid)
        assert spaces[nsfacts.link_ino(app, "mnt")]["container"]["id"] == app_id
        assert spaces[nsfacts.link_ino(pause, "mnt")]["container"]["id"] == pause_id
        doc = json.loads(nsctl("show", f"container:{app_id[:12]}/net", "--json").stdout)
        assert doc["ns"] == net
        text = nsctl("show", f"net:[{net}]").stdout
        assert f"container: containerd pod {uid}" in _squeezed(text)
        assert f"containerd:pod-{uid[:8]}" in nsctl("ls", "-t", "net").stdout


@needs["v2"]
def test_kubernetes_pod_named_by_its_log_directory(cgroups, scratch, monkeypatch):
    """The kubelet's /var/log/pods/NAMESPACE_NAME_UID names the pod: pod:NAMESPACE/NAME
    in ls, and as a SPEC."""
    uid = f"{os.urandom(4).hex()}-1111-2222-3333-{os.urandom(6).hex()}"
    pods = scratch / "pods"
    (pods / f"shop_web-7d9f_{uid}").mkdir(parents=True)
    (pods / "not-a-pod-dir").mkdir()
    monkeypatch.setenv("NSCTL_ENGINES", "on")
    monkeypatch.setenv("NSCTL_KUBE_PODS_DIR", str(pods))
    pod = f"kubepods/besteffort/pod{uid}"
    pause_id, app_id = new_id(), new_id()
    with ExitStack() as stack:
        pause = payload(stack, cgroups.make("v2", f"{pod}/{pause_id}"))
        app = payload(stack, cgroups.make("v2", f"{pod}/{app_id}"), NS_FLAGS, join_net=pause)
        net = nsfacts.link_ino(pause, "net")
        assert nsfacts.link_ino(app, "net") == net
        _procs, spaces = ls_json()
        c = spaces[net]["container"]
        assert (c["pod"], c["pod_namespace"], c["pod_name"]) == (uid, "shop", "web-7d9f")
        assert "pod:shop/web-7d9f" in nsctl("ls", "-t", "net").stdout
        for spec in ("pod:shop/web-7d9f/net", "pod:web-7d9f/net", f"pod:{uid[:8]}/net"):
            doc = json.loads(nsctl("show", spec, "--json").stdout)
            assert doc["ns"] == net, spec
        # Only the network namespace is the pod's here: for uts each container has its own.
        error = cli.one_error(nsctl("show", "pod:web-7d9f/uts", check=False))
        assert "do not share one uts namespace" in error
    for d in sorted(pods.rglob("*"), reverse=True):
        d.rmdir()
    pods.rmdir()


@needs["v2"]
def test_host_namespaces_shared_with_a_container_are_not_its(cgroups):
    """--net=host: the host's netns holds the container's process and ours: no label; show
    says which containers share it."""
    cid = new_id()
    group = cgroups.make("v2", f"system.slice/docker-{cid}.scope")
    with ExitStack() as stack:
        pid = payload(stack, group, NS_FLAGS)
        net = nsfacts.link_ino(pid, "net")
        assert net == nsfacts.link_ino("self", "net")
        procs, spaces = ls_json()
        assert procs[pid]["container"]["id"] == cid
        assert spaces[net]["container"] is None
        assert spaces[nsfacts.link_ino(pid, "mnt")]["container"]["id"] == cid
        text = nsctl("show", f"net:[{net}]").stdout
        assert f"container: - (shared with docker:{cid[:12]}: 1 proc)" in _squeezed(text)
        doc = json.loads(nsctl("show", f"container:{cid[:12]}/net", "--json").stdout)
        assert doc["ns"] == net     # the container's net namespace is the host's


@needs["v2"]
def test_process_in_host_namespaces_is_not_read(cgroups):
    """The documented rule: a process in nsctl's own mount and cgroup namespaces is not a
    container's payload (a shim, a monitor), whatever its cgroup is called."""
    cid = new_id()
    group = cgroups.make("v2", f"system.slice/docker-{cid}.scope")
    with ExitStack() as stack:
        pid = payload(stack, group, syscalls.CLONE_NEWUTS)
        procs, _spaces = ls_json()
        assert procs[pid]["container"] is None
        proc = nsctl("show", f"container:{cid[:12]}/net", check=False)
        assert proc.returncode == 1 and "no container's name or id starts with" in proc.stderr


@needs["v2"]
def test_container_spec_errors(cgroups):
    prefix = os.urandom(5).hex()
    ids = [prefix + new_id()[len(prefix):] for _ in range(2)]
    with ExitStack() as stack:
        for cid in ids:
            payload(stack, cgroups.make("v2", f"system.slice/docker-{cid}.scope"))
        cases = [
            (f"container:{prefix}/net", f"matches 2 containers: docker:{min(ids)}, "
                                         f"docker:{max(ids)}; write more of the name or id"),
            (f"container:{ids[0]}", "names a container, not a namespace: add the type, "
                                   f"container:{ids[0]}/TYPE (TYPE one of mnt, net"),
            (f"container:{ids[0][:20]}/frob", "unknown namespace type 'frob'"),
            ("container:/net", "name the container"),
            (f"container:zz{prefix}/net", "no container's name or id starts with"),
        ]
        for spec, message in cases:
            proc = nsctl("show", spec, check=False)
            lines = [line for line in proc.stderr.splitlines()
                     if not line.startswith("nsctl: partial result")]
            assert proc.returncode == 1 and len(lines) == 1 and message in lines[0], \
                (spec, proc.stderr)
        # A longer prefix picks one; the full id too.
        doc = json.loads(nsctl("show", f"container:{ids[1][:20]}/net", "--json").stdout)
        assert doc["container"]["id"] == ids[1]


def test_no_container_column_on_a_host_without_labels():
    """CONTAINER is a default column only once some namespace has a label; -o always shows it."""
    from nsctl.cli.columns import COLUMNS, drop_empty, parse_columns

    cols = parse_columns(None)
    rows = [[c.fill(ns, Snapshot()) for c in cols] for ns in [Namespace(1, "net")]]
    kept, kept_rows = drop_empty(cols, rows, None)
    assert "CONTAINER" not in [c.name for c in kept] and len(kept_rows[0]) == len(kept)
    assert [c.name for c in drop_empty(cols, rows, "NS,CONTAINER")[0]] == \
        [c.name for c in cols]
    assert COLUMNS["CONTAINER"].hide_empty
