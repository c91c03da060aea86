"""The server's side of its helper processes: the cached model and the worker.

Why helper processes: discovery and views fork children that setns() into
other namespaces, and the server process runs threads (uvicorn's event loop,
the thread pool, the thread reading the refresher).  A fork from a threaded
process copies only the forking thread; any lock another thread held at that
moment (an import lock, a file's buffer lock, logging's) stays held for ever
in the child, and Python work in the child can deadlock on it.  So this
process never forks Python code: it has fresh interpreters started (fork+exec
in C, nothing run in between) and everything that forks runs there,
single-threaded (:mod:`nsctl.serve.child`).  ``nsctl serve`` has them started
by its privileged launcher, as the server itself holds no capability
(:mod:`nsctl.serve.privileges`); a library caller starts them itself:

- the refresher scans and rescans on watch triggers and streams each changed
  model here, so a request never waits for a scan and any number of clients
  cost one scan per trigger;
- the worker reads views, network topology, and pins or unpins, on request,
  against the model this side sent it last.

Here the model is parsed from the snapshot document (the same code path as
``--from FILE``: ``offline``, so resolving a SPEC or building a document never
asks the live kernel) and kept with a bounded ring of earlier models for
``diff?since=``.  A model never changes once built: requests read
``Store.current`` once and use that object throughout.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time

from ..kernel.errors import NsctlError
from ..model import Snapshot
from ..timeline.watch import EVENTS
from . import wire
from .privileges import DirectSpawner, Launcher, LocalHelper, RemoteHelper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")
    Helper = LocalHelper | RemoteHelper
    Spawner = DirectSpawner | Launcher


class Model:
    """One generation of the model: the snapshot, its document, and the documents
    built from it (built once, on first request)."""

    def __init__(self, generation: int, snap: Snapshot | None, doc: dict, scanned_at: float,
                 text: bytes | None = None) -> None:
        self.generation = generation
        self._snap = snap
        self.doc = doc                     # the snapshot document (never modified)
        self._wire = text                  # ... as compact JSON text (made when needed)
        self._text: bytes | None = None
        self._entries: dict[int, dict] | None = None
        self.scanned_at = scanned_at      # when the scan that found it ended (time.time())
        self.cache: dict[str, Any] = {}   # what each key holds is its builder's business
        self.lock = threading.Lock()

    @property
    def wire(self) -> bytes:
        """The snapshot document as compact JSON text (for the worker)."""
        if self._wire is None:
            self._wire = wire.dumps(self.doc)
        return self._wire

    @property
    def entries(self) -> dict[int, dict]:
        """The document's namespace entries by inode (each is Namespace.to_dict())."""
        if self._entries is None:
            self._entries = {d["ns"]: d for d in self.doc["namespaces"]}
        return self._entries

    @property
    def snap(self) -> Snapshot:
        """The model as a Snapshot (offline: built from the document on first use)."""
        snap = self._snap
        if snap is None:
            from ..documents.snapshot import from_document

            snap = from_document(self.doc, "the refresher's model")
            with self.lock:
                if self._snap is None:
                    self._snap = snap
                snap = self._snap
        return snap

    @property
    def text(self) -> bytes:
        """The snapshot document as ``nsctl snapshot --json`` writes it (made on first
        request: the refresher's text is compact)."""
        if self._text is None:
            self._text = json.dumps(self.doc).encode()
        return self._text

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per model (two racing builders just both build it)."""
        value = self.cache.get(key)
        if value is None:
            value = build()
            with self.lock:
                value = self.cache.setdefault(key, value)
        return value


class Histogram:
    """Cumulative bucket counts, sum and count: a Prometheus histogram's state."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.buckets[i] += 1


class Stats:
    """Counters for /metrics and /status."""

    def __init__(self) -> None:
        self.scans = 0
        self.scan_seconds = 0.0
        self.scan_durations = Histogram(SCAN_BUCKETS)
        self.refresh_errors = 0
        self.refresher_restarts = 0
        self.last_error: str | None = None
        self.events = dict.fromkeys(EVENTS, 0)
        self.trigger = "poll"
        self.why_no_cnproc: str | None = None
        self.last_scan = 0.0              # time.time() of the last scan that ended

    def scanned(self, seconds: float, at: float) -> None:
        self.scans += 1
        self.scan_seconds = seconds
        self.last_scan = at
        self.scan_durations.observe(seconds)


SCAN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class History:
    """Earlier models, for ``diff?since=T``: bounded by count and by the bytes of text
    that each brought.

    A busy host changes the model every fraction of a second, so keeping the last N
    would reach back only seconds.  Instead, past the count limit, the model whose
    removal leaves the smallest gap goes: recent times stay dense, old ones thin
    out (each gap about in proportion to its age), and a ``since`` an hour back still finds
    the model of about then.  The oldest and newest are always kept.  Models share
    the entries that did not change between them (nsctl.serve.wire), so what one
    costs is about what its patch brought (the whole text for a whole model).
    """

    def __init__(self, limit: int = 64, max_bytes: int = 64 << 20) -> None:
        self.limit = max(3, limit)
        self.max_bytes = max_bytes
        self.items: list[tuple[float, int, dict, int]] = []  # (since, generation, doc, bytes)
        self.size = 0
        self.lock = threading.Lock()

    def add(self, since: float, generation: int, doc: dict, size: int) -> None:
        with self.lock:
            self.items.append((since, generation, doc, size))
            self.size += size
            while len(self.items) > self.limit:
                # The gap a removal would leave, relative to how long ago it was.
                gaps = [(self.items[i + 1][0] - self.items[i - 1][0]) /
                        (since - self.items[i][0] + 1.0)
                        for i in range(1, len(self.items) - 1)]
                self._drop(1 + gaps.index(min(gaps)))
            while len(self.items) > 1 and self.size > self.max_bytes:
                self._drop(0)

    def _drop(self, index: int) -> None:
        self.size -= self.items.pop(index)[3]

    def at(self, when: float) -> tuple[float, int, dict] | None:
        """(since, generation, snapshot document) of the latest kept model that was
        already there at ``when``; None if ``when`` is older than all of them."""
        with self.lock:
            found = None
            for item in self.items:
                if item[0] > when:
                    break
                found = item
        if found is None:
            return None
        return found[0], found[1], found[2]

    def oldest(self) -> float | None:
        with self.lock:
            return self.items[0][0] if self.items else None


def _parents(doc: dict) -> dict[int, object]:
    """pid -> ppid of the processes of a snapshot document."""
    return {p["pid"]: p.get("ppid") for p in doc["processes"]}


def _stop_child(proc: Helper | None, grace: float = 2.0) -> None:
    """Close its stdin (an idle worker exits on EOF), then SIGTERM and at last SIGKILL
    its process group: the children it forked to enter namespaces go with it."""
    if proc is None:
        return
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    for sig, wait in ((None, 0.2), (signal.SIGTERM, grace), (signal.SIGKILL, None)):
        if sig is not None:
            try:
                proc.signal_group(sig)
            except NsctlError:        # the launcher is gone, and its helpers with it
                pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            pass
    # Only now: closing a pipe that another thread is reading waits for that read.
    if proc.stdout is not None:
        proc.stdout.close()


def _stop_later(proc: Helper, grace: float = 2.0) -> None:
    """:func:`_stop_child` in a thread of its own: whoever gave up on ``proc`` goes on at
    once (answers the next request, starts a replacement) instead of waiting out its
    end, which a helper stuck in the kernel can make long."""
    threading.Thread(target=_stop_child, args=(proc, grace), name="nsctl-helper-stop",
                     daemon=True).start()


def _pid_of(proc: Helper | None) -> set[int]:
    return {proc.pid} if proc is not None else set()


class Store:
    """The current model, fed by the refresher process; notifies listeners of each
    new generation (with the events that led to it)."""

    def __init__(self, interval: float, max_age: float, threads: bool = False,
                 cnproc: bool = True, history: History | None = None,
                 hang_after: float | None = None, spawner: Spawner | None = None,
                 exclude_tree: int | None = None) -> None:
        self.spawner = spawner or DirectSpawner()
        # The process whose tree (it and its descendants) the model leaves out: the
        # server (``nsctl serve``), so that its helpers and what they fork never show as
        # holders or processes.  The refresher always leaves itself out.
        self.exclude_tree = exclude_tree
        self.interval = interval
        self.max_age = max_age
        # A refresher silent this long is stuck (a scan that never ends): replace it.
        self.hang_after = hang_after if hang_after is not None else max(60.0, 20 * max_age)
        self._heard = time.monotonic()
        self.threads = threads
        self.cnproc = cnproc
        self.history = history or History()
        self.stats = Stats()
        self.current: Model | None = None
        self.generation = 0
        self.listeners: list[Callable[[int, list[dict]], None]] = []
        # This server's own process ids (itself, its helpers): their children's comings
        # and goings are left out of the events.
        self.own_pids: Callable[[], set[int]] = lambda: {os.getpid()} | self.helper_pids()
        self.ready = threading.Event()
        self.fatal: str | None = None
        self._proc: Helper | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._spawning = threading.Lock()   # no new refresher once stop() has begun

    # --- lifetime -----------------------------------------------------------------------

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._run, name="nsctl-refresher-reader",
                                        daemon=True)
        self._thread.start()
        threading.Thread(target=self._watchdog, name="nsctl-refresher-watchdog",
                         daemon=True).start()

    def _watchdog(self) -> None:
        """Kill a refresher that has said nothing for ``hang_after`` seconds; the reader
        then sees it end and starts another."""
        while not self._stopping.wait(min(1.0, self.hang_after / 4)):
            proc = self._proc
            if proc is None or proc.poll() is not None or self.fatal is not None:
                continue
            silent = time.monotonic() - self._heard
            if silent > self.hang_after:
                self._error(f"the refresher said nothing for {silent:.0f}s; replacing it")
                self._heard = time.monotonic()
                try:
                    proc.signal_group(signal.SIGKILL)
                except NsctlError as exc:
                    self._error(str(exc))

    def stop(self) -> None:
        with self._spawning:
            self._stopping.set()
            proc, self._proc = self._proc, None
        _stop_child(proc)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _spawn(self) -> None:
        # At most a few models a second: each costs this process a parse, and a host
        # busy forking would otherwise change the model at every scan.
        args = ["--interval", repr(self.interval), "--coverage", repr(self.max_age),
                "--min-gap", repr(min(0.5, self.max_age / 4))]
        if self.threads:
            args.append("--threads")
        if not self.cnproc:
            args.append("--no-cnproc")
        if self.exclude_tree is not None:
            args += ["--exclude-tree", str(self.exclude_tree)]
        with self._spawning:
            if not self._stopping.is_set():
                try:
                    self._proc = self.spawner.start("refresher", args)
                except NsctlError as exc:    # no launcher any more: nothing can rescan
                    self.fatal = str(exc)
                    self._error(self.fatal)
                    self.ready.set()

    def _run(self) -> None:
        """Read the refresher; restart it (with a pause) if it dies."""
        backoff = 0.5
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            failed = False
            try:
                self._read(proc)
            except Exception as exc:  # a message we cannot use: start over with a new one
                self._error(f"reading the refresher: {type(exc).__name__}: {exc}")
                failed = True
            if self._stopping.is_set():
                return
            # Its output ended (it is on its way out) or made no sense: what has not
            # ended by now is stopped in the background while its replacement starts.
            try:
                proc.wait(timeout=0 if failed else 5)
            except subprocess.TimeoutExpired:
                _stop_later(proc)
            if self.fatal is not None:
                return
            self._error(f"the refresher ended (status {proc.returncode}); restarting it")
            self.stats.refresher_restarts += 1
            backoff = 0.5 if time.monotonic() - started > 60 else min(backoff * 2, 30.0)
            if self._stopping.wait(backoff):
                return
            self._spawn()

    def _error(self, text: str) -> None:
        self.stats.refresh_errors += 1
        self.stats.last_error = text

    def _read(self, proc: Helper) -> None:
        out = proc.stdout
        assert out is not None
        self._heard = time.monotonic()
        for line in out:
            self._heard = time.monotonic()
            msg = json.loads(line)
            kind = msg.get("kind")
            if kind in ("model", "delta"):
                text = out.readline().rstrip(b"\n")
                self._publish(msg, text, delta=kind == "delta")
            elif kind == "scan":
                self._note_scan(msg)
            elif kind == "error":
                self._error(msg.get("error", "rescan failed"))
            elif kind == "fatal":
                self.fatal = msg.get("error", "discovery failed")
                self._error(self.fatal)
                self.ready.set()

    def _note_scan(self, msg: dict) -> None:
        self.stats.scanned(float(msg["scan_seconds"]), float(msg["scanned_at"]))
        self.stats.trigger = msg.get("trigger", self.stats.trigger)
        if "why_no_cnproc" in msg:
            self.stats.why_no_cnproc = msg["why_no_cnproc"]

    def _publish(self, msg: dict, text: bytes, delta: bool = False) -> None:
        from ..documents.snapshot import from_document

        if delta:
            if self.current is None:
                raise ValueError("the refresher sent a change before any model")
            doc = wire.apply(self.current.doc, wire.loads(text))
            whole = None
        else:
            doc, whole = wire.loads(text), text
        # The first model is checked whole; later ones become a Snapshot when a request
        # first needs one (a busy host changes the model more often than it is asked).
        snap = from_document(doc, "the refresher's model") if self.current is None else None
        if not isinstance(doc, dict) or not isinstance(doc.get("processes"), list) or \
                not isinstance(doc.get("namespaces"), list):
            raise ValueError("the refresher's model is not a snapshot document")
        self._note_scan(msg)
        previous = self.current.doc if self.current is not None else None
        parents: list[dict[int, object]] = []
        events = []
        for e in msg.get("events") or []:
            if e.get("pid") is not None and not parents:
                parents = [_parents(doc)] + ([_parents(previous)] if previous else [])
            if not self._ours(e, parents):
                events.append(e)
        for e in events:
            kind = e.get("event")
            if kind in self.stats.events:
                self.stats.events[kind] += 1
        self.generation += 1
        model = Model(self.generation, snap, doc, float(msg["scanned_at"]), whole)
        self.current = model
        self.history.add(model.scanned_at, model.generation, doc, len(text))
        self.ready.set()
        for listener in list(self.listeners):
            try:
                listener(model.generation, events)
            except Exception as exc:  # a listener's bug must not stop the model's updates
                self._error(f"notifying a listener: {type(exc).__name__}: {exc}")

    def _ours(self, event: dict, parents: list[dict[int, object]]) -> bool:
        """An event about this server's own processes: the children its helpers fork
        for a moment to enter namespaces (reading a view), not news about the host.
        ``parents``: pid -> ppid in the new model, then the one before."""
        pid = event.get("pid")
        if pid is None:
            return False
        own = self.own_pids()
        for table in parents:
            if pid in table:
                return pid in own or table[pid] in own
        return False

    # --- what requests ask ----------------------------------------------------------------

    def helper_pids(self) -> set[int]:
        return _pid_of(self._proc) | self.spawner.pids()

    def age(self) -> float | None:
        if not self.stats.last_scan:
            return None
        return max(0.0, time.time() - self.stats.last_scan)


class WorkerError(NsctlError):
    """The worker answered with an error (``status``: the HTTP status to send)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class Worker:
    """Requests to the worker process, one at a time; a worker that does not answer
    within ``timeout`` is killed (with what it forked) and replaced on next use."""

    def __init__(self, timeout: float = 60.0, spawner: Spawner | None = None) -> None:
        self.timeout = timeout
        self.spawner = spawner or DirectSpawner()
        self._proc: Helper | None = None
        self._generation = 0              # the model the worker has
        self._lock = threading.Lock()
        self._closed = False

    def pids(self) -> set[int]:
        return _pid_of(self._proc)

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
            _stop_child(proc)

    def call(self, model: Model, request: dict) -> Any:
        """The helper's answer to ``request`` about ``model``: the JSON value the op returns."""
        with self._lock:
            if self._closed:
                raise WorkerError("the server is stopping", 503)
            if self._proc is None or self._proc.poll() is not None:
                _stop_child(self._proc)
                self._proc = None
                try:
                    self._proc = self.spawner.start("worker", [])
                except NsctlError as exc:
                    raise WorkerError(str(exc), 503) from None
                self._generation = 0
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                if self._generation != model.generation:
                    proc.stdin.write(b'{"op": "model"}\n' + model.wire + b"\n")
                    self._generation = model.generation
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = self._answer(proc)
            except (OSError, ValueError) as exc:
                self._proc = None
                _stop_later(proc)
                raise WorkerError(f"the helper process failed: {exc}") from None
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(answer["error"], int(answer.get("status", 500)))
        return answer["ok"]

    def _answer(self, proc: Helper) -> bytes:
        out = proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], self.timeout)
        if not ready:
            self._proc = None
            _stop_later(proc, grace=0.2)
            raise WorkerError(f"the helper process gave no answer within {self.timeout:g}s",
                              504)
        line = out.readline()
        if not line:
            raise OSError("it exited")
        return line
