"""SO_PEERCRED: who is at the other end of a unix socket (as the kernel recorded it
at connect() time, so the peer cannot change it afterwards)."""
from __future__ import annotations

import os
import socket
import struct

_UCRED = struct.Struct("iII")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process that connected ``sock`` (AF_UNIX only)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return _UCRED.unpack(raw)


def in_group(uid: int, gid: int, group: int) -> bool:
    """Whether ``uid`` (primary group ``gid``) belongs to ``group``, by the group
    database (supplementary groups too)."""
    if gid == group:
        return True
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    try:
        return group in os.getgrouplist(name, gid)
    except OSError:
        return False
