"""A namespace's view (:mod:`nsctl.views`) as the lines of ``nsctl show``'s "sees:" section."""
from __future__ import annotations

from ..model import Snapshot

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _err(value: Any) -> str | None:
    """The error text of a failed part, None for a value."""
    if isinstance(value, dict) and set(value) == {"error"}:
        return f"error: {value['error']}"
    return None


def _val(value: Any) -> str:
    return _err(value) or ("-" if value is None else str(value))


def _seen(view: dict) -> str:
    pid = view.get("seen_from")
    return f" (read of pid {pid})" if pid else (" (read from inside)" if "seen_from" in view
                                                else "")


def _net(view: dict, snap: Snapshot, ino: int) -> list[tuple[str, str]]:
    from ..documents.net import netns_name
    from .net import interface_label, link_text

    names = {ns.ino: netns_name(ns, snap) for ns in snap.of_type("net")}
    rows: list[tuple[str, str]] = []
    ifaces = view["interfaces"]   # a net view has a list of them, or an error
    if err := _err(ifaces):
        rows.append(("interfaces", err))
    else:
        rows.append(("interfaces", f"{len(ifaces)} (netlink)"))
        for iface in ifaces:
            note = link_text(iface, ino, names)
            rows.append(("", interface_label(iface) + (f"  {note}" if note else "")))
    nsids = view.get("netnsids")
    if err := _err(nsids):
        rows.append(("netnsids", err))
    elif nsids:
        rows.append(("netnsids", ", ".join(
            f"{n['nsid']} -> " + (f"{names[n['netns']][0]} net:[{n['netns']}]"
                                  if n["netns"] in names else
                                  f"net:[{n['netns']}]" if n["netns"] else "unknown")
            for n in nsids)))
    sysfs = view.get("sysfs")
    if err := _err(sysfs):
        rows.append(("sysfs", err))
    elif sysfs is not None:
        agrees = view.get("sysfs_agrees")
        rows.append(("sysfs", f"/sys/class/net mounted inside: {len(sysfs)} devices, " +
                     ("agrees with netlink" if agrees else "DISAGREES with netlink"
                      if agrees is False else "not compared")))
    return rows


def _uts(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    return [("hostname", _val(view.get("hostname"))),
            ("domainname", _val(view.get("domainname")))]


def _idmap(value: Any) -> str:
    if err := _err(value):
        return err
    if not value:
        return "(none: unmapped)"
    return ", ".join(f"{a} -> {b} ({c})" for a, b, c in value)


def _user(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    return [("uid_map", _idmap(view.get("uid_map")) + _seen(view)),
            ("gid_map", _idmap(view.get("gid_map"))),
            ("setgroups", _val(view.get("setgroups"))),
            ("owner uid", _val(view.get("owner_uid"))),
            ("level", _val(view.get("level")))]


def _mnt(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    rows = [("mounts", _val(view.get("mounts")) + _seen(view))]
    root = view.get("root")
    if isinstance(root, dict):
        rows.append(("root", f"{root.get('source')} ({root.get('fstype')})"
                     + (f" at {root['root']}" if root.get("root") not in (None, "/") else "")))
    for m in view.get("nsfs_mounts") or ():
        rows.append(("ns file", f"{m['path']} -> {m['type']}:[{m['ns']}]"))
    return rows


def _pid(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    init = view.get("init")
    return [("level", _val(view.get("level"))),
            ("init", "-" if init is None else f"{view.get('init_comm') or '?'} ({init})"),
            ("status", _val(view.get("status"))),
            ("processes", _val(view.get("processes")))]


def _offset(value: Any) -> str:
    if _err(value) or not isinstance(value, dict):
        return _val(value)
    total = value["seconds"] + value["nanoseconds"] / 1e9
    return f"{total:+.9f} s offset"


def _time(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    return [("monotonic", _offset(view.get("monotonic")) + _seen(view)),
            ("boottime", _offset(view.get("boottime")))]


def _cgroup(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    roots = view.get("roots")
    if _err(roots) or not isinstance(roots, list):
        return [("root", _val(roots))]
    rows = []
    for i, r in enumerate(roots):
        hier = "cgroup2" if r["hierarchy"] == 0 and not r["controllers"] else r["controllers"]
        rows.append(("root" if i == 0 else "", f"{_val(r['root'])}  ({hier})"
                     + (_seen(view) if i == 0 else "")))
    return rows


def _count(value: Any, what: str) -> str:
    return _err(value) or f"{value} {what}"


def _ipc(view: dict, _snap: Snapshot, _ino: int) -> list[tuple[str, str]]:
    return [("System V", _count(view.get("msg_queues"), "message queues")),
            ("", _count(view.get("semaphore_sets"), "semaphore sets")),
            ("", _count(view.get("shm_segments"), "shared memory segments")),
            ("POSIX", _count(view.get("posix_mqueues"), "message queues"))]


RENDER: dict[str, Callable[[dict, Snapshot, int], list[tuple[str, str]]]] = {
    "net": _net, "uts": _uts, "user": _user, "mnt": _mnt, "pid": _pid, "time": _time,
    "cgroup": _cgroup, "ipc": _ipc,
}


def view_lines(view: dict, snap: Snapshot, ino: int, indent: str = "    ") -> list[str]:
    """The "sees:" lines of a view, an error line where it could not be read."""
    if "error" in view:
        return [f"{indent}error: {view['error']}"]
    render = RENDER.get(view.get("type", ""))
    if render is None:
        return []
    return [f"{indent}{label + ':' if label else '':<12}{value}".rstrip()
            for label, value in render(view, snap, ino)]
