"""``nsctl watch``: a live stream of namespace events, from rescans diffed by id.

The loop: take a snapshot; then wait for a trigger, rescan, diff with the
previous snapshot (:func:`nsctl.diff.diff`, namespaces matched by NS_GET_ID)
and turn the difference into events.  Triggers are the kernel's process
events (:mod:`nsctl.kernel.cnproc`: a fork, exec or exit schedules a rescan
~100 ms later, so a burst costs one scan) and a periodic rescan every
``interval`` seconds, which alone catches what makes no process event (a bind
mount, an fd, a setns) and is the whole trigger where CN_PROC is unavailable.

Events are plain dicts::

    {"time": "2026-11-23T02:00:00.123Z", "event": "born", "ns": 4026532291,
     "type": "net", "id": 8193, "name": "net:[4026532291]", "cause": "...", ...}

``event`` is one of born / gone (the namespace), entered / left (a process's
ns link), pinned / unpinned (a bind mount), held / released (an fd, socket,
thread or child namespace reference).  Reference events carry ``ref`` (the
reference as in ``nsctl ls --json``); born / gone carry ``refs``, what held it.
"""
from __future__ import annotations

import os
import select
import signal
import time

from .diff import diff
from .model import Reference, Snapshot

DEBOUNCE = 0.1          # seconds from a process event to the rescan it triggers

BORN, GONE, ENTERED, LEFT, PINNED, UNPINNED, HELD, RELEASED = (
    "born", "gone", "entered", "left", "pinned", "unpinned", "held", "released")
EVENTS = (BORN, GONE, ENTERED, LEFT, PINNED, UNPINNED, HELD, RELEASED)


def iso_now(now: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and Z (sorts as text)."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def ref_text(ref: dict, snap: Snapshot) -> str:
    """One reference in words (the same words as nsctl show), always naming the link."""
    from .describe import describe_ref

    text = describe_ref(ref, snap)
    if ref.get("kind") == "process" and " via " not in text:
        text += f" via {ref.get('link')}"
    return text


def _refs_text(refs: list[dict], snap: Snapshot, limit: int = 3) -> str:
    shown = [ref_text(r, snap) for r in refs[:limit]]
    more = f" and {len(refs) - limit} more" if len(refs) > limit else ""
    return ", ".join(shown) + more if shown else "nothing seen"


def _ns(link: str, ino: int) -> str:
    return f"{link.replace('_for_children', '')}:[{ino}]"


def _plain(ref: dict) -> dict:
    return {k: v for k, v in ref.items() if not k.endswith("_key")}


def _refs_of(snap: Snapshot, ino: int) -> list[dict]:
    ns = snap.namespaces[ino]
    return [r.to_dict() for r in ns.refs if _kept(r, snap)]


def _kept(ref: Reference, snap: Snapshot) -> bool:
    return ref.pid is None or ref.pid != snap.viewer_pid


def events_between(a: Snapshot, b: Snapshot, now: float | None = None) -> list[dict]:
    """The events that take ``a`` to ``b`` (two live snapshots of one boot)."""
    stamp = iso_now(now)
    result = diff(a, b)
    out: list[dict] = []

    def event(kind: str, ns_type: str, ino: int, nsid: int | None, cause: str, **extra) -> None:
        out.append({"time": stamp, "event": kind, "ns": ino, "type": ns_type, "id": nsid,
                    "name": f"{ns_type}:[{ino}]", "cause": cause, **extra})

    for d in result["appeared"]:
        refs = _refs_of(b, d["ns"])
        event(BORN, d["type"], d["ns"], d["id"], f"held by {_refs_text(refs, b)}", refs=refs)
    # Why a process reference came or went: it moved (setns/unshare), started or exited.
    moved = {(m["pid"], m["link"]): m for m in result["moved"]}
    # One table for both directions: which events, which snapshot names the holder,
    # and how a process reference came or went.
    directions = (
        ("added", b, ENTERED, PINNED, HELD, "from",
         lambda pid: "started" if pid not in a.processes else "joined"),
        ("dropped", a, LEFT, UNPINNED, RELEASED, "to",
         lambda pid: "exited" if pid not in b.processes else "left"),
    )
    for d in result["changed"]:
        ns = b.namespaces[d["ns"]]
        for key, where, proc_event, mount_event, hold_event, side, otherwise in directions:
            for ref in d[key]:
                ref = _plain(ref)
                kind, pid = ref["kind"], ref.get("pid")
                text = ref_text(ref, where)
                if kind == "process":
                    m = moved.get((pid, ref.get("link")))
                    how = (f"moved {side} {_ns(m['link'], m[side])}"
                           if m and m[side] is not None else otherwise(pid))
                    event(proc_event, ns.type, ns.ino, ns.id, f"{text} {how}", ref=ref, pid=pid)
                elif kind == "bindmount":
                    event(mount_event, ns.type, ns.ino, ns.id, text, ref=ref,
                          path=ref.get("path"))
                else:
                    event(hold_event, ns.type, ns.ino, ns.id, text, ref=ref,
                          **({"pid": pid} if pid is not None else {}))
    for d in result["disappeared"]:
        refs = _refs_of(a, d["ns"])
        event(GONE, d["type"], d["ns"], d["id"], f"was held by {_refs_text(refs, a)}", refs=refs)
    return out


class Stop(Exception):
    """SIGINT / SIGTERM arrived."""


class Watcher:
    """Rescans on triggers and yields batches of events (one batch per rescan that
    found something).  Use as a context manager: it owns the CN_PROC socket and the
    signal wake-up pipe."""

    def __init__(self, threads: bool = False, interval: float = 0.5, cnproc: bool = True,
                 handle_signals: bool = True) -> None:
        self.threads = threads
        self.interval = max(0.01, interval)
        self.listener = None
        self.trigger = "poll"
        self.why_no_cnproc: str | None = None if cnproc else "disabled (--no-cnproc)"
        if cnproc:
            from .kernel.cnproc import CnProcUnavailable, open_listener, probe

            try:
                listener = open_listener()
            except CnProcUnavailable as exc:
                self.why_no_cnproc = exc.strerror or str(exc)
            else:
                if probe(listener):
                    self.listener = listener
                    self.trigger = "cn_proc"
                else:
                    listener.close()
                    self.why_no_cnproc = "cn_proc: subscribed, but no process events arrive"
        self.stopping = False
        self._handle_signals = handle_signals
        self._saved: dict[int, object] = {}
        self._wake_r = self._wake_w = -1
        self._saved_wakeup = -1
        self.scans = 0
        self.process_events = 0
        self.snapshot: Snapshot | None = None

    def __enter__(self) -> "Watcher":
        if self._handle_signals:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._saved_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        if self._wake_w >= 0:
            signal.set_wakeup_fd(self._saved_wakeup)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def scan(self) -> Snapshot:
        from .discovery import discover

        self.scans += 1
        return discover(threads=self.threads)

    def start(self) -> Snapshot:
        self.snapshot = self.scan()
        return self.snapshot

    def wait(self, deadline: float | None = None) -> bool:
        """Block until the next rescan is due (or ``deadline``, monotonic, passes);
        False if we should stop instead."""
        now = time.monotonic()
        due = now + self.interval
        while not self.stopping:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if now >= due:
                return True
            until = due if deadline is None else min(due, deadline)
            fds = [f for f in (self._wake_r,) if f >= 0]
            if self.listener is not None:
                fds.append(self.listener.fileno())
            ready, _, _ = select.select(fds, [], [], max(0.0, until - now))
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass
            if self.listener is not None and self.listener.fileno() in ready:
                try:
                    n = self.listener.drain()
                except OSError:
                    n = 1   # the connector broke: keep polling
                    self.listener.close()
                    self.listener = None
                    self.trigger = "poll"
                if n:
                    self.process_events += n
                    due = min(due, time.monotonic() + DEBOUNCE)
        return False

    def step(self) -> list[dict]:
        """Rescan now and return the events since the last scan."""
        assert self.snapshot is not None, "start() first"
        new = self.scan()
        events = events_between(self.snapshot, new)
        self.snapshot = new
        return events
