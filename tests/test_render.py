"""JSON output shared among forked children: the same bytes as one process's json.dumps.

Run on this host's real discovery, with the share threshold lowered so that a
handful of namespaces is split among 2 and 4 children.
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


@pytest.mark.parametrize("cores", [2, 4])
def test_shared_encoding_is_byte_for_byte_the_whole(monkeypatch, snap, cores):
    namespaces = sorted(snap.namespaces.values(), key=lambda n: n.ino)
    assert len(namespaces) >= 8   # the host's own, at least
    expected = json.dumps(snap.to_dict()).encode() + b"\n"
    before = children_of(os.getpid())
    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    got = _printed(snap.to_dict(namespaces=render.Rows(namespaces, Namespace.to_dict)))
    assert got == expected
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
    assert got == json.dumps(snap.to_dict()).encode() + b"\n"
    assert children_of(os.getpid()) == before


def test_short_lists_and_empty_shares(monkeypatch):
    monkeypatch.setattr(render, "PARALLEL_ROWS", 2)
    for items in ([], [1], [1, 2], list(range(7))):
        doc = {"a": render.Rows(items, lambda x: {"v": x}), "b": [None, "é"]}
        plain = {"a": [{"v": x} for x in items], "b": [None, "é"]}
        assert _printed(doc) == json.dumps(plain).encode() + b"\n"
