"""What the tests of pin, enter and run need: targets for ``nsctl enter``, a network
namespace of the test's own to run ``nsctl run --veth`` in, and ``nsctl run`` running in
the background with its init and command found from outside.

As in :mod:`support.namespaces`, every expected value is read from the kernel by the fixture itself
(os.stat of nsfs files, NS_GET_ID, /proc/PID/* read from outside, mountinfo), never taken
from what nsctl printed.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.cli import NSCTL
from support.leaks import unescape
from support.namespaces import unshare_and_wait
from support.processes import Channel, Child, children, descendants, terminate, wait_for
from support.syscalls import CLONE_NEWNET, MS_BIND, bind_mount, check, libc, umount, unshare

TYPES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")


# --- the kernel's view, read by the test -------------------------------------------------------

def links(pid: int | str) -> dict[str, str]:
    """readlink of every /proc/PID/ns/TYPE (the 8 types)."""
    return {t: os.readlink(f"/proc/{pid}/ns/{t}") for t in TYPES}


def nsfs_mounts() -> dict[str, str]:
    """Mount point -> root ('net:[...]') of every nsfs mount in our mount namespace."""
    out = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        if tail.split()[0] != "nsfs":
            continue
        fields = head.split()
        out[unescape(fields[4])] = unescape(fields[3])
    return out


def mounts_under(directory: str | Path) -> list[str]:
    """Mount points (any fs) at or below ``directory`` in our mount namespace."""
    top = str(directory)
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = unescape(line.split()[4])
        if point == top or point.startswith(top + "/"):
            out.append(point)
    return out


def unpin_quietly(path: str | Path) -> None:
    """Safety net for a failed test: take a pin down without nsctl."""
    path = str(path)
    while path in nsfs_mounts():
        umount(path)
    if os.path.lexists(path):
        os.unlink(path)


# --- targets for nsctl enter ---------------------------------------------------------------------

def _target(chan: Channel, flags: int, hostname: str | None, ifname: str | None) -> None:
    """unshare ``flags``; set a hostname, add a veth pair IFNAME/IFNAMEp in the new netns
    (no dummy driver on this kernel)."""
    unshare(flags)
    if hostname is not None:
        socket.sethostname(hostname)
    if ifname is not None:
        subprocess.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", f"{ifname}p"],
                       check=True, capture_output=True)
        for name in (ifname, f"{ifname}p"):
            subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


@dataclass
class Target:
    pid: int
    hostname: str | None
    ifname: str | None

    def link(self, ns_type: str) -> str:
        return os.readlink(f"/proc/{self.pid}/ns/{ns_type}")


@contextmanager
def target(flags: int, hostname: str | None = None, ifname: str | None = None
           ) -> Iterator[Target]:
    """A process in new namespaces (``flags``) with a known hostname / veth pair."""
    with Child(_target, flags, hostname, ifname) as child:
        child.ready()
        yield Target(pid=child.pid, hostname=hostname, ifname=ifname)


# --- a network namespace of the test's own -----------------------------------------------------

@dataclass
class OwnNet:
    """A netns held by a helper process; commands run in it through nsenter(1)."""

    pid: int

    @property
    def prefix(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--"]

    def ip_json(self, *args: str) -> list[dict]:
        out = subprocess.run([*self.prefix, "ip", "-j", *args], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        return json.loads(out or "[]")

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in self.ip_json("link")}

    def addrs(self) -> dict[str, list[str]]:
        return {a["ifname"]: [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", ())
                              if i.get("family") == "inet"]
                for a in self.ip_json("addr")}


@contextmanager
def own_netns() -> Iterator[OwnNet]:
    """Keeps `nsctl run --veth` off the host: its end of the pair lands in here."""
    with Child(unshare_and_wait, CLONE_NEWNET) as holder:
        holder.ready()
        subprocess.run(["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--", "ip", "link",
                        "set", "lo", "up"], check=True, timeout=30)
        yield OwnNet(pid=holder.pid)


# --- nsctl run in the background -----------------------------------------------------------------

def _no_core() -> None:
    """For ``preexec_fn``: no core file from a command the test kills.  It only makes one
    system call (its import is done beforehand), so it is safe between fork and exec
    even while the test runs threads."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Running:
    """``nsctl run ...`` started in the background; its processes found from outside.

    nsctl (the parent) forks the child that unshares; with --pid or --time that child
    forks the init, which (with --pid) forks the command.
    """

    def __init__(self, argv: list[str], cwd: str | Path | None = None,
                 prefix: Sequence[str] = (), session: bool = False) -> None:
        """session: in a process group of its own, as a shell's foreground job is (so the
        test can do what Ctrl-C does: signal the whole group)."""
        self.popen = subprocess.Popen([*prefix, *NSCTL, *map(str, argv)], cwd=cwd,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      preexec_fn=_no_core,  # noqa: PLW1509 (see _no_core)
                                      start_new_session=session)
        self.pid = self.popen.pid

    def only_child(self, pid: int) -> int | None:
        kids = children(pid)
        return kids[0] if len(kids) == 1 else None

    def child(self) -> int:
        return wait_for(lambda: self.only_child(self.pid), "nsctl run's child")

    def init(self) -> int:
        child = self.child()
        return wait_for(lambda: self.only_child(child), "the init")

    def wait(self, timeout: float = 30) -> subprocess.CompletedProcess:
        out, err = self.popen.communicate(timeout=timeout)
        return subprocess.CompletedProcess(self.popen.args, self.popen.returncode, out, err)

    def close(self) -> None:
        if self.popen.poll() is None:
            terminate([self.pid] + descendants(self.pid))
            self.popen.returncode = -signal.SIGKILL   # reaped by terminate
        self.popen.communicate()


@contextmanager
def running(argv: list[str], **kwargs) -> Iterator[Running]:
    run = Running(argv, **kwargs)
    try:
        yield run
    finally:
        run.close()


def wait_file(path: Path, timeout: float = 15.0) -> str:
    """The content of ``path`` once it exists and ends with a newline."""
    def read():
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if text.endswith("\n") else None

    return wait_for(read, f"{path}", timeout=timeout)


# --- a read-only directory (a step that fails half-way) ----------------------------------------

MS_RDONLY = 1
MS_REMOUNT = 32


@contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """``path`` made a read-only bind mount of itself: creating files in it fails (EROFS)."""
    path.mkdir()
    try:
        bind_mount(path, path)
        try:
            check(libc.mount(None, os.fsencode(path), None,
                                                 MS_BIND | MS_REMOUNT | MS_RDONLY,
                                                 None), f"remount ro {path}")
            yield path
        finally:
            umount(path)
    finally:
        path.rmdir()


# --- ICMP echo, for the veth test (no ping(1) on this machine) --------------------------------

PING = r"""
import os, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
dst = sys.argv[1]
ident = os.getpid() & 0xffff
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"nsctl-test"
pkt = body[:2] + struct.pack("!H", csum(body)) + body[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(5)
s.sendto(pkt, (dst, 0))
end = time.monotonic() + 5
while time.monotonic() < end:
    data, addr = s.recvfrom(2048)
    icmp = data[(data[0] & 0xf) * 4:]
    if addr[0] == dst and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        print("reply from", addr[0]); sys.exit(0)
sys.exit(1)
"""
