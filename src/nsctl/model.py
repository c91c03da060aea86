"""The namespace map as plain data: no I/O, shared by CLI, snapshots and service.

Namespaces are keyed by inode: all namespace files live on one nsfs
superblock, so within one boot the inode alone identifies a namespace.

Each class's fields are one table: its annotated attributes, in order.  From
it :func:`_record` builds, once at import, the class's __slots__, constructor,
dict form, row (the tuple workers send) and loader from the dict form; and from
the table of each kind of reference, that kind's dict form, JSON text and
equality key.  The methods are compiled from generated source, so they run as
fast as methods written out by hand.  Plain classes rather than dataclasses:
importing dataclasses (and with it inspect and typing) costs more than a whole
small scan, and ``nsctl ls`` must start fast.
"""
from __future__ import annotations

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, Self, TypeVar, dataclass_transform

    _C = TypeVar("_C", bound=type)

    class _Record:
        """The members :func:`_record` makes in every record class, as the type checker
        sees them (the interpreter builds them at import, from the class's table)."""

        __slots__: ClassVar[tuple[str, ...]]

        def row(self) -> tuple[Any, ...]: ...

        @classmethod
        def from_row(cls, row: tuple[Any, ...]) -> Self: ...

        def to_dict(self) -> dict[str, Any]: ...

        @classmethod
        def from_dict(cls, d: dict[str, Any]) -> Self: ...
else:
    _Record = object   # record classes have no base class of their own

    def dataclass_transform(**_options: object):
        """Tells type checkers that _record makes constructors as dataclasses do."""
        return lambda decorator: decorator

# Kinds of reference that keep a namespace alive, in the order HELD-BY lists them.
PROCESS = "process"
THREAD = "thread"
FD = "fd"
SOCKET = "socket"
BINDMOUNT = "bindmount"
CHILD = "child"
REF_KINDS: tuple[str, ...] = (PROCESS, THREAD, FD, SOCKET, BINDMOUNT, CHILD)


def ns_label(ns_type: str, ino: int) -> str:
    """A namespace as the kernel names it in /proc/PID/ns links: ``net:[4026531840]``."""
    return f"{ns_type}:[{ino}]"


_REQUIRED = object()   # a field without a default: a required constructor parameter


class _Field:
    """One field of a class's table: its options (see :func:`field`), its name and type."""

    __slots__ = ("default", "init", "initial", "key", "plain", "record", "missing", "name",
                 "type", "optional")

    def __init__(self, default: Any = _REQUIRED, init: bool = True, initial: str = "None",
                 key: str | None = "", plain: bool = False, record: type | None = None,
                 missing: Any = _REQUIRED) -> None:
        self.default = default
        self.init = init
        self.initial = initial
        self.key = key
        self.plain = plain
        self.record = record
        self.missing = missing if missing is not _REQUIRED else default
        self.name = ""
        self.type = ""
        self.optional = False


def field(*, default: Any = _REQUIRED, init: bool = True, initial: str = "None",
          key: str | None = "", plain: bool = False, record: type | None = None,
          missing: Any = _REQUIRED) -> Any:
    """A field's options in its class's table, where they differ from the plain field
    (a constructor parameter, in the dict form under its own name).

    ``default``: the constructor's default.  ``init=False``: neither a constructor
    parameter nor in the row; each object starts with the value of the expression
    ``initial`` (source text: ``"[]"`` gives each its own list).  ``key``: its name in
    the dict form, None for none.  ``plain``: text whose JSON needs no escaping (a name
    nsctl chose or the kernel gave).  ``record``: the record class of its value, whose
    dict form nests in this one's and whose row stands in this one's row.
    ``missing``: the value a dict form without the field loads as (else its default).
    """
    return _Field(default, init, initial, key, plain, record, missing)


# Loading from the dict form (a snapshot file): a field's value made its declared type.
_LOAD = {"int": "int({})", "str": "str({})", "bool": "bool({})", "list[str]": "list({})",
         "dict[str, int]": "{{str(k): int(v) for k, v in {}.items()}}"}


_TABLES: dict[str, tuple[_Field, ...]] = {}   # each record class's table, by class name


def _read_table(cls: type) -> list[_Field]:
    """The class's fields, in the order its annotations list them."""
    fields = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        value = cls.__dict__.get(name, _REQUIRED)
        f = value if isinstance(value, _Field) else _Field(default=value)
        parts = [p.strip() for p in str(annotation).split("|")]
        f.name, f.optional = name, "None" in parts
        f.type = " | ".join(p for p in parts if p != "None")
        if f.key == "":
            f.key = name
        fields.append(f)
    return fields


def _compile(source: str, scope: dict[str, Any]) -> dict[str, Any]:
    """The functions ``source`` defines (source built here from a field table)."""
    exec(compile(source, f"<nsctl.model {scope['__name__']}>", "exec"), scope)
    return scope


# For each record class (and "ReferenceKinds"): the key of its table (what its
# methods are made from) and a function that writes its factory's source.
_GENERATED: dict[str, tuple[str, Callable[[], str]]] = {}


def _table_key(fields: list[_Field], *more: object) -> str:
    """What a class's generated methods depend on, as text: each field's options, and
    ``more`` (the class's other options)."""
    return repr([(f.name, f.type, f.optional, f.key, f.init, f.initial, f.plain,
                  f.record.__name__ if f.record is not None else None,
                  "required" if f.default is _REQUIRED else f.default,
                  "required" if f.missing is _REQUIRED else f.missing) for f in fields]
                + list(more))


def _factory_source(name: str, scope_names: list[str], sources: dict[str, str]) -> str:
    """Source: ``def NAME(scope)``, which takes the names the methods use from
    ``scope`` (defaults, record classes) and returns the methods, by name."""
    import re

    used = set(re.findall(r"\w+", "".join(sources.values())))
    lines = [f"def {name}(scope):"]
    lines += [f"    {k} = scope[{k!r}]" for k in scope_names if k in used]
    for method in sources.values():
        lines += ["    " + line for line in method.splitlines()]
    lines.append("    return {" + ", ".join(f"{m!r}: {m}" for m in sources) + "}")
    return "\n".join(lines) + "\n"


def _precompiled(name: str, key: str, scope: dict[str, Any]) -> dict[str, Any] | None:
    """The methods of record class ``name`` from nsctl._model_methods, the module
    :func:`generated_module` writes (loaded from its bytecode: nothing to compile),
    if it was written from a table with this ``key``; else None (the table changed
    since: the methods are compiled when first used)."""
    try:
        from . import _model_methods
    except ImportError:
        return None
    if getattr(_model_methods, "TABLES", {}).get(name) != key:
        return None
    made: dict[str, Any] = getattr(_model_methods, name)(scope)
    return made


class _Generated:
    """A method written from a field table, compiled the first time it is looked up,
    then put in the class in its place: compiling is the costly part of building a
    method, and a command uses only a few of them."""

    __slots__ = ("name", "sources", "scope", "wrap")

    def __init__(self, name: str, sources: Callable[[], dict[str, str]],
                 scope: dict[str, Any], wrap: Callable[[Any], Any] | None = None) -> None:
        self.name = name
        self.sources = sources   # every method's source, by name (built when asked)
        self.scope = scope
        self.wrap = wrap

    def __get__(self, obj: object, cls: type) -> Any:
        func = _compile(self.sources()[self.name], self.scope)[self.name]
        setattr(cls, self.name, self.wrap(func) if self.wrap is not None else func)
        return getattr(cls if obj is None else obj, self.name)


def _text_value(f: _Field, value: str, optional: bool) -> str | None:
    """How JSON text writes a field whose value is the expression ``value`` (null
    where ``optional`` and None), as part of an f-string; None where the encoder must
    write it (text that may need escaping)."""
    if f.type == "int":
        return f'{{"null" if {value} is None else {value}}}' if optional else f"{{{value}}}"
    if f.type == "str" and f.plain and not optional:
        return f'"{{{value}}}"'
    return None


def _sources(name: str, fields: list[_Field], eq: bool,
             tail: tuple[str, ...]) -> dict[str, str]:
    """The source of each method _record makes, by name."""
    init = [f for f in fields if f.init]
    keyed = [f for f in fields if f.key is not None]
    params = ", ".join(f.name if f.default is _REQUIRED else f"{f.name}=_default_{f.name}"
                       for f in init)
    out = {"__init__": "\n".join([f"def __init__(self, {params}):"] +
                                 [f"    self.{f.name} = {f.name if f.init else f.initial}"
                                  for f in fields])}

    def row_value(f: _Field) -> str:
        value = f"self.{f.name}"
        return value if f.record is None else f"({value}.row() if {value} is not None else None)"
    out["row"] = f"def row(self):\n    return ({''.join(row_value(f) + ', ' for f in init)})"
    unrow = [f"row[{i}]" if f.record is None else
             f"({f.record.__name__}.from_row(row[{i}]) if row[{i}] is not None else None)"
             for i, f in enumerate(init)]
    out["from_row"] = f"def from_row(cls, row):\n    return cls({', '.join(unrow)})"

    def dict_value(f: _Field) -> str:
        value = f"self.{f.name}"
        if f.record is not None:
            return f"{value}.to_dict() if {value} is not None else None"
        return f"dict({value})" if f.type.startswith("dict[") else value
    entries = [f"{f.key!r}: {dict_value(f)}" for f in keyed] + [f"{k!r}: {k}" for k in tail]
    for method in ("_fields_dict", "to_dict"):
        out[method] = (f"def {method}({', '.join(('self', *tail))}):\n"
                       f"    return {{{', '.join(entries)}}}")

    def loaded(f: _Field) -> str:
        if f.missing is _REQUIRED and not f.optional:
            value = f"d[{f.key!r}]"
        else:
            value = f"d.get({f.key!r}, _missing_{f.name})"
        if f.record is not None:
            return f"{f.record.__name__}.from_dict({value}) if {value} else None"
        return value if f.optional else _LOAD[f.type].format(value)
    out["from_dict"] = (f"def from_dict(cls, d):\n    return cls("
                        f"{', '.join(loaded(f) for f in init if f.key is not None)})")

    texts = [_text_value(f, f"self.{f.name}", f.optional) for f in keyed]
    if None not in texts:
        text = ",".join(f'"{f.key}":{t}' for f, t in zip(keyed, texts, strict=True))
        out["_fields_text"] = f"def _fields_text(self):\n    return f'{text}'"
    if eq:
        out["__eq__"] = ("def __eq__(self, other):\n"
                         "    return isinstance(other, type(self)) and self.row() == other.row()")
        out["__hash__"] = "def __hash__(self):\n    return hash(self.row())"
    return out


@dataclass_transform(field_specifiers=(field,))
def _record(*, eq: bool = False, tail: tuple[str, ...] = ()) -> Callable[[_C], _C]:
    """Build a class's __slots__ and methods from its table of fields (module docstring).

    Made: ``__init__`` (the fields in table order, defaults as given); ``row()``, the
    constructor's fields as plain values, and ``from_row(row)``; ``_fields_dict()``,
    the fields that have a key, in table order, then the keys ``tail`` with the values
    it is given (also ``to_dict`` unless the class writes its own); ``from_dict(d)``;
    ``_fields_text()``, the fields as compact JSON text without braces, where each
    can be written so; with ``eq``, ``__eq__`` and ``__hash__`` on the row.
    """
    def build(cls: _C) -> _C:
        fields = _read_table(cls)
        name = cls.__name__
        scope: dict[str, Any] = {"__name__": name}
        for f in fields:
            scope[f"_default_{f.name}"] = f.default
            scope[f"_missing_{f.name}"] = None if f.missing is _REQUIRED else f.missing
            if f.record is not None:
                scope[f.record.__name__] = f.record
        names = [f.name for f in fields]
        members = {k: v for k, v in vars(cls).items()
                   if k not in ("__dict__", "__weakref__") and k not in names}
        members["__slots__"] = tuple(names)

        made_sources: dict[str, str] = {}

        def sources() -> dict[str, str]:
            if not made_sources:
                made_sources.update(_sources(name, fields, eq, tail))
            return made_sources
        key = _table_key(fields, eq, tail)
        scope_names = sorted(k for k in scope if k != "__name__")
        _GENERATED[name] = (key, lambda: _factory_source(name, scope_names, sources()))
        compiled = _precompiled(name, key, scope)
        made = ["__init__", "row", "from_row", "_fields_dict", "to_dict", "from_dict"]
        if all(_text_value(f, "", f.optional) is not None for f in fields if f.key is not None):
            made.append("_fields_text")
        if eq:
            made += ["__eq__", "__hash__"]
        for method in made:
            if method not in members:
                wrap = classmethod if method.startswith("from_") else None
                if compiled is not None:
                    func = compiled[method]
                    members[method] = wrap(func) if wrap is not None else func
                else:
                    members[method] = _Generated(method, sources, scope, wrap)
        _TABLES[name] = tuple(fields)
        made_cls = scope[name] = type(name, cls.__bases__, members)
        return made_cls   # type: ignore[return-value]
    return build


@_record()
class Reference(_Record):
    """One thing that keeps a namespace alive, and where it is.

    Which fields are set depends on ``kind`` (the table REF_FIELDS):
    process: pid, link ("net", or "pid_for_children" / "time_for_children");
    thread: pid, tid, link; fd: pid, fd; socket: pid, fd, socket (its inode);
    bindmount: path, mntns (the mount namespace the mount is in);
    child: child (inode of the namespace it owns or parents), relation ("owner"/"parent").
    Its dict form and JSON text hold its kind's fields; two references are equal
    when their kinds and their kind's fields are.
    """

    kind: str = field(plain=True)
    pid: int | None = None
    tid: int | None = None
    fd: int | None = None
    link: str | None = field(default=None, plain=True)
    socket: int | None = None
    path: str | None = None
    mntns: int | None = None
    child: int | None = None
    relation: str | None = field(default=None, plain=True)

    def to_dict(self) -> dict[str, Any]:
        """``kind`` and its kind's fields that are set."""
        return _REF_DICT[self.kind](self)

    def json_text(self) -> str | None:
        """:meth:`to_dict` as compact JSON text, written directly (see
        :meth:`Namespace.json_text`); None for a bind mount (a path, which needs the
        encoder's escaping) or where a field the kind always has is missing."""
        make = _REF_TEXT[self.kind]
        return make(self) if make is not None else None

    def _key(self) -> tuple:
        return _REF_KEY[self.kind](self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Reference({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"


# The fields each kind of reference sets, in the order its dict form lists them.
REF_FIELDS: dict[str, tuple[str, ...]] = {
    PROCESS: ("pid", "link"), THREAD: ("pid", "tid", "link"), FD: ("pid", "fd"),
    SOCKET: ("pid", "fd", "socket"), BINDMOUNT: ("path", "mntns"), CHILD: ("child", "relation"),
}


def _ref_sparse(ref: Reference, keys: tuple[str, ...]) -> dict[str, Any]:
    """``kind`` and those of ``keys`` that are set."""
    out: dict[str, Any] = {"kind": ref.kind}
    for key in keys:
        value = getattr(ref, key)
        if value is not None:
            out[key] = value
    return out


def _ref_all_dict(ref: Reference) -> dict[str, Any]:
    """The dict form of a reference of a kind nsctl doesn't know (from a snapshot)."""
    return _ref_sparse(ref, Reference.__slots__[1:])


def _ref_all_key(ref: Reference) -> tuple:
    """The equality key of a reference of a kind nsctl doesn't know: all its fields."""
    return ref.row()


class _ByKind(dict):
    """A function for each kind of reference: precompiled (see :func:`_precompiled`)
    or compiled from REF_FIELDS the first time that kind asks (see _Generated);
    ``fallback`` for kinds nsctl doesn't know."""

    def __init__(self, table: str, source: Callable[[str, tuple[str, ...]], str | None],
                 fallback: Any) -> None:
        super().__init__()
        self.table = table
        self.source = source
        self.fallback = fallback

    def __missing__(self, kind: str) -> Any:
        func = (_REF_PRECOMPILED or {}).get(f"{self.table}_{kind}")
        if func is None:
            keys = REF_FIELDS.get(kind)
            source = self.source(kind, keys) if keys is not None else None
            if source is None:
                func = self.fallback
            else:
                func = _compile(source, {"__name__": f"Reference {kind}",
                                         "_ref_sparse": _ref_sparse})["make"]
        self[kind] = func
        return func


def _unpacked(keys: tuple[str, ...], if_unset: str) -> str:
    """Source: the fields ``keys`` of reference ``r`` as locals; ``if_unset`` returned
    where one of them is None."""
    return (f"    {', '.join(keys)}, = {', '.join('r.' + k for k in keys)},\n"
            f"    if {' or '.join(k + ' is None' for k in keys)}:\n        return {if_unset}\n")


def _ref_dict_source(kind: str, keys: tuple[str, ...]) -> str:
    """Source: the dict form of a reference of ``kind``, its set fields."""
    entries = ", ".join([f"'kind': {kind!r}"] + [f"{k!r}: {k}" for k in keys])
    return f"def make(r):\n{_unpacked(keys, f'_ref_sparse(r, {keys!r})')}    return {{{entries}}}"


def _ref_text_source(kind: str, keys: tuple[str, ...]) -> str | None:
    """Source: the JSON text of a reference of ``kind`` with all its fields set (else
    None); no source where a field may need the encoder's escaping (a path)."""
    table = {f.name: f for f in _TABLES["Reference"]}
    texts = [_text_value(table[k], k, False) for k in keys]
    if None in texts:
        return None
    text = ",".join([f'"kind":"{kind}"'] + [f'"{k}":{t}' for k, t in zip(keys, texts, strict=True)])
    return f"def make(r):\n{_unpacked(keys, 'None')}    return f'{{{{{text}}}}}'"


def _ref_key_source(kind: str, keys: tuple[str, ...]) -> str:
    """Source: the equality key of a reference of ``kind``: its kind and its fields."""
    return f"def make(r):\n    return ({kind!r}, {''.join(f'r.{k}, ' for k in keys)})"


_REF_SOURCES = {"dict": _ref_dict_source, "text": _ref_text_source, "key": _ref_key_source}


def _ref_kinds_factory() -> str:
    """Source: ``def ReferenceKinds(scope)``, which returns the function of each table
    (dict, text, key) and kind of reference as ``{"TABLE_KIND": function}``."""
    methods = {}
    for table, source in _REF_SOURCES.items():
        for kind, keys in REF_FIELDS.items():
            text = source(kind, keys)
            if text is not None:
                methods[f"{table}_{kind}"] = text.replace("def make(", f"def {table}_{kind}(", 1)
    return _factory_source("ReferenceKinds", ["_ref_sparse"], methods)


_REF_KINDS_KEY = _table_key(list(_TABLES["Reference"]), REF_FIELDS)
_GENERATED["ReferenceKinds"] = (_REF_KINDS_KEY, _ref_kinds_factory)
_REF_PRECOMPILED = _precompiled("ReferenceKinds", _REF_KINDS_KEY, {"_ref_sparse": _ref_sparse})
_REF_DICT = _ByKind("dict", _ref_dict_source, _ref_all_dict)
_REF_TEXT = _ByKind("text", _ref_text_source, None)
_REF_KEY = _ByKind("key", _ref_key_source, _ref_all_key)


def generated_module() -> str:
    """The text of nsctl/_model_methods.py: every factory's source (the methods the
    field tables make), and ``TABLES``, the key of the table each was made from, by
    which :func:`_precompiled` knows a factory is current.  (A change to the code
    that writes the methods changes no key: tests/test_model.py checks that the file
    in the tree is this text.)  ``scripts/generate-model-methods`` writes it."""
    parts = ['"""The methods of nsctl.model\'s record classes, generated from their field\n'
             'tables by scripts/generate-model-methods: do not edit.  nsctl.model uses a\n'
             'factory only while its table\'s key is the one in TABLES (else it compiles\n'
             'the methods)."""\n']
    parts += [f"\n\n{write()}" for _, write in _GENERATED.values()]
    parts.append("\n\nTABLES = {\n" + "".join(f"    {name!r}: {key!r},\n"
                                               for name, (key, _) in _GENERATED.items()) + "}\n")
    return "".join(parts)


@_record(eq=True)
class Container(_Record):
    """The container a process is in: what its cgroup path names, and what the
    container's engine says of it (nsctl.discovery.engines) where it could be asked.

    ``id``: the engine's container id (64 hex digits), or the name for engines
    whose cgroup carries only a name (systemd-nspawn, LXC); None on a namespace
    label that stands for a whole pod.  ``name``: the engine's name for it (or
    the one the cgroup path carries: nspawn, LXC).  ``pod``: the pod's id (a
    Kubernetes pod UID, a Podman pod id).  The rest come from the engine alone:
    ``image``, the Compose ``project`` and ``service`` (its
    ``com.docker.compose.*`` labels), the pod's ``pod_name`` and, for
    Kubernetes, ``pod_namespace``.
    """

    engine: str
    id: str | None
    name: str | None = None
    pod: str | None = None
    image: str | None = None
    project: str | None = None
    service: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None

    @property
    def label(self) -> str:
        """Short text for tables: ``docker:web``, ``podman:3f4e5a6b7c8d`` (no name
        known), ``nspawn:web``; for a pod's namespace ``pod:accp-pod`` (Kubernetes:
        ``pod:NAMESPACE/NAME``), or ``containerd:pod-1a2b3c4d`` with no pod name known."""
        if self.id is None:
            if self.pod_name:
                where = f"{self.pod_namespace}/" if self.pod_namespace else ""
                return f"pod:{where}{self.pod_name}"
            return f"{self.engine}:pod-{(self.pod or '')[:8]}"
        return f"{self.engine}:{self.name or self.id[:12]}"

    def __repr__(self) -> str:
        return f"Container({self.label})"


@_record(tail=("hidden", "held_by", "pids", "refs", "container"))
class Namespace(_Record):
    """One namespace: identity, relations and what holds it.

    Its row is its identity and relations, not what holds it; its dict form adds
    what holds it (``tail``)."""

    ino: int = field(key="ns")
    type: str = field(plain=True)
    dev: int | None = None
    id: int | None = None          # NS_GET_ID, None where the kernel lacks it
    owner: int | None = None       # inode of the owning user namespace
    parent: int | None = None      # inode of the parent (user and pid only)
    owner_uid: int | None = None   # creator UID of the owning (or this) user namespace
    # The processes whose ns link points here.
    pids: list[int] = field(init=False, initial="[]", key=None)
    refs: list[Reference] = field(init=False, initial="[]", key=None)
    # The container (or Kubernetes pod) all its processes are in; see nsctl.discovery.cgroup_names.
    container: Container | None = field(init=False, key=None, record=Container)

    if TYPE_CHECKING:
        def _fields_dict(self, hidden: bool, held_by: list[str], pids: list[int],
                         refs: list[dict[str, Any]],
                         container: dict[str, Any] | None) -> dict[str, Any]: ...

        def _fields_text(self) -> str: ...

    def __repr__(self) -> str:
        return f"Namespace({self.label} id={self.id} held_by={self.held_by})"

    @property
    def label(self) -> str:
        """``type:[inode]``, as the kernel names it (and as a SPEC names it)."""
        return ns_label(self.type, self.ino)

    @property
    def held_by(self) -> list[str]:
        kinds = {r.kind for r in self.refs}
        if len(kinds) == 1:
            return list(kinds)
        return [k for k in REF_KINDS if k in kinds]

    @property
    def hidden(self) -> bool:
        """Kept alive only by a child namespace: no process, fd or mount holds it."""
        return all(r.kind == CHILD for r in self.refs)

    def to_dict(self) -> dict[str, Any]:
        refs = self.refs
        # The per-kind functions are called directly, not through Reference.to_dict:
        # one call per reference instead of two (a big host has a hundred thousand).
        ref_dict = _REF_DICT
        if len(refs) == 1:   # most namespaces of a big host: one thread or process each
            ref = refs[0]
            held_by, ref_dicts = [ref.kind], [ref_dict[ref.kind](ref)]
        else:
            held_by, ref_dicts = self.held_by, [ref_dict[r.kind](r) for r in refs]
        return self._fields_dict(held_by == [CHILD], held_by, sorted(self.pids), ref_dicts,
                                 self.container.to_dict() if self.container else None)

    def json_text(self) -> str | None:
        """:meth:`to_dict` as compact JSON text, the very text json.dumps writes with
        separators (",", ":"), written directly: 2-3 times as fast as building the dict
        and encoding it.  For a live scan's namespaces, whose fields are the numbers
        and names nsctl read from the kernel; None where text needs the encoder's
        escaping: a container, or a reference with a path."""
        if self.container is not None:
            return None
        refs = self.refs
        if len(refs) == 1:   # most namespaces of a big host: one thread or process each
            ref = refs[0]
            kind = ref.kind
            make = _REF_TEXT[kind]
            texts = make(ref) if make is not None else None
            if texts is None:
                return None
            held_by, hidden = f'"{kind}"', "true" if kind == CHILD else "false"
        else:
            parts = []
            for r in refs:   # as in to_dict: the kind's function, called directly
                make = _REF_TEXT[r.kind]
                text = make(r) if make is not None else None
                if text is None:
                    return None
                parts.append(text)
            texts = ",".join(parts)
            kinds = self.held_by
            held_by = ",".join([f'"{k}"' for k in kinds])
            hidden = "true" if kinds == [CHILD] else "false"
        pids = ",".join(map(str, sorted(self.pids))) if self.pids else ""
        return (f'{{{self._fields_text()},"hidden":{hidden},"held_by":[{held_by}],'
                f'"pids":[{pids}],"refs":[{texts}],"container":null}}')


@_record()
class Process(_Record):
    """What discovery read of one process, under its pidfd."""

    pid: int
    ppid: int
    comm: str
    cmdline: list[str]
    uid: int
    starttime: int = field(missing=0)
    ns: dict[str, int]             # ns link name -> inode, incl. *_for_children
    nspid: list[int] | None = None   # PID at each level, outermost first
    state: str = ""                # R, S, D, Z, ... from /proc/PID/stat
    # unshare(CLONE_NEWPID) done, no child forked yet: the new PID namespace
    # exists but the kernel shows no pid_for_children until it has an init.
    pidns_pending: bool = False
    container: Container | None = field(default=None, record=Container)   # /proc/PID/cgroup
    # Its pidfd's inode when it was read: on pidfs (Linux 6.9) unique to the process
    # for the whole boot, where starttime only has clock-tick (10 ms) resolution.
    # Tells a rescan whether a PID still names this process; not in the JSON.
    pidfd_ino: int | None = field(default=None, key=None)

    def __repr__(self) -> str:
        return f"Process({self.pid} {self.comm!r})"

    @property
    def command(self) -> str:
        return " ".join(self.cmdline) if self.cmdline else self.comm


class Problem:
    """Something discovery could not see, and why: the reason a result is partial."""

    __slots__ = ("reason", "what", "pid")

    def __init__(self, reason: str, what: str, pid: int | None = None) -> None:
        self.reason = reason  # "vanished", "denied", "unsupported", "error"
        self.what = what      # what was being read
        self.pid = pid

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "what": self.what}
        if self.pid is not None:
            out["pid"] = self.pid
        return out

    def __repr__(self) -> str:
        return f"Problem({self.reason}: {self.what})"


class Snapshot:
    """The whole discovery: every namespace found, the processes read, the gaps."""

    __slots__ = ("namespaces", "processes", "problems", "own", "has_ns_id", "offline",
                 "own_pid_level", "pid_inits", "viewer_pid", "net_views", "views")

    def __init__(self) -> None:
        self.namespaces: dict[int, Namespace] = {}
        self.processes: dict[int, Process] = {}
        self.problems: list[Problem] = []
        self.own: dict[str, int] = {}          # the viewer's namespaces (link -> inode)
        self.has_ns_id: bool | None = None
        # Loaded from a snapshot file: commands must not ask the live kernel about it.
        self.offline = False
        self.own_pid_level: int | None = None  # absolute level of the viewer's PID namespace
        # PID namespace inode -> (init PID, state) as found when a snapshot was taken,
        # for inits discovery could not read (PID 1 may refuse even root).
        self.pid_inits: dict[int, tuple[int, str]] = {}
        self.viewer_pid: int | None = None     # the nsctl process that took it
        # What each network namespace saw (nsctl.views.net), when a snapshot was
        # taken with --views; None when not captured.
        self.net_views: dict[int, dict] | None = None
        # The same for every other type (nsctl.views.read_view), also with --views.
        self.views: dict[int, dict] | None = None

    @property
    def partial(self) -> bool:
        """Something could not be read (processes that merely exited don't count)."""
        return any(p.reason != "vanished" for p in self.problems)

    def of_type(self, ns_type: str) -> list[Namespace]:
        return [ns for ns in self.namespaces.values() if ns.type == ns_type]

    def level(self, ino: int) -> int:
        """Depth of a user or PID namespace in its tree (0 at the top we can see)."""
        depth = 0
        seen = set()
        ns = self.namespaces.get(ino)
        while ns is not None and ns.parent is not None and ns.parent not in seen:
            seen.add(ns.ino)
            depth += 1
            ns = self.namespaces.get(ns.parent)
        return depth

    def to_dict(self, namespaces: Any = None) -> dict[str, Any]:
        """The document of ``nsctl ls --json``; ``namespaces``, if given, stands in
        for the list of every namespace (a filtered one, or rows converted later)."""
        if namespaces is None:
            namespaces = [ns.to_dict() for ns in sorted(self.namespaces.values(),
                                                        key=lambda n: n.ino)]
        return {
            "namespaces": namespaces,
            "processes": [p.to_dict() for p in sorted(self.processes.values(),
                                                      key=lambda p: p.pid)],
            "partial": self.partial,
            "problems": [p.to_dict() for p in self.problems],
        }
