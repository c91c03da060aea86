"""``nsctl run [options] [--] [CMD ...]``: create new namespaces and run CMD in them,
with unshare(1)'s options and their meanings.

As with unshare, the first word that is not an option starts the command (``--``
also ends the options), no command runs $SHELL, short options group (``-Urn``), and
the long namespace options take an optional ``=FILE`` only in that spelling
(``--net=/run/netns/x`` pins the new namespace there).  nsctl's own spellings stay:
``--uts NAME``, ``--time OFFSETS`` and ``--veth ADDR`` take the next word when a long
option of nsctl run or ``--`` follows it and a ``--`` comes later, which leaves no
doubt where the command starts.
"""
from __future__ import annotations

import os

from ..ops.run import DEFAULT_VETH, RunSpec, parse_time_offsets, run
from .common import UsageError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    import argparse

# unshare's namespace options: short, long, type.
NS_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("m", "mount", "mnt"), ("u", "uts", "uts"), ("i", "ipc", "ipc"), ("n", "net", "net"),
    ("p", "pid", "pid"), ("U", "user", "user"), ("C", "cgroup", "cgroup"), ("T", "time", "time"))
_SHORT = {s: f"--{lng}" for s, lng, _t in NS_OPTIONS} | {
    "r": "--map-root-user", "c": "--map-current-user", "f": "--fork", "h": "--help",
    "V": "--version"}
# Long options whose argument is optional: ``--name=ARG`` only (``--name`` alone: none).
_OPTIONAL = {f"--{lng}" for _s, lng, _t in NS_OPTIONS} | {"--mount-proc", "--kill-child",
                                                         "--veth"}
# nsctl's options that took their value as the next word before they followed unshare.
_OLD_VALUE = {"--uts", "--time", "--veth"}
UID_MAX = 0xFFFFFFFE   # (uid_t)-1 means "no change" to the kernel: never a mapped id


def build_parser() -> argparse.ArgumentParser:
    from .args import command_parser
    from .common import add_version

    p = command_parser(
        prog="nsctl run",
        usage="nsctl run [options] [--] [CMD [ARG ...]]",
        description="Create new namespaces and run CMD (default: $SHELL) in them; the "
                    "options are unshare(1)'s, with its meanings. With --pid, CMD runs under "
                    "a small init (PID 1) that reaps zombies. SIGTERM, SIGINT, SIGHUP, "
                    "SIGQUIT, SIGUSR1 and SIGUSR2 sent to nsctl reach CMD (unshare's "
                    "--forward-signals, always on), and nsctl exits with CMD's status (126: "
                    "CMD cannot be run, 127: not found); if nsctl is killed, CMD dies with it "
                    "(--kill-child, always on). If any step fails, or a signal comes before "
                    "CMD starts, everything done so far is undone.",
        epilog="=FILE of a namespace option pins the new namespace at FILE (a new file in a "
               "directory only root can write), as unshare's does.")
    helps = {"mnt": "a new mount namespace (mounts made private)",
             "uts": "a new UTS namespace; =NAME sets its hostname",
             "ipc": "a new IPC namespace", "net": "a new network namespace (lo up)",
             "pid": "a new PID namespace, CMD under an init", "user":
             "a new user namespace (alone: you are unmapped, the overflow uid and gid)",
             "cgroup": "a new cgroup namespace",
             "time": "a new time namespace (=OFFSETS: monotonic=SECONDS,boottime=SECONDS)"}
    for short, long, ns_type in NS_OPTIONS:
        p.add_argument(f"-{short}", f"--{long}", dest=ns_type, nargs="?", const="",
                       metavar="NAME" if ns_type == "uts" else "FILE", help=helps[ns_type])
    p.add_argument("-r", "--map-root-user", "--map-root", dest="map_root", action="store_true",
                   help="map your uid and gid to root inside (implies --user, denies setgroups)")
    p.add_argument("-c", "--map-current-user", action="store_true",
                   help="map your uid and gid to themselves (implies --user)")
    p.add_argument("--map-user", metavar="UID|NAME", help="map your uid to UID (implies --user)")
    p.add_argument("--map-group", metavar="GID|NAME",
                   help="map your gid to GID (implies --user)")
    p.add_argument("--setgroups", choices=("allow", "deny"),
                   help="allow or deny setgroups(2) in the new user namespace")
    p.add_argument("--propagation", choices=("private", "shared", "slave", "unchanged"),
                   default="private",
                   help="what the mounts of a new mount namespace become (default private)")
    p.add_argument("--mount-proc", nargs="?", const="", metavar="DIR",
                   help="mount a fresh proc at DIR (default /proc; implies --mount; with "
                        "--net also a fresh /sys)")
    p.add_argument("--monotonic", type=float, metavar="SECONDS",
                   help="the monotonic clock's offset (implies --time)")
    p.add_argument("--boottime", type=float, metavar="SECONDS",
                   help="the boottime clock's offset (implies --time)")
    p.add_argument("-f", "--fork", action="store_true",
                   help="accepted for unshare's sake: nsctl always forks CMD")
    p.add_argument("--kill-child", nargs="?", const="", metavar="SIGNAL",
                   help="the signal CMD gets when nsctl dies (default SIGKILL)")
    p.add_argument("--forward-signals", action="store_true",
                   help="accepted for unshare's sake: nsctl always passes signals on")
    p.add_argument("--veth", nargs="?", const=DEFAULT_VETH, metavar="ADDR/PREFIX",
                   help=f"a veth pair to the new network namespace; your end gets ADDR, its "
                        f"end (eth0) the next address (default {DEFAULT_VETH})")
    p.add_argument("--pin", metavar="DIR", help="pin every new namespace as DIR/TYPE")
    add_version(p, "nsctl run")
    return p


def split_argv(argv: list[str], known: frozenset[str] | set[str] = frozenset()
               ) -> tuple[list[str], list[str]]:
    """(options for argparse, the command), as unshare reads its arguments.  ``known``:
    the long options, which tell an old-style value (``--uts NAME --pid -- CMD``) from
    the command (``--uts hostname -f -- x`` runs ``hostname``)."""
    out: list[str] = []
    dashdash = "--" in argv
    i = 0
    while i < len(argv):
        word = argv[i]
        following = argv[i + 1] if i + 1 < len(argv) else None
        if word == "--":
            return out, argv[i + 1:]
        if word.startswith("--"):
            name = word.partition("=")[0]
            after = argv[i + 2] if i + 2 < len(argv) else ""
            if name in _OLD_VALUE and "=" not in word and dashdash and following is not None \
                    and not following.startswith("-") \
                    and (after == "--" or after.partition("=")[0] in known):
                out += [word, following]           # nsctl's --uts NAME ... -- CMD
                i += 2
                continue
            # (argparse sees no word that is not an option or an option's value: a bare
            # optional-argument option takes nothing)
            out.append(word)
            if "=" not in word and word not in _OPTIONAL and _takes_value(word) \
                    and following is not None:
                out.append(following)
                i += 1
        elif word.startswith("-") and len(word) > 1:
            for letter in word[1:]:
                out.append(_SHORT.get(letter, f"-{letter}"))
        else:
            return out, argv[i:]
        i += 1
    return out, []


def _takes_value(option: str) -> bool:
    return option in ("--map-user", "--map-group", "--setgroups", "--monotonic",
                      "--boottime", "--pin", "--propagation")


def _id(text: str | None, what: str, lookup: str) -> int | None:
    """A uid or gid: a number in 0..UID_MAX, or a name in the host's user database."""
    if text is None:
        return None
    if text.isdigit():
        number = int(text)
        if number > UID_MAX:
            raise UsageError(f"{what} {text}: out of range (0 to {UID_MAX})")
        return number
    try:
        if lookup == "user":
            import pwd

            return pwd.getpwnam(text).pw_uid
        import grp

        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise UsageError(f"{what} {text!r}: no such {lookup} (give a name or a number)") \
            from None


def _signal(text: str | None) -> int:
    import signal

    if not text:
        return signal.SIGKILL
    name = text.upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise UsageError(f"--kill-child={text}: unknown signal") from None


def main(argv: list[str]) -> int:
    parser = build_parser()
    known = {o for action in parser._actions for o in action.option_strings
             if o.startswith("--")}
    words, command = split_argv(argv, known)
    args = parser.parse_args(words)
    if command and not command[0]:
        raise UsageError("the command name is empty")
    command = command or [os.environ.get("SHELL") or "/bin/sh"]
    map_user, map_group = _id(args.map_user, "--map-user", "user"), \
        _id(args.map_group, "--map-group", "group")
    if args.map_current_user:
        map_user = os.geteuid() if map_user is None else map_user
        map_group = os.getegid() if map_group is None else map_group
    pins = {t: value for _s, _l, t in NS_OPTIONS if t not in ("uts", "time")
            and (value := getattr(args, t))}
    time_offsets: dict[str, float] | None = None
    if args.time is not None or args.monotonic is not None or args.boottime is not None:
        time_offsets = {}
        if args.time and "=" in args.time.partition(",")[0]:
            time_offsets = parse_time_offsets(args.time)
        elif args.time:
            pins["time"] = args.time
        for clock in ("monotonic", "boottime"):
            if getattr(args, clock) is not None:
                time_offsets[clock] = getattr(args, clock)
    spec = RunSpec(
        command, user=args.user is not None or args.map_root or map_user is not None
        or map_group is not None,
        map_root=args.map_root, map_user=map_user, map_group=map_group,
        pid=args.pid is not None, net=args.net is not None,
        mount=args.mnt is not None or args.mount_proc is not None,
        uts=args.uts, ipc=args.ipc is not None, cgroup=args.cgroup is not None,
        time=time_offsets, veth=args.veth, pin_dir=args.pin,
        mount_proc=None if args.mount_proc is None else args.mount_proc or "/proc",
        pins=pins, setgroups=args.setgroups, kill_signal=_signal(args.kill_child),
        propagation=args.propagation)
    return run(spec)
