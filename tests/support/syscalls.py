"""The kernel calls the fixtures make themselves: unshare, setns, mount, prctl (ctypes).

Nothing here goes through nsctl, so what a fixture builds with these is known
independently of the code under test.
"""
from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
TYPE_OF_FLAG = {CLONE_NEWTIME: "time", CLONE_NEWNS: "mnt", CLONE_NEWCGROUP: "cgroup",
                CLONE_NEWUTS: "uts", CLONE_NEWIPC: "ipc", CLONE_NEWUSER: "user",
                CLONE_NEWPID: "pid", CLONE_NEWNET: "net"}
NS_LINKS = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")
LINK_TYPE = {link: link.replace("_for_children", "") for link in NS_LINKS}

NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_NSTYPE = 0xB703
NS_GET_OWNER_UID = 0xB704
NS_GET_ID = (2 << 30) | (8 << 16) | (0xB7 << 8) | 13
PR_SET_CHILD_SUBREAPER = 36

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    check(libc.unshare(flags), f"unshare(0x{flags:x})")


def setns(fd: int, flags: int = 0) -> None:
    check(libc.setns(fd, flags), "setns")


def bind_mount(source: str | Path, target: str | Path) -> None:
    check(libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None),
           f"mount --bind {source} {target}")


def make_rprivate(path: str = "/") -> None:
    check(libc.mount(None, path.encode(), None, MS_REC | MS_PRIVATE, None),
           f"mount --make-rprivate {path}")


def umount(target: str | Path) -> None:
    """Detach a mount (lazily: the tests never wait for busy mounts)."""
    check(libc.umount2(os.fsencode(target), MNT_DETACH), f"umount {target}")


def set_comm(name: str) -> None:
    """Name the calling thread (what ps and the leak report show), 15 bytes at most."""
    libc.prctl(15, name.encode()[:15], 0, 0, 0)   # PR_SET_NAME


def set_child_subreaper() -> None:
    """Orphans of our helpers come back to us, so they can be found and reaped."""
    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def new_userns() -> None:
    """unshare a user namespace and map root to the caller's own IDs (so it can nest)."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def can_list_mounts() -> bool:
    """Whether this kernel has listmount(2) (Linux 6.8; asked of it, not of its version):
    a NULL request fails with EFAULT where it exists, ENOSYS where not."""
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(458, None, None, 0, 0) == -1 and ctypes.get_errno() == errno.EFAULT


# --- a seccomp filter that refuses one system call -------------------------------------------

SYS_PIDFD_OPEN = 434   # the same number on every architecture (new calls are numbered alike)

# ``python -c`` code: refuse system call NR with ERRNO (argv[1], argv[2]) by a seccomp
# filter, then exec argv[3:]: the kernel itself answers as a host without the call, or
# a container whose filter forbids it, would.
SECCOMP_DENY_THEN_EXEC = """
import ctypes, os, struct, sys
nr, err = int(sys.argv[1]), int(sys.argv[2])
def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
prog = b"".join([
    insn(0x20, 0, 0, 0),                     # A = seccomp_data.nr
    insn(0x15, 0, 1, nr),                    # A == nr ? next : skip one
    insn(0x06, 0, 0, 0x00050000 | err),      # SECCOMP_RET_ERRNO | err
    insn(0x06, 0, 0, 0x7FFF0000),            # SECCOMP_RET_ALLOW
])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or \\
        libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:   # NO_NEW_PRIVS, SET_SECCOMP
    raise OSError(ctypes.get_errno(), "seccomp")
os.execv(sys.argv[3], sys.argv[3:])
"""


def deny_syscall(nr: int, err: int) -> list[str]:
    """A command prefix: what follows runs with system call ``nr`` failing with ``err``."""
    import sys

    return [sys.executable, "-c", SECCOMP_DENY_THEN_EXEC, str(nr), str(err)]
