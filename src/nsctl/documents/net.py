"""The ``nsctl net --json`` document (``GET /api/v1/net``): every network namespace with
its interfaces, and the links that join them.

A link joins two namespaces when a device's IFLA_LINK_NETNSID names another namespace:
both ends of a veth pair (listed once), or a device whose lower device lives elsewhere.

Namespaces are named by their display names (nsctl.discovery.names): the ``ip netns``
name (a bind mount under /run/netns), else the container its processes are in, else
another bind mount's path, else its leading process, else what holds it.
"""
from __future__ import annotations

from ..model import Namespace, Snapshot
from .problems import gaps


def netns_name(ns: Namespace, snap: Snapshot) -> tuple[str, str]:
    """(its display name, what named it: "netns", "container", "bindmount", "process",
    "holder", "child" or "inode"; see nsctl.discovery.names)."""
    from ..discovery.names import name_of

    name, how = name_of(ns, snap)
    return ns.name or name, how


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
