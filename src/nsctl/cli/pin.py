"""``nsctl pin SPEC PATH`` and ``nsctl unpin PATH``."""
from __future__ import annotations

import os

from ..ops.pin import PinError, check_pin_dir, pin, pin_fd, unpin
from ..query.direct import names_a_namespace, open_spec
from .args import command_parser
from .common import UsageError, add_version, discover_from_args


def main(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl pin",
        description="Keep a namespace alive without any process: bind-mount its file at PATH "
                    "(a new file). A network namespace pinned at /run/netns/NAME shows in "
                    "`ip netns`. PATH's directory and every one above it must be root's "
                    "alone (owned by root, not writable by others; /tmp-like sticky "
                    "directories only above it).")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("path", metavar="PATH")
    add_version(p, "nsctl pin")
    args = p.parse_args(argv)
    directory = os.path.dirname(os.path.abspath(args.path))
    if names_a_namespace(args.path) and not os.path.lexists(directory):
        raise UsageError(f"pin: {args.path!r} is a SPEC, not a path: the order is "
                         f"nsctl pin SPEC PATH (nsctl pin {args.path} {args.spec}?)")
    # A directory that cannot take pins is refused before the scan (pin checks again).
    cause = check_pin_dir(directory)
    if cause:
        raise PinError(f"pin: {cause}")
    # A SPEC that names a file, PID/TYPE, an inode or an id is opened directly; the
    # others are looked up in a scan of the host.
    direct = open_spec(args.spec)
    if direct is not None:
        found, fd = direct
        try:
            path = pin_fd(fd, args.path)
        finally:
            os.close(fd)
        print(f"{found.label} pinned at {path}")
        return 0
    from ..query.spec import resolve

    snap = discover_from_args(args)
    ns = resolve(args.spec, snap)
    path = pin(ns, snap, args.path)
    print(f"{ns.label} pinned at {path}")
    return 0


def main_unpin(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl unpin",
        description="Undo a pin: unmount the namespace file at PATH and remove it. Refuses a "
                    "path that is not a pinned namespace file.")
    p.add_argument("path", metavar="PATH")
    add_version(p, "nsctl unpin")
    args = p.parse_args(argv)
    what = unpin(args.path)
    print(f"{what} unpinned from {args.path}")
    return 0
