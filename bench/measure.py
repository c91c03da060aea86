"""Timing one command: wall time, peak RSS, exit status and output.

The command runs under a small C launcher (timeit.c) that forks it, reaps it
with wait4 and reports its wall time and ``ru_maxrss`` (KiB); stdout and
stderr go to memfds, so the output costs no pipe round trips and leaves no
files.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from topology import HERE, Workdir

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

# `nsctl ls --json` once it works; until then the library behind it.  One variable.
NSCTL_LS = [str(VENV_BIN / "nsctl"), "ls", "--json"]
NSCTL_STAND_IN = [str(VENV_BIN / "python"), "-c",
                  "import json,nsctl; print(json.dumps(nsctl.discover(threads={threads})"
                  ".to_dict()))"]


@dataclass
class Sample:
    argv: list[str]
    wall: float          # seconds, spawn to reap
    maxrss_kib: int
    status: int          # exit code, or -signal
    cpu: float           # user + system seconds (of its waited-for children too)
    out: bytes
    err: bytes


# Environment variables that change how a Python tool performs, not what it
# does: with PYTHONUNBUFFERED every small write to stdout is a system call, and
# with PYTHONDONTWRITEBYTECODE every run compiles nsctl from source.  They are
# taken out of the timed commands' environment unless --inherit-env is given;
# bytecode then goes to a cache in the run's temp dir (PYTHONPYCACHEPREFIX),
# filled by the warm-up run, so nothing is written into the source tree.
PERF_ENV = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


class Timer(Workdir):
    """The timeit launcher (timeit.c), compiled into a temp dir for this run.

    ``with Timer() as timer: timer.run(argv)``.  See timeit.c for why the
    command is not spawned straight from Python.
    """

    def __init__(self, inherit_env: bool = False) -> None:
        super().__init__()
        self.inherit_env = inherit_env
        self.env = dict(os.environ)

    def build(self) -> None:
        self.exe = str(self.compile(HERE / "timeit.c", "timeit"))
        if not self.inherit_env:
            for name in PERF_ENV:
                self.env.pop(name, None)
            self.env["PYTHONPYCACHEPREFIX"] = str(self.dir / "pycache")

    def env_note(self) -> str:
        if self.inherit_env:
            return "inherited: " + ", ".join(f"{k}={os.environ[k]}" for k in PERF_ENV
                                             if k in os.environ)
        removed = [k for k in PERF_ENV if k in os.environ]
        return ("cleaned: " + (", ".join(removed) + " removed; " if removed else "")
                + "bytecode cached under the run's temp dir")

    def run(self, argv: list[str], extra_env: dict[str, str] | None = None) -> Sample:
        """``argv`` timed, in the cleaned environment plus ``extra_env``."""
        return run_once(argv, self.exe, {**self.env, **extra_env} if extra_env else self.env)


def run_once(argv: list[str], timeit: str | None = None,
             env: dict[str, str] | None = None) -> Sample:
    """Run ``argv`` to completion; through the ``timeit`` launcher if given
    (exact RSS), else spawned from here (RSS includes this process's)."""
    out = os.memfd_create("stdout")
    err = os.memfd_create("stderr")
    rfd, wfd = os.pipe()
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, out, 1),
                   (os.POSIX_SPAWN_DUP2, err, 2),
                   (os.POSIX_SPAWN_DUP2, wfd, 3)]
        full = [timeit, "3", *argv] if timeit else argv
        t0 = time.perf_counter()
        pid = os.posix_spawn(full[0], full, env if env is not None else os.environ,
                             file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        os.close(wfd)
        wfd = -1
        if timeit:
            report = os.read(rfd, 200).split()
            if os.waitstatus_to_exitcode(status) != 0 or len(report) != 4:
                raise RuntimeError(f"timeit failed: {_slurp(err).decode(errors='replace')}")
            wall = int(report[0]) / 1e9
            maxrss = int(report[1])
            status = int(report[2])
            cpu = int(report[3]) / 1e6
        else:
            maxrss = usage.ru_maxrss
            cpu = usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        return Sample(argv, wall, maxrss, code, cpu, _slurp(out), _slurp(err))
    finally:
        for fd in (out, err, rfd, wfd):
            if fd >= 0:
                os.close(fd)


def _slurp(fd: int) -> bytes:
    size = os.lseek(fd, 0, os.SEEK_END)
    return os.pread(fd, size, 0) if size else b""


def flatten(nodes):
    """lsns -J nests PID/user namespaces under "children"; nsctl's list is flat."""
    for node in nodes:
        yield node
        yield from flatten(node.get("children") or ())


def namespaces(sample: Sample) -> dict[int, dict]:
    """inode -> entry, from either tool's JSON."""
    doc = json.loads(sample.out)
    return {int(n["ns"]): n for n in flatten(doc["namespaces"])}


def lsns_argv() -> list[str]:
    path = shutil.which("lsns")
    if not path:
        raise SystemExit("lsns not found (util-linux)")
    return [path, "-J"]


def nsctl_argv(threads: bool = False, override: str | None = None) -> tuple[list[str], str]:
    """The nsctl command to time, and a label saying which one it is."""
    if override:
        argv = shlex.split(override)
        return argv, "custom"
    argv = NSCTL_LS + (["--threads"] if threads else [])
    probe = run_once(NSCTL_LS)
    try:
        if probe.status == 0 and "namespaces" in json.loads(probe.out):
            return argv, "nsctl ls --json" + (" --threads" if threads else "")
    except ValueError:
        pass
    stand_in = NSCTL_STAND_IN[:2] + [NSCTL_STAND_IN[2].format(threads=threads)]
    return stand_in, "stand-in: python -c nsctl.discover()"


def profile(timer: Timer, nsctl_args: list[str], setup: str = "", top: int = 30) -> str:
    """Run nsctl once under cProfile (in-process CLI entry) and return the top
    functions by cumulative and by own time.  ``setup`` is Python run first
    (e.g. to change a module constant for a serial profile)."""
    import io
    import pstats

    out = timer.dir / f"profile-{len(list(timer.dir.glob('profile-*')))}.prof"
    code = ("import cProfile, sys\n" + setup + "\n"
            "from nsctl.cli.main import main\n"
            f"cProfile.run({f'main({nsctl_args!r})'!r}, {str(out)!r})\n")
    sample = timer.run([str(VENV_BIN / "python"), "-c", code])
    if sample.status != 0 or not out.exists():
        return f"profile failed ({sample.status}): {sample.err.decode(errors='replace')[-2000:]}"
    buf = io.StringIO()
    stats = pstats.Stats(str(out), stream=buf)
    buf.write(f"nsctl {' '.join(nsctl_args)} under cProfile: {sample.wall:.3f} s wall"
              + (f" (setup: {setup})" if setup else "") + "\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    out.unlink()
    return buf.getvalue()


@dataclass
class Stats:
    median: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


def add_timing_args(ap, timed: str, profile_help: str, out: Path) -> None:
    """The options every side-by-side script takes (``timed``: the default nsctl command)."""
    ap.add_argument("--nsctl", default=None, metavar="CMD",
                    help=f"command to time instead of `{timed}`")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first run")
    ap.add_argument("--inherit-env", action="store_true",
                    help="time the tools with this environment as is (by default "
                         "PYTHONUNBUFFERED / PYTHONDONTWRITEBYTECODE are dropped)")
    ap.add_argument("--profile", action="store_true", help=profile_help)
    ap.add_argument("--out", type=Path, default=out, help="directory for the JSON result")


def describe(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
