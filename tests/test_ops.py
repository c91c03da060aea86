"""The commands that change things: pin/unpin, enter, run (and run's init).

Everything is checked against what the kernel says, read by the test itself:
os.stat inodes and NS_GET_ID of nsfs files (support.nsfacts.facts), /proc/PID/* read from
outside, /proc/self/mountinfo, ip(8) inside a network namespace the test made.
What nsctl prints about itself is never taken as evidence.  Helpers live in
:mod:`support.ops`; the autouse leak check of conftest.py checks that nothing
(process, mount, file, /run/netns entry, fd) outlives a test.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import netns_tag
import support
from support import cli, namespaces, nsfacts, processes, syscalls
from support import ops as ot
from support.cli import nsctl, ok, one_error
from support.nsfacts import facts, link_ino
from support.ops import TYPES

pytestmark = support.root_only

UNSHARE_ARG = {"mnt": "--mount", "net": "--net", "pid": "--pid", "uts": "--uts",
               "ipc": "--ipc", "user": "--user", "cgroup": "--cgroup", "time": "--time"}
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2]
# A shell waiting for a trapped signal.  Not `sleep 30 & wait`: dash can miss a signal that
# comes just before its wait blocks (the trap then runs only when the sleep ends).
IDLE = "while :; do sleep 0.05; done"


@pytest.fixture
def scr(scratch):
    """tmp_path (emptied at the end by conftest's scratch), as the kernel spells it."""
    return scratch.resolve()


def own(ns_type: str) -> int:
    return link_ino("self", ns_type)


# === pin / unpin ===============================================================================

@pytest.mark.parametrize("ns_type", TYPES)
def test_pin_outlives_the_process_and_unpin_lets_it_go(ns_type, scr):
    path = scr / f"pinned-{ns_type}"
    # A new namespace of the type, held by one process (for mnt: newer than ours, as the
    # kernel wants; the pin lives in our mount namespace).
    with namespaces.unshare_command([UNSHARE_ARG[ns_type]]) as cmd:
        before = facts(f"/proc/{cmd.child}/ns/{ns_type}")
        assert before.type == ns_type and before.ino != own(ns_type) and before.id is not None
        ok("pin", f"{cmd.child}/{ns_type}", path)
        assert ot.nsfs_mounts()[str(path)] == f"{ns_type}:[{before.ino}]"
    # The process is gone (killed and reaped): only the pin holds the namespace now.
    try:
        now = facts(path)
        assert (now.type, now.ino, now.id) == (before.type, before.ino, before.id)
        doc = cli.ls_json()
        ns = cli.ns_by_ino(doc, before.ino)
        assert ns is not None, "the pinned namespace is not listed"
        assert ns["id"] == before.id and ns["type"] == ns_type
        # Only the pin holds it (an fd some other program on this machine holds for a
        # moment, e.g. a scan of its own, is no process of ours: tolerated).
        assert "bindmount" in ns["held_by"] and set(ns["held_by"]) <= {"bindmount", "fd"}, ns
        assert ns["pids"] == [] and not any(r.get("pid") in _ours() for r in ns["refs"]), ns
        assert {"kind": "bindmount", "path": str(path), "mntns": own("mnt")} in ns["refs"]

        ok("unpin", path)
        assert str(path) not in ot.nsfs_mounts()
        assert not os.path.lexists(path)
        with pytest.raises(FileNotFoundError):
            os.open(path, os.O_RDONLY)
        _gone(before.id)
    finally:
        ot.unpin_quietly(path)


def _gone(ns_id: int) -> None:
    """No namespace with this (never reused) NS_GET_ID is found any more.  Polled briefly:
    another program on this machine may have had the pin open at the moment we unpinned."""
    processes.wait_for(lambda: not cli.ns_with_id(cli.ls_json(), ns_id),
                       f"namespace id {ns_id} to be gone", timeout=5, step=0.1)


def _ours() -> set[int]:
    return {os.getpid(), *processes.descendants(os.getpid())}


def test_pinned_netns_shows_in_ip_netns():
    name = f"{netns_tag()}pin"
    path = f"/run/netns/{name}"
    try:
        with ot.target(syscalls.CLONE_NEWNET, ifname="nsctlpin0") as t:
            before = facts(f"/proc/{t.pid}/ns/net")
            ok("pin", f"net:[{before.ino}]", path)
        assert name in [n["name"] for n in _ip_netns_list()]
        assert facts(path).ino == before.ino
        # ip(8) reaches the pinned netns by its name: the fixture's veth pair is in it.
        out = subprocess.run(["ip", "-n", name, "-j", "link"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        assert sorted(link["ifname"] for link in json.loads(out)) == ["lo", "nsctlpin0",
                                                                      "nsctlpin0p"]
        ok("unpin", path)
        assert name not in [n["name"] for n in _ip_netns_list()]
        assert path not in ot.nsfs_mounts() and not os.path.lexists(path)
        _gone(before.id)
    finally:
        ot.unpin_quietly(path)


def _ip_netns_list() -> list[dict]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return json.loads(out or "[]")


def test_unpin_takes_the_path_pin_printed_through_a_symlinked_directory(scr):
    """pin accepts PATH through a symlinked directory; unpin must accept the same PATH."""
    (scr / "real").mkdir()
    (scr / "link").symlink_to("real")
    path = scr / "link" / "uts"
    try:
        with namespaces.unshare_command(["--uts"]) as cmd:
            ino = link_ino(cmd.child, "uts")
            ok("pin", f"{cmd.child}/uts", path)
        assert facts(path).ino == ino
        proc = nsctl("unpin", path)
        assert proc.returncode == 0, \
            f"unpin refuses the path pin was given: {cli.error_lines(proc.stderr)}"
        assert str(scr / "real" / "uts") not in ot.nsfs_mounts()
        assert not os.path.lexists(scr / "real" / "uts")
    finally:
        ot.unpin_quietly(scr / "real" / "uts")
        (scr / "link").unlink()


# --- pin and unpin errors: one line, exit 1, nothing changed ----------------------------------

@pytest.mark.parametrize("spec, message", [
    ("frob:[4026531840]", "unknown namespace type 'frob'"),
    ("net:[1]", "not found"),
    ("99999999/net", "no process with PID 99999999"),
    ("1/frob", "unknown namespace type 'frob'"),
    ("nonsense", "cannot read 'nonsense'"),
    ("/etc/hostname", "not a namespace file"),
])
def test_pin_unknown_spec(spec, message, scr):
    path = scr / "pin"
    err = one_error(nsctl("pin", spec, path))
    assert message in err
    assert not os.path.lexists(path) and str(path) not in ot.nsfs_mounts()


def test_pin_path_that_exists(scr):
    path = scr / "taken"
    path.write_text("keep\n")
    st = path.stat()
    err = one_error(nsctl("pin", f"{os.getpid()}/uts", path))
    assert "exists" in err
    assert path.read_text() == "keep\n" and path.stat().st_ino == st.st_ino
    assert ot.mounts_under(path) == []


def test_pin_parent_directory_missing(scr):
    path = scr / "no-such-dir" / "pin"
    err = one_error(nsctl("pin", f"{os.getpid()}/uts", path))
    assert "no such directory" in err
    assert not os.path.lexists(path.parent)


def test_pin_own_mount_namespace_is_refused_and_leaves_no_file(scr):
    path = scr / "mnt"
    err = one_error(nsctl("pin", f"{os.getpid()}/mnt", path))
    assert "bind mount failed" in err
    assert not os.path.lexists(path) and ot.mounts_under(path) == []


@pytest.mark.parametrize("what", ["/etc/hostname", "/proc", "regular", "missing"])
def test_unpin_refuses_what_is_not_a_pin(what, scr):
    if what == "regular":
        path = scr / "plain"
        path.write_text("keep\n")
    elif what == "missing":
        path = scr / "missing"
    else:
        path = Path(what)
        if not path.exists():
            pytest.skip(f"{path} does not exist here")
    mounted = ot.mounts_under(path) if what != "missing" else []
    existed = os.path.lexists(path)
    err = one_error(nsctl("unpin", path))
    assert ("no such file" if what == "missing" else "not a pinned namespace file") in err
    assert os.path.lexists(path) == existed
    assert ot.mounts_under(path) == mounted  # /proc is still mounted, and so on
    if what == "regular":
        assert path.read_text() == "keep\n"


# === enter =====================================================================================

HOSTNAME = "nsctl-enter-uts"
IFNAME = "nsctlent0"


@pytest.fixture
def target():
    """A process in new uts, net and ipc namespaces: a known hostname, a veth pair."""
    flags = syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWIPC
    with ot.target(flags, hostname=HOSTNAME, ifname=IFNAME) as t:
        yield t


def test_enter_uts_sees_the_hostname(target):
    assert ok("enter", f"{target.pid}/uts", "--", "hostname").stdout == f"{HOSTNAME}\n"
    assert socket.gethostname() != HOSTNAME


def test_enter_net_sees_the_fixtures_interfaces(target):
    out = ok("enter", f"{target.pid}/net", "--", "ip", "-j", "link").stdout
    by_name = {link["ifname"]: link for link in json.loads(out)}
    assert sorted(by_name) == ["lo", IFNAME, f"{IFNAME}p"]
    assert by_name[IFNAME]["link_type"] == "ether" and "UP" in by_name[IFNAME]["flags"]
    assert by_name[IFNAME]["link"] == f"{IFNAME}p"        # the pair the fixture made


def _ns_of_command(*enter_args: str) -> dict[str, str]:
    """readlink /proc/self/ns/* of the command nsctl enter runs."""
    out = ok("enter", *enter_args, "--", "readlink",
             *[f"/proc/self/ns/{t}" for t in TYPES]).stdout.split()
    return dict(zip(TYPES, out))


def test_enter_several_specs_at_once(target):
    got = _ns_of_command(f"{target.pid}/uts", f"{target.pid}/net", f"{target.pid}/ipc")
    mine = ot.links("self")
    for t in TYPES:
        want = target.link(t) if t in ("uts", "net", "ipc") else mine[t]
        assert got[t] == want, t
    assert got["uts"] != mine["uts"] and got["net"] != mine["net"] and got["ipc"] != mine["ipc"]


def test_enter_two_namespaces_of_one_type_is_an_error(target, scr):
    err = one_error(nsctl("enter", f"{target.pid}/uts", f"{os.getpid()}/uts", "--", "touch",
                          scr / "ran"))
    assert "two uts namespaces" in err
    assert not (scr / "ran").exists()


@pytest.mark.parametrize("form", ["PID/TYPE", "type:[inode]", "pinned file", "inode", "id"])
def test_enter_spec_forms(form, target, scr):
    uts = facts(f"/proc/{target.pid}/ns/uts")
    pinned = scr / "uts"
    if form == "pinned file":
        pinned.touch()
        syscalls.bind_mount(f"/proc/{target.pid}/ns/uts", pinned)
    try:
        spec = {"PID/TYPE": f"{target.pid}/uts", "type:[inode]": f"uts:[{uts.ino}]",
                "pinned file": str(pinned), "inode": str(uts.ino), "id": str(uts.id)}[form]
        got = _ns_of_command(spec)
        assert got["uts"] == f"uts:[{uts.ino}]"
        assert {t: v for t, v in got.items() if t != "uts"} == \
            {t: v for t, v in ot.links("self").items() if t != "uts"}
        assert ok("enter", spec, "--", "hostname").stdout == f"{HOSTNAME}\n"
    finally:
        if form == "pinned file":
            syscalls.umount(pinned)
            pinned.unlink()


def test_enter_all_takes_every_namespace_root_and_cwd():
    args = ["--user", "--map-root", "--uts", "--ipc", "--net", "--mount", "--pid",
            "--mount-proc", "--cgroup", "--time"]
    with namespaces.unshare_command(args) as cmd:
        want = ot.links(cmd.child)
        mine = ot.links("self")
        assert all(want[t] != mine[t] for t in TYPES)
        script = ("readlink " + " ".join(f"/proc/self/ns/{t}" for t in TYPES) +
                  "; grep NSpid /proc/self/status; readlink /proc/self/cwd; id -u")
        out = ok("enter", "--all", str(cmd.child), "--", "sh", "-c", script).stdout.splitlines()
        assert dict(zip(TYPES, out[:8])) == want
        # /proc there is the target's own (--mount-proc): /proc/self resolving at all, with
        # one level, means the command is a process of the target's PID namespace.
        nspid = out[8].split()[1:]
        assert len(nspid) == 1 and int(nspid[0]) > 1, out[8]
        assert out[9] == os.readlink(f"/proc/{cmd.child}/cwd")
        assert out[10] == "0"                     # root of the target's user namespace


def test_enter_pid_namespace_forks_the_command_into_it():
    with namespaces.unshare_command(["--pid"]) as cmd:
        pidns = link_ino(cmd.child, "pid")
        out = ok("enter", f"{cmd.child}/pid", "--", "sh", "-c",
                 "readlink /proc/self/ns/pid; grep NSpid /proc/self/status").stdout.splitlines()
        assert out[0] == f"pid:[{pidns}]"
        levels = out[1].split()[1:]
        assert len(levels) == 2 and int(levels[1]) > 1, out[1]   # sleep is 1 in there


@pytest.mark.parametrize("ns_type", ["uts", "pid"])
@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 7", 7),
                                          ("kill -TERM $$", 143), ("kill -USR1 $$", 138)])
def test_enter_passes_the_exit_status_through(ns_type, script, code):
    with namespaces.unshare_command(["--uts", "--pid"]) as cmd:
        proc = nsctl("enter", f"{cmd.child}/{ns_type}", "--", "sh", "-c", script)
        assert proc.returncode == code, proc.stderr
        assert cli.error_lines(proc.stderr) == []


@pytest.mark.parametrize("ns_type", ["uts", "pid"])
def test_enter_command_not_found_is_127_and_one_line(ns_type):
    with namespaces.unshare_command(["--uts", "--pid"]) as cmd:
        err = one_error(nsctl("enter", f"{cmd.child}/{ns_type}", "--", "nsctl-no-such-command"),
                        code=127)
        assert "nsctl-no-such-command" in err


def _baseline_sigign() -> str:
    """SigIgn of a command started the ordinary way from here (subprocess restores the
    dispositions Python changed for itself)."""
    out = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True,
                         text=True, check=True).stdout
    return out.split()[1]


@pytest.mark.parametrize("argv", [["enter", "{pid}/uts"], ["enter", "{pid}/pid"],
                                  ["run", "--uts", "x"], ["run", "--pid"]])
def test_command_starts_with_ordinary_signal_dispositions(argv):
    """Python ignores SIGPIPE and SIGXFSZ for itself; the command must not inherit that
    (`nsctl run ... -- sh -c 'yes | head -1'` would report a broken pipe)."""
    with namespaces.unshare_command(["--uts", "--pid"]) as cmd:
        argv = [a.replace("{pid}", str(cmd.child)) for a in argv]
        out = ok(*argv, "--", "grep", "SigIgn", "/proc/self/status").stdout
    ignored = int(out.split()[1], 16) & ~int(_baseline_sigign(), 16)
    names = [signal.Signals(n).name for n in range(1, 64) if ignored & (1 << (n - 1))]
    assert names == [], f"the command starts with these signals ignored: {names}"


# === run: each flag =============================================================================

def test_run_uts():
    name = "nsctl-run-uts"
    mine = socket.gethostname()
    out = ok("run", "--uts", name, "--", "sh", "-c",
             "hostname; readlink /proc/self/ns/uts").stdout.splitlines()
    assert out[0] == name and out[1] != f"uts:[{own('uts')}]"
    assert socket.gethostname() == mine


def test_run_net_has_only_lo_up():
    out = ok("run", "--net", "--", "sh", "-c",
             "readlink /proc/self/ns/net; ip -j link").stdout.splitlines()
    assert out[0] != f"net:[{own('net')}]"
    links = json.loads(out[1])
    assert [link["ifname"] for link in links] == ["lo"]
    assert "UP" in links[0]["flags"]


def test_run_net_mount_has_its_own_sysfs():
    out = ok("run", "--net", "--mount", "--", "ls", "/sys/class/net").stdout.split()
    assert out == ["lo"]
    assert "lo" in os.listdir("/sys/class/net")     # ours is untouched


def test_run_veth(scr):
    """Addresses on both ends, the pair really joined, traffic across it; all of it in a
    netns the test made (the caller's end lands there, never on the host)."""
    with ot.own_netns() as net:
        script = (f"ip -j addr show dev eth0 > {scr}/inner.json; ls /sys/class/net > {scr}/sys;"
                  f" {sys.executable} -c '{ot.PING}' 10.77.0.1 > {scr}/ping 2>&1;"
                  f" echo $? >> {scr}/ping; echo ready > {scr}/ready;"
                  f" while [ ! -e {scr}/go ]; do sleep 0.02; done")
        with ot.running(["run", "--net", "--mount", "--veth", "10.77.0.1/30", "--", "sh", "-c",
                         script], prefix=net.prefix) as run:
            ot.wait_file(scr / "ready")
            outer = [name for name in net.links() if name.startswith("nsctl")]
            assert len(outer) == 1, net.links()
            outer_link = net.links()[outer[0]]
            assert net.addrs()[outer[0]] == ["10.77.0.1/30"]
            assert "UP" in outer_link["flags"]
            inner = json.loads((scr / "inner.json").read_text())[0]
            assert inner["ifname"] == "eth0"
            assert [f"{a['local']}/{a['prefixlen']}" for a in inner["addr_info"]
                    if a["family"] == "inet"] == ["10.77.0.2/30"]
            # The two ends are each other's peer (ifindex as the kernel reports it).
            assert inner["link_index"] == outer_link["ifindex"]
            assert outer_link["link_index"] == inner["ifindex"]
            assert (scr / "sys").read_text().split() == ["eth0", "lo"]
            ping = (scr / "ping").read_text().splitlines()
            assert ping[-1] == "0", ping
            (scr / "go").touch()
            assert run.wait().returncode == 0
        # Without --pin, the pair goes with the namespace: nothing left in the test's netns.
        assert [n for n in net.links() if n.startswith("nsctl")] == []


def test_run_pid():
    assert ok("run", "--pid", "--", "sh", "-c", "echo $$").stdout == "2\n"


def test_run_pid_init_and_command_seen_from_outside(scr):
    with ot.running(["run", "--pid", "--", "sh", "-c", f"echo ready > {scr}/ready; exec sleep 30"]
                    ) as run:
        ot.wait_file(scr / "ready")
        child, init = run.child(), run.init()
        cmd = processes.wait_for(lambda: run.only_child(init), "the command")
        pidns = link_ino(init, "pid")
        assert pidns != own("pid") and link_ino(cmd, "pid") == pidns
        assert link_ino(child, "pid") == own("pid")           # the unsharer stays out
        assert nsfacts.nspid(init)[1:] == [1] and nsfacts.nspid(cmd)[1:] == [2]
        os.kill(init, signal.SIGTERM)
        assert run.wait().returncode == 128 + signal.SIGTERM


def test_run_pid_mount_ps_sees_only_the_new_namespace():
    out = ok("run", "--pid", "--mount", "--", "ps", "-e", "-o", "pid=").stdout.split()
    assert sorted(map(int, out)) == [1, 2]


def test_run_user_map_root(scr):
    with ot.running(["run", "--user", "--map-root", "--", "sh", "-c",
                     f"id -u; id -g; echo ready > {scr}/ready; exec sleep 30"]) as run:
        ot.wait_file(scr / "ready")
        cmd = run.child()                     # no --pid: the child execs the command
        processes.wait_for(lambda: processes.comm(cmd) == "sleep", "the command")
        assert link_ino(cmd, "user") != own("user")
        assert Path(f"/proc/{cmd}/uid_map").read_text().split() == ["0", str(os.geteuid()), "1"]
        assert Path(f"/proc/{cmd}/gid_map").read_text().split() == ["0", str(os.getegid()), "1"]
        os.kill(cmd, signal.SIGTERM)
        res = run.wait()
    assert res.stdout.split() == ["0", "0"]


def test_run_user_map_user_and_group(scr):
    with ot.running(["run", "--user", "--map-user", "1234", "--map-group", "2345", "--", "sh",
                     "-c", f"id -u; id -g; echo ready > {scr}/ready; exec sleep 30"]) as run:
        ot.wait_file(scr / "ready")
        cmd = run.child()
        processes.wait_for(lambda: processes.comm(cmd) == "sleep", "the command")
        assert Path(f"/proc/{cmd}/uid_map").read_text().split() == ["1234", str(os.geteuid()),
                                                                    "1"]
        assert Path(f"/proc/{cmd}/gid_map").read_text().split() == ["2345", str(os.getegid()),
                                                                    "1"]
        os.kill(cmd, signal.SIGTERM)
        res = run.wait()
    assert res.stdout.split() == ["1234", "2345"]


def test_run_ipc():
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, check=True).stdout
    msqid = made.split()[-1]
    try:
        assert any(line.split()[1] == msqid for line in
                   Path("/proc/sysvipc/msg").read_text().splitlines()[1:])
        out = ok("run", "--ipc", "--", "sh", "-c",
                 "readlink /proc/self/ns/ipc; cat /proc/sysvipc/msg /proc/sysvipc/shm "
                 "/proc/sysvipc/sem; echo --; ipcs -q").stdout
        head, _, ipcs = out.partition("--\n")
        lines = head.splitlines()
        assert lines[0] != f"ipc:[{own('ipc')}]"
        assert len(lines) == 4, lines            # the three headers only: nothing in there
        assert msqid not in ipcs.split()
    finally:
        subprocess.run(["ipcrm", "-q", msqid], check=True)


def test_run_cgroup():
    out = ok("run", "--cgroup", "--", "sh", "-c",
             "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup").stdout.splitlines()
    assert out[0] != f"cgroup:[{own('cgroup')}]"
    # cgroup v1 or v2: at the root of every hierarchy, seen from inside
    assert out[1:] and all(line.endswith(":/") for line in out[1:]), out


def test_run_time_offsets_seen_from_outside(scr):
    with ot.running(["run", "--time", "monotonic=1000,boottime=2000.5", "--", "sh", "-c",
                     f"echo ready > {scr}/ready; exec sleep 30"]) as run:
        ot.wait_file(scr / "ready")
        cmd = run.init()        # --time without --pid: the init execs the command itself
        processes.wait_for(lambda: processes.comm(cmd) == "sleep", "the command")
        assert link_ino(cmd, "time") != own("time")
        offsets = {line.split()[0]: line.split()[1:] for line in
                   Path(f"/proc/{cmd}/timens_offsets").read_text().splitlines()}
        assert offsets == {"monotonic": ["1000", "0"], "boottime": ["2000", "500000000"]}
        os.kill(cmd, signal.SIGTERM)
        assert run.wait().returncode == 143


def test_run_time_clocks_inside():
    code = ("import time; print(time.clock_gettime(time.CLOCK_MONOTONIC), "
            "time.clock_gettime(time.CLOCK_BOOTTIME))")
    mono0, boot0 = time.clock_gettime(time.CLOCK_MONOTONIC), time.clock_gettime(
        time.CLOCK_BOOTTIME)
    out = ok("run", "--time", "monotonic=1000,boottime=2000.5", "--", sys.executable, "-c",
             code).stdout.split()
    elapsed = time.clock_gettime(time.CLOCK_MONOTONIC) - mono0
    mono, boot = map(float, out)
    assert 1000 <= mono - mono0 <= 1000 + elapsed + 0.01
    assert 2000.5 <= boot - boot0 <= 2000.5 + elapsed + 0.01


def test_run_pin_every_new_namespace(scr):
    pins = scr / "pins"
    pins.mkdir()
    argv = ["run", "--user", "--map-root", "--pid", "--net", "--mount", "--uts", "pinned",
            "--ipc", "--cgroup", "--time", "monotonic=5", "--pin", pins, "--", "sh", "-c",
            f"echo ready > {scr}/ready; exec sleep 30"]
    try:
        with ot.running(argv) as run:
            ot.wait_file(scr / "ready")
            init = run.init()
            cmd = processes.wait_for(lambda: run.only_child(init), "the command")
            assert sorted(os.listdir(pins)) == sorted(TYPES)
            held = {}
            for t in TYPES:
                held[t] = facts(pins / t)
                assert held[t].ino == link_ino(cmd, t) != own(t), t
                assert ot.nsfs_mounts()[str(pins / t)] == f"{t}:[{held[t].ino}]"
            os.kill(init, signal.SIGTERM)
            assert run.wait().returncode == 143
        # The command is gone; the pins still hold every namespace.
        for t in TYPES:
            assert facts(pins / t).ino == held[t].ino
            ok("unpin", pins / t)
        assert os.listdir(pins) == [] and ot.mounts_under(pins) == []
    finally:
        for t in TYPES:
            ot.unpin_quietly(pins / t)


# === run: the init ==============================================================================

def test_init_reaps_an_orphan(scr):
    """An orphan of the command is reparented to the init, and reaped when it exits."""
    script = f"sh -c 'sleep 1 &'; echo ready > {scr}/ready; exec sleep 30"
    with ot.running(["run", "--pid", "--", "sh", "-c", script]) as run:
        ot.wait_file(scr / "ready")
        init = run.init()

        def orphan():
            for pid in processes.children(init):
                try:
                    if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x001\x00":
                        return pid
                except OSError:
                    continue
            return None

        orphan_pid = processes.wait_for(orphan, "the orphan under the init", timeout=5)
        start = processes.starttime(orphan_pid)
        # Gone from /proc altogether (not a zombie) once it has exited.
        processes.wait_for(lambda: processes.starttime(orphan_pid) != start,
                           "the orphan to be reaped", timeout=10)
        in_ns = [init] + processes.descendants(init)
        zombies = [p for p in in_ns if processes.state(p) == "Z"]
        assert zombies == []
        assert run.popen.poll() is None             # the command still runs
        os.kill(init, signal.SIGTERM)
        assert run.wait().returncode == 143


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_init_forwards_signals_to_the_command(sig, scr):
    traps = "; ".join(f"trap 'echo {s.name[3:]} > {scr}/got; exit 0' {s.name[3:]}"
                      for s in SIGNALS)
    script = f"{traps}; echo ready > {scr}/ready; {IDLE}"
    with ot.running(["run", "--pid", "--", "sh", "-c", script]) as run:
        ot.wait_file(scr / "ready")
        init = run.init()
        assert nsfacts.nspid(init)[1:] == [1]
        os.kill(init, sig)
        res = run.wait()
    assert (scr / "got").read_text() == f"{sig.name[3:]}\n"
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_init_exits_128_plus_n_when_the_command_dies_of_a_forwarded_signal(sig, scr):
    with ot.running(["run", "--pid", "--", "sh", "-c",
                     f"echo ready > {scr}/ready; exec sleep 30"]) as run:
        ot.wait_file(scr / "ready")
        init = run.init()
        processes.wait_for(lambda: [p for p in processes.children(init)
                                    if processes.comm(p) == "sleep"], "sleep")
        os.kill(init, sig)
        res = run.wait()
    assert res.returncode == 128 + sig, res.stderr
    assert cli.error_lines(res.stderr) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=lambda s: s.name)
@pytest.mark.parametrize("argv", [["run", "--pid"], ["run", "--time", "monotonic=1"],
                                  ["run", "--uts", "x"], ["enter", "{pid}/pid"]], ids=" ".join)
def test_terminal_signal_to_the_whole_job_reaches_only_the_command(argv, sig, scr):
    """Ctrl-C / Ctrl-\\ signal the terminal's whole foreground process group: nsctl and its
    helpers must leave it to the command, which gets it once (not once from the terminal
    and again from the init), and the command's status must come through."""
    # A Python command, not a shell: a shell's foreground children get the group's signal
    # too, and the shell then reports them ("Quit") in ways of its own.
    code = ("import signal, sys, time\n"
            "got = []\n"
            "for s in (signal.SIGINT, signal.SIGQUIT):\n"
            "    signal.signal(s, lambda n, _f: got.append(n))\n"
            f"open({str(scr / 'ready')!r}, 'w').write('ready\\n')\n"
            "while not got:\n"
            "    time.sleep(0.01)\n"
            "time.sleep(0.3)    # a second copy would have come by now\n"
            f"open({str(scr / 'got')!r}, 'w').write(' '.join(map(str, got)) + '\\n')\n"
            "sys.exit(5)\n")
    try:
        with namespaces.unshare_command(["--pid"]) as target:
            argv = [a.replace("{pid}", str(target.child)) for a in argv]
            with ot.running([*argv, "--", sys.executable, "-c", code], session=True) as run:
                ot.wait_file(scr / "ready")
                os.killpg(run.pid, sig)
                res = run.wait()
        assert (res.returncode, cli.error_lines(res.stderr)) == (5, [])
        assert (scr / "got").read_text() == f"{int(sig)}\n", "signals the command got"
        _assert_no_processes()
    finally:
        processes.terminate(processes.descendants(os.getpid()))   # a stray init, if any


@pytest.mark.parametrize("flags", [["--pid"], ["--uts", "x"], ["--pid", "--time", "boottime=1"]],
                         ids=" ".join)
@pytest.mark.parametrize("script, code", [("exit 7", 7), ("kill -TERM $$", 143),
                                          ("kill -USR2 $$", 140)])
def test_run_exit_status(flags, script, code):
    proc = nsctl("run", *flags, "--", "sh", "-c", script)
    assert proc.returncode == code, proc.stderr
    assert cli.error_lines(proc.stderr) == []


# === run: failures leave nothing behind ======================================================

def _assert_no_processes(keep: list[int] = ()) -> None:
    left = [p for p in processes.descendants(os.getpid()) if p not in keep and
            p not in _descendants_of(keep)]
    assert left == [], {p: processes.comm(p) for p in left}


def _run_left_nothing(net, pins=None) -> None:
    """After a failed `nsctl run` in the test's own netns: no veth of ours, no process,
    and (with ``pins``) no pin, file or mount under the pin directory."""
    if pins is not None:
        assert os.listdir(pins) == [] and ot.mounts_under(pins) == []
    assert [n for n in net.links() if n.startswith("nsctl")] == []
    _assert_no_processes(keep=[net.pid])


def _descendants_of(pids) -> set[int]:
    out = set()
    for pid in pids:
        out.update(processes.descendants(pid))
    return out


@pytest.mark.parametrize("argv, message", [
    (["--uts", "x", "--veth"], "--veth needs --net"),
    (["--map-root", "--uts", "x"], "need --user"),
    (["--map-user", "5", "--net"], "need --user"),
    (["--user", "--map-root", "--map-user", "5"], "don't go together"),
    (["--user", "--map-root", "--map-group", "5"], "don't go together"),
    ([], "no namespace to create"),
    (["--time", "realtime=5"], "want monotonic=SECONDS"),
    (["--time", "monotonic=soon"], "not a number"),
    (["--net", "--veth", "10.77.0.1/32"], "no room"),
    (["--net", "--veth", "10.77.0.300/30"], "not an address/prefix"),
    (["--uts", "x", "--pin", "{scr}/no-such-dir"], "no such directory"),
])
def test_run_refuses_bad_flags_before_doing_anything(argv, message, scr):
    argv = [a.replace("{scr}", str(scr)) for a in argv]
    with ot.own_netns() as net:
        err = one_error(nsctl("run", *argv, "--", "touch", scr / "ran", prefix=net.prefix))
        assert message in err
        assert not (scr / "ran").exists()
        _run_left_nothing(net)


def test_run_without_a_command():
    err = one_error(nsctl("run", "--uts", "x"))
    assert "no command given" in err


def test_run_pin_dir_with_a_taken_name_is_refused_before_anything(scr):
    pins = scr / "pins"
    pins.mkdir()
    (pins / "net").write_text("keep\n")
    with ot.own_netns() as net:
        err = one_error(nsctl("run", "--net", "--veth", "--uts", "x", "--pin", pins, "--",
                              "touch", scr / "ran", prefix=net.prefix))
        assert str(pins / "net") in err and "exists" in err
        assert sorted(os.listdir(pins)) == ["net"] and (pins / "net").read_text() == "keep\n"
        assert ot.mounts_under(pins) == []
        assert not (scr / "ran").exists()
        _run_left_nothing(net)


@pytest.mark.parametrize("pid", [False, True], ids=["no-pid", "pid"])
def test_run_invalid_hostname_fails_inside_and_leaves_nothing(pid, scr):
    """sethostname fails in the child after unshare and after the veth pair was added."""
    pins = scr / "pins"
    pins.mkdir()
    with ot.own_netns() as net:
        proc = nsctl("run", "--net", "--veth", "10.77.0.1/30", "--uts", "h" * 65,
                     *(["--pid"] if pid else []), "--pin", pins, "--", "touch", scr / "ran",
                     prefix=net.prefix)
        err = one_error(proc)
        assert "hostname" in err
        assert not (scr / "ran").exists()
        _run_left_nothing(net, pins)


def test_run_bad_time_offset_fails_inside_and_leaves_nothing(scr):
    pins = scr / "pins"
    pins.mkdir()
    with ot.own_netns() as net:
        err = one_error(nsctl("run", "--net", "--veth", "--time", "monotonic=-1e12", "--pin",
                              pins, "--", "touch", scr / "ran", prefix=net.prefix))
        assert "time offsets" in err
        assert not (scr / "ran").exists()
        _run_left_nothing(net, pins)


@pytest.mark.parametrize("pid", [False, True], ids=["no-pid", "pid"])
def test_run_missing_command_undoes_pins_and_veth(pid, scr):
    pins = scr / "pins"
    pins.mkdir()
    with ot.own_netns() as net:
        proc = nsctl("run", "--net", "--veth", "10.77.0.1/30", "--uts", "x", "--ipc",
                     *(["--pid"] if pid else []), "--pin", pins, "--", "nsctl-no-such-command",
                     prefix=net.prefix)
        err = one_error(proc, code=127)
        assert "nsctl-no-such-command" in err
        _run_left_nothing(net, pins)


@pytest.mark.parametrize("pid", [False, True], ids=["no-pid", "pid"])
def test_run_pin_failing_half_way_runs_nothing_and_leaves_nothing(pid, scr):
    """Pinning fails after the namespaces (and, with --pid, the init) exist: the command
    must never run and no process may be left."""
    marker = scr / "ran"
    with ot.read_only_dir(scr / "ro") as pins:
        proc = nsctl("run", "--uts", "x", *(["--pid"] if pid else []), "--pin", pins, "--",
                     "sh", "-c", f"echo ran > {marker}")
        err = one_error(proc)
        assert "pin" in err
        time.sleep(0.5)             # a command wrongly let go would have written by now
        try:
            assert not marker.exists(), "the command ran although nsctl run failed"
            _assert_no_processes()
        finally:
            # Don't let a stray init outlive the test (conftest would report it too).
            processes.terminate(processes.descendants(os.getpid()))
            marker.unlink(missing_ok=True)


def test_run_user_mount_without_pid():
    """`unshare --user --map-root --mount true` works; nsctl run with the same flags
    promises a fresh /proc it cannot mount (the PID namespace is not owned by the new
    user namespace).  Either run it, or refuse up front saying --pid is needed."""
    proc = nsctl("run", "--user", "--map-root", "--mount", "--", "true")
    if proc.returncode != 0:
        err = one_error(proc)
        assert "--pid" in err, f"fails late, after creating everything: {err}"
