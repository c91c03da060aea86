"""``nsctl run [options] -- CMD ...``: create new namespaces and run CMD in them."""
from __future__ import annotations

import argparse

from ..ops.run import DEFAULT_VETH, RunSpec, parse_time_offsets, run
from .args import command_parser
from .common import split_command


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        prog="nsctl run",
        usage="nsctl run [options] -- CMD [ARG ...]",
        description="Create new namespaces and run CMD in them. With --pid, CMD runs under a "
                    "small init (PID 1) that reaps zombies. With --mount, a fresh /proc (and "
                    "with --net a fresh /sys) is mounted inside. SIGTERM, SIGINT, SIGHUP, "
                    "SIGQUIT, SIGUSR1 and SIGUSR2 sent to nsctl reach CMD, and nsctl exits with "
                    "CMD's status; if nsctl is killed, CMD dies with it. If any step fails, or a "
                    "signal comes before CMD starts, everything done so far is undone.")
    p.add_argument("--user", action="store_true", help="a new user namespace")
    p.add_argument("--map-root", action="store_true",
                   help="map your UID and GID to root inside (with --user)")
    p.add_argument("--map-user", type=int, metavar="UID", help="map your UID to UID inside")
    p.add_argument("--map-group", type=int, metavar="GID", help="map your GID to GID inside")
    p.add_argument("--pid", action="store_true", help="a new PID namespace, CMD under an init")
    p.add_argument("--net", action="store_true", help="a new network namespace (lo up)")
    p.add_argument("--mount", action="store_true",
                   help="a new mount namespace with a fresh /proc (and /sys with --net)")
    p.add_argument("--uts", metavar="NAME", help="a new UTS namespace with hostname NAME")
    p.add_argument("--ipc", action="store_true", help="a new IPC namespace")
    p.add_argument("--cgroup", action="store_true", help="a new cgroup namespace")
    p.add_argument("--time", metavar="OFFSETS",
                   help="a new time namespace: monotonic=SECONDS,boottime=SECONDS")
    p.add_argument("--veth", nargs="?", const=DEFAULT_VETH, metavar="ADDR/PREFIX",
                   help=f"a veth pair to the new network namespace; your end gets ADDR, its "
                        f"end (eth0) the next address (default {DEFAULT_VETH})")
    p.add_argument("--pin", metavar="DIR", help="pin every new namespace as DIR/TYPE")
    return p


def main(argv: list[str]) -> int:
    argv, command = split_command(argv)
    args = build_parser().parse_args(argv)
    spec = RunSpec(
        command, user=args.user, map_root=args.map_root, map_user=args.map_user,
        map_group=args.map_group, pid=args.pid, net=args.net, mount=args.mount, uts=args.uts,
        ipc=args.ipc, cgroup=args.cgroup,
        time=parse_time_offsets(args.time) if args.time is not None else None,
        veth=args.veth, pin_dir=args.pin)
    return run(spec)
