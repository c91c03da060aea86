"""The service's settings: one frozen :class:`Config`, checked when it is made.

Everything a user can get wrong (a bad address, a token file others may read, a
non-loopback address without a token, a pin directory someone else may write) is
found here, before anything listens, and is one :class:`ConfigError` whose text is
the one line the user reads.  ``nsctl serve`` builds a Config from its options; a
Python program builds one directly and hands it to :func:`nsctl.serve.run.run`.
The settings are named as the command line names them (``max_age`` is
``--max-age``); what the checks resolve (the token read from its file, the group's
id, the TCP address) is kept beside them.
"""
from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass, field

from ..kernel.errors import NsctlError
from . import DEFAULT_PORT, DEFAULT_UNIX

MIN_TOKEN = 16


class ConfigError(NsctlError):
    """A setting the service cannot run with.  ``option`` names the setting as the
    command line spells it (``--listen``), ``cause`` says what is wrong with it.  The
    message is ``HEAD: CAUSE`` (``sep`` between them), where the head is ``about`` if
    given (a file the option named), else the option and, if given, its ``value``."""

    def __init__(self, option: str, cause: str, value: object = None, *,
                 about: str | None = None, sep: str = ": ") -> None:
        head = about if about is not None else (option if value is None
                                                else f"{option} {value}")
        super().__init__(f"{head}{sep}{cause}")
        self.option = option
        self.cause = cause


@dataclass(frozen=True)
class Config:
    """Every setting of the service, checked together when the Config is made.

    Listeners: ``listen`` (TCP, ``ADDR:PORT``) and/or ``unix`` (a socket path);
    neither means the unix socket :data:`~nsctl.serve.DEFAULT_UNIX`.  TCP needs one
    of ``token``, ``token_file``, or ``no_token`` on a loopback address.
    ``unix_mode`` is an int or an octal string; None: 0600, 0660 with ``ops_group``
    (a group name or id).  ``pin_dirs`` empty means /run/netns."""

    listen: str | None = None
    unix: str | None = None
    unix_mode: int | str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    no_token: bool = False
    metrics_token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    allow_ops: bool = False
    ops_group: str | int | None = None
    pin_dirs: tuple[str, ...] = ()
    max_age: float = 5.0
    threads: bool = False
    cnproc: bool = True
    rate: float = 20.0
    burst: int = 100
    max_connections: int = 256
    max_peer_connections: int = 32
    max_streams: int = 64
    header_timeout: float = 10.0
    max_body: int = 16 << 20
    view_timeout: float = 60.0
    keepalive: float = 15.0
    access_log: bool = False
    refresher_timeout: float | None = None

    # What the checks resolve (not settings of their own).
    unix_socket: str | None = field(init=False)    # ``unix``, or DEFAULT_UNIX for no listener
    socket_mode: int = field(init=False)
    bearer: str | None = field(init=False, repr=False)          # the token, however given
    metrics_bearer: str | None = field(init=False, repr=False)
    group: int | None = field(init=False)            # ops_group's id
    allowed_pin_dirs: tuple[str, ...] = field(init=False)
    tcp: tuple[int, tuple] | None = field(init=False)  # (family, sockaddr) of ``listen``
    hosts: frozenset[str] = field(init=False)        # Host header names answered to

    def __post_init__(self) -> None:
        self._set("pin_dirs", (self.pin_dirs,) if isinstance(self.pin_dirs, str)
                  else tuple(self.pin_dirs))
        if self.ops_group == "":
            self._set("ops_group", None)
        if self.unix_mode == "":
            self._set("unix_mode", None)
        self._check_limits()
        self._set("unix_socket", self._unix_socket())
        if self.ops_group is not None and not self.allow_ops:
            raise ConfigError("--ops-group", "needs --allow-ops", sep=" ")
        self._set("bearer", self._token())
        self._set("metrics_bearer", self._metrics_token())
        self._check_tls()
        self._set("group", None if self.ops_group is None else _group(str(self.ops_group)))
        self._set("allowed_pin_dirs", _pin_dirs(self.pin_dirs))
        self._set("socket_mode", self._socket_mode())
        self._check_listen()

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)   # frozen: only while it is being made

    def _check_limits(self) -> None:
        if not self.max_age > 0 or (self.refresher_timeout is not None and
                                    not self.refresher_timeout > self.max_age):
            raise ConfigError("--max-age", "must be positive, --refresher-timeout longer "
                              "than it", sep=" ")
        if self.rate < 0 or min(self.burst, self.max_body, self.max_connections,
                                self.max_peer_connections, self.max_streams) < 1 or \
                not self.view_timeout > 0 or not self.header_timeout > 0:
            raise ConfigError("--rate", "must be >= 0; --burst, --max-body, "
                              "--max-connections, --max-peer-connections, --max-streams, "
                              "--header-timeout and --view-timeout positive", sep=" ")

    def _unix_socket(self) -> str | None:
        # Before the default listener is chosen: operations are offered only on a unix
        # socket the caller named, never on one they did not ask for.
        if self.allow_ops and not self.unix:
            raise ConfigError("--allow-ops", "needs --unix PATH (operations are served only "
                              "on a unix socket you name)", sep=" ")
        if sum((self.token is not None, self.token_file is not None, self.no_token)) > 1:
            raise ConfigError("--token", "give one of --token, --token-file and --no-token",
                              sep=" ")
        if self.listen is None and self.unix is None:
            if self.tls_cert or self.no_token or self.token or self.token_file:
                raise ConfigError("--listen", "apply to TCP: give --listen ADDR:PORT",
                                  about="--tls-cert, --token, --token-file and --no-token",
                                  sep=" ")
            return DEFAULT_UNIX
        return self.unix

    def _token(self) -> str | None:
        if self.token is not None:
            return _checked_token(self.token.strip(), "--token")
        if self.token_file is not None:
            return _checked_token(_token_from_file(self.token_file, "--token-file"),
                                  "--token-file", self.token_file)
        return None

    def _metrics_token(self) -> str | None:
        if self.metrics_token_file is None:
            return None
        if self.bearer is None:
            raise ConfigError("--metrics-token-file", "needs --token-file (the token for "
                              "the rest)", sep=" ")
        metrics = _checked_token(_token_from_file(self.metrics_token_file,
                                                  "--metrics-token-file"),
                                 "--metrics-token-file", self.metrics_token_file)
        if metrics == self.bearer:
            raise ConfigError("--metrics-token-file", "the same token as --token-file; "
                              "give the metrics scrape its own")
        return metrics

    def _check_tls(self) -> None:
        """Load the certificate once now, so a bad file is one line before anything starts."""
        if self.tls_key and not self.tls_cert:
            raise ConfigError("--tls-key", "needs --tls-cert", sep=" ")
        if not self.tls_cert:
            return
        if self.unix:
            raise ConfigError("--tls-cert", "applies to every listener: not with --unix (run "
                              "two servers, or put TLS in front)", sep=" ")
        import ssl

        os.close(owner_only_file(self.tls_key or self.tls_cert,
                                 "--tls-key" if self.tls_key
                                 else "--tls-cert (holding the key)"))
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("--tls-cert", f"{getattr(exc, 'strerror', None) or exc}",
                              self.tls_cert) from None

    def _socket_mode(self) -> int:
        mode = self.unix_mode
        if mode is None:
            return 0o660 if self.group is not None else 0o600
        if isinstance(mode, str):
            try:
                mode = int(mode, 8)
            except ValueError:
                raise ConfigError("--unix-mode", "not an octal mode", mode) from None
        if mode & ~0o777:
            raise ConfigError("--unix-mode", "only permission bits (0-777)",
                              self.unix_mode if isinstance(self.unix_mode, str)
                              else f"{mode:04o}")
        return mode

    def _check_listen(self) -> None:
        hosts = {"localhost", "127.0.0.1", "[::1]"}
        tcp = None
        if self.listen is not None:
            host, port = parse_listen(self.listen)
            family, sockaddr, loopback = _address(host, port)
            if not loopback and self.bearer is None:
                raise ConfigError("--listen", "not a loopback address; anyone who can reach "
                                  "it could read this host's namespaces: give --token-file "
                                  "FILE", host)
            if self.bearer is None and not self.no_token:
                raise ConfigError("--listen", "every local user could read every process's "
                                  "namespaces: give --token-file FILE, or --no-token to "
                                  "allow that", host)
            hosts.add(f"[{host}]" if ":" in host else host.lower())
            tcp = (family, sockaddr)
        elif self.no_token:
            raise ConfigError("--no-token", "applies to --listen only", sep=" ")
        self._set("tcp", tcp)
        self._set("hosts", frozenset(hosts))


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` -> (address, port)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError("--listen", f"write ADDR:PORT (e.g. 127.0.0.1:{DEFAULT_PORT} "
                          f"or [::1]:{DEFAULT_PORT})", repr(text))
    return host, int(port)


def _address(host: str, port: int) -> tuple[int, tuple, bool]:
    """(family, sockaddr, loopback) for a host name or address."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICSERV)
    except socket.gaierror as exc:
        raise ConfigError("--listen", str(exc.strerror), host) from None
    family, _type, _proto, _name, sockaddr = infos[0]
    loopback = all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback
                   for i in infos)
    return family, sockaddr, loopback


def owner_only_file(path: str, option: str) -> int:
    """An open fd on ``path`` if it is a regular file of this user that no one else
    may read or write (a secret: a token, a TLS key); else ConfigError.  Opened
    without blocking, so a FIFO put there cannot hang the start."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise ConfigError(option, exc.strerror or str(exc), path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(option, "not a regular file", path)
        if info.st_uid != os.geteuid():
            raise ConfigError(option, f"owned by uid {info.st_uid}, not by this user (uid "
                              f"{os.geteuid()}): chown it", path)
        if info.st_mode & 0o077:
            raise ConfigError(option, f"mode {stat.S_IMODE(info.st_mode):04o} lets others "
                              "read or change it: chmod 600 it", path)
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
        raise ConfigError(option, "longer than 4096 bytes", path)
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(option, "the token must be ASCII text", path) from None


def _checked_token(token: str, option: str, path: str | None = None) -> str:
    """The token if it is long enough and printable; the error names the file it came
    from (``path``), or else the option."""
    if len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(option, f"the token must be at least {MIN_TOKEN} printable "
                          "characters without spaces", about=path)
    return token


def _group(name: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid if not name.isdigit() else grp.getgrgid(int(name)).gr_gid
    except KeyError:
        raise ConfigError("--ops-group", "no such group", name) from None


def _pin_dirs(values: tuple[str, ...]) -> tuple[str, ...]:
    """Allowed pin directories, as they must appear in a client's path: absolute and
    canonical, and passing the pin directory rule now (:mod:`nsctl.ops.trusteddir`;
    every pin and unpin checks it again)."""
    from ..ops.pin import NETNS_DIR, check_pin_dir

    out = []
    for d in values or (NETNS_DIR,):
        if not d.startswith("/") or os.path.normpath(d) != d or d == "/":
            raise ConfigError("--pin-dir", "give an absolute, normalised directory (not /)", d)
        cause = check_pin_dir(d, exact=True)
        if cause:
            raise (ConfigError("--pin-dir", cause) if cause.startswith(f"{d}: ")
                   else ConfigError("--pin-dir", cause, d))
        out.append(d)
    return tuple(out)
