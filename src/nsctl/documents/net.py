"""The ``nsctl net --json`` document (``GET /api/v1/net``): every network namespace with
its interfaces, and the links that join them.

A link joins two namespaces when a device's IFLA_LINK_NETNSID names another namespace:
both ends of a veth pair (listed once), or a device whose lower device lives elsewhere.

Namespaces are named the way a person knows them: the ``ip netns`` name (a bind mount
under /run/netns), else the container its processes are in, else the command of a
process in it, else what holds it.
"""
from __future__ import annotations

from ..model import Namespace, Snapshot
from .describe import describe_ref, representative
from .problems import gaps

RUN_NETNS = "/run/netns/"


def netns_name(ns: Namespace, snap: Snapshot) -> tuple[str, str]:
    """(name, what named it): "netns", "container", "initial", "process" or "holder"."""
    own_mnt = snap.own.get("mnt")
    pinned = [r for r in ns.refs if r.kind == "bindmount" and r.path
              and r.path.startswith(RUN_NETNS) and "/" not in r.path[len(RUN_NETNS):]]
    if pinned:
        pinned.sort(key=lambda r: (r.mntns != own_mnt, r.path))
        path = pinned[0].path
        assert path is not None   # pinned holds only references with a path
        return path[len(RUN_NETNS):], "netns"
    container = getattr(ns, "container", None)
    if container is not None:
        return container.label, "container"
    proc = representative(ns, snap)
    if proc is not None and not proc.cmdline and proc.ppid in (0, 2):
        # Kernel threads live in the initial namespaces: this is the host's.
        return "host", "initial"
    if proc is not None:
        return f"{proc.comm} ({proc.pid})", "process"
    holders = [r for r in ns.refs if r.kind != "child"] or ns.refs
    if holders:
        return describe_ref(holders[0], snap), "holder"
    return f"net:[{ns.ino}]", "inode"


def topology(snap: Snapshot, views: dict[int, dict]) -> dict:
    """{"namespaces": [...], "links": [...]}: the document, from the network ``views``
    (by inode) of the namespaces in ``snap``."""
    names = {ns.ino: netns_name(ns, snap) for ns in snap.of_type("net")}
    own = snap.own.get("net")
    namespaces = []
    for ino in sorted(views, key=lambda i: (i != own, i)):
        ns = snap.namespaces[ino]
        view = {k: v for k, v in views[ino].items() if k != "type"}
        namespaces.append({"ns": ino, "id": ns.id, "name": names[ino][0],
                           "named_by": names[ino][1], "ours": ino == own,
                           "nprocs": len(ns.pids), **view})
    return {"namespaces": namespaces, "links": links(views, names), **gaps(snap)}


def _by_index(view: dict) -> dict[int, dict]:
    ifaces = view.get("interfaces")
    return {i["index"]: i for i in ifaces} if isinstance(ifaces, list) else {}


def links(views: dict[int, dict], names: dict[int, tuple[str, str]]) -> list[dict]:
    """Devices whose peer or lower device is in another namespace; a veth pair once."""
    index = {ino: _by_index(v) for ino, v in views.items()}
    out, seen = [], set()
    for ino in sorted(views):
        for iface in index[ino].values():
            link = iface.get("link")
            if not link or link["netns"] == ino:
                continue
            peer_ns, peer_index = link["netns"], link["ifindex"]
            here, there = (ino, iface["index"]), (peer_ns, peer_index)
            key = frozenset((here, there)) if link["role"] == "peer" else (here, there)
            if key in seen:
                continue
            seen.add(key)
            out.append({
                "kind": iface["kind"], "role": link["role"],
                "a": {"ns": ino, "name": names[ino][0] if ino in names else None,
                      "ifindex": iface["index"], "ifname": iface["name"]},
                "b": {"ns": peer_ns, "name": names[peer_ns][0] if peer_ns in names else None,
                      "ifindex": peer_index, "ifname": link.get("ifname"),
                      "netnsid": link["netnsid"]},
            })
    return out
