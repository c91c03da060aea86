"""UTS namespace: the host and NIS domain name its processes see.

Only a task inside the namespace can ask (uname(2), /proc/sys/kernel/domainname
answer for the caller's namespace), so a forked child enters it.
"""
from __future__ import annotations

import os

from .base import Context, attempt


def _inside(_self_dir: int):
    def domainname() -> str:
        with open("/proc/sys/kernel/domainname") as f:
            return f.read().rstrip("\n")

    yield {"hostname": os.uname().nodename,
           "domainname": attempt("/proc/sys/kernel/domainname", domainname)}


def view(ctx: Context) -> dict:
    return ctx.inside(_inside)[0]
