"""SO_PEERCRED: who is at the other end of a unix socket (as the kernel recorded it
at connect() time, so the peer cannot change it afterwards)."""
from __future__ import annotations

import os
import socket
import struct

_UCRED = struct.Struct("iII")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)   # Linux 4.13
_GROUPS_BUF = 1024     # the most Python's getsockopt reads: 256 groups


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process that connected ``sock`` (AF_UNIX only)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return _UCRED.unpack(raw)


def peer_groups(sock: socket.socket) -> tuple[int, ...] | None:
    """The supplementary groups the peer had at connect() time (SO_PEERGROUPS), or
    None where the kernel cannot say (before 4.13, or more groups than we read)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _GROUPS_BUF)
    except OSError:   # ENOPROTOOPT: an old kernel; ERANGE: more than 256 groups
        return None
    return struct.unpack(f"{len(raw) // 4}I", raw[:len(raw) // 4 * 4])


def in_group(uid: int, gid: int, group: int, groups: tuple[int, ...] | None = None) -> bool:
    """Whether the peer (``uid``, primary group ``gid``, supplementary ``groups`` as
    SO_PEERGROUPS gave them) belongs to ``group``.  Without ``groups``, by the group
    database (a process that dropped its groups still counts as a member then)."""
    if gid == group:
        return True
    if groups is not None:
        return group in groups
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    try:
        return group in os.getgrouplist(name, gid)
    except OSError:
        return False
