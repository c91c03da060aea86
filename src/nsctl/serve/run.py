"""Run the service for a :class:`~nsctl.serve.config.Config` until SIGINT or SIGTERM.

The listening sockets are bound first, so the address is taken (and connections
queue) before the first scan ends; the model arrives from the refresher process
moments later (see :mod:`nsctl.serve.state`).  Then the privileged launcher starts,
this process drops every capability, and uvicorn serves the sockets.  Whatever
stops the server, its helper processes end and its unix socket file is removed.
"""
from __future__ import annotations

import os
import signal
import socket
import stat
import sys

from ..kernel.errors import NsctlError
from . import DEFAULT_UNIX
from .config import Config


def run(config: Config) -> int:
    """Serve until SIGINT or SIGTERM (this process's handlers for them are replaced).
    Returns the exit status: 0 once stopped, 1 if the server never started.  A socket
    that cannot be bound is an NsctlError, raised before anything else starts."""
    if config.listen is None and config.unix is None:
        _default_socket_dir(os.path.dirname(DEFAULT_UNIX))
    sockets: list[socket.socket] = []
    unix_ino = None
    try:
        if config.tcp is not None:
            sockets.append(bind_tcp(*config.tcp, config.listen or ""))
            if config.bearer is None:
                # Once listening, so that a failed start still says one line.
                print(f"nsctl serve: warning: --no-token: every local user can read every "
                      f"process's namespaces on {config.listen}", file=sys.stderr, flush=True)
        if config.unix_socket:
            sock, unix_ino = bind_unix(config.unix_socket, config.socket_mode, config.group)
            sockets.append(sock)
        return _serve(config, sockets)
    finally:
        for sock in sockets:
            sock.close()
        if config.unix_socket and unix_ino is not None:
            _remove_socket(config.unix_socket, unix_ino)


def bind_tcp(family: int, sockaddr: tuple, text: str) -> socket.socket:
    # proto given, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP
    # (without it a small answer's body waits out the client's delayed ACK).
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


def _serve(config: Config, sockets: list[socket.socket]) -> int:
    import asyncio

    import uvicorn

    from .app import Service, create_app
    from .privileges import Launcher, drop_privileges
    from .security import Policy, peer_protocol
    from .state import Store, Worker

    # Helpers come from a privileged launcher; this process, which parses requests,
    # keeps no capability (before any thread: the kernel keeps them per thread).
    launcher = Launcher()
    try:
        drop_privileges()
    except NsctlError:
        launcher.close()
        raise
    store = Store(interval=max(0.05, config.max_age / 2), max_age=config.max_age,
                  threads=config.threads, cnproc=config.cnproc,
                  hang_after=config.refresher_timeout, spawner=launcher,
                  exclude_tree=os.getpid())
    worker = Worker(timeout=config.view_timeout, spawner=launcher)
    net_worker = Worker(timeout=config.view_timeout, spawner=launcher)
    policy = Policy(token=config.bearer, hosts=set(config.hosts), rate=config.rate,
                    burst=config.burst, max_body=config.max_body, ops_group=config.group,
                    metrics_token=config.metrics_bearer,
                    header_timeout=config.header_timeout,
                    peer_connections=config.max_peer_connections,
                    max_streams=config.max_streams,
                    peer_streams=max(1, config.max_streams // 8))
    service = Service(store, worker, policy, allow_ops=config.allow_ops,
                      pin_dirs=list(config.allowed_pin_dirs), keepalive=config.keepalive,
                      net_worker=net_worker,
                      access_log=_log_line if config.access_log else None)
    app = create_app(service)
    settings = uvicorn.Config(app, http=peer_protocol(policy), ws="none", lifespan="off",
                              proxy_headers=False, server_header=False, log_level="warning",
                              access_log=False, timeout_graceful_shutdown=3,
                              timeout_keep_alive=max(1, round(config.header_timeout)),
                              limit_concurrency=config.max_connections,
                              ssl_certfile=config.tls_cert, ssl_keyfile=config.tls_key)

    class Server(uvicorn.Server):
        wake: asyncio.Event | None = None

        async def startup(self, sockets=None) -> None:
            service.hub.attach(asyncio.get_running_loop())
            await super().startup(sockets=sockets)

        async def main_loop(self) -> None:
            # uvicorn's own loop wakes ten times a second to see whether to stop (0.15 %
            # of a core for nothing); this one wakes once a second, for the Date header
            # (on_tick's counter 0 renews it), or at once when told to stop.
            self.wake = asyncio.Event()
            while not await self.on_tick(0):
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except TimeoutError:
                    pass

        def handle_exit(self, sig: int, frame) -> None:
            super().handle_exit(sig, frame)
            self.stop_soon()

        def stop_soon(self) -> None:
            """Wake the main loop to see should_exit (from a signal handler too)."""
            loop = service.hub.loop
            if loop is not None:
                loop.call_soon_threadsafe(service.hub.close)
                if self.wake is not None:
                    loop.call_soon_threadsafe(self.wake.set)

    server = Server(settings)
    # uvicorn re-raises the signal that stopped it once it is done; ours only notes it,
    # so the cleanup below (helpers, the socket file) always runs.
    stopped_by: list[int] = []

    def stop(signum: int, frame) -> None:
        stopped_by.append(signum)
        server.should_exit = True     # a signal before uvicorn took over still stops it
        server.stop_soon()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    store.start()
    try:
        print(f"nsctl serve: listening on "
              f"{', '.join(_where(s, bool(config.tls_cert)) for s in sockets)}"
              f"{' (token required)' if config.bearer else ''}"
              f"{' (ops on the unix socket)' if config.allow_ops else ''}",
              file=sys.stderr, flush=True)
        server.run(sockets=sockets)
    finally:
        service.hub.closed = True
        worker.stop()
        net_worker.stop()
        store.stop()
        launcher.close()
    return 0 if server.started or stopped_by else 1
