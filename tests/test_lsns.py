"""``nsctl lsns``: util-linux lsns(8) compatibility, checked against the real thing.

Every test builds its own namespaces with unshare(1) (or a tiny helper that
holds a socket or an fd), learns their identity from the kernel (stat of
/proc/PID/ns/*, NS_GET_PARENT, mountinfo), and compares what nsctl prints
with what the system's /usr/bin/lsns prints.  That lsns is util-linux 2.38,
so comparisons stay on what 2.38 and 2.42 agree on: namespaces that have a
process, the columns both have, the table/raw/JSON layouts, -t, -p, the
NAMESPACE argument, the process and owner/parent trees.  What 2.38 lacks
(-Q, -H, namespaces held only by an fd, a socket or a bind mount) is checked
against the kernel instead.

Other test runs create and destroy namespaces on this machine at the same
time, so a comparison only looks at rows of namespaces the test made (or the
initial namespaces, which never change), never at a whole listing.  Every
fixture kills and reaps what it started and undoes its mounts, files and
links (conftest.py checks that after each test); the topologies that need a
helper process holding an fd, a socket or a foreign mount come from
tests/support/.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time

import pytest
from support import namespaces, processes, root_only

LSNS = "/usr/bin/lsns"
needs_lsns = pytest.mark.skipif(not os.access(LSNS, os.X_OK),
                                reason="needs util-linux lsns at /usr/bin/lsns")
NS_GET_PARENT = 0xB702
COLUMN_NAMES = ["NS", "TYPE", "PATH", "NPROCS", "PID", "PPID", "COMMAND", "UID", "USER",
                "NETNSID", "NSFS", "PNS", "ONS"]


# --- running the two tools ------------------------------------------------------

def nsctl_lsns(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nsctl", "lsns", *args],
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr == ""   # as lsns: nothing about unreadable processes
    return proc


def sys_lsns(*args: str) -> str:
    """Output of the system lsns.  2.38 sometimes gives up when a process exits
    mid-scan (prints nothing, or fails), which other test runs make likely:
    ask again a few times."""
    for _ in range(8):
        proc = subprocess.run([LSNS, *args], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout
        time.sleep(0.1)
    raise AssertionError(f"lsns {args} kept failing: {proc.stderr}")


def nsctl_json(*args: str) -> list[dict]:
    doc = json.loads(nsctl_lsns("-J", *args).stdout)
    assert list(doc) == ["namespaces"]
    return doc["namespaces"]


def lsns_json(*args: str) -> list[dict]:
    return json.loads(sys_lsns("-J", *args))["namespaces"]


def flatten(nodes: list[dict], parent: int | None = None) -> dict[int, tuple[dict, int | None]]:
    """ns -> (row without children, ns of the row it is nested in)."""
    out: dict[int, tuple[dict, int | None]] = {}
    for node in nodes:
        row = {k: v for k, v in node.items() if k != "children"}
        out[node["ns"]] = (row, parent)
        out.update(flatten(node.get("children", []), node["ns"]))
    return out


def ino(path: str) -> int:
    return os.stat(path).st_ino


def ns_parent(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        pfd = fcntl.ioctl(fd, NS_GET_PARENT)
    finally:
        os.close(fd)
    try:
        return os.fstat(pfd).st_ino
    finally:
        os.close(pfd)


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


# --- fixtures: namespaces this test owns ------------------------------------------

class Spawned:
    """A process (and its session) started for a test; killed and reaped at exit."""

    def __init__(self, argv: list[str], final_comm: str = "sleep", **popen) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True,
                                     **popen)
        self.pid = self.proc.pid
        if final_comm:
            self.wait_comm(self.pid, final_comm)

    def wait_comm(self, pid: int, comm: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == comm:
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        self.close()
        raise RuntimeError(f"pid {pid} never became {comm}")

    def child(self, comm: str = "sleep") -> int:
        """The PID of the (first) child of the process, once it runs ``comm``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                kids = f.read().split()
            if kids:
                self.wait_comm(int(kids[0]), comm)
                return int(kids[0])
            time.sleep(0.01)
        raise RuntimeError("no child appeared")

    def link(self, name: str, pid: int | None = None) -> int:
        return ino(f"/proc/{pid or self.pid}/ns/{name}")

    def close(self) -> None:
        """Kill it and everything it started; reap them all (we are a subreaper)."""
        processes.terminate([self.pid] + processes.descendants(self.pid))
        self.proc.wait(timeout=10)


@pytest.fixture
def spawn():
    made: list[Spawned] = []

    def start(*argv: str, final_comm: str = "sleep", **popen) -> Spawned:
        s = Spawned(list(argv), final_comm, **popen)
        made.append(s)
        return s

    yield start
    for s in reversed(made):
        s.close()


@pytest.fixture
def netns_file(scratch):
    """A network namespace that only a bind mount in our mount namespace keeps alive."""
    with namespaces.netns_bindmount(scratch, "pinned-net") as pinned:
        yield pinned.path, pinned.net.ino


@pytest.fixture
def veth():
    """Add a veth pair whose peer lives in another network namespace; the kernel
    then gives that namespace an nsid in ours."""
    made: list[str] = []

    def add(pid: int) -> str:
        name = f"lsT{os.getpid() % 100000}{len(made)}"
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p",
                        "netns", str(pid)], check=True)
        made.append(name)
        return name

    yield add
    for name in made:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        gone = subprocess.run(["ip", "link", "show", name], capture_output=True)
        assert gone.returncode != 0, f"veth {name} left behind"


# --- options and help, no namespaces needed ---------------------------------------

def test_help_names_every_option():
    out = nsctl_lsns("--help").stdout
    for opt in ("--json", "--list", "--noheadings", "--output", "--output-all", "--persistent",
                "--task", "--filter", "--raw", "--notruncate", "--nowrap", "--type", "--tree",
                "--list-columns", "--help"):
        assert opt in out
    assert "Usage:" in out and "nsctl lsns [options] [<namespace>]" in out


def test_list_columns_in_all_three_formats():
    text = nsctl_lsns("-H").stdout.splitlines()
    assert [line.split()[0] for line in text] == COLUMN_NAMES
    assert {line.split()[0]: line.split()[1] for line in text}["NPROCS"] == "<integer>"
    assert text[0] == "     NS <integer> namespace identifier (inode number)"
    doc = json.loads(nsctl_lsns("-J", "-H").stdout)
    rows = doc["lsns-columns"]
    assert [r["holder"] for r in rows] == COLUMN_NAMES
    numbers = {r["holder"] for r in rows if r["type"] == "<integer>"}
    assert numbers == {"NS", "NPROCS", "PID", "PPID", "UID", "PNS", "ONS"}
    raw = nsctl_lsns("-r", "-H").stdout.splitlines()
    assert raw[0] == r"NS <integer> namespace\x20identifier\x20(inode\x20number)"


def test_plain_text_stays_light():
    """Plain output imports neither rich nor the netlink code; NETNSID brings the latter."""
    code = ("import sys, io, contextlib\nfrom nsctl.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['lsns', '-o', sys.argv[1]])\n"
            "print('rich' in sys.modules, 'nsctl.kernel.netnsid' in sys.modules)")
    for cols, want in (("NS,TYPE,NPROCS,PID,USER,COMMAND", "False False"),
                       ("NS,NETNSID", "False True")):
        out = subprocess.run([sys.executable, "-c", code, cols], capture_output=True,
                             text=True, timeout=120)
        assert out.stdout.split("\n")[0] == want, out.stderr


@pytest.mark.parametrize("argv, message", [
    (["-t", "bogus"], "unknown namespace type: bogus"),
    (["-o", "NS,NOPE"], "unknown column: NOPE"),
    (["-o", "+NOPE"], "unknown column: NOPE"),
    (["-Q", 'TYPE == "net" and'], 'failed to parse "TYPE == "net" and"'),
    (["-Q", "(NS > 1"], "failed to parse"),
    (["-Q", 'NS =~ "("'], "invalid regular expression"),
    (["-Q", "NOPE == 1"], "unknown column in filter: NOPE"),
    (["-Q", "TYPE > 5"], "failed to apply filter"),
    (["12x"], "invalid namespace argument: '12x'"),
    (["-p", "abc"], "invalid PID argument: 'abc'"),
    (["-p", "1", "4026531836"], "--task is mutually exclusive with <namespace>"),
    (["-J", "-r"], "mutually exclusive arguments: --json --raw"),
    (["-l", "-T"], "mutually exclusive arguments: --list --tree"),
    (["-P", "-p", "1"], "mutually exclusive arguments: --persistent --task"),
    (["-Tsideways"], "unknown tree type: sideways"),
    (["--frobnicate"], "unrecognized option '--frobnicate'"),
    (["-o"], "option requires an argument -- 'o'"),
])
def test_bad_input_is_one_line_and_exit_1(argv, message):
    """As lsns says it: ``lsns: ...``, and after an option getopt refuses, the line
    that points to --help."""
    proc = nsctl_lsns(*argv, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    if lines[-1:] == ["Try 'lsns --help' for more information."]:
        lines = lines[:-1]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lsns: ") and message in lines[0], proc.stderr
    assert proc.stdout == ""


@root_only
def test_unknown_namespace_argument_is_an_error():
    # An inode no namespace has: one past the highest the kernel shows us.
    taken = {ino(f"/proc/self/ns/{t}") for t in os.listdir("/proc/self/ns")}
    proc = nsctl_lsns(str(max(taken) + 10**9), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"lsns: not found namespace: {max(taken) + 10**9}")


# --- compared with util-linux lsns --------------------------------------------------

@root_only
@needs_lsns
def test_json_rows_match_lsns_for_new_namespaces(spawn):
    s = spawn("unshare", "--net", "--uts", "sleep", "600")
    mine = {s.link("net"), s.link("uts")}
    args = ("-o", "NS,TYPE,NPROCS,PID,PPID,UID,USER,COMMAND,PATH,PNS,ONS", "-t", "net", "-t", "uts")
    # Flattened: where the sleeper's parent has a row of its own (pytest as PID 1 of a
    # PID namespace), both nest the sleeper's rows under it.
    ours = {n: row for n, (row, _) in flatten(nsctl_json(*args)).items()}
    theirs = {n: row for n, (row, _) in flatten(lsns_json(*args)).items()}
    for n in mine:
        assert ours[n] == theirs[n]
        assert ours[n]["nprocs"] == 1 and ours[n]["pid"] == s.pid
        assert ours[n]["path"] == f"/proc/{s.pid}/ns/{ours[n]['type']}"
        assert ours[n]["ons"] == ino("/proc/self/ns/user") and ours[n]["pns"] == 0
    assert {r["type"] for r in ours.values()} == {"net", "uts"}
    for t in ("net", "uts"):   # the initial namespaces: same identity in both
        init = ino(f"/proc/self/ns/{t}")
        assert ours[init]["type"] == theirs[init]["type"] == t
    assert all(isinstance(r["ns"], int) and isinstance(r["nprocs"], int) for r in ours.values())


@root_only
@needs_lsns
def test_raw_noheadings_and_table_lines_match_lsns(spawn):
    s = spawn("unshare", "--uts", "sleep", "600")
    uts = str(s.link("uts"))
    raw_args = ("-r", "-o", "NS,TYPE,NPROCS,PID,USER,COMMAND", "-t", "uts")
    ours = nsctl_lsns(*raw_args).stdout.splitlines()
    theirs = sys_lsns(*raw_args).splitlines()
    assert ours[0] == theirs[0] == "NS TYPE NPROCS PID USER COMMAND"
    mine = [line for line in ours if line.startswith(uts + " ")]
    assert mine == [line for line in theirs if line.startswith(uts + " ")]
    # (a tree glyph before the command where its parent's row is nested over it)
    assert len(mine) == 1 and mine[0].startswith(f"{uts} uts 1 {s.pid} root ")
    assert mine[0].endswith("sleep\\x20600")
    for args in (("-n", "-o", "NS,TYPE,PID,COMMAND", "-t", "uts"),
                 ("-l", "-o", "NS,TYPE,PID,COMMAND", "-t", "uts")):
        ours = nsctl_lsns(*args).stdout.splitlines()
        theirs = sys_lsns(*args).splitlines()
        row = [line for line in ours if line.startswith(uts + " ")]
        assert row == [line for line in theirs if line.startswith(uts + " ")] != []
        if "-n" in args:
            assert not any(line.lstrip().startswith("NS ") for line in ours)
        else:
            assert ours[0] == theirs[0]   # (PID's width follows the widest PID)
            assert ours[0].startswith("        NS TYPE ")
            assert ours[0].split()[2:] == ["PID", "COMMAND"]


@root_only
@needs_lsns
def test_default_and_extended_column_sets_match_lsns():
    for args in ((), ("-t", "net"), ("-o", "+PATH"), ("-o", "+PATH,UID", "-t", "pid"),
                 ("--output-all",)):
        ours = nsctl_lsns("-r", *args).stdout.splitlines()[0]
        theirs = sys_lsns("-r", *args).splitlines()[0]
        assert ours == theirs, args
    assert nsctl_lsns("-r", "-t", "net").stdout.split("\n")[0] == \
        "NS TYPE NPROCS PID USER NETNSID NSFS COMMAND"
    assert nsctl_lsns("-r", "--output-all").stdout.split("\n")[0].split() == COLUMN_NAMES


@root_only
@needs_lsns
def test_task_lists_the_namespaces_of_one_process(spawn):
    s = spawn("unshare", "--ipc", "--cgroup", "sleep", "600")
    ours = nsctl_json("-p", str(s.pid), "-o", "NS,TYPE")
    assert ours == lsns_json("-p", str(s.pid), "-o", "NS,TYPE")
    kernel = {ino(f"/proc/{s.pid}/ns/{t}"): t
              for t in ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time")}
    assert {r["ns"]: r["type"] for r in ours} == kernel
    assert [r["ns"] for r in ours] == sorted(kernel)


@root_only
@needs_lsns
def test_namespace_argument_lists_its_processes(spawn):
    s = spawn("unshare", "--uts", "sh", "-c", "sleep 600 & sleep 601 & wait", final_comm="sh")
    kid = s.child()
    uts = str(s.link("uts"))
    args = (uts, "-J", "-o", "PID,PPID,COMMAND,NS,TYPE")
    ours = nsctl_json(*args)
    assert ours == lsns_json(*args)
    # The NAMESPACE form lists processes, nested by parent: sh, then its sleeps.
    assert len(ours) == 1 and ours[0]["pid"] == s.pid
    assert ours[0]["command"] == "sh -c sleep 600 & sleep 601 & wait"
    kids = ours[0]["children"]
    assert {c["ppid"] for c in kids} == {s.pid} and kid in {c["pid"] for c in kids}
    assert sorted(c["command"] for c in kids) == ["sleep 600", "sleep 601"]
    assert all(r["ns"] == int(uts) and r["type"] == "uts" for r in [ours[0], *kids])
    text_ours = nsctl_lsns(uts, "-o", "PID,COMMAND").stdout.splitlines()
    assert text_ours == sys_lsns(uts, "-o", "PID,COMMAND").splitlines()
    assert text_ours[1].endswith(" sh -c sleep 600 & sleep 601 & wait")
    assert re.search(r"\s(├|└)─sleep 60[01]$", text_ours[2])


@root_only
@needs_lsns
def test_process_tree_matches_lsns(spawn):
    # sh is alone in a new uts namespace; its child sleep adds a new ipc namespace.
    s = spawn("unshare", "--uts", "sh", "-c", "unshare --ipc sleep 600 & wait", final_comm="sh")
    kid = s.child()
    uts, ipc = s.link("uts"), s.link("ipc", kid)
    args = ("-t", "uts", "-t", "ipc", "-o", "NS,TYPE,NPROCS,PID,COMMAND")
    ours, theirs = flatten(nsctl_json(*args)), flatten(lsns_json(*args))
    for n in (uts, ipc):
        assert ours[n] == theirs[n]
    assert ours[ipc][0]["pid"] == kid and ours[uts][0]["pid"] == s.pid
    # ipc's line hangs under uts's exactly when uts's line came first (lower inode).
    assert ours[ipc][1] == (uts if uts < ipc else None)
    lines_ours = nsctl_lsns(*args).stdout.splitlines()
    lines_theirs = sys_lsns(*args).splitlines()
    for n in (uts, ipc):
        want = [line for line in lines_theirs if line.startswith(str(n))]
        assert [line for line in lines_ours if line.startswith(str(n))] == want
    if uts < ipc:
        assert next(line for line in lines_ours if line.startswith(str(ipc))).endswith(
            "└─sleep 600")


@root_only
@needs_lsns
def test_owner_tree_shows_hidden_user_namespaces(spawn):
    # The outer user namespace keeps no process: only its child keeps it alive.
    s = spawn("unshare", "-Ur", "unshare", "-Ur", "sleep", "600")
    inner = s.link("user")
    outer = ns_parent(f"/proc/{s.pid}/ns/user")
    top = ino("/proc/self/ns/user")
    assert ns_parent(f"/proc/{s.pid}/ns/user") != top
    args = ("-T", "-t", "user", "-o", "NS,TYPE,NPROCS,PID")
    ours, theirs = flatten(nsctl_json(*args)), flatten(lsns_json(*args))
    assert ours[outer] == ({"ns": outer, "type": "user", "nprocs": 0, "pid": None}, top)
    assert ours[inner] == ({"ns": inner, "type": "user", "nprocs": 1, "pid": s.pid}, outer)
    for n in (outer, inner):
        assert ours[n] == theirs[n]
    text = nsctl_lsns(*args).stdout.splitlines()
    assert text[0].startswith("NS ")          # the tree column is left-aligned
    outer_line = next(line for line in text if re.search(rf"─{outer} ", line))
    inner_line = next(line for line in text if re.search(rf"─{inner} ", line))
    assert inner_line.index(str(inner)) == outer_line.index(str(outer)) + 2
    assert re.match(r"^[│ ]*[├└]─\d", inner_line)
    # The parent tree nests user namespaces the same way.
    by_parent = flatten(nsctl_json("-Tparent", "-t", "user", "-o", "NS,PNS"))
    assert by_parent[inner] == ({"ns": inner, "pns": outer}, outer)


@root_only
@needs_lsns
def test_parent_tree_for_pid_namespaces(spawn):
    s = spawn("unshare", "--pid", "--fork", "--kill-child", "sleep", "600", final_comm="unshare")
    kid = s.child()
    pidns = s.link("pid", kid)
    top = ino("/proc/self/ns/pid")
    args = ("-Tparent", "-t", "pid", "-o", "NS,TYPE,NPROCS,PID,PNS")
    ours, theirs = flatten(nsctl_json(*args)), flatten(lsns_json(*args))
    assert ours[pidns] == theirs[pidns]
    assert ours[pidns] == ({"ns": pidns, "type": "pid", "nprocs": 1, "pid": kid, "pns": top},
                           top)


@root_only
@needs_lsns
def test_netnsid_matches_lsns(spawn, veth):
    s = spawn("unshare", "--net", "sleep", "600")
    net = s.link("net")
    veth(s.pid)
    args = ("-o", "NS,TYPE,NETNSID", "-t", "net")
    ours = {r["ns"]: r for r in nsctl_json(*args)}
    theirs = {r["ns"]: r for r in lsns_json(*args)}
    assert ours[net] == theirs[net]
    assert re.fullmatch(r"\d+", ours[net]["netnsid"])
    # Our own namespace usually has no id in itself, but the kernel gives it one when a
    # netlink message about a device in another namespace names a peer back here (seen
    # after veth moves): compare, don't assume.
    own = ino("/proc/self/ns/net")
    assert ours[own]["netnsid"] == theirs[own]["netnsid"]
    assert re.fullmatch(r"\d+|unassigned", ours[own]["netnsid"])


@root_only
def test_namespaces_without_processes_are_listed(netns_file):
    path, pinned = netns_file
    cols = "NS,TYPE,NPROCS,PID,COMMAND,NSFS,PATH,USER"
    with namespaces.netns_held_by_fd(via="proc") as by_fd, \
            namespaces.netns_held_by_socket() as by_socket:
        rows = {r["ns"]: r for r in nsctl_json("-t", "net", "-o", cols)}
        persistent = {r["ns"]: r for r in nsctl_json("-P", "-o", "NS,NPROCS")}
        held, sock = by_fd.net.ino, by_socket.net.ino
    empty = {"type": "net", "nprocs": 0, "pid": None, "command": None, "path": None,
             "user": "root"}
    assert rows[pinned] == {"ns": pinned, "nsfs": path, **empty}
    assert rows[held] == {"ns": held, "nsfs": None, **empty}
    assert rows[sock] == {"ns": sock, "nsfs": None, **empty}
    assert {pinned, held, sock} <= set(persistent)
    assert all(r["nprocs"] == 0 for r in persistent.values())
    assert ino("/proc/self/ns/net") not in persistent


@root_only
def test_namespace_held_by_fd_of_a_detached_mount_is_listed(scratch):
    with namespaces.netns_held_by_fd(scratch, via="detached") as by_fd:
        rows = {r["ns"]: r for r in nsctl_json("-t", "net", "-o", "NS,NPROCS")}
    assert rows.get(by_fd.net.ino) == {"ns": by_fd.net.ino, "nprocs": 0}


@root_only
def test_nsfs_names_bind_mounts_in_other_mount_namespaces(scratch):
    with namespaces.foreign_mount_netns(scratch) as foreign:
        with open(f"/proc/{foreign.pid}/mountinfo") as f:   # the kernel: mounted in there
            assert any(line.split()[4] == foreign.path and f"net:[{foreign.net.ino}]" in line
                       for line in f)
        assert not mounted(foreign.path)
        rows = {r["ns"]: r for r in nsctl_json("-t", "net", "-o", "NS,NSFS,NPROCS")}
    assert rows[foreign.net.ino] == {"ns": foreign.net.ino, "nsfs": foreign.path, "nprocs": 0}


@root_only
@needs_lsns
def test_multi_line_nsfs_cells(spawn, scratch):
    s = spawn("unshare", "--net", "sleep", "600")
    net = s.link("net")
    paths = [str(scratch / "a"), str(scratch / "bb")]
    mounts = []
    try:
        for p in paths:
            open(p, "w").close()
            subprocess.run(["mount", "--bind", f"/proc/{s.pid}/ns/net", p], check=True)
            mounts.append(p)
        lines = nsctl_lsns("-t", "net", "-o", "NS,NSFS,PID").stdout.splitlines()
        i = next(k for k, line in enumerate(lines) if line.startswith(str(net)))
        assert lines[i].split() == [str(net), paths[0], str(s.pid)]
        assert lines[i + 1].rstrip() == " " * 11 + paths[1]   # under the NSFS column
        theirs = sys_lsns("-t", "net", "-o", "NS,NSFS,PID").splitlines()
        j = next(k for k, line in enumerate(theirs) if line.startswith(str(net)))
        assert theirs[j].split() == lines[i].split()
        assert theirs[j + 1].strip() == lines[i + 1].strip()
        raw = nsctl_lsns("-r", "-t", "net", "-o", "NS,NSFS").stdout.splitlines()
        assert f"{net} {paths[0]},{paths[1]}" in raw
        nowrap = nsctl_lsns("-W", "-t", "net", "-o", "NS,NSFS").stdout.splitlines()
        assert any(line.split() == [str(net), f"{paths[0]},{paths[1]}"] for line in nowrap)
        rows = {r["ns"]: r for r in nsctl_json("-t", "net", "-o", "NS,NSFS")}
        assert rows[net]["nsfs"] == "\n".join(paths)
    finally:
        for p in mounts:
            subprocess.run(["umount", p], check=True)
            assert not mounted(p)


@root_only
@needs_lsns
def test_filter_on_real_output(spawn, netns_file):
    path, pinned = netns_file
    s = spawn("unshare", "--net", "--uts", "sleep", "600")
    net, uts = s.link("net"), s.link("uts")

    mine = {net, uts, pinned}

    def rows(expr: str) -> dict[int, dict]:
        """The rows the filter keeps, of the namespaces this test made."""
        got = nsctl_json("-o", "NS,TYPE,NPROCS,PID", "-Q", expr)
        return {r["ns"]: r for r in got if r["ns"] in mine}

    every = nsctl_json("-o", "NS,TYPE,NPROCS", "-Q", 'TYPE == "net" and NPROCS > 0')
    assert every and all(r["type"] == "net" and r["nprocs"] > 0 for r in every)
    got = rows('TYPE == "net" and NPROCS > 0')
    assert set(got) == {net}
    theirs = {r["ns"]: r for r in lsns_json("-o", "NS,TYPE,NPROCS,PID", "-t", "net")}
    assert got[net] == theirs[net]
    assert set(rows("TYPE eq 'net' && NPROCS gt 0")) == {net}
    assert set(rows('!(TYPE != "net") AND NOT (NPROCS == 0)')) == {net}
    # and/or share one precedence level, left to right: (uts or net) and NPROCS == 0
    assert set(rows('TYPE == "uts" || TYPE == "net" and NPROCS == 0')) == {pinned}
    assert set(rows('TYPE == "uts" || (TYPE == "net" and NPROCS == 0)')) == {uts, pinned}
    assert set(rows('TYPE =~ "^n.t$"')) == {net, pinned}
    assert set(rows('TYPE !~ "^n"')) == {uts}
    assert set(rows(f"NS == {uts} or NS == {pinned}")) == {uts, pinned}
    assert set(rows(f"PID == {s.pid}")) == {net, uts}
    # An empty PID never compares true with a number.
    assert set(rows("PID >= 0")) == {net, uts}
    assert set(rows("NPROCS < 1K")) == mine
    # The filter may use columns that are not shown.
    shown = nsctl_json("-o", "NS", "-Q", f'COMMAND == "sleep 600" and NS == {uts}')
    assert shown == [{"ns": uts}]


@root_only
def test_partial_results_still_print():
    """Whatever discovery could not read, lsns prints; a warning is one stderr line,
    and only with --warn-partial (lsns says nothing about processes it can't read)."""
    proc = nsctl_lsns("-r", "-o", "NS,TYPE")
    assert proc.stdout.splitlines()[0] == "NS TYPE"
    assert proc.stderr == ""
    warned = nsctl_lsns("-r", "-o", "NS,TYPE", "--warn-partial", check=False)
    assert warned.returncode == 0
    assert warned.stdout.splitlines()[0] == "NS TYPE"
    lines = warned.stderr.splitlines()
    assert len(lines) <= 1 and all(ln.startswith("lsns: partial result") for ln in lines)


@root_only
@needs_lsns
@pytest.mark.parametrize("argv", [["--frobnicate"], ["-o"], ["-t", "nett"], ["-p", "abc"],
                                  ["12x"], ["-J", "-r"], ["NOT-FOUND"]], ids=" ".join)
def test_errors_are_lsns_own_on_stderr_and_in_exit_status(argv):
    """Same stdout, stderr and exit status as util-linux lsns, byte for byte."""
    if argv == ["NOT-FOUND"]:   # an inode no namespace has
        taken = {ino(f"/proc/self/ns/{t}") for t in os.listdir("/proc/self/ns")}
        argv = [str(max(taken) + 10**9)]
    theirs = subprocess.run(["lsns", *argv], executable=LSNS, capture_output=True, text=True,
                            timeout=60)
    ours = nsctl_lsns(*argv, check=False)
    assert theirs.returncode != 0
    assert (ours.returncode, ours.stdout, ours.stderr) == \
        (theirs.returncode, theirs.stdout, theirs.stderr)
