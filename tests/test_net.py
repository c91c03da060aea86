"""``nsctl net``: every network namespace, its interfaces, the links that join them.

The topology is seed 000's: two namespaces joined by a veth pair, each end
renamed eth0, then one end moved to a third namespace.  What nsctl prints is
checked against what ip(8) showed the fixture (ifindex, link_index,
link_netnsid) and the inodes the fixture read with os.stat.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import partial

import support
from conftest import netns_tag
from support import cli, namespaces, nsfacts
from support import views as vt

nsctl = partial(cli.run_nsctl, check=True)

pytestmark = support.root_only


def net_json() -> dict:
    return json.loads(nsctl("net", "--json").stdout)


def entry(doc: dict, ino: int) -> dict:
    found = [n for n in doc["namespaces"] if n["ns"] == ino]
    assert len(found) == 1, f"net:[{ino}] listed {len(found)} times"
    return found[0]


def links_between(doc: dict, x: int, y: int) -> list[dict]:
    return [link for link in doc["links"] if {link["a"]["ns"], link["b"]["ns"]} == {x, y}]


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_net_json_names_interfaces_and_the_veth_link():
    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        a_dev, b_dev = vt.links_of(pair.a), vt.links_of(pair.b)
        doc = net_json()
        a, b = entry(doc, pair.a_ino), entry(doc, pair.b_ino)
        # Named as a person knows them: the ip netns name, else the process in it.
        assert (a["name"], a["named_by"]) == (pair.a_name, "netns")
        assert b["named_by"] == "process"
        assert b["name"] == f"{comm(pair.b_pid)} ({pair.b_pid})"
        assert entry(doc, nsfacts.link_ino("self", "net"))["ours"] is True
        for view, kernel in ((a, a_dev), (b, b_dev)):
            mine = {i["name"]: i for i in view["interfaces"]}
            assert {n: i["index"] for n, i in mine.items()} == \
                {n: d["ifindex"] for n, d in kernel.items()}
            assert view["sysfs_agrees"] is True
        # The pair is one link, shown once, with both ends' names and indexes.
        joined = links_between(doc, pair.a_ino, pair.b_ino)
        assert len(joined) == 1, doc["links"]
        link = joined[0]
        assert link["kind"] == "veth" and link["role"] == "peer"
        ends = {link["a"]["ns"]: link["a"], link["b"]["ns"]: link["b"]}
        assert ends[pair.a_ino]["ifname"] == ends[pair.b_ino]["ifname"] == "eth0"
        assert ends[pair.a_ino]["ifindex"] == a_dev["eth0"]["ifindex"]
        assert ends[pair.b_ino]["ifindex"] == b_dev["eth0"]["ifindex"]
        # netnsid on the far end, as the near end's namespace numbers it.
        near = link["a"]["ns"]
        near_dev = a_dev if near == pair.a_ino else b_dev
        assert link["b"]["netnsid"] == near_dev["eth0"]["link_netnsid"]


def test_net_follows_a_device_moved_to_a_third_namespace():
    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        pair.move_b_to_c(tag)
        a_dev, c_dev = vt.links_of(pair.a), vt.links_of(pair.c)
        doc = net_json()
        assert not links_between(doc, pair.a_ino, pair.b_ino)
        joined = links_between(doc, pair.a_ino, pair.c_ino)
        assert len(joined) == 1, doc["links"]
        ends = {joined[0]["a"]["ns"]: joined[0]["a"], joined[0]["b"]["ns"]: joined[0]["b"]}
        assert ends[pair.a_ino]["ifindex"] == a_dev["eth0"]["ifindex"]
        assert ends[pair.c_ino]["ifindex"] == c_dev["eth0"]["ifindex"]
        assert ends[pair.c_ino]["name"] == pair.c_name
        a = {i["name"]: i for i in entry(doc, pair.a_ino)["interfaces"]}
        assert a["eth0"]["link"]["netns"] == pair.c_ino
        assert a["eth0"]["link"]["netnsid"] == a_dev["eth0"]["link_netnsid"]
        assert [i["name"] for i in entry(doc, pair.b_ino)["interfaces"]] == ["lo"]


def test_net_text_and_dot():
    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        a_dev, b_dev = vt.links_of(pair.a), vt.links_of(pair.b)
        text = nsctl("net").stdout
        assert pair.a_name in text and f"net:[{pair.a_ino}]" in text
        assert f"{pair.a_addr}/{pair.prefix}" in text
        assert f"peer eth0 ({b_dev['eth0']['ifindex']}) in {comm(pair.b_pid)}" in text
        assert "links between namespaces:" in text and "<->" in text
        assert "\x1b[" not in text                # piped: plain text
        dot = nsctl("net", "--dot").stdout
        assert dot.startswith("graph netns {") and dot.rstrip().endswith("}")
        assert f"subgraph cluster_{pair.a_ino} {{" in dot
        a_node = f'"{pair.a_ino}:{a_dev["eth0"]["ifindex"]}"'
        b_node = f'"{pair.b_ino}:{b_dev["eth0"]["ifindex"]}"'
        assert f"{a_node} -- {b_node}" in dot or f"{b_node} -- {a_node}" in dot


def test_netns_without_a_process_is_listed_and_named_by_its_holder(scratch):
    with namespaces.netns_bindmount(scratch) as pinned, namespaces.netns_held_by_fd() as held:
        doc = net_json()
        bound = entry(doc, pinned.net.ino)
        assert bound["named_by"] == "holder" and pinned.path in bound["name"]
        by_fd = entry(doc, held.net.ino)
        assert by_fd["named_by"] == "holder" and f"fd {held.fd}" in by_fd["name"]
        for view in (bound, by_fd):
            assert [i["name"] for i in view["interfaces"]] == ["lo"]
            assert view["sysfs_agrees"] is True


def test_all_namespaces_are_read_from_a_few_children(monkeypatch):
    """read_all forks a few children however many network namespaces there are: one,
    or one per core (at most 4) to share hundreds of them."""
    from nsctl import discover
    from nsctl.views import net

    tag = netns_tag()
    with vt.veth_pair(tag) as pair:
        pair.move_b_to_c(tag)
        snap = discover()
        assert len(snap.of_type("net")) >= 4
        forks = []
        real_fork = os.fork

        def counting_fork():
            pid = real_fork()
            if pid:
                forks.append(pid)
            return pid

        monkeypatch.setattr(os, "fork", counting_fork)
        views = net.read_all(snap)
        monkeypatch.undo()
        assert (len(forks) == 1) if len(snap.of_type("net")) < 64 else (1 <= len(forks) <= 4)
        assert {pair.a_ino, pair.b_ino, pair.c_ino} <= set(views)
        assert all("error" not in views[i] for i in (pair.a_ino, pair.b_ino, pair.c_ino))


def test_ls_does_not_import_pyroute2():
    code = ("import sys; from nsctl.cli.main import main; main(['ls']); "
            "sys.stderr.write(str('pyroute2' in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("False")


def test_no_sysfs_skips_only_the_sysfs_part():
    with namespaces.netns_held_by_fd() as held:
        doc = json.loads(nsctl("net", "--json", "--no-sysfs").stdout)
        view = entry(doc, held.net.ino)
        assert view["sysfs"] is None and view["sysfs_agrees"] is None
        assert [i["name"] for i in view["interfaces"]] == ["lo"]


def test_net_shows_bridge_ports_and_lower_devices():
    """A bridge's ports name it as their master (JSON, text, --dot), as ip(8) shows the
    kernel's IFLA_MASTER; a macvlan names its lower device.  (Bonds and VLANs report
    their ports and lower devices the same way; this kernel has neither module.)"""
    name = f"{netns_tag()}br"
    path = vt.netns_add(name)
    try:
        for args in (("link", "add", "br0", "type", "bridge"),
                     ("link", "add", "p0", "type", "veth", "peer", "name", "p1"),
                     ("link", "set", "p0", "master", "br0"),
                     ("link", "add", "mv0", "link", "p1", "type", "macvlan")):
            vt.ip(path, *args)
        kernel = vt.links_of(path)
        assert kernel["p0"]["master"] == "br0" and "master" not in kernel["p1"]
        ino = os.stat(path).st_ino
        mine = {i["name"]: i for i in entry(net_json(), ino)["interfaces"]}
        assert mine["p0"]["master"] == {"ifindex": kernel["br0"]["ifindex"], "ifname": "br0"}
        assert mine["p1"]["master"] is None and mine["br0"]["master"] is None
        assert mine["mv0"]["link"]["role"] == "lower"
        assert mine["mv0"]["link"]["ifname"] == "p1"
        port = [line for line in nsctl("net").stdout.splitlines()
                if re.sub(r"^\W+", "", line).startswith(f"p0 ({kernel['p0']['ifindex']})")]
        assert len(port) == 1 and "master br0" in port[0], port
        dot = nsctl("net", "--dot").stdout
        assert (f'"{ino}:{kernel["p0"]["ifindex"]}" -- "{ino}:{kernel["br0"]["ifindex"]}" '
                '[label="master", style=dotted];') in dot
    finally:
        vt.netns_del(name)
