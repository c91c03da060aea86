"""The web page of ``nsctl serve`` in Chromium: how fast it draws and how busy it stays.

    sudo .venv/bin/python bench/page.py                 # 1,000 extra namespaces
    sudo .venv/bin/python bench/page.py --n 10000 --idle 30

Builds the benchmark topology (topology.py), starts ``nsctl serve`` on a free
loopback port, waits until its model holds every generated namespace, then
drives Debian's Chromium (/usr/bin/chromium) with Playwright, as
tests/test_browser.py does, and measures:

- first tree: from navigation to the first drawn user tree (the page's own
  ``nsctl first tree`` mark), and the longest main-thread task meanwhile;
- Network tab: from the click to the drawn picture (the first ``/api/v1/net``
  makes the server read every network namespace: its time is in the figure);
- a keystroke in the search: the redraw each typed character causes (the
  page's ``nsctl render`` measures; typing is debounced, so one redraw per pause);
- idle: the main thread's busy time (Chrome's TaskDuration) per minute while a
  process enters and leaves new namespaces every second (a model change each
  second), on the user tab.

Tears everything down and checks nothing was left.  Prints a markdown table;
the full result goes to bench/results/page-<time>.json (serve.save).
"""
from __future__ import annotations

import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
QUERY = "sleep"     # typed one character at a time


def _churn(stop: threading.Event) -> None:
    """A model change every second: a process in new namespaces that exits soon after."""
    running: list[subprocess.Popen] = []
    while not stop.wait(1.0):
        running.append(subprocess.Popen(["unshare", "--net", "--uts", "--ipc", "sleep", "2"],
                                        stdin=subprocess.DEVNULL))
        running = [p for p in running if p.poll() is None]
    for p in running:
        p.wait(10)


def _task_seconds(cdp) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


def _start_server(src: str | None) -> tuple[subprocess.Popen, str]:
    """``nsctl serve`` on a free loopback port, without a token (the page then asks none);
    with ``src``, the nsctl (and so the page) of that source tree."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    proc = subprocess.Popen([sys.executable, "-m", "nsctl", "serve", "--listen", "127.0.0.1:0",
                             "--no-token", "--rate", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None   # stderr=PIPE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1)
        line = proc.stderr.readline().decode() if ready else ""
        m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
        if m:
            # Keep reading stderr so that a full pipe never stalls the server.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("nsctl serve did not start")


def measure(url: str, idle: float) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # The page forbids eval (its CSP); Playwright's waiting for a condition needs it.
            page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
            page.add_init_script("""
                window.__longest = 0;
                new PerformanceObserver((list) => {
                  for (const e of list.getEntries()) {
                    window.__longest = Math.max(window.__longest, e.duration);
                  }
                }).observe({ type: "longtask", buffered: true });""")
            page.goto(url + "/")
            # The first row of the user tree (also for a page without the marks below).
            page.wait_for_selector("#pane-users .item", timeout=120_000)
            out["first_tree_ms"] = round(page.evaluate("performance.now()"))
            marked = page.evaluate("performance.getEntriesByName('nsctl first tree').length") > 0
            out["first_tree_longest_task_ms"] = round(page.evaluate("window.__longest"))
            out["rows_drawn"] = page.locator("#pane-users .item").count()
            # Let the background documents (network, list) arrive before typing.
            page.wait_for_timeout(3000)
            times = []
            for k in range(1, len(QUERY) + 1 if marked else 0):
                page.evaluate("performance.clearMeasures()")
                page.type("#search", QUERY[k - 1])
                page.wait_for_function(
                    "performance.getEntriesByName('nsctl render users').length > 0",
                    timeout=60_000)
                times.append(page.evaluate(
                    "Math.max(...performance.getEntriesByName('nsctl render users')"
                    ".map((e) => e.duration))"))
            out["keystroke_ms"] = {"median": round(statistics.median(times), 1),
                                   "max": round(max(times), 1)} if times else None
            page.fill("#search", "")
            page.wait_for_timeout(500)
            t0 = time.monotonic()
            page.click("#tab-net")
            page.wait_for_selector("#pane-net :is(svg.netmap, details.lo-group)",
                                   timeout=300_000)
            out["network_tab_ms"] = round((time.monotonic() - t0) * 1000)
            page.click("#tab-users")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            stop = threading.Event()
            churn = threading.Thread(target=_churn, args=(stop,))
            churn.start()
            try:
                page.wait_for_timeout(2000)
                busy0 = _task_seconds(cdp)
                t0 = time.monotonic()
                page.wait_for_timeout(idle * 1000)
                busy = _task_seconds(cdp) - busy0
                wall = time.monotonic() - t0
            finally:
                stop.set()
                churn.join()
            out["idle_busy_s_per_min"] = round(busy / wall * 60, 2)
            out["idle_busy_percent"] = round(busy / wall * 100, 1)
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="extra namespaces (default 1000)")
    ap.add_argument("--idle", type=float, default=30.0,
                    help="seconds of idle measurement (default 30)")
    ap.add_argument("--src", metavar="DIR",
                    help="serve the nsctl of this source tree (e.g. an older checkout's src/); "
                         "without the page's marks, no keystroke figures")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM}")

    from run import host_info, loadavg
    from serve import _wait_for, save, stop
    from topology import Topology, log

    result: dict = {"host": host_info(), "n": args.n, "src": args.src}
    topo = Topology(args.n)
    server = None
    with topo:
        try:
            server, url = _start_server(args.src)
            result["namespaces"] = _wait_for(url, topo.inodes(), 300)
            log(f"server at {url} holds {result['namespaces']} namespaces")
            result["loadavg_before"] = loadavg()
            result.update(measure(url, args.idle))
        finally:
            stop(server, result)
    out_path = save(result, topo, "page")
    k = result["keystroke_ms"]
    keys = f"{k['median']} / {k['max']}" if k else "-"
    print(f"\nthe page, {result['namespaces']} namespaces ({args.n} extra)\n")
    print("| first tree ms (longest task) | keystroke ms median / max | Network tab ms "
          "| idle main thread s/min (%) |")
    print("|---:|---:|---:|---:|")
    print(f"| {result['first_tree_ms']} ({result['first_tree_longest_task_ms']}) | "
          f"{keys} | "
          f"{result['network_tab_ms']} | {result['idle_busy_s_per_min']} "
          f"({result['idle_busy_percent']}) |")
    print(f"\nfull result: {out_path}"
          + ("" if not result["left_behind"] else f"\nLEFT BEHIND: {result['left_behind']}"))
    return 1 if result["left_behind"] else 0


if __name__ == "__main__":
    sys.exit(main())
