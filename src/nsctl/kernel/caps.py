"""Capabilities of the calling thread: capget/capset and the prctl calls around them.

Thin wrappers through ctypes, no policy (see :mod:`nsctl.serve.privileges`).
Every call here acts on the calling thread only: the kernel keeps capability
sets, the bounding set, securebits and no_new_privs per thread (a new thread
copies its creator's), so a process that wants them gone everywhere calls
these before it starts any thread.

A call the kernel lacks or refuses answers False instead of raising, so the
caller decides what it may go on without.
"""
from __future__ import annotations

import errno
import os

from .libc import libc

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# securebits (linux/securebits.h)
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7

# Root is not special at exec, a uid change keeps the sets as they are, no ambient
# capability can be raised, and none of this can be undone.
SECURE_NOROOT_LOCKED = (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                        SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                        SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)


class CapSets:
    """The calling thread's capability sets, one bit per capability.  (A plain class:
    importing dataclasses would cost every command that forks a child.)"""

    __slots__ = ("effective", "permitted", "inheritable")

    def __init__(self, effective: int, permitted: int, inheritable: int) -> None:
        self.effective, self.permitted, self.inheritable = effective, permitted, inheritable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CapSets) and (self.effective, self.permitted,
                                               self.inheritable) == (
            other.effective, other.permitted, other.inheritable)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"CapSets(effective={self.effective:#x}, permitted={self.permitted:#x}, "
                f"inheritable={self.inheritable:#x})")

    def empty(self) -> bool:
        return not (self.effective or self.permitted or self.inheritable)


def _structs():
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    return Header, Data * 2


def _raise() -> None:
    import ctypes

    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))


def get() -> CapSets:
    """capget(2) of the calling thread."""
    header_t, data_t = _structs()
    import ctypes

    header, data = header_t(_LINUX_CAPABILITY_VERSION_3, 0), data_t()
    if libc().capget(ctypes.byref(header), ctypes.byref(data)) != 0:
        _raise()
    return CapSets(*(getattr(data[0], f) | getattr(data[1], f) << 32
                     for f in ("effective", "permitted", "inheritable")))


def clear() -> None:
    """capset(2): empty the effective, permitted and inheritable sets (never refused)."""
    import ctypes

    header_t, data_t = _structs()
    header, data = header_t(_LINUX_CAPABILITY_VERSION_3, 0), data_t()
    if libc().capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        _raise()


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    """0, or the errno of a refused prctl(2)."""
    from .libc import prctl

    try:
        prctl(option, arg2, arg3)
    except OSError as exc:
        return exc.errno or errno.EINVAL
    return 0


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63          # the drop loop below stops at the first number the kernel lacks


def drop_bounding() -> bool:
    """Empty the bounding set; False if refused (it takes CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        err = _prctl(PR_CAPBSET_DROP, cap)
        if err == errno.EINVAL:     # past the kernel's last capability
            break
        if err:
            return False
    return True


def clear_ambient() -> bool:
    """Empty the ambient set; False where the kernel has none (before 4.3)."""
    return _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) == 0


def keep_all_ambient() -> bool:
    """Make every permitted capability inheritable and ambient, so that an exec keeps
    them (nsenter --keep-caps); False if the kernel refuses."""
    import ctypes

    sets = get()
    header_t, data_t = _structs()
    header, data = header_t(_LINUX_CAPABILITY_VERSION_3, 0), data_t()
    for half in (0, 1):
        shift = 32 * half
        data[half].effective = (sets.effective >> shift) & 0xFFFFFFFF
        data[half].permitted = (sets.permitted >> shift) & 0xFFFFFFFF
        data[half].inheritable = (sets.permitted >> shift) & 0xFFFFFFFF
    if libc().capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        return False
    return all(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap) == 0
               for cap in range(last_cap() + 1) if sets.permitted >> cap & 1)


def set_securebits(bits: int) -> bool:
    """Set (and lock, with the *_LOCKED bits) securebits; False if refused (it takes
    CAP_SETPCAP)."""
    return _prctl(PR_SET_SECUREBITS, bits) == 0


def set_no_new_privs() -> bool:
    """No execve of this thread or its children may grant privileges again
    (set-user-ID bits and file capabilities are ignored); False before Linux 3.5."""
    return _prctl(PR_SET_NO_NEW_PRIVS, 1) == 0


def set_parent_death_signal(sig: int) -> bool:
    """The kernel sends ``sig`` to this process when the thread that forked it ends."""
    return _prctl(PR_SET_PDEATHSIG, sig) == 0
