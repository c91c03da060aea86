"""What a hostile local user does to ``nsctl serve``, as a program run as that user.

tests/test_hostile_serve.py runs this file's text with ``python -I -c`` under
``setpriv --reuid 65534 ...`` (and ``nsenter`` where the server's socket is in
another mount namespace), so it uses the standard library only and needs no
file of the tests to be readable by that user.  ``argv[1]`` is a JSON object:
``{"do": COMMAND, ...}``.  Each command prints JSON lines: the long-lived ones
(``hold``, ``streams``) a first line once their connections are open, then
keep them until their stdin closes (or ``seconds`` pass) and print a last line
with what they saw.

A target is ``unix:PATH`` or ``tcp:HOST:PORT``; ``source`` binds a TCP client
to that loopback address (127.0.0.2 is loopback as much as 127.0.0.1 is).
"""
from __future__ import annotations

import errno
import json
import select
import socket
import sys
import time


def connect(target: str, source: str | None = None, timeout: float = 10.0) -> socket.socket:
    kind, _, where = target.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except BaseException:
            sock.close()
            raise
        return sock
    host, _, port = where.rpartition(":")
    return socket.create_connection((host, int(port)), timeout,
                                    source_address=(source, 0) if source else None)


def host_of(target: str) -> str:
    """The Host header a client of ``target`` sends (HOST:PORT on TCP)."""
    kind, _, where = target.partition(":")
    return where if kind == "tcp" else "localhost"


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None,
                  body: bytes = b"", host: str = "localhost") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    # Headers may carry bytes above 127 (Last-Event-ID: ²): sent as latin-1, as HTTP has it.
    return head.encode("latin-1") + b"\r\n" + body


def read_answer(sock: socket.socket, timeout: float, head_only: bool = False) -> dict:
    """Status and body of one answer (the body up to EOF: ``Connection: close``); with
    ``head_only``, of a 200 only its status line and headers (an event stream does
    not end)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        if head_only and b"\r\n\r\n" in data and data.split(b" ", 2)[1] == b"200":
            break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return {"status": None, "body": ""}
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked" and not head_only:
        body = _unchunk(body)
    return {"status": int(lines[0].split()[1]), "headers": headers,
            "body": body.decode("utf-8", "replace")}


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return out


def exchange(target: str, raw: bytes, source: str | None = None, timeout: float = 30.0,
             head_only: bool = False) -> dict:
    with connect(target, source, timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass                  # answered and closed before the whole request went
        return read_answer(sock, timeout, head_only)


def _wait_for_close_of_stdin(seconds: float) -> None:
    select.select([sys.stdin], [], [], seconds)


def _say(obj: object) -> None:
    print(json.dumps(obj), flush=True)


# --- the commands ---------------------------------------------------------------------------

def do_connect(args: dict) -> dict:
    """Only connect: the errno's name if refused, else None."""
    try:
        connect(args["target"]).close()
    except OSError as exc:
        return {"errno": errno.errorcode.get(exc.errno or 0, str(exc))}
    return {"errno": None}


def do_requests(args: dict) -> dict:
    """``count`` requests (default 1), each on a new connection; their answers.  The
    body: ``body`` (text; ``NESTED`` in it stands for ``nested`` levels of lists, or
    of objects with ``"nest": "object"``: what a recursive parser chokes on), or what
    a GET of ``body_from`` answered (a snapshot to post back), sent as ``body_type``."""
    headers = dict(args.get("headers") or {})
    body = args.get("body", "").encode()
    if args.get("nested"):
        depth = args["nested"]
        deep = b'{"a":' * depth + b"1" + b"}" * depth if args.get("nest") == "object" \
            else b"[" * depth + b"]" * depth
        body = body.replace(b"NESTED", deep) if body else deep
    if args.get("body_from"):
        auth = {k: v for k, v in headers.items() if k.lower() == "authorization"}
        got = exchange(args["target"], request_bytes("GET", args["body_from"], auth,
                                                     host=host_of(args["target"])))
        assert got["status"] == 200, got
        body = got["body"].encode()
    if "body_type" in args:
        headers["Content-Type"] = args["body_type"]
    answers = []
    for _ in range(args.get("count", 1)):
        raw = request_bytes(args.get("method", "GET"), args["path"], headers, body,
                            host_of(args["target"]))
        answers.append(exchange(args["target"], raw, args.get("source"),
                                head_only=args.get("head_only", False)))
    return {"answers": answers}


def do_batch(args: dict) -> dict:
    """Each of ``requests`` (as for ``requests``; the target is this command's unless
    given); their answers, one list per request."""
    return {"answers": [do_requests({"target": args["target"], **one})["answers"]
                        for one in args["requests"]]}


def _receive(readable: list, socks: list[socket.socket], got: list[bytes],
             ended: list[float | None], since: float) -> None:
    """Read what came on each readable socket into ``got``; at EOF note in ``ended``
    how many seconds after ``since`` it came."""
    for sock in readable:
        i = socks.index(sock)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        got[i] += chunk
        if not chunk:
            ended[i] = round(time.monotonic() - since, 2)


def do_bomb(args: dict) -> dict:
    """``count`` POSTs at once of a body ``[{},{},...]`` of ``size`` bytes (with
    Content-Length), each on its own connection; their statuses and when each came."""
    items = (args["size"] - 1) // 3
    body = b"[" + b"{}," * (items - 1) + b"{}]"
    raw = request_bytes("POST", args["path"], {"Content-Type": "application/json",
                                               **(args.get("headers") or {})}, body,
                        host_of(args["target"]))
    socks = [connect(args["target"], timeout=60) for _ in range(args["count"])]
    started = time.monotonic()
    sent = [0] * len(socks)
    got: list[bytes] = [b""] * len(socks)
    done: list[float | None] = [None] * len(socks)
    for s in socks:
        s.setblocking(False)
    while any(d is None for d in done) and time.monotonic() - started < 60:
        want_write = [s for i, s in enumerate(socks) if done[i] is None and sent[i] < len(raw)]
        want_read = [s for i, s in enumerate(socks) if done[i] is None]
        readable, writable, _ = select.select(want_read, want_write, [], 1.0)
        for s in writable:
            i = socks.index(s)
            try:
                sent[i] += s.send(raw[sent[i]:sent[i] + (1 << 20)])
            except (BrokenPipeError, ConnectionResetError):
                sent[i] = len(raw)
        _receive(readable, socks, got, done, started)
    for s in socks:
        s.close()
    return {"answers": [{"status": int(g.split()[1]) if g else None,
                         "body": g.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")[:500],
                         "after": d, "sent": n}
                        for g, d, n in zip(got, done, sent, strict=True)],
            "size": len(body)}


def do_hold(args: dict) -> None:
    """Open ``count`` connections and send nothing more on them than ``send`` (e.g. a
    request's headers and the start of its body); the first ``trickle`` of them send
    a request's headers one byte every half second, never finishing them.  First
    line: how many were answered at once (and with what status line) and how many
    are held; last line: after how many seconds the server closed each held one."""
    target = args["target"]
    socks = [connect(target, args.get("source")) for _ in range(args["count"])]
    for sock in socks:
        try:
            sock.sendall(args.get("send", "").encode())
        except OSError:
            pass                  # answered 503 and closed already
    opened = time.monotonic()
    trickle = b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
    sent = [0] * len(socks)
    got: list[bytes] = [b""] * len(socks)
    closed: list[float | None] = [None] * len(socks)
    reported = False
    next_byte = opened
    while time.monotonic() - opened < args["seconds"]:
        now = time.monotonic()
        if not reported and now - opened > args.get("settle", 1.0):
            busy = [g.split(b"\r\n")[0].decode("latin-1") for g in got if g]
            _say({"answered_at_once": busy,
                  "held": sum(1 for c, g in zip(closed, got, strict=True) if c is None and not g)})
            reported = True
        if now >= next_byte:
            for i in range(min(args.get("trickle", 0), len(socks))):
                if closed[i] is None and not got[i]:
                    try:
                        socks[i].send(trickle[sent[i]:sent[i] + 1])
                        sent[i] += 1
                    except OSError:
                        pass
            next_byte = now + 0.5
        open_ = [s for s, c in zip(socks, closed, strict=True) if c is None]
        if not open_ and reported:
            break
        readable, _, _ = select.select([*open_, sys.stdin] if reported else open_, [], [],
                                       0.1)
        if sys.stdin in readable:
            break
        _receive([s for s in readable if s is not sys.stdin], socks, got, closed, opened)
    for s in socks:
        s.close()
    _say({"closed_after": [c for c, g in zip(closed, got, strict=True) if not g],
          "trickled": [closed[i] for i in range(min(args.get("trickle", 0), len(socks)))]})


def do_streams(args: dict) -> None:
    """Open ``count`` event streams one after the other and keep the ones that were
    answered 200; first line: each one's status and error; last line after stdin
    closes."""
    socks, answers = [], []
    for _ in range(args["count"]):
        sock = connect(args["target"], timeout=30)
        sock.sendall(request_bytes("GET", args.get("path", "/api/v1/events"),
                                   args.get("headers"), host=host_of(args["target"])))
        answer = read_answer(sock, 30, head_only=True)
        answers.append({"status": answer["status"], "body": answer["body"][:300]})
        if answer["status"] == 200:
            socks.append(sock)
        else:
            sock.close()
    _say({"answers": answers})
    _wait_for_close_of_stdin(args.get("seconds", 60))
    for sock in socks:
        sock.close()
    _say({"closed": len(socks)})


def main() -> None:
    args = json.loads(sys.argv[1])
    result = globals()[f"do_{args['do']}"](args)
    if result is not None:
        _say(result)


if __name__ == "__main__":
    main()
