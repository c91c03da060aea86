"""``nsctl watch``: a live stream of namespace events, from rescans diffed by id.

The loop: take a snapshot; then wait for a trigger, rescan, diff with the
previous snapshot (:func:`nsctl.query.diff.diff`, namespaces matched by NS_GET_ID)
and turn the difference into events.

Rescans are incremental (:func:`nsctl.discovery.rescan`): only the processes
that did something are read again.  The kernel's process events
(:mod:`nsctl.kernel.cnproc`) name them: a fork, exec or exit schedules a rescan
~100 ms later (so a burst costs one) of just those processes.  A bind mount
names no process, so the mount table of every mount namespace a process is in
is watched too (:mod:`nsctl.kernel.mounttables`): a change there rereads that
namespace's mounts.  Every ``interval`` a rescan also reads the processes that
are new (or whose PID now names another process: polling needs no CN_PROC).
What neither shows (setns, an fd opened or closed, a mount in a namespace no
process is in) is caught by a rolling check: every ``interval`` a slice of the
processes is fingerprinted (:mod:`nsctl.discovery.revalidate`: a few system calls
each) and those whose fingerprint changed since their last read are read again,
as are the holders of the mount namespaces no process is in whose nsfs mounts
changed; a rescan with nothing to read (what woke it had exited already) is no
rescan at all.  (With ``threads``, the slice is read again whole.)  The slice is
sized so that reading it costs at most
1/``FULL_COST`` of the interval (or of a step, where steps take longer: the
rest of a step, taking the other processes over and diffing, grows with the
host); on a small host the slice is every process (a full rescan every
interval), on one with ~10,000 namespaces about a seventh.  So no step ever
costs a whole full scan, and an event waits for one step at most.  A full scan
happens only at the start and when something could not be taken over (events
lost, a mount namespace we hold no fd for).

Events are plain dicts::

    {"time": "2026-11-23T02:00:00.123Z", "event": "born", "ns": 4026532291,
     "type": "net", "id": 8193, "name": "blue", "cause": "...", ...}

``name`` is the namespace's display name (nsctl.discovery.names).  ``event`` is one of
born / gone (the namespace), entered / left (a process's
ns link), pinned / unpinned (a bind mount), held / released (an fd, socket,
thread or child namespace reference).  Reference events carry ``ref`` (the
reference as in ``nsctl ls --json``); born / gone carry ``refs``, what held it,
and ``container`` (as in ``nsctl ls --json``) when it is a container's.
"""
from __future__ import annotations

import math
import os
import select
import signal
import time

from ..model import Reference, Snapshot
from ..query.diff import diff

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from ..discovery.engines import Events
    from ..discovery.scan import Memo
    from ..kernel.cnproc import Listener
    from ..kernel.mountmarks import MountMarks
    from ..kernel.mounttables import MountTables
    from ..ops.relay import Handler

DEBOUNCE = 0.1          # seconds from a process event to the rescan it triggers
ENGINE_POLL = 1.0       # seconds between asking engines with no event stream (Podman)
FULL_COST = 4           # re-reading a slice takes at most 1/FULL_COST of an interval

BORN, GONE, ENTERED, LEFT, PINNED, UNPINNED, HELD, RELEASED = (
    "born", "gone", "entered", "left", "pinned", "unpinned", "held", "released")
EVENTS = (BORN, GONE, ENTERED, LEFT, PINNED, UNPINNED, HELD, RELEASED)
#: What happens to namespaces, without the per-process entered/left that every
#: process start and exit makes (one per namespace type).
NAMESPACE_EVENTS = (BORN, GONE, PINNED, UNPINNED, HELD, RELEASED)


def parse_events(values: list[str] | None) -> set[str] | None:
    """The event kinds named by ``values`` (each one kind or a comma list); None for
    none given; ValueError naming a kind that is not one."""
    if not values:
        return None
    out = set()
    for value in values:
        for name in value.split(","):
            kind = name.strip()
            if kind not in EVENTS:
                raise ValueError(f"unknown event {kind!r} (one of {', '.join(EVENTS)})")
            out.add(kind)
    return out


def iso_now(now: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and Z (sorts as text)."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def ref_text(ref: dict, snap: Snapshot) -> str:
    """One reference in words (the same words as nsctl show), always naming the link."""
    from ..documents.describe import describe_ref

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


def _container_of(snap: Snapshot, ino: int) -> dict:
    """``{"container": ...}`` (as in ``nsctl ls --json``) for a container's namespace."""
    ns = snap.namespaces.get(ino)
    return {"container": ns.container.to_dict()} if ns is not None and ns.container else {}


def _in_container(snap: Snapshot, ino: int) -> str:
    ns = snap.namespaces.get(ino)
    return f" in {ns.container.label}" if ns is not None and ns.container else ""


def events_between(a: Snapshot, b: Snapshot, now: float | None = None) -> list[dict]:
    """The events that take ``a`` to ``b`` (two live snapshots of one boot)."""
    if a is b:
        return []
    stamp = iso_now(now)
    result = diff(a, b)
    out: list[dict] = []

    def event(kind: str, ns_type: str, ino: int, nsid: int | None, cause: str, **extra) -> None:
        # Named as the snapshot that has it names it (the older one for what is gone).
        ns = (a if kind == GONE else b).namespaces.get(ino)
        name = ns.name if ns is not None and ns.name else f"{ns_type}:[{ino}]"
        out.append({"time": stamp, "event": kind, "ns": ino, "type": ns_type, "id": nsid,
                    "name": name, "cause": cause, **extra})

    for d in result["appeared"]:
        refs = _refs_of(b, d["ns"])
        event(BORN, d["type"], d["ns"], d["id"], f"held by {_refs_text(refs, b)}"
              f"{_in_container(b, d['ns'])}", refs=refs, **_container_of(b, d["ns"]))
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
            for entry in d[key]:
                ref = _plain(entry)
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
        event(GONE, d["type"], d["ns"], d["id"], f"was held by {_refs_text(refs, a)}"
              f"{_in_container(a, d['ns'])}", refs=refs, **_container_of(a, d["ns"]))
    return out


class Stop(Exception):
    """SIGINT / SIGTERM arrived."""


class Watcher:
    """Rescans on triggers and yields batches of events (one batch per rescan that
    found something).  Use as a context manager: it owns the CN_PROC socket and the
    signal wake-up pipe."""

    def __init__(self, threads: bool = False, interval: float = 0.5, cnproc: bool = True,
                 handle_signals: bool = True, coverage: float | None = None,
                 exclude_trees: frozenset[int] = frozenset()) -> None:
        self.threads = threads
        # Process trees left out of every scan (nsctl.discovery.Options.exclude_trees).
        self.exclude_trees = exclude_trees
        self.interval = max(0.01, interval)
        # Read every process again at least every `coverage` seconds (a bound on how old
        # what no event shows may get), however long that makes the rolling slices.
        self.coverage = coverage
        self.listener: Listener | None = None
        self.trigger = "poll"
        self.why_no_cnproc: str | None = None if cnproc else "disabled (--no-cnproc)"
        if cnproc:
            from ..kernel.cnproc import CnProcUnavailable, ignore_threads, open_listener, probe

            try:
                listener = open_listener()
            except CnProcUnavailable as exc:
                self.why_no_cnproc = exc.strerror or str(exc)
            else:
                if probe(listener):
                    self.listener = listener
                    self.trigger = "cn_proc"
                    if not threads:     # (with threads, a new thread may hold namespaces)
                        ignore_threads(listener)
                else:
                    listener.close()
                    self.why_no_cnproc = "cn_proc: subscribed, but no process events arrive"
        self.stopping = False
        self._handle_signals = handle_signals
        self._saved: dict[int, Handler] = {}
        self._wake_r = self._wake_w = -1
        self._saved_wakeup = -1
        self.scans = 0
        self.full_scans = 0
        self.process_events = 0
        self.snapshot: Snapshot | None = None
        self.memo: Memo | None = None    # what the last scan read, for the next
        self.dirty: set[int] = set()     # processes to read again at the next rescan
        self.full_due = 0.0              # 0: a full rescan is needed; inf after one
        self.full_seconds = 0.0          # how long the last full rescan took
        self.tick_due = 0.0              # monotonic time of the next periodic rescan
        self.slices = 1                  # the rolling rescan reads 1/slices per tick
        self._cursor = 0
        self.mount_tables: MountTables | None = None   # the mount namespaces watched
        # Mount namespaces no process is in, marked for fanotify's mount events
        # (nsctl.kernel.mountmarks): mount ns -> its namespace id when marked.  Those
        # are compared with the last scan when an event comes; the others (no marks
        # here, no id, a mark refused) once per round of slices.
        self.mount_marks: MountMarks | None = None
        self.why_no_mount_marks: str | None = None
        self.marked: dict[int, int] = {}
        self._marks_news: set[int] = set()   # marked tables to compare at the next step
        # pid -> its fingerprint (nsctl.discovery.revalidate) from just before its last
        # full read: the rolling rescan reads again only those whose fingerprint changed.
        self.prints: dict[int, tuple | bytes] = {}
        self._foreign_cursor = 0
        self.skipped = 0                 # steps that found nothing to read
        self._poll: select.poll | None = None
        self._lost = 0
        self.engine_events: Events | None = None   # Docker's event stream, while it has containers
        self._events_fd = -1
        self._engine_news = False        # the stream said something: rescan, dirty or not
        # Containers of an engine nsctl has no event stream from (Podman): a rename
        # makes no process event, so the engine is asked again every ENGINE_POLL.
        self._poll_engines = False
        self._engine_poll_due = float("inf")

    def __enter__(self) -> Watcher:
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
        if self.mount_tables is not None:
            self.mount_tables.close()
            self.mount_tables = None
        if self.mount_marks is not None:
            self.mount_marks.close()
            self.mount_marks = None
            self.marked = {}
        self._follow_engine(None)

    def _follow_engine(self, snap: Snapshot | None) -> None:
        """Keep Docker's event stream open while ``snap`` has Docker containers (a
        container renamed makes no process event: the stream's news triggers a rescan)."""
        want = snap is not None and any(p.container is not None
                                        for p in snap.processes.values())
        polled = snap is not None and any(p.container is not None and p.container.engine
                                          == "podman" for p in snap.processes.values())
        if polled and not self._poll_engines:
            self._engine_poll_due = time.monotonic() + ENGINE_POLL
        self._poll_engines = polled
        if want and self.engine_events is None:
            from ..discovery.engines import Events

            self.engine_events = Events()
        events = self.engine_events
        if events is None:
            return
        if want and snap is not None and events.want(snap.processes.values()):
            fd = events.open()
        else:
            fd = None
            events.close()
        if fd != self._events_fd:
            if self._events_fd >= 0 and self._poll is not None:
                try:
                    self._poll.unregister(self._events_fd)
                except KeyError:
                    pass
            self._events_fd = -1 if fd is None else fd
            if fd is not None:
                self._poller().register(fd, select.POLLIN)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def scan(self, full: bool = True, settled: bool = True) -> Snapshot:
        """Rescan: fully, or only what changed since the last scan (``settled``: see
        nsctl.discovery.rescan)."""
        from ..discovery import Options, rescan

        self.scans += 1
        started = time.monotonic()
        if full or self.memo is None:
            memo, dirty = None, None
            self._fingerprint(None)
        else:
            memo, dirty = self.memo, self.dirty
            self._fingerprint(dirty)
        self.dirty = set()
        options = Options(threads=self.threads, exclude_trees=self.exclude_trees)
        snap, self.memo, complete = rescan(memo, dirty, options, settled)
        for pid in dirty or ():
            if pid not in self.memo.procs:
                self.prints.pop(pid, None)   # exited before its read: nothing to compare
        if memo is None:
            self.full_scans += 1
            self.full_seconds = time.monotonic() - started
            self.full_due = float("inf")
            self._fit_slices(self.interval)
        if not complete:
            self.full_due = 0.0
        self._watch_mount_tables(self.memo)
        self._follow_engine(snap)
        return snap

    def _fingerprint(self, pids: set[int] | None) -> None:
        """Fingerprint ``pids`` just before they are read in full: a change after this
        shows at the next check.  None (a full scan): every process /proc lists now,
        and the fingerprints of any other are forgotten (a fingerprint costs a few
        per cent of a full read; without one, the first check reads a process in
        full once more)."""
        if self.threads:
            return    # threads' links are not in a fingerprint: slices are read in full
        from ..discovery.revalidate import fingerprint
        from ..kernel import procfs

        if pids is None:
            self.prints = {}
            pids = set(procfs.list_pids())

        proc_fd = procfs.open_dir(procfs.PROC)
        try:
            me = os.getpid()
            for pid in pids:
                found = fingerprint(pid, proc_fd, me)
                if found is None:
                    self.prints.pop(pid, None)
                else:
                    self.prints[pid] = found
        finally:
            os.close(proc_fd)

    def _revalidate(self, slice_: set[int]) -> set[int]:
        """Of the processes in ``slice_``, those to read again in full: new ones, gone
        ones, and those whose fingerprint changed; and the holders of the mount
        namespaces no process is in whose nsfs mounts may have changed (the same
        share of them).  Also every process that /proc shows and the model lacks."""
        assert self.memo is not None, "start() first"
        if self.threads:
            return slice_
        from ..discovery.revalidate import fingerprint, foreign_suspects
        from ..kernel import procfs

        memo = self.memo
        proc_fd = procfs.open_dir(procfs.PROC)
        try:
            me = os.getpid()
            listed = procfs.list_pids()
            out = {pid for pid in listed if pid not in memo.procs and pid not in memo.excluded
                   and pid not in memo.refused}
            out |= {pid for pid in slice_ if pid not in self.prints or
                    fingerprint(pid, proc_fd, me) != self.prints[pid]}
            foreign = sorted(m for m in memo.foreign if m not in self.marked)
            if foreign:
                size = math.ceil(len(foreign) / max(1, self.slices))
                start = self._foreign_cursor % len(foreign)
                self._foreign_cursor = start + size
                chosen = foreign[start:start + size] + foreign[:max(0, start + size -
                                                                    len(foreign))]
                out |= foreign_suspects(memo, chosen, proc_fd)
        finally:
            os.close(proc_fd)
        return out

    def _compare_marked(self) -> set[int]:
        """The holders of the marked mount namespaces whose tables fanotify said may have
        changed, where they did (nsctl.discovery.revalidate.foreign_suspects)."""
        assert self.memo is not None, "start() first"
        from ..discovery.revalidate import foreign_suspects
        from ..kernel import procfs

        news, self._marks_news = sorted(self._marks_news), set()
        proc_fd = procfs.open_dir(procfs.PROC)
        try:
            return foreign_suspects(self.memo, news, proc_fd)
        finally:
            os.close(proc_fd)

    def _prune(self) -> None:
        """Forget the dirty processes that the model never held and that are gone
        already (a short-lived process: forked, exec'd and exited between two
        rescans): reading them would find nothing."""
        if self.memo is None or not self.dirty:
            return
        from ..discovery.revalidate import alive
        from ..kernel import procfs

        known = self.memo.procs
        proc_fd = procfs.open_dir(procfs.PROC)
        try:
            self.dirty = {pid for pid in self.dirty if pid in known or alive(pid, proc_fd)}
        finally:
            os.close(proc_fd)

    def _fit_slices(self, tick: float) -> None:
        """Size the rolling slices for a ``tick``: the interval, or what a step takes
        when that is longer.  With a ``coverage``, so that each process is checked
        once within it and no more often (a check costs the same whenever it is
        made); else so that reading one costs at most 1/FULL_COST of a tick."""
        if self.coverage is not None:
            self.slices = max(1, int(self.coverage // max(self.interval, tick)))
        else:
            self.slices = max(1, math.ceil(FULL_COST * self.full_seconds / tick))

    def _watch_mount_tables(self, memo: Memo) -> None:
        from ..discovery.revalidate import mount_readers
        from ..kernel.mounttables import MountTables

        if self.mount_tables is None:
            self.mount_tables = MountTables(self._poller())
        readers = mount_readers(memo)
        self.mount_tables.sync(readers)
        if not self.threads:
            self._mark_foreign(memo, readers)

    def _mark_foreign(self, memo: Memo, readers: dict[int, int]) -> None:
        """Mark for fanotify's mount events the mount namespaces no process is in that
        are not marked yet, and compare their tables once more at the next step (a
        change before the mark made no event)."""
        from ..discovery.revalidate import foreign_access
        from ..kernel import procfs
        from ..kernel.errors import NsctlError
        from ..kernel.mountmarks import MountMarks, Unsupported

        self.marked = {m: i for m, i in self.marked.items() if m in memo.foreign}
        # A namespace is known to be the one marked by its id (an inode number is
        # soon another namespace's): without ids its table stays polled.
        todo = []
        for mnt in memo.foreign:
            ns = memo.snap.namespaces.get(mnt)
            if ns is not None and ns.id is not None and self.marked.get(mnt) != ns.id:
                todo.append((mnt, ns.id))
        if not todo or self.why_no_mount_marks is not None:
            return
        if self.mount_marks is None:
            try:
                self.mount_marks = MountMarks()
            except Unsupported as exc:
                self.why_no_mount_marks = str(exc)
                return
            self._poller().register(self.mount_marks.fileno(), select.POLLIN)
        proc_fd = procfs.open_dir(procfs.PROC)
        try:
            for mnt, ident in todo:
                self.marked.pop(mnt, None)
                _holders, via = foreign_access(memo, mnt, readers, proc_fd)
                if via is None:
                    continue
                try:
                    fd = via()
                except NsctlError:
                    continue
                try:
                    if self.mount_marks.mark(fd):
                        self.marked[mnt] = ident
                        self._marks_news.add(mnt)
                finally:
                    os.close(fd)
        finally:
            os.close(proc_fd)

    def _poller(self) -> select.poll:
        """One poll set for the wake-up pipe, CN_PROC and the mount tables (poll, not
        select: there may be thousands of mount tables)."""
        if self._poll is None:
            self._poll = select.poll()
            for fd in (self._wake_r, self.listener.fileno() if self.listener else -1):
                if fd >= 0:
                    self._poll.register(fd, select.POLLIN)
        return self._poll

    def _next_slice(self) -> set[int]:
        """The next 1/slices of the processes, round robin, to read again."""
        assert self.memo is not None, "start() first"
        pids = sorted(self.memo.procs)
        if self.slices <= 1 or not pids:
            return set(pids)
        size = math.ceil(len(pids) / self.slices)
        start = self._cursor % len(pids)
        self._cursor = start + size
        return set(pids[start:start + size]) | set(pids[:max(0, start + size - len(pids))])

    def start(self) -> Snapshot:
        self.snapshot = self.scan()
        self.tick_due = time.monotonic() + self.interval
        return self.snapshot

    def wait(self, deadline: float | None = None) -> bool:
        """Block until the next rescan is due (or ``deadline``, monotonic, passes);
        False if we should stop instead."""
        now = time.monotonic()
        due = min(self.tick_due, self.full_due)
        if self._poll_engines:
            due = min(due, self._engine_poll_due)
        if self.dirty or self._marks_news:
            due = min(due, now + DEBOUNCE)
        poller = self._poller()
        while not self.stopping:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if now >= due:
                return True
            until = due if deadline is None else min(due, deadline)
            ready = poller.poll(max(0, int((until - now) * 1000) + 1))
            fds = {fd for fd, _mask in ready}
            if self._wake_r in fds:
                try:
                    os.read(self._wake_r, 512)
                except BlockingIOError:
                    pass
            if self.listener is not None and self.listener.fileno() in fds:
                if self._drain(self.listener, poller):
                    due = min(due, time.monotonic() + DEBOUNCE)
            if self._events_fd in fds and self.engine_events is not None:
                if not self.engine_events.arrived():   # ended: opened again after a rescan
                    self._poller().unregister(self._events_fd)
                    self._events_fd = -1
                self._engine_news = True
                due = min(due, time.monotonic() + DEBOUNCE)
            if self.mount_marks is not None and self.mount_marks.fileno() in fds:
                if self.mount_marks.drain():
                    self._marks_news.update(self.marked)
                    due = min(due, time.monotonic() + DEBOUNCE)
            if self.mount_tables is not None:
                changed = self.mount_tables.changed(ready)
                readers = self.mount_tables.watched
                self.dirty.update(readers[m][0] for m in changed if m in readers)
                if changed:
                    due = min(due, time.monotonic() + DEBOUNCE)
        return False

    def pending(self) -> bool:
        """Whether a step now would read anything (False: it would find the model as it
        is, at once), without blocking; what arrived meanwhile is taken in first."""
        if self.listener is not None:
            self._drain(self.listener, self._poller())
        now = time.monotonic()
        self._engine_due(now)
        if now >= self.full_due or now >= self.tick_due or self._engine_news or \
                self._marks_news:
            return True
        self._prune()
        return bool(self.dirty)

    def _engine_due(self, now: float) -> None:
        """Time to ask the engines without an event stream again: a rescan (which takes
        every process over unread) asks them."""
        if self._poll_engines and now >= self._engine_poll_due:
            self._engine_news = True
            self._engine_poll_due = now + ENGINE_POLL

    def _drain(self, listener: Listener, poller: select.poll) -> int:
        """Read the queued process events of ``listener`` (ours, registered in
        ``poller``) into ``dirty``; how many there were."""
        try:
            n = listener.drain(self.dirty)
        except OSError:
            n = 1   # the connector broke: poll from now on
            poller.unregister(listener.fileno())
            listener.close()
            self.listener = None
            self.trigger = "poll"
            self.full_due = 0.0
            return n
        if listener.lost != self._lost:
            self._lost = listener.lost
            self.full_due = 0.0   # events were lost: only a full rescan is sure
        self.process_events += n
        return n

    def step(self) -> list[dict]:
        """Rescan now (fully when one is due, else incrementally) and return the
        events since the last scan."""
        assert self.snapshot is not None, "start() first"
        now = time.monotonic()
        self._engine_due(now)
        full = now >= self.full_due
        if not full and now >= self.tick_due:
            self.dirty |= self._revalidate(self._next_slice())
        if not full and self._marks_news:
            self.dirty |= self._compare_marked()
        if now >= self.tick_due:
            self.tick_due = now + self.interval
        if not full:
            self._prune()
            if not self.dirty and not self._engine_news:
                # Nothing to read: the model stands as it is (the same object).
                self.skipped += 1
                return []
        news, self._engine_news = self._engine_news, False
        new = self.scan(full=full, settled=not news)
        events = events_between(self.snapshot, new)
        self.snapshot = new
        if not full:
            # What a step costs besides its slice (taking the other processes over,
            # the diff) can outgrow a short interval on a big host: steps then come
            # back to back, and fewer, larger slices keep a round of them short.
            self._fit_slices(max(self.interval, time.monotonic() - now))
        return events
