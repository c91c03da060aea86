"""PID namespace topologies for test_pidns.py, and the fixtures' own view of them.

Built on :mod:`support.processes` and :mod:`support.nsfacts`.  As there,
nothing here goes through nsctl: every fact is read from the kernel itself
(/proc/PID/status NSpid/NStgid, /proc/PID/stat, os.stat of /proc/PID/ns/pid,
NS_GET_PARENT through :func:`support.nsfacts.ancestry`).

Every helper process names itself ``tp<role>`` (its comm), and reports its
role over the Child's channel once it is where it should be; a process forked
inside a helper never returns into pytest code (``os._exit``).
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.namespaces import hold
from support.nsfacts import NsFacts, ancestry, facts
from support.processes import Channel, Child, ChildError, descendants
from support.syscalls import (
    CLONE_NEWNS,
    CLONE_NEWPID,
    bind_mount,
    check,
    libc,
    make_rprivate,
    set_comm,
    umount,
    unshare,
)

PF_EXITING = 0x00000004      # task->flags: the task has started to exit (do_exit)


# --- the kernel's view of one task -----------------------------------------------------------

def status_fields(path: str) -> dict[str, list[int]]:
    """NSpid and NStgid of /proc/PID/status (or /proc/PID/task/TID/status)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("NSpid", "NStgid"):
            out[key] = [int(x) for x in rest.split()]
    return out


def stat_fields(pid: int) -> tuple[str, int, int]:
    """(state, ppid, flags) from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[6])


def is_exiting(pid: int) -> bool:
    """PF_EXITING: the task is in do_exit (still in the PID table)."""
    return bool(stat_fields(pid)[2] & PF_EXITING)


@dataclass
class Task:
    """One process (or thread) as the kernel shows it."""

    role: str
    pid: int                        # in our PID namespace
    nspid: list[int]                # NSpid, outermost (ours) first
    nstgid: list[int]
    ppid: int
    ns: NsFacts                     # its PID namespace
    chain: list[NsFacts]            # that namespace and its parents, innermost first
    pid_for_children: int | None    # inode of /proc/PID/ns/pid_for_children (None: none yet)

    @property
    def level(self) -> int:
        return len(self.nspid) - 1


def task_facts(role: str, pid: int) -> Task:
    st = status_fields(f"/proc/{pid}/status")
    try:
        pfc = os.stat(f"/proc/{pid}/ns/pid_for_children").st_ino
    except FileNotFoundError:
        pfc = None
    return Task(role=role, pid=pid, nspid=st["NSpid"], nstgid=st["NStgid"],
                ppid=stat_fields(pid)[1], ns=facts(f"/proc/{pid}/ns/pid"),
                chain=ancestry(f"/proc/{pid}/ns/pid"), pid_for_children=pfc)


# --- running roles inside helpers -------------------------------------------------------------

def _spawn(chan: Channel, role: str, body: Callable[[], None]) -> int:
    """Fork a process that names itself tp<role> and runs ``body``; never returns in it."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_comm("tp" + role)
            body()
            code = 0
        except BaseException:
            try:
                chan.send({"error": f"{role}: {traceback.format_exc()}"})
            except BaseException:
                pass
        finally:
            os._exit(code)
    return pid


def _park(chan: Channel, role: str, **extra) -> None:
    """Say where we are, then wait to be killed (a PID namespace's init dies with it)."""
    chan.send({"role": role, "pid": os.getpid(), **extra})
    while True:
        signal.pause()


def _collect(child: Child, roles: set[str], timeout: float = 20.0) -> dict[str, dict]:
    """The report of every role (a failed role raises ChildError)."""
    got: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while not roles <= set(got):
        msg = child.ready(max(0.1, deadline - time.monotonic()))
        got[msg["role"]] = msg
    return got


def _until_down(chan: Channel, victims: list[int], before: Callable[[], None] = lambda: None,
                wait: Callable[[], None] | None = None) -> None:
    """In a helper: wait for the test's 'down' (or its end of the channel closing), then
    SIGKILL and reap ``victims`` (the inits below us: each takes its namespace with it)
    and say 'down'.

    The helper tears its tree down itself, before Child.stop() looks at it: stop()
    running while the tree falls apart races support.processes.terminate (a process reaped
    between its pidfd_open and its /proc/PID/stat read is waited for in vain).
    """
    try:
        if wait is not None:
            wait()
        else:
            chan.recv()
    except EOFError:
        pass
    finally:
        before()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
    try:
        chan.send({"role": "down"})
    except OSError:
        return
    chan.wait_closed()


def bring_down(child: Child) -> None:
    """Ask a helper built on :func:`_until_down` to end its tree, wait till it has,
    then stop the helper itself."""
    if child.stopped:
        return
    try:
        child.send({"down": True})
        _collect(child, {"down"})
    except (OSError, EOFError, ChildError):
        pass   # it is gone already (or failed): stop() cleans up
    finally:
        child.stop()


@contextmanager
def _down_at_exit(child: Child) -> Iterator[None]:
    try:
        yield
    finally:
        bring_down(child)


def _pids_by_role(root: int) -> dict[str, int]:
    out = {}
    for pid in [root] + descendants(root):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("tp"):
            out[comm[2:]] = pid
    return out


# --- 1. three levels, a sibling, a thread -----------------------------------------------------
#
#   our PID ns (level 0)   M            (the Child; pid_for_children = L1)
#   L1 (level 1)           I1 (init)    W1    S1 (pid_for_children = L2b)
#   L2 (level 2)           I2 (init)    W2                     L2b: S2 (init)
#   L3 (level 3)           I3 (init)    W3 (+ one more thread)
#
# I1 and I2 fork their W and S before they unshare: after unshare(CLONE_NEWPID)
# every child they fork is in the new namespace.

TREE_ROLES = {"M", "I1", "W1", "S1", "S2", "I2", "W2", "I3", "W3"}


def _w3() -> Callable[[Channel], None]:
    def body(chan: Channel) -> None:
        started = threading.Event()
        box = {}

        def run() -> None:
            box["tid"] = threading.get_native_id()
            started.set()
            threading.Event().wait()

        threading.Thread(target=run, daemon=True).start()
        started.wait()
        _park(chan, "W3", tid_inside=box["tid"])
    return body


def _i3(chan: Channel) -> None:
    _spawn(chan, "W3", lambda: _w3()(chan))
    _park(chan, "I3")


def _i2(chan: Channel) -> None:
    _spawn(chan, "W2", lambda: _park(chan, "W2"))
    unshare(CLONE_NEWPID)
    _spawn(chan, "I3", lambda: _i3(chan))
    _park(chan, "I2")


def _s1(chan: Channel) -> None:
    unshare(CLONE_NEWPID)
    _spawn(chan, "S2", lambda: _park(chan, "S2"))
    _park(chan, "S1")


def _i1(chan: Channel) -> None:
    _spawn(chan, "W1", lambda: _park(chan, "W1"))
    _spawn(chan, "S1", lambda: _s1(chan))
    unshare(CLONE_NEWPID)
    _spawn(chan, "I2", lambda: _i2(chan))
    _park(chan, "I1")


def _tree_maker(chan: Channel) -> None:
    """M: the root of it all; killing I1 takes L1 and everything below it down."""
    set_comm("tpM")
    unshare(CLONE_NEWPID)
    i1 = _spawn(chan, "I1", lambda: _i1(chan))
    chan.send({"role": "M", "pid": os.getpid()})
    _until_down(chan, [i1])


@dataclass
class PidTree:
    tasks: dict[str, Task]          # role -> the kernel's facts
    ns: dict[str, NsFacts]          # "L0" (ours), "L1", "L2", "L3", "L2b"
    thread: Task                    # W3's second thread (pid = its TID in our namespace)
    reports: dict[str, dict] = field(default_factory=dict)

    def pid(self, role: str) -> int:
        return self.tasks[role].pid

    def spec(self, name: str) -> str:
        return f"pid:[{self.ns[name].ino}]"


@contextmanager
def pid_tree() -> Iterator[PidTree]:
    with Child(_tree_maker) as maker, _down_at_exit(maker):
        reports = _collect(maker, TREE_ROLES)
        pids = _pids_by_role(maker.pid)
        assert set(pids) == TREE_ROLES, pids
        tasks = {role: task_facts(role, pid) for role, pid in pids.items()}
        ns = {"L0": facts("/proc/self/ns/pid"), "L1": tasks["I1"].ns, "L2": tasks["I2"].ns,
              "L3": tasks["I3"].ns, "L2b": tasks["S2"].ns}
        w3 = tasks["W3"].pid
        others = [int(t) for t in os.listdir(f"/proc/{w3}/task") if int(t) != w3]
        assert len(others) == 1, others
        st = status_fields(f"/proc/{w3}/task/{others[0]}/status")
        thread = Task(role="W3 thread", pid=others[0], nspid=st["NSpid"], nstgid=st["NStgid"],
                      ppid=tasks["W3"].ppid, ns=tasks["W3"].ns, chain=tasks["W3"].chain,
                      pid_for_children=None)
        assert thread.nspid[-1] == reports["W3"]["tid_inside"]
        yield PidTree(tasks=tasks, ns=ns, thread=thread, reports=reports)


# --- 3a. a PID namespace that outlives its processes ------------------------------------------

def _init_and_one(chan: Channel) -> None:
    _spawn(chan, "W", lambda: _park(chan, "W"))
    _park(chan, "I")


def _one_level(chan: Channel) -> None:
    set_comm("tpM")
    unshare(CLONE_NEWPID)
    init = _spawn(chan, "I", lambda: _init_and_one(chan))
    chan.send({"role": "M", "pid": os.getpid()})
    _until_down(chan, [init])


@dataclass
class Pinned:
    ns: NsFacts
    init: int                       # our PID of its init (while alive)
    other: int                      # our PID of its other process (while alive)
    how: str                        # what keeps it alive after they exit: bindmount | fd
    path: str | None = None         # how=bindmount: the mount point
    holder: int | None = None       # how=fd: the holding process...
    holder_fd: int | None = None    # ...and its fd
    kill: Callable[[], None] = lambda: None   # end every process in it (the pin stays)


@contextmanager
def pinned_pidns(directory: Path, how: str = "bindmount") -> Iterator[Pinned]:
    """A PID namespace with an init and one more process, pinned by a bind mount
    (or another process's fd) so that it outlives them once ``kill()`` ends them."""
    with ExitStack() as stack:
        maker = stack.enter_context(Child(_one_level))
        stack.enter_context(_down_at_exit(maker))
        _collect(maker, {"M", "I", "W"})
        pids = _pids_by_role(maker.pid)
        init, other = pids["I"], pids["W"]
        pin = Pinned(ns=facts(f"/proc/{init}/ns/pid"), init=init, other=other, how=how,
                     kill=lambda: bring_down(maker))
        if how == "bindmount":
            path = directory / "pidns-pin"
            path.touch()
            stack.callback(path.unlink)
            bind_mount(f"/proc/{init}/ns/pid", path)
            stack.callback(umount, path)
            pin.path = str(path)
        elif how == "fd":
            holder = Child(hold)
            stack.callback(holder.stop)
            holder.send({"open": [f"/proc/{init}/ns/pid"]})
            pin.holder, pin.holder_fd = holder.pid, holder.ready()["fds"][0]
        else:
            raise ValueError(how)
        yield pin


# --- 3b. a dying PID namespace: init gone, one process stuck in the kernel --------------------
#
# A process waiting for a FUSE reply that its daemon has already read cannot be
# killed (request_wait_answer's last wait is uninterruptible).  Kill the init
# of its PID namespace: zap_pid_ns_processes sends SIGKILL to the rest and waits
# for them, so the namespace stays with an exited init and one live process
# until the daemon lets go.  Everything happens in a private mount namespace;
# closing the channel (or killing the daemon) aborts the FUSE connection, which
# frees the stuck process.

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_INIT = 1, 2, 3, 26
FUSE_INTERRUPT, FUSE_BATCH_FORGET = 36, 42
_IN_HEADER = struct.Struct("=IIQQIIIHH")          # fuse_in_header, 40 bytes
_OUT_HEADER = struct.Struct("=IiQ")               # fuse_out_header, 16 bytes
STUCK_NAME = "stuck"


def _fuse_reply(dev: int, unique: int, error: int = 0, body: bytes = b"") -> None:
    os.write(dev, _OUT_HEADER.pack(_OUT_HEADER.size + len(body), error, unique) + body)


def _fuse_serve_one(dev: int) -> str | None:
    """Answer one request; 'stuck' when the LOOKUP of STUCK_NAME came (and is kept)."""
    data = os.read(dev, 1 << 20)
    length, opcode, unique, nodeid = _IN_HEADER.unpack_from(data)[:4]
    arg = data[_IN_HEADER.size:length]
    if opcode == FUSE_INIT:
        major, minor, readahead = struct.unpack_from("=III", arg)
        out = struct.pack("=IIIIHHIIHHII", 7, minor, readahead, 0, 0, 0, 4096, 1, 0, 0, 0, 0)
        _fuse_reply(dev, unique, body=out.ljust(64, b"\0"))
    elif opcode == FUSE_GETATTR and nodeid == 1:
        attr = struct.pack("=QQQQQQIIIIIIIIII", 1, 0, 0, 0, 0, 0, 0, 0, 0,
                           0o40755, 2, 0, 0, 0, 4096, 0)
        _fuse_reply(dev, unique, body=struct.pack("=QII", 0, 0, 0) + attr)
    elif opcode == FUSE_LOOKUP and arg.rstrip(b"\0") == STUCK_NAME.encode():
        return "stuck"                 # read, never answered
    elif opcode == FUSE_LOOKUP:
        _fuse_reply(dev, unique, -errno.ENOENT)
    elif opcode in (FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT):
        pass                           # no reply expected (or wanted)
    else:
        _fuse_reply(dev, unique, -errno.ENOSYS)
    return None


def _stuck_w(chan: Channel, point: str) -> None:
    chan.send({"role": "W", "pid": os.getpid()})
    os.stat(os.path.join(point, STUCK_NAME))     # blocks until the daemon lets go
    raise RuntimeError("the FUSE lookup returned")


def _stuck_i(chan: Channel, dev: int, point: str) -> None:
    os.close(dev)                      # only the daemon may hold the device
    _spawn(chan, "W", lambda: _stuck_w(chan, point))
    _park(chan, "I")


def _fuse_daemon(chan: Channel, point: str) -> None:
    set_comm("tpD")
    unshare(CLONE_NEWNS)
    make_rprivate("/")
    dev = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    opts = f"fd={dev},rootmode=40000,user_id=0,group_id=0".encode()
    check(libc.mount(b"tpfuse", point.encode(), b"fuse", 0, opts), "mount fuse")
    unshare(CLONE_NEWPID)
    init = _spawn(chan, "I", lambda: _stuck_i(chan, dev, point))
    chan.send({"role": "D", "pid": os.getpid()})

    def serve() -> None:
        watched: list[int | socket.socket] = [dev, chan.sock]
        while True:
            ready = select.select(watched, [], [])[0]
            if chan.sock in ready:
                chan.sock.recv(1 << 16, socket.MSG_DONTWAIT)
                return                 # 'down', or the test closed its end
            if _fuse_serve_one(dev) == "stuck":
                chan.send({"role": "stuck"})

    # Closing the device aborts the connection: the stuck lookup fails, its process
    # dies, and so the exited init can finish.
    _until_down(chan, [init], before=lambda: os.close(dev), wait=serve)


@dataclass
class Dying:
    ns: NsFacts
    init: int                       # our PID of the exited init
    stuck: int                      # our PID of the process left in it
    stuck_nspid: list[int]


@contextmanager
def dying_pidns(directory: Path) -> Iterator[Dying]:
    """A PID namespace whose init has exited while one process in it lives on."""
    point = directory / "fuse"
    point.mkdir()
    try:
        with Child(_fuse_daemon, str(point)) as daemon, _down_at_exit(daemon):
            _collect(daemon, {"D", "I", "W", "stuck"})
            pids = _pids_by_role(daemon.pid)
            init, stuck = pids["I"], pids["W"]
            ns = facts(f"/proc/{stuck}/ns/pid")
            nspid = status_fields(f"/proc/{stuck}/status")["NSpid"]
            os.kill(init, signal.SIGKILL)
            # The init is exiting: its namespaces are released (exit_task_namespaces),
            # and it waits in zap_pid_ns_processes for the stuck one, which got
            # SIGKILL too and now waits uninterruptibly (D) for the FUSE reply.
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{init}/ns/net") or stat_fields(stuck)[0] != "D":
                assert time.monotonic() < deadline, "the init did not exit, or W is not stuck"
                time.sleep(0.005)
            yield Dying(ns=ns, init=init, stuck=stuck, stuck_nspid=nspid)
    finally:
        point.rmdir()


# --- 4. unshare(CLONE_NEWPID) and no fork yet -------------------------------------------------

def _pending(chan: Channel) -> None:
    set_comm("tpP")
    unshare(CLONE_NEWPID)
    chan.send({"role": "P", "pid": os.getpid()})
    try:
        msg, _fds = chan.recv()
    except EOFError:
        return
    if msg.get("do") != "fork":        # down before any fork
        _until_down(chan, [], wait=lambda: None)
        return
    child = _spawn(chan, "C", lambda: _park(chan, "C"))
    _until_down(chan, [child])


@dataclass
class Pending:
    pid: int
    child: int | None = None
    fork: Callable[[], None] = lambda: None


@contextmanager
def pending_pidns() -> Iterator[Pending]:
    """A process after unshare(CLONE_NEWPID), before its first fork; ``fork()`` forks."""
    with Child(_pending) as maker, _down_at_exit(maker):
        _collect(maker, {"P"})
        pend = Pending(pid=maker.pid)

        def fork() -> None:
            maker.send({"do": "fork"})
            _collect(maker, {"C"})
            pend.child = _pids_by_role(maker.pid)["C"]

        pend.fork = fork
        yield pend
