"""Reading /proc: namespace links, process facts, fds, tasks and mountinfo.

Hot paths use a directory fd for /proc/PID and *at() calls so the kernel does
not walk "/proc/PID" again for every file.  Errors are left as OSError for
the caller (discovery) to classify once per process.
"""
from __future__ import annotations

import errno
import os

from .errors import Unparsable

PROC = "/proc"
#: Flags for a directory fd used only as the base of *at() calls.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_PATH", 0)


def list_pids(proc: str = PROC) -> list[int]:
    """PIDs of all processes visible in this /proc, ascending."""
    return sorted(int(name) for name in os.listdir(proc) if name.isdigit())


def open_dir(path: str, dir_fd: int | None = None) -> int:
    """An O_PATH directory fd, for *at() reads below it."""
    return os.open(path, DIR_FLAGS, dir_fd=dir_fd)


def read_text(name: str, dir_fd: int | None = None, records: bool = False) -> str:
    """A whole proc file as text.

    Files produced in one piece (stat, status, cmdline) come whole from the
    first read when short, saving a second read per file; ``records`` files
    (mountinfo: a record per line, served a page at a time) always read to EOF.
    """
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        data = os.read(fd, 4096)
        if not records and len(data) < 4096:
            return data.decode("utf-8", "surrogateescape")
        chunks = [data]
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "surrogateescape")
    finally:
        os.close(fd)


def read_stat(dir_fd: int) -> tuple[str, str, int, int, int]:
    """(comm, state, ppid, starttime, threads) from /proc/PID/stat (:func:`parse_stat`)."""
    return parse_stat(read_text("stat", dir_fd))


def parse_stat(text: str) -> tuple[str, str, int, int, int]:
    """(comm, state, ppid, starttime, threads) of a /proc/PID/stat text; comm may hold
    spaces, parentheses and newlines (the process names itself), so it runs from the
    first '(' to the last ')'.  Unparsable if the text is not of that form."""
    try:
        left = text.index("(")
        right = text.rindex(")")
        fields = text[right + 2:].split()
        # fields[0] is field 3 (state), fields[1] ppid, fields[17] num_threads (20),
        # fields[19] starttime (22): see proc_pid_stat(5).
        return text[left + 1:right], fields[0], int(fields[1]), int(fields[19]), int(fields[17])
    except (IndexError, ValueError):
        raise Unparsable("stat: not in the form of proc_pid_stat(5)") from None


def dir_alive(dir_fd: int) -> bool:
    """Whether the process whose /proc directory ``dir_fd`` is has not exited: its
    stat reads, and it is no zombie (whose namespaces are gone).  The directory
    stays that process's: once it has exited, reads through it fail, even when its
    PID names another process by then."""
    try:
        return read_stat(dir_fd)[1] not in ("Z", "X")
    except (OSError, Unparsable):
        return False


def starttime(pid: int, proc_fd: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), None if it is gone (or
    its stat can't be parsed): with the PID, what names one process across two scans
    (PIDs are reused)."""
    try:
        text = read_text(f"{pid}/stat", proc_fd)
        return int(text[text.rindex(")") + 2:].split(None, 20)[19])
    except (OSError, IndexError, ValueError):
        return None


def read_mountinfo(dir_fd: int) -> str:
    """/proc/PID/mountinfo; a process that released its namespaces (exiting) gives
    EINVAL there, which is reported as gone."""
    try:
        return read_text("mountinfo", dir_fd, records=True)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise FileNotFoundError(errno.ENOENT, "process is exiting") from exc
        raise


PF_EXITING = 0x4


def is_exiting(pid: int) -> bool:
    """The task is in do_exit (or gone): an init stuck in zap_pid_ns_processes still
    holds PID 1 of its namespace but is no longer its init."""
    try:
        text = read_text(f"{PROC}/{pid}/stat")
    except OSError:
        return True
    return bool(int(text[text.rindex(")") + 2:].split()[6]) & PF_EXITING)


def read_cmdline(dir_fd: int) -> list[str]:
    """argv of the process; empty for kernel threads and zombies."""
    text = read_text("cmdline", dir_fd)
    if not text:
        return []
    return text.rstrip("\0").split("\0")


def read_status_fields(dir_fd: int, keys: tuple[str, ...]) -> dict[str, str]:
    """Selected "Key:\tvalue" lines of /proc/PID/status (found by search: splitting
    all ~55 lines cost more than reading the file)."""
    text = "\n" + read_text("status", dir_fd)
    out: dict[str, str] = {}
    for key in keys:
        start = text.find(f"\n{key}:")
        if start < 0:
            continue
        start += len(key) + 2
        end = text.find("\n", start)
        out[key] = text[start:end if end >= 0 else len(text)].strip()
    return out


def parse_pids(value: str, what: str) -> list[int]:
    """The PIDs of a status field such as NSpid ("12\t1"); Unparsable if one is not
    a number."""
    try:
        return [int(x) for x in value.split()]
    except ValueError:
        raise Unparsable(f"{what}: not a list of PIDs") from None


_self_fd: str | None = None


def _own_fd_dir() -> str:
    """/proc/self/fd if this /proc shows it, else "" (then fds are listed by fd)."""
    global _self_fd
    if _self_fd is None:
        _self_fd = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else ""
    return _self_fd


def list_fds(dir_fd: int) -> list[tuple[int, str]]:
    """(fd, link text) for each open fd; fds closed mid-listing are skipped.

    The fd/ directory is listed by path, through our own /proc/self/fd/N link to
    ``dir_fd`` (the same directory, so the same process): 5 system calls a
    process, where os.listdir of an open directory fd makes 10 (it dups the fd,
    sets its flags and rewinds it)."""
    own = _own_fd_dir()
    if own:
        return _fd_links(os.listdir(f"{own}/{dir_fd}/fd"), dir_fd, "fd/")
    fd_dir = os.open("fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return _fd_links(os.listdir(fd_dir), fd_dir, "")
    finally:
        os.close(fd_dir)


def _fd_links(names: list[str], base: int, prefix: str) -> list[tuple[int, str]]:
    out = []
    for name in names:
        try:
            out.append((int(name), os.readlink(prefix + name, dir_fd=base)))
        except FileNotFoundError:
            continue   # closed meanwhile
    return out


def list_tasks(dir_fd: int) -> list[int]:
    """TIDs of the threads of a process."""
    task_dir = os.open("task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return [int(name) for name in os.listdir(task_dir)]
    finally:
        os.close(task_dir)


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for space and so on)."""
    if "\\" not in field:
        return field
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def nsfs_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(root, mount point) of every nsfs mount in a mountinfo text.

    The root of an nsfs bind mount names the namespace, e.g. ``net:[4026532008]``.
    """
    out = []
    for line in mountinfo.splitlines():
        if " nsfs " not in line:
            continue
        head, sep, tail = line.partition(" - ")
        if not sep or not tail.startswith("nsfs "):
            continue
        fields = head.split(" ")
        out.append((unescape(fields[3]), unescape(fields[4])))
    return out
