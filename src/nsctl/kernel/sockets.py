"""The network namespace a socket belongs to (SIOCGSKNS, Linux 4.9)."""
from __future__ import annotations

import fcntl

from .errors import classify

SIOCGSKNS = 0x894C


def socket_netns(sockfd: int) -> int:
    """A new nsfs fd for the network namespace of the socket behind ``sockfd``."""
    try:
        return fcntl.ioctl(sockfd, SIOCGSKNS)
    except OSError as exc:
        raise classify(exc, "SIOCGSKNS") from exc


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sh22x"   # struct ifreq: the name, then ifr_flags in the 24-byte union


def link_up(ifname: str) -> None:
    """Set interface ``ifname`` of our network namespace up (SIOCGIFFLAGS, SIOCSIFFLAGS
    on a datagram socket: no netlink library needed for one flag)."""
    import socket
    import struct

    name = ifname.encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            req = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack(_IFREQ, name, 0))
            flags = struct.unpack(_IFREQ, req)[1]
            if not flags & IFF_UP:
                fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack(_IFREQ, name, flags | IFF_UP))
        except OSError as exc:
            raise classify(exc, f"set {ifname} up") from exc
