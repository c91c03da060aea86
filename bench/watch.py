"""Event latency of `nsctl watch` on hosts with many namespaces.

    sudo .venv/bin/python bench/watch.py                       # N = 100, 10000; 5 reps
    sudo .venv/bin/python bench/watch.py --sizes 1000 --reps 3

For each N: build the topology (topology.py), start `nsctl watch --json`
(with CN_PROC, and with --no-cnproc), then R times: start a process in a new
network namespace (`unshare --net sleep`), pin that namespace with a bind mount
(`mount --bind`), unpin it, kill the process; the latency of each of the four
events is the time from just before the action to the moment its JSON line
reached us.  Prints a markdown table, writes bench/results/watch-<time>.json,
exit status 1 if an event never came or anything was left behind.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import REPO  # noqa: E402
from topology import Topology, leftovers, log  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("born", "pinned", "unpinned", "gone")


class Watch:
    def __init__(self, extra: list[str]) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
        self.proc = subprocess.Popen([str(REPO / ".venv/bin/nsctl"), "watch", "--json", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None and self.proc.stderr is not None   # both PIPE
        self.stdout, self.stderr = self.proc.stdout, self.proc.stderr
        ready, _, _ = select.select([self.stderr], [], [], 120)
        self.banner = self.stderr.readline().strip() if ready else ""
        if not self.banner.startswith("nsctl watch: watching"):
            self.close()
            raise SystemExit(f"watch did not start: {self.banner!r}")
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put((time.monotonic(), json.loads(line)))

    def wait_for(self, since: float, timeout: float = 30.0, **match) -> float | None:
        """Seconds from ``since`` to the first matching event, None if none came."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                when, event = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if all(event.get(k) == v for k, v in match.items()):
                return when - since
        return None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def one_round(watch: Watch, pin_dir: str) -> dict[str, float | None]:
    got: dict[str, float | None] = {}
    t = time.monotonic()
    sleeper = subprocess.Popen(["unshare", "--net", "sleep", "600"], stdin=subprocess.DEVNULL)
    try:
        while True:   # the netns exists once unshare has exec'd sleep
            with open(f"/proc/{sleeper.pid}/comm") as f:
                if f.read().strip() == "sleep":
                    break
            time.sleep(0.001)
        net = os.stat(f"/proc/{sleeper.pid}/ns/net").st_ino
        got["born"] = watch.wait_for(t, event="born", ns=net)
        pin = os.path.join(pin_dir, "pin")
        open(pin, "w").close()
        try:
            t = time.monotonic()
            subprocess.run(["mount", "--bind", f"/proc/{sleeper.pid}/ns/net", pin], check=True)
            try:
                got["pinned"] = watch.wait_for(t, event="pinned", ns=net, path=pin)
            finally:
                t = time.monotonic()
                subprocess.run(["umount", pin], check=True)
            got["unpinned"] = watch.wait_for(t, event="unpinned", ns=net, path=pin)
        finally:
            os.unlink(pin)
    finally:
        t = time.monotonic()
        sleeper.kill()
        sleeper.wait()
    got["gone"] = watch.wait_for(t, event="gone", ns=net)
    return got


def bench(n: int, reps: int) -> list[dict]:
    out = []
    with Topology(n) as topo, tempfile.TemporaryDirectory(prefix="nsbench-watch-") as pin_dir:
        for mode, extra in (("cn_proc", []), ("poll", ["--no-cnproc"])):
            watch = Watch(extra)
            try:
                time.sleep(1.0)   # let the first rescans after start settle
                rounds = [one_round(watch, pin_dir) for _ in range(reps)]
            finally:
                watch.close()
            row: dict[str, Any] = {"n": n, "created": len(topo.namespaces), "mode": mode,
                   "banner": watch.banner, "rounds": rounds}
            for kind in KINDS:
                values = [r[kind] for r in rounds]
                ok = [v for v in values if v is not None]
                row[kind] = {"median": statistics.median(ok) if ok else None,
                             "max": max(ok) if ok else None, "missed": len(values) - len(ok)}
            log(f"N={n} {mode}: " + ", ".join(
                f"{k} {row[k]['median']:.3f}/{row[k]['max']:.3f} s" if row[k]["median"]
                is not None else f"{k} missed" for k in KINDS))
            out.append(row)
    row_left = leftovers(topo)
    for row in out:
        row["leftovers"] = row_left
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 10000])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/watch.py needs root")
    rows = [row for n in args.sizes for row in bench(n, args.reps)]
    print("| N | created | trigger | " + " | ".join(f"{k} median / max s" for k in KINDS)
          + " | missed |")
    print("|---:|---:|---|" + "---:|" * len(KINDS) + "---:|")
    for row in rows:
        cells = [f"{row[k]['median']:.3f} / {row[k]['max']:.3f}" if row[k]["median"]
                 is not None else "-" for k in KINDS]
        print(f"| {row['n']} | {row['created']} | {row['mode']} | " + " | ".join(cells)
              + f" | {sum(row[k]['missed'] for k in KINDS)} |")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("watch-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(rows, indent=1))
    log(f"wrote {path}")
    bad = any(row["leftovers"] for row in rows) or \
        any(row[k]["missed"] for row in rows for k in KINDS)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
