"""``nsctl lsns``: util-linux lsns(8) compatible listing over nsctl's discovery.

Accepts lsns's options and prints what lsns 2.42 prints for them (columns,
defaults, table/raw/JSON/tree layouts, filter language), but lists every
namespace nsctl finds: also those held only by an fd, a socket, a bind mount
in any mount namespace, or only by a child namespace (lsns shows such
namespaces with NPROCS 0 and empty PID/COMMAND, as here).

The command runs in three passes, as lsns.c does: options -> a run
configuration; discovery -> rows (one per namespace, or one per process with
a NAMESPACE argument) built in lsns's order and nested by the tree mode;
rendering of those lines as a table, raw, or JSON.  The renderer follows
libsmartcols (column widths, width hints, truncation on terminals, tree art,
multi-line cells, JSON layout), so it lives here and imports nothing heavy.

Modules, one per concern: ``options`` (the option and exclusion tables, the
run's Config), ``columns`` (the column table), ``filter`` and
``filter_syntax`` (-Q expressions), ``rows`` (the rows from a snapshot),
``layout`` (the output model and its rendering), ``command`` (``main``).
"""
from __future__ import annotations

from .command import main, run

__all__ = ["main", "run"]
