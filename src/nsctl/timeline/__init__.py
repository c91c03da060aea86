"""Namespaces over time: live events from rescans (watch) and their SQLite store (history)."""
