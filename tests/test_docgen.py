"""Man pages and shell completion (nsctl.cli.docgen): current, well formed, complete.

The generated files live in the repository (man/, completions/) and are installed by
pyproject.toml's data-files; each is checked with the real tools: groff renders every
page without a warning, bash completes with the script sourced, zsh parses its script.
What a page or a completion must contain is read from ``nsctl COMMAND --help``, the
text argparse prints, not from the generator.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nsctl.cli import docgen
from nsctl.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def test_generated_files_are_current():
    """`python -m nsctl.cli.docgen .` was run after the last change to an option."""
    stale = [rel for rel, text in docgen.files().items()
             if not (ROOT / rel).is_file() or (ROOT / rel).read_text(encoding="utf-8") != text]
    assert stale == [], f"run `python -m nsctl.cli.docgen .` to regenerate: {stale}"


def test_pyproject_installs_every_generated_file():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = {p.relative_to(ROOT).as_posix() for patterns in data["data-files"].values()
                 for pattern in patterns for p in ROOT.glob(pattern)}
    assert installed == set(docgen.files())


def _help_options(command: str) -> set[str]:
    """The long options ``nsctl COMMAND --help`` lists."""
    out = subprocess.run([sys.executable, "-m", "nsctl", command, "--help"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out)) - {"--"}


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_man_page_renders_and_lists_every_option(command):
    page = ROOT / "man" / "man1" / f"nsctl-{command}.1"
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = re.sub(r".\x08", "", proc.stdout).replace("\u2010", "-").replace("\u2212", "-")
    missing = {opt for opt in _help_options(command) if opt not in text}
    assert missing == set(), f"nsctl-{command}(1) lacks {sorted(missing)}"


def _bash_complete(*words: str) -> list[str]:
    script = (f"source {ROOT / 'completions' / 'nsctl'}; COMP_WORDS=({' '.join(words)}); "
              f"COMP_CWORD={len(words) - 1}; _nsctl; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "--norc", "-c", script], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return out.split()


def test_bash_completes_commands_options_and_values():
    assert _bash_complete("nsctl", "en") == ["enter"]
    assert set(_bash_complete("nsctl", "")) >= set(COMMANDS)
    for command in ("enter", "run", "ls", "lsns"):
        offered = set(_bash_complete("nsctl", command, "--"))
        missing = _help_options(command) - offered
        assert missing == set(), (command, sorted(missing))
    assert _bash_complete("nsctl", "ls", "-t", "n") == ["net"]
    assert _bash_complete("nsctl", "pid", "--via", "i") == ["ioctl"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh")
def test_zsh_completion_parses_and_loads():
    script = ROOT / "completions" / "_nsctl"
    subprocess.run(["zsh", "-n", str(script)], check=True, timeout=60)
    out = subprocess.run(
        ["zsh", "-f", "-c", "autoload -Uz compinit; compinit -u -D; "
         f"fpath=({script.parent} $fpath); autoload -Uz +X _nsctl && whence -w _nsctl"],
        check=True, capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "_nsctl: function"
