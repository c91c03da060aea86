"""Real namespace topologies for the tests, and the fixtures' own view of them.

Nothing here goes through nsctl: the fixtures build namespaces with ctypes
unshare/setns/mount (or util-linux unshare(1)) and learn what they built from
the kernel themselves (os.stat of nsfs files, NS_GET_* ioctls through fcntl,
/proc/PID/status).  The tests then compare nsctl's snapshot with that.

Helper processes are forked from the pytest process (:class:`Child`): a child
closes every inherited fd but its channel, so it holds exactly what its
topology says, and talks to the test over a SOCK_SEQPACKET pair (JSON
messages, namespace fds passed with SCM_RIGHTS).  Every topology is a context
manager that kills and reaps all it started and undoes every mount and file,
also when the test fails half-way.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

root_only = pytest.mark.skipif(os.geteuid() != 0,
                               reason="needs root: builds namespaces, bind mounts and setns")


def run_nsctl(*args: str | os.PathLike, check: bool = False,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m nsctl ARGS`` as a user runs it (output block-buffered when piped,
    whatever this shell sets); with ``check`` it must succeed, and never with a
    traceback."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-m", "nsctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    return proc

# --- the kernel, as the fixtures use it ----------------------------------------------------

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
TYPE_OF_FLAG = {CLONE_NEWTIME: "time", CLONE_NEWNS: "mnt", CLONE_NEWCGROUP: "cgroup",
                CLONE_NEWUTS: "uts", CLONE_NEWIPC: "ipc", CLONE_NEWUSER: "user",
                CLONE_NEWPID: "pid", CLONE_NEWNET: "net"}
NS_LINKS = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")
LINK_TYPE = {link: link.replace("_for_children", "") for link in NS_LINKS}

NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_NSTYPE = 0xB703
NS_GET_OWNER_UID = 0xB704
NS_GET_ID = (2 << 30) | (8 << 16) | (0xB7 << 8) | 13
PR_SET_CHILD_SUBREAPER = 36

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare(0x{flags:x})")


def setns(fd: int, flags: int = 0) -> None:
    _check(_libc.setns(fd, flags), "setns")


def bind_mount(source: str | Path, target: str | Path) -> None:
    _check(_libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None),
           f"mount --bind {source} {target}")


def make_rprivate(path: str = "/") -> None:
    _check(_libc.mount(None, path.encode(), None, MS_REC | MS_PRIVATE, None),
           f"mount --make-rprivate {path}")


def umount(target: str | Path) -> None:
    """Detach a mount (lazily: the tests never wait for busy mounts)."""
    _check(_libc.umount2(os.fsencode(target), MNT_DETACH), f"umount {target}")


def set_comm(name: str) -> None:
    """Name the calling thread (what ps and the leak report show), 15 bytes at most."""
    _libc.prctl(15, name.encode()[:15], 0, 0, 0)   # PR_SET_NAME


def set_child_subreaper() -> None:
    """Orphans of our helpers come back to us, so they can be found and reaped."""
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def new_userns() -> None:
    """unshare a user namespace and map root to the caller's own IDs (so it can nest)."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


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


def _related(fd: int, request: int) -> int | None:
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


def children_of(pid: int) -> set[int]:
    """The PIDs of a process's children (of all its threads), from the kernel."""
    found: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(c) for c in f.read().split())
        except FileNotFoundError:
            continue   # the thread ended meanwhile
    return found


def facts_of_fd(fd: int) -> NsFacts:
    st = os.fstat(fd)
    ns_type = TYPE_OF_FLAG[fcntl.ioctl(fd, NS_GET_NSTYPE)]
    owner = parent = owner_uid = None
    ufd = _related(fd, NS_GET_USERNS)
    if ufd is not None:
        owner = os.fstat(ufd).st_ino
        if ns_type != "user":
            owner_uid = _owner_uid(ufd)
        os.close(ufd)
    if ns_type == "user":
        owner_uid = _owner_uid(fd)
    if ns_type in ("user", "pid"):
        pfd = _related(fd, NS_GET_PARENT)
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
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    while fd is not None:
        try:
            out.append(facts_of_fd(fd))
            nxt = _related(fd, NS_GET_PARENT)
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


# --- processes -------------------------------------------------------------------------------

def ppid_map() -> dict[int, int]:
    """pid -> ppid of every process visible now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        out[int(name)] = int(text[text.rindex(")") + 2:].split()[1])
    return out


def descendants(pid: int, parents: dict[int, int] | None = None) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    parents = ppid_map() if parents is None else parents
    kids: dict[int, list[int]] = {}
    for child, parent in parents.items():
        kids.setdefault(parent, []).append(child)
    out, todo = [], list(kids.get(pid, ()))
    while todo:
        cur = todo.pop(0)
        out.append(cur)
        todo.extend(kids.get(cur, ()))
    return out


def _starttime(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def terminate(pids: list[int], grace: float = 0.0, timeout: float = 10.0) -> None:
    """SIGKILL ``pids`` (after up to ``grace`` seconds to exit on their own) and reap our share.

    pidfds are taken first so that a PID reused meanwhile is never signalled.
    With the pytest process a child subreaper, orphans of these come back to
    us as zombies and are reaped here too; a process that is not our child is
    done once it is gone from /proc (or its PID names a newer process).
    """
    handles: dict[int, tuple[int, int | None]] = {}
    for pid in pids:
        try:
            handles[pid] = (os.pidfd_open(pid), _starttime(pid))
        except OSError:
            continue
    try:
        deadline = time.monotonic() + grace
        for fd, _start in handles.values():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        for fd, _start in handles.values():
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        pending = set(handles)
        while pending:
            for pid in sorted(pending):
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0] == pid
                except ChildProcessError:
                    # Not our child: done once gone from /proc (or the PID names a newer
                    # process); a start time unreadable at the start means it was gone then.
                    start = handles[pid][1]
                    done = start is None or _starttime(pid) != start
                if done:
                    pending.discard(pid)
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"processes did not go away: {sorted(pending)}")
                time.sleep(0.002)
    finally:
        for fd, _start in handles.values():
            os.close(fd)


class Channel:
    """One end of a SOCK_SEQPACKET pair: JSON messages, fds attached with SCM_RIGHTS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, obj: Any = None, fds: list[int] = ()) -> None:
        data = json.dumps(obj).encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self, timeout: float | None = None) -> tuple[Any, list[int]]:
        self.sock.settimeout(timeout)
        msg, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 20, 64)
        if not msg:
            for fd in fds:
                os.close(fd)
            raise EOFError("the other end closed")
        return json.loads(msg), fds

    def wait_closed(self) -> None:
        """Block until the other end goes away (the test's way of saying 'stop')."""
        self.sock.settimeout(None)
        while True:
            try:
                self.recv()
            except EOFError:
                return

    def close(self) -> None:
        self.sock.close()


class ChildError(RuntimeError):
    pass


class Child:
    """A helper process forked from pytest, running ``fn(channel, *args)``.

    The child keeps only fds 0-2 and its channel.  ``stop()`` (or leaving the
    ``with`` block) closes the channel, gives the child a moment to return,
    then kills and reaps it and everything it started.
    """

    def __init__(self, fn: Callable[..., None], *args: Any) -> None:
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                gc.freeze()  # objects shared with pytest are never finalised here
                set_comm("t" + fn.__name__)
                keep = child_sock.fileno()
                os.closerange(3, keep)
                os.closerange(keep + 1, 1 << 16)
                chan = Channel(child_sock)
                try:
                    fn(chan, *args)
                    code = 0
                except BaseException:
                    try:
                        chan.send({"error": traceback.format_exc()})
                    except BaseException:
                        pass
            finally:
                os._exit(code)
        child_sock.close()
        self.pid = pid
        self.chan = Channel(parent_sock)
        self.stopped = False

    def recv(self, timeout: float = 20.0) -> tuple[Any, list[int]]:
        try:
            msg, fds = self.chan.recv(timeout)
        except EOFError:
            raise ChildError(f"helper {self.pid} exited without a word") from None
        if isinstance(msg, dict) and "error" in msg:
            raise ChildError(f"helper {self.pid} failed:\n{msg['error']}")
        return msg, fds

    def ready(self, timeout: float = 20.0) -> Any:
        """The child's next message; its fds (if any) are closed."""
        msg, fds = self.recv(timeout)
        for fd in fds:
            os.close(fd)
        return msg

    def send(self, obj: Any = None, fds: list[int] = ()) -> None:
        self.chan.send(obj, fds)

    def stop(self, grace: float = 5.0) -> None:
        """Close the channel, wait for the child to finish, kill what is left, reap."""
        if self.stopped:
            return
        self.stopped = True
        tree = [self.pid] + descendants(self.pid)
        self.chan.close()
        terminate(tree, grace=grace)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- what the helper children run ------------------------------------------------------------

def unshare_net_on_cue(chan: Channel) -> None:
    """Say our PID, wait for a word, then unshare a new network namespace (no fork, no
    exec: no process event marks it) and say so."""
    chan.send({"pid": os.getpid()})
    chan.recv()
    unshare(CLONE_NEWNET)
    chan.send({"moved": True})
    chan.wait_closed()


def _unshare_and_wait(chan: Channel, flags: int) -> None:
    unshare(flags)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def _nest_users(chan: Channel, depth: int) -> None:
    for _ in range(depth):
        new_userns()
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def _hold(chan: Channel) -> None:
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


def _thread_churn(chan: Channel, width: int) -> None:
    """Threads coming and going, ``width`` at a time, each in a uts namespace of its own
    for 0-20 ms; on any message, the NS_GET_ID of every uts namespace they made."""
    import random

    made: list[int] = []
    lock = threading.Lock()

    def run(seed: int) -> None:
        unshare(CLONE_NEWUTS)
        fd = os.open("/proc/thread-self/ns/uts", os.O_RDONLY)
        try:
            with lock:
                made.append(ns_id(fd))
        finally:
            os.close(fd)
        time.sleep(random.Random(seed).choice((0, 0.001, 0.005, 0.02)))

    live: list[threading.Thread] = []
    chan.send({"pid": os.getpid()})
    k = 0
    while not select.select([chan.sock], [], [], 0)[0]:
        live = [t for t in live if t.is_alive()]
        while len(live) < width:
            live.append(threading.Thread(target=run, args=(k,)))
            live[-1].start()
            k += 1
        time.sleep(0.001)
    for thread in live:
        thread.join()
    chan.recv()
    with lock:   # (in a memfd: more than a message holds)
        memfd = os.memfd_create("made")
        os.write(memfd, json.dumps(made).encode())
    chan.send({"threads": k}, [memfd])
    os.close(memfd)
    chan.wait_closed()


@dataclass
class ThreadChurn:
    pid: int
    child: Child

    def stop(self) -> dict:
        """Stop making threads; every uts namespace id they made, and how many threads."""
        self.child.send({})
        msg, fds = self.child.recv()
        try:
            made = json.loads(os.pread(fds[0], os.fstat(fds[0]).st_size, 0))
        finally:
            for fd in fds:
                os.close(fd)
        return {**msg, "made": made}


@contextmanager
def thread_churn(width: int = 40) -> Iterator[ThreadChurn]:
    """A process whose threads keep making uts namespaces and exiting (see _thread_churn)."""
    with Child(_thread_churn, width) as child:
        yield ThreadChurn(pid=child.ready()["pid"], child=child)


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
    _libc.syscall(sys_exit, 0)   # this thread only (exit, not exit_group)


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


def can_list_mounts() -> bool:
    """Whether this kernel has listmount(2) (Linux 6.8; asked of it, not of its version):
    a NULL request fails with EFAULT where it exists, ENOSYS where not."""
    _libc.syscall.restype = ctypes.c_long
    return _libc.syscall(458, None, None, 0, 0) == -1 and ctypes.get_errno() == errno.EFAULT


def _foreign_table(chan: Channel, directory: str, count: int, unknown: bool) -> None:
    """A private mount namespace with a tmpfs at ``directory`` and ``count`` bind mounts
    of our netns file on it; with ``unknown``, one more of a new netns that nothing
    else holds (the process goes back to the netns it came from)."""
    unshare(CLONE_NEWNS)
    make_rprivate("/")
    _check(_libc.mount(b"tmpfs", directory.encode(), b"tmpfs", 0, None), "mount tmpfs")
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
            holder = stack.enter_context(Child(_hold))
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
            with Child(_unshare_and_wait, CLONE_NEWNET) as maker:
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
            holder = stack.enter_context(Child(_hold))
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
                import pytest   # the setup's own bind, not nsctl: nothing of nsctl's is hidden

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
        holder = stack.enter_context(Child(_hold))
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
        holder = stack.enter_context(Child(_hold))
        with Child(_unshare_and_wait, CLONE_NEWNET) as maker:
            maker.ready()
            if via == "proc":
                holder.send({"open": [f"/proc/{maker.pid}/ns/net"]})
                fd = holder.ready()["fds"][0]
            elif via == "detached":
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
        holder = stack.enter_context(Child(_hold))
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
    child: int | None = None        # the process unshare(1) forked


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
        cmd = Command(popen=popen, pid=popen.pid)
        deadline = time.monotonic() + 10
        while True:
            watch = [p for p, pp in ppid_map().items() if pp == popen.pid] if fork else [popen.pid]
            if watch and _comm(watch[0]) == "sleep":
                break
            if popen.poll() is not None:
                raise RuntimeError(f"{argv} exited with {popen.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start")
            time.sleep(0.005)
        cmd.child = watch[0] if fork else None
        yield cmd
    finally:
        terminate([popen.pid] + descendants(popen.pid))
        popen.wait(timeout=10)


def _describe_process(pid: int, ppid: int | None) -> str:
    """comm, state and parent, for a leak report."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat[stat.rindex(")") + 2:].split()[0]
    except OSError:
        state = "?"
    return f"{_comm(pid) or '?'}, state {state}, parent {ppid}"


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


# --- what a test may leave behind ------------------------------------------------------------

@dataclass
class Residue:
    """What this pytest process has made that outlives a test, at one moment."""

    processes: dict[int, str] = field(default_factory=dict)   # descendant pid -> command
    mounts: dict[int, str] = field(default_factory=dict)      # mount id -> "fstype at point"
    netns_names: set[str] = field(default_factory=set)        # /run/netns entries
    files: set[str] = field(default_factory=set)              # under our temp dirs
    ns_fds: dict[int, str] = field(default_factory=dict)      # our own fds on nsfs

    def __bool__(self) -> bool:
        return any((self.processes, self.mounts, self.netns_names, self.files, self.ns_fds))

    def describe(self) -> str:
        parts = []
        if self.processes:
            parts.append("processes " + ", ".join(f"{p} ({c})" for p, c in
                                                  sorted(self.processes.items())))
        if self.mounts:
            parts.append("mounts " + ", ".join(sorted(self.mounts.values())))
        if self.netns_names:
            parts.append("/run/netns entries " + ", ".join(sorted(self.netns_names)))
        if self.files:
            parts.append("files " + ", ".join(sorted(self.files)))
        if self.ns_fds:
            parts.append("namespace fds " + ", ".join(f"{fd} -> {t}" for fd, t in
                                                      sorted(self.ns_fds.items())))
        return "; ".join(parts)


RUN_NETNS = "/run/netns"


class LeakScope:
    """Which mounts, /run/netns entries and files count as this pytest process's.

    Other people run tests on this machine at the same time, so only what lies
    under our temp dirs, or in /run/netns under our tag, is ours; with
    ``strict`` (NSCTL_TEST_STRICT_LEAKS=1, for CI) every new nsfs mount and
    /run/netns entry is.
    """

    def __init__(self, tmp_roots: list[Path], tag: str, strict: bool) -> None:
        self.tmp_roots = [str(p.resolve()) for p in tmp_roots]
        self.tag = tag
        self.strict = strict

    def _under_tmp(self, path: str) -> bool:
        return any(path == r or path.startswith(r + "/") for r in self.tmp_roots)

    def capture(self) -> Residue:
        res = Residue()
        me = os.getpid()
        parents = ppid_map()
        for pid in descendants(me, parents):
            res.processes[pid] = _describe_process(pid, parents.get(pid))
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            head, _, tail = line.partition(" - ")
            fields = head.split()
            mount_id, point, fstype = int(fields[0]), _unescape(fields[4]), tail.split()[0]
            ours = self._under_tmp(point)
            if fstype == "nsfs" and point.startswith(RUN_NETNS + "/"):
                ours = ours or self.strict or os.path.basename(point).startswith(self.tag)
            elif fstype == "nsfs":
                ours = ours or self.strict
            if ours:
                res.mounts[mount_id] = f"{fstype} at {point}"
        try:
            names = os.listdir(RUN_NETNS)
        except OSError:
            names = []
        res.netns_names = {n for n in names if self.strict or n.startswith(self.tag)}
        for root in self.tmp_roots:
            for dirpath, _dirs, files in os.walk(root):
                res.files.update(os.path.join(dirpath, f) for f in files)
        for name in os.listdir("/proc/self/fd"):
            try:
                text = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                continue
            if text.partition(":[")[0] in LINK_TYPE:
                res.ns_fds[int(name)] = text
        return res

    @staticmethod
    def new_since(before: Residue, after: Residue) -> Residue:
        return Residue(
            processes={p: c for p, c in after.processes.items() if p not in before.processes},
            mounts={m: d for m, d in after.mounts.items() if m not in before.mounts},
            netns_names=after.netns_names - before.netns_names,
            files=after.files - before.files,
            ns_fds={fd: t for fd, t in after.ns_fds.items() if before.ns_fds.get(fd) != t},
        )

    @staticmethod
    def clean(left: Residue) -> None:
        """Undo what a test left, so the next test starts clean."""
        terminate(sorted(left.processes))
        for desc in sorted(left.mounts.values(), key=len, reverse=True):
            try:
                umount(desc.split(" at ", 1)[1])
            except OSError:
                pass
        for name in left.netns_names:
            try:
                os.unlink(os.path.join(RUN_NETNS, name))
            except OSError:
                pass
        for path in left.files:
            try:
                os.unlink(path)
            except OSError:
                pass
        for fd in left.ns_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


# --- churn: namespaces made and dropped all the time -----------------------------------------

CHURN_COMMS = ("t_churn_worker", "t_churn_child")   # what churn processes call themselves
CHURN_FLAGS = (CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWCGROUP,
               CLONE_NEWTIME, CLONE_NEWPID)


def _log_links(logfd: int, pid: int, tid: int | None = None, base: str | None = None) -> None:
    """Append one JSON line: every ns link of a process (or thread) with its id and owner."""
    base = base or (f"/proc/{pid}/task/{tid}/ns" if tid else f"/proc/{pid}/ns")
    links = {}
    for link in NS_LINKS:
        try:
            fd = os.open(f"{base}/{link}", os.O_RDONLY)
        except FileNotFoundError:
            continue   # pid_for_children before the first process exists
        try:
            owner = None
            ufd = _related(fd, NS_GET_USERNS)
            if ufd is not None:
                owner = os.fstat(ufd).st_ino
                os.close(ufd)
            links[link] = [os.fstat(fd).st_ino, ns_id(fd),
                           TYPE_OF_FLAG[fcntl.ioctl(fd, NS_GET_NSTYPE)], owner]
        finally:
            os.close(fd)
    os.write(logfd, (json.dumps({"pid": pid, "tid": tid, "links": links}) + "\n").encode())


def _churn_worker(logfd: int, seed: int) -> None:
    """One short-lived process: nested user namespaces, a random set of others,
    maybe a child in the new pid/time namespaces and a thread in its own netns;
    every state logged (by the process itself, right after each change)."""
    import random

    rnd = random.Random(seed)
    me = os.getpid()
    _log_links(logfd, me)
    for _ in range(rnd.choice((0, 0, 1, 2))):
        new_userns()
        _log_links(logfd, me)
    flags = 0
    for flag in CHURN_FLAGS:
        if rnd.random() < 0.4:
            flags |= flag
    if flags:
        unshare(flags)
        _log_links(logfd, me)
    child = None
    if flags & (CLONE_NEWPID | CLONE_NEWTIME) and rnd.random() < 0.7:
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            set_comm(CHURN_COMMS[1])
            os.close(w)
            os.read(r, 1)       # logged by the parent: now live a little
            time.sleep(rnd.random() * 0.02)
            os._exit(0)
        os.close(r)
        _log_links(logfd, child)   # its PID here is the one nsctl sees
        _log_links(logfd, me)      # pid_for_children is readable only now
        os.write(w, b"x")
        os.close(w)
    thread = None
    release = threading.Event()
    # No threads while pid/time for children differ: the kernel refuses CLONE_THREAD then.
    if not flags & (CLONE_NEWPID | CLONE_NEWTIME) and rnd.random() < 0.3:
        logged = threading.Event()

        def run() -> None:
            try:
                unshare(CLONE_NEWNET | (CLONE_NEWUTS if rnd.random() < 0.5 else 0))
                _log_links(logfd, me, threading.get_native_id(), base="/proc/thread-self/ns")
            finally:
                logged.set()
            release.wait()

        thread = threading.Thread(target=run)
        thread.start()
        logged.wait()
    # Most live a moment (to exit mid-scan), some long enough for any scan to meet them.
    time.sleep(rnd.choice((0.0, 0.003, 0.01 + rnd.random() * 0.07, 0.5 + rnd.random())))
    if thread is not None:
        release.set()
        thread.join()
    if child is not None:
        os.waitpid(child, 0)


def _churner(chan: Channel, log_path: str, width: int, limit: float) -> None:
    """Start workers, ``width`` at a time, from go until stop (or ``limit`` seconds)."""
    set_child_subreaper()   # a worker's orphans are reaped here, not left to pytest
    new_userns()        # everything the workers make is owned by this user namespace
    chan.send({"pid": os.getpid()})
    chan.recv()         # go
    logfd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    live: set[int] = set()
    started = failed = 0
    deadline = time.monotonic() + limit
    stopping = False
    while not stopping or live:
        while live:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            live.discard(pid)
            failed += status != 0
        if not stopping:
            stopping = (time.monotonic() > deadline
                        or bool(select.select([chan.sock], [], [], 0)[0]))
        if len(live) >= width or stopping:
            time.sleep(0.001)
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            set_comm(CHURN_COMMS[0])
            try:
                _churn_worker(logfd, started)
            except BaseException:
                os.write(logfd, (json.dumps({"error": traceback.format_exc()}) + "\n").encode())
                code = 1
            finally:
                os._exit(code)
        live.add(pid)
        started += 1
    os.close(logfd)
    chan.recv()         # the stop message
    chan.send({"workers": started, "failed": failed})
    chan.wait_closed()


@dataclass
class Churn:
    pid: int
    user: NsFacts                    # the churner's own user namespace: owns all it makes
    child: Child
    log_path: Path

    def go(self) -> None:
        self.child.send({})

    def stop(self, timeout: float = 60.0) -> dict:
        """Stop starting workers, wait for the last ones; the churner's summary."""
        self.child.send({})
        return self.child.ready(timeout)

    def wait_started(self, timeout: float = 10.0) -> None:
        """Until the first worker has logged."""
        deadline = time.monotonic() + timeout
        while not (self.log_path.exists() and self.log_path.stat().st_size):
            if time.monotonic() > deadline:
                raise RuntimeError("the churner did not start")
            time.sleep(0.005)

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]


@contextmanager
def churn(directory: Path, width: int = 8, limit: float = 60.0) -> Iterator[Churn]:
    """A process whose workers make and drop namespaces from go() to stop()."""
    log_path = directory / "churn.log"
    try:
        with Child(_churner, str(log_path), width, limit) as child:
            child.ready()
            yield Churn(pid=child.pid, user=facts(f"/proc/{child.pid}/ns/user"), child=child,
                        log_path=log_path)
    finally:
        log_path.unlink(missing_ok=True)


# --- PID reuse on demand ----------------------------------------------------------------------

REUSED_PID = 100


def _pid_reuser(log_path: str) -> None:
    """Forever: fork a process that gets PID REUSED_PID (ns_last_pid), names itself
    g<k>, unshares its uts namespace, logs "k pid uts", and exits at once."""
    import random

    logfd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    k = 0
    while True:
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(REUSED_PID - 1))
        pid = os.fork()
        if pid == 0:
            set_comm(f"g{k}")
            unshare(CLONE_NEWUTS)
            os.write(logfd, f"{k} {os.getpid()} {link_ino('self', 'uts')}\n".encode())
            time.sleep(random.choice((0, 0, 0.001, 0.003)))
            os._exit(0)
        os.waitpid(pid, 0)
        k += 1


def _pid_reuse_scan(chan: Channel, log_path: str, seconds: float) -> None:
    """In a new PID and mount namespace with its own /proc: a process reusing one PID
    over and over, and discover() running meanwhile; report what each scan saw."""
    import nsctl

    unshare(CLONE_NEWPID | CLONE_NEWNS)
    make_rprivate("/")
    init = os.fork()
    if init:
        os.waitpid(init, 0)
        return
    # PID 1 of the new namespace: everything in it dies with us.
    _check(_libc.mount(b"proc", b"/proc", b"proc", 0, None), "mount proc")
    reuser = os.fork()
    if reuser == 0:
        set_comm("t_pid_reuser")
        try:
            _pid_reuser(log_path)
        finally:
            os._exit(1)
    base_uts = link_ino("self", "uts")
    seen, scans, vanished = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        snap = nsctl.discover()
        scans += 1
        vanished += sum(p.reason == "vanished" for p in snap.problems)
        for proc in snap.processes.values():
            if proc.comm[:1] == "g" and proc.comm[1:].isdigit():
                missing = sorted(set(LINK_TYPE.values()) - set(proc.ns))
                seen.append([proc.pid, int(proc.comm[1:]), proc.ppid, proc.ns.get("uts"),
                             missing])
    os.kill(reuser, signal.SIGKILL)
    os.waitpid(reuser, 0)
    chan.send({"seen": seen, "scans": scans, "vanished": vanished, "base_uts": base_uts,
               "reuser": reuser})
    chan.wait_closed()


@contextmanager
def pid_reuse_scan(directory: Path, seconds: float = 2.0) -> Iterator[tuple[dict, dict]]:
    """(what the scans saw, the reuser's log {k: (pid, uts)}) for a PID reused all the time."""
    log_path = directory / "reuse.log"
    try:
        with Child(_pid_reuse_scan, str(log_path), seconds) as child:
            report = child.ready(timeout=seconds + 60)
            log = {}
            for line in log_path.read_text().splitlines():
                k, pid, uts = map(int, line.split())
                log[k] = (pid, uts)
            yield report, log
    finally:
        log_path.unlink(missing_ok=True)
