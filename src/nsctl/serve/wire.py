"""The model as it goes from the refresher to the server: whole, or as a patch.

A model is a snapshot document (nsctl.documents.snapshot): its namespaces sorted
by inode, its processes by PID, and a few scalar keys.  A change on a host
touches a handful of its entries, so after the first model the refresher sends
only what changed: :func:`patch` names the entries put (new or changed) and
dropped, and the top-level keys set or unset; :func:`apply` makes the next
document from the one before, sharing every entry that did not change (no
entry is ever modified once made, so documents of earlier models stay as they
were).  A patch that would carry most of the model is not worth it: the whole
model goes instead.

Encoding is orjson's where it can (a tenth of the standard encoder's time for a
model of a thousand namespaces), the standard library's where orjson refuses the
text (a name that is not UTF-8, kept as surrogate escapes).
"""
from __future__ import annotations

import json
from operator import itemgetter

# The lists of records in a model, and the key that tells their entries apart.
COLLECTIONS = (("namespaces", "ns"), ("processes", "pid"))
_KEYED = {name for name, _key in COLLECTIONS}

# A patch that puts or drops more than this share of a model's entries goes as the
# whole model: applying it would cost as much as parsing.
WHOLE_ABOVE = 0.5


def dumps(doc: object) -> bytes:
    """``doc`` as compact JSON text (one line)."""
    try:
        import orjson

        return orjson.dumps(doc)
    except (ImportError, TypeError, ValueError):   # (orjson.JSONEncodeError: a TypeError)
        return json.dumps(doc).encode()


def loads(text: bytes):
    """What :func:`dumps` wrote (orjson where it can, as fast again)."""
    try:
        import orjson

        return orjson.loads(text)
    except (ImportError, ValueError):   # (orjson.JSONDecodeError: a ValueError)
        return json.loads(text)


def patch(old: dict, new: dict) -> dict | None:
    """What turns document ``old`` into ``new``: ``{"set": {key: value}, "unset": [key],
    COLLECTION: [[entries put], [keys dropped]]}`` with only what is there; None when
    they are equal, {"whole": True} when the patch would not be worth it."""
    out: dict = {}
    changed = {k: v for k, v in new.items() if k not in _KEYED and old.get(k, out) != v}
    if changed:
        out["set"] = changed
    gone = [k for k in old if k not in new]
    if gone:
        out["unset"] = gone
    moved = 0
    total = 0
    for name, key in COLLECTIONS:
        before, after = old.get(name) or [], new.get(name) or []
        total += len(after)
        if before == after:
            continue
        index = {e[key]: e for e in before}
        put = [e for e in after if index.get(e[key]) != e]
        seen = {e[key] for e in after}
        dropped = [k for k in index if k not in seen]
        moved += len(put) + len(dropped)
        if put or dropped:
            out[name] = [put, dropped]
    if not out:
        return None
    if moved > WHOLE_ABOVE * max(total, 1):
        return {"whole": True}
    return out


def apply(base: dict, change: dict) -> dict:
    """The document that ``change`` (a :func:`patch`) makes of ``base``; ``base`` is
    left as it was.  ValueError for a patch that does not fit it."""
    if not isinstance(change, dict) or "whole" in change:
        raise ValueError("not a patch")
    doc = dict(base)
    doc.update(change.get("set") or {})
    for key in change.get("unset") or ():
        doc.pop(key, None)
    for name, key in COLLECTIONS:
        if name not in change:
            continue
        put, dropped = change[name]
        index = {e[key]: e for e in base.get(name) or ()}
        for k in dropped:
            if index.pop(k, None) is None:
                raise ValueError(f"the patch drops {name} {k}, which the model lacks")
        for entry in put:
            index[entry[key]] = entry
        doc[name] = sorted(index.values(), key=itemgetter(key))
    return doc
