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

import os
import signal

from ..kernel import nsfs
from ..kernel.errors import NsctlError
from ..model import Namespace, Snapshot
from ..query.handles import open_namespace
from .relay import Relay, exit_code

# Order of setns() calls for the types other than user: mnt last, so that paths
# (and the root we may chroot to) are looked up where the command will run.
ORDER = ("cgroup", "ipc", "uts", "net", "pid", "time", "mnt")


class EnterError(NsctlError):
    """Entering a namespace or starting the command failed."""


def plan(targets: list[Namespace], as_root: bool) -> list[Namespace]:
    """The setns order.  Root enters its user namespace target last (its privilege in
    the current user namespace opens the others); anyone else enters it first, to
    gain the capabilities the owning user namespace gives."""
    by_type: dict[str, Namespace] = {}
    for ns in targets:
        if ns.type in by_type and by_type[ns.type].ino != ns.ino:
            raise EnterError(f"two {ns.type} namespaces given: {by_type[ns.type].ino} and "
                             f"{ns.ino}")
        by_type[ns.type] = ns
    ordered = [by_type[t] for t in ORDER if t in by_type]
    if "user" in by_type:
        ordered = ordered + [by_type["user"]] if as_root else [by_type["user"]] + ordered
    return ordered


def enter(targets: list[Namespace], snap: Snapshot, argv: list[str],
          root_of: int | None = None) -> int:
    """Run ``argv`` in ``targets``; returns its exit status.  ``root_of``: also take that
    process's root directory and working directory (as nsenter -a does)."""
    from ..kernel.libc import setns

    # Entering a namespace we are already in changes nothing (and setns would still
    # want privilege for it): leave those out, as nsenter does.
    ordered = [ns for ns in plan(targets, os.geteuid() == 0) if snap.own.get(ns.type) != ns.ino]
    fds: list[tuple[Namespace, int]] = []
    extra: list[int] = []
    relay = Relay().install()
    try:
        try:
            for ns in ordered:
                fds.append((ns, open_namespace(ns, snap)))
            root_fd = cwd_fd = None
            if root_of is not None:
                try:
                    root_fd = os.open(f"/proc/{root_of}/root", os.O_RDONLY | os.O_DIRECTORY)
                    cwd_fd = os.open(f"/proc/{root_of}/cwd", os.O_RDONLY | os.O_DIRECTORY)
                except OSError as exc:
                    raise EnterError(f"root and cwd of {root_of}: {exc.strerror}") from None
                extra = [root_fd, cwd_fd]
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            pid = relay.fork(execs=all(ns.type != "pid" for ns, _fd in fds))
            if pid == 0:
                os.close(err_r)
                _child(fds, root_fd, cwd_fd, argv, err_w, setns, relay)
            os.close(err_w)
        finally:
            for _ns, fd in fds:
                os.close(fd)
            for fd in extra:
                os.close(fd)
        status = relay.wait()
    finally:
        relay.close()
    with os.fdopen(err_r, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    if message:
        error = EnterError(message)
        error.exit_status = exit_code(status) or 1  # 127: the command could not be run
        raise error
    return exit_code(status)


def _child(fds, root_fd, cwd_fd, argv, err_w, setns, relay: Relay) -> None:
    """In the forked child: enter, maybe fork again, exec.  Never returns."""
    def fail(message: str, code: int = 1) -> None:
        os.write(err_w, message.encode())
        os._exit(code)

    try:
        entered = set()
        for ns, fd in fds:
            try:
                setns(fd, nsfs.CLONE_FLAGS[ns.type])
            except OSError as exc:
                fail(f"setns into {ns.label}: {exc.strerror}")
            entered.add(ns.type)
        relay.arm()   # entering a user namespace owned by another user clears it
        if root_fd is not None:
            os.fchdir(root_fd)
            os.chroot(".")
            os.fchdir(cwd_fd)
        elif "mnt" in entered:
            os.chdir("/")
        if "pid" in entered:
            # setns(CLONE_NEWPID) places our children, not us: fork the command.
            if relay.fork(execs=True):
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
            fail(f"{argv[0]}: {exc.strerror}", 127)
    except BaseException as exc:  # never return into nsctl's own code
        fail(f"enter: {exc}")
