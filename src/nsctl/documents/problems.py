"""What every JSON document ends with: whether the result is partial, and why."""
from __future__ import annotations

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from typing import Any

    from ..model import Snapshot


def gaps(snap: Snapshot) -> dict[str, Any]:
    """``partial`` (something could not be read; processes that merely exited don't
    count) and ``problems`` (a record of each thing not read, and the reason), as
    ``nsctl ls --json`` gives them."""
    return {"partial": snap.partial, "problems": [p.to_dict() for p in snap.problems]}
