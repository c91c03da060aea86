"""IPC namespace: how many System V message queues, semaphore sets and shared memory
segments it has, and how many POSIX message queues.

/proc/sysvipc/* list the IPC namespace of whoever *opens* them, so a child
that entered the namespace opens them (any procfs will do).  POSIX queues live
in the namespace's mqueue filesystem: the child mounts a fresh one (it belongs
to the mounter's IPC namespace) where nobody else sees it, and counts.
"""
from __future__ import annotations

import os

from ..kernel.mounts import fresh_mount
from .base import Context, attempt

SYSVIPC = {"msg_queues": "msg", "semaphore_sets": "sem", "shm_segments": "shm"}


def _count_sysv(name: str) -> int:
    with open(f"/proc/sysvipc/{name}") as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)   # minus the header


def _count_mqueues() -> int:
    with fresh_mount("mqueue") as root:
        return len(os.listdir(root))


def _inside(_self_dir: int):
    out = {key: attempt(f"/proc/sysvipc/{name}", _count_sysv, name)
           for key, name in SYSVIPC.items()}
    out["posix_mqueues"] = attempt("mqueue", _count_mqueues)
    yield out


def view(ctx: Context) -> dict:
    return ctx.inside(_inside)[0]
