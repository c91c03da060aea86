"""The options of ``nsctl lsns``: lsns's command line, as tables.

:data:`OPTIONS` gives each option its short letter, long name, argument kind
and the setting it makes on the run's :class:`Config`; :data:`EXCLUSIVE`
lists the options that exclude each other, as util-linux lsns.c's excl[]
does.  :func:`parse_args` reads the command line with GNU getopt_long's rules
(permuted positionals, abbreviated long names), applies each option's setting
in turn, then fills in lsns's defaults.
"""
from __future__ import annotations

from ...kernel.errors import NsctlError
from . import columns as C

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .filter import Filter

    #: An option's setting: changes the Config, or returns the text to print instead
    #: of running (-h, -H, -V).
    Action = Callable[["Config", "str | None"], "str | None"]

PROG = "nsctl lsns"
#: The name error messages start with: lsns's own, so that a script that reads lsns's
#: stderr reads the same lines.
ERR_PROG = "lsns"
NS_TYPES = ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")
TREE_MODES = ("process", "owner", "parent")


class UsageError(NsctlError):
    """A command line lsns would refuse."""


USAGE = """
Usage:
 {prog} [options] [<namespace>]

List system namespaces.

Options:
 -J, --json             use JSON output format
 -l, --list             use list format output
 -n, --noheadings       don't print headings
 -o, --output <list>    define which output columns to use
     --output-all       output all columns
     --from <file>      read a snapshot (nsctl snapshot -o FILE), not the live host
     --warn-partial     say on stderr when some processes could not be read
 -P, --persistent       namespaces without processes
 -p, --task <pid>       print process namespaces
 -Q, --filter <expr>    apply display filter
 -r, --raw              use the raw output format
 -u, --notruncate       don't truncate text in columns
 -W, --nowrap           don't use multi-line representation
 -t, --type <name>      namespace type (mnt, net, ipc, user, pid, uts, cgroup, time)
 -T, --tree[=<rel>]     use tree format (parent, owner, or process)

 -H, --list-columns     list the available columns
 -h, --help             display this help
 -V, --version          display version

For more details see lsns(8).
"""


class Config:
    """One run of the command, as lsns.c's struct lsns holds it."""

    __slots__ = ("json", "raw", "force_list", "no_headings", "no_trunc", "no_wrap", "persist",
                 "pid", "ns", "outarg", "columns", "types", "tree", "filter", "source",
                 "warn_partial")

    def __init__(self) -> None:
        self.json = False
        self.raw = False
        self.force_list = False
        self.no_headings = False
        self.no_trunc = False
        self.no_wrap = False
        self.persist = False
        self.pid = 0                          # -p: only namespaces this process is in
        self.ns = 0                           # NAMESPACE argument: its processes
        self.outarg: str | None = None
        self.columns: list[str] = []
        self.types: list[str] = []
        self.tree: str | None = None          # None, "process", "owner" or "parent"
        self.filter: Filter | None = None
        self.source: str | None = None        # --from FILE: a snapshot instead of the host
        self.warn_partial = False             # --warn-partial: say what could not be read


def _parse_uint(text: str, bits: int, what: str) -> int:
    s = text.strip()
    if not s.isdigit() or not s.isascii() or int(s) >= 1 << bits:
        raise UsageError(f"{what}: '{text}'")
    return int(s)


# --- what each option sets ------------------------------------------------------------

def _flags(*names: str) -> Action:
    """Set these Config switches."""
    def act(cfg: Config, _value: str | None) -> None:
        for name in names:
            setattr(cfg, name, True)
    return act


def _store(name: str, convert: Callable[[str | None], object] | None = None) -> Action:
    """Set one Config field to the argument (converted)."""
    def act(cfg: Config, value: str | None) -> None:
        setattr(cfg, name, value if convert is None else convert(value))
    return act


def _prints(text: Callable[[Config], str]) -> Action:
    """Stop reading options: print this text and exit."""
    return lambda cfg, _value: text(cfg)


def _pid(value: str | None) -> int:
    return _parse_uint(value or "", 31, "invalid PID argument")


def _tree_mode(value: str | None) -> str:
    rel = (value or "owner").removeprefix("=")
    if rel not in TREE_MODES:
        raise UsageError(f"unknown tree type: {rel}")
    return rel


def _filter(value: str | None) -> Filter:
    from .filter import parse

    return parse(value or "")


def _add_type(cfg: Config, value: str | None) -> None:
    if value not in NS_TYPES:
        raise UsageError(f"unknown namespace type: {value}")
    if value not in cfg.types:
        cfg.types.append(value)


def _version(_cfg: Config) -> str:
    from ... import __version__

    return f"{PROG} from nsctl {__version__}\n"


# --- the option table -----------------------------------------------------------------

NO, REQUIRED, OPTIONAL = 0, 1, 2


class Option:
    """One option: short letter (or None), long name, argument kind, setting."""

    __slots__ = ("short", "long", "arg", "act")

    def __init__(self, short: str | None, long: str, arg: int, act: Action) -> None:
        self.short = short
        self.long = long
        self.arg = arg
        self.act = act

    @property
    def key(self) -> str:
        """How EXCLUSIVE names it: the short letter, else the long name."""
        return self.short or self.long


OPTIONS: tuple[Option, ...] = (
    Option("J", "json", NO, _flags("json")),
    Option("p", "task", REQUIRED, _store("pid", _pid)),
    Option("h", "help", NO, _prints(lambda _cfg: USAGE.format(prog=PROG))),
    Option("o", "output", REQUIRED, _store("outarg")),
    Option(None, "output-all", NO, _store("columns", lambda _v: [c.name for c in C.COLUMNS])),
    Option("P", "persistent", NO, _flags("persist")),
    Option("Q", "filter", REQUIRED, _store("filter", _filter)),
    Option("u", "notruncate", NO, _flags("no_trunc")),
    Option("V", "version", NO, _prints(_version)),
    Option("n", "noheadings", NO, _flags("no_headings")),
    Option("W", "nowrap", NO, _flags("no_wrap")),
    Option("l", "list", NO, _flags("force_list")),
    Option("r", "raw", NO, _flags("raw", "no_wrap")),
    Option("t", "type", REQUIRED, _add_type),
    Option("T", "tree", OPTIONAL, _store("tree", _tree_mode)),
    Option("H", "list-columns", NO, _prints(lambda cfg: C.list_columns(raw=cfg.raw,
                                                                        json=cfg.json))),
    Option(None, "from", REQUIRED, _store("source")),   # nsctl's own: a snapshot file
    Option(None, "warn-partial", NO, _flags("warn_partial")),   # nsctl's own
)
_BY_SHORT = {o.short: o for o in OPTIONS if o.short}
_BY_LONG = {o.long: o for o in OPTIONS}
_LONG_OF = {o.key: o.long for o in OPTIONS}
#: Options that exclude each other (lsns.c's excl[] table), by key.
EXCLUSIVE: tuple[tuple[str, ...], ...] = (("J", "r"), ("P", "p"), ("l", "T"))


# --- reading the command line ---------------------------------------------------------

def _getopt(argv: list[str], positionals: list[str]) -> Iterator[tuple[Option, str | None]]:
    """GNU getopt_long over OPTIONS: yields (option, argument) in order, permuting
    positionals into ``positionals``; long names may be abbreviated."""
    rest = iter(argv)
    for a in rest:
        if a == "--":
            positionals.extend(rest)
            return
        if a.startswith("--"):
            yield _long_option(a[2:], rest)
        elif a.startswith("-") and a != "-":
            yield from _short_options(a[1:], rest)
        else:
            positionals.append(a)


def _long_option(text: str, rest: Iterator[str]) -> tuple[Option, str | None]:
    """``--name``, ``--name=value`` or ``--name value``; ``name`` may be a prefix."""
    name, eq, value = text.partition("=")
    matches = [name] if name in _BY_LONG else [long for long in _BY_LONG if long.startswith(name)]
    if not matches:
        raise UsageError(f"unrecognized option '--{name}'")
    if len(matches) > 1:
        raise UsageError(f"option '--{name}' is ambiguous; possibilities: "
                         + " ".join(f"'--{m}'" for m in matches))
    opt = _BY_LONG[matches[0]]
    if opt.arg == NO:
        if eq:
            raise UsageError(f"option '--{opt.long}' doesn't allow an argument")
        return opt, None
    if opt.arg == REQUIRED and not eq:
        arg = next(rest, None)
        if arg is None:
            raise UsageError(f"option '--{opt.long}' requires an argument")
        return opt, arg
    return opt, value if eq else None


def _short_options(letters: str, rest: Iterator[str]) -> Iterator[tuple[Option, str | None]]:
    """A cluster of short options (``-Jn``); the first that takes an argument takes
    the rest of the cluster, or (required) the next word."""
    for j, ch in enumerate(letters):
        opt = _BY_SHORT.get(ch)
        if opt is None:
            raise UsageError(f"invalid option -- '{ch}'")
        if opt.arg == NO:
            yield opt, None
            continue
        arg: str | None = letters[j + 1:]
        if opt.arg == REQUIRED and not arg:
            arg = next(rest, None)
            if arg is None:
                raise UsageError(f"option requires an argument -- '{ch}'")
        yield opt, arg or None
        return


def _check_exclusive(key: str, seen: dict[int, str]) -> None:
    """Refuse a second option of an EXCLUSIVE group (``seen``: group -> first key)."""
    for gi, group in enumerate(EXCLUSIVE):
        if key in group and seen.setdefault(gi, key) != key:
            raise UsageError("mutually exclusive arguments: "
                             + " ".join(f"--{_LONG_OF[k]}" for k in group))


def parse_args(argv: list[str]) -> Config | str:
    """The run configuration, or the text to print for -h/-H/-V."""
    cfg = Config()
    seen: dict[int, str] = {}
    positionals: list[str] = []
    for opt, value in _getopt(argv, positionals):
        _check_exclusive(opt.key, seen)
        text = opt.act(cfg, value)
        if text is not None:
            return text
    return _with_defaults(cfg, positionals)


def _with_defaults(cfg: Config, positionals: list[str]) -> Config:
    """lsns's defaults once every option is read: types, the NAMESPACE argument,
    columns (-t net adds two), the tree mode; then -o and the filter's columns."""
    is_net = "net" in cfg.types
    if not cfg.types:
        cfg.types = list(NS_TYPES)
    if positionals:
        if cfg.pid:
            raise UsageError("--task is mutually exclusive with <namespace>")
        cfg.ns = _parse_uint(positionals[0], 64, "invalid namespace argument")
        if not cfg.tree and not cfg.force_list:
            cfg.tree = "process"
        if not cfg.columns:
            cfg.columns = list(C.DEFAULT_FOR_NAMESPACE)
    if not cfg.columns:
        cfg.columns = list(C.DEFAULT[:-1])
        if is_net:
            cfg.columns += C.DEFAULT_NET_EXTRA
        cfg.columns.append(C.DEFAULT[-1])
        if not cfg.tree and not cfg.force_list:
            cfg.tree = "process"
    if cfg.outarg is not None:
        cfg.columns = _apply_output(cfg.outarg, cfg.columns)
    if cfg.filter is not None:
        cfg.filter.bind(_resolve_column)
    return cfg


def _apply_output(arg: str, current: list[str]) -> list[str]:
    """-o LIST replaces the columns, -o +LIST appends to them."""
    append = arg.startswith("+")
    names = arg[1:] if append else arg
    if not names:
        raise UsageError("no output columns given")
    out = list(current) if append else []
    for name in names.split(","):
        col = C.find(name)
        if col is None:
            raise UsageError(f"unknown column: {name}")
        out.append(col.name)
    return out


def _resolve_column(name: str) -> tuple[str, str] | None:
    col = C.find(name)
    return None if col is None else (col.name, col.json)

