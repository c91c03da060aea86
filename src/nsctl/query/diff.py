"""Compare two snapshots: namespaces that appeared or went, references added or
dropped, processes that moved between namespaces.

Plain data in, plain data out.  Namespaces are matched by a key: the NS_GET_ID
id (never reused within a boot; the inode where the kernel has no ids) for
two snapshots of one boot, or the stable path (nsctl.query.naming) across boots and
hosts.  References that name other namespaces (a bind mount's mount
namespace, a child) are compared through the same key, so the result does not
depend on inode numbers when matching by path.
"""
from __future__ import annotations

from ..model import CHILD, Namespace, Reference, Snapshot

BY_ID, BY_PATH = "id", "path"


def _keys(snap: Snapshot, by: str) -> dict[int, object]:
    """Inode -> matching key."""
    if by == BY_PATH:
        from .naming import stable_paths

        return dict(stable_paths(snap))
    return {ino: (ns.id if ns.id is not None else ("ino", ino))
            for ino, ns in snap.namespaces.items()}


def _ref_key(ref: Reference, keys: dict[int, object]) -> tuple:
    return (ref.kind, ref.pid, ref.tid, ref.fd, ref.link, ref.socket, ref.path,
            keys.get(ref.mntns, ref.mntns) if ref.mntns is not None else None,
            keys.get(ref.child, ref.child) if ref.child is not None else None, ref.relation)


def _same_refs(ns_a: Namespace, ns_b: Namespace, keys_a: dict, keys_b: dict) -> bool:
    """A shortcut for watchers: an incremental rescan (nsctl.discovery.rescan) hands
    over the very Reference objects of what it did not read again, so a namespace
    whose references are the same objects (children matched by key) did not change."""
    refs_a, refs_b = ns_a.refs, ns_b.refs
    if len(refs_a) != len(refs_b):
        return False
    for x, y in zip(refs_a, refs_b, strict=True):
        if x is y:
            continue
        if x.kind != CHILD or y.kind != CHILD or x.relation != y.relation or \
                keys_a.get(x.child) != keys_b.get(y.child):
            return False
    return True


def _ns_summary(ns: Namespace, key: object) -> dict:
    return {"key": key, "ns": ns.ino, "type": ns.type, "id": ns.id, "name": ns.name or ns.label,
            "held_by": ns.held_by, "pids": sorted(ns.pids)}


def _ref_dict(ref: Reference, keys: dict[int, object]) -> dict:
    out = ref.to_dict()
    if ref.mntns is not None:
        out["mntns_key"] = keys.get(ref.mntns)
    if ref.child is not None:
        out["child_key"] = keys.get(ref.child)
    return out


def _compared(ref: Reference, snap: Snapshot, by: str) -> bool:
    """References that take part: not the nsctl process that took the snapshot, and
    with --by path none that name a process (PIDs mean nothing across boots)."""
    if ref.pid is not None and ref.pid == snap.viewer_pid:
        return False
    return by == BY_ID or ref.kind not in ("process", "thread", "fd", "socket")


def _interfaces(snap: Snapshot, keys: dict[int, object]) -> dict[tuple, dict]:
    """Every interface of every network namespace, by an identity that survives a move:
    its MAC address where it has one, else (namespace, name)."""
    out: dict[tuple, dict] = {}
    for ino, view in (snap.net_views or {}).items():
        ifaces = view.get("interfaces")
        if not isinstance(ifaces, list):
            continue
        for iface in ifaces:
            mac = iface.get("mac")
            ident = (("mac", mac) if mac and mac.strip("0:") else
                     ("name", repr(keys.get(ino)), iface.get("name")))
            out.setdefault(ident, {"name": iface.get("name"), "mac": mac,
                                   "kind": iface.get("kind"), "ns": ino,
                                   "ns_key": keys.get(ino)})
    return out


def _interface_changes(a: Snapshot, b: Snapshot, keys_a: dict, keys_b: dict) -> dict:
    """Interfaces added, removed, and moved (or renamed) between namespaces."""
    ia, ib = _interfaces(a, keys_a), _interfaces(b, keys_b)
    moved = []
    for ident in ia.keys() & ib.keys():
        before, after = ia[ident], ib[ident]
        if before["ns_key"] != after["ns_key"] or before["name"] != after["name"]:
            moved.append({"name": after["name"], "mac": after["mac"], "kind": after["kind"],
                          "from_name": before["name"], "from": before["ns"], "to": after["ns"],
                          "from_key": before["ns_key"], "to_key": after["ns_key"]})
    return {"added": [ib[i] for i in sorted(ib.keys() - ia.keys(), key=repr)],
            "removed": [ia[i] for i in sorted(ia.keys() - ib.keys(), key=repr)],
            "moved": sorted(moved, key=repr)}


def diff(a: Snapshot, b: Snapshot, by: str = BY_ID) -> dict:
    """What changed from ``a`` to ``b``; ``equal`` says whether anything did."""
    keys_a, keys_b = _keys(a, by), _keys(b, by)
    index_a = {keys_a[i]: ns for i, ns in a.namespaces.items()}
    index_b = {keys_b[i]: ns for i, ns in b.namespaces.items()}
    appeared = [_ns_summary(index_b[k], k) for k in index_b if k not in index_a]
    gone = [_ns_summary(index_a[k], k) for k in index_a if k not in index_b]
    changed = []
    for key in index_a.keys() & index_b.keys():
        ns_a, ns_b = index_a[key], index_b[key]
        if by == BY_ID and _same_refs(ns_a, ns_b, keys_a, keys_b):
            continue
        # Process identity (pid) means nothing across boots: compare those only by id.
        both_a, both_b = ns_a.refs, ns_b.refs
        if by == BY_ID:
            # A Reference object in both (taken over by a rescan) is unchanged: only
            # the others are compared by key (the host's own namespaces hold a
            # reference per process, and a change is mostly one or two of them).
            ids_a, ids_b = {id(r) for r in both_a}, {id(r) for r in both_b}
            both_a = [r for r in both_a if id(r) not in ids_b]
            both_b = [r for r in both_b if id(r) not in ids_a]
        refs_a = {_ref_key(r, keys_a): r for r in both_a if _compared(r, a, by)}
        refs_b = {_ref_key(r, keys_b): r for r in both_b if _compared(r, b, by)}
        added = [_ref_dict(refs_b[k], keys_b) for k in refs_b.keys() - refs_a.keys()]
        dropped = [_ref_dict(refs_a[k], keys_a) for k in refs_a.keys() - refs_b.keys()]
        if added or dropped:
            changed.append({"key": key, "type": ns_b.type, "ns": ns_b.ino,
                            "name": ns_b.name or ns_b.label, "added": sorted(added, key=repr),
                            "dropped": sorted(dropped, key=repr)})
    moved = []
    if by == BY_ID:
        for pid, p_b in b.processes.items():
            p_a = a.processes.get(pid)
            if p_a is None or p_a is p_b or p_a.starttime != p_b.starttime or \
                    pid == b.viewer_pid:
                continue  # not the same process, or taken over unread by a rescan
            for link in sorted(p_a.ns.keys() | p_b.ns.keys()):
                before = keys_a.get(p_a.ns[link]) if link in p_a.ns else None
                after = keys_b.get(p_b.ns[link]) if link in p_b.ns else None
                if before != after:
                    moved.append({"pid": pid, "comm": p_b.comm, "link": link,
                                  "from": p_a.ns.get(link), "to": p_b.ns.get(link)})
    interfaces = None
    if a.net_views is not None and b.net_views is not None:
        interfaces = _interface_changes(a, b, keys_a, keys_b)
    iface_changed = bool(interfaces and any(interfaces.values()))
    key_order = repr
    return {"by": by, "equal": not (appeared or gone or changed or moved or iface_changed),
            "interfaces": interfaces,
            "appeared": sorted(appeared, key=lambda d: key_order(d["key"])),
            "disappeared": sorted(gone, key=lambda d: key_order(d["key"])),
            "changed": sorted(changed, key=lambda d: key_order(d["key"])),
            "moved": moved}
