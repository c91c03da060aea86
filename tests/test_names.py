"""Display names (nsctl.discovery.names): the name a person knows a namespace by, shown
everywhere and taken back as a SPEC.

The namespaces are real: ``ip netns add`` under this session's tag (copied into a mount
namespace that unshare(1) makes after it), unshare(1) commands, helper processes that
name themselves (prctl) and unshare, bind mounts with hostile file names.  What nsctl
prints is checked against what the fixture made and read from the kernel.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from conftest import netns_tag
from support import namespaces, nsfacts, root_only
from support.cli import nsctl, ok, one_error
from support.processes import Channel, Child, comm
from support.syscalls import CLONE_NEWNET, CLONE_NEWUTS, bind_mount, libc, umount, unshare
from support.views import netns_add, netns_del

pytestmark = root_only


def ls_json(*args: str) -> dict[int, dict]:
    doc = json.loads(ok("ls", "--json", *args).stdout)
    return {n["ns"]: n for n in doc["namespaces"]}


@contextmanager
def ip_netns_copied() -> Iterator[tuple[str, int, namespaces.Command]]:
    """``ip netns add TAGblue``, then a mount namespace made after it (unshare -m), which
    holds a copy of the mount: (name, inode, the unshare command)."""
    name = f"{netns_tag()}blue"
    with ExitStack() as stack:
        path = netns_add(name)
        stack.callback(netns_del, name)
        cmd = stack.enter_context(namespaces.unshare_command(["--mount"]))
        yield name, os.stat(path).st_ino, cmd


def test_an_ip_netns_is_named_by_its_name_and_listed_once():
    with ip_netns_copied() as (name, ino, cmd):
        ours = nsfacts.link_ino("self", "mnt")
        theirs = nsfacts.link_ino(cmd.child, "mnt")
        assert ours != theirs
        entry = ls_json()[ino]
        assert entry["name"] == name
        # The JSON keeps every copy of the mount, one reference each.
        copies = {r["mntns"] for r in entry["refs"]
                  if r["kind"] == "bindmount" and r["path"] == f"/run/netns/{name}"}
        assert {ours, theirs} <= copies
        # What people read says it once, with the count.
        text = ok("show", name, "--no-view").stdout
        lines = text.splitlines()
        assert lines[0] == f"net:[{ino}] {name}"
        # (How many: other mount namespaces may come and go on this host meanwhile.)
        mentions = [line for line in lines if f"/run/netns/{name}" in line]
        assert len(mentions) == 1, text
        counted = re.fullmatch(rf"    bind mount /run/netns/{re.escape(name)} "
                               r"\(in (\d+) mount namespaces\)", mentions[0])
        assert counted is not None and int(counted.group(1)) >= 2, text
        row = [line for line in ok("ls", "-o", "NS,NAME,HOLDERS,MOUNTS").stdout.splitlines()
               if line.split()[0] == str(ino)]
        assert len(row) == 1 and f" {name} " in row[0]
        assert row[0].count(f"/run/netns/{name}") == 2   # HOLDERS once, MOUNTS once
        assert re.search(rf"/run/netns/{re.escape(name)}@\d+ mount namespaces", row[0])
        # In the tree too: once.
        tree = ok("tree").stdout
        assert tree.count(f"/run/netns/{name}") == 1
        assert f"net:[{ino}] {name}" in tree


def test_a_name_is_a_spec_for_show_enter_and_pin(scratch):
    with ip_netns_copied() as (name, ino, cmd):
        for spec in (name, f"{name}/net"):
            shown = json.loads(ok("show", spec, "--json", "--no-view").stdout)
            assert (shown["ns"], shown["name"]) == (ino, name)
        entered = ok("enter", name, "--", "readlink", "/proc/self/ns/net").stdout
        assert entered == f"net:[{ino}]\n"
        pin = scratch / "pinned"
        ok("pin", f"{name}/net", str(pin))
        try:
            assert os.stat(pin).st_ino == ino
        finally:
            ok("unpin", str(pin))
        # The unshare command's mount namespace: by its leading process, with /TYPE.
        lead = min(cmd.pid, cmd.child)
        mnt = nsfacts.link_ino(cmd.child, "mnt")
        by_proc = json.loads(ok("show", f"{comm(lead)}({lead})/mnt", "--json",
                                "--no-view").stdout)
        assert by_proc["ns"] == mnt and by_proc["name"] == f"{comm(lead)}({lead})"
        # A name without a namespace of that type: nothing is in the ip netns.
        err = one_error(nsctl("show", f"{name}/mnt"))
        assert "no process is in" in err and f"net:[{ino}]" in err


def _named_in_uts(chan: Channel, name: bytes) -> None:
    """Name ourselves ``name`` (raw bytes, as prctl takes them) in a uts namespace of our own."""
    libc.prctl(15, name, 0, 0, 0)   # PR_SET_NAME
    unshare(CLONE_NEWUTS)
    chan.send({"pid": os.getpid()})
    chan.wait_closed()


def test_a_process_led_namespace_is_comm_pid_and_ambiguous_names_are_refused():
    with Child(_named_in_uts, b"nm-lead") as a, Child(_named_in_uts, b"nm-lead") as b:
        pa, pb = a.ready()["pid"], b.ready()["pid"]
        found = ls_json()
        uts_a = nsfacts.link_ino(pa, "uts")
        assert found[uts_a]["name"] == f"nm-lead({pa})"
        shown = json.loads(ok("show", f"nm-lead({pa})", "--json", "--no-view").stdout)
        assert shown["ns"] == uts_a
        # Two processes, two names; a name several namespaces share is one line listing them.
        err = one_error(nsctl("show", "nm-lead"))
        assert f"nm-lead({pa})" in err and f"nm-lead({pb})" in err
    host = nsfacts.link_ino("self", "ipc")
    host_name = ls_json()[host]["name"]
    err = one_error(nsctl("show", host_name))
    assert "names" in err and f"ipc:[{host}]" in err and f"{host_name}/" in err
    assert json.loads(ok("show", f"{host_name}/ipc", "--json", "--no-view").stdout)["ns"] == host


def test_an_unknown_name_says_so_in_one_line():
    err = one_error(nsctl("show", f"{netns_tag()}no-such-name"))
    assert "cannot read" in err and "no namespace is named" in err


def test_namespaces_no_process_is_in_are_named_by_their_holder(scratch):
    with namespaces.netns_held_by_fd() as held, namespaces.netns_bindmount(scratch) as pinned, \
            namespaces.nested_userns(depth=2, keep="fd") as users:
        found = ls_json()
        by_fd = f"fd {held.fd} of {comm(held.holder)}({held.holder})"
        assert found[held.net.ino]["name"] == by_fd
        assert found[pinned.net.ino]["name"] == pinned.path
        inner, outer = users.levels[-1], users.levels[0]
        inner_name = f"fd {users.holder_fd} of {comm(users.holder)}({users.holder})"
        assert found[inner.ino]["name"] == inner_name
        # Kept alive only by its child: named after it, and said so where it is shown.
        assert found[outer.ino]["hidden"] is True
        assert found[outer.ino]["name"] == f"parent of {inner_name}"
        text = ok("show", f"user:[{outer.ino}]", "--no-view").stdout
        assert f"child user {inner_name}" in text
        for spec, ino in ((by_fd, held.net.ino), (pinned.path, pinned.net.ino)):
            got = json.loads(ok("show", spec, "--json", "--no-view").stdout)
            assert got["ns"] == ino


def test_a_number_that_is_a_pid_and_an_id_is_ambiguous():
    found = ls_json()
    by_id = {n["id"]: n for n in found.values() if n["id"] is not None}
    both = sorted(i for i in by_id if os.path.exists(f"/proc/{i}"))
    if not both:
        pytest.skip("no namespace id here is also a live PID")
    number = both[0]
    err = one_error(nsctl("show", str(number)))
    assert "ambiguous" in err and f"{number}/TYPE" in err
    label = f"{by_id[number]['type']}:[{by_id[number]['ns']}]"
    assert label in err
    assert json.loads(ok("show", label, "--json", "--no-view").stdout)["ns"] == by_id[number]["ns"]


def test_a_pid_that_names_no_namespace_suggests_pid_type():
    pid = os.getpid()
    found = ls_json()
    if any(n["id"] == pid for n in found.values()):
        pytest.skip("our PID is a namespace id too")
    err = one_error(nsctl("show", str(pid)))
    assert f"{pid} is a PID: write {pid}/TYPE" in err


def test_show_help_lists_every_spec_form():
    text = " ".join(ok("show", "--help").stdout.split())
    for form in ("display name", "type:[inode]", "inode", "NS_GET_ID id", "PID/TYPE",
                 "container:NAME-OR-ID/TYPE", "stable path", "path to a namespace file",
                 "web/net"):
        assert form in text, form


# --- hostile names ------------------------------------------------------------------------------

HOSTILE_COMM = b'\x1b[31m"q\\\n\t\xff'   # escape, quote, backslash, newline, tab, not UTF-8


def test_hostile_names_never_break_json_or_the_table(scratch):
    long_name = "é\"\\ x\n" + "L" * 230   # a quote, a backslash, a newline, 236 characters
    point = scratch / long_name
    with ExitStack() as stack:
        named = stack.enter_context(Child(_named_in_uts, HOSTILE_COMM))
        pid = named.ready()["pid"]
        uts = nsfacts.link_ino(pid, "uts")
        held = stack.enter_context(Child(namespaces.unshare_and_wait, CLONE_NEWNET))
        maker = held.ready()["pid"]
        point.touch()
        stack.callback(point.unlink)
        bind_mount(f"/proc/{maker}/ns/net", point)
        stack.callback(umount, point)
        net = nsfacts.link_ino(maker, "net")
        held.stop()   # now only the bind mount holds it
        with open(f"/proc/{pid}/comm", "rb") as f:
            raw_comm = f.read().rstrip(b"\n")
        proc = nsctl("ls", "--json")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr
        found = {n["ns"]: n for n in json.loads(proc.stdout)["namespaces"]}
        assert found[uts]["name"] == raw_comm.decode(errors="surrogateescape") + f"({pid})"
        assert found[net]["name"] == str(point)
        # The table: one line per namespace, no raw control character.
        table = ok("ls", "-o", "NS,NAME").stdout
        rows = [line for line in table.splitlines() if line.split()[0] in (str(uts), str(net))]
        assert len(rows) == 2, table
        assert all(ch not in table for ch in "\x1b\t\r"), table
        assert "\\x1b" in table and "\\x0a" in table
        # Taken back as SPECs, exactly as the JSON gave them.
        by_comm = nsctl("show", found[uts]["name"], "--json", "--no-view")
        assert json.loads(by_comm.stdout)["ns"] == uts, by_comm.stderr
        shown = nsctl("show", str(point), "--json", "--no-view")
        assert json.loads(shown.stdout)["ns"] == net
        text = ok("show", f"uts:[{uts}]", "--no-view").stdout
        assert "\x1b" not in text and "\\x1b[31m" in text
        tree = ok("tree").stdout
        assert "\x1b" not in tree and "\\x1b" in tree


# --- where names come from ----------------------------------------------------------------------

def test_a_snapshot_without_names_gets_them_when_loaded(scratch):
    with ip_netns_copied() as (name, ino, _cmd):
        path = scratch / "snap.json"
        assert nsctl("snapshot", "-o", str(path)).returncode == 0
        doc = json.loads(path.read_text())
        named = {n["ns"]: n["name"] for n in doc["namespaces"]}
        assert named[ino] == name
        for n in doc["namespaces"]:
            del n["name"]
        path.write_text(json.dumps(doc))
        again = json.loads(ok("ls", "--json", "--from", str(path)).stdout)
        assert {n["ns"]: n["name"] for n in again["namespaces"]} == named
        assert json.loads(ok("show", name, "--json", "--from", str(path)).stdout)["ns"] == ino


def test_incremental_rescans_name_what_they_find():
    from nsctl.discovery import rescan

    snap, memo, _complete = rescan(None)
    assert all(ns.name for ns in snap.namespaces.values())
    with ip_netns_copied() as (name, ino, cmd):
        snap, memo, _complete = rescan(memo, {cmd.pid, cmd.child})
        assert snap.namespaces[ino].name == name
        assert all(ns.name for ns in snap.namespaces.values())


def test_watch_and_diff_name_namespaces(scratch):
    from nsctl import discover
    from nsctl.timeline.watch import events_between

    a, b = scratch / "a.json", scratch / "b.json"
    assert nsctl("snapshot", "-o", str(a)).returncode == 0
    before = discover()
    with ip_netns_copied() as (name, ino, _cmd):
        assert nsctl("snapshot", "-o", str(b)).returncode == 0
        after = discover()
    events = events_between(before, after)
    born = [e for e in events if e["event"] == "born" and e["ns"] == ino]
    assert [e["name"] for e in born] == [name]
    # Recorded, and found again by that name.
    from nsctl.timeline.history import Recorder

    db = scratch / "history.db"
    recorder = Recorder(str(db))
    try:
        recorder.events(events)
    finally:
        recorder.close()
    found = [json.loads(line) for line in
             ok("history", name, "--db", str(db), "--json").stdout.splitlines()]
    assert [(e["event"], e["ns"]) for e in found] == [("born", ino)]
    line = ok("history", name, "--db", str(db)).stdout
    assert f" born      net:[{ino}] {name} id " in line
    proc = nsctl("diff", str(a), str(b))
    assert proc.returncode == 1, proc.stderr
    assert any(line.startswith(f"+ net:[{ino}] {name} id ") for line in proc.stdout.splitlines())
    doc = json.loads(nsctl("diff", str(a), str(b), "--json").stdout)
    assert [d["name"] for d in doc["appeared"] if d["ns"] == ino] == [name]
