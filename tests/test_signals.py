"""Signals to `nsctl run` and `nsctl enter`, sent to nsctl's own PID as systemd,
Kubernetes, `docker stop` or timeout(1) send them.

What nsctl gets reaches the command (a trap in it writes a marker file), nsctl
exits with the command's status, and when the run is over nothing of it is left:
no process (pidfds taken on every process of the run while it ran; /proc scanned
for any process still in the run's namespaces) and no veth (ip(8) in a network
namespace the test made, where `--veth` puts nsctl's end of the pair).  SIGKILL of
nsctl takes everything it started with it.  A terminal's Ctrl-C reaches the
command once.  Every step runs under a timeout.
"""
from __future__ import annotations

import os
import pty
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import support
from support import cli, namespaces, nsfacts, processes
from support import ops as ot
from support.ops import TYPES

pytestmark = support.root_only

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2]
# Not `sleep 30 & wait`: dash can miss a signal that comes just before its wait blocks.
IDLE = "while :; do sleep 0.05; done"
VETH = "10.78.0.1/30"
NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

RUNS = {
    "pid": ["--pid"],
    "pid net veth": ["--pid", "--net", "--mount", "--veth", VETH],
    "net veth": ["--net", "--veth", VETH],            # no init: nsctl's child is the command
    "time": ["--time", "monotonic=5"],                # an init that execs the command
    "user pid": ["--user", "--map-root", "--pid", "--mount"],
}


def _trapping(scr: Path, then: str = "die") -> str:
    """A shell that writes the name of each forwarded signal it gets to ``got`` and
    then dies of it (``then="die"``: status 128+N) or runs ``then``; ``ready`` once its
    traps are set."""
    traps = []
    for sig in SIGNALS:
        name = sig.name[3:]
        after = f"trap - {name}; kill -{name} $$" if then == "die" else then
        traps.append(f"trap 'echo {name} >> {scr}/got; {after}' {name}")
    return "; ".join(traps) + f"; echo ready > {scr}/ready; {IDLE}"


def _new_namespaces(pid: int, nsctl: int) -> dict[str, tuple[int, int | None]]:
    """The namespaces of ``pid`` that are not nsctl's: type -> (inode, NS_GET_ID id)."""
    out = {}
    for t in TYPES:
        ino = nsfacts.link_ino(pid, t)
        if ino != nsfacts.link_ino(nsctl, t):
            out[t] = (ino, nsfacts.facts(f"/proc/{pid}/ns/{t}").id)
    return out


def _in_namespaces(spaces: dict[str, tuple[int, int | None]]) -> list[int]:
    """Every process on the host that is in one of ``spaces``.  The inode is checked
    first, then the id: once a namespace is gone its inode may be another's (this host
    runs other tests too), its id never is."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for t, (ino, ns_id) in spaces.items():
            try:
                if os.stat(f"/proc/{name}/ns/{t}").st_ino == ino and \
                        nsfacts.facts(f"/proc/{name}/ns/{t}").id == ns_id:
                    out.append(int(name))
                    break
            except OSError:
                continue
    return out


def _the(pids: list[int], comm: str) -> int:
    """The one process called ``comm`` whose parent is called otherwise (a shell's
    child between fork and exec has the shell's name)."""
    parents = processes.ppid_map()
    found = [p for p in pids
             if processes.comm(p) == comm and processes.comm(parents.get(p, 0)) != comm]
    assert len(found) == 1, {p: processes.comm(p) for p in pids}
    return found[0]


def _veths(net: ot.OwnNet) -> list[str]:
    return [name for name in net.links() if name.startswith("nsctl")]


class Watched:
    """pidfds of processes, taken while they run (a reused PID can't fool the checks)."""

    def __init__(self, pids: list[int]) -> None:
        self.fds: dict[int, int] = {}
        for pid in pids:
            try:
                self.fds[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                pass   # a shell's short-lived child, gone already

    def running(self) -> list[int]:
        return [pid for pid, fd in self.fds.items() if not select.select([fd], [], [], 0)[0]]

    def reap(self) -> None:
        """Reap those that came back to us as zombies (pytest is a child subreaper)."""
        for fd in self.fds.values():
            try:
                os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                pass   # not ours: its parent reaped it

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


@contextmanager
def watching(pids: list[int]) -> Iterator[Watched]:
    watched = Watched(pids)
    try:
        yield watched
    finally:
        watched.reap()
        watched.close()


def _gone_in_time(watched: Watched, what: str, timeout: float = 5) -> None:
    processes.wait_for(lambda: not watched.running(), what, timeout=timeout, step=0.01)


# === nsctl run ===================================================================================

@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
@pytest.mark.parametrize("flags", list(RUNS.values()), ids=list(RUNS))
def test_signal_to_run_reaches_the_command_and_nothing_is_left(flags, sig, scr):
    with ot.own_netns() as net, \
            ot.running(["run", *flags, "--", "sh", "-c", _trapping(scr)], prefix=net.prefix) as run:
        ot.wait_file(scr / "ready")
        procs = [run.pid] + processes.descendants(run.pid)
        spaces = _new_namespaces(_the(procs, "sh"), run.pid)
        assert ("--veth" in flags) == bool(_veths(net))
        with watching(procs) as watched:
            os.kill(run.pid, sig)
            res = run.wait(timeout=20)
            assert (scr / "got").read_text() == f"{sig.name[3:]}\n", "what the command got"
            assert res.returncode == 128 + sig, res.stderr
            assert cli.error_lines(res.stderr) == []
            assert watched.running() == []
        assert _veths(net) == []
        assert _in_namespaces(spaces) == []


@pytest.mark.parametrize("flags", list(RUNS.values()), ids=list(RUNS))
def test_run_passes_the_status_of_a_command_that_handles_the_signal(flags, scr):
    with ot.own_netns() as net, \
            ot.running(["run", *flags, "--", "sh", "-c", _trapping(scr, then="exit 7")],
                       prefix=net.prefix) as run:
        ot.wait_file(scr / "ready")
        os.kill(run.pid, signal.SIGTERM)
        res = run.wait(timeout=20)
    assert (scr / "got").read_text() == "TERM\n"
    assert (res.returncode, cli.error_lines(res.stderr)) == (7, [])


@pytest.mark.parametrize("flags", list(RUNS.values()), ids=list(RUNS))
def test_sigkill_of_run_takes_the_command_its_init_and_the_veth_with_it(flags, scr):
    with ot.own_netns() as net, \
            ot.running(["run", *flags, "--", "sh", "-c",
                        f"echo ready > {scr}/ready; exec sleep 60"], prefix=net.prefix) as run:
        ot.wait_file(scr / "ready")
        procs = [run.pid] + processes.descendants(run.pid)
        spaces = _new_namespaces(_the(procs, "sleep"), run.pid)
        # nsctl, its child, the init (with --pid, or --time) and the command under it (--pid)
        assert len(procs) == 2 + ("--time" in flags or "--pid" in flags) + ("--pid" in flags)
        assert len(_veths(net)) == ("--veth" in flags)
        with watching(procs) as watched:
            os.kill(run.pid, signal.SIGKILL)
            _gone_in_time(watched, "every process of the run to die with nsctl")
            assert run.wait().returncode == -signal.SIGKILL   # (reaped by Popen, not by us)
        # The namespaces went with their last process, the veth pair with its network namespace.
        processes.wait_for(lambda: not _veths(net), "the veth pair to go with its namespace",
                           timeout=5, step=0.05)
    assert _in_namespaces(spaces) == []


def test_signal_before_the_command_starts_gives_the_run_up_and_undoes_it(scr):
    """nsctl's child is stopped half-way through setting up; SIGTERM to nsctl then: the
    command never runs, the veth made so far is removed, nsctl exits 143."""
    with ot.own_netns() as net, \
            ot.running(["run", "--pid", "--net", "--veth", VETH, "--", "sh", "-c",
                        f"touch {scr}/ran; exec sleep 60"], prefix=net.prefix) as run:
        child = run.child()
        os.kill(child, signal.SIGSTOP)
        try:
            os.kill(run.pid, signal.SIGTERM)
            # nsctl gave up: it waits for its child to notice and go.
            processes.wait_for(lambda: _wchan(run.pid) == "do_wait", "nsctl to wait for its child")
        finally:
            os.kill(child, signal.SIGCONT)
        res = run.wait(timeout=20)
        assert (res.returncode, cli.error_lines(res.stderr)) == (143, [])
        assert not (scr / "ran").exists(), "the command ran"
        assert _veths(net) == []
        assert processes.descendants(os.getpid()) == [net.pid]


def _wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


# === nsctl enter =================================================================================

@contextmanager
def nobodys_user_and_uts() -> Iterator[int]:
    """``sleep`` in new user and uts namespaces that uid 65534 made (and so owns)."""
    proc = subprocess.Popen([*SETPRIV, "unshare", "--user", "--uts", "sleep", "600"],
                            stdin=subprocess.DEVNULL)
    try:
        processes.wait_for(lambda: processes.comm(proc.pid) == "sleep", "the target to start",
                           timeout=10)
        yield proc.pid
    finally:
        processes.terminate([proc.pid])
        proc.wait(timeout=10)


ENTER = {
    "uts": ["{pid}/uts"],                        # nsctl's child execs the command
    "pid": ["{pid}/pid"],                        # the child forks the command into it
    # setns into a user namespace someone else owns clears PDEATHSIG: armed again after
    "user owned by 65534": ["{pid}/user", "{pid}/uts"],
}


@contextmanager
def enter_target(kind: str) -> Iterator[list[str]]:
    """A target made by the test; the SPECs that name it."""
    if kind == "user owned by 65534":
        with nobodys_user_and_uts() as pid:
            yield [s.replace("{pid}", str(pid)) for s in ENTER[kind]]
    else:
        with namespaces.unshare_command(["--uts", "--pid"]) as cmd:
            yield [s.replace("{pid}", str(cmd.child)) for s in ENTER[kind]]


@pytest.mark.parametrize("then, status", [("die", 128 + signal.SIGTERM), ("exit 7", 7)])
@pytest.mark.parametrize("kind", list(ENTER))
def test_sigterm_to_enter_reaches_the_command_and_its_status_comes_back(kind, then, status, scr):
    with enter_target(kind) as specs, \
            ot.running(["enter", *specs, "--", "sh", "-c", _trapping(scr, then)]) as run:
        ot.wait_file(scr / "ready")
        with watching([run.pid] + processes.descendants(run.pid)) as watched:
            os.kill(run.pid, signal.SIGTERM)
            res = run.wait(timeout=20)
            assert (scr / "got").read_text() == "TERM\n"
            assert (res.returncode, cli.error_lines(res.stderr)) == (status, [])
            assert watched.running() == []


@pytest.mark.parametrize("kind", list(ENTER))
def test_sigkill_of_enter_leaves_no_child(kind, scr):
    with enter_target(kind) as specs, \
            ot.running(["enter", *specs, "--", "sh", "-c",
                        f"echo ready > {scr}/ready; exec sleep 60"]) as run:
        ot.wait_file(scr / "ready")
        procs = [run.pid] + processes.descendants(run.pid)
        assert len(procs) == (3 if kind == "pid" else 2), procs
        with watching(procs) as watched:
            os.kill(run.pid, signal.SIGKILL)
            _gone_in_time(watched, "the command to die with nsctl")
            assert run.wait().returncode == -signal.SIGKILL


# === a terminal ==================================================================================

# The command: counts the SIGINTs it gets, says it is ready, exits 5 a moment after the
# first (a second copy would have come by then).
COUNTER = ("import signal, sys, time\n"
           "got = []\n"
           "signal.signal(signal.SIGINT, lambda n, _f: got.append(n))\n"
           "open(sys.argv[1] + '/ready', 'w').write('ready\\n')\n"
           "while not got:\n"
           "    time.sleep(0.01)\n"
           "time.sleep(0.3)\n"
           "open(sys.argv[1] + '/got', 'w').write(' '.join(map(str, got)) + '\\n')\n"
           "sys.exit(5)\n")
# After nsctl: its status, and whether the shell's group has the terminal back.
AFTER = ("import os, sys; "
         "open(sys.argv[1] + '/after', 'w').write(f'{os.tcgetpgrp(0) == os.getpgrp()}\\n')")


@pytest.mark.parametrize("argv", [["run", "--pid"], ["run", "--uts", "x"], ["enter", "{pid}/pid"],
                                  ["enter", "{pid}/uts"]], ids=" ".join)
def test_ctrl_c_on_a_terminal_reaches_the_command_once(argv, scr):
    """nsctl started by a shell script on a terminal: Ctrl-C (the terminal signals its
    foreground process group) reaches the command once, not also through nsctl; the
    command's status comes back, and the script's shell has the terminal again."""
    master, slave = pty.openpty()
    try:
        with namespaces.unshare_command(["--uts", "--pid"]) as target:
            argv = [a.replace("{pid}", str(target.child)) for a in argv]
            nsctl = shlex.join([*cli.NSCTL, *argv, "--", sys.executable, "-c", COUNTER, str(scr)])
            after = shlex.join([sys.executable, "-c", AFTER, str(scr)])
            script = f"{nsctl}; echo $? > {scr}/status; {after}"
            # setsid -c: a session of its own with the pty as its controlling terminal.
            shell = subprocess.Popen(["setsid", "-c", "sh", "-c", script], stdin=slave,
                                     stdout=slave, stderr=slave,
                                     preexec_fn=ot._no_core)  # noqa: PLW1509 (see _no_core)
            try:
                ot.wait_file(scr / "ready")
                os.write(master, b"\x03")
                shell.wait(timeout=20)
            finally:
                processes.terminate([shell.pid] + processes.descendants(shell.pid))
                shell.wait(timeout=10)
        assert (scr / "got").read_text() == f"{int(signal.SIGINT)}\n", "SIGINTs the command got"
        assert (scr / "status").read_text() == "5\n", _drain(master)
        assert (scr / "after").read_text() == "True\n", "the shell has the terminal back"
    finally:
        os.close(master)
        os.close(slave)


def _tty_foreground(pid: int) -> int:
    """The foreground process group of ``pid``'s terminal (tpgid in /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[5])


class Pty:
    """An interactive shell on a pseudo-terminal, as a user has it."""

    def __init__(self, scr: Path) -> None:
        self.master, self.slave = pty.openpty()
        env = {"PATH": os.environ["PATH"], "PS1": "$ ", "TERM": "dumb", "HOME": str(scr)}
        self.shell = subprocess.Popen(["setsid", "-c", "bash", "--norc", "--noprofile", "-i"],
                                      stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                      env=env,
                                      preexec_fn=ot._no_core)  # noqa: PLW1509 (see _no_core)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)
        _drain(self.master)   # keep the terminal's buffer from filling

    def close(self) -> None:
        processes.terminate([self.shell.pid] + processes.descendants(self.shell.pid))
        self.shell.wait(timeout=10)
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("argv, stops", [
    (["run", "--uts", "x"], True), (["run", "--time", "monotonic=1"], True),
    (["enter", "{pid}/uts"], True), (["enter", "{pid}/pid"], True),
    (["run", "--pid"], False),    # a PID namespace's init cannot stop: the command goes on
], ids=lambda v: " ".join(v) if isinstance(v, list) else f"stops={v}")
def test_ctrl_z_stops_the_job_and_fg_gives_the_command_the_terminal_again(argv, stops, scr):
    """Ctrl-Z in an interactive shell: the command stops, and so does nsctl, so the shell
    sees its job stopped and has the terminal again; `fg` continues the command with the
    terminal, where Ctrl-C then reaches it once and its status comes back."""
    with namespaces.unshare_command(["--uts", "--pid"]) as target:
        argv = [a.replace("{pid}", str(target.child)) for a in argv]
        term = Pty(scr)
        try:
            line = shlex.join([*cli.NSCTL, *argv, "--", sys.executable, "-c", COUNTER, str(scr)])
            term.type(f"{line}\n".encode())
            ot.wait_file(scr / "ready")
            shell = term.shell.pid
            nsctl = processes.wait_for(lambda: processes.children(shell),
                                       "nsctl under the shell")[0]
            command_group = processes.wait_for(lambda: _tty_foreground(shell) not in (shell, nsctl)
                                               and _tty_foreground(shell), "the command's group")
            term.type(b"\x1a")
            if stops:
                processes.wait_for(lambda: processes.state(nsctl) == "T"
                                   and _tty_foreground(shell) == shell,
                                   "nsctl stopped and the terminal back with the shell", timeout=10)
                term.type(f"echo $? > {scr}/stopped; fg\n".encode())
                assert ot.wait_file(scr / "stopped") == f"{128 + signal.SIGTSTP}\n"
                processes.wait_for(lambda: processes.state(nsctl) != "T" and
                                   _tty_foreground(shell) == command_group,
                                   "the command continued with the terminal", timeout=10)
            else:
                time.sleep(0.5)
                assert (processes.state(nsctl), _tty_foreground(shell)) == ("S", command_group)
            term.type(b"\x03")
            ot.wait_file(scr / "got", timeout=20)
            processes.wait_for(lambda: not processes.children(shell), "the job to end")
            term.type(f"echo $? > {scr}/status\n".encode())
            assert ot.wait_file(scr / "status") == "5\n"
            assert (scr / "got").read_text() == f"{int(signal.SIGINT)}\n", "SIGINTs it got"
        finally:
            term.close()


def _drain(master: int) -> str:
    """What the terminal showed (for a failure message)."""
    out = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")
