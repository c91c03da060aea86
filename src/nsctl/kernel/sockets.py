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
