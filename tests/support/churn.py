"""Namespaces made and dropped all the time: threads and processes that come and go
while nsctl scans, and one PID reused over and over."""
from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.nsfacts import NsFacts, facts, link_ino, ns_id, related
from support.processes import Channel, Child
from support.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWTIME,
    CLONE_NEWUTS,
    LINK_TYPE,
    NS_GET_NSTYPE,
    NS_GET_USERNS,
    NS_LINKS,
    TYPE_OF_FLAG,
    check,
    libc,
    make_rprivate,
    new_userns,
    set_child_subreaper,
    set_comm,
    unshare,
)

# --- threads: each in a uts namespace of its own, made and dropped all the time ---------------

def _thread_churn(chan: Channel, width: int) -> None:
    """Threads coming and going, ``width`` at a time, each in a uts namespace of its own
    for 0-20 ms; on any message, the NS_GET_ID of every uts namespace they made."""
    import random

    made: list[int | None] = []   # (None where the kernel has no NS_GET_ID)
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
            ufd = related(fd, NS_GET_USERNS)
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
    check(libc.mount(b"proc", b"/proc", b"proc", 0, None), "mount proc")
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
