"""nsctl as a user runs it: ``python -m nsctl ARGS`` in a subprocess, and its output read
the way the tests check it (one error line, no traceback, the partial-result warning
set apart)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence


def run_nsctl(*args: str | os.PathLike, check: bool = False,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m nsctl ARGS`` as a user runs it (output block-buffered when piped,
    whatever this shell sets); with ``check`` it must succeed, and never with a
    traceback."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-m", "nsctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    return proc



NSCTL = [sys.executable, "-m", "nsctl"]
PARTIAL = "nsctl: partial result"
ENGINE, ENGINE_END = "nsctl: engine ", "(its containers show by id)"


# --- nsctl as a user runs it -------------------------------------------------------------------

def nsctl(*args: str | os.PathLike, timeout: float = 60, prefix: Sequence[str] = (),
          **kwargs) -> subprocess.CompletedProcess:
    """``python -m nsctl ARGS`` (after ``prefix``, e.g. nsenter into a test netns)."""
    return subprocess.run([*prefix, *NSCTL, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def error_lines(stderr: str) -> list[str]:
    """stderr without the partial-result warning (pid 1 may be unreadable here) and the
    lines about container engines out of reach (containers that others' tests run on
    this host, whose engines this test does not point nsctl at)."""
    return [line for line in stderr.splitlines()
            if not line.startswith(PARTIAL) and not (line.startswith(ENGINE)
                                                     and line.endswith(ENGINE_END))]


def ok(*args, **kwargs) -> subprocess.CompletedProcess:
    proc = nsctl(*args, **kwargs)
    assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    assert error_lines(proc.stderr) == [], proc.stderr
    return proc


def one_error(proc: subprocess.CompletedProcess, code: int = 1) -> str:
    """The single stderr line of a failed command, checked: exit ``code``, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("nsctl: "), proc.stderr
    return lines[0]


def ls_json() -> dict:
    return json.loads(ok("ls", "--json").stdout)


def ns_by_ino(doc: dict, ino: int) -> dict | None:
    return next((n for n in doc["namespaces"] if n["ns"] == ino), None)


def ns_with_id(doc: dict, ns_id: int) -> list[dict]:
    return [n for n in doc["namespaces"] if n["id"] == ns_id]

