"""What a test may leave behind, and the check that it left nothing (see tests/conftest.py).

:meth:`LeakScope.capture` takes stock of everything of this pytest process's
that can outlive a test; :meth:`LeakScope.new_since` is what a test added, and
:meth:`LeakScope.clean` undoes it so the next test starts clean.
"""
from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import comm, descendants, ppid_map, terminate
from support.syscalls import umount

# --- what a test may leave behind ------------------------------------------------------------

@dataclass
class Residue:
    """What this pytest process has made that outlives a test, at one moment."""

    processes: dict[int, str] = field(default_factory=dict)   # descendant pid -> command
    mounts: dict[int, str] = field(default_factory=dict)      # mount id -> "fstype at point"
    netns_names: set[str] = field(default_factory=set)        # /run/netns entries
    files: set[str] = field(default_factory=set)              # under our temp dirs
    fds: dict[int, str] = field(default_factory=dict)         # our own fds -> what they are
    threads: dict[int, str] = field(default_factory=dict)     # our threads but the main one

    def __bool__(self) -> bool:
        return any((self.processes, self.mounts, self.netns_names, self.files, self.fds,
                    self.threads))

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
        if self.fds:
            parts.append("fds " + ", ".join(f"{fd} -> {t}" for fd, t in sorted(self.fds.items())))
        if self.threads:
            parts.append("threads " + ", ".join(f"{t} ({c})" for t, c in
                                                sorted(self.threads.items())))
        return "; ".join(parts)


RUN_NETNS = "/run/netns"


class LeakScope:
    """What counts as this pytest process's: its descendants (running or unreaped), its
    threads, every fd it has open (namespace files, pipes, sockets, memfds, eventfds,
    plain files...), and the mounts, /run/netns entries and files that are ours.

    Other people run tests on this machine at the same time, so only the mounts
    and files under our temp dirs, or in /run/netns under our tag, are ours; with
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
        # An object nothing refers to any more (a socket in a reference cycle, say) is
        # not a leak: let the collector close what it holds before the fds are listed.
        gc.collect()
        res = Residue()
        me = os.getpid()
        parents = ppid_map()
        for pid in descendants(me, parents):
            res.processes[pid] = _describe_process(pid, parents.get(pid))
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            head, _, tail = line.partition(" - ")
            fields = head.split()
            mount_id, point, fstype = int(fields[0]), unescape(fields[4]), tail.split()[0]
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
        listing = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in os.listdir(listing):
                fd = int(name)
                if fd == listing:
                    continue
                try:
                    res.fds[fd] = os.readlink(name, dir_fd=listing)
                except OSError:
                    continue   # closed meanwhile
        finally:
            os.close(listing)
        res.threads = _threads()
        return res

    @staticmethod
    def new_since(before: Residue, after: Residue) -> Residue:
        return Residue(
            processes={p: c for p, c in after.processes.items() if p not in before.processes},
            mounts={m: d for m, d in after.mounts.items() if m not in before.mounts},
            netns_names=after.netns_names - before.netns_names,
            files=after.files - before.files,
            fds={fd: t for fd, t in after.fds.items() if before.fds.get(fd) != t},
            # A thread that has just ended its work may still be on its way out.
            threads={t: c for t, c in after.threads.items()
                     if t in _wait_threads_gone(set(after.threads) - set(before.threads), 1.0)},
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
        # An fd a Python object still owns is not closed but pointed at /dev/null: the
        # object's own close() later must not close some other test's fd of that number.
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            for fd in left.fds:
                if fd != devnull:
                    os.dup2(devnull, fd, inheritable=False)
        finally:
            os.close(devnull)
        # A thread cannot be stopped from outside: it is reported, and given a moment.
        _wait_threads_gone(set(left.threads), timeout=5.0)


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _describe_process(pid: int, ppid: int | None) -> str:
    """comm, state and parent, for a leak report."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
        state = stat[stat.rindex(")") + 2:].split()[0]
    except OSError:
        state = "?"
    return f"{comm(pid) or '?'}, state {state}, parent {ppid}"


def _threads() -> dict[int, str]:
    """tid -> name of this process's threads other than the main one."""
    out = {}
    for tid in _live_tids():
        try:
            out[tid] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue   # gone meanwhile
    return out


def _live_tids() -> set[int]:
    me = os.getpid()
    return {int(t) for t in os.listdir(f"/proc/{me}/task")} - {me}


def _wait_threads_gone(tids: set[int], timeout: float) -> set[int]:
    """Wait until none of ``tids`` is left, for ``timeout`` seconds at most; those left."""
    deadline = time.monotonic() + timeout
    while (left := tids & _live_tids()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return left
