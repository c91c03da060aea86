"""What asking the container engines for names costs (nsctl.discovery.engines).

    sudo .venv/bin/python bench/engines.py                 # 50 containers per engine, 9 reps
    sudo .venv/bin/python bench/engines.py --containers 10 --reps 5

Starts a private dockerd and a private Podman store (tests/support/engines.py: nothing
of the host's engines is touched, everything is removed at the end), then times:

- ``nsctl ls`` with no container on the host, engines on (the default) and
  ``NSCTL_ENGINES=off``: a host without containers must pay nothing;
- the same with N Docker and N Podman containers running;
- one lookup of each engine in-process (``engines.ask``, nothing remembered):
  Docker's API, Podman's state database, Podman's API socket;
- a missing socket, and a socket that never answers (the 0.2 s budget).

Wall times are medians over the reps, the two variants alternating.  Prints a
markdown table and writes bench/results/engines-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from support import engines  # noqa: E402

RESULTS = HERE / "results"
NSCTL = [sys.executable, "-m", "nsctl", "ls"]


def _ls(env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system of nsctl and its helpers) of one ``nsctl ls``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(NSCTL, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _pair(reps: int, a: dict[str, str], b: dict[str, str]) -> str:
    """``nsctl ls`` under ``a`` and ``b``, alternating: median wall and CPU ms of each."""
    ta: list[tuple[float, float]] = []
    tb: list[tuple[float, float]] = []
    _ls(a), _ls(b)   # warm the page cache
    for i in range(reps):
        for env, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            out.append(_ls(env))

    def ms(runs: list[tuple[float, float]], k: int) -> float:
        return statistics.median(r[k] for r in runs) * 1e3

    return (f"wall {ms(ta, 0):.1f} / {ms(tb, 0):.1f} ms, "
            f"CPU {ms(ta, 1):.1f} / {ms(tb, 1):.1f} ms")


def _lookup(engine: str, reps: int) -> tuple[float, int]:
    from nsctl.discovery import engines as lookup

    times, found = [], 0
    for _ in range(reps):
        lookup.forget()
        problems: list[str] = []
        t0 = time.perf_counter()
        answer = lookup.ask([engine], problems.append)
        times.append(time.perf_counter() - t0)
        assert not problems, problems
        found = len(answer.get(engine, {}))
    return statistics.median(times), found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/engines.py needs root", file=sys.stderr)
        return 2
    rows: list[tuple[str, str]] = []
    result: dict = {"containers": args.containers, "reps": args.reps,
                    "loadavg_before": os.getloadavg()}
    t0 = time.monotonic()
    docker, podman = engines.Docker(), None
    started = time.monotonic() - t0
    made = 0.0
    try:
        podman = engines.Podman()
        os.environ.update(docker.env())
        os.environ.update(podman.env())
        env = dict(os.environ)
        off = dict(env, NSCTL_ENGINES="off")
        rows.append(("`nsctl ls`, no container: engines on / off",
                     _pair(args.reps * 2, env, off)))
        t1 = time.monotonic()
        for i in range(args.containers):
            docker.run("run", "-d", "--name", f"bench-{i}", "--network", "none",
                       "--label", "com.docker.compose.project=bench",
                       engines.IMAGE, "sleep", "1000000")
            podman.run("run", "-d", "--name", f"bench-{i}", "--network", "none",
                       engines.IMAGE, "sleep", "1000000")
        made = time.monotonic() - t1
        rows.append((f"`nsctl ls`, {args.containers} Docker + {args.containers} Podman "
                     "containers: engines on / off", _pair(args.reps * 2, env, off)))
        for engine in ("docker", "podman"):
            took, found = _lookup(engine, args.reps * 3)
            how = "API socket" if engine == "docker" else "bolt state database"
            rows.append((f"one lookup: {engine} ({how}), {found} containers",
                         f"{took * 1e3:.2f} ms"))
        podman.start_service()
        try:
            os.environ["NSCTL_PODMAN_ROOT"] = "/nonexistent"
            took, found = _lookup("podman", args.reps * 3)
            rows.append((f"one lookup: podman (API socket), {found} containers",
                         f"{took * 1e3:.2f} ms"))
        finally:
            os.environ.update(podman.env())
            podman.stop_service()
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["NSCTL_DOCKER_SOCKET"] = f"{tmp}/missing.sock"
            took, _ = _lookup_failing("docker")
            rows.append(("one lookup: docker, socket missing", f"{took * 1e3:.3f} ms"))
            silent = socket.socket(socket.AF_UNIX)
            silent.bind(f"{tmp}/silent.sock")
            silent.listen(4)
            os.environ["NSCTL_DOCKER_SOCKET"] = f"{tmp}/silent.sock"
            took, _ = _lookup_failing("docker")
            rows.append(("one lookup: docker, socket that never answers",
                         f"{took * 1e3:.1f} ms"))
            silent.close()
        result.update(rows=rows, engines_started_s=started, containers_made_s=made)
    finally:
        if podman is not None:
            podman.close()
        docker.close()
    result["loadavg_after"] = os.getloadavg()
    print(f"dockerd started in {started:.2f} s; {2 * args.containers} containers made in "
          f"{made:.1f} s; load {result['loadavg_before'][0]:.2f} -> "
          f"{result['loadavg_after'][0]:.2f}\n")
    print("| what | median |\n| --- | --- |")
    for what, value in rows:
        print(f"| {what} | {value} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"engines-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    return 0


def _lookup_failing(engine: str) -> tuple[float, int]:
    from nsctl.discovery import engines as lookup

    times = []
    for _ in range(5):
        lookup.forget()
        problems: list[str] = []
        t0 = time.perf_counter()
        lookup.ask([engine], problems.append)
        times.append(time.perf_counter() - t0)
        assert len(problems) == 1, problems
    return statistics.median(times), 0


if __name__ == "__main__":
    sys.exit(main())
