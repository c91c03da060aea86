"""Namespaces with something to see in them, for the view and ``nsctl net`` tests.

As in support/namespaces.py, nothing here goes through nsctl: the fixtures set things
up with ip(8), nsenter(1), unshare(2) and plain syscalls, and learn what the
kernel made of it themselves (``ip -j`` output, /proc files read by the
fixture's own processes).  Every context manager undoes all it made: /run/netns
names (prefixed with the session's tag), processes (and with them the
namespaces only they held; veths die with their namespace).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.namespaces import hold
from support.nsfacts import link_ino
from support.processes import Channel, Child
from support.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWTIME,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
    make_rprivate,
    unshare,
)

_libc = ctypes.CDLL(None, use_errno=True)


# --- ip(8), run in a namespace given by a path --------------------------------------------------

def ip(net: str | None, *args: str) -> Any:
    """``ip -j ARGS`` inside the netns at path ``net`` (ours if None); its JSON, or None."""
    argv = ["ip", "-j", *args]
    if net is not None:
        argv = ["nsenter", f"--net={net}", *argv]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout
    return json.loads(out) if out.strip() else None


def links_of(net: str | None) -> dict[str, dict]:
    """What the kernel says of every device in a netns: ``ip -j -d addr show`` by name."""
    return {dev["ifname"]: dev for dev in ip(net, "-d", "addr", "show")}


def wait_oper_up(net: str | None, *names: str) -> None:
    """Wait until the kernel reports these devices' operstate UP: it follows an admin
    "up" asynchronously (linkwatch), and a fixture must hand over a settled state."""
    deadline = time.monotonic() + 10
    while True:
        devs = {d["ifname"]: d for d in ip(net, "link", "show") or []}
        if all(devs.get(n, {}).get("operstate") == "UP" for n in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{names} did not come up: {devs}")
        time.sleep(0.02)


def netns_add(name: str) -> str:
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    return f"/run/netns/{name}"


def netns_del(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], check=False, timeout=30,
                   stderr=subprocess.DEVNULL)


# --- two (then three) network namespaces and one veth pair --------------------------------------

@dataclass
class VethPair:
    """Seed 000's case: a veth pair between A and B, each end renamed to eth0."""

    a_name: str                    # /run/netns name of A
    a: str                         # path of A's netns file
    a_ino: int
    b_pid: int                     # the process B is held by
    b: str                         # /proc/PID/ns/net of that process
    b_ino: int
    a_addr: str = "10.77.0.1"
    b_addr: str = "10.77.0.2"
    prefix: int = 24
    c_name: str | None = None      # after move_b_to_c: the third namespace
    c: str | None = None
    c_ino: int | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    def move_b_to_c(self, tag: str) -> None:
        """Move B's end into a new namespace C (``ip netns add``), keeping its name."""
        self.c_name = f"{tag}vc"
        self.c = netns_add(self.c_name)
        self.stack.callback(netns_del, self.c_name)
        self.c_ino = os.stat(self.c).st_ino
        ip(self.b, "link", "set", "eth0", "netns", self.c_name)
        ip(self.c, "addr", "add", f"{self.b_addr}/{self.prefix}", "dev", "eth0")
        ip(self.c, "link", "set", "eth0", "up")
        ip(self.a, "link", "set", "eth0", "up")
        wait_oper_up(self.c, "eth0")
        wait_oper_up(self.a, "eth0")


def _wait_in_new_netns(chan: Channel) -> None:
    unshare(CLONE_NEWNET)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


@contextmanager
def veth_pair(tag: str) -> Iterator[VethPair]:
    """A (``ip netns add TAGva``) and B (held by a process) joined by a veth pair,
    made as va/vb in A, vb moved to B, then both renamed eth0 and given addresses."""
    with ExitStack() as stack:
        a_name = f"{tag}va"
        a = netns_add(a_name)
        stack.callback(netns_del, a_name)
        holder = stack.enter_context(Child(_wait_in_new_netns))
        pid = holder.ready()["pid"]
        b = f"/proc/{pid}/ns/net"
        pair = VethPair(a_name=a_name, a=a, a_ino=os.stat(a).st_ino, b_pid=pid, b=b,
                        b_ino=os.stat(b).st_ino)
        stack.enter_context(pair.stack)
        ip(a, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        ip(a, "link", "set", "vb", "netns", str(pid))
        ip(a, "link", "set", "va", "name", "eth0")
        ip(b, "link", "set", "vb", "name", "eth0")
        ip(a, "addr", "add", f"{pair.a_addr}/{pair.prefix}", "dev", "eth0")
        ip(b, "addr", "add", f"{pair.b_addr}/{pair.prefix}", "dev", "eth0")
        ip(a, "link", "set", "eth0", "up")
        ip(b, "link", "set", "eth0", "up")
        wait_oper_up(a, "eth0")
        wait_oper_up(b, "eth0")
        yield pair


def add_local_veth(net: str, name: str, address: str | None = None) -> None:
    """A veth pair ``name``/``name``p with both ends in the netns at ``net`` (the
    machines here have no dummy driver), ``name`` with an address."""
    ip(net, "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    if address:
        ip(net, "addr", "add", address, "dev", name)
    ip(net, "link", "set", name, "up")
    ip(net, "link", "set", f"{name}p", "up")
    wait_oper_up(net, name, f"{name}p")


# --- processes in new namespaces of the other types ---------------------------------------------

def _uts(chan: Channel, hostname: str, domainname: str) -> None:
    unshare(CLONE_NEWUTS)
    socket.sethostname(hostname)
    raw = domainname.encode()
    if _libc.setdomainname(raw, len(raw)) != 0:
        raise OSError(ctypes.get_errno(), "setdomainname")
    with open("/proc/sys/kernel/domainname") as f:
        seen_domain = f.read().strip()
    chan.send({"pid": os.getpid(), "hostname": os.uname().nodename, "domainname": seen_domain})
    chan.wait_closed()


@dataclass
class Uts:
    pid: int
    ino: int
    hostname: str       # as uname(2) returned it inside
    domainname: str     # as /proc/sys/kernel/domainname showed it inside


@contextmanager
def uts_ns(hostname: str, domainname: str) -> Iterator[Uts]:
    with Child(_uts, hostname, domainname) as child:
        info = child.ready()
        yield Uts(pid=info["pid"], ino=link_ino(info["pid"], "uts"), hostname=info["hostname"],
                  domainname=info["domainname"])


def _unshare_then_wait(chan: Channel, flags: int) -> None:
    unshare(flags)
    chan.send({"pid": os.getpid()})
    chan.recv()            # the test wrote what it wanted (maps, offsets)
    chan.send({})
    chan.wait_closed()


def _unshare_fork_wait(chan: Channel, flags: int) -> None:
    """unshare (time), let the test write offsets, then fork one child into it."""
    unshare(flags)
    chan.send({"pid": os.getpid()})
    chan.recv()
    pid = os.fork()
    if pid == 0:
        chan.wait_closed()
        os._exit(0)
    chan.send({"child": pid})
    chan.wait_closed()
    os.waitpid(pid, 0)


@dataclass
class Held:
    """A namespace, who made it, and (keep="fd") who holds it now instead."""

    ino: int
    maker: int | None           # still running (keep="process") or gone
    holder: int | None = None   # keep="fd": the process holding an fd of it
    fd: int | None = None
    facts: dict = field(default_factory=dict)   # what the fixture read back from the kernel


@contextmanager
def user_ns(uid_map: str, gid_map: str, keep: str = "process") -> Iterator[Held]:
    """A user namespace whose maps the test (root, outside) writes; held by its maker or
    (keep="fd") only by another process's fd."""
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_unshare_then_wait, CLONE_NEWUSER))
        pid = maker.ready()["pid"]
        Path(f"/proc/{pid}/setgroups").write_text("deny")
        Path(f"/proc/{pid}/uid_map").write_text(uid_map)
        Path(f"/proc/{pid}/gid_map").write_text(gid_map)
        maker.send({})
        maker.ready()
        facts = {name: Path(f"/proc/{pid}/{name}").read_text()
                 for name in ("uid_map", "gid_map", "setgroups")}
        held = Held(ino=link_ino(pid, "user"), maker=pid, facts=facts)
        if keep == "fd":
            _only_an_fd_holds(stack, held, maker, f"/proc/{pid}/ns/user")
        yield held


def _only_an_fd_holds(stack: ExitStack, held: Held, maker: Child, path: str) -> None:
    """Hand the namespace at ``path`` to a child that keeps it open, then end its maker."""
    holder = stack.enter_context(Child(hold))
    holder.send({"open": [path]})
    held.holder, held.fd = holder.pid, holder.ready()["fds"][0]
    maker.stop()
    held.maker = None


@contextmanager
def time_ns(offsets: str, keep: str = "process") -> Iterator[Held]:
    """A time namespace with ``offsets`` written (by the test, before anyone is in it);
    keep="process": a child of the maker is in it; keep="fd": only an fd holds it."""
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_unshare_fork_wait, CLONE_NEWTIME))
        pid = maker.ready()["pid"]
        Path(f"/proc/{pid}/timens_offsets").write_text(offsets)
        facts = {"timens_offsets": Path(f"/proc/{pid}/timens_offsets").read_text()}
        maker.send({})
        child = maker.ready()["child"]
        held = Held(ino=link_ino(pid, "time_for_children"), maker=pid, facts=facts)
        assert link_ino(child, "time") == held.ino
        if keep == "fd":
            _only_an_fd_holds(stack, held, maker, f"/proc/{pid}/ns/time_for_children")
        yield held


# System V IPC and POSIX message queues, through libc.
IPC_PRIVATE = 0
IPC_CREAT = 0o1000


def _mq_open():
    for lib in (_libc, ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1",
                                   use_errno=True)):
        if hasattr(lib, "mq_open"):
            lib.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
            return lib.mq_open
    raise OSError("no mq_open")


def _ipc(chan: Channel, msgs: int, sems: int, shms: int, mqueues: int) -> None:
    unshare(CLONE_NEWIPC)
    for _ in range(msgs):
        if _libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600) < 0:
            raise OSError(ctypes.get_errno(), "msgget")
    for _ in range(sems):
        if _libc.semget(IPC_PRIVATE, 2, IPC_CREAT | 0o600) < 0:
            raise OSError(ctypes.get_errno(), "semget")
    for _ in range(shms):
        if _libc.shmget(IPC_PRIVATE, ctypes.c_size_t(4096), IPC_CREAT | 0o600) < 0:
            raise OSError(ctypes.get_errno(), "shmget")
    mq_open = _mq_open()
    for i in range(mqueues):
        fd = mq_open(f"/nsctl-test-{i}".encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "mq_open")
        os.close(fd)
    # What the kernel shows this IPC namespace to have (/proc/sysvipc: the opener's).
    counts = {}
    for key, name in (("msg_queues", "msg"), ("semaphore_sets", "sem"), ("shm_segments", "shm")):
        with open(f"/proc/sysvipc/{name}") as f:
            counts[key] = len(f.read().splitlines()) - 1
    chan.send({"pid": os.getpid(), "counts": counts})
    chan.wait_closed()


@contextmanager
def ipc_ns(msgs: int, sems: int, shms: int, mqueues: int) -> Iterator[Held]:
    """An IPC namespace with that many SysV queues, semaphore sets, shm segments and POSIX
    queues (all gone with the namespace when its process exits)."""
    with Child(_ipc, msgs, sems, shms, mqueues) as child:
        info = child.ready()
        yield Held(ino=link_ino(info["pid"], "ipc"), maker=info["pid"],
                   facts={**info["counts"], "posix_mqueues": mqueues})


def _cgroup(chan: Channel) -> None:
    with open("/proc/self/cgroup") as f:
        before = f.read()
    unshare(CLONE_NEWCGROUP)
    with open("/proc/self/cgroup") as f:
        inside = f.read()
    chan.send({"pid": os.getpid(), "before": before, "inside": inside})
    chan.wait_closed()


@contextmanager
def cgroup_ns() -> Iterator[Held]:
    """A cgroup namespace rooted where its maker's cgroups are."""
    with Child(_cgroup) as child:
        info = child.ready()
        yield Held(ino=link_ino(info["pid"], "cgroup"), maker=info["pid"], facts=info)


def _mnt(chan: Channel, point: str) -> None:
    unshare(CLONE_NEWNS)
    make_rprivate("/")
    if _libc.mount(b"tmpfs", point.encode(), b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount tmpfs")
    with open("/proc/self/mountinfo") as f:
        mounts = len(f.read().splitlines())
    chan.send({"pid": os.getpid(), "mounts": mounts})
    chan.wait_closed()


@contextmanager
def mnt_ns(point: Path) -> Iterator[Held]:
    """A mount namespace with one more mount (a tmpfs on ``point``) than ours."""
    with Child(_mnt, str(point)) as child:
        info = child.ready()
        yield Held(ino=link_ino(info["pid"], "mnt"), maker=info["pid"], facts=info)
