"""``nsctl`` entry point: one sub-command per module, errors as one line on stderr.

Command modules are imported only when their command runs, so ``nsctl --help``
stays fast.
"""
from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    import argparse

# command -> (module under nsctl.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ls": ("ls", "list namespaces, one row each"),
    "tree": ("tree", "the user namespace tree (or --pid: the PID namespace tree)"),
    "show": ("show", "all that is known about one namespace"),
    "pidtree": ("pidtree", "processes inside the PID namespace tree, PIDs at every level"),
    "pid": ("pid", "translate a PID between PID namespaces"),
    "pin": ("pin", "keep a namespace alive by bind-mounting its file at a path"),
    "unpin": ("unpin", "undo a pin"),
    "enter": ("enter", "run a command inside existing namespaces (by any SPEC)"),
    "run": ("run", "create new namespaces and run a command in them (with a PID-1 init)"),
    "net": ("net", "network namespaces, their interfaces and the links that join them"),
    "snapshot": ("snapshot", "save the whole discovery as a versioned JSON file (read it back "
                             "with --from FILE)"),
    "diff": ("diff", "what changed between two snapshots (or a snapshot and now)"),
    "lsns": ("lsns", "util-linux lsns(8) compatible listing (accepts lsns's options)"),
    "watch": ("watch", "a live stream of namespace events (born/gone, entered/left, pinned)"),
    "history": ("history", "the events nsctl watch --record stored: when, what held it"),
    "serve": ("serve", "serve the namespace model over HTTP: REST API, web page, /metrics"),
}

# Commands that parse their own argv (lsns mimics another tool's options).
OWN_PARSER = {"lsns"}

# Commands that answer --version themselves: lsns as lsns does, and those whose command
# line ends in a command of the user's (run, enter), whose own --version it may be.
OWN_VERSION = {"lsns", "run", "enter"}

# Commands that run until stopped; every other one is over in moments.
LONG_RUNNING = {"watch", "serve"}

# Commands that only read and print: once their output is written, nothing is left to
# do (no file, socket or child of theirs is still open), see entry().
PRINT_ONLY = {"ls", "lsns", "tree", "show", "pidtree", "pid", "net", "diff"}
# Commands that are as done when they return: enter has reaped its command and closed
# every fd it opened (its exit status is the command's).
DONE_ON_RETURN = PRINT_ONLY | {"enter"}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from .args import command_parser

    parser = command_parser(
        prog="nsctl",
        description="See and handle Linux namespaces: every namespace on the host, "
                    "what holds it, and how they relate.")
    parser.add_argument("--version", action="version", version=f"nsctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        parser = build_parser()
        if not args:   # a usage error, as with the util-linux tools: help on stderr, 2
            parser.print_help(sys.stderr)
            return 2
        parser.parse_args(args)  # prints help/version or the "invalid choice" error
        return 2
    name, rest = args[0], args[1:]
    options = rest[:rest.index("--")] if "--" in rest else rest
    if name not in OWN_VERSION and "--version" in options:
        from .. import __version__

        print(f"nsctl {name} {__version__}")
        return 0
    if name not in LONG_RUNNING:
        # A command that is over in moments builds its model and its output and exits:
        # nothing for the cyclic collector to find, only ~10 % of a big host's time
        # spent walking what it allocated (memory is still freed by reference counts).
        gc.disable()
    # (__import__ rather than importlib.import_module: importing importlib is a cost)
    qualified = f"{__package__}.{COMMANDS[name][0]}"
    __import__(qualified)
    module = sys.modules[qualified]
    return run_guarded(module.main, rest)


def entry() -> None:
    """The ``nsctl`` command (and ``python -m nsctl``): :func:`main`; then, after a
    command that only prints, out at once (os._exit) with its output flushed, instead
    of tearing the interpreter down module by module, a tenth of a short command's
    time.  Any other command exits the usual way."""
    code = main()
    args = sys.argv[1:]
    if args and args[0] in DONE_ON_RETURN:
        try:
            sys.stdout.flush()   # (main flushed it already, or pointed it at /dev/null)
            sys.stderr.flush()
        except OSError:
            pass
        os._exit(code)
    raise SystemExit(code)


def run_guarded(func, argv: list[str]) -> int:
    """Run a command; turn the errors users can cause into one line, never a traceback."""
    return _flush_output(_run(func, argv))


def _run(func, argv: list[str]) -> int:
    from ..kernel.errors import NsctlError

    try:
        return func(argv)
    except NsctlError as exc:
        print(f"nsctl: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a message.
        _drop_output()
        return 0
    except OSError as exc:
        print(f"nsctl: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _flush_output(code: int) -> int:
    """Write out what the command left buffered, here rather than at exit, where a
    failing write (a full disk) would only show as "Exception ignored" and status 120."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_output()
    except OSError as exc:
        if code == 0:   # (else the command has said what went wrong: one line is enough)
            print(f"nsctl: {exc.strerror or exc}", file=sys.stderr)
        _drop_output()
        return code or 1
    return code


def _drop_output() -> None:
    """Point stdout at /dev/null, so that nothing is written (or fails) at exit."""
    try:
        sys.stdout.flush()
    except OSError:
        pass
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
