"""Run a command inside existing namespaces, like nsenter(1) but by any SPEC.

nsctl itself never changes namespace: a forked child does the setns() calls
and execs the command (forking once more after entering a PID namespace, whose
effect is on children only).  The exit status of the command is passed
through (128+N if it died of signal N).  SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 sent to nsctl are passed on to the command, and the command
dies with nsctl (see :mod:`.relay`).  Errors in the child come back over a
close-on-exec pipe, so the user sees one line saying which step failed.
"""
from __future__ import annotations

import errno
import os
import signal

from ..kernel import nsfs
from ..kernel.errors import NsctlError
from .relay import Relay, exit_code

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from ..model import Namespace, Snapshot
    from ..query.direct import Found

    # A namespace as a scan found it, or as opened directly.
    Target = Namespace | Found

# Order of setns() calls for the types other than user: mnt last, so that paths
# (and the root we may chroot to) are looked up where the command will run.
ORDER = ("cgroup", "ipc", "uts", "net", "pid", "time", "mnt")


class EnterError(NsctlError):
    """Entering a namespace or starting the command failed."""


def plan(targets: list[Target], as_root: bool) -> list[Target]:
    """The setns order.  Root enters its user namespace target last (its privilege in
    the current user namespace opens the others); anyone else enters it first, to
    gain the capabilities the owning user namespace gives."""
    by_type: dict[str, Target] = {}
    for ns in targets:
        if ns.type in by_type and by_type[ns.type].ino != ns.ino:
            raise EnterError(f"two {ns.type} namespaces given: {by_type[ns.type].ino} and "
                             f"{ns.ino}")
        by_type[ns.type] = ns
    ordered = [by_type[t] for t in ORDER if t in by_type]
    if "user" in by_type:
        ordered = ordered + [by_type["user"]] if as_root else [by_type["user"]] + ordered
    return ordered


class How:
    """How the command runs once the namespaces are entered (nsenter's -r, -w, -S, -G,
    --preserve-credentials and --keep-caps).  ``root_fd``/``cwd_fd``: directories to
    chroot to and start in; ``uid``/``gid``: credentials to take (in a user namespace
    entered, 0 unless ``preserve``); ``keep_caps``: capabilities survive the exec."""

    __slots__ = ("root_fd", "cwd_fd", "uid", "gid", "preserve", "keep_caps")

    def __init__(self, root_fd: int | None = None, cwd_fd: int | None = None,
                 uid: int | None = None, gid: int | None = None, preserve: bool = False,
                 keep_caps: bool = False) -> None:
        self.root_fd, self.cwd_fd = root_fd, cwd_fd
        self.uid, self.gid, self.preserve, self.keep_caps = uid, gid, preserve, keep_caps


def own_ino(ns_type: str) -> int | None:
    """The inode of our own namespace of ``ns_type`` (None if we cannot read it)."""
    try:
        return os.stat(f"/proc/self/ns/{ns_type}").st_ino
    except OSError:
        return None


def open_root_and_cwd(pid: int) -> tuple[int, int]:
    """Directory fds on the root and working directory of process ``pid`` (nsenter -a)."""
    fds: list[int] = []
    try:
        for what in ("root", "cwd"):
            fds.append(os.open(f"/proc/{pid}/{what}", os.O_RDONLY | os.O_DIRECTORY
                               | os.O_CLOEXEC))
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        raise EnterError(f"root and cwd of {pid}: {exc.strerror}") from None
    return fds[0], fds[1]


def enter(targets: list[Namespace], snap: Snapshot, argv: list[str],
          root_of: int | None = None) -> int:
    """Run ``argv`` in ``targets`` of a scan; returns its exit status.  ``root_of``: also
    take that process's root directory and working directory (as nsenter -a does)."""
    from ..query.handles import open_namespace

    opened: list[tuple[Target, int]] = []
    how = How()
    try:
        for ns in targets:
            if all(o.ino != ns.ino for o, _fd in opened):
                opened.append((ns, open_namespace(ns, snap)))
        if root_of is not None:
            how.root_fd, how.cwd_fd = open_root_and_cwd(root_of)
        return enter_opened(opened, argv, how)
    finally:
        for _ns, fd in opened:
            os.close(fd)
        for dir_fd in (how.root_fd, how.cwd_fd):
            if dir_fd is not None:
                os.close(dir_fd)


def enter_opened(opened: list[tuple[Target, int]], argv: list[str], how: How) -> int:
    """Run ``argv`` in the namespaces open at the fds of ``opened`` (the caller's to
    close); returns its exit status."""
    from ..kernel.libc import setns

    if not argv or not argv[0]:
        raise EnterError("no command to run: an empty command name")
    fd_of = {ns.ino: fd for ns, fd in opened}
    # Entering a namespace we are already in changes nothing (and setns would still
    # want privilege for it): leave those out, as nsenter does.
    ordered = [(ns, fd_of[ns.ino]) for ns in plan([ns for ns, _fd in opened],
                                                   os.geteuid() == 0)
               if own_ino(ns.type) != ns.ino]
    if any(ns.type == "user" for ns, _fd in ordered) and not how.preserve:
        how = How(how.root_fd, how.cwd_fd, 0 if how.uid is None else how.uid,
                  0 if how.gid is None else how.gid, how.preserve, how.keep_caps)
    relay = Relay().install()
    try:
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        pid = relay.fork(execs=all(ns.type != "pid" for ns, _fd in ordered))
        if pid == 0:
            os.close(err_r)
            _child(ordered, how, argv, err_w, setns, relay)
        os.close(err_w)
        status = relay.wait()
    finally:
        relay.close()
    with os.fdopen(err_r, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    if message:
        error = EnterError(message)
        error.exit_status = exit_code(status) or 1  # 126/127: the command could not be run
        raise error
    return exit_code(status)


def _child(fds, how: How, argv, err_w, setns, relay: Relay) -> None:
    """In the forked child: enter, maybe fork again, exec.  Never returns."""
    def fail(message: str, code: int = 1) -> None:
        os.write(err_w, message.encode())
        os._exit(code)

    try:
        entered = {}
        for ns, fd in fds:
            try:
                setns(fd, nsfs.CLONE_FLAGS[ns.type])
            except OSError as exc:
                fail(f"setns into {ns.label}: {exc.strerror}")
            entered[ns.type] = ns
        relay.arm()   # entering a user namespace owned by another user clears it
        if how.root_fd is not None:
            os.fchdir(how.root_fd)
            os.chroot(".")
            if how.cwd_fd is None:
                os.chdir("/")
        if how.cwd_fd is not None:
            os.fchdir(how.cwd_fd)
        elif how.root_fd is None and "mnt" in entered:
            os.chdir("/")
        _credentials(how, entered.get("user"), fail)
        if "pid" in entered:
            # setns(CLONE_NEWPID) places our children, not us: fork the command.
            try:
                child = relay.fork(execs=True)
            except OSError as exc:
                if exc.errno == errno.ENOMEM:   # alloc_pid: the namespace takes no new process
                    fail(f"PID namespace {entered['pid'].label} has no init any more (it "
                         "exited): nothing can enter it")
                raise
            if child:
                # Keep err_w: the command's exec closes its copy; ours goes at our exit,
                # after any message the command's side wrote.
                code = os.waitstatus_to_exitcode(relay.wait())
                if code < 0:  # die the same way, so the status passes through
                    signal.signal(-code, signal.SIG_DFL)
                    os.kill(os.getpid(), -code)
                os._exit(code if code >= 0 else 128 - code)
        relay.exec_ready()
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            # As the shells say it: 127 for a command not found, 126 for one found but
            # not runnable (no permission, not an executable, a directory).
            fail(f"{argv[0]}: {exc.strerror}", 127 if exc.errno == errno.ENOENT else 126)
    except BaseException as exc:  # never return into nsctl's own code
        fail(f"enter: {getattr(exc, 'strerror', None) or exc}")


def _credentials(how: How, userns: Target | None, fail) -> None:
    """Take the uid and gid asked for (nsenter -S, -G; 0 in a user namespace entered),
    with no supplementary groups; keep the capabilities through exec if asked."""
    where = f" in {userns.label}" if userns is not None else ""
    if how.gid is not None:
        try:
            os.setgroups([])
        except OSError:
            pass   # a user namespace that denies setgroups: the gid is what counts
        _become("gid", how.gid, os.setresgid, where, fail)
    if how.uid is not None:
        _become("uid", how.uid, os.setresuid, where, fail)
    if how.keep_caps and userns is not None:
        from ..kernel import caps

        if not caps.keep_all_ambient():
            fail(f"--keep-caps{where}: the kernel refused to make the capabilities ambient")


def _become(kind: str, value: int, setres, where: str, fail) -> None:
    """setres{u,g}id(value) for all three ids, or ``fail`` with the one line that says
    why not."""
    try:
        setres(value, value, value)
    except OSError as exc:
        fail(f"set{kind} {value}{where}: {exc.strerror}"
             + (f" ({kind} not mapped there; --preserve-credentials keeps yours)"
                if exc.errno == errno.EINVAL else ""))
