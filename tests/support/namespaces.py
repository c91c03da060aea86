"""Real namespace topologies, built by helper processes, and the fixtures' view of them.

Each topology is a context manager that builds namespaces with the calls of
:mod:`support.syscalls` (or util-linux unshare(1)), learns what it built with
:mod:`support.nsfacts`, and kills and reaps all it started and undoes every
mount and file at the end, also when the test fails half-way.  The functions
whose first argument is a :class:`~support.processes.Channel` are what the
helper children run.
"""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.nsfacts import NsFacts, ancestry, facts, facts_of_fd, link_ino, nspid
from support.processes import Channel, Child, ChildError, comm, descendants, ppid_map, terminate
from support.syscalls import (
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUTS,
    bind_mount,
    check,
    libc,
    make_rprivate,
    new_userns,
    setns,
    umount,
    unshare,
)

# --- what the helper children run ------------------------------------------------------------

def unshare_net_on_cue(chan: Channel) -> None:
    """Say our PID, wait for a word, then unshare a new network namespace (no fork, no
    exec: no process event marks it) and say so."""
    chan.send({"pid": os.getpid()})
    chan.recv()
    unshare(CLONE_NEWNET)
    chan.send({"moved": True})
    chan.wait_closed()


def unshare_and_wait(chan: Channel, flags: int) -> None:
    unshare(flags)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def _nest_users(chan: Channel, depth: int) -> None:
    for _ in range(depth):
        new_userns()
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def hold(chan: Channel) -> None:
    """Hold whatever fds the test passes, and open paths it names; report fd numbers."""
    while True:
        try:
            msg, fds = chan.recv()
        except EOFError:
            return
        for path in msg.get("open", ()):
            fds.append(os.open(path, os.O_RDONLY))
        chan.send({"fds": fds})


def _socket_in_netns(chan: Channel, pass_on: bool) -> None:
    """A socket made in a new netns, then the caller goes back to where it was.

    pass_on: hand the socket (and a look at the netns) to the test, and exit.
    Otherwise keep it: the netns is then held by this process's socket only.
    """
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    unshare(CLONE_NEWNET)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    net = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(home, CLONE_NEWNET)
    os.close(home)
    info = {"pid": os.getpid(), "fd": sock.fileno(), "socket": os.fstat(sock.fileno()).st_ino}
    if pass_on:
        chan.send(info, [net, sock.fileno()])
        os.close(net)
        sock.close()
        chan.recv()          # the test has its copies: done
        return
    chan.send(info, [net])
    os.close(net)
    chan.send("closed")   # only now does the socket alone hold the netns
    chan.wait_closed()
    sock.close()


def _thread_in_netns(chan: Channel) -> None:
    started = threading.Event()
    release = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            unshare(CLONE_NEWNET)
            box["tid"] = threading.get_native_id()
        except BaseException:
            box["error"] = traceback.format_exc()
        started.set()
        release.wait()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    if "error" in box:
        release.set()
        thread.join()
        raise ChildError(box["error"])
    chan.send({"pid": os.getpid(), "tid": box["tid"]})
    chan.wait_closed()
    release.set()
    thread.join()


def _threads_in_uts(chan: Channel, count: int) -> None:
    """``count`` threads, each unshared into a uts namespace of its own."""
    ready = threading.Barrier(count + 1)
    release = threading.Event()
    tids: dict[int, str] = {}

    def run() -> None:
        try:
            unshare(CLONE_NEWUTS)
            tids[threading.get_native_id()] = ""
        except BaseException:
            tids[threading.get_native_id()] = traceback.format_exc()
        ready.wait()
        release.wait()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    try:
        errors = [e for e in tids.values() if e]
        if errors:
            raise ChildError(errors[0])
        chan.send({"pid": os.getpid(), "tids": sorted(tids)})
        chan.wait_closed()
    finally:
        release.set()
        for thread in threads:
            thread.join()


def _leader_exits(chan: Channel) -> None:
    """A process in a netns of its own whose main thread exits, its other thread living on."""
    import platform

    unshare(CLONE_NEWNET)

    def live_on() -> None:
        chan.wait_closed()
        os._exit(0)

    thread = threading.Thread(target=live_on)
    thread.start()
    chan.send({"tid": thread.native_id})
    sys_exit = 60 if platform.machine() == "x86_64" else 93
    libc.syscall(sys_exit, 0)   # this thread only (exit, not exit_group)


def _foreign_mount(chan: Channel, point: str) -> None:
    """A new netns bind-mounted at ``point`` inside a new, private mount namespace.

    The process then goes back to the netns it came from, so the new netns is
    held by that mount alone; the process stays in the new mount namespace.
    """
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    unshare(CLONE_NEWNET)
    unshare(CLONE_NEWNS)
    make_rprivate("/")
    bind_mount("/proc/self/ns/net", point)
    setns(home, CLONE_NEWNET)
    os.close(home)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def _foreign_table(chan: Channel, directory: str, count: int, unknown: bool) -> None:
    """A private mount namespace with a tmpfs at ``directory`` and ``count`` bind mounts
    of our netns file on it; with ``unknown``, one more of a new netns that nothing
    else holds (the process goes back to the netns it came from)."""
    unshare(CLONE_NEWNS)
    make_rprivate("/")
    check(libc.mount(b"tmpfs", directory.encode(), b"tmpfs", 0, None), "mount tmpfs")
    for i in range(count):
        point = f"{directory}/own-{i}"
        open(point, "w").close()
        bind_mount("/proc/self/ns/net", point)
    if unknown:
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        unshare(CLONE_NEWNET)
        open(f"{directory}/hidden", "w").close()
        bind_mount("/proc/self/ns/net", f"{directory}/hidden")
        setns(home, CLONE_NEWNET)
        os.close(home)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def _pid_chain(chan: Channel, depth: int) -> None:
    """unshare(CLONE_NEWPID) and fork, ``depth`` times: one process at each level."""
    for _ in range(depth):
        unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid:
            os.waitpid(pid, 0)
            return
    chan.send({"ready": True})
    chan.wait_closed()


def _for_children(chan: Channel, flags: int, fork: bool) -> None:
    """unshare pid/time namespaces for the children; fork one child or none."""
    unshare(flags)
    if not fork:
        chan.send({"pid": os.getpid()})
        chan.wait_closed()
        return
    pid = os.fork()
    if pid == 0:
        chan.send({"pid": os.getpid()})   # its PID in its own namespace: not used
        chan.wait_closed()
        os._exit(0)
    os.waitpid(pid, 0)



# --- topologies ------------------------------------------------------------------------------

def _own_mntns() -> int:
    return link_ino("self", "mnt")


@dataclass
class NestedUsers:
    levels: list[NsFacts]          # outermost first: A, B, C
    top: NsFacts                   # the user namespace A was made in (ours)
    pid: int | None = None         # the process in C, if one is
    holder: int | None = None      # else: the process holding an fd of C...
    holder_fd: int | None = None   # ...and that fd's number


@contextmanager
def nested_userns(depth: int = 3, keep: str = "process") -> Iterator[NestedUsers]:
    """User namespaces ``depth`` deep; only the innermost is held by a process or an fd.

    keep="process": the process that made them stays in the innermost.
    keep="fd": another process holds an fd of the innermost; the maker exits.
    """
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_nest_users, depth))
        maker.ready()
        chain = ancestry(f"/proc/{maker.pid}/ns/user")   # innermost first, up to ours
        assert len(chain) == depth + 1, chain
        topo = NestedUsers(levels=chain[:depth][::-1], top=chain[depth])
        if keep == "process":
            topo.pid = maker.pid
        else:
            holder = stack.enter_context(Child(hold))
            holder.send({"open": [f"/proc/{maker.pid}/ns/user"]})
            topo.holder, topo.holder_fd = holder.pid, holder.ready()["fds"][0]
            maker.stop()
            assert os.readlink(f"/proc/{holder.pid}/fd/{topo.holder_fd}") == \
                f"user:[{topo.levels[-1].ino}]"
        yield topo


@dataclass
class Pinned:
    net: NsFacts
    path: str                       # where the netns file is bind-mounted
    mntns: int                      # the mount namespace that mount is in
    holder: int | None = None
    holder_fd: int | None = None


@contextmanager
def netns_bindmount(directory: Path, name: str = "netns", how: str = "bind") -> Iterator[Pinned]:
    """A netns held by nothing but a bind mount in our own mount namespace.

    how="bind": a process unshares it, the test bind-mounts /proc/PID/ns/net, the
    process exits.  how="unshare": `unshare --net=FILE true` does it all.
    """
    with ExitStack() as stack:
        path = directory / name
        path.touch()
        stack.callback(path.unlink)
        if how == "bind":
            with Child(unshare_and_wait, CLONE_NEWNET) as maker:
                maker.ready()
                bind_mount(f"/proc/{maker.pid}/ns/net", path)
                stack.callback(umount, path)
        elif how == "unshare":
            stack.callback(_umount_if_mounted, path)
            subprocess.run(["unshare", f"--net={path}", "true"], check=True, timeout=30)
        else:
            raise ValueError(how)
        net = facts(path)
        assert net.ino != link_ino("self", "net")
        yield Pinned(net=net, path=str(path), mntns=_own_mntns())


def _umount_if_mounted(path: Path) -> None:
    if os.stat(path).st_dev != os.stat(path.parent).st_dev:
        umount(path)


@dataclass
class ForeignMount:
    net: NsFacts                    # held by a bind mount inside mnt only
    mnt: NsFacts                    # the other mount namespace
    path: str                       # the mount point inside mnt
    keep: str                       # what holds mnt: process, fd or bindmount
    pid: int | None = None          # keep=process: the process in mnt
    holder: int | None = None       # keep=fd: the process holding an fd of mnt
    holder_fd: int | None = None
    mnt_path: str | None = None     # keep=bindmount: where mnt is bind-mounted (our mnt ns)


@contextmanager
def foreign_mount_netns(directory: Path, keep: str = "process") -> Iterator[ForeignMount]:
    """A netns held only by a bind mount inside another mount namespace.

    That mount namespace is held by a process in it (keep="process"), an fd
    of another process (keep="fd"), or a bind mount in ours (keep="bindmount").
    """
    with ExitStack() as stack:
        point = directory / "netns-in-other-mntns"
        point.touch()
        stack.callback(point.unlink)
        maker = stack.enter_context(Child(_foreign_mount, str(point)))
        maker.ready()
        net = facts(f"/proc/{maker.pid}/root{point}")   # resolved inside its mount namespace
        mnt = facts(f"/proc/{maker.pid}/ns/mnt")
        assert net.ino != link_ino(maker.pid, "net") and net.ino != link_ino("self", "net")
        assert mnt.ino != _own_mntns()
        assert os.stat(point).st_ino != net.ino, "the mount leaked into our mount namespace"
        topo = ForeignMount(net=net, mnt=mnt, path=str(point), keep=keep)
        if keep == "process":
            topo.pid = maker.pid
        elif keep == "fd":
            holder = stack.enter_context(Child(hold))
            holder.send({"open": [f"/proc/{maker.pid}/ns/mnt"]})
            topo.holder, topo.holder_fd = holder.pid, holder.ready()["fds"][0]
            maker.stop()
        elif keep == "bindmount":
            mnt_path = directory / "other-mntns"
            mnt_path.touch()
            stack.callback(mnt_path.unlink)
            try:
                bind_mount(f"/proc/{maker.pid}/ns/mnt", mnt_path)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                import pytest  # the setup's own bind, not nsctl: nothing of nsctl's is hidden

                pytest.skip("the kernel refused to bind-mount a newer mount namespace's file "
                            "(EINVAL; Linux 6.18 does so for about half of them once they were "
                            "queried by ioctl, when the caller is not in the initial mount "
                            "namespace, as in a container)")
            stack.callback(umount, mnt_path)
            topo.mnt_path = str(mnt_path)
            maker.stop()
        else:
            raise ValueError(keep)
        yield topo


@dataclass
class ForeignTable:
    mnt: NsFacts                    # a mount namespace no process is in (an fd holds it)
    own_net: int                    # our netns: every process here is in it
    points: list[str]               # where own_net's file is mounted in mnt
    nsfs_mounts: list[tuple[str, str]]   # (root, point) of mnt's nsfs mounts, from its mountinfo
    holder: int
    holder_fd: int
    hidden: NsFacts | None = None   # unknown=True: a netns held by a mount in mnt alone
    hidden_path: str | None = None


@contextmanager
def foreign_mount_table(directory: Path, count: int, unknown: bool = False
                        ) -> Iterator[ForeignTable]:
    """A mount namespace that only an fd holds, with ``count`` bind mounts of our
    own netns file in it (more than 512 make listmount(2) answer in pages), and,
    with ``unknown``, one of a netns held by that mount alone.  The tmpfs they sit
    on exists in that namespace only, and goes with it."""
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_foreign_table, str(directory), count, unknown))
        maker.ready(timeout=60)
        mnt = facts(f"/proc/{maker.pid}/ns/mnt")
        assert mnt.ino != _own_mntns()
        nsfs_mounts = []
        with open(f"/proc/{maker.pid}/mountinfo", encoding="utf-8",
                  errors="surrogateescape") as f:
            for line in f:
                head, _, tail = line.partition(" - ")
                if tail.split(" ")[0] == "nsfs":
                    fields = head.split(" ")
                    nsfs_mounts.append((fields[3], fields[4]))
        topo = ForeignTable(mnt=mnt, own_net=link_ino("self", "net"),
                            points=[f"{directory}/own-{i}" for i in range(count)],
                            nsfs_mounts=nsfs_mounts, holder=0, holder_fd=-1)
        if unknown:
            topo.hidden_path = f"{directory}/hidden"
            topo.hidden = facts(f"/proc/{maker.pid}/root{topo.hidden_path}")
            assert topo.hidden.ino != topo.own_net
        assert os.stat(directory).st_dev == os.stat(directory.parent).st_dev, \
            "the tmpfs leaked into our mount namespace"
        holder = stack.enter_context(Child(hold))
        holder.send({"open": [f"/proc/{maker.pid}/ns/mnt"]})
        topo.holder, topo.holder_fd = holder.pid, holder.ready()["fds"][0]
        maker.stop()
        yield topo


@dataclass
class HeldByFd:
    net: NsFacts
    holder: int
    fd: int
    link_text: str                  # what /proc/HOLDER/fd/FD reads


@contextmanager
def netns_held_by_fd(directory: Path | None = None, via: str = "proc") -> Iterator[HeldByFd]:
    """A netns that only another process's open fd keeps alive.

    via="proc": the holder opened /proc/MAKER/ns/net, then the maker exited.
    via="detached": the holder opened a bind mount of it, which was then
    unmounted (as `ip netns delete` does while `ip netns exec` runs).
    """
    with ExitStack() as stack:
        holder = stack.enter_context(Child(hold))
        with Child(unshare_and_wait, CLONE_NEWNET) as maker:
            maker.ready()
            if via == "proc":
                holder.send({"open": [f"/proc/{maker.pid}/ns/net"]})
                fd = holder.ready()["fds"][0]
            elif via == "detached":
                assert directory is not None, "via='detached' needs a directory"
                path = directory / "netns-detached"
                path.touch()
                try:
                    bind_mount(f"/proc/{maker.pid}/ns/net", path)
                    try:
                        holder.send({"open": [str(path)]})
                        fd = holder.ready()["fds"][0]
                    finally:
                        umount(path)
                finally:
                    path.unlink()
            else:
                raise ValueError(via)
        text = os.readlink(f"/proc/{holder.pid}/fd/{fd}")
        yield HeldByFd(net=facts(f"/proc/{holder.pid}/fd/{fd}"), holder=holder.pid, fd=fd,
                       link_text=text)


@dataclass
class HeldBySocket:
    net: NsFacts
    holder: int
    fd: int
    socket: int                     # the socket's inode


@contextmanager
def netns_held_by_socket(passed: bool = False) -> Iterator[HeldBySocket]:
    """A netns kept alive only by a socket made in it.

    passed=False: the process that made the socket went back to its old netns.
    passed=True: the socket went over SCM_RIGHTS to another process; the maker exited.
    """
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_socket_in_netns, passed))
        info, fds = maker.recv()
        try:
            net = facts_of_fd(fds[0])
        finally:
            os.close(fds[0])
        if not passed:
            assert maker.ready() == "closed"   # its own fd on the netns is closed
            yield HeldBySocket(net=net, holder=info["pid"], fd=info["fd"], socket=info["socket"])
            return
        holder = stack.enter_context(Child(hold))
        try:
            holder.send({}, [fds[1]])
        finally:
            os.close(fds[1])
        fd = holder.ready()["fds"][0]
        maker.send({})
        maker.stop()
        yield HeldBySocket(net=net, holder=holder.pid, fd=fd, socket=info["socket"])


@dataclass
class ThreadNet:
    pid: int
    tid: int
    net: NsFacts
    process_net: int


@contextmanager
def thread_netns() -> Iterator[ThreadNet]:
    """A process one of whose threads unshared its network namespace."""
    with Child(_thread_in_netns) as proc:
        info = proc.ready()
        pid, tid = proc.pid, info["tid"]
        net = facts(f"/proc/{pid}/task/{tid}/ns/net")
        yield ThreadNet(pid=pid, tid=tid, net=net, process_net=link_ino(pid, "net"))


@dataclass
class ThreadsUts:
    pid: int
    uts: dict[int, NsFacts]          # tid -> its own uts namespace


@contextmanager
def threads_in_uts(count: int) -> Iterator[ThreadsUts]:
    """A process with ``count`` more threads, each in a uts namespace of its own."""
    with Child(_threads_in_uts, count) as proc:
        info = proc.ready()
        yield ThreadsUts(pid=proc.pid, uts={tid: facts(f"/proc/{proc.pid}/task/{tid}/ns/uts")
                                            for tid in info["tids"]})


@dataclass
class LeaderGone:
    pid: int
    tid: int                        # the thread still running
    net: NsFacts                    # its netns, which the process unshared before


@contextmanager
def leader_exited() -> Iterator[LeaderGone]:
    """A live process whose main thread has exited: /proc/PID/ns/* are gone (ENOENT)
    and /proc/PID/mountinfo fails (EINVAL), while its other thread runs on in the
    netns the process made."""
    with Child(_leader_exits) as proc:
        tid = proc.ready()["tid"]
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{proc.pid}/ns/net") or \
                Path(f"/proc/{proc.pid}/task/{proc.pid}/stat").read_text().split(") ")[1][0] != "Z":
            if time.monotonic() > deadline:
                raise RuntimeError("the main thread did not exit")
            time.sleep(0.002)
        yield LeaderGone(pid=proc.pid, tid=tid, net=facts(f"/proc/{proc.pid}/task/{tid}/ns/net"))


@dataclass
class PidLevel:
    pid: int                        # in our PID namespace
    nspid: list[int]                # NSpid from /proc/PID/status
    ns: NsFacts


@dataclass
class PidChain:
    maker: int                      # in our PID namespace, pid_for_children = levels[0]
    levels: list[PidLevel]          # outermost first
    top: NsFacts                    # our own PID namespace


@contextmanager
def pid_chain(depth: int = 3) -> Iterator[PidChain]:
    with Child(_pid_chain, depth) as maker:
        maker.ready()
        parents = ppid_map()
        chain, cur = [], maker.pid
        for _ in range(depth):
            kids = [p for p, pp in parents.items() if pp == cur]
            assert len(kids) == 1, (cur, kids)
            cur = kids[0]
            chain.append(cur)
        levels = [PidLevel(pid=p, nspid=nspid(p), ns=ancestry(f"/proc/{p}/ns/pid")[0])
                  for p in chain]
        yield PidChain(maker=maker.pid, levels=levels, top=facts("/proc/self/ns/pid"))


@dataclass
class ForChildren:
    maker: int
    child: int | None
    pid_ns: NsFacts | None
    time_ns: NsFacts


@contextmanager
def for_children(fork: bool) -> Iterator[ForChildren]:
    """pid_for_children / time_for_children that differ from pid / time.

    fork=True: unshare(CLONE_NEWPID|CLONE_NEWTIME) and fork one child (the pid
    link of a new PID namespace is readable only once its first process exists).
    fork=False: unshare(CLONE_NEWTIME) only: the new time namespace is held by
    nothing but the maker's time_for_children link.
    """
    flags = CLONE_NEWTIME | (CLONE_NEWPID if fork else 0)
    with Child(_for_children, flags, fork) as maker:
        maker.ready()
        child = None
        if fork:
            kids = [p for p, pp in ppid_map().items() if pp == maker.pid]
            assert len(kids) == 1, kids
            child = kids[0]
        pid_ns = facts(f"/proc/{maker.pid}/ns/pid_for_children") if fork else None
        yield ForChildren(maker=maker.pid, child=child, pid_ns=pid_ns,
                          time_ns=facts(f"/proc/{maker.pid}/ns/time_for_children"))


@dataclass
class Command:
    popen: subprocess.Popen
    pid: int
    child: int      # the one running sleep: what unshare(1) forked (itself, without --fork)


@contextmanager
def unshare_command(args: list[str], fork: bool = True,
                    cpu: int | None = None) -> Iterator[Command]:
    """util-linux unshare(1) running ``sleep``; with --fork, wait for the forked child.
    ``cpu``: run it on that CPU only (taskset), where the order of NS_GET_ID ids
    matters: the kernel hands ids out from per-CPU batches."""
    argv = ["unshare", *args, *(["--fork", "--kill-child"] if fork else []), "sleep", "600"]
    if cpu is not None:
        argv = ["taskset", "--cpu-list", str(cpu), *argv]
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            watch = [p for p, pp in ppid_map().items() if pp == popen.pid] if fork else [popen.pid]
            if watch and comm(watch[0]) == "sleep":
                break
            if popen.poll() is not None:
                raise RuntimeError(f"{argv} exited with {popen.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start")
            time.sleep(0.005)
        yield Command(popen=popen, pid=popen.pid, child=watch[0])
    finally:
        terminate([popen.pid] + descendants(popen.pid))
        popen.wait(timeout=10)

