"""Pins among hostile users: nsctl, as root, never mounts where another user steers it.

The hostile user is uid 65534 for real (setpriv): it owns directories, plants
symbolic links to a root-only file (``shadow`` here, standing in for
/etc/shadow; the real one is never touched) and swaps names while root pins.
Pin directories must be root's alone, every step of the way, checked on each
operation (nsctl.ops.trusteddir); the pin file is created O_EXCL|O_NOFOLLOW and
the namespace mounted onto the opened file; unpin unmounts only the nsfs mount
it checked, through its fd.  Evidence is the kernel's: /proc/self/mountinfo,
stat of the files, NS_GET_ID through support.nsfacts.facts.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import support
from conftest import netns_tag
from support import cli, namespaces, processes, syscalls
from support import ops as ot
from support.cli import nsctl, ok, one_error
from support.nsfacts import facts, link_ino
from support.serve import running_server

pytestmark = support.root_only

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
SECRET = "root:$6$not-a-real-hash:19000:0:99999:7:::\n"


def as_nobody(*argv: str) -> None:
    subprocess.run([*SETPRIV, *argv], check=True, timeout=30, cwd="/",
                   stdin=subprocess.DEVNULL)


class Place:
    """A root-owned 0755 directory in /run (so uid 65534 can reach what is in it),
    a victim file in it (root's, 0600), a good pin directory and one of uid 65534."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.shadow = top / "shadow"
        self.good = top / "good"
        self.hostile = top / "hostile"

    def victim_intact(self) -> None:
        """The victim file is still itself: nothing mounted over it, content unchanged."""
        assert ot.mounts_under(self.shadow) == [], "something was mounted over the victim"
        assert self.shadow.read_text() == SECRET
        assert os.lstat(self.shadow).st_uid == 0


@pytest.fixture
def place() -> Iterator[Place]:
    top = Path(tempfile.mkdtemp(prefix=netns_tag(), dir="/run"))
    try:
        top.chmod(0o755)
        p = Place(top)
        p.shadow.write_text(SECRET)
        p.shadow.chmod(0o600)
        p.good.mkdir(mode=0o755)
        p.hostile.mkdir(mode=0o755)
        os.chown(p.hostile, NOBODY, NOBODY)
        yield p
    finally:
        for point in sorted(ot.mounts_under(top), key=len, reverse=True):
            syscalls.umount(point)   # safety net: a test that failed midway
        shutil.rmtree(top)


@pytest.fixture
def uts() -> Iterator[int]:
    """PID of a process alone in a new uts namespace."""
    with namespaces.unshare_command(["--uts"]) as cmd:
        yield cmd.child


def _no_pin_at(path: Path) -> None:
    assert ot.mounts_under(path) == [], f"a mount at {path}"


# --- where pins may go --------------------------------------------------------------------------

def test_pin_dir_owned_by_another_user_is_refused(place: Place, uts: int) -> None:
    # The owner plants a symlink at the name root will pin to: refused before any name
    # in that directory is touched.
    as_nobody("ln", "-s", str(place.shadow), str(place.hostile / "p"))
    for name in ("p", "q"):
        err = one_error(nsctl("pin", f"{uts}/uts", place.hostile / name, timeout=60))
        assert err == (f"nsctl: pin: {place.hostile}: directory is owned by uid {NOBODY}, "
                       "not root"), err
        _no_pin_at(place.hostile / name)
    assert not os.path.lexists(place.hostile / "q")
    assert os.readlink(place.hostile / "p") == str(place.shadow)
    place.victim_intact()


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_ancestor_writable_by_others_is_refused(place: Place, uts: int, mode: int) -> None:
    """An ancestor others may write to lets them rename the pin directory away and put
    their own in its place; only a sticky (root-owned) one, like /tmp, is safe."""
    ancestor = place.top / "open"
    ancestor.mkdir()
    ancestor.chmod(mode)
    (ancestor / "pins").mkdir(mode=0o755)
    path = ancestor / "pins" / "p"
    err = one_error(nsctl("pin", f"{uts}/uts", path))
    assert f"nsctl: pin: {ancestor}: directory is writable by group or others " \
           f"(mode {mode:04o}) and not sticky" in err, err
    assert not os.path.lexists(path)
    _no_pin_at(path)
    place.victim_intact()


def test_sticky_ancestor_is_fine_but_not_an_entry_of_another_user_in_it(place: Place,
                                                                        uts: int) -> None:
    sticky = place.top / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    # uid 65534 makes a directory in the sticky one: theirs, so refused.
    as_nobody("mkdir", "-m", "0755", str(sticky / "theirs"))
    err = one_error(nsctl("pin", f"{uts}/uts", sticky / "theirs" / "p"))
    assert err == f"nsctl: pin: {sticky / 'theirs'}: directory is owned by uid {NOBODY}, not root"
    # A root-owned directory in it takes pins: nobody else may rename it (sticky).
    (sticky / "ours").mkdir(mode=0o755)
    path = sticky / "ours" / "p"
    ino = link_ino(uts, "uts")
    ok("pin", f"{uts}/uts", path)
    try:
        assert ot.nsfs_mounts()[str(path)] == f"uts:[{ino}]"
        assert os.stat(path).st_ino == ino
        ok("unpin", path)
        assert not os.path.lexists(path)
    finally:
        ot.unpin_quietly(path)
    # The sticky directory itself is no pin directory: others could take names in it.
    err = one_error(nsctl("pin", f"{uts}/uts", sticky / "p"))
    assert err == (f"nsctl: pin: {sticky}: directory is writable by group or others (mode 1777); "
                   "only root may write where pins go (chmod go-w it)")
    place.victim_intact()


def test_symlink_of_another_user_on_the_way_is_refused(place: Place, uts: int) -> None:
    """A directory reached through uid 65534's symlink: they choose where it leads."""
    link = place.hostile / "to-good"
    as_nobody("ln", "-s", str(place.good), str(link))
    err = one_error(nsctl("pin", f"{uts}/uts", link / "p"))
    assert err == f"nsctl: pin: {place.hostile}: directory is owned by uid {NOBODY}, not root"
    # Planted elsewhere (lchown: as if made by them in a directory they once owned).
    other = place.top / "via"
    other.symlink_to(place.good)
    os.lchown(other, NOBODY, NOBODY)
    err = one_error(nsctl("pin", f"{uts}/uts", other / "p"))
    assert err == f"nsctl: pin: {other}: a symbolic link owned by uid {NOBODY}, not root"
    assert list(place.good.iterdir()) == []
    other.unlink()


def test_missing_pin_dir_is_one_clear_line(place: Place, uts: int) -> None:
    err = one_error(nsctl("pin", f"{uts}/uts", place.top / "none" / "p"))
    assert err == f"nsctl: pin: {place.top / 'none'}: no such directory"
    assert not os.path.lexists(place.top / "none")
    (place.top / "file").write_text("")
    err = one_error(nsctl("pin", f"{uts}/uts", place.top / "file" / "p"))
    assert err == f"nsctl: pin: {place.top / 'file'}: not a directory"
    (place.top / "file").unlink()


def test_run_pin_dir_follows_the_same_rule(place: Place) -> None:
    err = one_error(nsctl("run", "--ipc", "--pin", place.hostile, "--", "true"))
    assert f"{place.hostile}: directory is owned by uid {NOBODY}, not root" in err, err
    assert list(place.hostile.iterdir()) == []
    _no_pin_at(place.hostile)


# --- the name itself: created O_EXCL|O_NOFOLLOW, mounted through the fd --------------------------

def test_planted_symlink_at_the_pin_name_is_refused(place: Place, uts: int) -> None:
    """The race made deterministic: the name is a symlink to the victim already when
    root pins (planted by uid 65534 while they owned the directory, which root has
    since taken over).  O_CREAT|O_EXCL|O_NOFOLLOW refuses it; nothing is mounted."""
    place.hostile.chmod(0o755)
    as_nobody("ln", "-s", str(place.shadow), str(place.hostile / "p"))
    as_nobody("ln", "-s", "missing-target", str(place.hostile / "dangling"))
    os.chown(place.hostile, 0, 0)
    for name in ("p", "dangling"):
        err = one_error(nsctl("pin", f"{uts}/uts", place.hostile / name))
        assert err == (f"nsctl: pin: {place.hostile / name}: already exists (pin to a new "
                       "path; unpin first if it is a pin)"), err
        assert os.path.islink(place.hostile / name)
        _no_pin_at(place.hostile / name)
    assert not os.path.lexists(place.hostile / "missing-target")
    place.victim_intact()


def test_hostile_user_swapping_names_while_root_pins(place: Place, uts: int) -> None:
    """uid 65534 swaps its pin name between a symlink to the victim and a plain file
    as fast as it can while root pins there over and over: every pin is refused, and
    the victim is never mounted over (mountinfo read after every attempt)."""
    from nsctl.ops.pin import PinError, pin_fd

    script = ("import os, time\n"
              f"d, victim = {str(place.hostile)!r}, {str(place.shadow)!r}\n"
              "end = time.monotonic() + 20\n"
              "open(d + '/ready', 'w').close()\n"
              "while time.monotonic() < end and not os.path.exists(d + '/stop'):\n"
              "    for make in (lambda p: os.symlink(victim, p), lambda p: open(p, 'w').close()):\n"
              "        try:\n"
              "            os.unlink(d + '/p.new') if os.path.lexists(d + '/p.new') else None\n"
              "            make(d + '/p.new')\n"
              "            os.rename(d + '/p.new', d + '/p')\n"
              "        except OSError:\n"
              "            pass\n")
    swapper = subprocess.Popen([*SETPRIV, sys.executable, "-I", "-c", script], cwd="/",
                               stdin=subprocess.DEVNULL)
    fd = os.open(f"/proc/{uts}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        processes.wait_for((place.hostile / "ready").exists, "the swapper to start", 15)
        refused = 0
        deadline = time.monotonic() + 10
        while refused < 200 and time.monotonic() < deadline:
            with pytest.raises(PinError, match=f"owned by uid {NOBODY}, not root"):
                pin_fd(fd, str(place.hostile / "p"))
            refused += 1
            place.victim_intact()
            _no_pin_at(place.hostile / "p")
        assert refused >= 20
    finally:
        os.close(fd)
        as_nobody("touch", str(place.hostile / "stop"))
        swapper.wait(timeout=30)
    place.victim_intact()


# --- unpin never unmounts what a name was swapped to ----------------------------------------------

def test_unpin_of_a_symlink_leaves_its_target_mounted(place: Place, uts: int) -> None:
    """A real pin (the victim here), and names that lead to it: a symlink at the name
    root unpins, in root's directory or in uid 65534's, or a directory reached
    through their symlink.  Each is refused and the pin stays; so does a plain bind
    mount over the root-only file, reached by a symlink."""
    ino = link_ino(uts, "uts")
    victim_pin = place.good / "victim"
    ok("pin", f"{uts}/uts", victim_pin)
    try:
        planted = place.top / "planted"
        planted.mkdir(mode=0o755)
        (planted / "s").symlink_to(victim_pin)
        os.lchown(planted / "s", NOBODY, NOBODY)
        as_nobody("ln", "-s", str(victim_pin), str(place.hostile / "s"))
        as_nobody("ln", "-s", str(place.good), str(place.hostile / "dir"))
        cases = {
            planted / "s": f"{planted / 's'}: not a pinned namespace file (a symbolic link "
                           "there)",
            place.hostile / "s": f"{place.hostile}: directory is owned by uid {NOBODY}, "
                                 "not root",
            place.hostile / "dir" / "victim": f"{place.hostile}: directory is owned by uid "
                                              f"{NOBODY}, not root",
        }
        for path, message in cases.items():
            err = one_error(nsctl("unpin", path))
            assert err == f"nsctl: unpin: {message}", err
            assert ot.nsfs_mounts()[str(victim_pin)] == f"uts:[{ino}]"
            assert os.path.islink(path if path.parent != place.hostile / "dir"
                                  else place.hostile / "dir")
        # A bind mount over the root-only file, named through a symlink: not a pin.
        (place.top / "copy").write_text("bound\n")
        syscalls.bind_mount(place.top / "copy", place.shadow)
        try:
            (planted / "t").symlink_to(place.shadow)
            err = one_error(nsctl("unpin", planted / "t"))
            assert err == f"nsctl: unpin: {planted / 't'}: not a pinned namespace file " \
                          "(a symbolic link there)"
            err = one_error(nsctl("unpin", place.shadow))
            assert err == f"nsctl: unpin: {place.shadow}: not a pinned namespace file " \
                          "(no nsfs mount there)"
            assert ot.mounts_under(place.shadow) == [str(place.shadow)]
        finally:
            syscalls.umount(place.shadow)
        ok("unpin", victim_pin)
        assert not os.path.lexists(victim_pin) and str(victim_pin) not in ot.nsfs_mounts()
    finally:
        ot.unpin_quietly(victim_pin)
    place.victim_intact()


# --- a good directory still works, with either mount call ----------------------------------------

@pytest.mark.parametrize("api", ["open_tree", "mount"])
def test_pin_in_a_root_dir_keeps_the_namespace_alive(place: Place, api: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """pin_fd and unpin as the library runs them, with the new mount API (which this
    kernel has) and with mount(2) through /proc/self/fd, the fallback for kernels
    without it.  After the only process in the namespace is gone, the pin holds it:
    same inode and NS_GET_ID, and nsctl lists it held by the bind mount alone."""
    from nsctl.kernel import mounts
    from nsctl.ops.pin import pin_fd, unpin

    monkeypatch.setattr(mounts, "_has_open_tree", None if api == "open_tree" else False)
    path = place.good / "p"
    with namespaces.unshare_command(["--uts"]) as cmd:
        before = facts(f"/proc/{cmd.child}/ns/uts")
        fd = os.open(f"/proc/{cmd.child}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        try:
            assert pin_fd(fd, str(path)) == str(path)
        finally:
            os.close(fd)
    try:
        # Which call did it: detection found open_tree, or the fallback was forced.
        assert mounts._has_open_tree is (api == "open_tree")
        assert ot.nsfs_mounts()[str(path)] == f"uts:[{before.ino}]"
        now = facts(path)
        assert (now.type, now.ino, now.id) == (before.type, before.ino, before.id)
        ns = cli.ns_by_ino(cli.ls_json(), before.ino)
        assert ns is not None and "bindmount" in ns["held_by"] and ns["pids"] == [], ns
        assert unpin(str(path)) == f"uts:[{before.ino}]"
        assert not os.path.lexists(path) and str(path) not in ot.nsfs_mounts()
    finally:
        ot.unpin_quietly(path)
    place.victim_intact()


# --- serve: refuses a bad --pin-dir at start, and checks again on every pin -----------------------

@pytest.mark.parametrize("case", ["owned by 65534", "ancestor writable", "missing", "symlink"])
def test_serve_refuses_a_bad_pin_dir(place: Place, scratch: Path, case: str) -> None:
    open_dir = place.top / "open"
    if case == "owned by 65534":
        pin_dir, message = place.hostile, (f"--pin-dir: {place.hostile}: directory is owned "
                                           f"by uid {NOBODY}, not root")
    elif case == "ancestor writable":
        open_dir.mkdir()
        open_dir.chmod(0o777)
        (open_dir / "pins").mkdir(mode=0o755)
        pin_dir = open_dir / "pins"
        message = (f"--pin-dir {pin_dir}: {open_dir}: directory is writable by group or "
                   "others (mode 0777) and not sticky, so others could replace what is "
                   "below it")
    elif case == "missing":
        pin_dir = place.top / "none"
        message = f"--pin-dir: {pin_dir}: no such directory"
    else:
        (place.top / "link").symlink_to(place.good)
        pin_dir = place.top / "link"
        message = f"--pin-dir: {pin_dir}: a symbolic link; give the directory's own path"
    r = nsctl("serve", "--unix", scratch / "s.sock", "--allow-ops", "--pin-dir", pin_dir,
              timeout=60)
    assert r.returncode != 0 and r.stderr == f"nsctl: {message}\n", r.stderr
    assert not (scratch / "s.sock").exists()


def test_serve_checks_the_pin_dir_on_every_pin(place: Place, scratch: Path, uts: int) -> None:
    """Accepted at start, then handed to uid 65534: pins there are refused (409, the
    cause in one line) until root takes the directory back."""
    sock = str(scratch / "ops.sock")
    ino = link_ino(uts, "uts")
    target = str(place.good / "p")
    with running_server("--allow-ops", "--pin-dir", str(place.good), unix=sock,
                        tcp=False) as server, server.unix_client() as c:
        _wait_listed(c, ino)
        os.chown(place.good, NOBODY, NOBODY)
        r = c.post("/api/v1/pins", json={"spec": f"uts:[{ino}]", "path": target})
        assert r.status_code == 409, r.text
        assert r.json()["error"] == (f"pin: {place.good}: directory is owned by uid {NOBODY}, "
                                     "not root")
        assert not os.path.lexists(target)
        _no_pin_at(Path(target))
        os.chown(place.good, 0, 0)
        r = c.post("/api/v1/pins", json={"spec": f"uts:[{ino}]", "path": target})
        assert r.status_code == 201, r.text
        try:
            assert os.stat(target).st_ino == ino
            os.chown(place.good, NOBODY, NOBODY)   # unpin checks again too
            r = c.delete("/api/v1/pins", params={"path": target})
            assert r.status_code == 409 and "owned by uid 65534" in r.json()["error"], r.text
            assert ot.nsfs_mounts()[target] == f"uts:[{ino}]"
            os.chown(place.good, 0, 0)
            r = c.delete("/api/v1/pins", params={"path": target})
            assert r.status_code == 200, r.text
            assert not os.path.lexists(target)
        finally:
            os.chown(place.good, 0, 0)
            ot.unpin_quietly(target)
    place.victim_intact()


def _wait_listed(c: httpx.Client, ino: int) -> None:
    processes.wait_for(lambda: any(n["ns"] == ino for n in
                                   c.get("/api/v1/namespaces").json()["namespaces"]),
                       "the server to list the namespace", timeout=30, step=0.1)


def test_a_missing_netns_style_dir_is_made_root_only(place: Place) -> None:
    """What `pin ... /run/netns/NAME` does when /run/netns is missing (as `ip netns add`
    does), here on a directory of the test's own: made 0755 (less the umask), root's, in a
    checked parent;
    never made under a directory that fails the rule."""
    from nsctl.ops.trusteddir import UntrustedDirectory, open_trusted_dir

    new = place.top / "netns"
    fd, where, made = open_trusted_dir(str(new), create=True)
    os.close(fd)
    st = os.lstat(new)
    umask = os.umask(0o022)
    os.umask(umask)
    assert (where, made, st.st_uid, st.st_mode & 0o7777) == (str(new), True, 0, 0o755 & ~umask)
    fd, _, made = open_trusted_dir(str(new), create=True)
    os.close(fd)
    assert made is False
    with pytest.raises(UntrustedDirectory, match=f"owned by uid {NOBODY}, not root"):
        open_trusted_dir(str(place.hostile / "netns"), create=True)
    assert not os.path.lexists(place.hostile / "netns")
    new.rmdir()


def test_root_symlinks_on_the_way_resolve_as_the_kernel_would(place: Place) -> None:
    """Root's own symlinks are followed (``..`` after one steps back from where it led);
    a loop ends in one line; ``exact`` (serve) refuses any symlink.  The resolved path
    is compared with os.path.realpath, the kernel's resolution."""
    from nsctl.ops.trusteddir import UntrustedDirectory, open_trusted_dir

    (place.good / "inner").mkdir(mode=0o755)
    (place.top / "rel").symlink_to("good/inner")
    (place.top / "abs").symlink_to(place.good / "inner")
    (place.top / "l1").symlink_to("l2")
    (place.top / "l2").symlink_to("l1")
    try:
        for path in (place.top / "rel", place.top / "abs", place.top / "rel" / "..",
                     place.top / "abs" / ".." / ".." / "good"):
            fd, where, _ = open_trusted_dir(str(path))
            try:
                assert where == os.path.realpath(path)
                assert os.fstat(fd).st_ino == os.stat(path).st_ino
            finally:
                os.close(fd)
        with pytest.raises(UntrustedDirectory, match="too many levels of symbolic links"):
            open_trusted_dir(str(place.top / "l1"))
        with pytest.raises(UntrustedDirectory, match=f"^{place.top / 'rel'}: a symbolic link; "):
            open_trusted_dir(str(place.top / "rel"), exact=True)
    finally:
        for name in ("rel", "abs", "l1", "l2"):
            (place.top / name).unlink()
        (place.good / "inner").rmdir()
