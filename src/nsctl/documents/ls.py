"""The ``nsctl ls --json`` document (``GET /api/v1/namespaces``): every namespace, or those
of the types asked for, with every process, ``partial`` and ``problems``.

The type list is parsed here, the one place for both the command line (``-t``) and the
service (``type=``): repeatable, comma lists allowed.
"""
from __future__ import annotations

from ..kernel import nsfs
from ..kernel.errors import NsctlError
from ..model import Namespace, Snapshot

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class UnknownType(NsctlError):
    """A namespace type nsctl does not know: bad input, a usage error (exit status 2)."""

    exit_status = 2


def parse_types(values: Iterable[str] | None) -> list[str] | None:
    """The types named by ``values`` (each one type or a comma list), in order; None
    for none given (every type); UnknownType for a name that is not a type."""
    if not values:
        return None
    out = []
    for value in values:
        for name in value.split(","):
            t = name.strip()
            if t not in nsfs.CLONE_FLAGS:
                raise UnknownType(f"unknown namespace type {t!r} "
                                  f"(one of {', '.join(nsfs.NS_TYPES)})")
            out.append(t)
    return out


def select(snap: Snapshot, types: Iterable[str] | None = None) -> list[Namespace]:
    """The namespaces of ``types`` (all for None), in inode order."""
    wanted = None if types is None else set(types)
    return sorted((ns for ns in snap.namespaces.values()
                   if wanted is None or ns.type in wanted), key=lambda n: n.ino)


def document(snap: Snapshot, types: Iterable[str] | None = None,
             rows: Callable[[list[Namespace]], Any] | None = None) -> dict[str, Any]:
    """The document; ``rows``, if given, stands in for the selected namespaces' dicts
    (the command line's lazy encoder converts them while it writes)."""
    namespaces = select(snap, types)
    return snap.to_dict(namespaces=rows(namespaces) if rows is not None
                        else [ns.to_dict() for ns in namespaces])
