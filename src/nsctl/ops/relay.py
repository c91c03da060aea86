"""The processes of `nsctl run` and `nsctl enter`: signals go down the chain, death too.

nsctl forks a helper, which may fork again (run's init, enter's fork into a PID
namespace), down to the command.  Each process in that chain:

- passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to its own child
  (:class:`Relay`), so that stopping nsctl the usual way (systemd, Kubernetes,
  ``timeout``, ``kill PID``) stops the command, and nsctl exits with its status;
- leads a process group of its own, so nsctl is the only process of the run in the
  caller's group: a signal to that group (``kill %1``, ``timeout``, Ctrl-C when the
  command could not be given the terminal) reaches nsctl alone, which passes it on
  once.  When nsctl's group has the terminal, the command's group gets it instead:
  Ctrl-C then reaches the command directly and nsctl not at all (:class:`Terminal`);
  when the command stops (Ctrl-Z), the chain stops with it, for the shell to see;
- dies with its parent (PR_SET_PDEATHSIG, SIGKILL): if nsctl is killed, so is the
  chain, and with it the namespaces only it held (a veth pair goes with its network
  namespace).

A signal to all of the run's processes at once (``kill -1``, a cgroup-wide kill)
reaches the command twice, directly and passed on: nothing tells it apart.
"""
from __future__ import annotations

import os
import select
import signal

from ..kernel import caps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    # A signal disposition, as signal.signal takes and returns it.
    Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Stopped(BaseException):
    """A signal came before the command started: the caller gives up, undoes what it
    did, and exits 128+N as if the command had died of it.  A BaseException, so that
    the handlers of ordinary errors let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_status = 128 + signum


class ParentWatch:
    """Lets a forked child die with the process that forked it.

    PR_SET_PDEATHSIG fires when the parent's forking thread ends (our forks come from
    single-threaded processes, or nsctl's main thread, which ends only with it).  A
    parent that ended before the child armed it is caught by a pidfd of the parent
    taken before the fork, checked after arming (getppid() cannot tell: in a new PID
    namespace it is 0).  A change of credentials clears the setting (setns into a user
    namespace owned by another user does): :meth:`arm` again after one.
    """

    def __init__(self, death_signal: int = signal.SIGKILL) -> None:
        self.death_signal = death_signal
        self.parent = os.getpid()
        try:
            self.fd = os.pidfd_open(self.parent)   # close-on-exec
        except OSError:                            # before Linux 5.3: getppid() is the check
            self.fd = -1

    def arm(self) -> None:
        """In the child: the death signal (SIGKILL unless asked otherwise) when the parent
        ends; exit now if it has ended."""
        caps.set_parent_death_signal(self.death_signal)
        if self.fd >= 0:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            gone = bool(poller.poll(0))
        else:
            gone = os.getppid() not in (self.parent, 0)
        if gone:
            os._exit(1)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Relay:
    """Passes the FORWARDED signals this process gets on to its one child.

    Signals that come before there is a child (or before :meth:`start`) are kept and
    passed on then; with ``stop_early`` the first one raises :class:`Stopped` instead,
    for a caller that would rather give up than start the command.  Signals ignored
    when the relay was installed stay ignored, for us and the command (a background
    job of a shell ignores SIGINT and SIGQUIT).  The child is always our own and not
    yet reaped: :meth:`wait` stops passing signals on before it reaps, so no signal can
    reach a process that reused the PID.

    Made in nsctl's own process; the processes it forks inherit it (and its
    :class:`Terminal`).
    """

    def __init__(self, stop_early: bool = False, death_signal: int = signal.SIGKILL) -> None:
        self.death_signal = death_signal   # what each child gets when its parent dies
        self.child = 0
        self.forked = 0            # the last child forked, also once reaped
        self.started = False
        self.stop_early = stop_early
        self.kept: list[int] = []
        self.saved: dict[int, Handler] = {}
        self.watch: ParentWatch | None = None
        self.terminal = Terminal()

    def install(self) -> Relay:
        for s in FORWARDED:
            if signal.getsignal(s) != signal.SIG_IGN:
                old = signal.signal(s, self._got)
                self.saved[s] = signal.SIG_DFL if old is None else old   # None: set outside Python
        return self

    def close(self) -> None:
        """In nsctl, when the run is over: back to the dispositions from before
        :meth:`install`, and the terminal back to nsctl's group."""
        for s, handler in self.saved.items():
            signal.signal(s, handler)
        self.saved.clear()
        self.terminal.take_back(self.forked)
        self.terminal.close()

    def _got(self, signum: int, _frame: object) -> None:
        if self.child and self.started:
            try:
                os.kill(self.child, signum)   # our own unreaped child: not a reused PID
            except OSError:
                pass
            return
        self.kept.append(signum)
        if self.stop_early and len(self.kept) == 1:
            raise Stopped(signum)

    def start(self) -> None:
        """Pass signals on to the child from now on, those kept first."""
        self.started = True
        kept, self.kept = self.kept, []
        for signum in kept:
            self._got(signum, None)

    def fork(self, execs: bool, start: bool = True) -> int:
        """os.fork(), with FORWARDED blocked across it so that each signal is handled
        once, by the process it was meant for, under that process's dispositions.

        In the parent the new process becomes the child that signals go to (from now
        on, or from :meth:`start`).  The child leads a process group of its own, dies
        with us, and has a relay of its own with nothing kept (to fork in turn) or,
        with ``execs``, the dispositions nsctl started with, for the command.
        """
        watch = ParentWatch(self.death_signal)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                self._forked(watch, execs)
            else:
                self.child = self.forked = pid
        finally:
            if pid:
                watch.close()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid and start:
            self.start()
        return pid

    def _forked(self, watch: ParentWatch, execs: bool) -> None:
        """The new child's side of :meth:`fork` (signals still blocked)."""
        try:
            self.child, self.forked, self.started, self.stop_early, self.kept = 0, 0, False, \
                False, []
            self.watch = watch
            watch.arm()
            os.setpgid(0, 0)
            if execs:
                for s, handler in self.saved.items():   # (a Python handler: SIG_DFL)
                    signal.signal(s, signal.SIG_DFL if callable(handler) else handler)
                self.saved.clear()
        except BaseException:   # never return into the parent's code
            os._exit(1)

    def arm(self) -> None:
        """Die with the parent again: after a change of credentials (unshare or setns
        of a user namespace clears it)."""
        if self.watch is not None:
            self.watch.arm()

    def exec_ready(self) -> None:
        """In the process about to exec the command: the signal dispositions a command
        expects, the terminal (if nsctl had it), death with the parent armed again."""
        for s in (signal.SIGPIPE, signal.SIGXFSZ):   # Python ignores these for itself
            signal.signal(s, signal.SIG_DFL)
        self.terminal.take()
        self.arm()

    def wait(self, reap_others: bool = False) -> int:
        """The child's wait status once it has ended, signals passed on to it until
        then.  ``reap_others``: also reap every other child that ends meanwhile (an
        init's orphans).  Signals that come afterwards are kept, not passed on.

        When the child stops (Ctrl-Z, SIGSTOP) this process stops too, by the same
        signal, up to nsctl, so that a shell sees its job stopped and takes the terminal
        back; continued (fg, bg), each continues its child and hands it the terminal if
        it has come back.  A PID namespace's init cannot stop itself: under it, the
        command just goes on.
        """
        pid = self.child
        while True:
            info = os.waitid(os.P_ALL if reap_others else os.P_PID, 0 if reap_others else pid,
                             os.WEXITED | os.WSTOPPED | os.WNOWAIT)
            assert info is not None   # None only with WNOHANG
            stopped = info.si_code == os.CLD_STOPPED
            if stopped or info.si_pid != pid:   # a stop reported, or an orphan's end: take it
                os.waitid(os.P_PID, info.si_pid, os.WSTOPPED if stopped else os.WEXITED)
            if stopped and info.si_pid == pid and self.started:   # (a command, not a setup)
                # The same signal: a SIGTSTP in an orphaned process group (no shell to
                # continue it) is dropped, and then the child goes on at once.
                os.kill(os.getpid(), info.si_status)
                self.terminal.pass_on(pid)
                for cont in (os.killpg, os.kill):   # its group (its pipeline), or just it
                    try:
                        cont(pid, signal.SIGCONT)
                        break
                    except OSError:
                        continue
            elif info.si_pid == pid:
                break
        self.child, self.stop_early = 0, False
        return os.waitpid(pid, 0)[1]


class Terminal:
    """The controlling terminal, and whether nsctl's process group had it.

    If it did, the command's group is made the foreground: the command reads the
    terminal, and the terminal's signals (Ctrl-C, Ctrl-\\) reach it directly, once.
    nsctl takes it back when the run is over, so that a shell script that ran nsctl
    is not left in the background.
    """

    def __init__(self) -> None:
        self.pgrp = os.getpgrp()   # nsctl's group, as a number in nsctl's PID namespace
        self.ours = False
        try:
            self.fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:            # no controlling terminal
            self.fd = -1
            return
        self.ours = self._foreground() == self.pgrp

    def _foreground(self) -> int:
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return -1

    def _give(self, pgid: int) -> None:
        # A background group asking for the terminal gets SIGTTOU unless it ignores it.
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self.fd, pgid)
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)

    def take(self) -> None:
        """In the command, before exec: its group gets the terminal if nsctl's had it."""
        if self.ours:
            self._give(os.getpgrp())

    def pass_on(self, child: int) -> None:
        """After a stop: the terminal on to ``child``'s group if it came back to us
        (fg; after bg the shell keeps it)."""
        if self.fd >= 0 and self._foreground() in (self.pgrp, os.getpgrp()):
            self._give(child)

    def take_back(self, child: int) -> None:
        """In nsctl, when the run is over: the terminal back to nsctl's group from
        ``child``'s or from a group with no process left (the command's), never from
        a live group of someone else's (the shell took it, another job has it)."""
        fg = self._foreground()
        if fg <= 0 or fg == self.pgrp:
            return
        if fg != child:
            try:
                os.killpg(fg, 0)
                return
            except ProcessLookupError:
                pass
            except OSError:
                return
        self._give(self.pgrp)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
