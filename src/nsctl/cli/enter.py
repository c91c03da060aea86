"""``nsctl enter``: run a command inside existing namespaces, named by SPECs or by
nsenter(1)'s options.

Two ways to write it, one command:

- nsctl's: ``nsctl enter SPEC... [-- CMD ...]``, every SPEC form;
- nsenter's: ``nsctl enter -t PID -n -u [CMD ...]`` (also ``-a``, ``--net=FILE``,
  ``-r``, ``-w``, ``-S``, ``-G``, ``--preserve-credentials``, ``--keep-caps``): once
  such an option comes before the first word that is not an option, that word
  starts the command, as with nsenter.

SPECs that name a file, ``PID/TYPE``, an inode or a namespace id are opened
directly (nsctl.query.direct); only the others (container names, stable paths,
a namespace nothing cheap reaches) cost a scan of the host.
"""
from __future__ import annotations

import os

from ..kernel import nsfs
from ..ops.enter import How, enter_opened, own_ino
from ..query.direct import open_spec
from .common import UsageError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    import argparse

    from ..ops.enter import Target

    _Args = argparse.Namespace
else:
    _Args = object

# nsenter's namespace options: short, long, type.
NS_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("m", "mount", "mnt"), ("u", "uts", "uts"), ("i", "ipc", "ipc"), ("n", "net", "net"),
    ("p", "pid", "pid"), ("U", "user", "user"), ("C", "cgroup", "cgroup"), ("T", "time", "time"))
# Options whose argument is optional (getopt's "x::"): only ``-xARG`` or ``--long=ARG``.
_OPTIONAL_ARG = {f"-{s}": f"--{lng}" for s, lng, _t in NS_OPTIONS} | {"-r": "--root",
                                                                      "-w": "--wd"}
_OPTIONAL_LONG = set(_OPTIONAL_ARG.values())
# Options that take an argument in the next word.
_WITH_ARG = {"-t", "--target", "-S", "--setuid", "-G", "--setgid"}


def build_parser() -> argparse.ArgumentParser:
    from .args import command_parser
    from .common import add_version

    p = command_parser(
        prog="nsctl enter",
        usage="nsctl enter [SPEC ...] [-- CMD [ARG ...]]\n"
              "       nsctl enter [-t PID] [-a] [-n[FILE]] [-m[FILE]] ... [CMD [ARG ...]]",
        description="Run CMD (default: $SHELL) inside the given namespaces, named by any "
                    "SPEC form or by nsenter's options. SIGTERM, SIGINT, SIGHUP, SIGQUIT, "
                    "SIGUSR1 and SIGUSR2 sent to nsctl reach CMD, CMD dies with nsctl, and its "
                    "exit status is nsctl's (126: CMD cannot be run, 127: not found).",
        epilog="FILE (of -n, -m, ...): a namespace file, :ID (a namespace id) or any SPEC. "
               "A SPEC that names a file, PID/TYPE, an inode or an id is opened directly; "
               "container:NAME/TYPE and stable paths scan the host first.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="namespaces to enter")
    p.add_argument("-t", "--target", metavar="PID",
                   help="the process whose namespaces -n, -m, ... (without FILE) and -a mean")
    p.add_argument("-a", "--all", nargs="?", const="", metavar="PID|container:NAME",
                   help="every namespace of the target (or of PID, or of a container's top "
                        "process) that differs from ours, and its root and working directory")
    for short, long, ns_type in NS_OPTIONS:
        p.add_argument(f"-{short}", f"--{long}", dest=f"ns_{ns_type}", nargs="?", const="",
                       metavar="FILE", help=f"enter the {ns_type} namespace (the target's, "
                                            "or FILE's)")
    p.add_argument("-r", "--root", nargs="?", const="", metavar="DIR",
                   help="the root directory: the target's, or DIR")
    p.add_argument("-w", "--wd", nargs="?", const="", metavar="DIR",
                   help="the working directory: the target's, or DIR")
    p.add_argument("-S", "--setuid", metavar="UID", help="run CMD as UID")
    p.add_argument("-G", "--setgid", metavar="GID", help="run CMD as GID (no other groups)")
    p.add_argument("--preserve-credentials", action="store_true",
                   help="keep your UID and GID in a user namespace entered (else: 0 and 0)")
    p.add_argument("--keep-caps", action="store_true",
                   help="keep the capabilities a user namespace entered gives, through exec")
    add_version(p, "nsctl enter")
    return p


def split_argv(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(options and SPECs for argparse, the command or None).  nsenter's optional
    arguments are made explicit (``-n`` -> ``--net=``, ``-nFILE`` -> ``--net=FILE``);
    after an nsenter-style option, the first word that is not an option starts the
    command; ``--`` always does."""
    out: list[str] = []
    nsenter_style = False
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return out, argv[i + 1:]
        head = word[:2]
        if word in _OPTIONAL_ARG or word in _OPTIONAL_LONG:
            out.append(f"{_OPTIONAL_ARG.get(word, word)}=")
            nsenter_style = True
        elif word.startswith("--") and word.partition("=")[0] in _OPTIONAL_LONG:
            out.append(word)
            nsenter_style = True
        elif head in _OPTIONAL_ARG and len(word) > 2:
            out.append(f"{_OPTIONAL_ARG[head]}={word[2:]}")
            nsenter_style = True
        elif word in ("-a", "--all"):
            following = argv[i + 1] if i + 1 < len(argv) else ""
            if following.isdigit() or following.startswith("container:"):
                out += ["--all", following]      # nsctl's --all PID
                i += 1
            else:
                out.append("--all=")             # nsenter's -a (with -t)
            nsenter_style = True
        elif word in _WITH_ARG:
            out.append(word)
            if i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
            nsenter_style = nsenter_style or word in ("-t", "--target")
        elif word.startswith("-") and word != "-":
            out.append(word)
            nsenter_style = nsenter_style or word.startswith(("-t", "--target="))
        elif nsenter_style:
            return out, argv[i:]
        else:
            out.append(word)
        i += 1
    return out, None


def _number(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise UsageError(f"{what} wants a number, not {text!r}")
    return int(text)


class _Targets:
    """The namespaces to enter, opened as they are named; fds closed at the end."""

    def __init__(self) -> None:
        self.opened: list[tuple[Target, int]] = []
        self.pending: list[tuple[str, str | None]] = []   # (SPEC, type wanted): need a scan
        self.fds: list[int] = []

    def add(self, spec: str, ns_type: str | None, what: str) -> None:
        got = open_spec(spec)
        if got is None:
            self.pending.append((spec, ns_type))
            return
        ns, fd = got
        self.fds.append(fd)
        self._take(ns, fd, ns_type, what)

    def _take(self, ns: Target, fd: int, ns_type: str | None, what: str) -> None:
        if ns_type is not None and ns.type != ns_type:
            raise UsageError(f"{what}: {ns.label} is a {ns.type} namespace, not {ns_type}")
        if all(o.ino != ns.ino for o, _fd in self.opened):
            self.opened.append((ns, fd))

    def resolve_pending(self, args: argparse.Namespace) -> None:
        """The SPECs that need the host's map: one scan for all of them."""
        if not self.pending:
            return
        from ..query.handles import open_namespace
        from ..query.spec import resolve
        from .common import discover_from_args

        snap = discover_from_args(args)
        for spec, ns_type in self.pending:
            ns = resolve(spec, snap)
            fd = open_namespace(ns, snap)
            self.fds.append(fd)
            self._take(ns, fd, ns_type, spec)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def _open_dir(value: str, target: int | None, which: str, option: str) -> int:
    if value:
        path = value
    elif target is not None:
        path = f"/proc/{target}/{which}"
    else:
        raise UsageError(f"{option}: neither DIR nor --target PID given")
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{option}: {path}: {exc.strerror}") from None


class _Plain(_Args):
    """The arguments of the plain form, ``SPEC... [-- CMD ...]``, as argparse would
    give them: read without argparse, whose import and parser cost as much as the
    rest of entering a namespace."""

    def __init__(self, specs: list[str]) -> None:
        self.specs = specs
        self.target = self.all = self.root = self.wd = self.setuid = self.setgid = None
        for _s, _l, ns_type in NS_OPTIONS:
            setattr(self, f"ns_{ns_type}", None)
        self.preserve_credentials = self.keep_caps = False


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str] | None]:
    """(the options, the command or None)."""
    words, command = split_argv(argv)
    if words and not any(w.startswith("-") for w in words):
        return _Plain(words), command
    return build_parser().parse_args(words), command


def main(argv: list[str]) -> int:
    args, command = parse(argv)
    target = _number(args.target, "--target")
    if args.all and args.all.startswith("container:"):
        from ..query.spec import container_process
        from .common import discover_from_args

        snap = discover_from_args(args)
        target = container_process(args.all[len("container:"):], snap, args.all)
    elif args.all:
        target = _number(args.all, "--all")
    if args.all == "" and target is None:
        raise UsageError("-a/--all: no --target PID given")
    if command is not None and command and not command[0]:
        raise UsageError("the command name is empty")
    ns_options = [(t, getattr(args, f"ns_{t}"), f"--{lng}") for _s, lng, t in NS_OPTIONS
                  if getattr(args, f"ns_{t}") is not None]
    if not args.specs and not ns_options and args.all is None:
        raise UsageError("nothing to enter: give SPECs, -t PID with -n, -m, ..., or -a")
    command = command or [os.environ.get("SHELL") or "/bin/sh"]
    targets = _Targets()
    # nsenter's -U and -a take uid and gid 0 in the user namespace they enter (unless
    # --preserve-credentials); a user namespace named by a SPEC keeps yours, as it
    # always has in nsctl.
    nsenter_user = args.ns_user is not None or args.all == ""
    how = How(uid=_number(args.setuid, "--setuid"), gid=_number(args.setgid, "--setgid"),
              preserve=args.preserve_credentials or not nsenter_user, keep_caps=args.keep_caps)
    try:
        for spec in args.specs:
            targets.add(spec, None, spec)
        for ns_type, value, option in ns_options:
            if value:
                targets.add(value, ns_type, f"{option}={value}")
            elif target is None:
                raise UsageError(f"{option}: neither FILE nor --target PID given")
            else:
                targets.add(f"{target}/{ns_type}", ns_type, f"{option} of {target}")
        if args.all is not None and target is not None:
            for ns_type in nsfs.NS_TYPES:
                if any(ns.type == ns_type for ns, _fd in targets.opened) or \
                        any(t == ns_type for t, _v, _o in ns_options):
                    continue
                got = open_spec(f"{target}/{ns_type}")
                assert got is not None   # PID/TYPE is always opened directly
                ns, fd = got
                targets.fds.append(fd)
                if ns.ino != own_ino(ns_type):
                    targets.opened.append((ns, fd))
        targets.resolve_pending(args)
        root = args.root if args.root is not None else ("" if args.all is not None else None)
        wd = args.wd if args.wd is not None else ("" if args.all is not None else None)
        if root is not None:
            how.root_fd = _open_dir(root, target, "root", "--root")
            targets.fds.append(how.root_fd)
        if wd is not None:
            how.cwd_fd = _open_dir(wd, target, "cwd", "--wd")
            targets.fds.append(how.cwd_fd)
        return enter_opened(targets.opened, command, how)
    finally:
        targets.close()
