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

import nsctl
from topology import children_of
from nsctl.cli import render
from nsctl.model import Namespace


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


@pytest.mark.parametrize("encoder", ["json", "orjson"])
@pytest.mark.parametrize("cores", [2, 4])
def test_shared_encoding_is_byte_for_byte_the_whole(monkeypatch, snap, cores, encoder):
    namespaces = sorted(snap.namespaces.values(), key=lambda n: n.ino)
    assert len(namespaces) >= 8   # the host's own, at least
    before = children_of(os.getpid())
    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(render, "ORJSON_ROWS", 2 if encoder == "orjson" else 1 << 30)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    got = _printed(snap.to_dict(namespaces=render.Rows(namespaces, Namespace.to_dict)))
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
