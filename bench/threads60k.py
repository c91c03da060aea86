"""Seed 002's worst case: 60,000 threads, each in a uts namespace of its own.

    sudo .venv/bin/python bench/threads60k.py --threads-count 5000   # try small first
    sudo .venv/bin/python bench/threads60k.py                        # 60,000, 3 reps

Raises kernel.pid_max (and kernel.threads-max / user.max_uts_namespaces if
they are too low) for the run and puts the old values back at teardown (also
on SIGTERM/SIGINT, and by the next run's sweep if this one was SIGKILLed).
Times ``nsctl ls --json --threads`` (goal: under 1.5 s at 60,000) and, for
reference, ``lsns -J`` (which does not read threads, so it sees one uts
namespace for the whole process), and checks that nsctl reports every
thread's uts namespace with its owner.  With ``--baseline REV`` REV's nsctl
(baseline.py) is timed as a third tool in the same loop, and a second table
gives new/old.  Prints a markdown table; the JSON goes to
bench/results/threads-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import ab_envs, ab_markdown, ab_summary, checkout  # noqa: E402
from measure import (  # noqa: E402
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
from run import RESULTS, host_info, loadavg  # noqa: E402
from topology import HERE, Workdir, leftovers, log, read_sysctl  # noqa: E402

GOAL_S = 1.5
# For a profile that sees every thread read: no forked workers.
SERIAL_SETUP = ("import nsctl.discovery.tasks as t\n"
                "if hasattr(t, 'PARALLEL_MIN_THREADS'): t.PARALLEL_MIN_THREADS = 1 << 40")


def threads_on_host() -> int:
    # /proc/loadavg: "0.00 0.01 0.05 1/123 4567" -> 123 scheduling entities
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])


class ThreadsTopology(Workdir):
    """One process with ``count`` threads, each in its own uts namespace."""

    SYSCTLS = ("kernel.pid_max", "kernel.threads-max", "user.max_uts_namespaces")

    def __init__(self, count: int, stack_kib: int = 32) -> None:
        super().__init__()
        self.count = count
        self.stack_kib = stack_kib
        self.build_seconds: float | None = None
        self.sysctl_expected: dict[str, str] = {}

    def build(self) -> None:
        exe = str(self.compile(HERE / "threads60k.c", "threads60k", "-pthread"))
        self.sysctl_expected = {name: read_sysctl(name) for name in self.SYSCTLS}
        now = threads_on_host()
        # PIDs are handed out cyclically: leave plenty of room above the need.
        self.raise_sysctl("kernel.pid_max", self.count + now + 32768)
        self.raise_sysctl("kernel.threads-max", self.count + now + 4096)
        self.raise_sysctl("user.max_uts_namespaces", self.count + 4096)
        t0 = time.perf_counter()
        proc = self.spawn("threads", [exe, self.tag, str(os.getpid()), str(self.count),
                                      str(self.stack_kib)])
        self.read_until_ready("threads", proc, self._on_line)
        self.build_seconds = time.perf_counter() - t0
        log(f"{self.count} threads in their own uts namespaces, started in "
            f"{self.build_seconds:.2f} s")



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads-count", type=int, default=60_000, help="threads (default 60000)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs per tool (default 3)")
    ap.add_argument("--stack-kib", type=int, default=32, help="stack per thread (default 32)")
    ap.add_argument("--baseline", metavar="REV", default=None,
                    help="also time REV's nsctl (a temporary git worktree) in the same loop")
    add_timing_args(ap, "nsctl ls --json --threads",
                    "after timing, run nsctl once under cProfile, and once more with the "
                    "thread scan forced serial (cProfile sees no forked worker)", RESULTS)
    ap.add_argument("--hold", type=float, default=None, metavar="SECONDS",
                    help="only build the threads, hold them this long (to time or profile "
                         "nsctl by hand), and tear them down")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("threads60k.py: needs root", file=sys.stderr)
        return 1
    if args.hold is not None:
        with ThreadsTopology(args.threads_count, args.stack_kib) as topo:
            try:
                time.sleep(args.hold)
            except (KeyboardInterrupt, SystemExit):   # Ctrl-C, or SIGTERM (see Workdir)
                pass
        left = leftovers(topo)
        log("nothing left behind" if not left else "LEFT BEHIND: " + "; ".join(left))
        return 1 if left else 0

    nsctl, label = nsctl_argv(threads=True, override=args.nsctl)
    lsns = lsns_argv()
    host = host_info(args.baseline)
    log(f"nsctl: {label} ({describe(nsctl)[:100]}); lsns: {describe(lsns)}")
    load_before = loadavg()
    with Timer(args.inherit_env) as timer, \
            (checkout(args.baseline, timer.dir / "baseline") if args.baseline
             else nullcontext()) as old:
        host["timed_env"] = timer.env_note()
        # In the order of even reps; odd reps run them the other way round.
        tools, envs = {"nsctl": nsctl, "lsns": lsns}, {}
        if old:
            envs = ab_envs(old, str(VENV_BIN / "python"), timer.dir, timer.env)
            tools = {"nsctl": nsctl, "baseline": nsctl, "lsns": lsns}
            log(f"baseline: {host['baseline_commit']} in {old}")
        runs: dict[str, list] = {name: [] for name in tools}
        topo = ThreadsTopology(args.threads_count, args.stack_kib)
        with topo:
            created = topo.inodes()
            if not args.no_warmup:
                for name, cmd in tools.items():
                    timer.run(cmd, envs.get(name))
            for r in range(args.reps):
                for name in (list(tools) if r % 2 == 0 else list(tools)[::-1]):
                    sample = timer.run(tools[name], envs.get(name))
                    if sample.status != 0:
                        raise SystemExit(f"{describe(sample.argv)} exited {sample.status}: "
                                         f"{sample.err.decode(errors='replace')[-2000:]}")
                    runs[name].append(sample)
                log(f"rep {r + 1}/{args.reps}: "
                    + ", ".join(f"{name} {runs[name][-1].wall:.3f} s" for name in tools))
            if args.profile:
                profiles = [profile(timer, ["ls", "--json", "--threads"]),
                            profile(timer, ["ls", "--json", "--threads"],
                                    setup=SERIAL_SETUP)]
        left = leftovers(topo)

    def uts_with_owner(sample) -> int:
        return sum(1 for ino, n in namespaces(sample).items()
                   if n.get("type") == "uts" and n.get("owner") is not None)

    nsctl_sets = [set(namespaces(s)) for s in runs["nsctl"]]
    lsns_sets = [set(namespaces(s)) for s in runs["lsns"]]
    result = {
        "threads": args.threads_count,
        "build_s": round(topo.build_seconds or 0, 3),
        "teardown_s": round(topo.teardown_seconds or 0, 3),
        "nsctl_wall_s": Stats.of([s.wall for s in runs["nsctl"]]).__dict__,
        "lsns_wall_s": Stats.of([s.wall for s in runs["lsns"]]).__dict__,
        "nsctl_cpu_s": Stats.of([s.cpu for s in runs["nsctl"]]).__dict__,
        "lsns_cpu_s": Stats.of([s.cpu for s in runs["lsns"]]).__dict__,
        "nsctl_walls_s": [round(s.wall, 4) for s in runs["nsctl"]],
        "lsns_walls_s": [round(s.wall, 4) for s in runs["lsns"]],
        "nsctl_maxrss_kib": max(s.maxrss_kib for s in runs["nsctl"]),
        "lsns_maxrss_kib": max(s.maxrss_kib for s in runs["lsns"]),
        "nsctl_count": min(len(x) for x in nsctl_sets),
        "lsns_count": min(len(x) for x in lsns_sets),
        "nsctl_uts_with_owner": min(uts_with_owner(s) for s in runs["nsctl"]),
        "created_found_by_nsctl": min(len(created & x) for x in nsctl_sets),
        "created_found_by_lsns": min(len(created & x) for x in lsns_sets),
        "lsns_not_in_nsctl": len(set.intersection(*lsns_sets) - set[int]().union(*nsctl_sets)),
        "nsctl_stderr": sorted({s.err.decode(errors="replace").strip()
                                for s in runs["nsctl"] if s.err})[:3],
        "leftovers": left,
        "loadavg_before_after": [load_before, loadavg()],
        "sysctls_restored_to": topo.sysctl_expected,
    }
    if "baseline" in runs:
        old_sets = [set(namespaces(s)) for s in runs["baseline"]]
        result["baseline_count"] = min(len(x) for x in old_sets)
        result["baseline_uts_with_owner"] = min(uts_with_owner(s) for s in runs["baseline"])
        result["created_found_by_baseline"] = min(len(created & x) for x in old_sets)
        result["ab"] = ab_summary(runs["nsctl"], runs["baseline"])
    med = result["nsctl_wall_s"]["median"]
    ok_count = result["nsctl_uts_with_owner"] >= args.threads_count
    verdict = "met" if med < GOAL_S else "NOT met"
    print(f"Host: {host['cpus']} CPUs, {host['mem_gib']} GiB, Linux {host['kernel']}, "
          f"{host['lsns']}, nsctl {host['nsctl_commit']}; {host['date']}")
    print(f"nsctl command: {label}; environment {host['timed_env']}\n")
    print("| threads | tool | median s | min s | max s | CPU s | peak RSS MiB | namespaces "
          "| uts with owner | thread uts found |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.threads_count} | nsctl ls --json --threads | {med:.3f} "
          f"| {result['nsctl_wall_s']['minimum']:.3f} | {result['nsctl_wall_s']['maximum']:.3f} "
          f"| {result['nsctl_cpu_s']['median']:.3f} "
          f"| {result['nsctl_maxrss_kib'] / 1024:.1f} | {result['nsctl_count']} "
          f"| {result['nsctl_uts_with_owner']} | {result['created_found_by_nsctl']} |")
    print(f"| {args.threads_count} | lsns -J | {result['lsns_wall_s']['median']:.3f} "
          f"| {result['lsns_wall_s']['minimum']:.3f} | {result['lsns_wall_s']['maximum']:.3f} "
          f"| {result['lsns_cpu_s']['median']:.3f} "
          f"| {result['lsns_maxrss_kib'] / 1024:.1f} | {result['lsns_count']} | - "
          f"| {result['created_found_by_lsns']} |")
    print(f"\nGoal < {GOAL_S} s: {verdict}; >= {args.threads_count} uts namespaces with owners: "
          f"{'yes' if ok_count else 'NO'}; threads started in {result['build_s']:.2f} s, "
          f"torn down in {result['teardown_s']:.2f} s; "
          + ("nothing left behind" if not left else "LEFT BEHIND: " + "; ".join(left)))
    if "ab" in result:
        print("\n" + ab_markdown([(str(args.threads_count), result["ab"])], "threads",
                                  host["nsctl_commit"], host["baseline_commit"]))
        print(f"\nold: {result['baseline_count']} namespaces, "
              f"{result['baseline_uts_with_owner']} uts with owner, "
              f"{result['created_found_by_baseline']} thread uts found")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("threads-%Y%m%d-%H%M%S.json")
    if args.profile:
        prof_path = path.with_suffix(".profile.txt")
        prof_path.write_text("\n\n".join(profiles))
        log(f"wrote {prof_path}")
    path.write_text(json.dumps({"host": host, "nsctl_command": label, "nsctl_argv": nsctl,
                                "result": result}, indent=1) + "\n")
    log(f"wrote {path}")
    return 0 if ok_count and not left and med < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
