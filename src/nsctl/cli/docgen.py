"""Man pages and shell completion, generated from the commands' own argument definitions.

``python -m nsctl.cli.docgen DIR`` writes ``DIR/man/man1/nsctl.1`` and one
``nsctl-COMMAND.1`` per command, ``DIR/completions/nsctl`` (bash) and
``DIR/completions/_nsctl`` (zsh); the repository keeps them at its top (pyproject.toml
installs them under share/), and tests/test_docgen.py checks they are what this
module makes of the current parsers.

Every command parses its arguments before it does anything else, so its parser is
taken by running the command while argparse's parsing is replaced by a hand-over of
the parser; ``nsctl lsns`` has its own option table, read as it is.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys

from .main import COMMANDS

NS_TYPES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")
WIDTH = 80   # usage lines are wrapped at this width, whatever the terminal


class Opt:
    """One option or positional argument, as the pages and completions need it."""

    __slots__ = ("flags", "metavar", "help", "choices", "takes_value", "optional")

    def __init__(self, flags: list[str], metavar: str | None, help_text: str,
                 choices: list[str] | None, takes_value: bool, optional: bool = False) -> None:
        self.flags, self.metavar, self.help = flags, metavar, help_text
        self.choices, self.takes_value = choices, takes_value
        self.optional = optional   # the value may be left out (then only as --long=VALUE)


class Command:
    """A command's name, one-line summary, usage, description, options and epilog."""

    __slots__ = ("name", "summary", "usage", "description", "options", "positionals",
                 "epilog")

    def __init__(self, name: str, summary: str, usage: str, description: str,
                 options: list[Opt], positionals: list[Opt], epilog: str) -> None:
        self.name, self.summary, self.usage = name, summary, usage
        self.description, self.options = description, options
        self.positionals, self.epilog = positionals, epilog


class _Taken(Exception):
    """Raised in place of parsing: the parser a command built, taken."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def parser_of(name: str) -> argparse.ArgumentParser:
    """The parser command ``name`` builds: its main() runs until it parses, and the
    parser is taken there (nothing is parsed, nothing done)."""
    module = __import__(f"nsctl.cli.{COMMANDS[name][0]}", fromlist=["main"])
    original = argparse.ArgumentParser.parse_known_args

    def take(self: argparse.ArgumentParser, *_args: object, **_kwargs: object):
        raise _Taken(self)

    argparse.ArgumentParser.parse_known_args = take  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module.main(["--help"])
    except _Taken as taken:
        return taken.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    raise RuntimeError(f"nsctl {name} parsed no arguments")


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    text = action.help or ""
    if "%" in text:
        try:
            text = text % {**vars(action), "prog": parser.prog}
        except (KeyError, TypeError, ValueError):
            pass
    return " ".join(text.split())


def from_parser(name: str, parser: argparse.ArgumentParser) -> Command:
    options: list[Opt] = []
    positionals: list[Opt] = []
    for action in parser._actions:   # argparse keeps no public list of them
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        metavar = action.metavar if isinstance(action.metavar, str) else None
        choices = [str(c) for c in action.choices] if action.choices else None
        opt = Opt(list(action.option_strings), metavar or (action.dest.upper()
                                                            if action.nargs != 0 else None),
                  _help(action, parser), choices, action.nargs != 0, action.nargs == "?")
        (options if action.option_strings else positionals).append(opt)
    formatter = argparse.HelpFormatter(prog=parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups,
                        prefix="")
    return Command(name, COMMANDS[name][1], formatter.format_help().strip(),
                   parser.description or "", options, positionals, parser.epilog or "")


def lsns_command() -> Command:
    """``nsctl lsns`` from its own option table (lsns's options and their help)."""
    from .lsns import options as lo

    helps: dict[str, str] = {}
    for line in lo.USAGE.splitlines():
        words = line.split()
        for opt in lo.OPTIONS:
            if f"--{opt.long}" in [w.rstrip(",") for w in words] or \
                    f"--{opt.long}[=<rel>]" in words:
                helps[opt.long] = " ".join(w for w in words if not w.startswith("-")
                                           and not w.startswith("<") and w != "<list>")
    options = []
    for opt in lo.OPTIONS:
        flags = ([f"-{opt.short}"] if opt.short else []) + [f"--{opt.long}"]
        choices = list(NS_TYPES) if opt.long == "type" else (
            list(lo.TREE_MODES) if opt.long == "tree" else None)
        options.append(Opt(flags, None if opt.arg == lo.NO else opt.long.upper(),
                           helps.get(opt.long, ""), choices, opt.arg != lo.NO,
                           opt.arg == lo.OPTIONAL))
    return Command("lsns", COMMANDS["lsns"][1], "nsctl lsns [options] [NAMESPACE]",
                   "List namespaces as util-linux lsns(8) does: its options, columns, "
                   "layouts, messages and exit status; it finds more (namespaces held by an "
                   "fd, a socket, a bind mount in any mount namespace, or only as a parent "
                   "or owner).", options, [Opt([], "NAMESPACE", "an inode: its processes",
                                               None, True)], "")


def commands() -> list[Command]:
    return [lsns_command() if name == "lsns" else from_parser(name, parser_of(name))
            for name in COMMANDS]


# --- man pages ---------------------------------------------------------------------------

def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no leading dot."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return f"\\&{out}" if out.startswith((".", "'")) else out


def _version() -> str:
    from .. import __version__

    return __version__


def manpage(cmd: Command) -> str:
    title = f"nsctl-{cmd.name}"
    lines = [f'.TH {title.upper()} 1 "" "nsctl {_version()}" "User Commands"',
             ".SH NAME", f"{_roff(title)} \\- {_roff(cmd.summary)}",
             ".SH SYNOPSIS", ".nf", *(_roff(line.strip()) for line in cmd.usage.splitlines()),
             ".fi"]
    if cmd.description:
        lines += [".SH DESCRIPTION", _roff(cmd.description)]
    if cmd.positionals:
        lines.append(".SH ARGUMENTS")
        for p in cmd.positionals:
            lines += [".TP", f"\\fI{_roff(p.metavar or '')}\\fR", _roff(p.help)]
    if cmd.options:
        lines.append(".SH OPTIONS")
        for o in cmd.options:
            flags = ", ".join(f"\\fB{_roff(f)}\\fR" for f in o.flags)
            value = ""
            if o.takes_value and o.metavar:
                value = (f"[=\\fI{_roff(o.metavar)}\\fR]" if o.optional
                         else f" \\fI{_roff(o.metavar)}\\fR")
            lines += [".TP", flags + value, _roff(o.help or "")]
    if cmd.epilog:
        lines += [".SH NOTES", _roff(cmd.epilog)]
    lines += [".SH SEE ALSO", "\\fBnsctl\\fR(1), \\fBlsns\\fR(8), \\fBnsenter\\fR(1), "
              "\\fBunshare\\fR(1), \\fBnamespaces\\fR(7)"]
    return "\n".join(lines) + "\n"


def main_page(cmds: list[Command]) -> str:
    lines = [f'.TH NSCTL 1 "" "nsctl {_version()}" "User Commands"',
             ".SH NAME", "nsctl \\- see and handle Linux namespaces",
             ".SH SYNOPSIS", ".B nsctl", "\\fICOMMAND\\fR [\\fIoptions\\fR]", ".br",
             ".B nsctl", "[\\fB\\-\\-help\\fR] [\\fB\\-\\-version\\fR]",
             ".SH DESCRIPTION",
             "Every namespace on the host, what holds it, and how they relate; and acting "
             "on them: pin, enter, run.", ".SH COMMANDS"]
    for cmd in cmds:
        lines += [".TP", f"\\fBnsctl\\-{_roff(cmd.name)}\\fR(1)", _roff(cmd.summary)]
    lines += [".SH EXIT STATUS",
              "0 on success; 1 on an error, one line on stderr; 2 for a usage error; "
              "enter and run exit with their command's status (126: it cannot be run, "
              "127: not found).",
              ".SH SEE ALSO", "\\fBlsns\\fR(8), \\fBnsenter\\fR(1), \\fBunshare\\fR(1), "
              "\\fBip\\-netns\\fR(8), \\fBnamespaces\\fR(7)"]
    return "\n".join(lines) + "\n"


# --- completion ------------------------------------------------------------------------------

def _value_words(o: Opt) -> list[str] | None:
    """The words an option's value is one of, where known."""
    if o.choices:
        return o.choices
    if o.metavar in ("TYPE", "LINK"):
        return list(NS_TYPES)
    return None


def bash_completion(cmds: list[Command]) -> str:
    names = " ".join(c.name for c in cmds)
    cases = []
    for cmd in cmds:
        flags = " ".join(f for o in cmd.options for f in o.flags)
        values = []
        for o in cmd.options:
            words = _value_words(o)
            if o.takes_value and words:
                values.append(f"            {'|'.join(o.flags)}) "
                              f"COMPREPLY=($(compgen -W \"{' '.join(words)}\" -- \"$cur\"));"
                              " return;;")
        value_case = ("        case \"$prev\" in\n" + "\n".join(values) + "\n        esac\n"
                      if values else "")
        cases.append(f"    {cmd.name})\n{value_case}        opts=\"{flags}\";;")
    return f"""# bash completion for nsctl (made by nsctl.cli.docgen from the commands' options)
_nsctl() {{
    local cur prev opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{names} --help --version" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{chr(10).join(cases)}
        *) opts="";;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -F _nsctl nsctl
"""


def _zsh_text(text: str) -> str:
    """Help text inside a zsh _arguments spec: no brackets, colons or quotes."""
    return (text.split(". ")[0].replace("[", "(").replace("]", ")").replace(":", ";")
            .replace("'", "").replace("\\", ""))[:120]


def zsh_completion(cmds: list[Command]) -> str:
    described = "\n".join(f"        '{c.name}:{_zsh_text(c.summary)}'" for c in cmds)
    cases = []
    for cmd in cmds:
        specs = []
        for o in cmd.options:
            words = _value_words(o)
            value = ""
            if o.takes_value:
                value = f":{_zsh_text(o.metavar or 'value')}:" + (
                    f"({' '.join(words)})" if words else "_files")
            for flag in o.flags:
                specs.append(f"'{flag}[{_zsh_text(o.help)}]{value}'")
        specs.append("'*:file:_files'")
        cases.append(f"        {cmd.name})\n            _arguments \\\n                "
                     + " \\\n                ".join(specs) + " ;;")
    return f"""#compdef nsctl
# zsh completion for nsctl (made by nsctl.cli.docgen from the commands' options)
_nsctl() {{
    local -a commands
    commands=(
{described}
    )
    if (( CURRENT == 2 )); then
        _describe 'command' commands
        return
    fi
    shift words
    (( CURRENT-- ))
    case $words[1] in
{chr(10).join(cases)}
    esac
}}
_nsctl "$@"
"""


def files() -> dict[str, str]:
    """Relative path -> content of everything generated."""
    cmds = commands()
    out = {"man/man1/nsctl.1": main_page(cmds)}
    for cmd in cmds:
        out[f"man/man1/nsctl-{cmd.name}.1"] = manpage(cmd)
    out["completions/nsctl"] = bash_completion(cmds)
    out["completions/_nsctl"] = zsh_completion(cmds)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nsctl.cli.docgen DIR", file=sys.stderr)
        return 2
    for rel, text in files().items():
        path = os.path.join(args[0], rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
