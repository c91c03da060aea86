"""Questions answered from a snapshot: SPEC forms, stable paths, PID translation, diffs,
and reopening a discovered namespace."""
