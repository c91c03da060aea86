"""Who holds root's powers in ``nsctl serve``, and how its helpers are started.

The server process parses requests from anyone who can reach its sockets, so
it holds no capability once it serves.  The work that needs them (discovery,
views, pins) runs in helper processes (:mod:`nsctl.serve.child`).  Before the
server drops its capabilities it starts one privileged **launcher**; from
then on the launcher starts every helper on the server's request (the first
refresher, a replacement for a stuck one, a worker) and hands the server
their stdin, stdout and an exit-status pipe over a unix socket (SCM_RIGHTS).
The launcher accepts only the helper roles and their known options, so a
compromised server can ask it for nothing else.

Every process nsctl starts here runs nsctl's own code, whatever the caller's
directory or environment: an isolated interpreter (``-I``: no current
directory or script directory on ``sys.path``, no ``PYTHON*`` variables, no
user site), the nsctl package found where the running nsctl was loaded from,
working directory ``/``, an environment built from scratch (with only the
``NSCTL_*`` variables that say where the container engines are), and no inherited
file descriptor but its pipes.
"""
from __future__ import annotations

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

from ..kernel import caps
from ..kernel.errors import NsctlError

# The whole environment of every process nsctl starts: nothing comes from the caller
# but where the container engines are (nsctl.discovery.engines.settings).
HELPER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def helper_env() -> dict[str, str]:
    from ..discovery.engines import settings

    return {**HELPER_ENV, **settings()}

# Run by ``python -I -c``: argv[1] is the directory that holds the nsctl package.
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from nsctl.serve.child import main; sys.exit(main(sys.argv[2:]))")

_STATUS = struct.Struct("i")
_MAX_MESSAGE = 4096


def package_root() -> str:
    """The directory holding the running nsctl package (site-packages, or a checkout's
    src/ for an editable install)."""
    import nsctl

    return os.path.dirname(os.path.dirname(os.path.abspath(nsctl.__file__)))


def helper_argv(role: str, args: list[str]) -> list[str]:
    if not sys.executable:
        raise NsctlError("starting a helper process: Python cannot tell its own executable")
    return [sys.executable, "-I", "-c", _BOOT, package_root(), role, *args]


def start_isolated(role: str, args: list[str], **kw: object) -> subprocess.Popen:
    """``nsctl.serve.child ROLE ARGS`` in a fresh isolated interpreter, in its own session
    (a Ctrl-C at the server's terminal is the server's to handle)."""
    return subprocess.Popen(helper_argv(role, args), cwd="/", env=helper_env(), close_fds=True,
                            start_new_session=True, **kw)  # type: ignore[call-overload]


# --- the helpers, as the server sees them --------------------------------------------------

class LocalHelper:
    """A helper this process started itself (no launcher: a library caller, or tests)."""

    def __init__(self, role: str, args: list[str]) -> None:
        self.popen = start_isolated(role, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pid = self.popen.pid
        self.stdin, self.stdout = self.popen.stdin, self.popen.stdout

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def signal_group(self, sig: int) -> None:
        """Signal its process group (it and what it forked), unless it was reaped."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass


class RemoteHelper:
    """A helper the launcher started: its pipes came over the launcher's socket, its exit
    status comes on a pipe of its own when the launcher reaps it."""

    def __init__(self, launcher: Launcher, pid: int, stdin: int, stdout: int,
                 status: int) -> None:
        self._status = status
        self.launcher = launcher
        self.pid = pid
        self.stdin = os.fdopen(stdin, "wb")
        self.stdout = os.fdopen(stdout, "rb")
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        return self._collect(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._collect(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"helper {self.pid}", timeout or 0)
        return code

    def _collect(self, timeout: float | None) -> int | None:
        """The exit status once the launcher sent it, waiting up to ``timeout``.

        The wait holds no lock: a thread waiting for a helper that does not end must
        not keep another from polling it or having it killed.  Once the launcher
        wrote the status it closes its end, so the pipe stays readable (EOF) for
        every waiter; the first to take the lock reads the status, and the pipe is
        closed only when this object goes (an fd number closed under a waiter's
        select could be reused by another file)."""
        if self.returncode is None and not select.select([self._status], [], [], timeout)[0]:
            return None
        with self._lock:
            if self.returncode is None:
                data = os.read(self._status, _STATUS.size)
                # An empty read: the launcher went away without reporting; treat as killed.
                self.returncode = _STATUS.unpack(data)[0] if len(data) == _STATUS.size \
                    else -signal.SIGKILL
            return self.returncode

    def signal_group(self, sig: int) -> None:
        """The launcher signals the group: it alone knows the helper is not reaped yet."""
        if self.poll() is None:
            self.launcher.signal_group(self.pid, sig)

    def __del__(self) -> None:
        try:
            os.close(self._status)
        except OSError:
            pass


class Launcher:
    """The server's end of the launcher: start it while privileged, then ask it for
    helpers.  Requests are one at a time; each gets one answer."""

    def __init__(self, timeout: float = 30.0) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.popen = start_isolated("launcher", [], stdin=theirs.fileno(),
                                        stdout=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise NsctlError(f"starting the helper launcher: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        ours.settimeout(timeout)
        self.sock = ours
        self._lock = threading.Lock()
        self._sent = 0        # requests sent: each answer names the one it answers

    def pids(self) -> set[int]:
        return {self.popen.pid}

    def _ask(self, request: dict) -> tuple[dict, list[int]]:
        """Send ``request``; its answer and the fds that came with it.  An answer to an
        earlier request that timed out is dropped (its fds closed: a helper started
        for it sees its stdin end and exits), so answers never pair with the wrong
        request."""
        with self._lock:
            self._sent += 1
            try:
                self.sock.send(json.dumps({**request, "seq": self._sent}).encode())
                while True:
                    data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX_MESSAGE, 3)
                    if not data:
                        raise NsctlError("the helper launcher exited")
                    answer = json.loads(data)
                    if answer.get("seq") == self._sent:
                        break
                    for fd in fds:
                        os.close(fd)
            except OSError as exc:
                raise NsctlError(f"asking the helper launcher: {exc.strerror or exc}") from None
        if "error" in answer:
            for fd in fds:
                os.close(fd)
            raise NsctlError(f"the helper launcher: {answer['error']}")
        return answer, fds

    def start(self, role: str, args: list[str]) -> RemoteHelper:
        answer, fds = self._ask({"op": "start", "role": role, "args": args})
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise NsctlError("the helper launcher sent no pipes")
        return RemoteHelper(self, int(answer["pid"]), *fds)

    def signal_group(self, pid: int, sig: int) -> None:
        self._ask({"op": "signal", "pid": pid, "signal": int(sig)})

    def close(self) -> None:
        """Close our end: the launcher exits when it reads EOF."""
        self.sock.close()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class DirectSpawner:
    """Helpers started by this process itself (where nothing drops privileges)."""

    def start(self, role: str, args: list[str]) -> LocalHelper:
        return LocalHelper(role, args)

    def pids(self) -> set[int]:
        return set()


# --- the server gives up its capabilities ------------------------------------------------

def drop_privileges() -> None:
    """Give up every capability of this process for good (the server, once its launcher
    runs): ambient, bounding, effective, permitted and inheritable sets; securebits
    locked so that uid 0 gains nothing at exec or setuid; no_new_privs, so no set-user-ID
    program or file capability grants any either.  Where a step is refused (no
    CAP_SETPCAP, e.g. a container without it) the others still hold: the sets are empty
    and no_new_privs keeps exec from filling them.  Must run before the process starts
    a thread, as the kernel keeps these per thread."""
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    if threads != 1:
        raise NsctlError("dropping capabilities: the server already runs threads; refused "
                         "to serve with them")
    caps.clear_ambient()
    caps.drop_bounding()
    caps.set_securebits(caps.SECURE_NOROOT_LOCKED)
    caps.set_no_new_privs()
    try:
        caps.clear()
        left = caps.get()
    except OSError as exc:
        raise NsctlError(f"dropping capabilities: {exc.strerror}") from None
    if not left.empty():
        raise NsctlError("dropping capabilities: the kernel left some; refused to serve")


# --- the launcher's side ----------------------------------------------------------------

_FLOAT_OPTIONS = {"--interval", "--coverage", "--min-gap"}
_INT_OPTIONS = {"--exclude-tree"}
_FLAGS = {"--threads", "--no-cnproc"}


def check_args(role: str, args: object) -> list[str]:
    """The roles the server may ask for and their options, nothing else."""
    if role not in ("refresher", "worker") or not isinstance(args, list) or \
            not all(isinstance(a, str) for a in args):
        raise ValueError(f"no such helper: {role!r}")
    if role == "worker":
        if args:
            raise ValueError("the worker takes no options")
        return args
    i = 0
    while i < len(args):
        if args[i] in _FLAGS:
            i += 1
        elif args[i] in _FLOAT_OPTIONS and i + 1 < len(args):
            float(args[i + 1])
            i += 2
        elif args[i] in _INT_OPTIONS and i + 1 < len(args):
            if int(args[i + 1]) < 1:
                raise ValueError(f"{args[i]} takes a PID")
            i += 2
        else:
            raise ValueError(f"the refresher takes no option {args[i]!r}")
    return args


class _Child:
    def __init__(self, popen: subprocess.Popen, status: int, pidfd: int | None) -> None:
        self.popen, self.status, self.pidfd = popen, status, pidfd


def _start(role: str, args: list[str]) -> tuple[_Child, list[int]]:
    """A helper; (what we keep of it, the fds that go to the server: its stdin, its
    stdout, the exit-status pipe)."""
    fds = [*os.pipe2(os.O_CLOEXEC), *os.pipe2(os.O_CLOEXEC), *os.pipe2(os.O_CLOEXEC)]
    stdin_r, stdin_w, stdout_r, stdout_w, status_r, status_w = fds
    try:
        popen = start_isolated(role, args, stdin=stdin_r, stdout=stdout_w)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    os.close(stdin_r)
    os.close(stdout_w)
    try:
        pidfd: int | None = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):   # no pidfds here: the loop polls instead
        pidfd = None
    return _Child(popen, status_w, pidfd), [stdin_w, stdout_r, status_r]


def launcher(argv: list[str]) -> int:
    """Serve the server's requests on fd 0 (a SOCK_SEQPACKET socket) until it closes."""
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(devnull, 0)
    os.close(devnull)
    # Go with the server if it dies before it could close its end.
    server = os.getppid()
    caps.set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != server or server == 1:
        return 0
    children: dict[int, _Child] = {}
    while True:
        pidfds = [c.pidfd for c in children.values() if c.pidfd is not None]
        polling = any(c.pidfd is None for c in children.values())
        watched: list[socket.socket | int] = [sock, *pidfds]
        ready, _, _ = select.select(watched, [], [], 0.5 if polling else None)
        for pid, child in list(children.items()):
            if (child.pidfd in ready or child.pidfd is None) and child.popen.poll() is not None:
                _reaped(children.pop(pid))
        if sock in ready:
            data = sock.recv(_MAX_MESSAGE)
            if not data:
                _end_all(children)
                return 0
            _answer(sock, data, children)


def _end_all(children: dict[int, _Child], grace: float = 1.5) -> None:
    """The server went: end the helpers it left running (a stop it began in the
    background), SIGTERM to their groups first so that they reap what they forked,
    SIGKILL after ``grace`` seconds, and reap them, so none is left to whoever reaps
    orphans.  Within the time the server gives the launcher to exit."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + grace
        for pid, child in children.items():
            if child.popen.poll() is None:
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    pass
        while any(c.popen.poll() is None for c in children.values()) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
    for child in children.values():
        _reaped(child)
    children.clear()


def _reaped(child: _Child) -> None:
    code = child.popen.returncode
    try:
        os.write(child.status, _STATUS.pack(code if code is not None else -signal.SIGKILL))
    except OSError:          # the server closed its end: nobody waits for it
        pass
    os.close(child.status)
    if child.pidfd is not None:
        os.close(child.pidfd)


def _answer(sock: socket.socket, data: bytes, children: dict[int, _Child]) -> None:
    fds: list[int] = []
    seq = None
    try:
        request = json.loads(data)
        seq = request.get("seq")
        op = request.get("op")
        if op == "start":
            child, fds = _start(request.get("role"), check_args(request.get("role"),
                                                                 request.get("args")))
            children[child.popen.pid] = child
            answer: dict = {"pid": child.popen.pid}
        elif op == "signal":
            pid, sig = int(request["pid"]), signal.Signals(int(request["signal"]))
            known = children.get(pid)
            # Only a helper of ours that is not reaped yet: its pid (and group) is still it.
            if known is not None and known.popen.returncode is None:
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    pass
            answer = {"ok": True}
        else:
            raise ValueError(f"no such request: {op!r}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        answer = {"error": f"refused: {exc}"}
    except OSError as exc:
        answer = {"error": f"starting a helper: {exc.strerror or exc}"}
    try:
        socket.send_fds(sock, [json.dumps({**answer, "seq": seq}).encode()], fds)
    finally:
        for fd in fds:
            os.close(fd)
