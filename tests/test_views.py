"""What each namespace sees (nsctl.views), against what the fixtures set and read back.

Each test builds its namespaces (support/views.py, support/namespaces.py), learns what
is in them from the kernel itself (``ip -j``, /proc files read by the
fixture's own processes), takes a snapshot and compares the view.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial

import pytest
import support
from conftest import netns_tag
from support import cli, namespaces, nsfacts
from support import views as vt

from nsctl import discover
from nsctl.views import read_view

nsctl = partial(cli.run_nsctl, check=True)

pytestmark = support.root_only


def view_of(ino: int) -> dict:
    snap = discover()
    assert ino in snap.namespaces, f"namespace {ino} not discovered"
    return read_view(snap.namespaces[ino], snap)


def by_name(view: dict) -> dict[str, dict]:
    assert isinstance(view.get("interfaces"), list), view
    return {i["name"]: i for i in view["interfaces"]}


def addresses(dev: dict) -> set[tuple[str, str, int]]:
    """(family, address, prefixlen) of an ``ip -j addr`` device."""
    return {(a["family"], a["local"], a["prefixlen"]) for a in dev.get("addr_info", ())}


def check_interfaces(view: dict, kernel: dict[str, dict]) -> None:
    """Every device as ip(8) showed it: index, MTU, MAC, operstate, addresses, kind."""
    seen = by_name(view)
    assert set(seen) == set(kernel)
    for name, dev in kernel.items():
        mine = seen[name]
        assert mine["index"] == dev["ifindex"], name
        assert mine["mtu"] == dev["mtu"], name
        assert mine["mac"] == dev.get("address"), name
        assert mine["operstate"] == dev["operstate"], name
        assert mine["kind"] == dev.get("linkinfo", {}).get("info_kind"), name
        assert {(a["family"], a["address"], a["prefixlen"]) for a in mine["addresses"]} == \
            addresses(dev), name


def kernel_iflink(dev: dict, kernel: dict[str, dict]) -> int:
    """The ifindex of a device's link as ip(8) shows it: ``link_index`` for one in another
    namespace, ``link`` (a name) for one in the same namespace, else the device itself."""
    if "link_index" in dev:
        return dev["link_index"]
    if "link" in dev:
        return kernel[dev["link"]]["ifindex"]
    return dev["ifindex"]


def check_sysfs(view: dict, kernel: dict[str, dict]) -> None:
    """The namespace's own /sys/class/net: the same devices and attributes as ip(8) shows."""
    assert view["sysfs_agrees"] is True, view
    sysfs = {d["name"]: d for d in view["sysfs"]}
    assert set(sysfs) == set(kernel)
    for name, dev in kernel.items():
        assert sysfs[name]["ifindex"] == dev["ifindex"], name
        assert sysfs[name]["iflink"] == kernel_iflink(dev, kernel), name
        assert sysfs[name]["mtu"] == dev["mtu"], name
        assert sysfs[name]["address"] == dev.get("address", ""), name
        assert sysfs[name]["operstate"] == dev["operstate"].lower(), name


def check_peer(view: dict, dev: dict, peer_ino: int) -> None:
    """eth0's link: the peer's ifindex and netnsid as ip(8) showed them, the netnsid
    resolved to the namespace the fixture put the peer in."""
    link = by_name(view)["eth0"]["link"]
    assert link["role"] == "peer"
    assert link["ifindex"] == dev["link_index"]
    assert link["netnsid"] == dev["link_netnsid"]
    assert link["netns"] == peer_ino
    assert {"nsid": dev["link_netnsid"], "netns": peer_ino} in view["netnsids"]


def test_veth_pair_views(leak_scope):
    with vt.veth_pair(netns_tag()) as pair:
        a_dev, b_dev = vt.links_of(pair.a), vt.links_of(pair.b)
        snap = discover()
        a = read_view(snap.namespaces[pair.a_ino], snap)
        b = read_view(snap.namespaces[pair.b_ino], snap)
        # The same name in two namespaces, two different devices (seed 000).
        assert set(by_name(a)) == set(by_name(b)) == {"lo", "eth0"}
        check_interfaces(a, a_dev)
        check_interfaces(b, b_dev)
        assert (("inet", pair.a_addr, pair.prefix) in
                {(x["family"], x["address"], x["prefixlen"])
                 for x in by_name(a)["eth0"]["addresses"]})
        check_peer(a, a_dev["eth0"], pair.b_ino)
        check_peer(b, b_dev["eth0"], pair.a_ino)
        # Each end names the other by name too (RTM_GETLINK in the peer's namespace).
        assert by_name(a)["eth0"]["link"]["ifname"] == "eth0"
        assert by_name(a)["eth0"]["link"]["ifindex"] == b_dev["eth0"]["ifindex"]
        check_sysfs(a, a_dev)
        check_sysfs(b, b_dev)


def test_views_follow_a_device_moved_to_a_third_namespace():
    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        pair.move_b_to_c(tag)
        a_dev, b_dev, c_dev = vt.links_of(pair.a), vt.links_of(pair.b), vt.links_of(pair.c)
        assert "eth0" not in b_dev and "eth0" in c_dev
        snap = discover()
        a, b, c = (read_view(snap.namespaces[ino], snap)
                   for ino in (pair.a_ino, pair.b_ino, pair.c_ino))
        check_interfaces(a, a_dev)
        check_interfaces(b, b_dev)
        check_interfaces(c, c_dev)
        assert set(by_name(b)) == {"lo"}
        check_peer(a, a_dev["eth0"], pair.c_ino)
        check_peer(c, c_dev["eth0"], pair.a_ino)
        for view, dev in ((a, a_dev), (b, b_dev), (c, c_dev)):
            check_sysfs(view, dev)


def test_netns_held_only_by_a_bind_mount(scratch):
    with namespaces.netns_bindmount(scratch) as pinned:
        vt.add_local_veth(pinned.path, "d0", "10.78.0.1/24")
        kernel = vt.links_of(pinned.path)
        view = view_of(pinned.net.ino)
        check_interfaces(view, kernel)
        check_sysfs(view, kernel)
        # Both ends in this namespace: the peer is here, by index and name.
        link = by_name(view)["d0"]["link"]
        assert link == {"role": "peer", "ifindex": kernel["d0p"]["ifindex"], "ifname": "d0p",
                        "netnsid": None, "netns": pinned.net.ino}


def test_netns_held_only_by_an_fd():
    with namespaces.netns_held_by_fd() as held:
        path = f"/proc/{held.holder}/fd/{held.fd}"
        vt.add_local_veth(path, "d1", "10.79.0.1/24")
        kernel = vt.links_of(path)
        view = view_of(held.net.ino)
        check_interfaces(view, kernel)
        check_sysfs(view, kernel)


def test_netns_held_only_by_a_socket():
    with namespaces.netns_held_by_socket() as held:
        view = view_of(held.net.ino)
        assert set(by_name(view)) == {"lo"}
        assert view["sysfs_agrees"] is True


def test_a_namespace_gone_before_it_is_viewed():
    """The snapshot still lists it, but nothing holds it any more: an error, not a raise."""
    with namespaces.netns_held_by_fd() as held:
        snap = discover()
        ns = snap.namespaces[held.net.ino]
    view = read_view(ns, snap)
    assert view["type"] == "net" and "error" in view and "interfaces" not in view
    assert isinstance(view["error"], str) and "\n" not in view["error"]


def test_uts():
    with vt.uts_ns("nsctl-view-host", "nsctl.example") as uts:
        view = view_of(uts.ino)
        assert view == {"type": "uts", "hostname": uts.hostname, "domainname": uts.domainname}
        assert uts.hostname == "nsctl-view-host"


@pytest.mark.parametrize("keep", ["process", "fd"])
def test_user_maps(keep):
    with vt.user_ns("0 100000 65536\n", "0 200000 1000\n5000 300000 10\n", keep=keep) as held:
        view = view_of(held.ino)
        assert view["uid_map"] == vt_map(held.facts["uid_map"]) == [[0, 100000, 65536]]
        assert view["gid_map"] == vt_map(held.facts["gid_map"])
        assert len(view["gid_map"]) == 2
        assert view["setgroups"] == held.facts["setgroups"].strip() == "deny"
        assert view["owner_uid"] == os.geteuid()
        assert view["level"] == 1
        assert view["seen_from"] == held.maker


def vt_map(text: str) -> list[list[int]]:
    return [[int(x) for x in line.split()] for line in text.splitlines()]


@pytest.mark.parametrize("keep", ["process", "fd"])
def test_time_offsets(keep):
    with vt.time_ns("monotonic 1000 0\nboottime 2000 500\n", keep=keep) as held:
        view = view_of(held.ino)
        kernel = {}
        for line in held.facts["timens_offsets"].splitlines():
            clock, sec, nsec = line.split()
            kernel[clock] = {"seconds": int(sec), "nanoseconds": int(nsec)}
        assert kernel == {"monotonic": {"seconds": 1000, "nanoseconds": 0},
                          "boottime": {"seconds": 2000, "nanoseconds": 500}}
        assert view["monotonic"] == kernel["monotonic"]
        assert view["boottime"] == kernel["boottime"]


def test_ipc_counts():
    with vt.ipc_ns(msgs=2, sems=3, shms=1, mqueues=4) as held:
        view = view_of(held.ino)
        assert held.facts == {"msg_queues": 2, "semaphore_sets": 3, "shm_segments": 1,
                              "posix_mqueues": 4}
        for key, count in held.facts.items():
            assert view[key] == count, key
        # Our own IPC namespace is another one: its counts are what we see here.
        own = view_of(nsfacts.link_ino("self", "ipc"))
        for key, name in (("msg_queues", "msg"), ("semaphore_sets", "sem"),
                          ("shm_segments", "shm")):
            with open(f"/proc/sysvipc/{name}") as f:
                assert own[key] == len(f.read().splitlines()) - 1, key


def test_cgroup_root():
    with vt.cgroup_ns() as held:
        view = view_of(held.ino)
        before = {}
        for line in held.facts["before"].splitlines():
            hier, controllers, path = line.split(":", 2)
            before[(int(hier), controllers)] = path
        inside = {tuple(line.split(":", 2)[:2]) for line in held.facts["inside"].splitlines()}
        assert all(line.endswith(":/") for line in held.facts["inside"].splitlines())
        roots = {(r["hierarchy"], r["controllers"]): r["root"] for r in view["roots"]}
        assert roots == before
        assert len(inside) == len(roots)


def test_mnt_count_and_nsfs_mounts(scratch):
    point = scratch / "point"
    point.mkdir()
    with vt.mnt_ns(point) as held, namespaces.netns_bindmount(scratch) as pinned:
        view = view_of(held.ino)
        assert view["mounts"] == held.facts["mounts"]
        own = view_of(nsfacts.link_ino("self", "mnt"))
        assert {"path": pinned.path, "type": "net", "ns": pinned.net.ino} in own["nsfs_mounts"]
        assert own["root"]["fstype"]
    point.rmdir()


def test_pid_view():
    with namespaces.pid_chain(depth=2) as chain:
        inner = chain.levels[-1]
        view = view_of(inner.ns.ino)
        assert view["level"] == len(inner.nspid) - 1
        assert view["init"] == inner.pid      # the only process there is its init
        assert view["processes"] == 1
        assert view["status"] == "active"


def test_show_prints_and_serves_the_view():
    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        text = nsctl("show", pair.a).stdout
        assert "sees:" in text
        assert "eth0 (2)" in text or "eth0 (" in text
        assert f"{pair.a_addr}/{pair.prefix}" in text
        assert "agrees with netlink" in text
        doc = json.loads(nsctl("show", pair.a, "--json").stdout)
        assert doc["ns"] == pair.a_ino
        assert doc["view"]["type"] == "net"
        assert by_name(doc["view"])["eth0"]["link"]["netns"] == pair.b_ino
        plain = nsctl("show", pair.a, "--no-view").stdout
        assert "sees:" not in plain
        assert "view" not in json.loads(nsctl("show", pair.a, "--json", "--no-view").stdout)
        # Everything show printed before views existed is still there, first.
        assert text.startswith(plain.rstrip("\n"))


def test_show_view_of_every_type_has_no_traceback():
    for link in ("net", "uts", "user", "mnt", "pid", "time", "cgroup", "ipc"):
        out = nsctl("show", f"{os.getpid()}/{link}").stdout
        assert "sees:" in out and "error" not in out.split("sees:")[1], (link, out)


def test_sysfs_and_mqueue_on_kernels_without_fsmount(monkeypatch):
    """The fallback (a mount on a temporary directory in a private mount namespace)
    shows the same; nothing of it is left behind (the leak check looks)."""
    from nsctl.kernel import mounts

    monkeypatch.setattr(mounts, "_has_fsmount", False)
    with vt.veth_pair(netns_tag()) as pair, \
            vt.ipc_ns(msgs=1, sems=0, shms=0, mqueues=3) as held:
        kernel = vt.links_of(pair.a)
        check_sysfs(view_of(pair.a_ino), kernel)
        assert view_of(held.ino)["posix_mqueues"] == 3
        assert mounts._has_fsmount is False


def test_unprivileged_show_reports_the_refused_view_and_exits_0():
    """nobody may open /run/netns/X but not setns into it: the view is an error line,
    the rest of show is printed, exit status 0, no traceback."""
    with vt.veth_pair(netns_tag()) as pair:
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "nsctl", "show", pair.a],
            capture_output=True, text=True, timeout=120, cwd="/",
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                 "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert ["inode:", str(pair.a_ino)] in [ln.split() for ln in proc.stdout.splitlines()]
        sees = proc.stdout.split("sees:")[1]
        assert "error: setns: Operation not permitted" in sees
