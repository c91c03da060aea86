"""``nsctl serve``: the namespace model over HTTP (REST API, web page, /metrics).

Only the options: they become a :class:`nsctl.serve.config.Config`, which checks
them all (everything a user can get wrong is one line on stderr before the server
starts), and :func:`nsctl.serve.run.run` serves it.  By default the server listens
only on the unix socket :data:`~nsctl.serve.DEFAULT_UNIX` (mode 0600: root alone
may read); TCP needs a token, or ``--no-token`` on a loopback address (then every
local user may read).
"""
from __future__ import annotations

import argparse

from ..serve import DEFAULT_PORT, DEFAULT_UNIX
from .args import command_parser


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


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from ..serve.config import Config
    from ..serve.run import run

    return run(Config(
        listen=args.listen, unix=args.unix, unix_mode=args.unix_mode, token=args.token,
        token_file=args.token_file, no_token=args.no_token,
        metrics_token_file=args.metrics_token_file, tls_cert=args.tls_cert,
        tls_key=args.tls_key, allow_ops=args.allow_ops, ops_group=args.ops_group,
        pin_dirs=tuple(args.pin_dir or ()), max_age=args.max_age, threads=args.threads,
        cnproc=not args.no_cnproc, rate=args.rate, burst=args.burst,
        max_connections=args.max_connections, max_peer_connections=args.max_peer_connections,
        max_streams=args.max_streams, header_timeout=args.header_timeout,
        max_body=args.max_body, view_timeout=args.view_timeout, keepalive=args.keepalive,
        access_log=args.access_log, refresher_timeout=args.refresher_timeout))
