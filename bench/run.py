"""nsctl ls --json against lsns -J on topologies of N extra namespaces.

    sudo .venv/bin/python bench/run.py                    # N = 100, 1000, 10000; 7 reps
    sudo .venv/bin/python bench/run.py --sizes 100 --reps 3
    sudo .venv/bin/python bench/run.py --sizes 1000 --baseline main   # + an older commit

For each N: build the topology (topology.py), run each tool once to warm
caches, then R times each, alternating which goes first; tear down and check
nothing was left.  With ``--baseline REV`` REV's nsctl (baseline.py) is a third
tool in the same loop, and a second table gives new/old.  Prints a markdown table
and writes the full result as JSON to bench/results/run-<time>.json.  Exit status 1
if nsctl missed a namespace that lsns found, missed one the generator made, or
anything was left behind.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import ab_envs, ab_markdown, ab_summary, checkout, short_commit  # noqa: E402
from measure import (  # noqa: E402
    REPO,
    VENV_BIN,
    Stats,
    Timer,
    add_timing_args,
    describe,
    lsns_argv,
    namespaces,
    nsctl_argv,
    profile,
)
from topology import Topology, leftovers, log  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# What every nsctl run pays before its first line: nsctl's own interpreter running
# nothing, as the `nsctl` script starts it (site, the venv's .pth files), and bare
# (-I -S).  Timed in the same loop as the tools, so the ratio lsns/start says how
# fast any Python program, even an empty one, can be against lsns at that N.
PYTHON_START = {
    "site": [str(VENV_BIN / "python"), "-c", "pass"],
    "bare": [str(VENV_BIN / "python"), "-I", "-S", "-c", "pass"],
}


def host_info(baseline: str | None = None) -> dict:
    def sh(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=REPO).stdout.strip()
        except OSError:
            return ""

    commit = sh("git", "rev-parse", "--short", "HEAD")
    dirty = sh("git", "status", "--porcelain", "--", "src")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "lsns": sh("lsns", "--version"),
        "nsctl_commit": commit + (" (+ uncommitted changes in src/)" if dirty else ""),
        "baseline_commit": short_commit(baseline) if baseline else None,
    }


def loadavg() -> str:
    """1/5/15-minute load and running/total tasks: other work on the machine skews timings."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:4])


def _spin(rounds: int = 2_000_000) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(rounds):
        x += i
    return time.perf_counter() - start


def cores_available() -> float:
    """How many cores' worth of CPU two busy processes get now: 2.0 if they run as fast
    together as one alone, 1.0 if they only take turns.  This machine's two vCPUs give
    anything between (the host shares them: see steal time in /proc/stat), which
    decides what nsctl's second worker is worth against single-threaded lsns.  (A
    rough figure: one alone is timed just before and just after the two together.)"""
    before = _spin()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        os.write(wfd, repr(_spin()).encode())
        os._exit(0)
    os.close(wfd)
    here = _spin()
    there = float(os.read(rfd, 64))
    os.close(rfd)
    os.waitpid(pid, 0)
    alone = (before + _spin()) / 2
    return round(min(2.0, 2 * alone / max(here, there)), 2)


def tool_summary(samples, sets) -> dict:
    return {
        "wall_s": Stats.of([s.wall for s in samples]).__dict__,
        "cpu_s": Stats.of([s.cpu for s in samples]).__dict__,
        "maxrss_kib_median": sorted(s.maxrss_kib for s in samples)[len(samples) // 2],
        "maxrss_kib_max": max(s.maxrss_kib for s in samples),
        "count_median": sorted(len(x) for x in sets)[len(sets) // 2],
        "count_min": min(len(x) for x in sets),
        "count_max": max(len(x) for x in sets),
        "statuses": sorted({s.status for s in samples}),
        "stderr": sorted({s.err.decode(errors="replace").strip() for s in samples if s.err})[:3],
        "walls_s": [round(s.wall, 4) for s in samples],
    }


def _missing(runs: dict[str, list]) -> set[int]:
    """Namespaces every lsns run saw and no nsctl run did."""
    lsns_sets = [set(namespaces(s)) for s in runs["lsns"]]
    nsctl_sets = [set(namespaces(s)) for s in runs["nsctl"]]
    return set.intersection(*lsns_sets) - set[int]().union(*nsctl_sets)


def confirm_missing(timer: Timer, candidates: set[int], nsctl: list[str], lsns: list[str],
                    rounds: int = 2) -> set[int]:
    """Keep the candidates that lsns sees both just before and just after an
    nsctl run that misses them: a namespace that came or went in between (other
    work on the machine creates and destroys namespaces) is not a miss."""
    left = set(candidates)
    for _ in range(rounds):
        before = set(namespaces(timer.run(lsns)))
        seen = set(namespaces(timer.run(nsctl)))
        after = set(namespaces(timer.run(lsns)))
        left &= (before & after) - seen
        if not left:
            break
    return left


def bench_one(timer: Timer, n: int, reps: int, tools: dict[str, list[str]],
              envs: dict[str, dict[str, str]], warmup: bool, init_mounts: int,
              want_profile: bool = False) -> dict:
    """``tools``: nsctl, optionally baseline, and lsns, in the order of even reps (odd
    reps run them the other way round); ``envs``: what each adds to the environment."""
    nsctl, lsns = tools["nsctl"], tools["lsns"]
    topo = Topology(n, init_mounts=init_mounts)
    runs: dict[str, list] = {name: [] for name in tools}
    starts: dict[str, list[float]] = {name: [] for name in PYTHON_START}
    load_before, cores_before = loadavg(), cores_available()
    with topo:
        created = topo.inodes()
        if warmup:
            for name, argv in tools.items():
                timer.run(argv, envs.get(name))
            for argv in PYTHON_START.values():
                timer.run(argv)
        for r in range(reps):
            order = list(tools) if r % 2 == 0 else list(tools)[::-1]
            for name in order:
                sample = timer.run(tools[name], envs.get(name))
                if sample.status != 0:
                    raise SystemExit(f"{describe(sample.argv)} exited {sample.status}: "
                                     f"{sample.err.decode(errors='replace')[-2000:]}")
                runs[name].append(sample)
            for name, argv in PYTHON_START.items():
                starts[name].append(timer.run(argv).wall)
            log(f"N={n} rep {r + 1}/{reps}: "
                + ", ".join(f"{name} {runs[name][-1].wall:.3f} s" for name in tools))
        candidates = _missing(runs)
        confirmed = confirm_missing(timer, candidates, nsctl, lsns) if candidates else set()
        prof = profile(timer, ["ls", "--json"]) if want_profile else None
        build_s = topo.build_seconds
        assert build_s is not None   # entering the topology built it
        summary = topo.summary()
        ncreated = len(topo.namespaces)
    left = leftovers(topo)

    sets = {name: [set(namespaces(s)) for s in samples] for name, samples in runs.items()}
    missing = sorted(confirmed)
    worst_pair = max(len(seen - c) for seen, c in zip(sets["lsns"], sets["nsctl"], strict=True))
    result: dict[str, Any] = {
        "n": n,
        "created": ncreated,
        "created_by": summary,
        "build_s": round(build_s, 3),
        "teardown_s": round(topo.teardown_seconds or 0, 3),
        "reps": reps,
        "nsctl": tool_summary(runs["nsctl"], sets["nsctl"]),
        "lsns": tool_summary(runs["lsns"], sets["lsns"]),
        "lsns_not_in_nsctl": len(missing),
        "lsns_not_in_nsctl_sample": missing[:20],
        "lsns_not_in_nsctl_transient": len(candidates) - len(missing),
        "lsns_not_in_nsctl_worst_pair": worst_pair,
        "created_found_by_nsctl": min(len(created & s) for s in sets["nsctl"]),
        "created_found_by_lsns": min(len(created & s) for s in sets["lsns"]),
        "python_start_s": {name: Stats.of(walls).__dict__ for name, walls in starts.items()},
        "leftovers": left,
        "loadavg_before_after": [load_before, loadavg()],
        "cores_available_before_after": [cores_before, cores_available()],
    }
    if "baseline" in runs:
        result["baseline"] = tool_summary(runs["baseline"], sets["baseline"])
        result["created_found_by_baseline"] = min(len(created & s) for s in sets["baseline"])
        result["ab"] = ab_summary(runs["nsctl"], runs["baseline"])
    if prof:
        result["profile"] = prof
    result["ratio_lsns_over_nsctl"] = round(result["lsns"]["wall_s"]["median"]
                                            / result["nsctl"]["wall_s"]["median"], 3)
    result["ratio_lsns_over_python_start"] = round(
        result["lsns"]["wall_s"]["median"] / result["python_start_s"]["site"]["median"], 3)
    return result


def _per_ns(tool: dict) -> float:
    return tool["wall_s"]["median"] / max(1, tool["count_median"]) * 1e6


def markdown(results: list[dict], host: dict, nsctl_label: str) -> str:
    lines = [
        f"Host: {host['cpus']} CPUs, {host['mem_gib']} GiB, Linux {host['kernel']}, "
        f"{host['lsns']}, Python {host['python']}, nsctl {host['nsctl_commit']}; {host['date']}",
        f"nsctl command: {nsctl_label}; environment {host['timed_env']}",
        "",
        "| N | created | lsns finds | nsctl finds | lsns median s | nsctl median s "
        "| lsns/nsctl | µs per namespace found (lsns / nsctl) "
        "| lsns CPU s | nsctl CPU s | lsns peak RSS MiB | nsctl peak RSS MiB "
        "| lsns ⊆ nsctl | created found (nsctl / lsns) | build s "
        "| Python start s (site / -I -S) | lsns/Python start | cores available (before / after) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ok = "yes" if r["lsns_not_in_nsctl"] == 0 else f"NO ({r['lsns_not_in_nsctl']} missing)"
        if r["lsns_not_in_nsctl_transient"]:
            ok += f" ({r['lsns_not_in_nsctl_transient']} transient)"
        lines.append(
            f"| {r['n']} | {r['created']} | {r['lsns']['count_median']} "
            f"| {r['nsctl']['count_median']} "
            f"| {r['lsns']['wall_s']['median']:.3f} | {r['nsctl']['wall_s']['median']:.3f} "
            f"| {r['ratio_lsns_over_nsctl']:.2f} "
            f"| {_per_ns(r['lsns']):.0f} / {_per_ns(r['nsctl']):.0f} "
            f"| {r['lsns']['cpu_s']['median']:.3f} | {r['nsctl']['cpu_s']['median']:.3f} "
            f"| {r['lsns']['maxrss_kib_median'] / 1024:.1f} "
            f"| {r['nsctl']['maxrss_kib_median'] / 1024:.1f} | {ok} "
            f"| {r['created_found_by_nsctl']} / {r['created_found_by_lsns']} "
            f"| {r['build_s']:.2f} "
            f"| {r['python_start_s']['site']['median']:.3f} "
            f"/ {r['python_start_s']['bare']['median']:.3f} "
            f"| {r['ratio_lsns_over_python_start']:.2f} "
            f"| {r['cores_available_before_after'][0]:.2f} "
            f"/ {r['cores_available_before_after'][1]:.2f} |")
    lines.append("")
    lines.append("Times are wall clock from fork to reap, median of the repetitions "
                 "(each run's in the JSON); CPU is user+system time (incl. nsctl's forked "
                 "helpers), less sensitive to other load on the machine; RSS is the "
                 "command's ru_maxrss from wait4. lsns/nsctl (wall) > 1 means nsctl is faster. "
                 "µs per namespace found: median wall time over namespaces found, the cost "
                 "of the same work unit for both (nsctl finds more, each costing the same "
                 "open, fstat and ioctls as in lsns). "
                 "lsns ⊆ nsctl: every namespace all lsns runs found was found by nsctl; "
                 "'transient' ones came or went between runs (checked by lsns before and "
                 "after an extra nsctl run). Python start: nsctl's interpreter running "
                 "nothing (`-c pass`, with site as the nsctl script has it, and bare "
                 "with -I -S), timed in the same loop; lsns/Python start < 1 means lsns "
                 "finishes before any Python program could print its first line. "
                 "Cores available: how many cores' worth two busy processes got just "
                 "before and after (2.00: both cores; 1.00: they took turns).")
    if host.get("baseline_commit"):
        lines += ["", ab_markdown([(str(r["n"]), r["ab"]) for r in results], "N",
                                  host["nsctl_commit"], host["baseline_commit"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000",
                    help="comma-separated N (extra namespaces); default 100,1000,10000")
    ap.add_argument("--reps", type=int, default=7, help="timed runs per tool and N (default 7)")
    ap.add_argument("--init-mounts", type=int, default=20,
                    help="bind mounts in our own mount namespace per topology (default 20)")
    ap.add_argument("--baseline", metavar="REV", default=None,
                    help="also time REV's nsctl (a temporary git worktree) in the same loop")
    add_timing_args(ap, "nsctl ls --json",
                    "after timing each N, run nsctl once under cProfile (top functions go "
                    "to results/run-<time>.profile.txt)", RESULTS)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("run.py: needs root", file=sys.stderr)
        return 1

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    nsctl, label = nsctl_argv(threads=False, override=args.nsctl)
    lsns = lsns_argv()
    host = host_info(args.baseline)
    log(f"nsctl: {label} ({describe(nsctl)[:100]}); lsns: {describe(lsns)}")

    results = []
    with Timer(args.inherit_env) as timer:
        env_note = timer.env_note()
        log(f"environment of the timed commands: {env_note}")
        with (checkout(args.baseline, timer.dir / "baseline") if args.baseline
              else nullcontext()) as old:
            tools, envs = {"nsctl": nsctl, "lsns": lsns}, {}
            if old:
                envs = ab_envs(old, str(VENV_BIN / "python"), timer.dir, timer.env)
                tools = {"nsctl": nsctl, "baseline": nsctl, "lsns": lsns}
                log(f"baseline: {host['baseline_commit']} in {old}")
            for n in sizes:
                results.append(bench_one(timer, n, args.reps, tools, envs,
                                         not args.no_warmup, args.init_mounts, args.profile))
                if results[-1]["leftovers"]:
                    log(f"N={n}: LEFT BEHIND: {results[-1]['leftovers']}")

    host["timed_env"] = env_note
    table = markdown(results, host, label)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("run-%Y%m%d-%H%M%S.json")
    profiles = [f"N={r['n']}\n{r.pop('profile')}" for r in results if "profile" in r]
    if profiles:
        prof_path = path.with_suffix(".profile.txt")
        prof_path.write_text("\n\n".join(profiles))
        log(f"wrote {prof_path}")
    path.write_text(json.dumps({"host": host, "nsctl_command": label, "nsctl_argv": nsctl,
                                "lsns_argv": lsns, "results": results}, indent=1) + "\n")
    log(f"wrote {path}")
    bad = [r for r in results
           if r["lsns_not_in_nsctl"] or r["leftovers"]
           or r["created_found_by_nsctl"] < r["created"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
