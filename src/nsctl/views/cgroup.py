"""Cgroup namespace: its root in every cgroup hierarchy.

/proc/PID/cgroup shows paths relative to the *reader's* cgroup namespace
root.  So the same process's file read from outside (nsctl) and from inside
(a child that entered the namespace) differ by exactly that root: outside
path = root + inside path.  The process is one in the namespace (its cgroup
is normally inside the root), else the child itself; a path that leaves the
root ("/../x") does not tell the root, and that hierarchy's root is then
``{"error": ...}``.
"""
from __future__ import annotations

import os

from ..kernel import nsfs, pidfd, procfs
from ..kernel.errors import NsctlError
from .base import Context, attempt


def parse(text: str) -> dict[tuple[str, str], str]:
    """{(hierarchy id, controllers): path} of a /proc/PID/cgroup text."""
    out = {}
    for line in text.splitlines():
        hier, _, rest = line.partition(":")
        controllers, sep, path = rest.partition(":")
        if sep:
            out[(hier, controllers)] = path
    return out


def root_of(outside: str, inside: str) -> str | None:
    """The namespace root, given one cgroup's path from outside and from inside."""
    if inside == "/":
        return outside
    if inside.startswith("/..") or not outside.endswith(inside):
        return None
    return outside[:-len(inside)] or "/"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _pick(ctx: Context) -> tuple[int, int, str] | None:
    """(pid, its pidfd, its cgroup file from outside) of a process in the namespace."""
    for pid in ctx.members():
        try:
            handle = pidfd.open_pidfd(pid)
        except NsctlError:
            continue
        try:
            text = _read(f"{procfs.PROC}/{pid}/cgroup")
        except OSError:
            os.close(handle)
            continue
        return pid, handle, text
    return None


def _still_in(ctx: Context, pid: int, handle: int) -> bool:
    try:
        link = nsfs.parse_link(os.readlink(f"{procfs.PROC}/{pid}/ns/cgroup"))
    except OSError:
        return False
    return pidfd.is_alive(handle) and link is not None and link[1] == ctx.ns.ino


def view(ctx: Context) -> dict:
    picked = _pick(ctx)
    pid = picked[0] if picked else None

    def inside(_self_dir: int):
        yield {"process": attempt("cgroup", _read, f"{procfs.PROC}/{pid}/cgroup")
               if pid is not None else None,
               "self": attempt("cgroup", _read, "/proc/self/cgroup")}

    try:
        seen = ctx.inside(inside)[0]
        if picked is not None and isinstance(seen["process"], str) and \
                _still_in(ctx, picked[0], picked[1]):
            outside, inside_text, used = picked[2], seen["process"], pid
        else:
            outside, inside_text, used = _read("/proc/self/cgroup"), seen["self"], None
    finally:
        if picked is not None:
            os.close(picked[1])
    if not isinstance(inside_text, str):
        return {"roots": inside_text}
    out_paths, in_paths = parse(outside), parse(inside_text)
    roots = []
    for (hier, controllers), path_in in sorted(in_paths.items(), key=lambda kv: int(kv[0][0])):
        path_out = out_paths.get((hier, controllers))
        root = root_of(path_out, path_in) if path_out is not None else None
        roots.append({"hierarchy": int(hier), "controllers": controllers,
                      "root": root if root is not None else
                      {"error": f"the cgroup seen ({path_in}) lies outside the namespace root"}})
    return {"roots": roots, "seen_from": used}
