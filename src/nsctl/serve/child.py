"""The helper processes of ``nsctl serve``, each a fresh interpreter.

Each runs :func:`main` with its role, in an isolated interpreter started by
:func:`nsctl.serve.privileges.start_isolated` (fork+exec done in C, which is
safe from a process with threads); the server talks to the refresher and the
worker over their stdin and stdout.  They are single-threaded, so they may
fork the children that discovery and views use to enter namespaces: no lock
of another thread can be inherited held.

launcher
    Started by the server before it drops its capabilities; starts the
    refresher and workers on the server's request (see
    :mod:`nsctl.serve.privileges`).

refresher
    Owns a :class:`nsctl.timeline.watch.Watcher`: scans, waits for a trigger (process
    events or the interval), rescans.  Writes to stdout, one JSON line each:
    ``{"kind": "model", ...}`` followed by a line holding the snapshot
    document, first; then ``{"kind": "delta", ...}`` followed by a line holding
    what changed (:mod:`nsctl.serve.wire`), whenever the model changed (or
    ``model`` again when most of it did); ``{"kind": "scan", ...}`` after a
    rescan that changed nothing (the model is current as of then);
    ``{"kind": "error", ...}`` when a rescan failed.  Exits when stdin reaches
    EOF (the server went away) or stdout is closed.

worker
    Reads requests (one JSON line each) on stdin and answers each with one
    JSON line: ``model`` (followed by a snapshot document line: the model
    later requests refer to), ``view`` (one namespace's view), ``net`` (the
    views of all network namespaces), ``pin`` and ``unpin``.  Answers are
    ``{"ok": ...}`` or ``{"error": "one line", "status": HTTP status}``.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from types import SimpleNamespace

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from ..documents.snapshot import EntryCache
    from ..model import Snapshot


def _send(out, header: dict, body: bytes | None = None) -> None:
    out.write(json.dumps(header).encode() + b"\n")
    if body is not None:
        out.write(body + b"\n")
    out.flush()


def _stdin_closed() -> bool:
    """True once the server end of our stdin is gone (without blocking)."""
    ready, _, _ = select.select([0], [], [], 0)
    return bool(ready) and os.read(0, 4096) == b""


def _model_doc(snap: Snapshot, cache: EntryCache) -> tuple[dict, object]:
    """(the snapshot document with its time set to None, the time): the document
    without its time is what tells a change (compared as dicts, so no text is made
    for a model that did not change).  ``cache``: the refresher's
    :class:`~nsctl.documents.snapshot.EntryCache` (entries of unchanged namespaces
    are made once)."""
    from ..documents.snapshot import to_document

    doc = to_document(snap, cache)
    stamp, doc["time"] = doc.get("time"), None
    return doc, stamp


def _model_message(last: dict | None, doc: dict, stamp: object) -> tuple[str, bytes] | None:
    """("model", the whole document) or ("delta", a patch from ``last``: nsctl.serve.wire)
    as JSON text with its time, or None when ``doc`` is ``last`` unchanged."""
    from . import wire

    change: dict | None = wire.patch(last, doc) if last is not None else {"whole": True}
    if change is None:
        return None
    if "whole" not in change:
        change["set"] = {**change.get("set", {}), "time": stamp}
        return "delta", wire.dumps(change)
    doc["time"] = stamp
    try:
        return "model", wire.dumps(doc)
    finally:
        doc["time"] = None


def _refresher_options(argv: list[str]) -> SimpleNamespace:
    """The refresher's options, as the server's :class:`~nsctl.serve.state.Store` writes
    them: ``--interval S`` (required); ``--coverage S``: read every process again at
    least this often (the maximum age); ``--min-gap S``: at least this long between two
    rescans (a host busy forking would otherwise keep one core scanning);
    ``--exclude-tree PID``: leave that process and its descendants out of the model
    (the server: its helpers are no news about the host); the flags ``--threads``
    and ``--no-cnproc``.  Anything else is a ValueError (the launcher refuses it
    before this)."""
    from .privileges import check_args

    args = SimpleNamespace(interval=None, coverage=None, min_gap=0.25, threads=False,
                           no_cnproc=False, exclude_tree=None)
    words = iter(check_args("refresher", argv))
    for word in words:
        name = word[2:].replace("-", "_")
        if name in ("threads", "no_cnproc"):
            setattr(args, name, True)
        elif name == "exclude_tree":
            args.exclude_tree = int(next(words))
        else:
            setattr(args, name, float(next(words)))
    if args.interval is None:
        raise ValueError("the refresher needs --interval")
    return args


def refresher(argv: list[str]) -> int:
    from ..documents.snapshot import EntryCache
    from ..kernel.errors import NsctlError
    from ..timeline.watch import Watcher

    args = _refresher_options(argv)
    out = sys.stdout.buffer
    # This process and what it forks are left out of the model, and so is the server's
    # tree where it names itself; not where /proc is another PID namespace's (its PIDs
    # are not ours: the same number may be anyone there).
    exclude = frozenset({os.getpid()} | ({args.exclude_tree} if args.exclude_tree else set()))
    if not _proc_is_ours():
        exclude = frozenset()
    with Watcher(threads=args.threads, interval=args.interval, cnproc=not args.no_cnproc,
                 handle_signals=False, coverage=args.coverage,
                 exclude_trees=exclude) as watcher:
        started = time.monotonic()
        try:
            snap = watcher.start()
        except (NsctlError, OSError) as exc:
            _send(out, {"kind": "fatal", "error": _one_line(exc)})
            return 1
        last_scan = started
        cache = EntryCache()
        last, stamp = _model_doc(snap, cache)
        first = _model_message(None, last, stamp)
        assert first is not None
        _send(out, {"kind": "model", "events": [], "scan_seconds": time.monotonic() - started,
                    "scanned_at": time.time(), "trigger": watcher.trigger,
                    "why_no_cnproc": watcher.why_no_cnproc}, first[1])
        while watcher.wait(None):
            if _stdin_closed():
                break
            # The gap before a rescan only where there is something to read (what woke us
            # may have exited already), and what came during the gap joins that rescan.
            pause = last_scan + args.min_gap - time.monotonic()
            if pause > 0 and watcher.pending():
                time.sleep(pause)
                watcher.pending()
            started = time.monotonic()
            try:
                events = watcher.step()
            except (NsctlError, OSError) as exc:
                last_scan = started
                _send(out, {"kind": "error", "error": _one_line(exc), "scanned_at": time.time()})
                continue
            took = time.monotonic() - started
            header = {"scan_seconds": took, "scanned_at": time.time(), "trigger": watcher.trigger}
            # The same object: nothing needed reading (what woke us had already exited),
            # and the gap before the next rescan does not start again.
            if watcher.snapshot is not None and watcher.snapshot is not snap:
                snap = watcher.snapshot
                last_scan = started
                doc, stamp = _model_doc(snap, cache)
                message = _model_message(last, doc, stamp)
                if message is None and events:   # (changed, though the document is not)
                    message = "delta", b'{"set": {"time": %s}}' % json.dumps(stamp).encode()
                if message is not None:
                    last = doc
                    _send(out, {"kind": message[0], "events": events, **header}, message[1])
                    continue
            _send(out, {"kind": "scan", **header})
    return 0


def _proc_is_ours() -> bool:
    """Whether /proc shows this process under the PID it has (the PIDs of our PID
    namespace)."""
    from ..kernel import procfs

    try:
        return os.readlink(f"{procfs.PROC}/self") == str(os.getpid())
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    from ..views.base import error_text

    return error_text(exc).splitlines()[0] if str(exc) else type(exc).__name__


class NetViews:
    """The network namespaces' views the worker read, kept from one model to the next.

    The model changes with every process that comes or goes: on a busy host with a
    thousand network namespaces, reading them all for each model took seconds (4 s for
    1,252 here), so a new namespace showed only that long after it came.  Now a view is
    read again when it is older than ``max_age`` or five times what reading them all
    last took, and a namespace new to the model is read at once, alone.  A view is
    kept by inode *and* NS_GET_ID's id, as inodes are reused: where the kernel has no
    ids, every view is read for every model, as before.
    """

    def __init__(self) -> None:
        self.views: dict[tuple[int, int], tuple[float, dict]] = {}
        self.full_read = 0.0    # seconds the last read of every namespace took
        self.sysfs: bool | None = None

    def get(self, snap, sysfs: bool, max_age: float) -> dict[int, dict]:
        from ..timeline.watch import iso_now
        from ..views.net import name_peers, read_all

        if sysfs != self.sysfs:
            self.views, self.sysfs = {}, sysfs
        now = time.monotonic()
        limit = max(max_age, 5 * self.full_read)
        current = {ns.ino: ns.id for ns in snap.of_type("net")}
        kept: dict[int, dict] = {}
        for ino, ns_id in current.items():
            hit = self.views.get((ino, ns_id)) if ns_id is not None else None
            if hit is not None and now - hit[0] < limit:
                kept[ino] = hit[1]
        wanted = set(current) - set(kept)
        fresh = read_all(snap, sysfs=sysfs, only=wanted) if wanted else {}
        if len(wanted) == len(current):
            self.full_read = time.monotonic() - now
        stamp = iso_now()
        for ino, view in fresh.items():
            view["read_at"] = stamp
            if current[ino] is not None and "error" not in view:   # (errors: try again)
                self.views[(ino, current[ino])] = (now, view)
        live = set(current.items())
        self.views = {key: hit for key, hit in self.views.items() if key in live}
        views = {**kept, **fresh}
        name_peers(views)   # (links between a kept view and one read now)
        return views


class _Worker:
    """The worker's state: the model the server last sent, parsed when first needed,
    and the network views read so far."""

    def __init__(self) -> None:
        self.text: bytes | None = None
        self.snap = None
        self.net_views = NetViews()

    def model(self):
        from ..documents.snapshot import from_document
        from ..kernel.errors import NsctlError

        if self.snap is None:
            if self.text is None:
                raise NsctlError("no model yet")
            from .wire import loads

            self.snap = from_document(loads(self.text))
            self.snap.offline = False  # this process reads the live host for views and pins
        return self.snap

    def namespace(self, ino: int):
        from ..kernel.errors import NsctlError

        ns = self.model().namespaces.get(ino)
        if ns is None:
            raise NsctlError(f"namespace {ino} is not in the model any more")
        return ns

    def view(self, req: dict) -> object:
        from ..views import read_view

        return read_view(self.namespace(int(req["ino"])), self.model())

    def net(self, req: dict) -> object:
        views = self.net_views.get(self.model(), bool(req.get("sysfs", True)),
                                   float(req.get("max_age", 0)))
        return {str(ino): v for ino, v in views.items()}

    def pin(self, req: dict) -> object:
        from ..ops.pin import pin

        # The server checked the path as text; ``exact``: no symbolic link on the way.
        return pin(self.namespace(int(req["ino"])), self.model(), req["path"], exact=True)

    def unpin(self, req: dict) -> object:
        from ..ops.pin import unpin

        return unpin(req["path"], exact=True)


def worker(argv: list[str]) -> int:
    from ..kernel.errors import NsctlError

    state = _Worker()
    ops = {"view": state.view, "net": state.net, "pin": state.pin, "unpin": state.unpin}
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        req = json.loads(line)
        op = req.get("op")
        if op == "model":
            state.text, state.snap = stdin.readline().rstrip(b"\n"), None
            continue
        try:
            answer: dict = {"ok": ops[op](req)}
        except NsctlError as exc:
            status = 409 if type(exc).__name__ == "PinError" else 500
            answer = {"error": _one_line(exc), "status": status}
        except Exception as exc:  # one line back to the server, never a dead worker
            answer = {"error": f"{op}: {_one_line(exc)}", "status": 500}
        _send(out, answer)
    return 0


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    # The server stops us (and a Ctrl-C at its terminal must not kill us mid-write):
    # it closes our stdin or sends SIGTERM to our process group.  SIGTERM unwinds the
    # stack, so the children a scan or a view forked (which get it too) are reaped on
    # the way out (discovery's finally clauses) instead of being left to whoever
    # reaps orphans: a container's PID 1 may never do it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    role, rest = argv[0], argv[1:]
    if role != "launcher":
        signal.signal(signal.SIGTERM, _unwind)
    from .privileges import launcher

    try:
        return {"refresher": refresher, "worker": worker, "launcher": launcher}[role](rest)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
