"""What a test may leave behind, and the check that it left nothing (see tests/conftest.py)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import comm, descendants, ppid_map, terminate
from support.syscalls import LINK_TYPE, umount


# --- what a test may leave behind ------------------------------------------------------------

@dataclass
class Residue:
    """What this pytest process has made that outlives a test, at one moment."""

    processes: dict[int, str] = field(default_factory=dict)   # descendant pid -> command
    mounts: dict[int, str] = field(default_factory=dict)      # mount id -> "fstype at point"
    netns_names: set[str] = field(default_factory=set)        # /run/netns entries
    files: set[str] = field(default_factory=set)              # under our temp dirs
    ns_fds: dict[int, str] = field(default_factory=dict)      # our own fds on nsfs

    def __bool__(self) -> bool:
        return any((self.processes, self.mounts, self.netns_names, self.files, self.ns_fds))

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
        if self.ns_fds:
            parts.append("namespace fds " + ", ".join(f"{fd} -> {t}" for fd, t in
                                                      sorted(self.ns_fds.items())))
        return "; ".join(parts)


RUN_NETNS = "/run/netns"


class LeakScope:
    """Which mounts, /run/netns entries and files count as this pytest process's.

    Other people run tests on this machine at the same time, so only what lies
    under our temp dirs, or in /run/netns under our tag, is ours; with
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
        for name in os.listdir("/proc/self/fd"):
            try:
                text = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                continue
            if text.partition(":[")[0] in LINK_TYPE:
                res.ns_fds[int(name)] = text
        return res

    @staticmethod
    def new_since(before: Residue, after: Residue) -> Residue:
        return Residue(
            processes={p: c for p, c in after.processes.items() if p not in before.processes},
            mounts={m: d for m, d in after.mounts.items() if m not in before.mounts},
            netns_names=after.netns_names - before.netns_names,
            files=after.files - before.files,
            ns_fds={fd: t for fd, t in after.ns_fds.items() if before.ns_fds.get(fd) != t},
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
        for fd in left.ns_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)



def _describe_process(pid: int, ppid: int | None) -> str:
    """comm, state and parent, for a leak report."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat[stat.rindex(")") + 2:].split()[0]
    except OSError:
        state = "?"
    return f"{comm(pid) or '?'}, state {state}, parent {ppid}"
