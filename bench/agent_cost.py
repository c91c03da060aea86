"""What ``nsctl serve`` costs a node, beside prometheus-node-exporter in the same run.

    sudo .venv/bin/python bench/agent_cost.py                     # N = 1,000, 40 s per case
    sudo .venv/bin/python bench/agent_cost.py --n 10000 --seconds 20
    sudo .venv/bin/python bench/agent_cost.py --baseline main     # + main's nsctl serve beside it

Builds the benchmark topology (topology.py), then starts each agent in a cpuacct
cgroup of its own (so the CPU of its whole process tree counts, children that
already exited included): ``nsctl serve`` on a unix socket in the run's temp dir
(this tree's; with ``--baseline REV`` also REV's, checked out as baseline.py does)
and ``prometheus-node-exporter`` on a free loopback port (installed with apt-get
when missing, as scripts/setup installs test tools).  Every agent's /metrics is
scraped every 10 s, as Prometheus would.  Once each nsctl model holds every
generated namespace, the cases run one after another, S seconds each:

- ``idle``: nothing happens on purpose;
- ``ns 1/s``: a network namespace created (``unshare --net sleep``) and destroyed
  each second;
- ``churn 20/s``, ``churn 200/s``: as many short processes (``/bin/true``) a second;
- ``churn 20/s + ns 1/s``: both at once.

Reported per agent and case: CPU (user+system of the cgroup, % of one core), RSS and
PSS of its processes at the start and end of the run (and after each scrape: the
result's ``rss_kib_series`` of (seconds, RSS, PSS, processes)), and for nsctl the
latency of each namespace's ``born`` event on /api/v1/events (from just before the
``unshare`` was spawned to the event's arrival).  Ratios are to node_exporter in the same case.
Other work on this machine counts into every agent alike (its forks are churn too):
the result records the load average.  Everything is torn down and checked; the
full result goes to bench/results/agent-cost-<time>.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")       # cgroup v1 (the cpuacct controller)
CGROUP_V2 = Path("/sys/fs/cgroup")
CG_PREFIX = "nsctl-agent-cost-"
SCRAPE_EVERY = 10.0
EXPORTER = "/usr/bin/prometheus-node-exporter"
CASES = (("idle", 0, False), ("churn 20/s", 20, False), ("churn 200/s", 200, False),
         ("ns 1/s", 0, True), ("churn 20/s + ns 1/s", 20, True))


# --- cgroups: each agent's whole process tree ---------------------------------------------

class Cgroup:
    """A cgroup of its own for one agent: CPU of every process that ever ran in it."""

    def __init__(self, name: str) -> None:
        self.v2 = not CGROUP_ROOT.is_dir() and (CGROUP_V2 / "cgroup.controllers").exists()
        self.path = (CGROUP_V2 if self.v2 else CGROUP_ROOT) / (CG_PREFIX + name)
        self.path.mkdir()

    def cpu_seconds(self) -> float:
        if self.v2:
            text = (self.path / "cpu.stat").read_text()
            return int(re.search(r"usage_usec (\d+)", text).group(1)) / 1e6  # type: ignore[union-attr]
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def pids(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def rss_kib(self) -> int:
        return self.memory_kib()[0]

    def memory_kib(self) -> tuple[int, int, int]:
        """(RSS, PSS, processes) of the cgroup's processes now.  RSS counts a page
        shared by a forked helper and its parent in each; PSS splits it between them,
        so their sum is what the tree holds whichever helpers happen to be alive."""
        rss = pss = count = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            m = re.search(r"VmRSS:\s+(\d+)", status)
            p = re.search(r"^Pss:\s+(\d+)", rollup, re.M)
            if m and p:
                rss, pss, count = rss + int(m.group(1)), pss + int(p.group(1)), count + 1
        return rss, pss, count

    def remove(self) -> None:
        """Kill whatever is still in it, then remove it."""
        for _ in range(50):
            pids = self.pids() if self.path.exists() else []
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        try:
            self.path.rmdir()
        except FileNotFoundError:
            pass


def sweep_cgroups() -> list[str]:
    """Cgroups a killed run left (empty ones only; a live run's have processes)."""
    swept = []
    for root in (CGROUP_ROOT, CGROUP_V2):
        if not root.is_dir():
            continue
        for path in root.glob(CG_PREFIX + "*"):
            try:
                path.rmdir()
                swept.append(str(path))
            except OSError:
                pass
    return swept


# --- the agents ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(path: str, unix: str | None = None, port: int | None = None,
             timeout: float = 30) -> bytes:
    """One GET over a unix socket or loopback TCP (HTTP/1.0: the body ends at close)."""
    sock = socket.socket(socket.AF_UNIX) if unix else socket.socket()
    sock.settimeout(timeout)
    try:
        sock.connect(unix if unix else ("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    finally:
        sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise OSError(f"GET {path}: {head[:100]!r}")
    return body


class Agent:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path,
                 unix: str | None = None, port: int | None = None) -> None:
        self.name, self.unix, self.port = name, unix, port
        self.cgroup = Cgroup(f"{workdir.name}-{re.sub(r'[^a-z0-9]', '', name)}")
        self.log = open(workdir / f"{self.cgroup.path.name}.log", "wb")
        # The shell moves itself into the cgroup, then becomes the agent.
        enter = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"',
                 str(self.cgroup.path / "cgroup.procs")]
        self.proc = subprocess.Popen(enter + argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=env)
        self.scrapes = 0
        self.scrape_errors: list[str] = []
        # (s since the first case, RSS KiB, PSS KiB, processes)
        self.rss_series: list[tuple[float, int, int, int]] = []

    def get(self, path: str, timeout: float = 30) -> bytes:
        return http_get(path, self.unix, self.port, timeout)

    def scrape(self) -> None:
        try:
            self.get("/metrics", timeout=5)
            self.scrapes += 1
        except OSError as exc:
            self.scrape_errors.append(str(exc))

    def stop(self) -> int | None:
        status = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.cgroup.remove()
        self.log.close()
        return status


def wait_listening(agent: Agent, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            agent.get("/metrics", timeout=5)
            return
        except OSError:
            if agent.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{agent.name} did not start (see {agent.log.name})") from None
            time.sleep(0.2)


def wait_model(agent: Agent, inodes: set[int], timeout: float) -> int:
    """Until the agent's model holds every generated namespace; how many it holds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = {d["ns"] for d in json.loads(agent.get("/api/v1/namespaces"))["namespaces"]}
            if inodes <= found:
                return len(found)
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{agent.name}: the model never held every generated namespace")
        time.sleep(0.5)


class Events:
    """Reads an nsctl agent's /api/v1/events; notes when each namespace's ``born`` came."""

    def __init__(self, agent: Agent) -> None:
        self.born: dict[int, list[float]] = {}     # inode: arrivals (inodes are reused)
        self.sock = socket.socket(socket.AF_UNIX)
        assert agent.unix is not None
        self.sock.connect(agent.unix)
        self.sock.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = b""
        event = None
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r")
                if line.startswith(b"event: "):
                    event = line[7:]
                elif line.startswith(b"data: ") and event == b"born":
                    try:
                        ino = json.loads(line[6:])["ns"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    self.born.setdefault(ino, []).append(now)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# --- what happens on the host ----------------------------------------------------------------

def churn(rate: int, namespaces: bool, seconds: float, tag: str,
          made: list[tuple[int, float]]) -> None:
    """``rate`` short processes a second, and with ``namespaces`` one network namespace
    created (and gone 0.5 s later) each second: (inode, monotonic time before its spawn)
    into ``made``."""
    true = shutil.which("true") or "/bin/true"
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    start = time.monotonic()
    end = start + seconds
    spawned = 0
    next_ns = start + 0.5
    pending: list[tuple[int, float]] = []      # (pid, t0) of unshare children not yet read
    own_net = os.readlink("/proc/self/ns/net")
    children: list[int] = []
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if namespaces and now >= next_ns:
            next_ns += 1.0
            t0 = time.monotonic()
            pid = os.posix_spawn(unshare, [unshare, "--net", "sleep", "0.5"], os.environ)
            pending.append((pid, t0))
            children.append(pid)
        if rate:
            due = int((now - start) * rate)
            while spawned < due:
                children.append(os.posix_spawn(true, [true], os.environ))
                spawned += 1
        for pid, t0 in list(pending):
            try:
                link = os.readlink(f"/proc/{pid}/ns/net")
            except OSError:
                pending.remove((pid, t0))
                continue
            if link != own_net:
                made.append((int(link.split("[")[1].rstrip("]")), t0))
                pending.remove((pid, t0))
        for pid in list(children):
            if os.waitpid(pid, os.WNOHANG)[0]:
                children.remove(pid)
        time.sleep(0.001 if pending else min(0.01, 1 / rate if rate else 0.01))
    for pid in children:
        os.waitpid(pid, 0)


def scraper(agents: list[Agent], stop: threading.Event) -> None:
    """Scrape every agent every SCRAPE_EVERY seconds; note each one's RSS then."""
    started = time.monotonic()
    while not stop.wait(SCRAPE_EVERY):
        for agent in agents:
            agent.scrape()
            agent.rss_series.append((round(time.monotonic() - started, 1),
                                     *agent.cgroup.memory_kib()))


def run_case(name: str, rate: int, namespaces: bool, seconds: float, agents: list[Agent],
             streams: dict[str, Events], tag: str) -> dict:
    from run import loadavg

    load = loadavg()
    made: list[tuple[int, float]] = []
    cpu0 = {a.name: a.cgroup.cpu_seconds() for a in agents}
    t0 = time.monotonic()
    if rate or namespaces:
        churn(rate, namespaces, seconds, tag, made)
    else:
        time.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = {a.name: a.cgroup.cpu_seconds() - cpu0[a.name] for a in agents}
    time.sleep(1.5)        # the last namespace's event
    case: dict = {"case": name, "rate": rate, "namespaces_made": len(made),
                  "seconds": round(wall, 2), "loadavg_before_after": [load, loadavg()],
                  "agents": {}}
    for a in agents:
        entry: dict = {"cpu_s": round(cpu[a.name], 3),
                       "cpu_pct": round(100 * cpu[a.name] / wall, 3)}
        if a.name in streams:
            born = streams[a.name].born
            lat = sorted(min(a for a in born[ino] if a > t) - t for ino, t in made
                         if any(a > t for a in born.get(ino, ())))
            entry["born_seen"] = len(lat)
            entry["latencies_s"] = [round(x, 3) for x in lat]
            if lat:
                entry["latency_s"] = {"median": round(statistics.median(lat), 3),
                                      "max": round(lat[-1], 3), "min": round(lat[0], 3)}
        case["agents"][a.name] = entry
    return case


def ensure_exporter() -> None:
    if os.path.exists(EXPORTER):
        return
    print("installing prometheus-node-exporter with apt-get", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "prometheus-node-exporter"], check=True, env=env, stdout=subprocess.DEVNULL)
    # Debian's package may start its service (where an init runs): this bench starts its own.
    if shutil.which("systemctl"):
        subprocess.run(["systemctl", "stop", "prometheus-node-exporter"], capture_output=True,
                       check=False)


def nsctl_env(tree: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    return env


def measure(args: argparse.Namespace, result: dict, old_tree: Path | None) -> None:
    from topology import Topology, leftovers, log

    topo = Topology(args.n)
    agents: list[Agent] = []
    streams: dict[str, Events] = {}
    stop = threading.Event()
    with topo:
        try:
            trees = [("nsctl", None)] + ([("nsctl-old", old_tree)] if old_tree else [])
            for name, tree in trees:
                sock = str(topo.dir / f"{name}.sock")
                agents.append(Agent(name, [sys.executable, "-m", "nsctl", "serve", "--unix",
                                           sock, "--max-age", str(args.max_age)],
                                    nsctl_env(tree), topo.dir, unix=sock))
            port = free_port()
            agents.append(Agent("node_exporter", [EXPORTER,
                                                  f"--web.listen-address=127.0.0.1:{port}"],
                                dict(os.environ), topo.dir, port=port))
            for a in agents:
                wait_listening(a)
            t0 = time.monotonic()
            for a in agents:
                if a.unix:
                    result.setdefault("namespaces", {})[a.name] = wait_model(
                        a, topo.inodes(), 300)
            result["model_ready_s"] = round(time.monotonic() - t0, 2)
            time.sleep(args.settle)
            for a in agents:
                if a.unix:
                    streams[a.name] = Events(a)
            threading.Thread(target=scraper, args=(agents, stop), daemon=True).start()
            result["rss_kib_start"] = {a.name: a.cgroup.rss_kib() for a in agents}
            result["pss_kib_start"] = {a.name: a.cgroup.memory_kib()[1] for a in agents}
            log(f"agents ready ({result['namespaces']}); RSS KiB {result['rss_kib_start']}")
            for name, rate, namespaces in CASES:
                if args.cases and name not in args.cases:
                    continue
                case = run_case(name, rate, namespaces, args.seconds, agents, streams, topo.tag)
                result["cases"].append(case)
                log(f"{name}: " + ", ".join(f"{n} {e['cpu_pct']:.2f} %"
                                            for n, e in case["agents"].items()))
            result["rss_kib_end"] = {a.name: a.cgroup.rss_kib() for a in agents}
            result["pss_kib_end"] = {a.name: a.cgroup.memory_kib()[1] for a in agents}
            result["rss_kib_series"] = {a.name: a.rss_series for a in agents}
            result["scrapes"] = {a.name: [a.scrapes, a.scrape_errors[:3]] for a in agents}
        finally:
            stop.set()
            for s in streams.values():
                s.close()
            result["exit"] = {a.name: a.stop() for a in agents}
    result["left_behind"] = leftovers(topo) + [str(p) for p in
                                               (CGROUP_ROOT, CGROUP_V2)
                                               for p in (p.glob(CG_PREFIX + "*")
                                                         if p.is_dir() else [])]


def markdown(result: dict) -> str:
    names = list(result["rss_kib_start"])
    lines = [f"N = {result['n']} ({result['namespaces']}), {result['seconds']:g} s per case, "
             f"--max-age {result['max_age']:g}", "",
             "| case | " + " | ".join(f"{n} CPU %" for n in names)
             + " | " + " | ".join(f"{n}/node_exporter" for n in names if n != "node_exporter")
             + " | born latency median / max s | load before |",
             "|---|" + "---:|" * (2 * len(names) - 1) + "---|---|"]
    for c in result["cases"]:
        ag = c["agents"]
        base = ag["node_exporter"]["cpu_pct"]
        lat = " ; ".join(f"{n}: {e['latency_s']['median']:.2f} / {e['latency_s']['max']:.2f} "
                         f"({e['born_seen']}/{c['namespaces_made']})"
                         for n, e in ag.items() if "latency_s" in e) or "-"
        lines.append(f"| {c['case']} | " + " | ".join(f"{ag[n]['cpu_pct']:.2f}" for n in names)
                     + " | " + " | ".join(f"{ag[n]['cpu_pct'] / base:.0f}" if base else "-"
                                          for n in names
                                          if n != "node_exporter")
                     + f" | {lat} | {c['loadavg_before_after'][0]} |")
    series = result.get("rss_kib_series", {})
    for label, column in (("RSS", 1), ("PSS", 2)):
        start, end = result[f"{label.lower()}_kib_start"], result[f"{label.lower()}_kib_end"]
        lines += ["", f"{label} MiB (start -> highest -> end): " + ", ".join(
            f"{n} {start[n] / 1024:.1f} -> "
            f"{max([s[column] for s in series.get(n, [])] + [end[n]]) / 1024:.1f} -> "
            f"{end[n] / 1024:.1f}" for n in names)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="extra namespaces (default 1000)")
    ap.add_argument("--seconds", type=float, default=40.0, help="per case (default 40)")
    ap.add_argument("--settle", type=float, default=10.0,
                    help="seconds between the models being ready and the first case")
    ap.add_argument("--max-age", type=float, default=5.0, help="nsctl serve --max-age")
    ap.add_argument("--cases", type=lambda s: s.split(","), default=None,
                    help="comma-separated subset of: " + ", ".join(c[0] for c in CASES))
    ap.add_argument("--baseline", metavar="REV",
                    help="also run REV's nsctl serve (a temporary worktree) beside this tree's")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the benchmark needs root (namespaces, cgroups)")
    from run import host_info

    sweep_cgroups()
    ensure_exporter()
    result: dict = {"host": host_info(args.baseline), "n": args.n, "seconds": args.seconds,
                    "max_age": args.max_age, "cases": []}
    if args.baseline:
        import tempfile

        from baseline import checkout

        with tempfile.TemporaryDirectory(prefix="nsctl-agent-cost-") as tmp, \
                checkout(args.baseline, Path(tmp) / "old") as tree:
            measure(args, result, tree)
    else:
        measure(args, result, None)
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / f"agent-cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print("\n" + markdown(result))
    print(f"\nfull result: {out_path}"
          + ("" if not result["left_behind"] else f"\nLEFT BEHIND: {result['left_behind']}"))
    return 1 if result["left_behind"] else 0


if __name__ == "__main__":
    sys.exit(main())
