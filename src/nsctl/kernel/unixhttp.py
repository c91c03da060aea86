"""HTTP/1.1 GETs over a unix socket, and bounded reads of an engine's metadata files.

Container engines answer on a unix socket (Docker's ``/run/docker.sock``,
Podman's ``/run/podman/podman.sock``).  A few GETs need no client library: one
request with ``Connection: close``, the answer read to its end.  What answers
is treated as hostile: the socket path must be a socket (not followed if it is
a symlink), every step runs against one deadline, and the answer is cut off at
a size cap (:class:`HttpError` names what went wrong).  The engines' own files
are read the same way: :func:`read_file` opens nothing but a regular file (no
symlink, FIFO or device), without blocking, up to a size cap.
"""
from __future__ import annotations

import os
import socket
import stat
import time

from .errors import NsctlError

#: The most an engine's answer or file may hold.
MAX_BYTES = 16 << 20


class HttpError(NsctlError):
    """The engine could not be asked, or its answer was not one nsctl can read."""


def _connect(path: str, deadline: float) -> socket.socket:
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise HttpError(f"no API socket at {path} ({exc.strerror})") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise HttpError(f"{path} is not a socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.connect(path)
    except TimeoutError:
        sock.close()
        raise HttpError(f"{path}: no answer in time") from None
    except OSError as exc:
        sock.close()
        raise HttpError(f"{path}: {exc.strerror or exc}") from None
    return sock


def _request(target: str) -> bytes:
    if any(c in target for c in "\r\n ") or not target.startswith("/"):
        raise HttpError(f"bad request target {target!r}")
    return (f"GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: nsctl\r\n"
            "Accept: application/json\r\nConnection: close\r\n\r\n").encode("ascii")


def _recv(sock: socket.socket, deadline: float, path: str) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HttpError(f"{path}: no answer in time")
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise HttpError(f"{path}: no answer in time") from None
    except OSError as exc:
        raise HttpError(f"{path}: {exc.strerror or exc}") from None


def get(path: str, target: str, timeout: float, limit: int = MAX_BYTES) -> bytes:
    """The body of ``GET target`` asked of the HTTP server on the unix socket ``path``.

    HttpError when the socket is missing or refuses, the answer takes longer
    than ``timeout`` seconds in all, is larger than ``limit`` bytes, is not
    HTTP/1.x or has a status other than 200.
    """
    deadline = time.monotonic() + timeout
    sock = _connect(path, deadline)
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.sendall(_request(target))
        except (TimeoutError, OSError) as exc:
            raise HttpError(f"{path}: cannot send the request ({exc})") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            data = _recv(sock, deadline, path)
            if not data:
                break
            size += len(data)
            if size > limit + 65536:
                raise HttpError(f"{path}: answer larger than {limit} bytes")
            chunks.append(data)
    finally:
        sock.close()
    try:
        return parse_response(b"".join(chunks), limit)
    except HttpError as exc:
        raise HttpError(f"{path}: {exc}") from None


def open_stream(path: str, target: str, timeout: float) -> socket.socket:
    """A connection to the unix socket ``path`` that has sent ``GET target`` and is left
    non-blocking for the caller to poll: for an answer that streams (Docker's
    ``/events``), whose every arrival the caller only notes and throws away."""
    deadline = time.monotonic() + timeout
    sock = _connect(path, deadline)
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(_request(target))
        sock.setblocking(False)
    except (TimeoutError, OSError) as exc:
        sock.close()
        raise HttpError(f"{path}: cannot send the request ({exc})") from None
    return sock


def drain(sock: socket.socket, limit: int = 1 << 20) -> bool:
    """Read and drop what a non-blocking stream has ready (at most ``limit`` bytes);
    False once the other end closed it or it failed."""
    got = 0
    while got < limit:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        got += len(data)
    return True


def parse_response(raw: bytes, limit: int = MAX_BYTES) -> bytes:
    """The body of one whole HTTP/1.x response (read to the connection's end)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise HttpError("the answer is not HTTP (no end of headers)")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or not status[0].startswith(b"HTTP/1."):
        raise HttpError("the answer is not HTTP/1.x")
    if status[1] != b"200":
        raise HttpError(f"HTTP status {status[1].decode('ascii', 'replace')[:3]}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = _unchunk(body)
    elif b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            raise HttpError("bad Content-Length") from None
        if len(body) < length:
            raise HttpError("the answer ended early")
        body = body[:length]
    if len(body) > limit:
        raise HttpError(f"answer larger than {limit} bytes")
    return body


def _unchunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise HttpError("the answer ended inside a chunk")
        try:
            size = int(data[pos:end].split(b";", 1)[0], 16)
        except ValueError:
            raise HttpError("bad chunk size") from None
        if size == 0:
            return b"".join(out)
        start = end + 2
        if size < 0 or start + size > len(data):
            raise HttpError("the answer ended inside a chunk")
        out.append(data[start:start + size])
        pos = start + size + 2


def read_file(path: str, limit: int = MAX_BYTES) -> bytes:
    """The whole regular file at ``path``: never through a symlink in its last
    component, never a FIFO or device, at most ``limit`` bytes (OSError or
    HttpError otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HttpError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise HttpError(f"{path} is larger than {limit} bytes")
        chunks = []
        size = 0
        while True:
            data = os.read(fd, 1 << 20)
            if not data:
                break
            size += len(data)
            if size > limit:
                raise HttpError(f"{path} is larger than {limit} bytes")
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)
