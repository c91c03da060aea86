"""User namespace: its ID maps, setgroups, creator and depth.

/proc/PID/{uid,gid}_map show the maps in the terms of the *reader's* user
namespace, so they are read from nsctl's side: of a process in the namespace,
or (nobody in it) of a child parked inside it.
"""
from __future__ import annotations

import os

from ..kernel import procfs
from .base import Context

FILES = ("uid_map", "gid_map", "setgroups")


def parse_map(text: str) -> list[list[int]]:
    """``[[first ID inside, first ID outside, count], ...]`` of an ID map file."""
    return [[int(x) for x in line.split()] for line in text.splitlines() if line.strip()]


def _read(pid: int) -> dict[str, str]:
    dirfd = procfs.open_dir(f"{procfs.PROC}/{pid}")
    try:
        return {name: procfs.read_text(name, dirfd) for name in FILES}
    finally:
        os.close(dirfd)


def view(ctx: Context) -> dict:
    ns, snap = ctx.ns, ctx.snap
    found = ctx.read_proc(FILES)
    if found is not None:
        pid, texts = found
    else:
        with ctx.parked() as child:
            texts = _read(child.pid)
        pid = None
    return {
        "uid_map": parse_map(texts["uid_map"]),
        "gid_map": parse_map(texts["gid_map"]),
        "setgroups": texts["setgroups"].strip(),
        "owner_uid": ns.owner_uid,
        "level": snap.level(ns.ino),
        "seen_from": pid,
    }
