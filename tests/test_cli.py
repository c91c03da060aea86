"""The commands as a user runs them: ls, tree, show, errors, speed-sensitive imports.

Each test builds real namespaces with util-linux unshare(1) and learns their
inodes from the kernel itself (os.stat), then checks what nsctl prints.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial

import pytest
from support import cli, processes, root_only

nsctl = partial(cli.run_nsctl, check=True)


def ino(path: str) -> int:
    return os.stat(path).st_ino


class Spawned:
    """A process started through unshare(1) chains; killed and reaped at exit."""

    def __init__(self, argv: list[str], final_comm: str = "sleep") -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait until the exec chain ends in sleep
            try:
                with open(f"/proc/{self.pid}/comm") as f:
                    if f.read().strip() == final_comm:
                        break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        else:
            self.close()
            raise RuntimeError(f"{argv} did not start")

    def link(self, name: str) -> int:
        return ino(f"/proc/{self.pid}/ns/{name}")

    def close(self) -> None:
        # The whole subtree: unshare --fork leaves a child that outlives a killed parent.
        processes.terminate([self.pid] + processes.descendants(self.pid))
        self.proc.returncode = 0  # reaped above; keep Popen from waiting again


@pytest.fixture
def spawn():
    made: list[Spawned] = []

    def start(*argv: str, final_comm: str = "sleep") -> Spawned:
        s = Spawned(list(argv), final_comm)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


@pytest.fixture
def netns_file(tmp_path):
    """A network namespace kept alive only by a bind mount in our mount namespace."""
    path = tmp_path / "pinned-net"
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True, timeout=30)
    try:
        yield str(path), ino(str(path))
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=30)
        path.unlink()


def test_help_lists_commands_and_imports_nothing_heavy():
    """`nsctl --help` names the commands without importing discovery, rich or ctypes
    (what would make it slow to print)."""
    code = ("import sys; from nsctl.cli.main import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('rich', 'nsctl.discovery', 'ctypes') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout
    assert "ls" in out and "tree" in out and "show" in out and "lsns" in out
    assert "HEAVY []" in out


@root_only
def test_plain_listing_imports_nothing_heavy():
    """`nsctl ls --json` on a small host: none of the modules that cost milliseconds
    to import and that it has no use for (shutil came with argparse's help formatter,
    ~3.5 ms; ctypes, typing, dataclasses and orjson are only for other paths)."""
    code = ("import sys, io, contextlib; from nsctl.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['ls', '--json'])\n"
            "heavy = [m for m in ('shutil', 'ctypes', 'typing', 'dataclasses', 'orjson')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout
    assert "HEAVY []" in out, out


@root_only
def test_ls_shows_a_new_namespace_and_who_holds_it(spawn):
    s = spawn("unshare", "--uts", "--ipc", "sleep", "600")
    out = nsctl("ls", "-t", "uts", "-o", "NS,TYPE,NPROCS,PID,HELD-BY").stdout
    rows = {int(line.split()[0]): line.split() for line in out.splitlines()[1:]}
    row = rows[s.link("uts")]
    assert row[1:] == ["uts", "1", str(s.pid), "process"]
    assert all(r[1] == "uts" for r in rows.values())
    assert "\x1b[" not in out  # piped: no colours


@root_only
def test_ls_json_is_one_document_with_documented_keys(spawn, netns_file):
    path, net_ino = netns_file
    s = spawn("unshare", "--net", "sleep", "600")
    doc = json.loads(nsctl("ls", "--json", "-t", "net").stdout)
    assert set(doc) == {"namespaces", "processes", "partial", "problems"}
    by_ino = {n["ns"]: n for n in doc["namespaces"]}
    assert {n["type"] for n in doc["namespaces"]} == {"net"}
    held = by_ino[net_ino]
    assert held["held_by"] == ["bindmount"]
    assert held["refs"][0]["path"] == path
    assert held["pids"] == []
    proc_ns = by_ino[s.link("net")]
    assert s.pid in proc_ns["pids"]
    assert set(held) >= {"ns", "type", "dev", "id", "owner", "parent", "owner_uid", "hidden",
                         "held_by", "pids", "refs"}
    assert held["dev"] == os.stat(path).st_dev
    assert held["owner"] == ino("/proc/self/ns/user")


@root_only
def test_tree_marks_hidden_ancestors(spawn):
    # Each unshare execs the next: the outer two user namespaces keep no process.
    s = spawn("unshare", "-Ur", "unshare", "-Ur", "unshare", "-Ur", "sleep", "600")
    inner = s.link("user")
    doc = json.loads(nsctl("tree", "--json").stdout)

    def find(nodes, target, path=()):
        for node in nodes:
            here = path + (node,)
            if node.get("ns") == target:
                return here
            got = find(node.get("children", []), target, here)
            if got:
                return got
        return None

    chain = find(doc["tree"], inner)
    assert chain is not None
    assert chain[0]["ns"] == ino("/proc/self/ns/user")
    assert [n["hidden"] for n in chain[-3:]] == [True, True, False]
    text = nsctl("tree").stdout
    assert text.count("(hidden)") >= 2


@root_only
def test_tree_pid(spawn):
    s = spawn("unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sleep", "600",
              final_comm="unshare")
    child = None
    deadline = time.monotonic() + 5
    while child is None and time.monotonic() < deadline:
        kids = open(f"/proc/{s.pid}/task/{s.pid}/children").read().split()
        child = int(kids[0]) if kids else None
    inner = ino(f"/proc/{child}/ns/pid")
    doc = json.loads(nsctl("tree", "--pid", "--json").stdout)
    top = doc["tree"][0]
    assert top["ns"] == ino("/proc/self/ns/pid")
    assert any(c["ns"] == inner and child in c["pids"] for c in top["children"])


@root_only
def test_show_accepts_every_spec_form(spawn, netns_file):
    path, net_ino = netns_file
    s = spawn("unshare", "--net", "sleep", "600")
    proc_net = s.link("net")
    fd = os.open(f"/proc/{s.pid}/ns/net", os.O_RDONLY)
    try:
        import fcntl
        import struct
        buf = bytearray(8)
        fcntl.ioctl(fd, (2 << 30) | (8 << 16) | (0xB7 << 8) | 13, buf)
        ns_id = struct.unpack("=Q", buf)[0]
    finally:
        os.close(fd)
    for spec, want in [(str(proc_net), proc_net), (f"net:[{proc_net}]", proc_net),
                       (f"{s.pid}/net", proc_net), (f"/proc/{s.pid}/ns/net", proc_net),
                       (path, net_ino), (str(ns_id), proc_net)]:
        doc = json.loads(nsctl("show", spec, "--json").stdout)
        assert doc["ns"] == want, spec
    text = nsctl("show", path).stdout
    assert f"net:[{net_ino}]" in text and f"bind mount {path}" in text


def test_nsctl_alone_prints_usage_and_exits_2():
    proc = nsctl(check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("usage: nsctl") and "enter" in proc.stderr


@pytest.mark.parametrize("command", ["ls", "tree", "show", "pidtree", "pid", "pin", "unpin",
                                     "enter", "run", "net", "snapshot", "diff", "watch",
                                     "history", "serve"])
def test_version_everywhere(command):
    from nsctl import __version__

    proc = nsctl(command, "--version")
    assert proc.stdout == f"nsctl {command} {__version__}\n"


@pytest.mark.parametrize("argv, message, code", [
    # bad words on the command line: usage errors, exit 2 as argparse and util-linux give it
    (["ls", "-t", "bogus"], "unknown namespace type 'bogus'", 2),
    (["ls", "-o", "NS,NOPE"], "unknown column 'NOPE'", 2),
    (["pid", "abc"], "not a PID: 'abc'", 2),
    (["show", "net:[1]"], "not found", 1),
    (["show", "99999999/net"], "no process with PID 99999999", 1),
    (["show", "/etc/hostname"], "not a namespace file", 1),
    (["show", "/no/such/file"], "No such file", 1),
    (["show", "nonsense"], "cannot read 'nonsense' as a namespace", 1),
    (["show", "frob:[4026531840]"], "unknown namespace type 'frob'", 1),
    (["show", "1/frob"], "unknown namespace type 'frob'", 1),
])
def test_bad_input_is_one_line_and_exit_status(argv, message, code):
    proc = nsctl(*argv, check=False)
    assert proc.returncode == code
    lines = [line for line in proc.stderr.splitlines()
             if not line.startswith("nsctl: partial result")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["ls"], ["ls", "--json"], ["lsns"], ["tree"],
                                  ["show", f"{os.getpid()}/net"]])
def test_output_that_cannot_be_written_is_one_line_and_exit_1(argv):
    """A command's output goes out before nsctl leaves (it skips the interpreter's
    teardown): a write that fails there, as the buffer is flushed, is reported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as users run it
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "nsctl", *argv], stdout=full, env=env,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if "partial result" not in line]
    assert len(lines) == 1 and lines[0].startswith("lsns" if argv == ["lsns"] else "nsctl") \
        and lines[0].endswith(": No space left on device"), proc.stderr


@root_only
@pytest.mark.parametrize("argv, status, torn_down", [
    (["ls", "--json"], 0, False),
    (["show", "no-such-namespace"], 1, False),
    (["unpin", "/nonexistent/pin"], 1, True),
])
def test_a_command_that_only_prints_leaves_without_the_interpreter_teardown(
        argv, status, torn_down):
    """After a command that only reads and prints, nsctl leaves at once (os._exit: the
    teardown took 3-4 ms of a small host's `ls`), with its output whole and its status
    kept; an atexit hook, which the teardown would run, does not run.  Any other command
    exits the usual way."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('TORN DOWN', file=sys.stderr))\n"
            f"sys.argv = ['nsctl', *{argv!r}]\n"
            "from nsctl.cli.main import entry\n"
            "entry()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as users run it
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert ("TORN DOWN" in proc.stderr) == torn_down, proc.stderr
    assert "Traceback" not in proc.stderr
    if argv[0] == "ls":   # block-buffered into a pipe, and all of it written
        assert json.loads(proc.stdout)["namespaces"]


def test_unknown_command_is_a_usage_error():
    proc = nsctl("frobnicate", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@root_only
def test_ls_takes_lsns_task_raw_and_json_options(spawn):
    """-p PID: only that process's namespaces (as the kernel links them); -r: lsns's raw
    layout (one space between cells, blanks as \\x20); -J: the JSON document."""
    s = spawn("unshare", "--uts", "sleep", "600")
    want = sorted((ino(f"/proc/{s.pid}/ns/{t}"), t) for t in os.listdir(f"/proc/{s.pid}/ns")
                  if t not in ("pid_for_children", "time_for_children"))
    out = nsctl("ls", "-r", "-p", str(s.pid), "-o", "NS,TYPE").stdout.splitlines()
    assert out[0] == "NS TYPE"
    assert sorted((int(ns), t) for ns, t in (line.split(" ") for line in out[1:])) == want
    doc = json.loads(nsctl("ls", "-J", "-p", str(s.pid)).stdout)
    assert sorted((n["ns"], n["type"]) for n in doc["namespaces"]) == want
    raw = nsctl("ls", "-r", "-n", "-t", "uts", "-o", "NS,COMMAND").stdout.splitlines()
    assert f"{s.link('uts')} sleep\\x20600" in raw


@root_only
def test_ls_tree_by_owner_and_by_parent():
    """-T (lsns's --tree): each namespace under its owning user namespace, or with
    -T parent under its parent; ASCII guides when piped."""
    from support import namespaces

    with namespaces.nested_userns(depth=2) as topo:
        outer, inner = topo.levels
        lines = nsctl("ls", "-T", "-t", "user", "-o", "NS,TYPE").stdout.splitlines()

        def where(ino: int, text: list[str]) -> tuple[int, int]:
            """(row, column) where the inode's cell starts its digits."""
            row = next(i for i, line in enumerate(text) if str(ino) in line)
            return row, text[row].index(str(ino))

        (r_top, c_top), (r_out, c_out), (r_in, c_in) = (
            where(topo.top.ino, lines), where(outer.ino, lines), where(inner.ino, lines))
        assert r_top < r_out < r_in and c_top < c_out < c_in       # depth first, indented
        assert lines[r_top].startswith(str(topo.top.ino))            # a root: no guide
        assert lines[r_out][:c_out].endswith(("|-", "`-"))
        assert lines[r_in][:c_in].endswith("`-")                     # its only child
        assert not any(ch in "\n".join(lines) for ch in "├└│")     # piped: ASCII
        by_parent = nsctl("ls", "-T", "parent", "-t", "user", "-o", "NS").stdout.splitlines()
        assert [where(i, by_parent) for i in (topo.top.ino, outer.ino, inner.ino)] == \
            [(r_top, c_top), (r_out, c_out), (r_in, c_in)]            # for user ns the same
    assert cli.run_nsctl("ls", "-T", "process").returncode == 2
