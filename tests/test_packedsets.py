"""fastdns.packedsets.PackedSets: a blob of packed record sets and its index, behaving as a
mapping of key -> packed set, checked against a dict under random changes."""

from __future__ import annotations

import random

import pytest
from support.images import answer_table

from fastdns import packedsets
from fastdns._zcompile import compile_packed, index_packed, packed_entry
from fastdns.packedsets import PackedSets
from fastdns.packedzone import pack_records, unpack_records
from fastdns.xfr.inbound import set_key

ORIGIN = b"\x04sets\x04test\x00"


def owner(i: int) -> bytes:
    label = f"n{i}".encode()
    return bytes((len(label),)) + label + ORIGIN


def a_set(i: int, value: int, ttl: int = 300) -> bytes:
    return pack_records(owner(i), 1, ttl, [value.to_bytes(4, "big")])


def live_sets(sets: PackedSets) -> dict:
    """Key -> (owner, type, TTL, sorted RDATA) of every set ``parts`` gives the compiler."""
    out = {}
    for part in sets.parts():
        at = 0
        while at < len(part):
            key, end = packed_entry(part, at)
            assert key not in out, "a set twice in the parts"
            owner_, rtype, ttl, rdatas = unpack_records(part[at:end])
            out[key] = (owner_, rtype, ttl, sorted(rdatas))
            at = end
    return out


def as_table(mapping) -> dict:
    return {
        key: (*unpack_records(v)[:3], sorted(unpack_records(v)[3])) for key, v in mapping.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_it_behaves_as_a_dict_under_random_changes(seed, monkeypatch):
    monkeypatch.setattr(packedsets, "COMPACT_AFTER", 40)  # fold several times per run
    rng = random.Random(seed)
    reference = {set_key(owner(i), 1): a_set(i, i) for i in range(500)}
    sets = PackedSets(b"".join(reference.values()))
    for step in range(600):
        i = rng.randrange(700)
        key = set_key(owner(i), 1)
        action = rng.random()
        if action < 0.5:
            reference[key] = sets[key] = a_set(i, 10_000 + step, ttl=rng.randrange(1, 9))
        elif action < 0.8:
            assert (key in sets) == (key in reference)
            if key in reference:
                del reference[key]
                del sets[key]
            else:
                with pytest.raises(KeyError):
                    del sets[key]
        else:
            assert sets.get(key) == reference.get(key)
        assert len(sets) == len(reference)
        if step % 97 == 0:
            assert live_sets(sets) == as_table(reference)
    assert set(sets) == set(reference)
    assert as_table(sets) == as_table(reference)
    assert live_sets(sets) == as_table(reference)


def test_a_set_in_parts_is_joined_and_its_records_kept_once():
    key = set_key(owner(1), 1)
    upper = owner(1).replace(b"n1", b"N1")
    blob = b"".join(
        [
            pack_records(owner(1), 1, 300, [b"\x01\x01\x01\x01"]),
            a_set(2, 2),
            pack_records(upper, 1, 60, [b"\x02\x02\x02\x02", b"\x01\x01\x01\x01"]),
            pack_records(owner(1), 1, 600, [b"\x03\x03\x03\x03"]),
        ]
    )
    sets = PackedSets(blob)
    assert len(sets) == 2 and set(sets) == {key, set_key(owner(2), 1)}
    joined_owner, _, ttl, rdatas = unpack_records(sets[key])
    assert joined_owner == owner(1) and ttl == 60  # the first spelling, the smallest TTL
    assert rdatas == [b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", b"\x03\x03\x03\x03"]
    assert len(live_sets(sets)) == 2


def test_the_parts_compile_as_the_sets_one_by_one():
    soa = pack_records(ORIGIN, 6, 300, [b"\x00\x00" + bytes(20)])
    ns = pack_records(ORIGIN, 2, 300, [b"\x02ns" + ORIGIN])
    sets = PackedSets(b"".join([soa, ns, *(a_set(i, i) for i in range(50))]))
    sets[set_key(owner(7), 1)] = a_set(7, 77)
    del sets[set_key(owner(8), 1)]
    expected = [soa, ns, *(a_set(i, 77 if i == 7 else i) for i in range(50) if i != 8)]
    # The same answers (a set changed since comes after the blob's: templates numbered otherwise).
    got, want = compile_packed(sets.parts(), ORIGIN)[0], compile_packed(expected, ORIGIN)[0]
    assert answer_table(got) == answer_table(want)


def test_a_blob_that_does_not_parse_is_refused():
    with pytest.raises(ValueError, match="does not parse"):
        PackedSets(a_set(1, 1)[:-1])
    bad_owner = bytearray(a_set(1, 1))
    bad_owner[1] += 1  # the first label runs past the owner's length
    with pytest.raises(ValueError, match="does not parse"):
        PackedSets(bytes(bad_owner))
    assert index_packed(b"")[1:] == (0, [], []) and len(PackedSets()) == 0


def test_a_frozen_view_keeps_the_sets_of_its_moment():
    sets = PackedSets(b"".join(a_set(i, i) for i in range(20)))
    sets[set_key(owner(3), 1)] = a_set(3, 33)
    frozen = sets.frozen()
    before = live_sets(sets)
    sets[set_key(owner(4), 1)] = a_set(4, 44)
    del sets[set_key(owner(3), 1)]
    sets.compact()
    assert live_sets(frozen) == before != live_sets(sets)
