"""The ``nsctl diff A B --json`` document: what changed between two snapshots
(:mod:`nsctl.query.diff` compares them)."""
from __future__ import annotations

from ..model import Snapshot
from ..query.diff import BY_ID, diff


def document(a: Snapshot, b: Snapshot, by: str = BY_ID) -> dict:
    """What appeared, disappeared, changed and moved from ``a`` to ``b``, namespaces
    matched ``by`` NS_GET_ID or by stable path."""
    return diff(a, b, by)
