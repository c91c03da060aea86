"""PID namespaces: pidtree, PID translation (nsctl pid and the library), init and status,
pending pid_for_children, and the errors users can make.

The topologies come from :mod:`support.pid`; every
expected value is what the kernel itself says: NSpid/NStgid of
/proc/PID/status, os.stat of /proc/PID/ns/pid, NS_GET_PARENT, /proc/PID/stat.
nsctl's answers are compared with those, never with what nsctl computed.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import support
from support import nsfacts, syscalls
from support import pid as pt

import nsctl
from nsctl.kernel.errors import NoSuchProcess
from nsctl.kernel.pidns import NotVisible
from nsctl.query import pidmap as pidns
from nsctl.query.spec import resolve

pytestmark = support.root_only

VIAS = ["ioctl", "proc"]


# --- running nsctl ---------------------------------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsctl", *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def ok(*args: str) -> str:
    proc = run(*args)
    assert proc.returncode == 0, (args, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def ok_json(*args: str):
    return json.loads(ok(*args, "--json"))


def pid_cli(*args, via: str) -> int:
    """`nsctl pid ARGS --via VIA` with --to: one number on stdout."""
    out = ok("pid", *args, "--via", via)
    assert out.endswith("\n") and out.count("\n") == 1, out
    return int(out)


def error_line(proc: subprocess.CompletedProcess, codes=(1,)) -> str:
    """The one error line of a failed command (the partial-result warning aside)."""
    assert proc.returncode in codes, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines()
             if not ln.startswith("nsctl: partial result")]
    if proc.returncode == 2 and any(": error: " in ln for ln in lines):
        # argparse: its usage text, then one "PROG: error: ..." line (nsctl's own usage
        # errors, also exit 2, are one "nsctl: ..." line)
        lines = [ln for ln in lines if ": error: " in ln]
    assert len(lines) == 1, proc.stderr
    assert lines[0].strip(), proc.stderr
    return lines[0]


def own_pidns() -> nsfacts.NsFacts:
    return nsfacts.facts("/proc/self/ns/pid")


def own_level() -> int:
    """Our PID namespace's level, from the kernel: NS_GET_PARENT steps up to our top."""
    return len(nsfacts.ancestry("/proc/self/ns/pid")) - 1


# --- walking pidtree --json ------------------------------------------------------------------

def ns_nodes(forest: list[dict]) -> dict[int, dict]:
    """Every namespace node of the tree, by inode (each must appear once)."""
    out: dict[int, dict] = {}
    todo = list(forest)
    while todo:
        node = todo.pop()
        assert node["ns"] not in out, f"pid:[{node['ns']}] twice in the tree"
        out[node["ns"]] = node
        todo.extend(node["children"])
    return out


def proc_nodes(ns_node: dict) -> dict[int, tuple[dict, int | None]]:
    """Every process node of one namespace: pid -> (node, pid of the node it nests under)."""
    out: dict[int, tuple[dict, int | None]] = {}
    todo = [(p, None) for p in ns_node["processes"]]
    while todo:
        node, parent = todo.pop()
        assert node["pid"] not in out, node
        out[node["pid"]] = (node, parent)
        todo.extend((k, node["pid"]) for k in node["children"])
    return out


def pidtree_json(*args: str) -> list[dict]:
    doc = ok_json("pidtree", *args)
    assert set(doc) >= {"pid_namespaces", "partial"}, doc.keys()
    return doc["pid_namespaces"]


# --- 1. three levels deep: pidtree, levels, inits ---------------------------------------------

def test_pidtree_three_levels_deep():
    with pt.pid_tree() as t:
        # The fixture's own view: NS_GET_PARENT links, NSpid lengths, the inits.
        ns = t.ns
        assert [ns[n].parent for n in ("L1", "L2", "L3", "L2b")] == \
            [ns["L0"].ino, ns["L1"].ino, ns["L2"].ino, ns["L1"].ino]
        base = own_level()
        assert [t.tasks[r].level - base for r in ("M", "I1", "I2", "I3", "S2")] == [0, 1, 2, 3, 2]

        forest = pidtree_json()
        nodes = ns_nodes(forest)
        top = nodes[ns["L0"].ino]
        assert top in forest, "our own PID namespace is not a root of the tree"
        kids = {name: {c["ns"] for c in nodes[ns[name].ino]["children"]}
                for name in ("L1", "L2", "L3", "L2b")}
        assert ns["L1"].ino in {c["ns"] for c in top["children"]}
        assert kids == {"L1": {ns["L2"].ino, ns["L2b"].ino}, "L2": {ns["L3"].ino},
                        "L3": set(), "L2b": set()}

        by_pid = {tk.pid: tk for tk in t.tasks.values()}
        by_ns: dict[str, list[pt.Task]] = {}
        for task in t.tasks.values():
            name = next(n for n, f in ns.items() if f.ino == task.ns.ino)
            by_ns.setdefault(name, []).append(task)
        for name, tasks in by_ns.items():
            node = nodes[ns[name].ino]
            level = len(nsfacts.ancestry(f"/proc/{tasks[0].pid}/ns/pid")) - 1
            assert node["level"] == level, (name, node)
            assert node["parent"] == ns[name].parent, name
            assert node["status"] == "active", name
            if name == "L0":
                assert node["level"] == base
                assert node["init"] == 1 and nsfacts.nspid(1)[-1] == 1
            else:
                inits = [tk for tk in tasks if tk.nspid[-1] == 1]
                assert len(inits) == 1, tasks
                init = inits[0]
                assert node["init"] == init.pid, name
                assert node["init_state"] == pt.stat_fields(init.pid)[0], name
                assert node["nprocs"] == len(tasks), name   # the namespace is ours alone
            procs = proc_nodes(node)
            if name != "L0":
                assert set(procs) == {tk.pid for tk in tasks}, name
            for task in tasks:
                pnode, nested_under = procs[task.pid]
                assert pnode["nspid"] == task.nspid, task.role
                assert pnode["init"] == (task.nspid[-1] == 1), task.role
                assert pnode["pid_for_children"] == task.pid_for_children, task.role
                parent = by_pid.get(task.ppid)
                if parent is not None and parent.ns.ino == task.ns.ino:
                    assert nested_under == task.ppid, task.role   # under its parent
                elif name != "L0":
                    assert nested_under is None, task.role        # parent outside: a root

        # children_elsewhere: the processes whose pid_for_children is another namespace.
        for name in ("L1", "L2", "L3", "L2b"):
            want = sorted(tk.pid for tk in by_ns[name]
                          if tk.pid_for_children not in (None, tk.ns.ino))
            assert nodes[ns[name].ino]["children_elsewhere"] == want, name
        assert t.pid("M") in top["children_elsewhere"]

        # --ns: only that namespace and what is below it, by type:[inode] or by path.
        sub = pidtree_json("--ns", t.spec("L1"))
        assert [n["ns"] for n in sub] == [ns["L1"].ino]
        assert set(ns_nodes(sub)) == {ns[n].ino for n in ("L1", "L2", "L3", "L2b")}
        sub = pidtree_json("--ns", f"/proc/{t.pid('W2')}/ns/pid")
        assert set(ns_nodes(sub)) == {ns["L2"].ino, ns["L3"].ino}

        # The drawing: every process with its PID at every level.
        text = ok("pidtree", "--ns", t.spec("L1"))
        for task in t.tasks.values():
            if task.role != "M":
                assert f"tp{task.role} ({'/'.join(map(str, task.nspid))})" in text, task.role
        assert f"pid:[{ns['L3'].ino}]" in text


def test_show_pid_namespace():
    with pt.pid_tree() as t:
        i2 = t.tasks["I2"]
        doc = ok_json("show", t.spec("L2"))
        info = doc["pid_namespace"]
        assert info["ns"] == t.ns["L2"].ino and info["parent"] == t.ns["L1"].ino
        assert info["level"] == own_level() + 2
        assert info["init"] == i2.pid and info["status"] == "active"
        assert info["children_elsewhere"] == [i2.pid] and info["pending"] == []
        assert sorted(p["pid"] for p in doc["processes"]) == \
            sorted([i2.pid, t.pid("W2")])
        assert {p["pid"]: p["nspid"] for p in doc["processes"]} == \
            {i2.pid: i2.nspid, t.pid("W2"): t.tasks["W2"].nspid}
        rows = show_rows(ok("show", t.spec("L2")))
        assert rows["level"] == str(own_level() + 2)
        assert rows["status"] == "active"
        assert rows["init"] == f"tpI2 ({i2.pid}) {pt.stat_fields(i2.pid)[0]}"
        assert rows.get("forks into") == f"{i2.pid} -> {t.spec('L3')}", rows


def show_rows(text: str) -> dict[str, str]:
    """`nsctl show` text: the "  label: value" lines (label and value apart by blanks)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^  ([a-z][a-z ]*):\s+(\S.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


# --- 2. translation: nsctl pid and the library, via the ioctls and via /proc ----------------

@pytest.mark.parametrize("via", VIAS)
def test_translate_down(via):
    """Our PID -> the PID in a child, grandchild, great-grandchild namespace."""
    with pt.pid_tree() as t:
        snap = nsctl.discover()
        names = ("L0", "L1", "L2", "L3")
        for role in ("W3", "I3", "W2", "S1"):
            task = t.tasks[role]
            for k, name in enumerate(names[:task.level + 1]):
                assert pid_cli(task.pid, "--to", t.spec(name), via=via) == task.nspid[k], \
                    (role, name)
                assert pidns.translate(task.pid, snap, to_ns=snap.namespaces[t.ns[name].ino],
                                       via=via) == task.nspid[k], (role, name)
                assert pidns.from_ours(task.pid, snap.namespaces[t.ns[name].ino], snap,
                                       via=via) == task.nspid[k]
        # From the middle on down: W3's PID in L1 -> its PID in L3.
        w3 = t.tasks["W3"]
        assert pid_cli(w3.nspid[1], "--from", t.spec("L1"), "--to", t.spec("L3"), via=via) \
            == w3.nspid[3]
        assert pidns.translate(w3.nspid[1], snap, snap.namespaces[t.ns["L1"].ino],
                               snap.namespaces[t.ns["L3"].ino], via=via) == w3.nspid[3]
        # Without --to: the PID at every level, namespaces from the kernel's NS_GET_PARENT.
        doc = ok_json("pid", w3.pid, "--via", via)
        chain = [f.ino for f in reversed(w3.chain)]
        base = own_level()
        assert [{k: v for k, v in lv.items() if k != "name"} for lv in doc["levels"]] == \
            [{"ns": chain[base + i], "level": base + i, "pid": p} for i, p in enumerate(w3.nspid)]
        names = {ns.ino: ns.name for ns in snap.namespaces.values()}
        assert [lv["name"] for lv in doc["levels"]] == [names[i] for i in chain[base:]]
        assert pidns.levels_of(w3.pid, snap) == list(zip(chain[base:], w3.nspid, strict=True))


@pytest.mark.parametrize("via", VIAS)
def test_translate_up(via):
    """A PID inside the innermost namespace -> ours, and the ones in between."""
    with pt.pid_tree() as t:
        snap = nsctl.discover()
        l3 = snap.namespaces[t.ns["L3"].ino]
        for role in ("W3", "I3"):
            task = t.tasks[role]
            inner = task.nspid[-1]
            for k, name in enumerate(("L0", "L1", "L2", "L3")):
                assert pid_cli(inner, "--from", t.spec("L3"), "--to", t.spec(name), via=via) \
                    == task.nspid[k], (role, name)
                assert pidns.translate(inner, snap, from_ns=l3,
                                       to_ns=snap.namespaces[t.ns[name].ino],
                                       via=via) == task.nspid[k], (role, name)
            assert pidns.translate(inner, snap, from_ns=l3, via=via) == task.pid
            assert pidns.to_ours(inner, l3, snap, via=via) == task.pid
            doc = ok_json("pid", inner, "--from", t.spec("L3"), "--via", via)
            assert [lv["pid"] for lv in doc["levels"]] == task.nspid
            assert doc["levels"][-1]["ns"] == t.ns["L3"].ino
        # PID 1 there is that namespace's init, and nothing else.
        assert pid_cli(1, "--from", t.spec("L3"), "--to", t.spec("L0"), via=via) == t.pid("I3")
        assert pid_cli(1, "--from", t.spec("L2"), "--to", t.spec("L1"), via=via) == \
            t.tasks["I2"].nspid[1]


@pytest.mark.parametrize("via", VIAS)
def test_translate_sideways_is_not_visible(via):
    """A process is visible in its own PID namespace and its ancestors only: not from a
    sibling (L2 and L2b are both children of L1), nor from a child."""
    with pt.pid_tree() as t:
        snap = nsctl.discover()
        s2, w2, w3 = t.tasks["S2"], t.tasks["W2"], t.tasks["W3"]
        assert s2.ns.parent == w2.ns.parent and s2.ns.ino != w2.ns.ino
        cases = [
            ((s2.pid, "--to", t.spec("L2")), s2.pid, None, "L2"),
            ((w2.pid, "--to", t.spec("L2b")), w2.pid, None, "L2b"),
            ((w3.pid, "--to", t.spec("L2b")), w3.pid, None, "L2b"),
            ((1, "--from", t.spec("L2b"), "--to", t.spec("L3")), 1, "L2b", "L3"),
            ((t.pid("I1"), "--to", t.spec("L2")), t.pid("I1"), None, "L2"),   # a parent
        ]
        for args, pid, from_name, to_name in cases:
            line = error_line(run("pid", *args, "--via", via))
            assert "not visible" in line, (args, line)
            from_ns = snap.namespaces[t.ns[from_name].ino] if from_name else None
            with pytest.raises(NotVisible):
                pidns.translate(pid, snap, from_ns, snap.namespaces[t.ns[to_name].ino],
                                via=via)
        # Upwards it is visible: S2 in L1, their common parent.
        assert pid_cli(s2.pid, "--to", t.spec("L1"), via=via) == s2.nspid[1]


@pytest.mark.parametrize("via", VIAS)
def test_translate_from_namespace_named_by_path(via, scratch):
    """--from/--to as a bind mount of a pid namespace file, /proc/PID/ns/pid, PID/pid."""
    with pt.pid_tree() as t:
        w2, w3 = t.tasks["W2"], t.tasks["W3"]
        pin = scratch / "pidns-L2"
        pin.touch()
        syscalls.bind_mount(f"/proc/{t.pid('I2')}/ns/pid", pin)
        try:
            assert os.stat(pin).st_ino == t.ns["L2"].ino
            assert pid_cli(w2.nspid[2], "--from", pin, "--to", t.spec("L0"), via=via) == w2.pid
            assert pid_cli(w3.pid, "--to", pin, via=via) == w3.nspid[2]
            proc_path = f"/proc/{t.pid('I3')}/ns/pid"
            assert pid_cli(w3.nspid[3], "--from", proc_path, "--to", pin, via=via) == \
                w3.nspid[2]
            assert pid_cli(w3.pid, "--to", f"{t.pid('W3')}/pid", via=via) == w3.nspid[3]
            snap = nsctl.discover()
            from_ns, to_ns = resolve(proc_path, snap), resolve(str(pin), snap)
            assert (from_ns.ino, to_ns.ino) == (t.ns["L3"].ino, t.ns["L2"].ino)
            assert pidns.translate(w3.nspid[3], snap, from_ns, to_ns, via=via) == w3.nspid[2]
            assert pidns.translate(w2.nspid[2], snap, to_ns, via=via) == w2.pid
        finally:
            syscalls.umount(pin)


@pytest.mark.parametrize("via", VIAS)
def test_translate_threads(via):
    """A TID inside a namespace; --tgid gives its process's ID instead."""
    with pt.pid_tree() as t:
        th, w3 = t.thread, t.tasks["W3"]
        assert th.nstgid == w3.nspid and th.pid != w3.pid
        snap = nsctl.discover()
        l3 = snap.namespaces[t.ns["L3"].ino]
        for k, name in enumerate(("L0", "L1", "L2", "L3")):
            to_ns = snap.namespaces[t.ns[name].ino]
            # down from ours
            assert pid_cli(th.pid, "--to", t.spec(name), via=via) == th.nspid[k], name
            assert pid_cli(th.pid, "--to", t.spec(name), "--tgid", via=via) == th.nstgid[k]
            assert pidns.translate(th.pid, snap, to_ns=to_ns, via=via) == th.nspid[k]
            assert pidns.translate(th.pid, snap, to_ns=to_ns, tgid=True, via=via) == \
                th.nstgid[k]
            # up from the innermost
            assert pid_cli(th.nspid[3], "--from", t.spec("L3"), "--to", t.spec(name),
                           via=via) == th.nspid[k], name
            assert pid_cli(th.nspid[3], "--from", t.spec("L3"), "--to", t.spec(name),
                           "--tgid", via=via) == th.nstgid[k], name
            assert pidns.translate(th.nspid[3], snap, l3, to_ns, tgid=True, via=via) == \
                th.nstgid[k]
        doc = ok_json("pid", th.nspid[3], "--from", t.spec("L3"), "--via", via)
        assert [lv["pid"] for lv in doc["levels"]] == th.nspid
        doc = ok_json("pid", th.pid, "--tgid", "--via", via)
        assert [lv["pid"] for lv in doc["levels"]] == th.nstgid


@pytest.mark.parametrize("via", VIAS)
def test_no_such_pid_in_namespace(via):
    with pt.pid_tree() as t:
        missing = 4000   # L3 holds PIDs 1 and 2 (and the thread): nothing near this
        assert all(missing not in tk.nspid for tk in t.tasks.values())
        line = error_line(run("pid", missing, "--from", t.spec("L3"), "--via", via))
        assert str(missing) in line
        snap = nsctl.discover()
        with pytest.raises(NoSuchProcess):
            pidns.to_ours(missing, snap.namespaces[t.ns["L3"].ino], snap, via=via)


# --- 3. init and status: active, dying, dead --------------------------------------------------

@pytest.mark.parametrize("how", ["bindmount", "fd"])
def test_pidns_active_then_dead(how, scratch):
    with pt.pinned_pidns(scratch, how=how) as pin:
        ino = pin.ns.ino
        assert nsfacts.nspid(pin.init)[-1] == 1 and nsfacts.nspid(pin.other)[-1] == 2
        snap = nsctl.discover()
        info = pidns.pid_namespaces(snap)[ino]
        assert (info.status, info.init) == ("active", pin.init)
        assert info.init_state == pt.stat_fields(pin.init)[0]
        assert info.pids == sorted([pin.init, pin.other])
        assert info.level == own_level() + 1

        pin.kill()
        for pid in (pin.init, pin.other):
            assert not os.path.exists(f"/proc/{pid}"), pid
        if how == "bindmount":
            assert os.stat(pin.path).st_ino == ino
        else:
            assert os.stat(f"/proc/{pin.holder}/fd/{pin.holder_fd}").st_ino == ino

        snap = nsctl.discover()
        info = pidns.pid_namespaces(snap)[ino]
        assert (info.status, info.init, info.pids) == ("dead", None, [])
        node = ns_nodes(pidtree_json())[ino]
        assert (node["status"], node["init"], node["nprocs"], node["processes"]) == \
            ("dead", None, 0, [])
        assert node["level"] == own_level() + 1 and node["parent"] == pin.ns.parent
        rows = show_rows(ok("show", f"pid:[{ino}]"))
        assert (rows["status"], rows["init"]) == ("dead", "-"), rows
        # Nothing is in it any more, and none of ours ever was.
        line = error_line(run("pid", os.getpid(), "--to", f"pid:[{ino}]"))
        assert "not visible" in line
        assert error_line(run("pid", 1, "--from", f"pid:[{ino}]"))


def test_a_pid_namespace_without_init_is_asked_again_only_when_what_shows_of_it_changes(
        scratch, monkeypatch):
    """A watcher's document per change remembers (NoInits) which PID namespaces the
    kernel said have no init: with it the answers are those of asking anew; a dead
    namespace is not asked again while its references, its processes and the
    processes that refused us stay the same, and is asked once any of them changes."""
    from nsctl.model import Problem

    asked: list[int] = []
    real = pidns._find_init

    def find_init(ns, snap):
        asked.append(ns.ino)
        return real(ns, snap)

    monkeypatch.setattr(pidns, "_find_init", find_init)
    with pt.pinned_pidns(scratch, how="fd") as pin:
        ino = pin.ns.ino
        memo = pidns.NoInits()

        def both(snap):
            plain = {k: v.to_dict() for k, v in pidns.pid_namespaces(snap).items()}
            asked.clear()
            remembered = {k: v.to_dict() for k, v in pidns.pid_namespaces(snap, memo).items()}
            assert remembered == plain
            return remembered[ino], ino in asked

        info, _asked = both(nsctl.discover())
        assert (info["status"], info["init"]) == ("active", pin.init)
        pin.kill()
        snap = nsctl.discover()
        info, was_asked = both(snap)
        assert (info["status"], info["init"]) == ("dead", None) and was_asked
        info, was_asked = both(nsctl.discover())
        assert (info["status"], info["init"]) == ("dead", None) and not was_asked
        # A process that refused us may be its init: asked again.
        snap.problems.append(Problem("denied", "pid 4000000: processes: Permission denied",
                                     4000000))
        info, was_asked = both(snap)
        assert info["status"] == "dead" and was_asked


def test_pidns_dying(scratch):
    """Init exited, one process left in it (stuck in an unanswered FUSE request): the
    kernel has the init exiting (PF_EXITING, namespaces released) and waiting for it."""
    with pt.dying_pidns(scratch) as d:
        assert pt.is_exiting(d.init) and not os.path.exists(f"/proc/{d.init}/ns/net")
        assert nsfacts.link_ino(d.stuck, "pid") == d.ns.ino
        assert not pt.is_exiting(d.stuck) and pt.stat_fields(d.stuck)[0] == "D"
        snap = nsctl.discover()
        info = pidns.pid_namespaces(snap)[d.ns.ino]
        assert info.pids == [d.stuck]
        assert info.status == "dying", info.to_dict()
        assert info.init is None, info.to_dict()
        node = ns_nodes(pidtree_json())[d.ns.ino]
        assert (node["status"], node["init"], node["nprocs"]) == ("dying", None, 1)
        procs = proc_nodes(node)
        assert list(procs) == [d.stuck] and procs[d.stuck][0]["nspid"] == d.stuck_nspid


# --- 4. unshare(CLONE_NEWPID) without fork: pending pid_for_children ---------------------------

def test_pid_for_children_pending_then_forked():
    with pt.pending_pidns() as p:
        own = own_pidns()
        # The kernel shows no pid_for_children until the new namespace has its init.
        with pytest.raises(FileNotFoundError):
            os.readlink(f"/proc/{p.pid}/ns/pid_for_children")
        assert nsfacts.link_ino(p.pid, "pid") == own.ino

        snap = nsctl.discover()
        proc = snap.processes[p.pid]
        assert proc.pidns_pending is True and "pid_for_children" not in proc.ns
        info = pidns.pid_namespaces(snap)[own.ino]
        assert p.pid in info.pending and p.pid not in info.children_elsewhere
        node = ns_nodes(pidtree_json())[own.ino]
        assert p.pid in node["pending"]
        assert proc_nodes(node)[p.pid][0]["pid_for_children"] is None
        pending = show_rows(ok("show", f"pid:[{own.ino}]"))["pending"]
        assert str(p.pid) in pending.partition(" unshared")[0].split(", "), pending

        p.fork()
        child = pt.task_facts("C", p.child)
        assert child.ns.parent == own.ino and child.nspid[-1] == 1
        assert nsfacts.link_ino(p.pid, "pid_for_children") == child.ns.ino

        snap = nsctl.discover()
        proc = snap.processes[p.pid]
        assert proc.pidns_pending is False
        assert proc.ns["pid_for_children"] == child.ns.ino
        infos = pidns.pid_namespaces(snap)
        assert p.pid in infos[own.ino].children_elsewhere
        assert p.pid not in infos[own.ino].pending
        new = infos[child.ns.ino]
        assert (new.init, new.status, new.pids) == (child.pid, "active", [child.pid])
        assert new.level == own_level() + 1
        node = ns_nodes(pidtree_json())[own.ino]
        assert p.pid in node["children_elsewhere"] and p.pid not in node["pending"]
        assert proc_nodes(node)[p.pid][0]["pid_for_children"] == child.ns.ino


# --- 5. errors: one line, exit 1 (2 for usage), never a traceback ----------------------------

def _errors() -> list[tuple[list[str], tuple[int, ...]]]:
    net = f"net:[{os.stat('/proc/self/ns/net').st_ino}]"
    return [
        (["pid", "99999999"], (1,)),
        (["pid", "abc"], (1, 2)),
        (["pid", "0"], (1, 2)),
        (["pid", "-5"], (1, 2)),
        (["pid", "1", "--to", net], (1,)),
        (["pid", "1", "--from", net], (1,)),
        (["pid", "1", "--to", "pid:[1]"], (1,)),
        (["pid", "1", "--to", "nonsense"], (1,)),
        (["pid", "1", "--via", "bogus"], (2,)),
        (["pidtree", "--ns", "nonsense"], (1,)),
        (["pidtree", "--ns", net], (1,)),
        (["pidtree", "--ns", "pid:[1]"], (1,)),
    ]


@pytest.mark.parametrize("argv,codes", _errors(), ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_errors_are_one_line(argv, codes):
    proc = run(*argv)
    line = error_line(proc, codes)
    assert proc.stdout == ""
    if proc.returncode == 1:
        assert line.startswith("nsctl: "), line


def test_pid_of_a_process_that_refuses_root():
    """Reading /proc/PID/ns/* can be refused even to root (EACCES, seed 000): normal,
    and no reason to fail `nsctl pid PID` for a PID whose NSpid is readable."""
    target = 1
    try:
        os.readlink(f"/proc/{target}/ns/pid")
        pytest.skip("PID 1 lets us read its namespace links here")
    except PermissionError:
        pass
    levels = nsfacts.nspid(target)
    assert len(levels) == 1, "PID 1 is in our own PID namespace"
    proc = run("pid", target)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"pid:[{own_pidns().ino}]", "level", str(own_level()), "1"]
    # The text answer takes no scan of the host, so the process no one may read is no
    # gap in it: no "partial result" line (the JSON, which names namespaces, scans).
    assert proc.stderr == ""
    assert "partial result" in run("pid", target, "--json").stderr
    # show opens a SPEC it can before scanning: a wrong one is its one error line.
    proc = run("show", "/run/netns/nsctl-test-no-such-name")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "No such file" in proc.stderr
    with pt.pid_tree() as t:
        w3 = t.tasks["W3"]
        for args, expected in [((w3.pid, "--to", t.spec("L3")), [str(w3.nspid[3])]),
                               ((w3.nspid[3], "--from", f"{t.pid('I3')}/pid"), None)]:
            proc = run("pid", *args)
            assert (proc.returncode, proc.stderr) == (0, ""), args
            if expected:
                assert proc.stdout.split() == expected
            else:
                assert [line.split()[-1] for line in proc.stdout.splitlines()] == \
                    [str(p) for p in w3.nspid]
