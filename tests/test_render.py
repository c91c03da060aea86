"""JSON output: shared among forked children, the same bytes as one encoding of the
whole document; with orjson (big documents) the same bytes as with the standard
library; and text that is not UTF-8 escaped, never refused.

Run on this host's real discovery, with the thresholds lowered so that a
handful of namespaces is split among 2 and 4 children.  The reference is the
standard library's json.dumps, compact, text as UTF-8.
"""
from __future__ import annotations

import json
import os
import sys

import pytest
from support.processes import children_of

import nsctl
from nsctl.cli import render
from nsctl.model import Namespace, Reference


def _reference(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _printed(doc) -> bytes:
    """What print_json writes to a (piped, not terminal) stdout."""
    fd = os.memfd_create("stdout")
    saved = sys.stdout
    with open(fd, "w") as out:
        sys.stdout = out
        try:
            render.print_json(doc)
        finally:
            sys.stdout = saved
            out.flush()
        return os.pread(fd, os.fstat(fd).st_size, 0)


@pytest.fixture(scope="module")
def snap():
    return nsctl.discover()


@pytest.mark.parametrize("encoder", ["json", "orjson", "text"])
@pytest.mark.parametrize("cores", [2, 4])
def test_shared_encoding_is_byte_for_byte_the_whole(monkeypatch, snap, cores, encoder):
    namespaces = sorted(snap.namespaces.values(), key=lambda n: n.ino)
    assert len(namespaces) >= 8   # the host's own, at least
    before = children_of(os.getpid())
    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(render, "ORJSON_ROWS", 2 if encoder == "orjson" else 1 << 30)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    text = Namespace.json_text if encoder == "text" else None
    got = _printed(snap.to_dict(namespaces=render.Rows(namespaces, Namespace.to_dict, text)))
    assert got == _reference(snap.to_dict())
    assert children_of(os.getpid()) == before


def test_a_failed_share_is_encoded_by_the_parent(monkeypatch, snap):
    namespaces = sorted(snap.namespaces.values(), key=lambda n: n.ino)
    parent = os.getpid()
    before = children_of(os.getpid())

    def convert(ns: Namespace) -> dict:
        if os.getpid() != parent:
            raise RuntimeError("a child that fails")
        return ns.to_dict()

    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    got = _printed(snap.to_dict(namespaces=render.Rows(namespaces, convert)))
    assert got == _reference(snap.to_dict())
    assert children_of(os.getpid()) == before


@pytest.mark.parametrize("encoder", ["json", "orjson"])
def test_short_lists_and_empty_shares(monkeypatch, encoder):
    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(render, "ORJSON_ROWS", 0 if encoder == "orjson" else 1 << 30)
    for items in ([], [1], [1, 2], list(range(7))):
        doc = {"a": render.Rows(items, lambda x: {"v": x, 3: None}), "b": [None, "é", True]}
        plain = {"a": [{"v": x, 3: None} for x in items], "b": [None, "é", True]}
        assert _printed(doc) == _reference(plain)


@pytest.mark.parametrize("encoder", ["json", "orjson"])
def test_text_that_is_not_utf8_is_escaped_not_refused(monkeypatch, encoder):
    """A command line of bytes that are not UTF-8 reaches nsctl as lone surrogates
    (surrogateescape): that share is written with \\udcXX escapes."""
    monkeypatch.setattr(render, "PARALLEL_ROWS", 1 << 30)
    monkeypatch.setattr(render, "ORJSON_ROWS", 0 if encoder == "orjson" else 1 << 30)
    odd = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    doc = {"a": render.Rows([odd, "é"], lambda x: {"cmd": x}), "b": 1}
    got = _printed(doc)
    assert got == b'{"a":[{"cmd":"caf\\udce9 \\udcff"},{"cmd":"\\u00e9"}],"b":1}\n'
    assert json.loads(got)["a"][0]["cmd"].encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"


def test_indented_on_a_terminal_as_the_standard_library_indents(monkeypatch, snap):
    monkeypatch.setattr(render, "ORJSON_ROWS", 0)
    doc = snap.to_dict()
    assert render.dumps(doc, pretty=True, big=True) == \
        json.dumps(doc, indent=2, ensure_ascii=False).encode()


def _ns(ino=4026532001, ns_type="net", refs=(), pids=(), name=None, **fields) -> Namespace:
    ns = Namespace(ino, ns_type, **{"dev": 4, "id": 9, "owner": 4026531837,
                                    "owner_uid": 0, **fields})
    ns.refs = list(refs)
    ns.pids = list(pids)
    ns.name = name
    return ns


def _rows() -> list[tuple[Namespace, bool]]:
    """(namespace, whether it is written directly rather than encoded), made afresh."""
    return [
        (_ns(refs=[Reference("thread", pid=7, tid=8, link="uts")]), True),
        (_ns(refs=[Reference("process", pid=7, link="pid_for_children")], pids=[7]), True),
        (_ns(refs=[Reference("fd", pid=7, fd=3)], id=None, dev=None), True),
        (_ns(refs=[Reference("socket", pid=7, fd=4, socket=99)], owner=None, owner_uid=None), True),
        (_ns(ns_type="user", refs=[Reference("child", child=5, relation="owner"),
                                   Reference("child", child=6, relation="parent")],
             parent=4026531837), True),
        (_ns(refs=[Reference("process", pid=9, link="net"), Reference("process", pid=2, link="net"),
                   Reference("fd", pid=2, fd=5), Reference("child", child=5, relation="owner")],
             pids=[9, 2, 30]), True),
        (_ns(refs=[]), True),
        # Display names: plain ASCII written as is, other ASCII escaped as the encoder
        # escapes it, anything else left to the encoder.
        (_ns(refs=[Reference("fd", pid=7, fd=3)], name="fd 3 of sleep(7)"), True),
        (_ns(refs=[Reference("fd", pid=7, fd=3)], name='\x1b[31m"q\\\n\t(7)'), True),
        (_ns(refs=[Reference("fd", pid=7, fd=3)], name="caf\u00e9(7)"), False),
        (_ns(refs=[Reference("bindmount", path='/run/netns/"x"\n', mntns=5)]), False),
        (_ns(refs=[Reference("process", pid=7, link=None)]), False),
        (_ns(refs=[Reference("fd", pid=7)]), False),
        (_ns(refs=[Reference("frob", pid=7)]), False),
    ]


@pytest.mark.parametrize("index", range(len(_rows())))
def test_a_row_written_directly_is_the_encoders_text(index):
    """Namespace.json_text against the standard library's encoding of to_dict, for
    every kind of reference, missing fields, several references and a hidden one;
    the rows it must leave to the encoder (a path, a missing field) it leaves."""
    from nsctl.model import Container

    ns, direct = _rows()[index]
    text = ns.json_text()
    assert (text is not None) == direct
    if direct:
        assert text == json.dumps(ns.to_dict(), separators=(",", ":"), ensure_ascii=False)
        ns.container = Container("docker", "ab" * 32)
        assert ns.json_text() is None


def test_rows_written_and_encoded_keep_their_order(monkeypatch):
    monkeypatch.setattr(render, "PARALLEL_ROWS", 1 << 30)
    namespaces = [ns for ns, _direct in _rows()]
    rows = render.Rows(namespaces * 3, Namespace.to_dict, Namespace.json_text)
    assert _printed({"namespaces": rows}) == \
        _reference({"namespaces": [ns.to_dict() for ns in namespaces * 3]})
