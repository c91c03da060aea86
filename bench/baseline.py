"""An older commit's nsctl beside this tree's, for checks and A/B timings.

``with checkout(REV, path) as tree:`` checks REV out into a temporary git worktree at
``path`` and compiles its C extension in place, as setup.py would build it.  A tree's
code runs with this tree's interpreter and ``PYTHONPATH=<tree>/src`` (:func:`tree_env`),
which puts it ahead of the editable install in site-packages; :func:`check_imports`
makes sure that each tree then imports its own nsctl and C extension.  On the way out the
worktree is removed and git's record of it pruned (also that of any worktree whose
directory a killed run's sweep removed).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 300


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, timeout=TIMEOUT,
                          capture_output=True, text=True).stdout.strip()


def short_commit(rev: str) -> str:
    return git("rev-parse", "--short", f"{rev}^{{commit}}")


def tree_env(tree: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``tree``'s sources first on the path."""
    return dict(os.environ if env is None else env, PYTHONPATH=str(tree / "src"))


def build_native(tree: Path) -> None:
    """The C extension, compiled in place as setup.py would build it."""
    kernel = tree / "src" / "nsctl" / "kernel"
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    subprocess.run([*cc, "-O2", "-Wall", "-Werror=implicit-function-declaration", "-fPIC",
                    "-shared", f"-I{sysconfig.get_paths()['include']}", str(kernel / "_native.c"),
                    "-o", str(kernel / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}")],
                   check=True, timeout=TIMEOUT, capture_output=True)


def check_imports(tree: Path, cwd: Path, python: str = sys.executable,
                  env: Mapping[str, str] | None = None) -> None:
    """Each tree must run its own code, its C extension included."""
    code = "import nsctl, nsctl.kernel._native as n; print(nsctl.__file__); print(n.__file__)"
    proc = subprocess.run([python, "-c", code], cwd=cwd, env=tree_env(tree, env),
                          capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    lines = proc.stdout.decode().split()
    if (proc.returncode != 0 or len(lines) != 2
            or not all(p.startswith(str(tree / "src")) for p in lines)):
        raise SystemExit(f"{tree} does not import its own nsctl and C extension: "
                         f"{(proc.stdout + proc.stderr).decode().strip()}")


@contextmanager
def checkout(rev: str, path: Path) -> Iterator[Path]:
    """REV in a git worktree at ``path`` (which must not exist), C extension built."""
    git("worktree", "prune")
    try:
        git("worktree", "add", "--detach", "-q", str(path), rev)
        build_native(path)
        yield path
    finally:
        if path.exists():
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                           timeout=TIMEOUT)
        git("worktree", "prune")


def ab_summary(new: list, old: list) -> dict:
    """The new tree's runs against the old one's (``Sample`` lists from measure.py):
    medians of wall time, CPU time and peak RSS, and new/old for each (< 1: new is
    faster or smaller)."""
    def med(samples: list, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples)

    out: dict = {}
    for field, key in (("wall", "wall_s"), ("cpu", "cpu_s"), ("maxrss_kib", "maxrss_kib")):
        a, b = med(new, field), med(old, field)
        out[key] = {"new_median": a, "old_median": b, "new_over_old": round(a / b, 3)}
    out["new_walls_s"] = [round(s.wall, 4) for s in new]
    out["old_walls_s"] = [round(s.wall, 4) for s in old]
    return out


def ab_markdown(rows: list[tuple[str, dict]], first: str, new: str, old: str) -> str:
    """One line per (label, ab_summary); ``first`` heads the label column."""
    lines = [
        f"A/B: new = {new}, old = {old} (same command, each tree on PYTHONPATH; "
        "runs interleaved in one loop)",
        "",
        f"| {first} | old median s | new median s | new/old wall | old CPU s | new CPU s "
        "| new/old CPU | old peak RSS MiB | new peak RSS MiB | new/old RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, ab in rows:
        w, c, m = ab["wall_s"], ab["cpu_s"], ab["maxrss_kib"]
        lines.append(
            f"| {label} | {w['old_median']:.3f} | {w['new_median']:.3f} | {w['new_over_old']:.2f} "
            f"| {c['old_median']:.3f} | {c['new_median']:.3f} | {c['new_over_old']:.2f} "
            f"| {m['old_median'] / 1024:.1f} | {m['new_median'] / 1024:.1f} "
            f"| {m['new_over_old']:.2f} |")
    return "\n".join(lines)


def ab_envs(old: Path, python: str, cwd: Path, env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """What the new tree's runs (``nsctl``) and the old tree's (``baseline``) add to the
    timed environment: each its own sources on PYTHONPATH, so that both run the same
    command the same way; checked first to import their own code."""
    for tree in (REPO, old):
        check_imports(tree, cwd, python, env)
    return {"nsctl": {"PYTHONPATH": str(REPO / "src")},
            "baseline": {"PYTHONPATH": str(old / "src")}}
