"""Benchmark topology: N extra namespaces of all 8 types, held in every way nsctl knows.

    with Topology(10_000) as topo:      # about 10,000 namespaces, built in ~2 s
        ...                             # topo.namespaces: what was created (type, inode, holder)
    assert not leftovers(topo)          # nothing left: processes, mounts, files

The namespaces are made by a small C helper (nsholder.c, compiled into the
run's temp dir) started once per kind of holder:

=============  ===========================================================  =====
holder         how                                                          share
=============  ===========================================================  =====
process        per 8 namespaces, a process that unshare()s all 8 types and  40 %
               its child, PID 1 of the new PID namespace (2 processes)
fd             one process keeps them open as fds (RLIMIT_NOFILE raised)    40 %
child          in the fd share: 1 unit in 8 nests its user namespace; the
               outer one is kept alive only by its child namespace
bindmount      nsfs bind mounts in a private mount namespace that only the  20 %
               holder process is in (on a tmpfs, gone with it)
bindmount-init a few bind mounts (default 20) on files in the temp dir, in
               the caller's mount namespace, like ``ip netns add``
=============  ===========================================================  =====

Cleanup is layered so that nothing is left behind even if the driver dies:
the helpers hold until their stdin reaches EOF, die with their parent
(PR_SET_PDEATHSIG, checked after arming), reap their descendants as
subreapers and unmount their own bind mounts; :meth:`Workdir.close` closes
their stdin, waits, kills what is left by pid (pidfd, after checking its comm
is this run's tag), unmounts anything still mounted under the temp dir and
removes it.  It runs from ``with``, atexit, and SIGTERM/SIGHUP/SIGINT; if the
driver is SIGKILLed, the next run's :func:`sweep_stale` finishes the job
(including restoring sysctls recorded in the temp dir).

Only the ``bindmount-init`` mounts live in the caller's mount namespace, so
they are created last (mount namespaces created earlier don't copy them) and
kept few: a mount namespace that anyone else creates meanwhile copies them.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
TMP_ROOT = Path("/tmp")
PREFIX = "nsbench-"
MNT_DETACH = 2
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def umount(path: str) -> bool:
    return _libc.umount2(os.fsencode(path), MNT_DETACH) == 0


def _unescape(field_: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for a space and so on)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` in our mount namespace, deepest first."""
    prefix = str(directory)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split(" ", 5)[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def processes_named(tag: str) -> list[int]:
    """PIDs whose comm is ``tag`` (every process a helper starts carries the run's tag)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                if f.read().rstrip("\n") == tag:
                    out.append(int(name))
        except OSError:
            continue
    return out


def kill_if_tagged(pid: int, tag: str) -> bool:
    """SIGKILL ``pid`` if it still is one of ours (comm == tag), race-free through a pidfd."""
    try:
        pfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().rstrip("\n") != tag:
                    return False
        except OSError:
            return False
        try:
            signal.pidfd_send_signal(pfd, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(pfd)


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", name.replace(".", "/")).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", name.replace(".", "/")).write_text(f"{value}\n")


class Workdir:
    """A temp dir and a tag owned by this process, and everything started under them.

    The tag (``nsb`` + 6 hex digits) is the comm of every helper process and
    the suffix of the dir name, so leftovers can be told from anyone else's.
    Subclasses add what they create in :meth:`build` and undo it in
    :meth:`teardown`; :meth:`close` is idempotent and always runs the generic
    cleanup after it.
    """

    def __init__(self) -> None:
        self.tag = "nsb" + secrets.token_hex(3)
        self.dir = TMP_ROOT / f"{PREFIX}{self.tag}"
        self.helpers: list[tuple[str, subprocess.Popen]] = []
        self.pids: list[int] = []                  # long-lived processes helpers reported
        self.namespaces: list[Created] = []        # what helpers reported they made
        self.sysctl_saved: dict[str, str] = {}
        self._open = False
        self._old_handlers: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
        self.teardown_seconds: float | None = None

    def _on_line(self, line: str) -> None:
        """A helper's report: ``ns TYPE INODE HOLDER`` or ``pid PID``; other kinds go to
        :meth:`_on_other`."""
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "ns":
            ns_type, ino, holder = rest.split(" ")
            self.namespaces.append(Created(ns_type, int(ino), holder))
        elif kind == "pid":
            self.pids.append(int(rest))
        else:
            self._on_other(kind, rest)

    def _on_other(self, kind: str, rest: str) -> None:
        pass

    def inodes(self) -> set[int]:
        return {c.ino for c in self.namespaces}

    # --- lifecycle ----------------------------------------------------------
    def __enter__(self):
        self.open()
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        if os.geteuid() != 0:
            raise SystemExit("the benchmark needs root (it creates namespaces and mounts)")
        sweep_stale()
        self.dir.mkdir(mode=0o700)
        (self.dir / "owner").write_text(f"{os.getpid()} {_starttime(os.getpid())}\n")
        self._open = True
        atexit.register(self.close)
        for sig in SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, _raise_exit)

    def build(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def close(self) -> None:
        if not self._open:
            return
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        t0 = time.perf_counter()
        try:
            self.teardown()
            self._stop_helpers()
            for pid in self.pids:
                kill_if_tagged(pid, self.tag)
            for pid in processes_named(self.tag):
                kill_if_tagged(pid, self.tag)
            for point in mounts_under(self.dir):
                umount(point)
            self.restore_sysctls()
            shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self._open = False
            self.teardown_seconds = time.perf_counter() - t0
            atexit.unregister(self.close)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    # --- helpers --------------------------------------------------------------
    def compile(self, source: Path, name: str, *flags: str) -> Path:
        out = self.dir / name
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(out), str(source), *flags], check=True)
        return out

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        err = open(self.dir / f"{name}.err", "wb")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True, bufsize=1 << 16)
        finally:
            err.close()
        self.helpers.append((name, proc))
        return proc

    def read_until_ready(self, name: str, proc: subprocess.Popen, on_line) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == "ready\n":
                return
            on_line(line)
        proc.wait()
        err = (self.dir / f"{name}.err").read_text().strip()
        raise RuntimeError(f"helper {name} failed (exit {proc.returncode}): {err}")

    def _stop_helpers(self) -> None:
        for _name, proc in reversed(self.helpers):
            if proc.stdin and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        for _name, proc in reversed(self.helpers):
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        self.helpers.clear()

    # --- sysctls --------------------------------------------------------------
    def raise_sysctl(self, name: str, at_least: int) -> None:
        """Set ``name`` to ``at_least`` if lower; the old value is restored at close."""
        old = read_sysctl(name)
        if int(old) >= at_least:
            return
        if name not in self.sysctl_saved:
            self.sysctl_saved[name] = old
            (self.dir / "sysctl.json").write_text(json.dumps(self.sysctl_saved))
        write_sysctl(name, str(at_least))
        log(f"sysctl {name}: {old} -> {at_least} (restored at teardown)")

    def restore_sysctls(self) -> None:
        for name, value in self.sysctl_saved.items():
            write_sysctl(name, value)
            log(f"sysctl {name} restored to {value}")
        self.sysctl_saved.clear()


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def leftovers(work: Workdir) -> list[str]:
    """What of ``work`` is still on the machine (empty when teardown was complete)."""
    problems = []
    procs = processes_named(work.tag)
    if procs:
        problems.append(f"{len(procs)} processes named {work.tag} still run: {procs[:10]}")
    mounts = mounts_under(work.dir)
    if mounts:
        problems.append(f"{len(mounts)} mounts still under {work.dir}")
    if work.dir.exists():
        problems.append(f"{work.dir} still exists")
    for name, value in getattr(work, "sysctl_expected", {}).items():
        now = read_sysctl(name)
        if now != value:
            problems.append(f"sysctl {name} is {now}, was {value} before the run")
    return problems


def sweep_stale() -> list[str]:
    """Clean up after earlier runs whose driver died without tearing down."""
    swept = []
    for d in TMP_ROOT.glob(PREFIX + "*"):
        tag = d.name[len(PREFIX):]
        try:
            pid_s, start_s = (d / "owner").read_text().split()
            if _starttime(int(pid_s)) == int(start_s):
                continue  # its owner still runs: not ours to touch
        except (OSError, ValueError):
            try:
                if time.time() - d.stat().st_mtime < 60:
                    continue  # just created, owner not written yet
            except OSError:
                continue
        for pid in processes_named(tag):
            kill_if_tagged(pid, tag)
        for point in mounts_under(d):
            umount(point)
        try:
            for name, value in json.loads((d / "sysctl.json").read_text()).items():
                write_sysctl(name, value)
                log(f"sweep: sysctl {name} restored to {value}")
        except (OSError, ValueError):
            pass
        shutil.rmtree(d, ignore_errors=True)
        swept.append(str(d))
        log(f"sweep: removed leftovers of an earlier run in {d}")
    return swept


# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Created:
    type: str
    ino: int
    holder: str


DEFAULT_MIX = {"process": 0.4, "fd": 0.4, "bindmount": 0.2}


@dataclass
class Plan:
    """How many namespaces each helper is asked for (each rounds up to whole units)."""

    process: int
    fd: int
    bindmount: int
    bindmount_init: int

    @classmethod
    def for_n(cls, n: int, mix: dict[str, float] | None = None, init_mounts: int = 20) -> Plan:
        mix = mix or DEFAULT_MIX
        total = sum(mix.values())
        proc = round(n * mix.get("process", 0) / total)
        bind_all = round(n * mix.get("bindmount", 0) / total)
        fd = n - proc - bind_all
        init = min(init_mounts, bind_all // 4)
        return cls(process=proc, fd=fd, bindmount=bind_all - init, bindmount_init=init)


class Topology(Workdir):
    """About ``n`` extra namespaces, mixed types and holders (see the module doc)."""

    def __init__(self, n: int, mix: dict[str, float] | None = None, init_mounts: int = 20,
                 quiet: bool = False) -> None:
        super().__init__()
        self.n = n
        self.plan = Plan.for_n(n, mix, init_mounts)
        self.init_mounts: list[str] = []
        self.build_seconds: float | None = None
        self.quiet = quiet

    def build(self) -> None:
        t0 = time.perf_counter()
        exe = str(self.compile(HERE / "nsholder.c", "nsholder"))
        me = str(os.getpid())
        jobs = []
        if self.plan.process:
            jobs.append(("proc", [exe, "proc", self.tag, me, str(self.plan.process)]))
        if self.plan.fd:
            jobs.append(("fd", [exe, "fd", self.tag, me, str(self.plan.fd)]))
        if self.plan.bindmount:
            (self.dir / "bind").mkdir()
            jobs.append(("bind", [exe, "bind", self.tag, me, str(self.plan.bindmount),
                                  str(self.dir / "bind")]))
        # These three make their mount namespaces before any bind mount exists
        # in ours; they run side by side.
        started = [(name, self.spawn(name, argv)) for name, argv in jobs]
        for name, proc in started:
            self.read_until_ready(name, proc, self._on_line)
        if self.plan.bindmount_init:
            (self.dir / "init").mkdir()
            proc = self.spawn("initbind", [exe, "initbind", self.tag, me,
                                           str(self.plan.bindmount_init), str(self.dir / "init")])
            self.read_until_ready("initbind", proc, self._on_line)
        self.build_seconds = time.perf_counter() - t0
        if not self.quiet:
            log(f"topology {self.tag}: {len(self.namespaces)} namespaces in "
                f"{self.build_seconds:.2f} s ({self.summary()})")

    def _on_other(self, kind: str, rest: str) -> None:
        if kind == "mount":
            self.init_mounts.append(rest)

    def teardown(self) -> None:
        # The initbind helper unmounts its mounts when its stdin closes
        # (_stop_helpers does that, last helper first); close() then unmounts
        # whatever is still under the temp dir.
        pass

    def summary(self) -> str:
        by_holder = Counter(c.holder for c in self.namespaces)
        by_type = Counter(c.type for c in self.namespaces)
        return (", ".join(f"{k} {v}" for k, v in sorted(by_holder.items())) + "; "
                + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Build the benchmark topology, hold it, tear it down.")
    ap.add_argument("n", type=int, nargs="?", default=1000, help="extra namespaces (default 1000)")
    ap.add_argument("--hold", type=float, default=None, metavar="SECONDS",
                    help="keep the topology this long (default: until Enter / Ctrl-C)")
    ap.add_argument("--init-mounts", type=int, default=20,
                    help="bind mounts in our own mount namespace (default 20)")
    ap.add_argument("--sweep", action="store_true", help="only clean up after dead earlier runs")
    args = ap.parse_args(argv)
    if args.sweep:
        swept = sweep_stale()
        print(f"swept {len(swept)} stale run dirs")
        return 0
    topo = Topology(args.n, init_mounts=args.init_mounts)
    with topo:
        print(f"{len(topo.namespaces)} namespaces ({topo.summary()}), built in "
              f"{topo.build_seconds:.2f} s; tag {topo.tag}, dir {topo.dir}")
        try:
            if args.hold is None:
                input("Enter to tear down> ")
            else:
                time.sleep(args.hold)
        except (EOFError, KeyboardInterrupt, SystemExit):   # SystemExit: SIGTERM (see Workdir)
            pass
    left = leftovers(topo)
    print(f"teardown {topo.teardown_seconds:.2f} s; "
          + ("nothing left behind" if not left else "LEFT BEHIND: " + "; ".join(left)))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
