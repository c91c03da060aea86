"""Source: threads whose namespaces differ from their process's (``--threads``).

A thread cannot differ from its process in user, pid or time namespace (the
kernel refuses those to multithreaded callers), so only five links are read
per thread.
"""
from __future__ import annotations

import os

from ..kernel import nsfs, procfs
from ..model import THREAD, Reference
from .engine import Options, ProcHandle, Scan

THREAD_LINKS: tuple[str, ...] = ("mnt", "net", "uts", "ipc", "cgroup")


class ThreadSource:
    name = "threads"

    def enabled(self, opts: Options) -> bool:
        return opts.threads

    def read_process(self, scan: Scan, proc: ProcHandle) -> None:
        if proc.process is None:
            return
        own = proc.process.ns
        tids = procfs.list_tasks(proc.dirfd)
        if len(tids) <= 1:
            return
        task_fd = procfs.open_dir("task", dir_fd=proc.dirfd)
        try:
            for tid in tids:
                if tid == proc.pid:
                    continue
                prefix = f"{tid}/ns/"
                for link in THREAD_LINKS:
                    try:
                        text = os.readlink(prefix + link, dir_fd=task_fd)
                    except FileNotFoundError:
                        break  # the thread exited
                    parsed = nsfs.parse_link(text)
                    if parsed is None or parsed[1] == own.get(link):
                        continue
                    ino = parsed[1]
                    if ino not in scan.resolved:
                        scan.learn_path(prefix + link, task_fd, ino, link)
                    proc.stage(link, ino, Reference(kind=THREAD, pid=proc.pid, tid=tid, link=link))
        finally:
            os.close(task_fd)
