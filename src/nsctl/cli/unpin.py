"""``nsctl unpin PATH`` (lives with pin)."""
from .pin import main_unpin as main

__all__ = ["main"]
