"""What the kernel says about a namespace, read by the fixtures themselves (os.stat of
nsfs files, NS_GET_* ioctls through fcntl, /proc/PID/status): the expected values the
tests compare nsctl's snapshot with.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from support.syscalls import (
    NS_GET_ID,
    NS_GET_NSTYPE,
    NS_GET_OWNER_UID,
    NS_GET_PARENT,
    NS_GET_USERNS,
    TYPE_OF_FLAG,
)


def ns_id(fd: int) -> int | None:
    """NS_GET_ID (Linux 6.18): the namespace's never-reused 64-bit id."""
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, NS_GET_ID, buf)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            return None
        raise
    return struct.unpack("=Q", buf)[0]


def related(fd: int, request: int) -> int | None:
    """An fd from NS_GET_USERNS / NS_GET_PARENT; None above our scope or for flat types."""
    try:
        return fcntl.ioctl(fd, request)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EINVAL):
            return None
        raise


@dataclass(frozen=True)
class NsFacts:
    """What the kernel says about one namespace, read by the fixture itself."""

    type: str
    ino: int
    dev: int
    id: int | None
    owner: int | None        # inode of the owning user ns (None: above our scope)
    parent: int | None       # inode of the parent (user and pid), None at our top
    owner_uid: int | None    # NS_GET_OWNER_UID of the user ns (of the owner, for others)


def facts_of_fd(fd: int) -> NsFacts:
    st = os.fstat(fd)
    ns_type = TYPE_OF_FLAG[fcntl.ioctl(fd, NS_GET_NSTYPE)]
    owner = parent = owner_uid = None
    ufd = related(fd, NS_GET_USERNS)
    if ufd is not None:
        owner = os.fstat(ufd).st_ino
        if ns_type != "user":
            owner_uid = _owner_uid(ufd)
        os.close(ufd)
    if ns_type == "user":
        owner_uid = _owner_uid(fd)
    if ns_type in ("user", "pid"):
        pfd = related(fd, NS_GET_PARENT)
        if pfd is not None:
            parent = os.fstat(pfd).st_ino
            os.close(pfd)
    return NsFacts(ns_type, st.st_ino, st.st_dev, ns_id(fd), owner, parent, owner_uid)


def _owner_uid(user_fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(user_fd, NS_GET_OWNER_UID, buf)
    return struct.unpack("=I", buf)[0]


def facts(path: str | Path) -> NsFacts:
    """Facts of the namespace behind an nsfs path (/proc/PID/ns/X, a bind mount...)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return facts_of_fd(fd)
    finally:
        os.close(fd)


def ancestry(path: str | Path) -> list[NsFacts]:
    """A user or PID namespace and its parents (NS_GET_PARENT), innermost first."""
    out = []
    fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    while fd is not None:
        try:
            out.append(facts_of_fd(fd))
            nxt = related(fd, NS_GET_PARENT)
        finally:
            os.close(fd)
        fd = nxt
    return out


def link_ino(pid: int | str, link: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{link}").st_ino


def nspid(pid: int) -> list[int]:
    """NSpid of /proc/PID/status: the PID at each level, outermost first."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no NSpid line for pid {pid}")

