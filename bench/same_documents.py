"""Are the documents the same bytes as an older commit's?  ``same_documents.py OLD_REV``

Checks OLD_REV out into a temporary git worktree (its C extension compiled in place), takes
one snapshot of this host with this tree's code (``nsctl snapshot --views -o``), and has
both trees answer from it: the JSON documents and the text of ``ls``, ``tree``,
``pidtree``, ``net``, ``show`` (two namespaces of each type), ``lsns``, ``diff``, and the
service's API documents (built in Python by each tree's ``nsctl.serve.documents`` from
the same snapshot, encoded as the routes encode them).  Prints "same" or "DIFFERENT"
per document and exits 1 on any difference, 2 on trouble; removes everything it made.

Each tree runs as ``PYTHONPATH=<tree>/src python -m nsctl ...`` with this interpreter
(which needs the project's dependencies: run it with the project venv).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import REPO as HERE  # noqa: E402
from baseline import TIMEOUT, check_imports, checkout, tree_env

# Built inside each tree: the API documents as the routes write them (serve/app.py
# encodes with json.dumps; /namespaces is documents.ls_text of the snapshot document).
API_SCRIPT = r"""
import json, sys
from nsctl.documents.snapshot import load
from nsctl.serve import documents

path, specs = sys.argv[1], sys.argv[2:]
snap = load(path)
with open(path) as f:
    doc = json.load(f)
out = {}
def put(name, build):
    try:
        out[name] = json.dumps(build())
    except Exception as exc:  # the same failure in both trees is the same answer
        out[name] = f"error: {type(exc).__name__}: {exc}"
out["namespaces"] = documents.ls_text(doc).decode()
types = documents.check_types(["net,uts"])
chosen = set(documents.select(snap, types))
entries = [e for e in doc["namespaces"] if e["ns"] in chosen]
out["namespaces?type=net,uts"] = documents.ls_text(doc, entries).decode()
for spec in specs:
    put(f"namespaces/{spec}", lambda: documents.show(documents.find(spec, snap), snap))
put("tree", lambda: documents.tree(snap))
put("pidtree", lambda: documents.pidtree(snap))
put("net", lambda: documents.net(snap, snap.net_views or {}))
put("processes", lambda: documents.processes(snap))
put("diff", lambda: documents.diff(snap, snap))
json.dump(out, sys.stdout)
"""


def run(tree: Path, args: list[str], cwd: Path) -> tuple[int, bytes, bytes]:
    env = tree_env(tree, dict(os.environ, NO_COLOR="1"))
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def specs_of(snapshot: Path) -> list[str]:
    """Two namespaces of each type (the lowest inode, an initial one, and the highest,
    most likely one a program made), as type:[inode]."""
    with open(snapshot) as f:
        doc = json.load(f)
    inodes: dict[str, list[int]] = {}
    for ns in doc["namespaces"]:
        inodes.setdefault(ns["type"], []).append(ns["ns"])
    return [f"{t}:[{ino}]" for t, found in sorted(inodes.items())
            for ino in sorted({min(found), max(found)})]


def commands(snapshot: Path, specs: list[str]) -> list[tuple[str, list[str]]]:
    s = str(snapshot)
    out = [
        ("ls --json", ["ls", "--json", "--from", s]),
        ("ls -t net,uts --json", ["ls", "-t", "net,uts", "--json", "--from", s]),
        ("ls", ["ls", "--from", s]),
        ("tree --json", ["tree", "--json", "--from", s]),
        ("tree --pid --json", ["tree", "--pid", "--json", "--from", s]),
        ("tree", ["tree", "--from", s]),
        ("pidtree --json", ["pidtree", "--json", "--from", s]),
        ("pidtree", ["pidtree", "--from", s]),
        ("net --json", ["net", "--json", "--from", s]),
        ("net", ["net", "--from", s]),
        ("net --dot", ["net", "--dot", "--from", s]),
        ("lsns -J", ["lsns", "-J", "--from", s]),
        ("lsns", ["lsns", "--from", s]),
        ("diff --json", ["diff", s, s, "--json"]),
        ("diff", ["diff", s, s]),
        ("pid 1 --json", ["pid", "1", "--json"]),
        ("pid 1", ["pid", "1"]),
        ("ls -t bogus", ["ls", "-t", "bogus", "--from", s]),
    ]
    for spec in specs:
        out.append((f"show {spec} --json", ["show", spec, "--json", "--from", s]))
        out.append((f"show {spec}", ["show", spec, "--all", "--from", s]))
    return out


def compare(old: Path, new: Path, work: Path) -> int:
    snapshot = work / "snapshot.json"
    rc, out, err = run(new, ["-m", "nsctl", "snapshot", "--views", "-o", str(snapshot)], work)
    if rc != 0:
        sys.exit(f"same_documents: nsctl snapshot failed: {err.decode().strip()}")
    specs = specs_of(snapshot)
    differ = 0
    for name, argv in commands(snapshot, specs):
        a, b = run(old, ["-m", "nsctl", *argv], work), run(new, ["-m", "nsctl", *argv], work)
        same = a == b
        differ += not same
        note = "" if a[0] == 0 else f"  (exit {a[0]} in both)" if same else ""
        print(f"{'same' if same else 'DIFFERENT':<9}  {name}{note}")
        if not same:
            print(f"           old: exit {a[0]}, {len(a[1])} bytes, {a[2][:200]!r}")
            print(f"           new: exit {b[0]}, {len(b[1])} bytes, {b[2][:200]!r}")
    api = [run(tree, ["-c", API_SCRIPT, str(snapshot), *specs], work) for tree in (old, new)]
    for tree, (rc, _out, err) in zip((old, new), api, strict=True):
        if rc != 0:
            print(f"DIFFERENT  API documents: {tree} failed: {err.decode().strip()[-300:]}")
            return 1
    docs_old, docs_new = json.loads(api[0][1]), json.loads(api[1][1])
    for key in sorted(set(docs_old) | set(docs_new)):
        same = docs_old.get(key) == docs_new.get(key)
        differ += not same
        print(f"{'same' if same else 'DIFFERENT':<9}  GET /api/v1/{key}")
    return 1 if differ else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old_rev", metavar="OLD_REV")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nsctl-same-"))
    try:
        with checkout(args.old_rev, work / "old") as old:
            for tree in (old, HERE):
                check_imports(tree, work)
            return compare(old, HERE, work)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        print(f"same_documents: {' '.join(map(str, exc.cmd))} failed: {err.strip()[-300:]}",
              file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
