"""Entering namespaces: nsctl.kernel.enter.visit_each (work done inside other
namespaces by forked children) and the ``nsctl enter`` command.

Real namespaces (unshare'd children).  Each child of visit_each reports the
namespace it stands in, which must be the target's (os.fstat of the fd the test
opened), in the target's place, whether one child visits them all or several
share them.  For ``nsctl enter``, what the command sees is checked against what
the kernel says, read by the test itself (os.stat inodes, /proc/PID/*, ip(8) in
the target's network namespace).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import pytest
import support
from support import cli, namespaces, processes, syscalls
from support import ops as ot
from support.cli import nsctl, ok, one_error
from support.nsfacts import facts, link_ino
from support.ops import TYPES

from nsctl.kernel.enter import visit_each
from nsctl.kernel.errors import NsctlError

pytestmark = support.root_only


def own(ns_type: str) -> int:
    return link_ino("self", ns_type)


def _where(self_dir: int):
    """The work: which network namespace the child is in, and a file handed back."""
    yield {"net": os.stat("ns/net", dir_fd=self_dir).st_ino}, None
    yield {"fd": "ns/net"}, os.open("ns/net", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self_dir)


@pytest.mark.parametrize("workers", [1, 3])
def test_each_target_is_visited_in_its_place(workers):
    with ExitStack() as stack:
        fds = []
        for _ in range(7):
            child = stack.enter_context(processes.Child(namespaces.unshare_and_wait,
                                                        syscalls.CLONE_NEWNET))
            fd = os.open(f"/proc/{child.ready()['pid']}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd)
            fds.append(fd)
        not_a_namespace = os.open("/", os.O_RDONLY | os.O_CLOEXEC)
        stack.callback(os.close, not_a_namespace)
        targets = [[(fd, syscalls.CLONE_NEWNET)] for fd in fds]
        targets.insert(3, [(not_a_namespace, syscalls.CLONE_NEWNET)])
        results = visit_each(targets, _where, workers)

        assert len(results) == len(targets)
        assert isinstance(results[3], NsctlError)   # setns refused that one, only that one
        del results[3]
        passed = [fd for items in results for _item, fd in items if fd is not None]
        for fd in passed:
            stack.callback(os.close, fd)
        for fd, items in zip(fds, results, strict=True):
            expected = os.fstat(fd).st_ino
            # (items without an fd travel batched, after the ones with one)
            assert [item for item, fd in items if fd is None] == [{"net": expected}]
            handed = [fd for _item, fd in items if fd is not None]
            assert [os.fstat(h).st_ino for h in handed] == [expected]   # over SCM_RIGHTS


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
    return dict(zip(TYPES, out, strict=True))


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
        assert dict(zip(TYPES, out[:len(TYPES)], strict=True)) == want
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


# === enter: direct paths, nsenter's options, errors =============================================

def _imports(*args: str, prefix: Sequence[str] = ()) -> tuple[subprocess.CompletedProcess,
                                                               set[str]]:
    """``nsctl ARGS`` under ``python -X importtime``: its result and the modules it imported
    (a scan of the host imports nsctl.discovery; the importtime lines are taken out of
    stderr)."""
    proc = subprocess.run([*prefix, sys.executable, "-X", "importtime", "-m", "nsctl",
                           *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    modules, other = set(), []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:"):
            modules.add(line.rpartition("|")[2].strip())
        else:
            other.append(line)
    proc.stderr = "\n".join(other)
    return proc, modules


@pytest.mark.parametrize("form", ["path", "PID/TYPE", "id", ":id", "type:[inode]", "inode"])
def test_enter_opens_the_namespace_directly_without_a_scan(form, target, scr):
    """No scan of the host (nothing of nsctl.discovery imported, no partial-result line
    even though pid 1 may be unreadable here), and the command runs in the namespace."""
    uts = facts(f"/proc/{target.pid}/ns/uts")
    pinned = scr / "uts"
    pinned.touch()
    syscalls.bind_mount(f"/proc/{target.pid}/ns/uts", pinned)
    try:
        spec = {"path": str(pinned), "PID/TYPE": f"{target.pid}/uts", "id": str(uts.id),
                ":id": f":{uts.id}", "type:[inode]": f"uts:[{uts.ino}]",
                "inode": str(uts.ino)}[form]
        proc, modules = _imports("enter", spec, "--", "sh", "-c",
                                 "hostname; readlink /proc/self/ns/uts")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert proc.stdout.split() == [HOSTNAME, f"uts:[{uts.ino}]"]
        assert not any(m.startswith("nsctl.discovery") for m in modules), \
            sorted(m for m in modules if m.startswith("nsctl"))
    finally:
        syscalls.umount(pinned)
        pinned.unlink()


def test_enter_nsenter_options_target_and_types(target):
    """nsenter's spelling: -t PID and type options, the command without --."""
    uts, net = link_ino(target.pid, "uts"), link_ino(target.pid, "net")
    out = ok("enter", "-t", str(target.pid), "-u", "-n", "sh", "-c",
             "hostname; readlink /proc/self/ns/uts /proc/self/ns/net /proc/self/ns/ipc"
             ).stdout.split()
    assert out == [HOSTNAME, f"uts:[{uts}]", f"net:[{net}]", f"ipc:[{own('ipc')}]"]
    # --TYPE=FILE and -TFILE name the namespace by file; --net=:ID by namespace id.
    net_id = facts(f"/proc/{target.pid}/ns/net").id
    out = ok("enter", f"--uts=/proc/{target.pid}/ns/uts", f"--net=:{net_id}",
             "readlink", "/proc/self/ns/uts", "/proc/self/ns/net").stdout.split()
    assert out == [f"uts:[{uts}]", f"net:[{net}]"]
    out = ok("enter", f"-u/proc/{target.pid}/ns/uts", "hostname").stdout
    assert out == f"{HOSTNAME}\n"


def test_enter_nsenter_all_user_root_and_credentials():
    """-t PID -a: every namespace of the target, its root and working directory, and in
    its user namespace uid and gid 0 (nsenter's default); --preserve-credentials keeps
    ours; -S/-G take others."""
    with namespaces.unshare_command(["--user", "--uts", "--mount"]) as cmd:
        for which in ("uid_map", "gid_map"):   # ids 0-99 the same inside and out
            with open(f"/proc/{cmd.child}/{which}", "w") as f:
                f.write("0 0 100\n")
        want = ot.links(cmd.child)
        out = ok("enter", "-t", str(cmd.child), "-a", "sh", "-c",
                 "readlink /proc/self/ns/user /proc/self/ns/uts; id -u; id -g").stdout.split()
        assert out == [want["user"], want["uts"], "0", "0"]
        out = ok("enter", "-t", str(cmd.child), "-a", "-S", "7", "-G", "8", "sh", "-c",
                 "id -u; id -g; id -G").stdout.split()
        assert out == ["7", "8", "8"]
        out = ok("enter", "-t", str(cmd.child), "-U", "--preserve-credentials", "id", "-u"
                 ).stdout.split()
        assert out == [str(os.geteuid())]


def test_enter_usage_errors_exit_2(target):
    for argv, message in [
            (["enter", f"{target.pid}/uts", "--", ""], "command name is empty"),
            (["enter", "-n", "true"], "neither FILE nor --target"),
            (["enter", "-t", "abc", "-n", "true"], "wants a number"),
            (["enter", f"--net=/proc/{target.pid}/ns/uts", "true"], "not net"),
            (["enter"], "nothing to enter")]:
        assert message in one_error(nsctl(*argv), code=2), argv


@pytest.mark.parametrize("ns_type", ["uts", "pid"])
def test_enter_command_not_executable_is_126(ns_type, scr):
    plain = scr / "not-executable"
    plain.write_text("echo ran\n")
    with namespaces.unshare_command(["--uts", "--pid"]) as cmd:
        err = one_error(nsctl("enter", f"{cmd.child}/{ns_type}", "--", plain), code=126)
        assert str(plain) in err and "Permission denied" in err


def test_enter_pid_namespace_without_init_says_so():
    """A PID namespace whose init exited (held by a process that unshared it and
    forked a child that exited) takes no process: the error says that, not ENOMEM."""
    shell = "/bin/true; echo ready; exec sleep 600"
    with subprocess.Popen(["unshare", "--pid", "sh", "-c", shell], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            dead = link_ino(holder.pid, "pid_for_children")
            err = one_error(nsctl("enter", f"{holder.pid}/pid_for_children", "--", "true"))
            assert f"pid:[{dead}] has no init any more" in err
            assert "nothing can enter it" in err
        finally:
            holder.kill()
