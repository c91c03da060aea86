"""Create new namespaces and run a command in them, with a correct PID 1.

Three processes take part:

- nsctl itself (the *parent*) never changes namespace.  It writes the ID maps,
  adds the veth pair, pins the new namespaces, and waits.
- the *child* unshare()s the new namespaces, then sets them up from inside
  (private mounts, hostname, loopback and veth addresses, time offsets).
- with --pid (or --time, whose namespace, like a PID namespace, applies to
  children) the child forks the *init*: PID 1 of the new PID namespace, which
  mounts a fresh /proc and sysfs (with --mount), forks the command, reaps every
  zombie, and exits with the command's status (128+N if it died of signal N).

Each passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to the next,
and each dies with the one before it (see :mod:`.relay`): stopping nsctl stops the
command and nsctl exits with its status; killing nsctl kills them all, and with
them the namespaces (and so the veth pair) that nothing pinned.  A signal that
comes before the command starts gives the run up instead.

They talk over a socket pair, one JSON message per step; any step that fails
reports which step and why, and the parent then undoes everything done so far
(pins, the veth pair, the child and so its namespaces) before the error reaches
the user.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket

from ..kernel import nsfs
from ..kernel.errors import NsctlError
from ..kernel.mounts import (
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
    mount,
)
from .relay import Relay, Stopped, exit_code

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar, TypeVarTuple

    Args = TypeVarTuple("Args")
    Result = TypeVar("Result")


class RunError(NsctlError):
    """A step of `nsctl run` failed; everything done before it was undone."""


class RunSpec:
    """What to create.  Validated by :meth:`check` before anything is changed.

    As unshare(1) has it: a new user namespace alone leaves you unmapped (the overflow
    uid and gid), ``map_root`` maps your uid and gid to 0, ``map_user``/``map_group``
    map one each; ``mount`` makes a mount namespace with private mounts and
    ``mount_proc`` (a mount point) mounts a fresh proc there (and, with ``net``, a
    fresh sysfs on /sys).  ``pins``: type -> path to pin that new namespace at
    (unshare's ``--net=FILE``); ``pin_dir``: pin every new one as DIR/TYPE.
    ``kill_signal``: what the chain of processes gets when the one before it dies.
    """

    __slots__ = ("user", "map_root", "map_user", "map_group", "pid", "net", "mount", "uts",
                 "ipc", "cgroup", "time", "veth", "pin_dir", "argv", "mount_proc", "pins",
                 "setgroups", "kill_signal", "propagation")

    def __init__(self, argv: list[str], user: bool = False, map_root: bool = False,
                 map_user: int | None = None, map_group: int | None = None, pid: bool = False,
                 net: bool = False, mount: bool = False, uts: str | None = None,
                 ipc: bool = False, cgroup: bool = False, time: dict[str, float] | None = None,
                 veth: str | None = None, pin_dir: str | None = None,
                 mount_proc: str | None = None, pins: dict[str, str] | None = None,
                 setgroups: str | None = None, kill_signal: int = 9,
                 propagation: str = "private") -> None:
        self.argv = argv
        self.user, self.map_root = user, map_root
        self.map_user, self.map_group = map_user, map_group
        self.pid, self.net, self.mount, self.uts = pid, net, mount, uts
        self.ipc, self.cgroup, self.time, self.veth, self.pin_dir = ipc, cgroup, time, veth, pin_dir
        self.mount_proc, self.pins, self.setgroups = mount_proc, dict(pins or {}), setgroups
        self.kill_signal = kill_signal
        self.propagation = propagation   # of every mount in a new mount namespace

    def types(self) -> list[str]:
        """The namespace types to create, in CLONE flag terms."""
        wanted = {"user": self.user, "pid": self.pid, "net": self.net, "mnt": self.mount,
                  "uts": self.uts is not None, "ipc": self.ipc, "cgroup": self.cgroup,
                  "time": self.time is not None}
        return [t for t, on in wanted.items() if on]

    def pin_paths(self) -> list[tuple[str, str]]:
        """(type, absolute path) of every pin to make."""
        out = [(t, os.path.abspath(path)) for t, path in self.pins.items()]
        if self.pin_dir is not None:
            out += [(t, os.path.join(os.path.abspath(self.pin_dir), t)) for t in self.types()]
        return out

    def check(self) -> None:
        """Flags that don't go together, and privilege, before anything changes."""
        if not self.argv or not self.argv[0]:
            raise RunError("no command given (nsctl run [options] [--] CMD ...)")
        if (self.map_user is not None or self.map_group is not None or self.map_root) \
                and not self.user:
            raise RunError("--map-root, --map-user and --map-group need --user")
        if self.map_root and (self.map_user is not None or self.map_group is not None):
            raise RunError("--map-root and --map-user/--map-group don't go together")
        if self.user and self.mount_proc is not None and not self.pid:
            raise RunError("--user with --mount-proc needs --pid (a fresh /proc can only be "
                           "mounted for a PID namespace the new user namespace owns)")
        if self.veth is not None and not self.net:
            raise RunError("--veth needs --net")
        if not self.types():
            raise RunError("no namespace to create: give at least one of --user, --pid, --net, "
                           "--mount, --uts, --ipc, --cgroup, --time")
        if os.geteuid() != 0 and not self.user:
            raise RunError("not enough privilege: creating these namespaces needs root, or "
                           "--user (a new user namespace) for an ordinary user")
        if self.veth is not None:
            veth_addresses(self.veth)
        if self.pin_dir is not None:
            cause = _pin_dir_cause(self.pin_dir)
            if cause:
                raise RunError(f"--pin {self.pin_dir}: {cause}")
        for ns_type, path in self.pin_paths():
            if ns_type in self.pins:
                cause = _pin_dir_cause(os.path.dirname(path))
                if cause:
                    raise RunError(f"pin {ns_type} at {self.pins[ns_type]}: {cause}")
            if os.path.lexists(path):
                raise RunError(f"--pin: {path} already exists")


def _pin_dir_cause(directory: str) -> str:
    from .pin import check_pin_dir

    return check_pin_dir(os.path.abspath(directory))


def veth_addresses(spec: str) -> tuple[str, str, int]:
    """``ADDR/PREFIX``: the caller's end gets ADDR, the new namespace's end the next one."""
    try:
        iface = ipaddress.ip_interface(spec)
    except ValueError:
        raise RunError(f"--veth {spec!r}: not an address/prefix such as 10.200.0.1/30") from None
    inner = iface.ip + 1
    if inner not in iface.network or inner == iface.network.broadcast_address:
        raise RunError(f"--veth {spec}: no room for a second address in {iface.network}")
    return str(iface.ip), str(inner), iface.network.prefixlen


DEFAULT_VETH = "10.200.0.1/30"

# unshare's --propagation: what a new mount namespace's mounts become (default private).
PROPAGATION = {"private": MS_PRIVATE, "slave": MS_SLAVE, "shared": MS_SHARED}


# --- messages between the processes ------------------------------------------------------

def _send(sock: socket.socket, **msg: object) -> None:
    sock.sendall(json.dumps(msg).encode() + b"\n")


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def get(self) -> dict | None:
        """The next message; None once the other side has closed (exec'd or exited)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


# --- the parent ----------------------------------------------------------------------------

def run(spec: RunSpec) -> int:
    """Create the namespaces, run the command, return its exit status."""
    spec.check()
    relay = Relay(stop_early=True, death_signal=spec.kill_signal).install()
    try:
        return _run(spec, relay)
    except Stopped as stop:   # before the command started; everything is undone
        if relay.child:       # forked just before: it goes when it sees the socket closed
            relay.wait()
        return stop.exit_status
    finally:
        relay.close()


def _run(spec: RunSpec, relay: Relay) -> int:
    undo: list = []
    parent_sock, child_sock = socket.socketpair()
    try:
        parent_sock.set_inheritable(False)
        child_sock.set_inheritable(False)
        pid = relay.fork(execs=not (spec.pid or spec.time is not None), start=False)
        if pid == 0:
            parent_sock.close()
            _child(spec, child_sock, relay)  # never returns
        reader = _Reader(parent_sock)
        try:
            child_sock.close()
            _expect(reader, "unshared")
            if spec.user:
                _step("write the ID maps", _write_maps, spec, pid)
            veth = None
            if spec.veth is not None:
                veth = _step("add the veth pair", _add_veth, spec.veth, pid, undo)
            _send(parent_sock, go=True, veth=veth)
            msg = _expect(reader, "ready")
            if spec.pin_paths():
                _step("pin the new namespaces", _pin_all, spec.pin_paths(), msg["holder"],
                      undo)
            if relay.kept:  # a Stopped that some library code swallowed on the way
                raise Stopped(relay.kept[0])
            relay.start()   # from here a signal is passed on, no longer a reason to give up
            try:
                _send(parent_sock, run=True)
            except OSError:
                pass        # the child is gone (a signal passed on just now): its status says
        except BaseException:
            relay.stop_early = False   # no Stopped in the middle of undoing
            try:
                parent_sock.shutdown(socket.SHUT_WR)  # the child stops (and its init) itself
            except OSError:
                pass
            relay.wait()
            _undo(undo)
            raise
        status = relay.wait()
        last = reader.get()
        if last is not None and "error" in last:  # the init or the command could not start
            _undo(undo)
            error = RunError(f"{last['step']}: {last['error']}")
            error.exit_status = exit_code(status) or 1  # 127: the command could not be run
            raise error
        if not spec.pin_paths():
            _undo(undo)
        return exit_code(status)
    finally:
        parent_sock.close()
        child_sock.close()


def _expect(reader: _Reader, step: str) -> dict:
    msg = reader.get()
    if msg is None:
        raise RunError(f"the process creating the namespaces exited before: {step}")
    if "error" in msg:
        raise RunError(f"{msg['step']}: {msg['error']}")
    if msg.get("step") != step:
        raise RunError(f"unexpected message {msg!r} while waiting for {step}")
    return msg


def _step(what: str, func: Callable[[*Args], Result], *args: *Args) -> Result:
    try:
        return func(*args)
    except RunError:
        raise
    except Exception as exc:  # OSError, NsctlError, pyroute2's NetlinkError and friends
        raise RunError(f"{what}: {_cause(exc)}") from None


def _cause(exc: Exception) -> str:
    """The cause of a failed step in words: the errno's text for an OSError or a
    pyroute2 NetlinkError (whose str() is a ``(code, text)`` tuple), else the message."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return getattr(exc, "strerror", None) or str(exc)


def _write_maps(spec: RunSpec, pid: int) -> None:
    """The maps asked for, as unshare writes them: none with --user alone (the command
    runs as the overflow uid and gid), both to 0 with --map-root, each on its own with
    --map-user and --map-group.  setgroups is denied before a gid map where the kernel
    wants it (no privilege over our groups) or where asked (--map-root denies it, as
    unshare -r does)."""
    uid, gid = os.geteuid(), os.getegid()
    inner_uid = 0 if spec.map_root else spec.map_user
    inner_gid = 0 if spec.map_root else spec.map_group
    deny = spec.setgroups == "deny" or (spec.setgroups is None and (
        spec.map_root or (inner_gid is not None and uid != 0)))
    if deny:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    if inner_uid is not None:
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"{inner_uid} {uid} 1\n")
    if inner_gid is not None:
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"{inner_gid} {gid} 1\n")


def _add_veth(spec: str, pid: int, undo: list) -> dict:
    from pyroute2 import IPRoute

    outer, inner, prefix = veth_addresses(spec)
    host_if = f"nsctl{pid}"[:15]
    with IPRoute() as ipr:
        _netlink(f"add veth {host_if}", ipr.link, "add", ifname=host_if, kind="veth",
                 peer={"ifname": "eth0", "net_ns_pid": pid})
        undo.append(("veth", host_if))
        index = ipr.link_lookup(ifname=host_if)[0]
        _netlink(f"add address {outer}/{prefix} to {host_if}", ipr.addr, "add", index=index,
                 address=outer, prefixlen=prefix)
        _netlink(f"set {host_if} up", ipr.link, "set", index=index, state="up")
    return {"ifname": "eth0", "address": inner, "prefixlen": prefix, "peer": host_if,
            "peer_address": outer}


def _pin_all(paths: list[tuple[str, str]], holder: int, undo: list) -> None:
    from .pin import pin_fd

    for t, path in paths:
        fd = nsfs.open_ns(f"/proc/{holder}/ns/{t}")
        try:
            undo.append(("pin", pin_fd(fd, path)))
        finally:
            os.close(fd)


def _undo(undo: list) -> None:
    """Undo in reverse order; keep going past failures (report nothing: best effort)."""
    for kind, what in reversed(undo):
        try:
            if kind == "pin":
                from .pin import unpin

                unpin(what)
            elif kind == "veth":
                from pyroute2 import IPRoute

                with IPRoute() as ipr:
                    found = ipr.link_lookup(ifname=what)
                    if found:
                        ipr.link("del", index=found[0])
        except Exception:
            pass
    undo.clear()


# --- the child: unshare and set up from inside ------------------------------------------

def _child(spec: RunSpec, sock: socket.socket, relay: Relay) -> None:
    """Never returns: exits with the command's status."""
    step = "unshare"
    try:
        from ..kernel.libc import unshare

        flags = 0
        for t in spec.types():
            flags |= nsfs.CLONE_FLAGS[t]
        try:
            unshare(flags)
        except OSError as exc:
            _fail(sock, "unshare " + ",".join(spec.types()), exc.strerror or str(exc))
        relay.arm()   # a new user namespace may have cleared it
        _send(sock, step="unshared")
        reader = _Reader(sock)
        msg = reader.get()
        if not msg or not msg.get("go"):
            os._exit(1)
        if spec.mount and spec.propagation != "unchanged":
            step = f"make the mounts {spec.propagation}"
            mount(None, "/", None, MS_REC | PROPAGATION[spec.propagation])
        if spec.uts:   # (--uts alone: a new namespace, the hostname as it was)
            step = "set the hostname"
            socket.sethostname(spec.uts)
        if spec.net:
            step = "bring up the loopback and veth"
            _net_up(msg.get("veth"))
        if spec.time is not None:
            step = "write the time offsets"
            _write_time_offsets(spec.time)
        if spec.pid or spec.time is not None:
            step = "start the init"
            gate_r, gate_w = os.pipe()
            init = relay.fork(execs=not spec.pid)
            if init == 0:
                os.close(gate_w)
                if os.read(gate_r, 1) != b"x":  # the parent gave up: run nothing
                    os._exit(1)
                os.close(gate_r)
                _init(spec, sock, relay)
            os.close(gate_r)
            _send(sock, step="ready", holder=init)
            if not (reader.get() or {}).get("run"):
                os.close(gate_w)
                relay.wait()
                os._exit(1)
            os.write(gate_w, b"x")
            os.close(gate_w)
            os._exit(exit_code(relay.wait()))
        _send(sock, step="ready", holder=os.getpid())
        if not (reader.get() or {}).get("run"):
            os._exit(1)
        if spec.mount_proc is not None:
            step = "mount /proc and /sys"
            _fresh_mounts(spec)
        _exec(spec, sock, relay)
    except SystemExit:
        raise
    except BaseException as exc:
        _fail(sock, step, getattr(exc, "strerror", None) or str(exc))


def _fail(sock: socket.socket, step: str, error: str) -> None:
    try:
        _send(sock, step=step, error=error)
    finally:
        os._exit(1)


def _net_up(veth: dict | None) -> None:
    from ..kernel.sockets import link_up

    link_up("lo")   # an ioctl: importing pyroute2 for it would cost more than the rest
    if veth:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=veth["ifname"])[0]
            _netlink(f"add address {veth['address']}/{veth['prefixlen']} to "
                     f"{veth['ifname']}", ipr.addr, "add", index=index,
                     address=veth["address"], prefixlen=veth["prefixlen"])
            _netlink(f"set {veth['ifname']} up", ipr.link, "set", index=index, state="up")


def _netlink(what: str, call: Callable[..., object], *args: object, **kwargs: object) -> None:
    """A pyroute2 request; its refusal (NetlinkError, an OSError-like (code, text)
    pair) as a RunError naming ``what`` and the cause in words."""
    try:
        call(*args, **kwargs)
    except Exception as exc:
        raise RunError(f"{what}: {_cause(exc)}") from None


def parse_time_offsets(text: str) -> dict[str, float]:
    """``monotonic=SECONDS,boottime=SECONDS`` (either may be left out)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        clock, sep, value = part.partition("=")
        clock = clock.strip()
        if not sep or clock not in ("monotonic", "boottime"):
            raise RunError(f"--time {text!r}: want monotonic=SECONDS,boottime=SECONDS")
        try:
            out[clock] = float(value)
        except ValueError:
            raise RunError(f"--time {text!r}: {value!r} is not a number of seconds") from None
    return out


def _write_time_offsets(offsets: dict[str, float]) -> None:
    lines = []
    for clock, seconds in offsets.items():
        whole = int(seconds // 1)
        nanos = int(round((seconds - whole) * 1e9))
        lines.append(f"{clock} {whole} {nanos}\n")
    with open("/proc/self/timens_offsets", "w") as f:
        f.write("".join(lines))


def _fresh_mounts(spec: RunSpec) -> None:
    """A fresh proc at the --mount-proc point (this PID namespace's processes) and, with
    --net, sysfs on /sys (this network namespace's devices: sysfs shows the netns of
    whoever mounts it: tagged sysfs)."""
    mount("proc", spec.mount_proc or "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if spec.net:
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _exec(spec: RunSpec, sock: socket.socket, relay: Relay) -> None:
    relay.exec_ready()
    try:
        os.execvp(spec.argv[0], spec.argv)
    except OSError as exc:
        _send(sock, step=f"run {spec.argv[0]}", error=exc.strerror or str(exc))
        # As the shells say it: 127 not found, 126 found but not runnable.
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def _init(spec: RunSpec, sock: socket.socket, relay: Relay) -> None:
    """PID 1 of the new PID namespace (or the time namespace's first process)."""
    step = "mount /proc and /sys"
    try:
        if spec.mount_proc is not None:
            _fresh_mounts(spec)
        if not spec.pid:
            _exec(spec, sock, relay)
        step = "start the command"
        # The relay's handlers are in place since the fork: the kernel hands a PID 1
        # only the signals it handles, and signals that came before the command are kept.
        if relay.fork(execs=True) == 0:
            _exec(spec, sock, relay)
        sock.close()
        os._exit(exit_code(relay.wait(reap_others=True)))
    except BaseException as exc:
        _fail(sock, step, getattr(exc, "strerror", None) or str(exc))
