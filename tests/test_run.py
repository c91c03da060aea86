"""nsctl run: each flag, the init it starts, and failures that leave nothing behind.

Everything is checked against what the kernel says, read by the test itself:
os.stat inodes and NS_GET_ID of nsfs files (support.nsfacts.facts), /proc/PID/* read from
outside, /proc/self/mountinfo, ip(8) inside a network namespace the test made.
What nsctl prints about itself is never taken as evidence.  Helpers live in
:mod:`support.ops`; the autouse leak check of conftest.py checks that nothing
(process, mount, file, /run/netns entry, fd) outlives a test.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import support
from support import cli, namespaces, nsfacts, processes
from support import ops as ot
from support.cli import nsctl, ok, one_error
from support.nsfacts import facts, link_ino
from support.ops import TYPES

pytestmark = support.root_only

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
           signal.SIGUSR2]
# A shell waiting for a trapped signal.  Not `sleep 30 & wait`: dash can miss a signal that
# comes just before its wait blocks (the trap then runs only when the sleep ends).
IDLE = "while :; do sleep 0.05; done"


def own(ns_type: str) -> int:
    return link_ino("self", ns_type)


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
    out = ok("run", "--net", "--mount-proc", "--", "ls", "/sys/class/net").stdout.split()
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
        with ot.running(["run", "--net", "--mount-proc", "--veth", "10.77.0.1/30", "--", "sh", "-c",
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
    out = ok("run", "--pid", "--mount-proc", "--", "ps", "-e", "-o", "pid=").stdout.split()
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

def _assert_no_processes(keep: Sequence[int] = ()) -> None:
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


def test_run_without_a_command_runs_the_shell(scr):
    """As unshare: no command runs $SHELL (here a script that says where it ran)."""
    shell = scr / "shell"
    shell.write_text("#!/bin/sh\nreadlink /proc/self/ns/uts\n")
    shell.chmod(0o755)
    proc = nsctl("run", "-u", env=dict(os.environ, SHELL=str(shell)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("uts:[") and proc.stdout != f"uts:[{own('uts')}]\n"


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
    """`unshare --user --map-root --mount true` works, and so does nsctl run with the same
    flags; --mount-proc promises a fresh /proc it cannot mount without --pid (the PID
    namespace is not owned by the new user namespace): refused up front, saying so."""
    ok("run", "--user", "--map-root", "--mount", "--", "true")
    err = one_error(nsctl("run", "--user", "--map-root", "--mount-proc", "--", "true"))
    assert "--pid" in err, f"fails late, after creating everything: {err}"


# === run: unshare's options and meanings ========================================================

def _ids_and_maps(*run_args: str) -> list[str]:
    """What the command sees: uid, gid, and its uid_map and gid_map lines (or '-')."""
    script = ("id -u; id -g; for m in uid_map gid_map; do "
              "l=$(cat /proc/self/$m); echo \"${l:--}\"; done")
    return ok("run", *run_args, "sh", "-c", script).stdout.splitlines()


def test_run_user_alone_leaves_you_unmapped():
    """-U alone: the overflow uid and gid, no map written (unshare's meaning)."""
    assert _ids_and_maps("-U") == ["65534", "65534", "-", "-"]


def test_run_map_root_maps_uid_and_gid_and_implies_user():
    got = _ids_and_maps("-r")
    assert got[:2] == ["0", "0"]
    assert got[2].split() == ["0", str(os.geteuid()), "1"]
    assert got[3].split() == ["0", str(os.getegid()), "1"]
    # grouped short options, as unshare takes them, and the command without --
    assert ok("run", "-Urn", "sh", "-c", "id -u; readlink /proc/self/ns/net").stdout.split() \
        [0] == "0"


def test_run_map_user_maps_the_uid_only():
    """--map-user alone: the uid mapped, the gid unmapped (overflow), as unshare does."""
    got = _ids_and_maps("--map-user", "1000")
    assert got[:2] == ["1000", "65534"]
    assert got[2].split() == ["1000", str(os.geteuid()), "1"] and got[3] == "-"
    got = _ids_and_maps("--map-user=nobody", "--map-group=nogroup")
    assert got[:2] == [str(pwd.getpwnam("nobody").pw_uid), str(grp.getgrnam("nogroup").gr_gid)]


@pytest.mark.parametrize("argv, message", [
    (["--map-user", "99999999999", "true"], "out of range"),
    (["--map-user", "4294967295", "true"], "out of range"),
    (["--map-group=no-such-group-here", "true"], "no such group"),
    (["--kill-child=SIGFROB", "-u", "true"], "unknown signal"),
    (["-u", "--", ""], "command name is empty"),
    (["--bogus", "true"], "unrecognized arguments"),
])
def test_run_usage_errors_exit_2_before_anything(argv, message):
    proc = nsctl("run", *argv)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_run_command_exit_statuses_126_and_127(scr):
    plain = scr / "plain"
    plain.write_text("echo ran\n")
    assert "Permission denied" in one_error(nsctl("run", "-u", plain), code=126)
    assert "nsctl-no-such-command" in one_error(nsctl("run", "-u", "nsctl-no-such-command"),
                                               code=127)


def test_run_net_brings_lo_up_without_pyroute2():
    """The loopback comes up by ioctl: no process of nsctl run imports pyroute2 (each
    writes its -X importtime lines to the stderr they share)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "nsctl", "run", "-n",
                           "ip", "-j", "link"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if "pyroute2" in ln] == []
    links = json.loads(proc.stdout)
    assert [link["ifname"] for link in links] == ["lo"] and "UP" in links[0]["flags"]


def test_run_namespace_option_with_file_pins_it(scr):
    """--net=FILE (unshare's persist): the new namespace stays pinned at FILE after the
    command, and is the one the command was in."""
    name = f"nsctl-test-run-{os.getpid()}"
    path = Path("/run/netns") / name
    out = ok("run", f"--net={path}", "--uts=pinned-uts", "readlink", "/proc/self/ns/net"
             ).stdout.strip()
    try:
        assert out == f"net:[{os.stat(path).st_ino}]"
        assert name in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                      text=True, check=True).stdout
    finally:
        ok("unpin", path)
    assert not path.exists()


def test_run_monotonic_offset_as_unshare_writes_it():
    out = ok("run", "--monotonic", "1000", "cat", "/proc/self/timens_offsets").stdout.split()
    assert out[:3] == ["monotonic", "1000", "0"]


def test_run_veth_address_refused_names_the_address_step(scr):
    """An address the kernel refuses (IPv6 where it is disabled, in the test's own netns):
    one line naming the address step and the cause in words, no errno tuple, and the
    pair is undone."""
    with ot.own_netns() as net:
        subprocess.run([*net.prefix, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1"], check=True, timeout=30)
        err = one_error(nsctl("run", "-n", "--veth=fd00::1/126", "touch", scr / "ran",
                              prefix=net.prefix))
        assert "add address fd00::1/126 to nsctl" in err and "Permission denied" in err
        assert "Errno" not in err and "(13," not in err
        assert not (scr / "ran").exists()
        _run_left_nothing(net)


def test_run_map_current_user_maps_you_to_yourself():
    got = _ids_and_maps("-c")
    assert got[:2] == [str(os.geteuid()), str(os.getegid())]
    assert got[2].split() == [str(os.geteuid()), str(os.geteuid()), "1"]
    assert got[3].split() == [str(os.getegid()), str(os.getegid()), "1"]


def test_run_old_spellings_take_their_value_only_before_an_option_or_dashdash():
    """`--uts NAME -- CMD` (nsctl's): NAME is the hostname; `--uts CMD ARG -- X` (unshare's
    reading): CMD is the command, the hostname unchanged."""
    assert ok("run", "--uts", "nsctl-old", "--", "hostname").stdout == "nsctl-old\n"
    out = ok("run", "--uts", "sh", "-c", "hostname; echo \"$@\"", "sh", "--", "x").stdout
    assert out.splitlines() == [socket.gethostname(), "-- x"]
