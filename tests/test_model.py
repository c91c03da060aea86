"""The model's records: one field table per class, and every form built from it.

A reference, namespace, process or container goes through the forms that
leave the process (the row workers marshal, the dict form a snapshot keeps)
and comes back the same; references that compare equal hash equal.  Run on
this host's real discovery.
"""
from __future__ import annotations

import inspect
import json
import marshal
import subprocess
import sys

import pytest

import nsctl
from nsctl.model import REF_FIELDS, Container, Namespace, Process, Reference, Snapshot


@pytest.fixture(scope="module")
def snap():
    return nsctl.discover()


def test_references_that_compare_equal_hash_equal():
    """Equality looks at a kind's own fields; so does the hash, or a set or dict would
    keep two equal references apart."""
    live = Reference("process", pid=1, link="net")
    stray = Reference("process", pid=1, link="net", fd=3)   # a field a process reference lacks
    assert live == stray
    assert hash(live) == hash(stray)
    assert len({live, stray}) == 1
    assert Reference("fd", pid=1, fd=3) != Reference("socket", pid=1, fd=3)
    assert Reference("thread", pid=1, tid=2, link="uts") != Reference("thread", pid=1, tid=3,
                                                                      link="uts")


def test_every_kind_of_reference_comes_back_from_its_row_and_dict():
    for kind, keys in REF_FIELDS.items():
        values = {"pid": 7, "tid": 8, "fd": 3, "link": "net", "socket": 99, "path": "/run/x",
                  "mntns": 5, "child": 6, "relation": "owner"}
        ref = Reference(kind, **{k: values[k] for k in keys})
        assert list(ref.to_dict()) == ["kind", *keys]
        assert Reference(*marshal.loads(marshal.dumps(ref.row()))) == ref
        assert Reference(**ref.to_dict()) == ref
        text = ref.json_text()
        if text is not None:
            assert text == json.dumps(ref.to_dict(), separators=(",", ":"))


def test_a_real_scan_comes_back_from_rows_and_dicts(snap):
    assert snap.namespaces and snap.processes
    for ns in snap.namespaces.values():
        row = marshal.loads(marshal.dumps(ns.row()))
        assert Namespace(*row).row() == ns.row()
        assert Namespace.from_dict(json.loads(json.dumps(ns.to_dict()))).row() == ns.row()
        for ref in ns.refs:
            back = Reference(*marshal.loads(marshal.dumps(ref.row())))
            assert back == ref and hash(back) == hash(ref)
    for proc in snap.processes.values():
        row = marshal.loads(marshal.dumps(proc.row()))
        assert Process.from_row(row).row() == proc.row()
        doc = json.loads(json.dumps(proc.to_dict()))
        assert Process.from_dict(doc).to_dict() == proc.to_dict()
        if proc.container is not None:
            assert Container.from_row(proc.container.row()) == proc.container


def test_the_generated_methods_are_current_and_used():
    """src/nsctl/_model_methods.py is what the tables make today (after changing a
    table, run scripts/generate-model-methods), and the classes take their methods
    from it: nothing is compiled at run time."""
    from nsctl import _model_methods, model

    with open(_model_methods.__file__) as f:
        assert f.read() == model.generated_module(), "run scripts/generate-model-methods"
    for cls in (Reference, Container, Namespace, Process):
        assert cls.__init__.__code__.co_filename == _model_methods.__file__


# Loads a snapshot file with nsctl._model_methods out of date (no table matches), so
# every method is compiled from its table, and prints every form of what it loaded
# (with _forms, below, put in at FORMS).
_STALE = """
from __future__ import annotations
import json, sys, types
stale = types.ModuleType("nsctl._model_methods")
stale.TABLES = {}
sys.modules["nsctl._model_methods"] = stale
from nsctl.documents.snapshot import load
from nsctl.model import Namespace, Reference, Snapshot
FORMS
snap = load(sys.argv[1])
assert Namespace.__init__.__code__.co_filename.startswith("<nsctl.model"), "not compiled"
json.dump(_forms(snap), sys.stdout)
"""


def _forms(snap: Snapshot) -> dict:
    """Every form of a snapshot's records: dicts, JSON texts, rows, equality keys."""
    return {"document": snap.to_dict(),
            "texts": [ns.json_text() for ns in snap.namespaces.values()],
            "refs": [[r.json_text() for r in ns.refs] for ns in snap.namespaces.values()],
            "rows": [[ns.row() for ns in snap.namespaces.values()],
                     [p.row() for p in snap.processes.values()]],
            "equal": [[r == Reference.from_row(r.row()) for r in ns.refs]
                      for ns in snap.namespaces.values()]}


def test_a_changed_table_is_compiled_and_makes_the_same_forms(snap, scratch):
    """Where the generated module is out of date, the methods are compiled from the
    tables, and every form of a real snapshot comes out as the generated methods
    write it."""
    from nsctl.documents.snapshot import load, save

    path = str(scratch / "snap.json")
    save(snap, path)
    code = _STALE.replace("FORMS", inspect.getsource(_forms))
    out = subprocess.run([sys.executable, "-c", code, path],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json.dumps(_forms(load(path))))
