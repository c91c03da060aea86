"""``nsctl enter`` beside nsenter(1) and an empty Python start, in one run.

Makes a network namespace with ``ip netns add`` and times, R times each in an
alternating order, through the timeit launcher (measure.Timer):

- ``nsctl enter /run/netns/X -- true`` (the venv's ``nsctl``: bin/nsctl, nsctl's own
  script),
- ``nsctl enter -t PID -n true`` (nsenter's way: a process's namespace, by pidfd),
- ``nsenter --net=/run/netns/X true``,
- ``python -c pass`` (this interpreter, started the way the nsctl script starts it),
- ``python -c 'import re'``: where a launcher pip writes for an entry point would start
  from (it imports re before nsctl; nsctl installs a script of its own instead),
- ``unshare -n true`` and ``nsctl run -n true`` (a new network namespace, lo up),
- with ``--baseline REV``: REV's ``python -m nsctl enter /run/netns/X -- true`` and
  ``run --net -- true``, and this tree's the same way (both through ``-m``, so only the code
  differs).

Prints a markdown table (median and minimum wall time, CPU, each over the empty Python
start) and exits 1 if nsctl enter by path takes more than 2x the empty Python start
(median), or if any run printed to stderr (no "partial result" line: no scan is made).
Needs root (ip netns add) and nsenter.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import VENV_BIN, Timer

NETNS = f"nsctl-bench-enter-{os.getpid()}"
GOAL = 2.0   # nsctl enter by path, at most this many times an empty Python start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--baseline", metavar="REV", help="also time REV's nsctl enter")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (ip netns add)")
    py = str(VENV_BIN / "python")
    path = f"/run/netns/{NETNS}"
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    holder = subprocess.Popen(["ip", "netns", "exec", NETNS, "sleep", "600"])
    try:
        cases = {
            "python -c pass": [py, "-c", "pass"],
            # an entry point's launcher that pip writes imports re first: its floor
            "python -c 'import re'": [py, "-c", "import re"],
            "nsenter --net=FILE true": [shutil.which("nsenter") or "/usr/bin/nsenter",
                                        f"--net={path}", "true"],
            "nsctl enter FILE -- true": [str(VENV_BIN / "nsctl"), "enter", path, "--", "true"],
            "nsctl enter -t PID -n true": [str(VENV_BIN / "nsctl"), "enter", "-t",
                                           str(holder.pid), "-n", "true"],
            "unshare -n true": [shutil.which("unshare") or "/usr/bin/unshare", "-n", "true"],
            "nsctl run -n true": [str(VENV_BIN / "nsctl"), "run", "-n", "true"],
        }
        envs: dict[str, dict[str, str]] = {}
        with tempfile.TemporaryDirectory(prefix="nsctl-bench-enter-") as tmp, Timer() as timer:
            timer.build()
            if args.baseline:
                from baseline import check_imports, checkout, tree_env

                repo = Path(__file__).resolve().parent.parent
                old = Path(tmp) / "old"
                stack = checkout(args.baseline, old)
                stack.__enter__()
                check_imports(old, Path(tmp))
                cases["old: python -m nsctl enter FILE"] = [py, "-m", "nsctl", "enter", path,
                                                            "--", "true"]
                cases["new: python -m nsctl enter FILE"] = list(
                    cases["old: python -m nsctl enter FILE"])
                cases["old: python -m nsctl run --net"] = [py, "-m", "nsctl", "run", "--net",
                                                           "--", "true"]
                cases["new: python -m nsctl run --net"] = list(
                    cases["old: python -m nsctl run --net"])
                for what in ("enter FILE", "run --net"):
                    envs[f"old: python -m nsctl {what}"] = tree_env(old, timer.env)
                    envs[f"new: python -m nsctl {what}"] = tree_env(repo, timer.env)
            try:
                samples = _measure(timer, cases, envs, args.reps)
            finally:
                if args.baseline:
                    stack.__exit__(None, None, None)
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    return _report(samples, args.reps)


def _measure(timer: Timer, cases: dict[str, list[str]], envs: dict[str, dict[str, str]],
             reps: int) -> dict[str, list]:
    names = list(cases)
    for name in names:   # warm caches and bytecode, untimed
        timer.run(cases[name], envs.get(name))
    samples: dict[str, list] = {name: [] for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            s = timer.run(cases[name], envs.get(name))
            if s.status != 0 or (s.err and not name.startswith("old:")):
                raise SystemExit(f"{name}: exit {s.status}, stderr {s.err.decode()!r}")
            samples[name].append(s)
    return samples


def _report(samples: dict[str, list], reps: int) -> int:
    base = statistics.median(s.wall for s in samples["python -c pass"])
    load = os.getloadavg()[0]
    print(f"{reps} runs each, alternating order; load average {load:.2f}\n")
    print("| command | median ms | min ms | CPU ms (median) | median / empty python |")
    print("|---|---:|---:|---:|---:|")
    result = {}
    for name, runs in samples.items():
        med = statistics.median(s.wall for s in runs)
        result[name] = {"median_s": med, "min_s": min(s.wall for s in runs),
                        "cpu_s": statistics.median(s.cpu for s in runs)}
        print(f"| `{name}` | {med * 1e3:.1f} | {min(s.wall for s in runs) * 1e3:.1f} "
              f"| {result[name]['cpu_s'] * 1e3:.1f} | {med / base:.2f} |")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "enter.json").write_text(json.dumps(result, indent=1))
    ratio = result["nsctl enter FILE -- true"]["median_s"] / base
    if ratio > GOAL:
        print(f"\nnsctl enter by path takes {ratio:.2f}x an empty Python start "
              f"(goal: at most {GOAL}x)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
