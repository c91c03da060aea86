"""The model's records: one field table per class, and every form built from it.

A reference, namespace, process or container goes through the forms that
leave the process (the row workers marshal, the dict form a snapshot keeps)
and comes back the same; references that compare equal hash equal.  Run on
this host's real discovery.
"""
from __future__ import annotations

import json
import marshal

import pytest

import nsctl
from nsctl.model import REF_FIELDS, Container, Namespace, Process, Reference


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
