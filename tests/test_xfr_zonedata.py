"""A secondary zone's packed data (fastdns.xfr.zonedata): IXFR differences applied all or
nothing, a large zone's image grafted and answering as a full compile of the same records, the
reference path for what the native compiler does not take, and the saved copy (packed file
plus journal) read back, also after a crash cut the journal short."""

from __future__ import annotations

import logging

import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from support.images import answer_table

from fastdns.compile import compile_zone
from fastdns.model import ZoneLoadError
from fastdns.snapshot import SealedImage
from fastdns.xfr.inbound import Difference, TransferError, set_key
from fastdns.xfr.zonedata import SecondaryData

ORIGIN = dns.name.from_text("sec.test.")


def record(name: str, rtype: str, value: str, ttl: int = 60) -> tuple:
    rdtype = dns.rdatatype.from_text(rtype)
    rdata = dns.rdata.from_text("IN", rdtype, value, origin=ORIGIN, relativize=False)
    return dns.name.from_text(name, ORIGIN).to_wire(), rdtype, ttl, rdata.to_wire()


def soa(serial: int, timers: str = "60 10 600", minimum: int = 30) -> tuple:
    return record("@", "SOA", f"ns1 hostmaster {serial} {timers} {minimum}")


def zone_records(names: int = 0) -> list[tuple]:
    records = [
        soa(1),
        record("@", "NS", "ns1"),
        record("ns1", "A", "192.0.2.53"),
        record("@", "MX", "10 mail.other.example."),
        record("www", "CNAME", "web.other.example."),
        record("txt", "TXT", '"one"'),
    ]
    records += [
        record(f"h{i}", "A", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(names)
    ]
    return records


def data_of(records: list[tuple]) -> SecondaryData:
    """The record sets of ``records`` as an AXFR brings them (fastdns.xfr.inbound): packed one
    after another, a set's records together."""
    from fastdns.packedsets import PackedSets
    from fastdns.packedzone import pack_records

    groups: dict = {}
    for owner, rtype, ttl, rdata in records:
        groups.setdefault((owner.lower(), rtype), [owner, ttl]).append(rdata)
    blob = b"".join(pack_records(g[0], rtype, g[1], g[2:]) for (_, rtype), g in groups.items())
    return SecondaryData(ORIGIN, PackedSets(blob))


def values(data: SecondaryData) -> set:
    from fastdns.packedzone import unpack_records

    out = set()
    for packed in data.packed.values():
        owner, rtype, ttl, rdatas = unpack_records(packed)
        out |= {(owner.lower(), rtype, ttl, rdata) for rdata in rdatas}
    return out


def test_an_ixfr_replaces_adds_and_deletes_records():
    data = data_of(zone_records())
    changed = data.apply(
        [
            Difference(
                soa(1),
                soa(2),
                [record("ns1", "A", "192.0.2.53")],
                [record("ns1", "A", "192.0.2.54")],
            ),
            Difference(
                soa(2),
                soa(3),
                [record("txt", "TXT", '"one"')],
                [record("new", "AAAA", "2001:db8::1", ttl=30)],
            ),
        ]
    )
    assert data.serial == 3
    expected = data_of(
        [
            soa(3),
            *zone_records()[1:2],
            record("ns1", "A", "192.0.2.54"),
            *zone_records()[3:5],
            record("new", "AAAA", "2001:db8::1", ttl=30),
        ]
    )
    assert values(data) == values(expected)
    origin = ORIGIN.to_wire()
    assert changed == {
        set_key(origin, dns.rdatatype.SOA),
        set_key(b"\x03ns1" + origin, dns.rdatatype.A),
        set_key(b"\x03txt" + origin, dns.rdatatype.TXT),
        set_key(b"\x03new" + origin, dns.rdatatype.AAAA),
    }
    assert set(data.changed) == changed  # what the next compile grafts


def test_a_deletion_matches_names_in_rdata_without_case_as_rfc_4034_compares_them():
    data = data_of(zone_records())
    upper = record("@", "MX", "10 MAIL.Other.Example.")
    data.apply([Difference(soa(1), soa(2), [upper], [])])
    assert set_key(ORIGIN.to_wire(), dns.rdatatype.MX) not in data.packed


def test_an_ixfr_that_deletes_a_record_the_zone_lacks_changes_nothing():
    data = data_of(zone_records())
    before = dict(data.packed)
    differences = [
        Difference(
            soa(1), soa(2), [record("ns1", "A", "192.0.2.53")], [record("ns1", "A", "192.0.2.9")]
        ),
        Difference(soa(2), soa(3), [record("txt", "TXT", '"not there"')], []),
    ]
    with pytest.raises(
        TransferError, match=r"TXT record of txt\.sec\.test\. that the zone does not have"
    ):
        data.apply(differences)
    assert data.packed == before and not data.changed
    with pytest.raises(TransferError):  # an old SOA that is not the zone's
        data.apply([Difference(soa(7), soa(8), [], [])])
    assert data.packed == before


def test_a_large_zone_is_grafted_and_answers_as_its_full_compile(caplog):
    records = zone_records(20000)
    data = data_of(records)
    first = data.compile_for_serving()
    assert isinstance(first.image, SealedImage) and first.serial == 1
    differences = [
        Difference(
            soa(1), soa(2), [record("h5", "A", "10.0.0.5")], [record("h5", "A", "192.0.2.5")]
        ),
        Difference(
            soa(2), soa(3), [], [record("fresh", "A", "192.0.2.77"), record("h6", "TXT", '"six"')]
        ),
    ]
    data.apply(differences)
    with caplog.at_level(logging.INFO, logger="fastdns"):
        grafted = data.compile_for_serving()
    assert "secondary zone sec.test.: 3 record sets and the SOA serial grafted" in caplog.text
    assert grafted.serial == 3 and grafted.record_sets == first.record_sets + 2
    fresh = data_of(
        [soa(3), *records[1:], record("fresh", "A", "192.0.2.77"), record("h6", "TXT", '"six"')]
    )
    h5 = set_key(b"\x02h5" + ORIGIN.to_wire(), 1)
    fresh.packed[h5] = data.packed[h5]
    compiled = fresh.compile_for_serving()
    assert answer_table(grafted.image) == answer_table(compiled.image)
    assert grafted.model.soa.rdatas[0].serial == 3


@pytest.mark.parametrize(
    ("new_soa", "grafted"),
    [(soa(2, timers="3600 600 86400"), True), (soa(2, minimum=300), False)],
)
def test_an_ixfr_that_changes_the_soa_timers_is_grafted_one_of_its_minimum_compiled(
    caplog, new_soa, grafted
):
    # MINIMUM is the negative answers' TTL (RFC 2308 §5): the zone is compiled again.
    records = zone_records(20000)
    data = data_of(records)
    data.compile_for_serving()
    change = [record("h5", "A", "10.0.0.5")], [record("h5", "A", "192.0.2.5")]
    data.apply([Difference(soa(1), new_soa, *change)])
    with caplog.at_level(logging.INFO, logger="fastdns"):
        served = data.compile_for_serving()
    assert ("grafted onto the last image" in caplog.text) == grafted
    fresh = data_of([new_soa, *records[1:]])
    h5 = set_key(b"\x02h5" + ORIGIN.to_wire(), 1)
    fresh.packed[h5] = data.packed[h5]
    assert answer_table(served.image) == answer_table(fresh.compile_for_serving().image)


def test_an_ixfr_that_points_an_mx_inside_the_zone_is_grafted(caplog):
    records = zone_records(20000)
    data = data_of(records)
    data.compile_for_serving()
    change = [record("@", "MX", "10 mail.other.example.")], [record("@", "MX", "10 ns1")]
    data.apply([Difference(soa(1), soa(2), *change)])
    with caplog.at_level(logging.INFO, logger="fastdns"):
        served = data.compile_for_serving()
    assert "grafted onto the last image" in caplog.text
    fresh = data_of([soa(2), *records[1:3], change[1][0], *records[4:]])
    assert answer_table(served.image) == answer_table(fresh.compile_for_serving().image)


def test_types_the_native_compiler_does_not_take_go_through_the_model():
    records = [*zone_records(), record("d", "AFSDB", "1 db.other.example.")]
    data = data_of(records)
    assert data.foreign
    compiled = data.compile_for_serving()
    assert compiled.image == compile_zone(compiled.model)
    data.apply([Difference(soa(1), soa(2), [record("d", "AFSDB", "1 db.other.example.")], [])])
    assert not data.foreign
    assert data.compile_for_serving().serial == 2


def test_a_zone_that_breaks_a_rule_is_not_compiled():
    data = data_of([*zone_records(), record("www", "A", "192.0.2.80")])  # CNAME and other data
    with pytest.raises(ZoneLoadError, match="CNAME"):
        data.compile_for_serving()


def test_the_saved_copy_is_the_packed_file_and_the_journal(tmp_path):
    data = data_of(zone_records(50))
    data.save_whole(tmp_path)
    h1 = [record("h1", "A", "10.0.0.1")], [record("h1", "A", "192.0.2.1")]
    data.save_change(tmp_path, data.apply([Difference(soa(1), soa(2), *h1)]))
    txt = [record("txt", "TXT", '"one"')], []
    data.save_change(tmp_path, data.apply([Difference(soa(2), soa(3), *txt)]))
    journal = tmp_path / "sec.test.journal"
    assert journal.stat().st_size < 400  # two entries of a few record sets each
    loaded = SecondaryData.load(ORIGIN, tmp_path)
    assert loaded.serial == 3 and values(loaded) == values(data)


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_a_journal_damaged_at_its_end_loses_only_its_last_entry(tmp_path, damage):
    data = data_of(zone_records(50))
    data.save_whole(tmp_path)
    data.apply(
        [
            Difference(
                soa(1), soa(2), [record("h1", "A", "10.0.0.1")], [record("h1", "A", "192.0.2.1")]
            )
        ]
    )
    data.save_change(tmp_path, data.changed)
    at_two = values(data)
    data.compile_for_serving()  # clears ``changed``
    data.apply([Difference(soa(2), soa(3), [record("h2", "A", "10.0.0.2")], [])])
    data.save_change(tmp_path, data.changed)
    journal = tmp_path / "sec.test.journal"
    raw = journal.read_bytes()
    if damage == "cut":
        journal.write_bytes(raw[:-3])  # a crash in the middle of the append
    else:
        journal.write_bytes(raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:])
    loaded = SecondaryData.load(ORIGIN, tmp_path)
    assert loaded.serial == 2 and values(loaded) == at_two
    assert len(journal.read_bytes()) < len(raw)  # cut back to its last whole entry
    assert SecondaryData.load(ORIGIN, tmp_path).serial == 2


def test_a_journal_that_outgrows_a_quarter_of_the_zone_is_folded_into_it(tmp_path):
    data = data_of(zone_records(20))
    data.save_whole(tmp_path)
    packed = tmp_path / "sec.test.packed"
    first = packed.stat().st_size
    serial = 1
    for i in range(6):
        data.apply(
            [
                Difference(
                    soa(serial), soa(serial + 1), [], [record(f"n{i}", "TXT", '"' + "x" * 60 + '"')]
                )
            ]
        )
        data.save_change(tmp_path, data.changed)
        data.compile_for_serving()
        serial += 1
    assert packed.stat().st_size > first  # folded at least once
    assert data.journal_size * 4 <= packed.stat().st_size
    assert values(SecondaryData.load(ORIGIN, tmp_path)) == values(data)


def test_a_copy_saved_as_a_master_file_by_an_earlier_version_is_read(tmp_path):
    (tmp_path / "sec.test.zone").write_text(
        "$ORIGIN sec.test.\n$TTL 60\n@ SOA ns1 hostmaster 4 60 10 600 30\n"
        "@ NS ns1\nns1 A 192.0.2.53\n"
    )
    loaded = SecondaryData.load(ORIGIN, tmp_path)
    assert loaded.serial == 4
    assert values(loaded) == values(data_of([soa(4), *zone_records()[1:3]]))


def test_a_packed_file_that_is_not_one_is_refused(tmp_path):
    (tmp_path / "sec.test.packed").write_bytes(b"something else\n")
    with pytest.raises(ValueError, match="not a saved secondary zone"):
        SecondaryData.load(ORIGIN, tmp_path)


def test_the_model_holds_the_serial_it_was_compiled_at():
    data = data_of(zone_records(3))
    model = data.compile_for_serving().model
    data.apply([Difference(soa(1), soa(2), [record("h1", "A", "10.0.0.1")], [])])
    assert model.soa.rdatas[0].serial == 1
    zone = model.materialized()
    assert sum(1 for _ in zone) == len(zone_records(3))  # one record set per record here
    names = {rrset.name.to_text() for rrset in zone}
    assert "h1.sec.test." in names
