"""``nsctl watch``: namespace events as they happen (see nsctl.timeline.watch)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..kernel.errors import NsctlError
from ..timeline.history import DEFAULT_DB
from .args import command_parser
from .render import printable


def event_line(e: dict) -> str:
    nsid = f" id {e['id']}" if e.get("id") is not None else ""
    return f"{e['time']} {e['event']:<9} {e['name']}{nsid}  {e['cause']}"


def main(argv: list[str]) -> int:
    p = command_parser(
        prog="nsctl watch",
        description="Print namespace events as they happen: born/gone, pinned/unpinned "
                    "(bind mounts), held/released (fds, sockets, threads, children), and with "
                    "-p each process entering and leaving namespaces. Rescans what changed on "
                    "process events (the kernel's CN_PROC connector, root only) and mount "
                    "table changes, new processes every --interval seconds, and everything "
                    "at least every --interval seconds (less often on hosts where a full scan "
                    "is slow). Stop with Ctrl-C.")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--interval", type=float, default=0.5, metavar="S",
                   help="poll for new processes and rescan fully at least every S seconds "
                        "(default 0.5; full rescans at most a quarter of the time)")
    p.add_argument("--record", nargs="?", const=DEFAULT_DB, metavar="DB",
                   help=f"also store events and a snapshot a minute in the SQLite database DB "
                        f"(default {DEFAULT_DB}); read it with nsctl history")
    p.add_argument("--threads", action="store_true",
                   help="also read every thread (finds namespaces only a thread is in)")
    p.add_argument("--no-cnproc", action="store_true",
                   help="do not use the process events connector: poll every --interval")
    p.add_argument("-t", "--type", action="append", metavar="TYPE",
                   help="only events of namespaces of this type (repeatable, or a comma list)")
    p.add_argument("-e", "--event", action="append", metavar="KIND",
                   help="only these events (repeatable, or a comma list of born, gone, "
                        "entered, left, pinned, unpinned, held, released)")
    p.add_argument("-p", "--processes", action="store_true",
                   help="also each process entering and leaving namespaces (entered/left: "
                        "one per namespace type a process starts or exits in)")
    p.add_argument("--count", type=int, metavar="N", help="stop after N events shown")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--snapshot-every", type=float, default=60.0, metavar="S",
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.interval <= 0:
        p.error("--interval must be positive")

    from ..documents.ls import parse_types
    from ..documents.snapshot import to_document
    from ..timeline.watch import EVENTS, NAMESPACE_EVENTS, Watcher, parse_events

    try:
        kinds = parse_events(args.event)
    except ValueError as exc:
        p.error(str(exc))
    if kinds is None:
        kinds = set(EVENTS if args.processes else NAMESPACE_EVENTS)
    types = parse_types(args.type)
    wanted = set(types) if types else None

    deadline = None if args.duration is None else time.monotonic() + args.duration
    emitted = 0
    recorder = None
    out = sys.stdout
    with Watcher(threads=args.threads, interval=args.interval,
                 cnproc=not args.no_cnproc) as watcher:
        how = (f"process events + every {args.interval:g}s" if watcher.trigger == "cn_proc"
               else f"polling every {args.interval:g}s ({watcher.why_no_cnproc})")
        try:
            if args.record:
                from ..timeline.history import Recorder

                recorder = Recorder(args.record, trigger=watcher.trigger)
            snap = watcher.start()
            if recorder is not None:
                recorder.snapshot(to_document(snap))
            print(f"nsctl watch: watching {len(snap.namespaces)} namespaces, {how}"
                  + (f", recording to {args.record}" if recorder else ""),
                  file=sys.stderr, flush=True)
            while args.count is None or emitted < args.count:
                if not watcher.wait(deadline):
                    break
                try:
                    events = watcher.step()
                except (NsctlError, OSError) as exc:
                    # One failed rescan (a transient kernel error) ends nothing: say so,
                    # keep the previous snapshot and try again at the next trigger.
                    print(f"nsctl watch: rescan failed: {getattr(exc, 'strerror', None) or exc}",
                          file=sys.stderr, flush=True)
                    continue
                if recorder is not None:   # the history keeps every event
                    recorder.events(events)
                    if time.monotonic() - recorder.last_snapshot >= args.snapshot_every:
                        assert watcher.snapshot is not None  # set by start()
                        recorder.snapshot(to_document(watcher.snapshot))
                events = [e for e in events if e["event"] in kinds
                          and (wanted is None or e["type"] in wanted)]
                if args.count is not None:
                    events = events[:args.count - emitted]
                for e in events:
                    out.write((json.dumps(e) if args.json else printable(event_line(e))) + "\n")
                out.flush()
                emitted += len(events)
        finally:
            if recorder is not None:
                recorder.close()
    return 0
