"""What nsctl prints on a terminal: styled, aligned, cut to the terminal's width,
tree guides in Unicode; and plain when piped or NO_COLOR is set.

nsctl runs in a pseudo-terminal of a known width; the namespace shown is one
the test made (unshare), its inode read from /proc by the test.
"""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
import unicodedata
from contextlib import contextmanager

import pytest
from support import root_only
from support.cli import run_nsctl
from support.processes import terminate

pytestmark = root_only
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDTH = 100
LONG = "0" * 300   # sleep 600 000...0: a command line far wider than the terminal


@contextmanager
def sleeper_in_own_uts(name: bytes):
    """``sleep 600`` in a uts namespace of its own, its command line starting with
    ``name`` (its argv[0]): (pid, uts inode) once it runs."""
    proc = subprocess.Popen([b"unshare", b"--uts", b"bash", b"-c",
                             b'exec -a "$0" sleep 600 "$1"', name, LONG.encode()])
    try:
        deadline = time.monotonic() + 10
        while not open(f"/proc/{proc.pid}/cmdline", "rb").read().startswith(name + b"\0"):
            assert time.monotonic() < deadline, "the sleeper did not start"
            time.sleep(0.01)
        yield proc.pid, os.stat(f"/proc/{proc.pid}/ns/uts").st_ino
    finally:
        terminate([proc.pid])
        proc.wait()


@pytest.fixture
def uts_sleeper():
    """A process in a uts namespace of its own, with a long command line."""
    with sleeper_in_own_uts(b"sleep") as got:
        yield got


@pytest.fixture
def wide_sleeper():
    """The same, its command line starting with wide characters (two columns each)."""
    with sleeper_in_own_uts(("漢字" * 80).encode()) as got:
        yield got


@pytest.fixture
def hostile_sleeper():
    """The same, its command line holding terminal escape sequences and bytes that are
    not UTF-8."""
    with sleeper_in_own_uts(b"x\x1b[31mred\x1b]0;title\x07\xff\xfe") as got:
        yield got


def columns(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def on_terminal(*args: str, width: int = WIDTH, **env: str) -> str:
    """nsctl's stdout when it is a terminal ``width`` columns wide."""
    master, slave = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update(TERM="xterm-256color", COLUMNS=str(width), LINES="50", **env)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "nsctl", *args], stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=subprocess.PIPE, env=environ)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:   # EIO: nsctl closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        stderr = proc.communicate(timeout=60)[1]
        assert proc.returncode == 0 and b"Traceback" not in stderr, stderr
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_ls_on_a_terminal_is_styled_aligned_and_cut_to_its_width(uts_sleeper):
    pid, ino = uts_sleeper
    out = on_terminal("ls", "-t", "uts")
    lines = out.splitlines()
    plain = [ANSI.sub("", line) for line in lines]
    assert plain[0].split() == ["NS", "TYPE", "NPROCS", "PID", "USER", "HELD-BY", "COMMAND"]
    assert set(plain[1]) == {"─"}
    assert "\x1b[1mNS\x1b[0m" in lines[0]            # the header in bold
    assert all(len(line) <= WIDTH for line in plain)
    ours = [line for line in plain if line.split()[0] == str(ino)]
    assert len(ours) == 1
    row = ours[0]
    assert row.split()[1:5] == ["uts", "1", str(pid), "root"]
    assert row.endswith("0…") and "sleep 600 000" in row   # cut to fit
    assert len(row) == WIDTH
    # Right-aligned NS: every inode ends where the header's NS ends.
    ns_end = plain[0].index("NS") + 2
    assert all(line.split()[0].isdigit() and len(line.split()[0]) <= ns_end
               and line[:ns_end].strip() == line.split()[0] for line in plain[2:])
    assert f"\x1b[36m{ino}\x1b[0m" in out            # NS in cyan
    # Piped, and on a terminal with NO_COLOR: plain text, the command in full.
    piped = run_nsctl("ls", "-t", "uts", check=True).stdout
    assert "\x1b[" not in piped and LONG in piped
    assert "\x1b[" not in on_terminal("ls", "-t", "uts", NO_COLOR="1")


def test_tree_on_a_terminal_has_unicode_guides(uts_sleeper):
    _pid, ino = uts_sleeper
    out = ANSI.sub("", on_terminal("tree"))
    ours = [line for line in out.splitlines() if f"uts:[{ino}]" in line]
    assert len(ours) == 1 and re.match(r"^(│   |    )*[├└]── uts:\[", ours[0]), ours
    piped = run_nsctl("tree", check=True).stdout
    assert any(re.match(r"^(\|   |    )*(\|--|`--) uts:\[" + str(ino), line)
               for line in piped.splitlines())


def test_every_row_fits_80_columns_and_the_command_keeps_its_room(uts_sleeper, scratch):
    """A column as wide as the terminal (a long bind-mount path) gives way, cut with an
    ellipsis, and the command keeps a third of the width."""
    from support.syscalls import bind_mount, umount

    pid, ino = uts_sleeper
    pin = scratch / ("p" * 150)
    pin.touch()
    bind_mount(f"/proc/{pid}/ns/uts", pin)
    try:
        out = ANSI.sub("", on_terminal("ls", "-t", "uts", "-o", "NS,TYPE,MOUNTS,PID,COMMAND",
                                       width=80))
    finally:
        umount(pin)
        pin.unlink()
    lines = out.splitlines()
    assert all(columns(line) <= 80 for line in lines), [columns(line) for line in lines]
    ours = [line for line in lines if line.split()[:1] == [str(ino)]]
    assert len(ours) == 1
    command = ours[0][lines[0].index("COMMAND"):]
    assert "…" in ours[0].split()[2] and str(scratch)[:10] in ours[0]   # MOUNTS cut
    assert command.startswith("sleep 600 0") and columns(command) >= 80 // 3


def test_no_color_keeps_the_guides_and_piped_text_is_plain_ascii(uts_sleeper):
    """NO_COLOR turns off colour only; piped text has no decoration the data lacks."""
    _pid, ino = uts_sleeper
    out = on_terminal("tree", NO_COLOR="1")
    assert "\x1b[" not in out
    assert any(re.match(r"^(│   |    )*[├└]── uts:\[" + str(ino), line)
               for line in out.splitlines())
    for command in (["tree"], ["pidtree"], ["ls"]):
        piped = run_nsctl(*command, check=True).stdout
        assert "·" not in piped and "─" not in piped and "│" not in piped, command


def test_wide_characters_are_cut_by_their_width_on_the_terminal(wide_sleeper):
    _pid, ino = wide_sleeper
    plain = ANSI.sub("", on_terminal("ls", "-t", "uts"))
    ours = [line for line in plain.splitlines() if line.split()[:1] == [str(ino)]]
    assert len(ours) == 1 and ours[0].endswith("…") and "漢字漢字" in ours[0]
    assert WIDTH - 1 <= columns(ours[0]) <= WIDTH   # (a wide character may not fit the last cell)


def test_control_characters_and_undecodable_bytes_are_escaped(hostile_sleeper):
    """Shown as \\xNN, as lsns shows them: a process can't drive the reader's terminal,
    nor make nsctl fail on a strict UTF-8 stdout."""
    pid, ino = hostile_sleeper
    escaped = r"x\x1b[31mred\x1b]0;title\x07\xff\xfe 600 000"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for args in (("ls", "-t", "uts"), ("show", f"{pid}/uts")):
        proc = subprocess.run([sys.executable, "-m", "nsctl", *args], capture_output=True,
                              env=env, stdin=subprocess.DEVNULL, timeout=60)
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
        assert escaped.encode() in proc.stdout and b"\x1b" not in proc.stdout, args
    out = on_terminal("ls", "-t", "uts")
    row = [line for line in out.splitlines() if str(ino) in line]
    assert len(row) == 1 and escaped[:20] in row[0]
    assert "\x1b]" not in out and "\x07" not in out   # only nsctl's own colour codes
