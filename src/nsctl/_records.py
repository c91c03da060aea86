"""The machinery behind nsctl.model's records: a class's annotated fields are its
table, and :func:`_record` builds from it, once at import, the class's __slots__,
constructor, row, dict form, loader and JSON text.

The methods come from source written from the table: loaded from
``nsctl._model_methods`` (the same source, generated ahead by
``scripts/generate-model-methods`` and compiled to bytecode on install) while the
table is the one that file was written from, else compiled the first time each is
used.  They run as fast as methods written out by hand.  Plain classes rather than
dataclasses: importing dataclasses (and with it inspect and typing) costs more than
a whole small scan, and ``nsctl ls`` must start fast.
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
