"""A read-only reader of bbolt database files (Podman 4's ``libpod/bolt_state.db``).

Podman keeps no daemon: the names, pods and labels of its containers live in
its state database, a bbolt file (a copy-on-write B+tree of pages).  The
format, as bbolt documents it in its source: two meta pages (0 and 1), the
valid one with the higher transaction id wins (an FNV-1a checksum over its
first 56 bytes); each page starts with a 16-byte header (id, flags, element
count, overflow pages); a branch page's elements point to child pages, a leaf
page's carry a key and a value, and a leaf value flagged as a bucket is a
16-byte bucket header (root page, sequence), followed, when the root is 0, by
the bucket's single leaf page inline.

The bytes come from a file nsctl does not own: every offset is checked against
the data, pages are visited at most once per walk, and anything malformed is a
:class:`BoltError`, never an IndexError.
"""
from __future__ import annotations

import struct

from ..kernel.errors import NsctlError

TYPE_CHECKING = False  # see docs/architecture.md, "Start-up"
if TYPE_CHECKING:
    from collections.abc import Iterator

_MAGIC = 0xED0CDAED
_BRANCH, _LEAF, _META = 0x01, 0x02, 0x04
_BUCKET = 0x01
_HEADER = 16


class BoltError(NsctlError):
    """The file is not a bbolt database nsctl can read."""


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class Bolt:
    """One bbolt file's bytes, read from its newest valid meta page."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        metas = []
        for size in {4096, self._guess_size()}:
            for page in (0, 1):
                meta = self._meta(page * size)
                if meta is not None and meta[0] == size:
                    metas.append(meta)
        if not metas:
            raise BoltError("no valid meta page")
        self.page_size, self.root, txid = max(metas, key=lambda m: m[2])

    def _guess_size(self) -> int:
        if len(self.data) >= 32:
            size = struct.unpack_from("<I", self.data, 24)[0]
            if 512 <= size <= 65536 and size & (size - 1) == 0:
                return size
        return 4096

    def _meta(self, offset: int) -> tuple[int, int, int] | None:
        if offset + _HEADER + 64 > len(self.data):
            return None
        flags = struct.unpack_from("<H", self.data, offset + 8)[0]
        body = self.data[offset + _HEADER: offset + _HEADER + 64]
        magic, _version, size, _flags, root, _seq, _free, _pgid, txid, checksum = \
            struct.unpack("<IIIIQQQQQQ", body)
        if not flags & _META or magic != _MAGIC or checksum != _fnv64a(body[:56]):
            return None
        return size, root, txid

    def _page(self, pgid: int) -> tuple[int, int, int]:
        """(offset, flags, count) of page ``pgid``."""
        offset = pgid * self.page_size
        if pgid < 2 or offset + _HEADER > len(self.data):
            raise BoltError(f"page {pgid} is outside the file")
        flags, count = struct.unpack_from("<HH", self.data, offset + 8)
        return offset, flags, count

    def items(self, root: int | bytes, seen: set[int] | None = None
              ) -> Iterator[tuple[bytes, bytes, bool]]:
        """(key, value, is_bucket) of a bucket: by its root page, or an inline bucket's
        page bytes."""
        if isinstance(root, bytes):   # an inline bucket: one leaf page, in the value
            if len(root) < _HEADER:
                raise BoltError("inline bucket cut off")
            flags, count = struct.unpack_from("<HH", root, 8)
            if not flags & _LEAF:
                raise BoltError("inline bucket is not a leaf page")
            yield from _leaf(root, 0, count)
            return
        seen = set() if seen is None else seen
        if root in seen:
            raise BoltError(f"page {root} is reached twice")
        seen.add(root)
        offset, flags, count = self._page(root)
        if flags & _LEAF:
            yield from _leaf(self.data, offset, count)
        elif flags & _BRANCH:
            base = offset + _HEADER
            if base + 16 * count > len(self.data):
                raise BoltError(f"page {root} is cut off")
            for i in range(count):
                _pos, _ksize, child = struct.unpack_from("<IIQ", self.data, base + 16 * i)
                yield from self.items(child, seen)
        else:
            raise BoltError(f"page {root} is neither branch nor leaf")

    def bucket(self, value: bytes) -> int | bytes:
        """What :meth:`items` takes for a bucket whose header is ``value``."""
        if len(value) < 16:
            raise BoltError("bucket header cut off")
        root = struct.unpack_from("<Q", value, 0)[0]
        return value[16:] if root == 0 else root

    def get(self, path: list[bytes]) -> dict[bytes, tuple[bytes, bool]]:
        """The items of the bucket at ``path`` (bucket names from the top): key ->
        (value, is_bucket)."""
        where: int | bytes = self.root
        for name in path:
            for key, value, is_bucket in self.items(where):
                if key == name and is_bucket:
                    where = self.bucket(value)
                    break
            else:
                return {}
        return {k: (v, b) for k, v, b in self.items(where)}


def _leaf(data: bytes, offset: int, count: int) -> Iterator[tuple[bytes, bytes, bool]]:
    base = offset + _HEADER
    if base + 16 * count > len(data):
        raise BoltError("leaf page cut off")
    for i in range(count):
        at = base + 16 * i
        flags, pos, ksize, vsize = struct.unpack_from("<IIII", data, at)
        start = at + pos
        end = start + ksize + vsize
        if end > len(data):
            raise BoltError("leaf element outside the file")
        yield data[start:start + ksize], data[start + ksize:end], bool(flags & _BUCKET)
