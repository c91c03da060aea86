"""Network namespace: its interfaces as netlink and as its own sysfs show them.

Read by a forked child inside the namespace (rtnetlink answers for the
namespace of the socket, and a socket is made where its maker is):

- every interface with index, kind, operstate, MTU, MAC, addresses and the
  bridge or bond it is a port of (its master); for a
  veth (and other paired links) the peer's ifindex and the network namespace
  the peer lives in, for other linked devices (vlan, macvlan, tunnels) the
  lower device's.  The kernel names that namespace by a number local to the
  viewed namespace (IFLA_LINK_NETNSID), so the child also reads the
  namespace's nsid table (RTM_GETNSID dump) and learns which namespace each
  nsid is by asking RTM_GETNSID about candidate namespace fds until every
  nsid is known.  (The kernel assigns an nsid to a veth peer's namespace the
  first time a link dump shows the peer, as ``ip link`` does too.)
- /sys/class/net as sysfs shows it when mounted from inside the namespace
  (tagged sysfs: sysfs tags the directory with the mounter's network
  namespace): the child mounts a fresh sysfs where nobody else sees it (a
  detached mount, or a private mount namespace on old kernels) and reads each
  device's ifindex, iflink, mtu, address and operstate.  That
  must agree with netlink; ``sysfs_agrees`` says whether it does.

:func:`read_all` views every network namespace from ONE child that setns()es
into each in turn.  pyroute2 is imported here only, and before forking.
"""
from __future__ import annotations

import os

from ..kernel import nsfs
from ..kernel.errors import NsctlError
from ..model import Snapshot
from ..query.handles import open_namespace
from .base import Context, error_text

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

#: Kinds whose IFLA_LINK is a peer device (the other end of a pair), not a lower device.
PAIRED = frozenset({"veth", "netkit", "vxcan"})
FAMILIES = {2: "inet", 10: "inet6"}
#: The sysfs attributes read per device, and how they are compared with netlink.
SYSFS_ATTRS = ("ifindex", "iflink", "mtu", "address", "operstate")
_INT_ATTRS = frozenset({"ifindex", "iflink", "mtu"})


def _load_pyroute2():
    """Import what the child needs (in the parent, so children don't pay it again)."""
    import asyncio
    from types import SimpleNamespace

    from pyroute2 import AsyncIPRoute
    from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_GETLINK, RTM_GETNSID
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.nsidmsg import nsidmsg

    return SimpleNamespace(asyncio=asyncio, AsyncIPRoute=AsyncIPRoute, nsidmsg=nsidmsg,
                           ifinfmsg=ifinfmsg, RTM_GETNSID=RTM_GETNSID, RTM_GETLINK=RTM_GETLINK,
                           REQUEST=NLM_F_REQUEST, DUMP=NLM_F_REQUEST | NLM_F_DUMP)


def _signed32(value: int | None) -> int | None:
    if value is None:
        return None
    return value - (1 << 32) if value >= 1 << 31 else value


def _interface(msg, addrs: list[dict]) -> dict:
    """One RTM_NEWLINK message as plain data (the link's netns is filled in later)."""
    kind = None
    info = msg.get_attr("IFLA_LINKINFO")
    if info is not None:
        kind = info.get_attr("IFLA_INFO_KIND")
    link_index = msg.get_attr("IFLA_LINK")
    link_nsid = _signed32(msg.get_attr("IFLA_LINK_NETNSID"))
    link = None
    if link_index or link_nsid is not None:
        link = {"role": "peer" if kind in PAIRED else "lower",
                "ifindex": link_index or None, "ifname": None, "netnsid": link_nsid,
                "netns": None}
    return {
        "name": msg.get_attr("IFLA_IFNAME"),
        "index": msg["index"],
        "kind": kind,
        "operstate": msg.get_attr("IFLA_OPERSTATE"),
        "up": bool(msg["flags"] & 1),            # IFF_UP
        "mtu": msg.get_attr("IFLA_MTU"),
        "mac": msg.get_attr("IFLA_ADDRESS"),
        "addresses": addrs,
        "link": link,
        # The bridge, bond or team the device is a port of (IFLA_MASTER: always in the
        # same namespace); its name is filled in with the rest of the namespace's.
        "master": {"ifindex": master, "ifname": None}
        if (master := msg.get_attr("IFLA_MASTER")) else None,
        # what sysfs's iflink must show: the link's ifindex, else the device's own
        "iflink": link_index if link_index is not None else msg["index"],
    }


def _address(msg) -> tuple[int, dict]:
    family = msg["family"]
    address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    return msg["index"], {"family": FAMILIES.get(family, str(family)), "address": address,
                          "prefixlen": msg["prefixlen"]}


def _read_sysfs() -> list[dict]:
    """/sys/class/net of a sysfs mounted now, by the caller, inside the namespace."""
    from ..kernel.mounts import fresh_mount

    out = []
    with fresh_mount("sysfs") as root:
        base = os.open("class/net", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root)
        try:
            for name in sorted(os.listdir(base)):
                dev: dict = {"name": name}
                for attr in SYSFS_ATTRS:
                    try:
                        text = _read_at(base, f"{name}/{attr}")
                    except OSError as exc:
                        dev[attr] = {"error": error_text(exc, f"{name}/{attr}")}
                        continue
                    dev[attr] = int(text) if attr in _INT_ATTRS and text.lstrip("-").isdigit() \
                        else text
                out.append(dev)
        finally:
            os.close(base)
    return out


def _read_at(dir_fd: int, path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, 4096).decode(errors="replace").strip()
    finally:
        os.close(fd)


def agree(interfaces: list[dict], sysfs: list[dict]) -> bool:
    """Whether netlink and sysfs show the same devices with the same attributes."""
    def norm(value):
        return value.lower() if isinstance(value, str) else value

    nl = {i["name"]: (i["index"], i["iflink"], i["mtu"], norm(i["mac"] or ""),
                      norm(i["operstate"])) for i in interfaces}
    sf = {d["name"]: (d["ifindex"], d["iflink"], d["mtu"], norm(d["address"]),
                      norm(d["operstate"])) for d in sysfs}
    return nl == sf


class Collector:
    """The child's side: called once per network namespace it has entered.

    ``candidates`` (inode -> fd, opened by the parent and inherited) are the
    namespaces first tried for nsid resolution; others in the snapshot are
    opened lazily, once per child, when an nsid is still unknown.
    """

    def __init__(self, snap: Snapshot, candidates: dict[int, int] | None = None,
                 sysfs: bool = True, peer_names: bool = True) -> None:
        self.snap = snap
        self.peer_names = peer_names
        self.fds = dict(candidates or {})
        self.tried: set[int] = set(self.fds)
        self.sysfs = sysfs
        self.loop: AbstractEventLoop | None = None
        self.nl = _load_pyroute2()

    def _candidates(self, current: int):
        own = self.snap.own.get("net")
        order = ([own] if own in self.fds else []) + [i for i in self.fds if i != own]
        for ino in order:
            if ino != current:
                yield ino, self.fds[ino]
        for ns in sorted(self.snap.of_type("net"), key=lambda n: (n.ino != own, n.ino)):
            if ns.ino in self.tried or ns.ino == current:
                continue
            self.tried.add(ns.ino)
            try:
                fd = open_namespace(ns, self.snap)
            except NsctlError:
                continue
            self.fds[ns.ino] = fd
            yield ns.ino, fd

    async def _name_in(self, ipr, nsid: int, index: int) -> str | None:
        """The name of device ``index`` in the namespace this one calls ``nsid``
        (RTM_GETLINK with IFLA_TARGET_NETNSID, Linux 4.20)."""
        nl = self.nl
        msg = nl.ifinfmsg()
        msg["index"] = index
        msg["attrs"] = [("IFLA_IF_NETNSID", nsid)]
        try:
            async for m in await ipr.nlm_request(msg, nl.RTM_GETLINK, nl.REQUEST):
                return m.get_attr("IFLA_IFNAME")
        except Exception:  # gone meanwhile, or a kernel without target-netnsid
            return None
        return None

    async def _netlink(self, current: int) -> tuple[list[dict], list[dict]]:
        nl = self.nl
        async with nl.AsyncIPRoute() as ipr:
            links = [m async for m in await ipr.get_links()]
            addrs: dict[int, list[dict]] = {}
            async for m in await ipr.get_addr():
                index, addr = _address(m)
                addrs.setdefault(index, []).append(addr)
            # After the link dump: it assigned nsids to peers' namespaces.
            wanted = set()
            async for m in await ipr.nlm_request(nl.nsidmsg(), nl.RTM_GETNSID, nl.DUMP):
                nsid = _signed32(m.get_attr("NETNSA_NSID"))
                if nsid is not None and nsid >= 0:
                    wanted.add(nsid)
            table: dict[int, int] = {}
            if wanted:
                for ino, fd in self._candidates(current):
                    try:
                        answer = await ipr.get_netnsid(fd=fd)
                    except Exception:  # a namespace that went away, an old kernel
                        continue
                    nsid = _signed32((answer or {}).get("nsid"))
                    if nsid in wanted and nsid not in table:
                        table[nsid] = ino
                        if len(table) == len(wanted):
                            break
            interfaces = [_interface(m, addrs.get(m["index"], [])) for m in links]
            local = {i["index"]: i["name"] for i in interfaces}
            for iface in interfaces:
                if iface["master"] is not None:
                    iface["master"]["ifname"] = local.get(iface["master"]["ifindex"])
                link = iface["link"]
                if link is None:
                    continue
                if link["netnsid"] is None:
                    link["netns"], link["ifname"] = current, local.get(link["ifindex"])
                    continue
                link["netns"] = table.get(link["netnsid"])
                if self.peer_names and link["ifindex"]:
                    link["ifname"] = await self._name_in(ipr, link["netnsid"], link["ifindex"])
        nsids = [{"nsid": nsid, "netns": table.get(nsid)} for nsid in sorted(wanted)]
        return interfaces, nsids

    def __call__(self, self_dir: int):
        """The visit_each work: items for the namespace the child is in now."""
        try:
            current = os.stat("ns/net", dir_fd=self_dir).st_ino
        except OSError as exc:
            yield {"k": "error", "part": "netns", "error": error_text(exc, "ns/net")}
            return
        yield {"k": "ns", "ns": current}
        interfaces = nsids = sysfs = None
        errors = {}
        try:
            if self.loop is None:
                self.loop = self.nl.asyncio.new_event_loop()
            interfaces, nsids = self.loop.run_until_complete(self._netlink(current))
        except Exception as exc:
            errors["interfaces"] = error_text(exc, "rtnetlink")
        if self.sysfs:
            try:
                sysfs = _read_sysfs()
            except Exception as exc:
                errors["sysfs"] = error_text(exc, "sysfs")
        same = None
        if interfaces is not None and sysfs is not None:
            same = agree(interfaces, sysfs)
            if not same:  # a device came or went between the two reads: look once more
                assert self.loop is not None   # the interfaces came through it
                try:
                    again = self.loop.run_until_complete(self._netlink(current))
                    sysfs_again = _read_sysfs()
                except Exception:
                    pass
                else:
                    (interfaces, nsids), sysfs = again, sysfs_again
                    same = agree(interfaces, sysfs)
        for part, text in errors.items():
            yield {"k": "error", "part": part, "error": text}
        for iface in interfaces or ():
            yield {"k": "if", **iface}
        if nsids is not None:
            yield {"k": "nsids", "nsids": nsids}
        for dev in sysfs or ():
            yield {"k": "sysfs", **dev}
        yield {"k": "agrees", "agrees": same}


def assemble(items: list[dict], sysfs: bool = True) -> dict:
    """One namespace's view from the items its child sent."""
    out: dict = {"ns": None, "interfaces": [], "netnsids": [], "sysfs": [] if sysfs else None,
                 "sysfs_agrees": None}
    for item in items:
        kind = item.pop("k")
        if kind == "ns":
            out["ns"] = item["ns"]
        elif kind == "if":
            out["interfaces"].append(item)
        elif kind == "sysfs":
            out["sysfs"].append(item)
        elif kind == "nsids":
            out["netnsids"] = item["nsids"]
        elif kind == "agrees":
            out["sysfs_agrees"] = item["agrees"]
        elif kind == "error":
            out[item["part"]] = {"error": item["error"]}
            if item["part"] == "interfaces":
                out["netnsids"] = {"error": item["error"]}
    return out


def view(ctx: Context) -> dict:
    collector = Collector(ctx.snap)
    items = ctx.inside(collector)
    out = assemble(items)
    out.pop("ns", None)
    return out


def read_all(snap: Snapshot, sysfs: bool = True,
             only: set[int] | None = None) -> dict[int, dict]:
    """Views of every network namespace in ``snap`` (or of those in ``only``),
    inode -> view, from one child (or a few sharing them, on a big host)."""
    from ..kernel.enter import visit_each, workers_for

    views: dict[int, dict] = {}
    fds: dict[int, int] = {}
    try:
        for ns in sorted(snap.of_type("net"), key=lambda n: n.ino):
            if only is not None and ns.ino not in only:
                continue
            try:
                fds[ns.ino] = open_namespace(ns, snap)
            except NsctlError as exc:
                views[ns.ino] = {"type": "net", "error": str(exc)}
        collector = Collector(snap, fds, sysfs=sysfs, peer_names=False)

        def work(self_dir: int):
            for item in collector(self_dir):
                yield item, None

        # Our own namespace first, entered by not moving (no privilege needed for that).
        own = snap.own.get("net")
        order = sorted(fds, key=lambda ino: ino != own)
        targets = [[] if ino == own else [(fds[ino], nsfs.CLONE_NEWNET)] for ino in order]
        results = visit_each(targets, work, workers_for(len(targets)))
        for ino, result in zip(order, results, strict=True):
            if isinstance(result, NsctlError):
                views[ino] = {"type": "net", "error": str(result)}
            elif not result:
                views[ino] = {"type": "net", "error": f"net:[{ino}]: the process reading it "
                              "inside the namespace failed"}
            else:
                view = assemble([item for item, _fd in result], sysfs=sysfs)
                view.pop("ns", None)
                views[ino] = {"type": "net", **view}
    finally:
        for fd in fds.values():
            os.close(fd)
    name_peers(views)
    return views


def name_peers(views: dict[int, dict]) -> None:
    """Fill each cross-namespace link's ``ifname`` from the other namespace's view."""
    names = {ino: {i["index"]: i["name"] for i in v["interfaces"]}
             for ino, v in views.items() if isinstance(v.get("interfaces"), list)}
    for ino in names:
        for iface in views[ino]["interfaces"]:
            link = iface["link"]
            if link is not None and link["ifname"] is None and link["netns"] in names:
                link["ifname"] = names[link["netns"]].get(link["ifindex"])
