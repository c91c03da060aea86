"""A hostile user can neither hang root's nsctl nor make it open what they mounted, and
cannot read the files nsctl writes.

Discovery (issue 14, defect 2): uid 65534, in a user and mount namespace of their
own (``unshare -Urm``), mounts a tmpfs, bind-mounts one network namespace's file
at three places there, then stacks a FIFO over the first (an open of it blocks
for ever) and a character device over the third (an open of it runs a driver).
Root's ``nsctl ls``, ``lsns`` (with the NETNSID and NSFS columns), ``show``,
``net``, the Python discovery API and ``open_namespace`` must finish, exit 0,
and still find the namespace through the second, clean mount.  Twice: with the
user's process in that mount namespace (read through /proc/PID/root), and with
the mount namespace held only by an fd (read from a child that enters it).

Whether nsctl opened the FIFO or the device: an open of the FIFO blocks, so the
command would not finish (every step runs under a timeout); every open that
completes, of either, is an inotify IN_OPEN event on its inode, whatever path or
mount it went through.  At the end, anyone still blocked on the FIFO is released
by opening its write end (other programs on the host may not know better yet).

Files (defect 10): snapshots and history databases, with SQLite's side files,
are 0600 under any umask, and a FIFO, symlink or another user's file at their
path is refused with one line.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import netns_tag
from support import processes, root_only
from support.cli import run_nsctl
from support.processes import Child

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
TIMEOUT = 30.0   # seconds any one nsctl command or API call may take here

# The hostile user's setup, run as uid 65534 in `unshare -Urm` with the device node's
# path as $1: one network namespace (held only by these bind mounts) at three places,
# a FIFO stacked over the first, the device over the third.
HOSTILE = r"""
set -e
mount -t tmpfs -o mode=0755 hostile /tmp
cd /tmp
touch stacked clean device
mkfifo fifo
unshare -n sh -c 'for f in stacked clean device; do mount --bind /proc/self/ns/net /tmp/$f; done'
mount --bind /tmp/fifo /tmp/stacked
mount --bind "$1" /tmp/device
echo ready
read _
"""
# Holds the hostile mount namespace by an fd (fd 3) once no process is in it.
HOLDER = 'exec 3</proc/"$1"/ns/mnt; echo held; read _'


# --- the open watch: inotify ----------------------------------------------------------------

IN_OPEN = 0x20
_INOTIFY_EVENT = struct.Struct("=iIII")   # wd, mask, cookie, len (then the name)


class OpenWatch:
    """inotify IN_OPEN on the FIFO's and the device's inodes, whichever path or mount
    they are opened through.  An open of the FIFO that blocks never completes, so
    it shows only as a command that does not finish; every open that completes is
    an event here.  (fanotify, which would name the opener, reports opens of
    regular files only on this kernel.)  O_PATH opens open nothing and make no
    event."""

    def __init__(self, names: dict[str, str]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.names: dict[int, str] = {}
        for path, name in names.items():
            wd = self._libc.inotify_add_watch(self.fd, path.encode(), IN_OPEN)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
            self.names[wd] = name

    def opened(self) -> list[str]:
        """What was opened since the last call."""
        out: list[str] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            off = 0
            while off < len(data):
                wd, mask, _cookie, length = _INOTIFY_EVENT.unpack_from(data, off)
                off += _INOTIFY_EVENT.size + length
                if mask & IN_OPEN:
                    out.append(self.names.get(wd, f"watch {wd}"))

    def close(self) -> None:
        os.close(self.fd)


# --- the hostile topology -----------------------------------------------------------------

@dataclass
class Hostile:
    net: int          # the network namespace bind-mounted three times
    mnt: int          # the user's mount namespace
    user: int         # the user's user namespace, which owns both
    watch: OpenWatch  # opens of the FIFO and the device
    pid: int | None   # the user's process in ``mnt``; None when only an fd holds it


def _wait_line(proc: subprocess.Popen, expect: str) -> None:
    assert proc.stdout is not None and proc.stderr is not None   # both PIPE
    ready, _w, _x = select.select([proc.stdout], [], [], TIMEOUT)
    line = proc.stdout.readline().decode() if ready else ""
    if line.strip() != expect:
        err = proc.stderr.read().decode() if proc.poll() is not None else ""
        raise RuntimeError(f"hostile setup: expected {expect!r}, got {line!r} {err}")


def _ns_ino(pid: int, link: str) -> int:
    return int(os.readlink(f"/proc/{pid}/ns/{link}").split("[")[1].rstrip("]"))


@contextmanager
def hostile_mounts(held_by_fd: bool) -> Iterator[Hostile]:
    """Build the topology, yield it, then undo it all: the user's mounts (lazily, from
    root, inside their namespace), anyone blocked on the FIFO (released by opening
    its write end: this machine may run other programs that do not yet know better),
    the user's processes and the device node."""
    top = tempfile.mkdtemp(prefix=netns_tag(), dir="/run")
    procs: list[subprocess.Popen] = []
    watch = None
    fifo_fd = None
    umount_from = None
    try:
        os.chmod(top, 0o755)
        device = os.path.join(top, "null")
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(device, 0o666)
        user = subprocess.Popen([*SETPRIV, "unshare", "-Urm", "sh", "-c", HOSTILE, "sh", device],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd="/")
        procs.append(user)
        _wait_line(user, "ready")
        umount_from = f"/proc/{user.pid}/ns/mnt"
        inside = f"/proc/{user.pid}/root/tmp"
        fifo_fd = os.open(f"{inside}/fifo", os.O_PATH | os.O_CLOEXEC)
        net, mnt, userns = os.stat(f"{inside}/clean").st_ino, _ns_ino(user.pid, "mnt"), \
            _ns_ino(user.pid, "user")
        watch = OpenWatch({f"{inside}/fifo": "the FIFO", device: "the device"})
        pid: int | None = user.pid
        if held_by_fd:
            holder = subprocess.Popen([*SETPRIV, "sh", "-c", HOLDER, "sh", str(user.pid)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, cwd="/")
            procs.append(holder)
            _wait_line(holder, "held")
            umount_from = f"/proc/{holder.pid}/fd/3"
            user.communicate(b"\n", timeout=TIMEOUT)   # the user's process leaves
            pid = None
        yield Hostile(net=net, mnt=mnt, user=userns, watch=watch, pid=pid)
    finally:
        try:
            if watch is not None:
                watch.close()
            if umount_from is not None:
                subprocess.run(["nsenter", f"--mount={umount_from}", "umount", "-l", "/tmp"],
                               timeout=TIMEOUT, capture_output=True)
            if fifo_fd is not None:
                try:
                    os.close(os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass   # ENXIO: nobody waits to read it
                os.close(fifo_fd)
        finally:
            for proc in procs:
                try:
                    proc.communicate(b"\n", timeout=TIMEOUT)
                except (ValueError, OSError, subprocess.TimeoutExpired):
                    pass
            processes.terminate([p.pid for p in procs if p.returncode is None])
            shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(params=["process", "fd"], ids=["process-in-it", "held-by-fd"])
def hostile(request) -> Iterator[Hostile]:
    """The topology, with the user's process in the mount namespace or only an fd."""
    if os.geteuid() != 0:
        pytest.skip("needs root: plays uid 65534 with setpriv and reads other mount namespaces")
    with hostile_mounts(held_by_fd=request.param == "fd") as h:
        yield h


@pytest.fixture
def hostile_process() -> Iterator[Hostile]:
    """The topology with the user's process in it (its /proc/PID/root reaches the files)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: plays uid 65534 with setpriv and reads other mount namespaces")
    with hostile_mounts(held_by_fd=False) as h:
        yield h


def _no_opens(h: Hostile, what: str) -> None:
    opened = h.watch.opened()
    assert not opened, f"{what} opened {', '.join(opened)}"


def _nsctl(*args: str) -> subprocess.CompletedProcess:
    proc = run_nsctl(*args, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


# --- discovery ------------------------------------------------------------------------------

@root_only
def test_the_watch_sees_a_plain_open_of_what_is_stacked(hostile_process):
    """The check is not vacuous: a plain open of the stacked mount points, as nsctl
    made (O_NONBLOCK here, so that the FIFO's does not block), is seen."""
    hostile = hostile_process

    def opener(chan, paths):
        for path in paths:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        chan.send("done")

    paths = [f"/proc/{hostile.pid}/root/tmp/{name}" for name in ("stacked", "device")]
    with Child(opener, paths) as child:
        assert child.ready(timeout=TIMEOUT) == "done"
    assert sorted(hostile.watch.opened()) == ["the FIFO", "the device"]


@root_only
def test_ls_finds_the_namespace_through_the_clean_mount_and_opens_nothing_else(hostile):
    doc = json.loads(_nsctl("ls", "--json").stdout)
    found = {ns["ns"]: ns for ns in doc["namespaces"]}
    assert hostile.net in found, "the namespace held by the bind mounts is missing"
    ns = found[hostile.net]
    # Opened (through /tmp/clean): its owner and id come from ioctls on an fd of it.
    assert ns["type"] == "net" and ns["owner"] == hostile.user and ns["id"] is not None
    assert ns["dev"] == os.stat("/proc/self/ns/net").st_dev
    paths = {(r["path"], r["mntns"]) for r in ns["refs"] if r["kind"] == "bindmount"}
    assert {("/tmp/stacked", hostile.mnt), ("/tmp/clean", hostile.mnt),
            ("/tmp/device", hostile.mnt)} <= paths
    text = _nsctl("ls").stdout
    assert str(hostile.net) in text
    _no_opens(hostile, "nsctl ls")


@root_only
def test_lsns_with_netnsid_and_nsfs_columns_finishes(hostile):
    doc = json.loads(_nsctl("lsns", "--json", "-t", "net", "-o", "NS,TYPE,NETNSID,NSFS").stdout)
    rows = {row["ns"]: row for row in doc["namespaces"]}
    assert hostile.net in rows
    nsfs_column = rows[hostile.net]["nsfs"]
    assert "/tmp/clean" in (nsfs_column if isinstance(nsfs_column, str) else " ".join(nsfs_column))
    text = _nsctl("lsns", "-o", "NS,TYPE,NETNSID,NSFS").stdout
    assert str(hostile.net) in text
    _nsctl("lsns")
    _no_opens(hostile, "nsctl lsns")


@root_only
def test_show_and_net_reach_the_namespace_through_the_clean_mount(hostile):
    """``show`` reads what the namespace sees, so it opens it (nsctl.query.handles): its
    interfaces (a new network namespace has only lo) prove it got there."""
    doc = json.loads(_nsctl("show", "--json", f"net:[{hostile.net}]").stdout)
    names = [i["name"] for i in doc["view"]["interfaces"]]
    assert names == ["lo"]
    net = _nsctl("net", "--json").stdout
    assert str(hostile.net) in net
    _no_opens(hostile, "nsctl show / net")


def _api(chan, net: int) -> None:
    import nsctl
    from nsctl.kernel import nsfs
    from nsctl.query.handles import open_namespace

    snap = nsctl.discover()
    ns = snap.namespaces[net]
    fd = open_namespace(ns, snap)
    try:
        st = os.fstat(fd)
        chan.send({"ino": st.st_ino, "dev": st.st_dev, "type": nsfs.ns_type(fd),
                   "owner": ns.owner, "paths": sorted(r.path for r in ns.refs if r.path)})
    finally:
        os.close(fd)


@root_only
def test_python_discovery_and_open_namespace_finish(hostile):
    with Child(_api, hostile.net) as child:
        got = child.ready(timeout=TIMEOUT)
    assert (got["ino"], got["type"], got["owner"]) == (hostile.net, "net", hostile.user)
    assert got["dev"] == os.stat("/proc/self/ns/net").st_dev
    assert got["paths"] == ["/tmp/clean", "/tmp/device", "/tmp/stacked"]
    _no_opens(hostile, "nsctl.discover / open_namespace")


@root_only
def test_serve_builds_its_model_and_shows_the_namespace(hostile, tmp_path):
    """serve's refresher runs the same discovery: its first model arrives (a hung
    refresher would never send one) and holds the namespace, whose view is read
    through the clean mount."""
    from support.serve import running_server

    with running_server("--max-age", "1", unix=str(tmp_path / "api.sock"), tcp=False,
                        timeout=TIMEOUT) as server:
        found = {d["ns"] for d in server.json("/api/v1/namespaces", timeout=TIMEOUT)
                 ["namespaces"]}
        assert hostile.net in found
        doc = server.json(f"/api/v1/namespaces/{hostile.net}?view=1", timeout=TIMEOUT)
        assert [i["name"] for i in doc["view"]["interfaces"]] == ["lo"]
    _no_opens(hostile, "nsctl serve")


def _hold_fifo_and_device(chan, fifo: str, device: str) -> None:
    """As uid 65534: hold the FIFO (both ends, so the open does not block) and the
    device open, and say at which fds."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    held = {"fifo": os.open(fifo, os.O_RDWR), "device": os.open(device, os.O_RDONLY)}
    chan.send(held)
    chan.wait_closed()


@root_only
def test_an_fd_that_is_a_fifo_or_a_device_is_not_opened(hostile_process):
    """What discovery opens through /proc/PID/fd/N (an fd swapped between its readlink
    and its open, say) is refused by nsfs.open_ns before anything is opened."""
    from nsctl.kernel import nsfs
    from nsctl.kernel.errors import NotANamespace

    hostile = hostile_process
    inside = f"/proc/{hostile.pid}/root/tmp"
    with Child(_hold_fifo_and_device, f"{inside}/fifo", f"{inside}/device") as holder:
        held = holder.ready(timeout=TIMEOUT)
        hostile.watch.opened()   # the holder's own opens

        def try_open(chan, pid, fds):
            out = {}
            for name, fd in fds.items():
                try:
                    os.close(nsfs.open_ns(f"/proc/{pid}/fd/{fd}"))
                    out[name] = "opened"
                except NotANamespace:
                    out[name] = "refused"
            chan.send(out)

        with Child(try_open, holder.pid, held) as child:
            assert child.ready(timeout=TIMEOUT) == {"fifo": "refused", "device": "refused"}
    _no_opens(hostile, "nsfs.open_ns")


# --- resolving a mount point: no symlink, no way out, no open --------------------------------

@pytest.mark.parametrize("impl", ["openat2", "walk"])
def test_a_mount_point_is_resolved_beneath_its_root_without_symlinks(scratch, impl):
    """Both ways (openat2, and the walk kept for kernels without it) refuse a symlink
    anywhere on the way and a way out, and open a FIFO only as O_PATH (no block),
    which nsfs.reopen_ns then refuses."""
    from nsctl.kernel import nsfs
    from nsctl.kernel.errors import NotANamespace

    open_beneath = {"openat2": nsfs.open_beneath, "walk": nsfs.walk_beneath}[impl]
    (scratch / "real").mkdir()
    (scratch / "real" / "file").write_text("x")
    os.symlink("real", scratch / "link")
    os.symlink("/etc/hostname", scratch / "real" / "abs")
    os.mkfifo(scratch / "real" / "fifo")
    root = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_beneath(root, "/real/file")
        try:
            assert os.fstat(fd).st_ino == (scratch / "real" / "file").stat().st_ino
        finally:
            os.close(fd)
        for path, codes in (("/link/file", {errno.ELOOP, errno.ENOTDIR}),
                            ("/real/../../etc/hostname", {errno.EXDEV}),
                            ("/real/abs", {errno.ELOOP})):
            try:
                fd = open_beneath(root, path)
            except OSError as exc:
                assert exc.errno in codes, (path, exc)
                continue
            try:   # the walk gives the symlink itself as the last component: not followed
                assert stat.S_ISLNK(os.fstat(fd).st_mode), path
            finally:
                os.close(fd)
        fd = open_beneath(root, "/real/fifo")
        try:
            assert stat.S_ISFIFO(os.fstat(fd).st_mode)
            with pytest.raises(NotANamespace):
                nsfs.reopen_ns(fd)
        finally:
            os.close(fd)
    finally:
        os.close(root)
        os.unlink(scratch / "link")   # (the scratch fixture takes it for a directory)


# --- files nsctl writes ------------------------------------------------------------------

@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_snapshot_file_is_owner_only(scratch, mask):
    out = scratch / "snap.json"
    with umask(mask):
        _nsctl("snapshot", "-o", out)
        assert _mode(out) == 0o600
        out.chmod(0o644)   # an older snapshot of ours: tightened when written again
        _nsctl("snapshot", "-o", out)
    assert _mode(out) == 0o600
    assert json.loads(out.read_text())["schema"] == "nsctl-snapshot"
    assert sorted(p.name for p in scratch.iterdir()) == ["snap.json"]   # no temp file left


@pytest.mark.parametrize("mask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_history_database_and_side_files_are_owner_only(scratch, mask):
    """Through the API, while a recorder holds the database open (WAL: -wal and -shm
    exist then); side files left 0644 by an older nsctl are tightened too."""
    from nsctl.timeline.history import Recorder

    db = scratch / "sub" / "h.db"
    with umask(mask):
        rec = Recorder(str(db))
        try:
            rec.events([{"time": "2024-01-01T00:00:00Z", "event": "born", "ns": 1}])
            side = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in side)
            assert [_mode(p) for p in [db, *side]] == [0o600] * 3
        finally:
            rec.close()
        assert _mode(db.parent) == 0o700
        for suffix in ("-journal", "-wal"):
            db.with_name(db.name + suffix).write_bytes(b"")
            db.with_name(db.name + suffix).chmod(0o644)
        db.chmod(0o644)
        Recorder(str(db)).close()
    assert _mode(db) == 0o600
    for p in db.parent.iterdir():
        assert _mode(p) == 0o600, p


@root_only
@pytest.mark.parametrize("mask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_watch_record_writes_owner_only_files(scratch, mask):
    db = scratch / "h.db"
    with umask(mask):
        proc = subprocess.Popen([sys.executable, "-m", "nsctl", "watch", "--record", str(db),
                                 "--duration", "3", "--json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        side = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
        while not all(p.exists() for p in side) and time.monotonic() < deadline:
            time.sleep(0.05)
        modes = {p.name: _mode(p) for p in [db, *side] if p.exists()}
        _out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert modes == {"h.db": 0o600, "h.db-wal": 0o600, "h.db-shm": 0o600}
    assert _mode(db) == 0o600


def _refused(args: list[str], path: Path) -> str:
    proc = run_nsctl(*args, timeout=TIMEOUT)
    lines = proc.stderr.splitlines()
    assert proc.returncode != 0
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"nsctl: {path}") and "refusing to write" in lines[0], lines
    return lines[0]


def _hostile_files(scratch: Path, name: str) -> dict[str, Path]:
    """At ``name`` and beside it: a FIFO, a symlink to a file of root's, and a file
    that uid 65534 owns, each in a directory of its own."""
    made = {}
    for kind in ("fifo", "symlink", "other-user"):
        d = scratch / kind
        d.mkdir()
        path = d / name
        if kind == "fifo":
            os.mkfifo(path, 0o666)
        elif kind == "symlink":
            (d / "victim").write_text("root's\n")
            os.symlink(d / "victim", path)
        else:
            path.write_text("theirs\n")
            os.chown(path, NOBODY, NOBODY)
        made[kind] = path
    return made


@root_only
def test_snapshot_refuses_a_fifo_a_symlink_and_another_users_file(scratch):
    for kind, path in _hostile_files(scratch, "snap.json").items():
        line = _refused(["snapshot", "-o", str(path)], path)
        assert {"fifo": "FIFO", "symlink": "symlink", "other-user": "uid 65534"}[kind] in line
    assert (scratch / "symlink" / "victim").read_text() == "root's\n"
    assert (scratch / "other-user" / "snap.json").read_text() == "theirs\n"


@root_only
def test_watch_record_refuses_a_fifo_a_symlink_and_another_users_file(scratch):
    for path in _hostile_files(scratch, "h.db").values():
        _refused(["watch", "--record", str(path), "--duration", "1"], path)
    assert (scratch / "symlink" / "victim").read_text() == "root's\n"
    assert (scratch / "other-user" / "h.db").read_text() == "theirs\n"
    # A FIFO where SQLite's write-ahead log goes is refused as well.
    db = scratch / "wal" / "h.db"
    db.parent.mkdir()
    os.mkfifo(db.with_name("h.db-wal"))
    _refused(["watch", "--record", str(db), "--duration", "1"], db.with_name("h.db-wal"))
