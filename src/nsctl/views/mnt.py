"""Mount namespace: how many mounts it has, its root mount, and the namespace files
bind-mounted in it.

The mount table is /proc/PID/mountinfo of a process in it (paths as that
process sees them, from its root); with nobody in it, a child enters it and
reads its own (its root is then the namespace's root).  The namespace files
come from the snapshot's bind-mount references.
"""
from __future__ import annotations

from ..kernel import procfs
from .base import Context, attempt, failed


def summarize(mountinfo: str) -> dict:
    """Mount count and the mount at "/" (the last one there: it hides any below)."""
    count = 0
    root = None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5:
            continue
        count += 1
        if fields[4] == "/":
            after = tail.split()
            root = {"fstype": after[0] if after else None,
                    "source": procfs.unescape(after[1]) if len(after) > 1 else None,
                    "root": procfs.unescape(fields[3]), "mount_id": int(fields[0])}
    return {"mounts": count, "root": root}


def _inside(self_dir: int):
    yield attempt("mountinfo",
                  lambda: summarize(procfs.read_text("mountinfo", self_dir, records=True)))


def nsfs_mounts(ctx: Context) -> list[dict]:
    """Namespace files bind-mounted in this mount namespace: path, type and inode."""
    out = []
    for ns in ctx.snap.namespaces.values():
        for ref in ns.refs:
            if ref.kind == "bindmount" and ref.mntns == ctx.ns.ino:
                out.append({"path": ref.path, "type": ns.type, "ns": ns.ino})
    return sorted(out, key=lambda m: (m["path"], m["ns"]))


def view(ctx: Context) -> dict:
    found = ctx.read_proc(("mountinfo",))
    if found is not None:
        pid, table = found[0], summarize(found[1]["mountinfo"])
    else:
        pid, table = None, ctx.inside(_inside)[0]
        if failed(table):
            return {"mounts": table, "nsfs_mounts": nsfs_mounts(ctx)}
    return {**table, "nsfs_mounts": nsfs_mounts(ctx), "seen_from": pid}
