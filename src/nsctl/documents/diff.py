"""The ``nsctl diff A B --json`` document: what changed between two snapshots
(:mod:`nsctl.query.diff` compares them), narrowed as the user asks."""
from __future__ import annotations

from ..model import Snapshot
from ..query.diff import BY_ID, diff

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Iterable

#: The references whose coming and going is process churn (a process starting,
#: exiting, or a thread).
_PROCESS_KINDS = frozenset({"process", "thread"})


def document(a: Snapshot, b: Snapshot, by: str = BY_ID, types: Iterable[str] | None = None,
             host_processes: bool = True) -> dict:
    """What appeared, disappeared, changed and moved from ``a`` to ``b``, namespaces
    matched ``by`` NS_GET_ID or by stable path; only namespaces of ``types`` (all for
    None); without ``host_processes``, processes coming and going in the host's own
    namespaces (those the nsctl that took either snapshot was in) are left out of
    ``changed`` and ``moved`` (what the host's processes do all the time), not what
    happens to namespaces.  ``equal`` is about what is left."""
    result = diff(a, b, by)
    wanted = set(types) if types is not None else None
    own = set(a.own.values()) | set(b.own.values())

    def kept(d: dict) -> bool:
        return wanted is None or d["type"] in wanted

    result["appeared"] = [d for d in result["appeared"] if kept(d)]
    result["disappeared"] = [d for d in result["disappeared"] if kept(d)]
    changed = []
    for d in result["changed"]:
        if not kept(d):
            continue
        if not host_processes and d["ns"] in own:
            d["added"] = [r for r in d["added"] if r["kind"] not in _PROCESS_KINDS]
            d["dropped"] = [r for r in d["dropped"] if r["kind"] not in _PROCESS_KINDS]
            if not (d["added"] or d["dropped"]):
                continue
        changed.append(d)
    result["changed"] = changed
    result["moved"] = [m for m in result["moved"]
                       if (wanted is None or m["link"].replace("_for_children", "") in wanted)
                       and (host_processes or not (m["from"] in own and m["to"] in own))]
    interfaces = result["interfaces"]
    result["equal"] = not (result["appeared"] or result["disappeared"] or changed
                           or result["moved"] or (interfaces and any(interfaces.values())))
    return result
