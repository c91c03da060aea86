"""``nsctl net``: every network namespace, its interfaces, and the links that join them,
as text, Graphviz or the JSON document of :mod:`nsctl.documents.net`.

All network namespaces are read from one forked child that setns()es into
each in turn (:func:`nsctl.views.net.read_all`).
"""
from __future__ import annotations

import argparse
import sys

from ..documents.net import topology
from .args import command_parser
from .common import add_discovery_args, discover_from_args


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl net",
        description="Every network namespace with its interfaces, and the links (veth pairs, "
                    "devices whose link lives in another namespace) that join them.")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--dot", action="store_true", help="Graphviz text (pipe to `dot -Tsvg`)")
    p.add_argument("--no-sysfs", action="store_true",
                   help="skip reading each namespace's own /sys/class/net")
    add_discovery_args(p)
    return p


# --- names --------------------------------------------------------------------------------

def short(ino: int | None, names: dict[int, tuple[str, str]]) -> str:
    """A namespace in a sentence: its name, or net:[inode] when it has none we know."""
    if ino is None:
        return "an unknown namespace"
    return names[ino][0] if ino in names else f"net:[{ino}]"


# --- output -------------------------------------------------------------------------------

def addresses(iface: dict) -> str:
    return " ".join(f"{a['address']}/{a['prefixlen']}" for a in iface.get("addresses", ()))


def link_text(iface: dict, here: int | None, names: dict[int, tuple[str, str]]) -> str:
    """"peer eth0 (2) in blue" for a device's link, "" when it has none."""
    link = iface.get("link")
    if not link:
        return ""
    if link["ifindex"]:
        dev = f"{link['ifname']} ({link['ifindex']})" if link.get("ifname") \
            else f"if{link['ifindex']}"
    else:
        dev = "-"
    where = "" if link["netns"] == here else f" in {short(link['netns'], names)}"
    if link["netns"] is None and link["netnsid"] is not None:
        where = f" in netnsid {link['netnsid']} (a namespace not found)"
    return f"{'peer' if link['role'] == 'peer' else 'on'} {dev}{where}"


def interface_label(iface: dict) -> str:
    parts = [f"{iface['name']} ({iface['index']})", iface.get("kind") or "-",
             iface.get("operstate") or "?", f"mtu {iface.get('mtu')}"]
    if iface.get("mac"):
        parts.append(iface["mac"])
    addrs = addresses(iface)
    if addrs:
        parts.append(addrs)
    master = iface.get("master")
    if master:
        parts.append(f"master {master.get('ifname') or 'if' + str(master['ifindex'])}")
    return "  ".join(parts)


def print_text(topo: dict) -> None:
    from .render import Node, print_table, print_tree

    names = {n["ns"]: (n["name"], n["named_by"]) for n in topo["namespaces"]}
    roots = []
    for entry in topo["namespaces"]:
        ino = entry["ns"]
        how = {"netns": "ip netns", "container": "container", "process": "process",
               "initial": "the initial network namespace",
               "holder": "held by", "inode": ""}[entry["named_by"]]
        note = f"net:[{ino}]" + (f"  {how}" if how else "") + \
            ("  (nsctl's own)" if entry["ours"] else "")
        node = Node(entry["name"], style="bold cyan", note=note)
        if "error" in entry:
            node.children.append(Node(f"error: {entry['error']}", style="red"))
        ifaces = entry.get("interfaces")
        if isinstance(ifaces, dict):
            node.children.append(Node(f"interfaces: {ifaces['error']}", style="red"))
        elif ifaces is not None:
            for iface in ifaces:
                node.children.append(Node(interface_label(iface),
                                          note=link_text(iface, ino, names)))
        if entry.get("sysfs_agrees") is False:
            node.children.append(Node("sysfs /sys/class/net disagrees with netlink",
                                      style="yellow"))
        elif isinstance(entry.get("sysfs"), dict):
            node.children.append(Node(f"sysfs: {entry['sysfs']['error']}", style="yellow"))
        roots.append(node)
    print_tree(roots)
    if topo["links"]:
        sys.stdout.write("\nlinks between namespaces:\n")
        sys.stdout.flush()
        rows = []
        for link in topo["links"]:
            a, b = link["a"], link["b"]
            rows.append([a["name"] or short(a["ns"], names), f"{a['ifname']} ({a['ifindex']})",
                         "<->" if link["role"] == "peer" else "-->",
                         b["name"] or short(b["ns"], names),
                         f"{b['ifname'] or 'if' + str(b['ifindex'])} ({b['ifindex']})"
                         if b["ifindex"] else "-",
                         link["kind"] or "-"])
        print_table(["NAMESPACE", "DEVICE", "", "NAMESPACE", "DEVICE", "KIND"], rows, set())


def _dot_quote(text: str) -> str:
    """A DOT string; a newline in ``text`` becomes DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(topo: dict) -> str:
    """Graphviz: a cluster per namespace, a node per interface, an edge per link."""
    def node_id(ino: int | None, index: int | None) -> str:
        return _dot_quote(f"{ino}:{index}")

    out = ["graph netns {", "  node [shape=box, fontname=monospace];"]
    for entry in topo["namespaces"]:
        ino = entry["ns"]
        label = f"{entry['name']}\nnet:[{ino}]"
        out.append(f"  subgraph cluster_{ino} {{")
        out.append(f"    label={_dot_quote(label)};")
        ifaces = entry.get("interfaces")
        if not isinstance(ifaces, list) or not ifaces:
            out.append(f"    {node_id(ino, None)} [label=\"(not read)\", shape=plaintext];")
        else:
            for iface in ifaces:
                text = iface["name"]
                if iface.get("addresses"):
                    text += "\n" + addresses(iface).replace(" ", "\n")
                out.append(f"    {node_id(ino, iface['index'])} [label={_dot_quote(text)}];")
        out.append("  }")
    known = {(e["ns"], i["index"]) for e in topo["namespaces"]
             if isinstance(e.get("interfaces"), list) for i in e["interfaces"]}
    # A port to its bridge or bond, in the same namespace.
    for entry in topo["namespaces"]:
        for iface in entry.get("interfaces") if isinstance(entry.get("interfaces"), list) \
                else ():
            master = iface.get("master")
            if master and (entry["ns"], master["ifindex"]) in known:
                out.append(f"  {node_id(entry['ns'], iface['index'])} -- "
                           f"{node_id(entry['ns'], master['ifindex'])} "
                           f"[label=\"master\", style=dotted];")
    for link in topo["links"]:
        a, b = link["a"], link["b"]
        if (b["ns"], b["ifindex"]) not in known:
            continue
        style = "solid" if link["role"] == "peer" else "dashed"
        out.append(f"  {node_id(a['ns'], a['ifindex'])} -- {node_id(b['ns'], b['ifindex'])} "
                   f"[label={_dot_quote(link['kind'] or '')}, style={style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    snap = discover_from_args(args)
    if snap.offline:
        if snap.net_views is None:
            from ..kernel.errors import NsctlError

            raise NsctlError(f"{args.from_file}: this snapshot holds no network views "
                             "(take it with nsctl snapshot --views)")
        views = snap.net_views
    else:
        from ..views.net import read_all

        views = read_all(snap, sysfs=not args.no_sysfs)
    topo = topology(snap, views)
    if args.json:
        from .render import print_json

        print_json(topo)
    elif args.dot:
        sys.stdout.write(dot(topo))
    else:
        print_text(topo)
    return 0
