"""A zone's packed record sets kept as one blob and a sorted index, not an object per set.

A secondary zone of a million record sets held as a dict of a key and a packed ``bytes`` per
set costs some 170 MB of Python objects in the supervisor. :class:`PackedSets` keeps them as
they arrive (an AXFR, the saved copy): one ``bytes`` of packed sets one after another
(``fastdns._zcompile.compile_packed``'s layout), with an index of (key hash, offset) pairs
sorted by hash (``index_packed``, in C), 16 bytes a set. The sets an IXFR changes since are
kept beside it (``overrides``); the blob's copies of them are dead ranges, left out of what
:meth:`parts` gives the compiler, and folded away when they become many.

Keys are ``fastdns.xfr.inbound.set_key``: the owner lower-cased, then the type (big-endian).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, MutableMapping

from fastdns._zcompile import index_packed, key_hash, packed_entry
from fastdns.packedzone import pack_records, unpack_records

__all__ = ["FrozenSets", "PackedSets", "iter_packed", "join_packed"]

# Dead ranges (or sets set since) that make parts() fold the overrides into a new blob.
COMPACT_AFTER = 4096


def iter_packed(blob: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(key, start, end)`` of each packed record set of ``blob``, in order."""
    at = 0
    while at < len(blob):
        key, end = packed_entry(blob, at)
        yield key, at, end
        at = end


def join_packed(held: bytes, more: bytes) -> bytes:
    """Two packed parts of one record set as one: the first's owner spelling, the smallest TTL
    (RFC 2181 §5.2), the records of the second the first lacks (RFC 2181 §5: a set).
    ``ValueError`` past 65535 records."""
    owner, rtype, ttl, rdatas = unpack_records(held)
    _, _, more_ttl, more_rdatas = unpack_records(more)
    seen = set(rdatas)
    rdatas += [rdata for rdata in more_rdatas if rdata not in seen]
    if len(rdatas) > 0xFFFF:
        raise ValueError("a record set of more than 65535 records")
    return pack_records(owner, rtype, min(ttl, more_ttl), rdatas)


class PackedSets(MutableMapping):
    """Packed record sets by key: a blob and its index, and the sets changed since."""

    def __init__(self, blob: bytes = b""):
        self._overrides: dict[bytes, bytes | None] = {}  # None: deleted from the blob
        self._index(bytes(blob))
        self._join_duplicates()

    def _index(self, blob: bytes) -> None:
        index, count, foreign, self._repeats = index_packed(blob)
        pairs = array("Q")
        pairs.frombytes(index)
        self._blob = blob
        self._hashes = pairs[0::2]
        self._offsets = pairs[1::2]
        self._dead: dict[int, int] = {}  # offset -> end of the blob's sets overridden
        self._len = count
        self.foreign_offsets = foreign  # sets of types the native compiler does not take

    def _join_duplicates(self) -> None:
        """A set that came in parts (an AXFR that split it across messages or scattered it)
        is one set: joined into an override, its parts in the blob dead. The index is sorted
        by hash, then offset: parts of one key are neighbours, the earliest first."""
        hashes, offsets, blob = self._hashes, self._offsets, self._blob
        for i in self._repeats:
            key, end = packed_entry(blob, offsets[i])
            j = i - 1
            while j >= 0 and hashes[j] == hashes[i]:
                other, other_end = packed_entry(blob, offsets[j])
                if other == key:
                    held = self._overrides.get(key) or blob[offsets[j] : other_end]
                    self._overrides[key] = join_packed(held, blob[offsets[i] : end])
                    self._dead[offsets[j]] = other_end
                    self._dead[offsets[i]] = end
                    self._len -= 1
                    break
                j -= 1

    def _find(self, key: bytes) -> tuple[int, int] | None:
        """(offset, end) of ``key``'s set in the blob, dead or not, or None."""
        h = key_hash(key)
        hashes = self._hashes
        i = bisect.bisect_left(hashes, h)
        while i < len(hashes) and hashes[i] == h:
            found, end = packed_entry(self._blob, self._offsets[i])
            if found == key:
                return self._offsets[i], end
            i += 1
        return None

    # -- the mapping

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._overrides:
            value = self._overrides[key]
            if value is None:
                raise KeyError(key)
            return value
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return self._blob[found[0] : found[1]]

    def __contains__(self, key: object) -> bool:
        if key in self._overrides:
            return self._overrides[key] is not None
        return isinstance(key, bytes) and self._find(key) is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        present = key in self
        if key not in self._overrides:
            found = self._find(key)
            if found is not None:
                self._dead[found[0]] = found[1]
        self._overrides[key] = value
        if not present:
            self._len += 1

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        if key in self._overrides:
            found = self._find(key)
            if found is None:
                del self._overrides[key]
            else:
                self._overrides[key] = None
        else:
            found = self._find(key)
            assert found is not None
            self._dead[found[0]] = found[1]
            self._overrides[key] = None
        self._len -= 1

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[bytes]:
        for key, start, _end in iter_packed(self._blob):
            if start not in self._dead:
                yield key
        yield from (key for key, value in self._overrides.items() if value is not None)

    # -- for the compiler and the saved copy

    def parts(self) -> list[bytes]:
        """Every live set, in parts ``compile_packed`` takes: the blob's live ranges and the
        sets set since. Folds those into a new blob first when they have become many."""
        if len(self._dead) > COMPACT_AFTER or len(self._overrides) > COMPACT_AFTER:
            self.compact()
        return self._live_parts()

    def compact(self) -> None:
        """Fold the sets changed since into a new blob and index."""
        if self._dead or self._overrides:
            blob = b"".join(self._live_parts())
            self._overrides = {}
            self._index(blob)

    def _live_parts(self) -> list[bytes]:
        return _live_parts(self._blob, self._dead, self._overrides.values())

    def frozen(self) -> FrozenSets:
        """The sets as they are now, kept apart from later changes without a copy of the
        blob (which never changes: a fold makes a new one)."""
        extra = [value for value in self._overrides.values() if value is not None]
        return FrozenSets(self._blob, dict(self._dead), extra)

    def foreign_keys(self, native: frozenset) -> set[bytes]:
        """The keys of the live sets whose types are not in ``native``."""
        keys = set()
        for offset in self.foreign_offsets:
            if offset not in self._dead:
                keys.add(packed_entry(self._blob, offset)[0])
        for key, value in self._overrides.items():
            if value is not None and int.from_bytes(key[-2:], "big") not in native:
                keys.add(key)
        return keys


class FrozenSets:
    """Packed record sets as :meth:`PackedSets.frozen` left them: what a served zone's model
    is built from when an outgoing transfer needs every record."""

    __slots__ = ("_blob", "_dead", "_extra")

    def __init__(self, blob: bytes, dead: dict[int, int], extra: list[bytes]):
        self._blob, self._dead, self._extra = blob, dead, extra

    def parts(self) -> list[bytes]:
        return _live_parts(self._blob, self._dead, self._extra)


def _live_parts(blob: bytes, dead: dict[int, int], extra) -> list[bytes]:
    """The ranges of ``blob`` between its ``dead`` ones (offset -> end), then the sets of
    ``extra`` (None: deleted, left out)."""
    parts = []
    at = 0
    for offset in sorted(dead):
        if offset > at:
            parts.append(blob[at:offset])
        at = dead[offset]
    if at < len(blob):
        parts.append(blob if at == 0 else blob[at:])
    parts += [value for value in extra if value is not None]
    return parts
