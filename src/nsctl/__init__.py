"""nsctl: see and handle Linux namespaces.

    >>> import nsctl
    >>> snap = nsctl.discover()          # every namespace on the host
    >>> snap.namespaces[4026531840].type
    'net'
"""
from __future__ import annotations

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"

if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = ["discover", "Options", "Snapshot", "Namespace", "Process", "Reference", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `nsctl --help` must not pay for discovery imports.
    if name in ("discover", "Options"):
        from . import discovery as _discovery

        return getattr(_discovery, name)
    if name in ("Snapshot", "Namespace", "Process", "Reference"):
        from . import model

        return getattr(model, name)
    raise AttributeError(name)
