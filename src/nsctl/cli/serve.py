"""``nsctl serve``: the namespace model over HTTP (REST API, web page, /metrics).

Everything a user can get wrong (an address in use, a bad token file, a
non-loopback address without a token) is found before the server starts and
is one line on stderr.  By default the server listens only on the unix socket
:data:`DEFAULT_UNIX` (mode 0600: root alone may read); TCP needs a token, or
``--no-token`` on a loopback address (then every local user may read).  The listening sockets are bound first, so the
address is taken (and connections queue) before the first scan ends; the
model arrives from the refresher process moments later (see
:mod:`nsctl.serve.state`).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import stat
import sys

from .args import command_parser
from ..kernel.errors import NsctlError
from .common import UsageError

DEFAULT_PORT = 9477
DEFAULT_UNIX = "/run/nsctl/serve.sock"
MIN_TOKEN = 16


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl serve",
        description="Serve the namespace model over HTTP: a read API (the documents of the "
                    "--json commands), a web page, server-sent events of namespace changes "
                    "and Prometheus /metrics. Discovery runs in the background; requests "
                    "never wait for a scan.")
    p.add_argument("--listen", metavar="ADDR:PORT",
                   help=f"also (or only) listen on this TCP address (e.g. 127.0.0.1:"
                        f"{DEFAULT_PORT}; port 0 picks a free one); needs a token, or "
                        "--no-token on loopback")
    p.add_argument("--unix", metavar="PATH",
                   help=f"listen on this unix socket (default {DEFAULT_UNIX} when --listen "
                        "is not given)")
    p.add_argument("--unix-mode", metavar="OCTAL",
                   help="the unix socket's mode (default 0600, 0660 with --ops-group); "
                        "who can connect may read")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="TOKEN",
                       help="require 'Authorization: Bearer TOKEN' on TCP (visible in ps: "
                            "prefer --token-file)")
    token.add_argument("--token-file", metavar="FILE",
                       help="read the token from FILE (a regular file of this user, mode "
                            "0600 or 0400)")
    token.add_argument("--no-token", action="store_true",
                       help="serve loopback TCP without a token: every local user can then "
                            "read every process's namespaces")
    p.add_argument("--metrics-token-file", metavar="FILE",
                   help="a second token (same file rules) that opens GET /metrics only")
    p.add_argument("--tls-cert", metavar="FILE",
                   help="serve HTTPS on --listen with this certificate chain (PEM)")
    p.add_argument("--tls-key", metavar="FILE",
                   help="the certificate's private key (PEM; default: in --tls-cert); "
                        "a regular file of this user, mode 0600 or 0400")
    p.add_argument("--allow-ops", action="store_true",
                   help="serve POST/DELETE /api/v1/pins on the --unix socket (which it needs), "
                        "to root and --ops-group (checked with SO_PEERCRED)")
    p.add_argument("--ops-group", metavar="GROUP", help="a group whose members may pin/unpin")
    p.add_argument("--pin-dir", action="append", metavar="DIR",
                   help="a directory pins may go in (repeatable; default /run/netns); it "
                        "and every directory above it must be root's alone, checked at start "
                        "and on every pin")
    p.add_argument("--max-age", type=float, default=5.0, metavar="S",
                   help="rescan at least this often: no answer describes the host older than "
                        "S seconds plus a scan (default 5); process events rescan sooner")
    p.add_argument("--threads", action="store_true", help="also read every thread")
    p.add_argument("--no-cnproc", action="store_true",
                   help="do not use the process events connector: poll only")
    p.add_argument("--rate", type=float, default=20.0, metavar="N",
                   help="requests per second per client, with bursts of --burst (default 20; "
                        "0: no limit)")
    p.add_argument("--burst", type=int, default=100, metavar="N", help="(default 100)")
    p.add_argument("--max-connections", type=int, default=256, metavar="N",
                   help="open connections (event streams included) before answering 503 "
                        "(default 256)")
    p.add_argument("--max-peer-connections", type=int, default=32, metavar="N",
                   help="open connections from one peer (all of loopback is one on TCP, "
                        "each uid one on the unix socket; default 32)")
    p.add_argument("--max-streams", type=int, default=64, metavar="N",
                   help="open event streams (default 64; one peer: an eighth, at least 1)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="close a connection that has not sent a request's headers within "
                        "S seconds of connecting or of its last answer (default 10)")
    p.add_argument("--max-body", type=int, default=16 << 20, metavar="BYTES",
                   help="largest request body (default 16 MiB: a posted snapshot)")
    p.add_argument("--view-timeout", type=float, default=60.0, metavar="S",
                   help="give up on a view or pin after S seconds (default 60)")
    p.add_argument("--keepalive", type=float, default=15.0, metavar="S",
                   help="comment on idle event streams every S seconds (default 15)")
    p.add_argument("--access-log", action="store_true",
                   help="log every request on stderr (tokens never written)")
    p.add_argument("--refresher-timeout", type=float, metavar="S",
                   help="replace the background scanner when it has said nothing for S seconds "
                        "(default: 20 x --max-age, at least 60)")
    return p


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` -> (address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: write ADDR:PORT (e.g. 127.0.0.1:{DEFAULT_PORT} "
                         f"or [::1]:{DEFAULT_PORT})")
    return host, int(port)


def _address(host: str, port: int) -> tuple[int, tuple, bool]:
    """(family, sockaddr, loopback) for a host name or address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICSERV)
    except socket.gaierror as exc:
        raise UsageError(f"--listen {host}: {exc.strerror}") from None
    family, _type, _proto, _name, sockaddr = infos[0]
    loopback = all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)
    return family, sockaddr, loopback


def owner_only_file(path: str, option: str) -> int:
    """An open fd on ``path`` if it is a regular file of this user that no one else
    may read or write (a secret: a token, a TLS key); else UsageError.  Opened
    without blocking, so a FIFO put there cannot hang the start."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{option} {path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise UsageError(f"{option} {path}: owned by uid {info.st_uid}, not by this "
                             f"user (uid {os.geteuid()}): chown it")
        if info.st_mode & 0o077:
            raise UsageError(f"{option} {path}: mode {stat.S_IMODE(info.st_mode):04o} lets "
                             "others read or change it: chmod 600 it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _token_from_file(path: str, option: str) -> str:
    fd = owner_only_file(path, option)
    try:
        data = os.read(fd, 4097)
    finally:
        os.close(fd)
    if len(data) > 4096:
        raise UsageError(f"{option} {path}: longer than 4096 bytes")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: the token must be ASCII text") from None


def _checked_token(token: str, where: str) -> str:
    if len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(f"{where}: the token must be at least {MIN_TOKEN} printable "
                         "characters without spaces")
    return token


def read_token(args: argparse.Namespace) -> str | None:
    if args.token is not None:
        return _checked_token(args.token.strip(), "--token")
    if args.token_file is not None:
        return _checked_token(_token_from_file(args.token_file, "--token-file"),
                              args.token_file)
    return None


def read_metrics_token(args: argparse.Namespace, token: str | None) -> str | None:
    if args.metrics_token_file is None:
        return None
    if token is None:
        raise UsageError("--metrics-token-file needs --token-file (the token for the rest)")
    metrics = _checked_token(_token_from_file(args.metrics_token_file,
                                              "--metrics-token-file"),
                             args.metrics_token_file)
    if metrics == token:
        raise UsageError("--metrics-token-file: the same token as --token-file; give the "
                         "metrics scrape its own")
    return metrics


def check_tls(args: argparse.Namespace) -> None:
    """Load the certificate once now, so a bad file is one line before anything starts."""
    if args.tls_key and not args.tls_cert:
        raise UsageError("--tls-key needs --tls-cert")
    if not args.tls_cert:
        return
    if args.unix:
        raise UsageError("--tls-cert applies to every listener: not with --unix (run two "
                         "servers, or put TLS in front)")
    import ssl

    os.close(owner_only_file(args.tls_key or args.tls_cert,
                             "--tls-key" if args.tls_key else "--tls-cert (holding the key)"))
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert {args.tls_cert}: {getattr(exc, 'strerror', None) or exc}"
                         ) from None


def bind_tcp(family: int, sockaddr: tuple, text: str) -> socket.socket:
    # proto given, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    # (without it a small answer's body waits out the client's delayed ACK: 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise NsctlError(f"cannot listen on {text}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def bind_unix(path: str, mode: int, group: int | None) -> tuple[socket.socket, int]:
    """A listening unix socket at ``path`` with ``mode``; a stale socket file (nobody
    listening) is replaced, anything else there is an error.  Returns it and its inode."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NsctlError(f"--unix {path}: {exc.strerror}") from None
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise NsctlError(f"--unix {path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)           # left by a server that died
        except OSError as exc:
            raise NsctlError(f"--unix {path}: {exc.strerror}") from None
        else:
            raise NsctlError(f"--unix {path}: another server is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777)             # nobody can connect before the chmod below
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise NsctlError(f"--unix {path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    try:
        if group is not None:
            os.chown(path, -1, group)
        os.chmod(path, mode)
        sock.listen(512)
    except OSError as exc:
        sock.close()
        os.unlink(path)
        raise NsctlError(f"--unix {path}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock, os.stat(path).st_ino


def _group(name: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid if not name.isdigit() else grp.getgrgid(int(name)).gr_gid
    except KeyError:
        raise UsageError(f"--ops-group {name}: no such group") from None


def _pin_dirs(values: list[str] | None) -> list[str]:
    """Allowed pin directories, as they must appear in a client's path: absolute and
    canonical, and passing the pin directory rule now (:mod:`nsctl.ops.trusteddir`;
    every pin and unpin checks it again)."""
    from ..ops.pin import NETNS_DIR, check_pin_dir

    out = []
    for d in values or [NETNS_DIR]:
        if not d.startswith("/") or os.path.normpath(d) != d or d == "/":
            raise UsageError(f"--pin-dir {d}: give an absolute, normalised directory (not /)")
        cause = check_pin_dir(d, exact=True)
        if cause:
            raise UsageError(f"--pin-dir: {cause}" if cause.startswith(f"{d}: ")
                             else f"--pin-dir {d}: {cause}")
        out.append(d)
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.max_age > 0 or (args.refresher_timeout is not None and
                                not args.refresher_timeout > args.max_age):
        raise UsageError("--max-age must be positive, --refresher-timeout longer than it")
    if args.rate < 0 or min(args.burst, args.max_body, args.max_connections,
                            args.max_peer_connections, args.max_streams) < 1 or \
            not args.view_timeout > 0 or not args.header_timeout > 0:
        raise UsageError("--rate must be >= 0; --burst, --max-body, --max-connections, "
                         "--max-peer-connections, --max-streams, --header-timeout and "
                         "--view-timeout positive")
    # Before the default listener is chosen: operations are offered only on a unix
    # socket the caller named, never on one they did not ask for.
    if args.allow_ops and not args.unix:
        raise UsageError("--allow-ops needs --unix PATH (operations are served only on a "
                         "unix socket you name)")
    if args.listen is None and args.unix is None:
        if args.tls_cert or args.no_token or args.token or args.token_file:
            raise UsageError("--tls-cert, --token, --token-file and --no-token apply to TCP: "
                             "give --listen ADDR:PORT")
        args.unix = DEFAULT_UNIX
        _default_socket_dir(os.path.dirname(DEFAULT_UNIX))
    if args.ops_group and not args.allow_ops:
        raise UsageError("--ops-group needs --allow-ops")
    token = read_token(args)
    metrics_token = read_metrics_token(args, token)
    check_tls(args)
    group = _group(args.ops_group) if args.ops_group else None
    pin_dirs = _pin_dirs(args.pin_dir)
    try:
        mode = int(args.unix_mode, 8) if args.unix_mode else (0o660 if group is not None
                                                              else 0o600)
    except ValueError:
        raise UsageError(f"--unix-mode {args.unix_mode}: not an octal mode") from None
    if mode & ~0o777:
        raise UsageError(f"--unix-mode {args.unix_mode}: only permission bits (0-777)")

    tcp = None
    hosts = {"localhost", "127.0.0.1", "[::1]"}
    if args.listen is not None:
        host, port = parse_listen(args.listen)
        family, sockaddr, loopback = _address(host, port)
        if not loopback and token is None:
            raise UsageError(f"--listen {host}: not a loopback address; anyone who can reach "
                             "it could read this host's namespaces: give --token-file FILE")
        if token is None and not args.no_token:
            raise UsageError(f"--listen {host}: every local user could read every process's "
                             "namespaces: give --token-file FILE, or --no-token to allow that")
        hosts.add(f"[{host}]" if ":" in host else host.lower())
        tcp = (family, sockaddr, args.listen)
    elif args.no_token:
        raise UsageError("--no-token applies to --listen only")

    sockets: list[socket.socket] = []
    unix_ino = None
    try:
        if tcp is not None:
            sockets.append(bind_tcp(*tcp))
            if token is None:
                # Once listening, so that a failed start still says one line.
                print(f"nsctl serve: warning: --no-token: every local user can read every "
                      f"process's namespaces on {args.listen}", file=sys.stderr, flush=True)
        if args.unix:
            sock, unix_ino = bind_unix(args.unix, mode, group)
            sockets.append(sock)
        return _serve(args, sockets, token, hosts, group, pin_dirs, metrics_token)
    finally:
        for sock in sockets:
            sock.close()
        if args.unix and unix_ino is not None:
            _remove_socket(args.unix, unix_ino)


def _default_socket_dir(path: str) -> None:
    """The default socket's directory: made 0755 if missing; it must be a real
    directory of this user that no one else may write in (whoever could would
    replace the socket with their own)."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise NsctlError(f"{path}: cannot create the socket's directory: {exc.strerror}"
                         ) from None
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise NsctlError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise NsctlError(f"{path}: not a directory (the default socket's directory)")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise NsctlError(f"{path}: owned by uid {info.st_uid} or writable by others "
                         f"(mode {stat.S_IMODE(info.st_mode):04o}): the socket's directory "
                         "must be this user's, mode 0755")


def _remove_socket(path: str, ino: int) -> None:
    """Remove our socket file (only if it still is ours)."""
    try:
        if os.lstat(path).st_ino == ino:
            os.unlink(path)
    except OSError:
        pass


def _log_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _where(sock: socket.socket, tls: bool) -> str:
    if sock.family == socket.AF_UNIX:
        return f"unix:{sock.getsockname()}"
    host, port = sock.getsockname()[:2]
    return f"http{'s' if tls else ''}://{'[' + host + ']' if ':' in host else host}:{port}"


def _serve(args: argparse.Namespace, sockets: list[socket.socket], token: str | None,
           hosts: set[str], group: int | None, pin_dirs: list[str],
           metrics_token: str | None = None) -> int:
    import asyncio

    import uvicorn

    from ..serve.app import Service, create_app
    from ..serve.security import Policy, peer_protocol
    from ..serve.privileges import Launcher, drop_privileges
    from ..serve.state import Store, Worker

    # Helpers come from a privileged launcher; this process, which parses requests,
    # keeps no capability (before any thread: the kernel keeps them per thread).
    launcher = Launcher()
    try:
        drop_privileges()
    except NsctlError:
        launcher.close()
        raise
    store = Store(interval=max(0.05, args.max_age / 2), max_age=args.max_age,
                  threads=args.threads, cnproc=not args.no_cnproc,
                  hang_after=args.refresher_timeout, spawner=launcher)
    worker = Worker(timeout=args.view_timeout, spawner=launcher)
    net_worker = Worker(timeout=args.view_timeout, spawner=launcher)
    policy = Policy(token=token, hosts=hosts, rate=args.rate, burst=args.burst,
                    max_body=args.max_body, ops_group=group, metrics_token=metrics_token,
                    header_timeout=args.header_timeout,
                    peer_connections=args.max_peer_connections,
                    max_streams=args.max_streams, peer_streams=max(1, args.max_streams // 8))
    service = Service(store, worker, policy, allow_ops=args.allow_ops, pin_dirs=pin_dirs,
                      keepalive=args.keepalive, net_worker=net_worker,
                      access_log=_log_line if args.access_log else None)
    app = create_app(service)
    config = uvicorn.Config(app, http=peer_protocol(policy), ws="none", lifespan="off",
                            proxy_headers=False, server_header=False, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=3,
                            timeout_keep_alive=max(1, round(args.header_timeout)),
                            limit_concurrency=args.max_connections,
                            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            service.hub.attach(asyncio.get_running_loop())
            await super().startup(sockets=sockets)

        def handle_exit(self, sig: int, frame) -> None:
            super().handle_exit(sig, frame)
            if service.hub.loop is not None:
                service.hub.loop.call_soon_threadsafe(service.hub.close)

    server = Server(config)
    # uvicorn re-raises the signal that stopped it once it is done; ours only notes it,
    # so the cleanup below (helpers, the socket file) always runs.
    stopped_by: list[int] = []

    def stop(signum: int, frame) -> None:
        stopped_by.append(signum)
        server.should_exit = True     # a signal before uvicorn took over still stops it

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    store.start()
    try:
        print(f"nsctl serve: listening on {', '.join(_where(s, bool(args.tls_cert)) for s in sockets)}"
              f"{' (token required)' if token else ''}"
              f"{' (ops on the unix socket)' if args.allow_ops else ''}",
              file=sys.stderr, flush=True)
        server.run(sockets=sockets)
    finally:
        service.hub.closed = True
        worker.stop()
        net_worker.stop()
        store.stop()
        launcher.close()
    return 0 if server.started or stopped_by else 1
