"""A change grafted onto the last image answers as a full compile does (issue 8).

``fastdns._zcompile.graft_image`` replaces the templates of changed record sets and the SOA
serial in a copy of the last image. The rule tested here: whenever it grafts, the result reads
the same as ``compile_packed`` of the changed records (``support.images.answer_table``: the
trie and every template's contents), loads in the hot path and answers with the new values;
whenever a change reaches beyond the record set's own template (a CNAME target, an MX target's
addresses, glue, a cut, the SOA's other fields) it refuses, and the caller compiles. Then the
same through ``fastdns.hostedzones`` and the store, and a real server answering over UDP.
"""

from __future__ import annotations

import random
import struct

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from support.api import running_api_server
from support.images import answer_table

from fastdns import snapshot
from fastdns._native import _core
from fastdns._zcompile import compile_packed, copiers_of, graft_image
from fastdns.compile import compile_zone
from fastdns.hostedcolumns import HostedZoneModel, pack_record_set
from fastdns.hostedcolumns import targets_outside as targets_outside_packed
from fastdns.hostedzones import _columns, compile_hosted_zone
from fastdns.packedzone import PackedZone
from fastdns.route53.recordset import ResourceRecordSet
from fastdns.route53.tozone import zone_from_record_sets
from fastdns.snapshot import SealedImage
from fastdns.store import Store

ORIGIN = "graft.test."
WIRE_ORIGIN = dns.name.from_text(ORIGIN).to_wire()


def rrset(name: str, rtype: str, *values: str, ttl: int = 300) -> ResourceRecordSet:
    return ResourceRecordSet.from_api(
        {"Name": name, "Type": rtype, "TTL": ttl,
         "ResourceRecords": [{"Value": v} for v in values]}
    )  # fmt: skip


def soa(serial: int, minimum: int = 86400, timers: str = "7200 900 1209600") -> ResourceRecordSet:
    return rrset(ORIGIN, "SOA", f"ns1.{ORIGIN} admin.{ORIGIN} {serial} {timers} {minimum}", ttl=900)


def base_zone() -> list[ResourceRecordSet]:
    """Names each of which a change can or cannot be grafted at, for a known reason."""
    return [
        soa(1),
        rrset(ORIGIN, "NS", f"ns1.{ORIGIN}", "ns.other.example."),
        rrset(ORIGIN, "TXT", '"apex"'),
        rrset(f"ns1.{ORIGIN}", "A", "192.0.2.1"),  # apex NS target: referenced
        rrset(f"www.{ORIGIN}", "A", "192.0.2.10"),  # CNAME target: referenced
        rrset(f"www.{ORIGIN}", "TXT", '"www"'),
        rrset(f"alias.{ORIGIN}", "CNAME", f"www.{ORIGIN}"),
        rrset(f"dangling.{ORIGIN}", "CNAME", f"nothing.{ORIGIN}"),
        rrset(f"mx.{ORIGIN}", "MX", f"10 mail.{ORIGIN}"),
        rrset(f"mail.{ORIGIN}", "A", "192.0.2.20"),  # MX target: referenced
        rrset(f"mail.{ORIGIN}", "AAAA", "2001:db8::20"),
        rrset(f"sub.{ORIGIN}", "NS", f"ns.sub.{ORIGIN}"),  # a cut with glue below it
        rrset(f"ns.sub.{ORIGIN}", "A", "192.0.2.30"),
        rrset(f"ext.{ORIGIN}", "NS", "ns.elsewhere.example.", f"ns1.{ORIGIN}"),  # no glue
        rrset(f"wild.{ORIGIN}", "TXT", '"the wildcard\'s parent"'),
        rrset(f"*.wild.{ORIGIN}", "A", "192.0.2.40"),
        rrset(f"*.wild.{ORIGIN}", "TXT", '"wild"'),
        rrset(f"ptr.{ORIGIN}", "PTR", f"host.{ORIGIN}"),
        rrset(f"a.deep.{ORIGIN}", "A", "192.0.2.50"),
        rrset(f"a.deep.{ORIGIN}", "CAA", '0 issue "ca.example"'),
        *[rrset(f"h{i}.{ORIGIN}", "A", f"198.51.100.{i}") for i in range(40)],
        *[rrset(f"t{i}.{ORIGIN}", "TXT", f'"text {i}"') for i in range(10)],
    ]


REFUSED = {  # (owner, type): (the new values, why the graft refuses them)
    # A second hop: mini would need the next target's data too.
    # The chain's end is answered by *.wild (RFC 4592), which mini lacks.
    (f"alias.{ORIGIN}", "CNAME"): ([f"x.wild.{ORIGIN}"], "a wildcard may answer"),
    (f"mx.{ORIGIN}", "MX"): ([f"5 ns.sub.{ORIGIN}"], "glue below a zone cut"),  # not ours
}

VALUES = {
    "A": lambda rng: [f"203.0.113.{n}" for n in rng.sample(range(1, 255), rng.randrange(1, 4))],
    "AAAA": lambda rng: [f"2001:db8::{rng.randrange(1, 9999):x}"],
    "TXT": lambda rng: [f'"v{rng.randrange(10**6)}"', '"second"'][: rng.randrange(1, 3)],
    "PTR": lambda rng: [f"h{rng.randrange(40)}.{ORIGIN}"],
    "CAA": lambda rng: [f'0 issue "ca{rng.randrange(99)}.example"'],
    # Targets inside the zone (their data is copied: compiled) or outside (grafted).
    "CNAME": lambda rng: [
        rng.choice((f"h{rng.randrange(40)}.{ORIGIN}", "lb.elsewhere.example.", f"alias.{ORIGIN}"))
    ],
    "MX": lambda rng: [
        f"5 {rng.choice((f'h{rng.randrange(40)}.{ORIGIN}', 'mx.elsewhere.example.', absent(rng)))}"
    ],
    # Delegations: name servers elsewhere, or in the zone outside the cut (sibling glue).
    "NS": lambda rng: [
        rng.choice((f"ns{rng.randrange(9)}.elsewhere.example.", f"h{rng.randrange(40)}.{ORIGIN}"))
    ],
    "DS": lambda rng: [f"{rng.randrange(1, 65535)} 13 2 {rng.randbytes(32).hex()}"],
}


def absent(rng: random.Random) -> str:
    """A name the zone may lack, or get later below a new empty non-terminal."""
    return f"{rng.choice(('new', 'x1', 'a'))}.{rng.choice(('b', 'n1', 'zz'))}.{ORIGIN}"


def compiled(rrsets: list[ResourceRecordSet]):
    image, reason, _n, _soa, _ttl, _serial, references = compile_packed(
        [pack_record_set(r) for r in rrsets], WIRE_ORIGIN, with_references=True
    )
    assert image is not None, reason
    return image, references


def targets_outside(r: ResourceRecordSet, origin: bytes) -> bool:
    return targets_outside_packed(pack_record_set(r), origin)


def key_of(r: ResourceRecordSet) -> tuple[str, str]:
    return r.name.to_text(), r.type


class Zone(PackedZone):
    """The caller graft_image has in fastdns.hostedcolumns and fastdns.xfr.zonedata: record
    sets packed, keyed by (owner, type)."""

    def key_of(self, owner: bytes, rtype: int):
        return owner.lower(), rtype


def graft(old, references, before, after):
    """PackedZone's graft of the record sets that differ between ``before`` and ``after`` onto
    ``old`` (the image of ``before``): ``(image, references, None)``, or ``(None, None,
    reason)`` when it refuses and the zone would be compiled."""
    zone = Zone("graft.test.")

    def packed(rrsets):
        return {
            zone.key_of(r.name.to_wire(), dns.rdatatype.from_text(r.type)): pack_record_set(r)
            for r in rrsets
        }

    zone.packed = packed(before)
    zone.image, zone.references, zone.compiled_size = old, references, len(old)
    zone.reshaped = False
    now = packed(after)
    for key in [*zone.packed, *now]:
        if zone.packed.get(key) != now.get(key):
            zone.note_change(key)
            if key in now:
                zone.packed[key] = now[key]
            else:
                del zone.packed[key]
    image = zone._graft(dns.name.from_text(ORIGIN))
    if image is None:
        return None, None, zone.refusal
    return image, zone.references, None


def replace(rrsets, key, values, ttl=300):
    return [rrset(r.name_text, r.type, *values, ttl=ttl) if key_of(r) == key else r for r in rrsets]


def random_change(rng: random.Random, zone: list[ResourceRecordSet]) -> list[ResourceRecordSet]:
    """One record set replaced, added (at a name that has others, at a new name under one that
    exists or not, a wildcard among them) or deleted."""
    keys = [key_of(r) for r in zone if r.type != "SOA" and key_of(r) != (ORIGIN, "NS")]
    names = sorted({k[0] for k in keys})
    what = rng.random()
    if what < 0.4:
        key = rng.choice(keys)
        return replace(zone, key, VALUES[key[1]](rng), ttl=rng.choice((60, 300)))
    if what < 0.8:
        rtype = rng.choice(("A", "AAAA", "TXT", "CAA", "PTR", "CNAME", "MX", "NS", "DS"))
        label = rng.choice(("new", "*", "_acme", "x1", "zz", "a"))
        name = rng.choice(
            [
                *names,
                f"{label}.{ORIGIN}",
                f"{label}.{rng.choice(names)}",
                f"{label}.{rng.choice(('b', 'n1', 'zz'))}.{rng.choice(names)}",  # new ENTs
            ]
        )
        if (name, rtype) in map(key_of, zone) or any(
            k[0] == name and (k[1] == "CNAME" or rtype == "CNAME") for k in keys
        ):  # fmt: skip
            return zone
        return [*zone, rrset(name, rtype, *VALUES[rtype](rng))]
    key = rng.choice(keys)
    return [r for r in zone if key_of(r) != key]


def ask(catalog, name: str, rtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rtype)
    query.flags &= ~dns.flags.RD
    return dns.message.from_wire(catalog.answer(query.to_wire()))


@pytest.mark.parametrize("seed", [8, 32, 4, 7])
def test_a_grafted_image_answers_as_a_full_compile(seed):
    rng = random.Random(seed)
    zone = base_zone()
    image, references = compiled(zone)
    serial = 1
    grafted, refused = [], []
    copied = 0
    for step in range(250):
        after = [soa(serial + 1), *zone[1:]]
        for _ in range(rng.randrange(1, 4)):
            after = random_change(rng, after)
        if compile_packed([pack_record_set(r) for r in after], WIRE_ORIGIN)[0] is None:
            continue  # a change the API would refuse (data below the cut, beside the CNAME)
        full, full_references = compiled(after)
        result, new_references, reason = graft(image, references, zone, after)
        changed = {key_of(r) for r in zone} ^ {key_of(r) for r in after} | {
            key_of(r) for r in after if r not in zone and r.type != "SOA"
        }
        owners = [dns.name.from_text(name).to_wire() for name, _type in changed]
        if result is None:
            refused.append(reason)
            image, references = full, full_references  # the caller compiles instead
        else:
            assert_grafted_as_compiled(result, new_references, after, step)
            grafted.append(step)
            copied += bool(copiers_of(image, references, owners))
            image, references = result, new_references
        zone, serial = after, serial + 1
    # Nearly every random change grafts.
    assert len(grafted) > 170, refused
    assert copied > 5  # grafts that wrote the templates copying the changed data again
    # The grafted image loads in the hot path (which checks every offset) and answers with
    # the new values and the new serial.
    catalog = _core.Catalog([image])
    cuts = [r.name for r in zone if r.type == "NS" and r.name.to_text() != ORIGIN]
    assert cuts
    for r in zone:
        if r.type in ("A", "TXT") and not r.name.to_text().startswith("*"):
            response = ask(catalog, r.name.to_text(), r.type)
            if any(r.name.is_subdomain(cut) for cut in cuts):
                assert not response.answer and response.authority[0].rdtype == dns.rdatatype.NS
                continue  # a referral
            assert {x.to_text() for x in response.answer[0]} == {x.to_text() for x in r.rdatas}
    response = ask(catalog, ORIGIN, "HINFO")  # NODATA at the apex
    assert response.rcode() == dns.rcode.NOERROR and not response.answer
    assert response.authority[0][0].serial == serial
    if not any(r.name.to_text() == f"*.{ORIGIN}" for r in zone):
        response = ask(catalog, f"missing.{ORIGIN}", "A")
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert response.authority[0][0].serial == serial


GRAFTED_CHANGES = {
    "a new name under the apex": lambda z: [*z, rrset(f"fresh.{ORIGIN}", "A", "203.0.113.9")],
    "a new name under a leaf": lambda z: [*z, rrset(f"_acme.t1.{ORIGIN}", "TXT", '"token"')],
    "a new wildcard": lambda z: [*z, rrset(f"*.a.deep.{ORIGIN}", "A", "203.0.113.8")],
    "two new names and a type": lambda z: [
        *z,
        rrset(f"zz.{ORIGIN}", "A", "203.0.113.7"),
        rrset(f"aa.{ORIGIN}", "TXT", '"first"'),
        rrset(f"h5.{ORIGIN}", "AAAA", "2001:db8::5"),
    ],
    "a type deleted": lambda z: [r for r in z if key_of(r) != (f"a.deep.{ORIGIN}", "CAA")],
    "a name deleted": lambda z: [r for r in z if r.name.to_text() != f"t3.{ORIGIN}"],
    "a wildcard deleted": lambda z: [r for r in z if r.name.to_text() != f"*.wild.{ORIGIN}"],
    "a CNAME out of the zone replaced": lambda z: replace(
        [*z, rrset(f"out.{ORIGIN}", "CNAME", "lb.elsewhere.example.")],
        (f"out.{ORIGIN}", "CNAME"),
        ["lb2.elsewhere.example."],
    ),
    "a CNAME out of the zone at a new name": lambda z: [
        *z,
        rrset(f"cdn.{ORIGIN}", "CNAME", "edge.elsewhere.example."),
    ],
    "a CNAME replacing a name's other data": lambda z: [
        *(r for r in z if r.name.to_text() != f"t4.{ORIGIN}"),
        rrset(f"t4.{ORIGIN}", "CNAME", "edge.elsewhere.example."),
    ],
    "a CNAME in the zone replaced by one out of it": lambda z: replace(
        z, (f"alias.{ORIGIN}", "CNAME"), ["edge.elsewhere.example."]
    ),
    "an MX out of the zone added": lambda z: [
        *z,
        rrset(f"h9.{ORIGIN}", "MX", "10 mx.elsewhere.example."),
    ],
    "a delegation added": lambda z: [
        *z,
        rrset(f"child.{ORIGIN}", "NS", "ns1.elsewhere.example.", "ns2.elsewhere.example."),
        rrset(f"child.{ORIGIN}", "DS", f"1 13 2 {'ab' * 32}"),
    ],
    "a delegation to a name server in the zone added": lambda z: [
        *z,
        rrset(f"child.{ORIGIN}", "NS", f"h5.{ORIGIN}"),  # sibling glue, RFC 9471 §2.2
    ],
    "a delegation at a name with an address": lambda z: [
        *z,
        rrset(f"h2.{ORIGIN}", "NS", "ns1.elsewhere.example."),  # its A now occluded
    ],
    "a delegation's name servers replaced": lambda z: replace(
        z, (f"ext.{ORIGIN}", "NS"), ["ns3.elsewhere.example.", f"h6.{ORIGIN}"]
    ),
    "a DS added at a delegation": lambda z: [
        *z,
        rrset(f"ext.{ORIGIN}", "DS", f"1 13 2 {'cd' * 32}"),
    ],
    "a delegation deleted": lambda z: [r for r in z if r.name.to_text() != f"ext.{ORIGIN}"],
    "the apex NS replaced": lambda z: replace(
        z, (ORIGIN, "NS"), [f"ns1.{ORIGIN}", f"h9.{ORIGIN}", "ns.other.example."]
    ),
    "an MX to a name the zone lacks": lambda z: replace(  # the lookup noted, as compile does
        z, (f"mx.{ORIGIN}", "MX"), [f"10 mail.absent.{ORIGIN}"]
    ),
    "an MX to a name without addresses": lambda z: replace(
        z,
        (f"mx.{ORIGIN}", "MX"),
        [f"10 t1.{ORIGIN}"],  # TXT only: no additional data
    ),
    "a delegation to a name server without addresses": lambda z: [
        *z,
        rrset(f"child.{ORIGIN}", "NS", f"t1.{ORIGIN}"),
    ],
    "an MX to a name added with it": lambda z: [
        *replace(z, (f"mx.{ORIGIN}", "MX"), [f"10 mail2.{ORIGIN}"]),
        rrset(f"mail2.{ORIGIN}", "A", "203.0.113.25"),
    ],
    "a CNAME to a name added with it": lambda z: [
        *z,
        rrset(f"alias2.{ORIGIN}", "CNAME", f"web2.{ORIGIN}"),
        rrset(f"web2.{ORIGIN}", "TXT", '"new"'),
    ],
    "glue replaced": lambda z: replace(z, (f"ns.sub.{ORIGIN}", "A"), ["203.0.113.30"]),
    "glue added": lambda z: [*z, rrset(f"ns.sub.{ORIGIN}", "AAAA", "2001:db8::30")],
    "an address below a cut added": lambda z: [*z, rrset(f"x.sub.{ORIGIN}", "A", "203.0.113.1")],
    "a delegation with glue given a second server": lambda z: replace(
        z, (f"sub.{ORIGIN}", "NS"), [f"ns.sub.{ORIGIN}", "ns.elsewhere.example."]
    ),
    "a new name below empty non-terminals": lambda z: [
        *z,
        rrset(f"a.b.c.{ORIGIN}", "A", "203.0.113.1"),  # b.c and c: new, empty
    ],
    "new names below one another": lambda z: [
        *z,
        rrset(f"x.y.{ORIGIN}", "TXT", '"below"'),
        rrset(f"y.{ORIGIN}", "A", "203.0.113.2"),
        rrset(f"z.x.y.{ORIGIN}", "A", "203.0.113.3"),
        rrset(f"*.y.{ORIGIN}", "A", "203.0.113.4"),
    ],
    "a delegation and its glue added": lambda z: [
        *z,
        rrset(f"child.{ORIGIN}", "NS", f"ns.child.{ORIGIN}"),
        rrset(f"ns.child.{ORIGIN}", "A", "203.0.113.31"),
    ],
    "a deletion that leaves an empty non-terminal": lambda z: [
        r for r in z if r.name.to_text() != f"a.deep.{ORIGIN}"
    ],
    "a name deleted, its sibling added": lambda z: [
        *[r for r in z if r.name.to_text() != f"h7.{ORIGIN}"],
        rrset(f"h77.{ORIGIN}", "A", "203.0.113.77"),
    ],
}


@pytest.mark.parametrize("change", list(GRAFTED_CHANGES))
def test_names_and_types_added_and_deleted_are_grafted(change):
    zone = base_zone()
    image, references = compiled(zone)
    after = GRAFTED_CHANGES[change]([soa(2), *zone[1:]])
    result, new_references, reason = graft(image, references, zone, after)
    assert reason is None
    assert_grafted_as_compiled(result, new_references, after)


REFUSED_CHANGES = {
    "a new name other answers looked up and did not find": lambda z: [
        *z,
        rrset(f"nothing.{ORIGIN}", "A", "203.0.113.1"),  # dangling's CNAME target
    ],
    "a delegation above names of the zone": lambda z: [
        *z,
        rrset(f"deep.{ORIGIN}", "NS", "ns1.elsewhere.example."),  # a.deep is occluded
    ],
    "a CNAME to a name a wildcard may answer": lambda z: [
        *z,
        rrset(f"cn.{ORIGIN}", "CNAME", f"x.wild.{ORIGIN}"),  # *.wild: mini lacks it
    ],
    "glue below a zone cut": lambda z: [
        *z,
        rrset(f"child.{ORIGIN}", "NS", f"ns.sub.{ORIGIN}"),  # glue of another cut
    ],
    "the SOA changed beyond its serial": lambda z: [soa(2, minimum=60), *z[1:]],
}


@pytest.mark.parametrize("why", list(REFUSED_CHANGES))
def test_a_change_that_reaches_other_answers_is_refused(why):
    zone = base_zone()
    image, references = compiled(zone)
    after = REFUSED_CHANGES[why]([soa(2), *zone[1:]])
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and why in reason


@pytest.mark.parametrize(
    "gone",
    [
        f"t2.{ORIGIN}",  # the name and its only child
        f"_x.t2.{ORIGIN}",  # the child: t2 keeps its TXT
        f"deeper.x.t2.{ORIGIN}",  # leaves x.t2 empty: it goes too (NXDOMAIN, not NODATA)
    ],
)
def test_names_deleted_with_the_empty_non_terminals_they_leave_are_grafted(gone):
    zone = [
        *base_zone(),
        rrset(f"_x.t2.{ORIGIN}", "TXT", '"child"'),
        rrset(f"deeper.x.t2.{ORIGIN}", "A", "203.0.113.9"),
    ]
    image, references = compiled(zone)
    after = [soa(2), *(r for r in zone[1:] if not r.name.to_text().endswith(gone))]
    result, _references, reason = graft(image, references, zone, after)
    assert reason is None
    assert answer_table(result) == answer_table(compiled(after)[0])


def test_a_target_the_zone_lacks_is_noted_so_that_adding_it_later_compiles():
    zone = base_zone()
    image, references = compiled(zone)
    after = replace([soa(2), *zone[1:]], (f"mx.{ORIGIN}", "MX"), [f"10 mail.absent.{ORIGIN}"])
    image, references, reason = graft(image, references, zone, after)
    assert reason is None
    assert absent_names(references) >= {dns.name.from_text(f"absent.{ORIGIN}").to_wire()}
    # mail.absent would now be the MX's additional data: the graft must not take it alone.
    again = [soa(3), *after[1:], rrset(f"mail.absent.{ORIGIN}", "A", "203.0.113.20")]
    result, _references, reason = graft(image, references, after, again)
    assert result is None and "looked up and did not find" in reason


def test_a_target_the_zone_lacks_below_a_name_the_change_adds_is_compiled():
    # The new empty non-terminal b would be the lookup's encloser, not the apex.
    zone = base_zone()
    image, references = compiled(zone)
    after = replace([soa(2), *zone[1:]], (f"mx.{ORIGIN}", "MX"), [f"10 c.b.{ORIGIN}"])
    after = [*after, rrset(f"a.b.{ORIGIN}", "A", "203.0.113.21")]
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and "no name of the zone's" in reason


def test_an_empty_non_terminal_other_answers_look_up_is_not_deleted_by_a_graft():
    # x.t2 answers NODATA through the CNAME; without it the chain ends in NXDOMAIN.
    zone = [
        *base_zone(),
        rrset(f"deeper.x.t2.{ORIGIN}", "A", "203.0.113.9"),
        rrset(f"to-ent.{ORIGIN}", "CNAME", f"x.t2.{ORIGIN}"),
    ]
    image, references = compiled(zone)
    after = [soa(2), *(r for r in zone[1:] if r.name.to_text() != f"deeper.x.t2.{ORIGIN}")]
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and "empty non-terminal other answers look up" in reason


COPIED = {
    "the apex NS's in-zone name server's address": (f"ns1.{ORIGIN}", "A", ["203.0.113.1"]),
    "the address at the end of a CNAME": (f"www.{ORIGIN}", "A", ["203.0.113.2", "203.0.113.3"]),
    "a new type at the end of a CNAME": (f"www.{ORIGIN}", "AAAA", ["2001:db8::10"]),
    "an MX target's address": (f"mail.{ORIGIN}", "A", ["203.0.113.4"]),
    "an MX target's IPv6 address deleted": (f"mail.{ORIGIN}", "AAAA", None),
    "a CNAME target's data deleted": (f"www.{ORIGIN}", "TXT", None),
}


@pytest.mark.parametrize("change", list(COPIED))
def test_a_change_to_data_other_answers_copy_writes_their_templates_again(change):
    # compile.note_data keeps which templates copy each name's data (a CNAME's chain, an MX's
    # or the apex NS's additional addresses): they are written again with the change.
    name, rtype, values = COPIED[change]
    zone = base_zone()
    image, references = compiled(zone)
    after = [soa(2), *zone[1:]]
    if values is None:
        after = [r for r in after if key_of(r) != (name, rtype)]
    elif (name, rtype) in map(key_of, after):
        after = replace(after, (name, rtype), values)
    else:
        after = [*after, rrset(name, rtype, *values)]
    assert copiers_of(image, references, [dns.name.from_text(name).to_wire()])
    result, new_references, reason = graft(image, references, zone, after)
    assert reason is None
    assert_grafted_as_compiled(result, new_references, after)


def absent_names(references) -> set[bytes]:
    """The names graft references note as looked up and not found."""
    table, names, at = references[1], set(), 0
    while at < len(table):
        end = at
        while table[end]:
            end += 1 + table[end]
        names.add(table[at : end + 1])
        at = end + 1
    return names


def copied_pairs(references) -> set[tuple[int, int]]:
    """The (node, copier) pairs graft references hold."""
    table = references[2]
    return {struct.unpack_from("=II", table, at) for at in range(0, len(table), 8)}


def assert_grafted_as_compiled(result, new_references, after, step=None) -> None:
    """``result`` answers as the full compile of ``after`` does, and what the graft notes only
    errs on the safe side: every reference, failed lookup and copier the full compile notes is
    noted (a target a CNAME no longer points at stays noted)."""
    full, full_references = compiled(after)
    assert answer_table(result) == answer_table(full), step
    assert all(f & ~g == 0 for f, g in zip(full_references[0], new_references[0], strict=True)), (
        step
    )
    assert absent_names(full_references) <= absent_names(new_references), step
    assert copied_pairs(full_references) <= copied_pairs(new_references), step


@pytest.mark.parametrize("key", list(REFUSED))
def test_a_replacement_beyond_what_mini_can_hold_is_refused(key):
    zone = base_zone()
    image, references = compiled(zone)
    values, why = REFUSED[key]
    after = replace([soa(2), *zone[1:]], key, values)
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and why in reason


def test_a_serial_that_does_not_match_the_image_is_refused():
    zone = base_zone()
    image, references = compiled(zone)
    key = (f"h1.{ORIGIN}", "A")
    after = replace([soa(8), *zone[1:]], key, ["203.0.113.1"])
    mini = compiled([after[0], after[1], *(r for r in after if key_of(r) == key)])[0]
    change = (dns.name.from_text(key[0]).to_wire(), dns.rdatatype.A, 0)
    result, _references, reason = graft_image(image, mini, [change], 7, 8, references)
    assert result is None and "serial" in reason


def test_a_serial_alone_is_grafted_into_every_template_that_holds_the_soa():
    zone = base_zone()
    image, references = compiled(zone)
    after = [soa(2), *zone[1:]]
    result, _references, reason = graft(image, references, zone, after)
    assert reason is None
    assert answer_table(result) == answer_table(compiled(after)[0])
    assert answer_table(result) != answer_table(image)


def test_soa_timers_are_grafted_with_the_serial():
    # REFRESH, RETRY and EXPIRE are written with the serial into every SOA the templates hold.
    zone = base_zone()
    image, references = compiled(zone)
    key = (f"h1.{ORIGIN}", "A")
    after = replace([soa(2, timers="3600 600 604800"), *zone[1:]], key, ["203.0.113.1"])
    timers = (3600).to_bytes(4, "big") + (600).to_bytes(4, "big") + (604800).to_bytes(4, "big")
    result, _references, reason = graft(image, references, zone, after)
    assert reason is None
    assert answer_table(result) == answer_table(compiled(after)[0])
    mini = compiled(after[:2])[0]
    with pytest.raises(ValueError, match="12 octets"):
        graft_image(image, mini, [], -1, -1, references, None, timers)


def test_foreign_input_is_refused_or_rejected():
    zone = base_zone()
    image, references = compiled(zone)
    mini = compiled([soa(2), zone[1]])[0]
    signed_like = bytearray(image)
    signed_like[88 - 4] = 1  # the header's online-signing word: not an image grafted onto
    assert graft_image(bytes(signed_like), mini, [], 1, 2, references)[0] is None
    assert graft_image(image[:-4], mini, [], 1, 2, references)[0] is None
    with pytest.raises(ValueError):
        graft_image(image, mini, [(b"\x03bad", 1, 0)], 1, 2, references)
    with pytest.raises(ValueError):
        graft_image(image, mini, [(WIRE_ORIGIN, 1, 7)], 1, 2, references)
    with pytest.raises(ValueError):
        graft_image(image, mini, [], 1, -1, references)
    with pytest.raises(ValueError):
        graft_image(image, mini, [], 1, 2, (b"", b""))


# -- through the store and fastdns.hostedzones -------------------------------------------------


def reference_table(store: Store, zone_id: str):
    zone = zone_from_record_sets(dns.name.from_text(ORIGIN), store.record_sets(zone_id).values())
    return answer_table(compile_zone(zone))


def test_hosted_zone_changes_are_grafted_and_answer_as_the_reference(tmp_path, monkeypatch):
    # Every image is large enough to travel in a memfd of its own, the images grafted onto.
    monkeypatch.setattr(snapshot, "SEGMENT_MIN_BYTES", 0)
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, (f"ns1.{ORIGIN}",), base_zone())
    first = compile_hosted_zone(store, hosted.id)
    assert isinstance(first.image, SealedImage)
    columns = _columns[hosted.id]
    compiled_size = len(first.image)
    steps = [
        [("UPSERT", rrset(f"h1.{ORIGIN}", "A", "203.0.113.1"))],  # grafted
        [("UPSERT", rrset(f"t2.{ORIGIN}", "TXT", '"changed"', ttl=60))],  # grafted
        [("UPSERT", rrset(f"mail.{ORIGIN}", "A", "203.0.113.2"))],  # MX target: grafted too
        [("UPSERT", rrset(f"mx.{ORIGIN}", "MX", f"20 h4.{ORIGIN}"))],  # in-zone target: grafted
        [("UPSERT", rrset(f"h2.{ORIGIN}", "A", "203.0.113.3")),
         ("UPSERT", rrset(f"*.wild.{ORIGIN}", "TXT", '"new wild"'))],  # grafted
        [("CREATE", rrset(f"new.{ORIGIN}", "A", "203.0.113.4"))],  # a new name: grafted
        [("UPSERT", rrset(f"h3.{ORIGIN}", "A", "203.0.113.5"))],  # grafted
    ]  # fmt: skip
    grafted = []
    for step, batch in enumerate(steps):
        store.change_record_sets(hosted.id, batch, None)
        result = compile_hosted_zone(store, hosted.id)
        assert answer_table(result.image) == reference_table(store, hosted.id), step
        assert result.serial == step + 2
        grafted.append(len(result.image) != columns.compiled_size)
        assert result.image is columns.image
    assert grafted == [True] * len(steps)
    assert compiled_size  # the first image was compiled, not grafted


def test_a_zone_compiles_again_once_grafts_have_grown_it(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "SEGMENT_MIN_BYTES", 0)
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, (f"ns1.{ORIGIN}",), base_zone())
    compile_hosted_zone(store, hosted.id)
    columns = _columns[hosted.id]
    sizes = []
    long_text = '"' + "x" * 200 + '"'
    for step in range(40):
        store.change_record_sets(
            hosted.id,
            [("UPSERT", rrset(f"t{step % 10}.{ORIGIN}", "TXT", long_text, f'"{step}"'))],
            None,
        )
        result = compile_hosted_zone(store, hosted.id)
        sizes.append(len(result.image) - columns.compiled_size)
    assert answer_table(result.image) == reference_table(store, hosted.id)
    # Grafts grow the image until it is an eighth larger; then it is compiled afresh.
    assert max(sizes) > columns.compiled_size // 8 - 512 and sizes.count(0) >= 2


def test_a_grafted_zone_goes_to_the_reference_path_and_back(tmp_path, monkeypatch):
    """A routing-policy record set sends the zone through the model (nothing to graft onto
    then); once it goes, the zone is compiled natively afresh and grafted onto again."""
    monkeypatch.setattr(snapshot, "SEGMENT_MIN_BYTES", 0)
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(ORIGIN, "ref", None, (f"ns1.{ORIGIN}",), base_zone())
    compile_hosted_zone(store, hosted.id)
    columns = _columns[hosted.id]

    def step(*batch):
        store.change_record_sets(hosted.id, list(batch), None)
        result = compile_hosted_zone(store, hosted.id)
        if isinstance(result.zone, HostedZoneModel):
            assert answer_table(result.image) == reference_table(store, hosted.id)
        return result, columns.image is not None and len(result.image) != columns.compiled_size

    assert step(("UPSERT", rrset(f"h1.{ORIGIN}", "A", "203.0.113.1")))[1]  # grafted
    weighted = ResourceRecordSet.from_api(
        {"Name": f"w.{ORIGIN}", "Type": "A", "TTL": 60, "SetIdentifier": "one", "Weight": 1,
         "ResourceRecords": [{"Value": "192.0.2.7"}]}
    )  # fmt: skip
    result, _grafted = step(("CREATE", weighted))
    assert not isinstance(result.zone, HostedZoneModel) and columns.image is None
    result, _grafted = step(("UPSERT", rrset(f"h2.{ORIGIN}", "A", "203.0.113.2")))
    assert not isinstance(result.zone, HostedZoneModel) and columns.image is None
    result, grafted = step(("DELETE", weighted))
    assert isinstance(result.zone, HostedZoneModel) and not grafted  # compiled afresh
    result, grafted = step(("CREATE", rrset(f"fresh.{ORIGIN}", "TXT", '"again"')))
    assert isinstance(result.zone, HostedZoneModel) and grafted


def test_server_serves_grafted_changes(tmp_path):
    """A zone large enough to be grafted onto (1 MiB of image): a value change and the new
    serial are served, a new name after it too, and nothing was compiled through the model."""
    store = Store(tmp_path / "state.db")
    hosted, _ = store.create_hosted_zone(
        ORIGIN, "g1", None, (f"ns1.{ORIGIN}",),
        [*base_zone(), *[rrset(f"n{i}.{ORIGIN}", "A", f"10.0.{i >> 8}.{i & 255}")
                         for i in range(15000)]],
    )  # fmt: skip
    zone_id = hosted.id
    store.close()
    with running_api_server(tmp_path, workers=2) as api:
        client = api.client()
        port = api.dns.port
        api.change_a(zone_id, "UPSERT", f"h7.{ORIGIN}", "192.0.2.77")
        query = dns.message.make_query(f"h7.{ORIGIN}", "A")
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
        assert response.answer[0][0].to_text() == "192.0.2.77"
        serial = client.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=ORIGIN, StartRecordType="SOA", MaxItems="1"
        )["ResourceRecordSets"][0]["ResourceRecords"][0]["Value"].split()[2]
        nx = dns.query.udp(
            dns.message.make_query(f"missing.{ORIGIN}", "A"), "127.0.0.1", port=port, timeout=2
        )
        assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0][0].serial == int(serial)
        api.change_a(zone_id, "CREATE", f"fresh.{ORIGIN}", "192.0.2.77")
        response = dns.query.udp(
            dns.message.make_query(f"fresh.{ORIGIN}", "A"), "127.0.0.1", port=port, timeout=2
        )
        assert response.answer[0][0].to_text() == "192.0.2.77"
        # Data other answers copy: www's address, at the end of alias's CNAME.
        api.change_a(zone_id, "UPSERT", f"www.{ORIGIN}", "192.0.2.88")
        response = dns.query.udp(
            dns.message.make_query(f"alias.{ORIGIN}", "A"), "127.0.0.1", port=port, timeout=2
        )
        assert [r.to_text() for r in response.answer[-1]] == ["192.0.2.88"]
        # A delegation: a name below it gets the referral (RFC 1034 §4.3.2 step 3b).
        api.change_record(zone_id, "CREATE", f"child.{ORIGIN}", "NS", "ns9.elsewhere.example.")
        response = dns.query.udp(
            dns.message.make_query(f"www.child.{ORIGIN}", "A"), "127.0.0.1", port=port, timeout=2
        )
        assert not response.answer and not response.flags & dns.flags.AA
        assert [r.to_text() for r in response.authority[0]] == ["ns9.elsewhere.example."]
        log = api.dns.stderr_text()
        assert "compiled through the model" not in log
        assert log.count("grafted onto the last image") >= 4


@pytest.mark.parametrize(
    ("rtype", "value", "outside"),
    [
        ("CNAME", "lb.elsewhere.example.", True),
        ("CNAME", "WWW.Graft.Test.", False),  # case does not matter (RFC 4343)
        ("CNAME", "graft.test.", False),  # the apex itself
        ("CNAME", "notgraft.test.", True),  # a suffix, but not at a label boundary
        ("CNAME", "graft.test.example.", True),
        ("MX", "10 mail.graft.test.", False),
        ("MX", "10 mail.elsewhere.example.", True),
        ("SRV", "0 5 443 svc.graft.test.", False),
        ("SRV", "0 5 443 svc.elsewhere.example.", True),
    ],
)
def test_targets_outside_the_zone(rtype, value, outside):
    packed = pack_record_set(rrset(f"x.{ORIGIN}", rtype, value))
    assert targets_outside_packed(packed, WIRE_ORIGIN.lower()) is outside


def test_an_mx_or_srv_pointing_inside_the_zone_is_grafted_with_its_targets_addresses():
    # RFC 1034 §4.3.2 step 6: the answer carries the in-zone target's addresses; the small
    # compile is given them, and the target is marked so that a change to it compiles.
    zone = base_zone()
    image, references = compiled(zone)
    after = replace([soa(2), *zone[1:]], (f"mx.{ORIGIN}", "MX"), [f"5 h7.{ORIGIN}"])
    after = [*after, rrset(f"svc.{ORIGIN}", "SRV", f"0 5 443 h8.{ORIGIN}")]
    result, new_references, reason = graft(image, references, zone, after)
    assert reason is None
    assert_grafted_as_compiled(result, new_references, after)
    response = ask(_core.Catalog([result]), f"mx.{ORIGIN}", "MX")
    assert [r.to_text() for r in response.additional] == [f"h7.{ORIGIN} 300 IN A 198.51.100.7"]
    # h7's address is now copied by mx's answer: a change to it writes mx's template again.
    again = replace([soa(3), *after[1:]], (f"h7.{ORIGIN}", "A"), ["203.0.113.77"])
    result, new_references, reason = graft(result, new_references, after, again)
    assert reason is None
    assert answer_table(result) == answer_table(compiled(again)[0])
    response = ask(_core.Catalog([result]), f"mx.{ORIGIN}", "MX")
    assert [r.to_text() for r in response.additional] == [f"h7.{ORIGIN} 300 IN A 203.0.113.77"]


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (f"ns.sub.{ORIGIN}", "glue below a zone cut"),
    ],
)
def test_an_in_zone_target_a_graft_cannot_take_is_compiled(target, why):
    zone = base_zone()
    image, references = compiled(zone)
    after = replace([soa(2), *zone[1:]], (f"mx.{ORIGIN}", "MX"), [f"5 {target}"])
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and why in reason


def test_an_in_zone_target_the_same_change_removes_is_grafted_as_a_failed_lookup():
    zone = base_zone()
    image, references = compiled(zone)
    after = replace([soa(2), *zone[1:]], (f"mx.{ORIGIN}", "MX"), [f"5 h9.{ORIGIN}"])
    after = [r for r in after if key_of(r) != (f"h9.{ORIGIN}", "A")]
    result, new_references, reason = graft(image, references, zone, after)
    assert reason is None
    assert_grafted_as_compiled(result, new_references, after)
    assert dns.name.from_text(f"h9.{ORIGIN}").to_wire() in absent_names(new_references)
    # A CNAME's end removed: its lookup might meet a wildcard mini lacks, so it compiles
    # (refused as a target mini does not hold, before it could be noted as removed).
    mini_parts = [now for now in after if key_of(now)[0] in (ORIGIN, f"mx.{ORIGIN}")]
    mini = compile_packed([pack_record_set(r) for r in mini_parts], WIRE_ORIGIN)[0]
    changes = [
        (dns.name.from_text(f"mx.{ORIGIN}").to_wire(), dns.rdatatype.MX, 0),
        (dns.name.from_text(f"h9.{ORIGIN}").to_wire(), dns.rdatatype.A, 2),
    ]
    h9 = dns.name.from_text(f"h9.{ORIGIN}").to_wire()
    target = [(h9, changes[0][0])]
    result = graft_image(image, mini, changes, 1, 2, references, None, None, target, [h9])
    assert result[0] is None and "CNAME target" in result[2]


def test_targets_outside_the_zone_checks_every_record():
    both = rrset(f"x.{ORIGIN}", "MX", "10 mx.elsewhere.example.", f"20 mail.{ORIGIN}")
    assert not targets_outside_packed(pack_record_set(both), WIRE_ORIGIN.lower())


@pytest.mark.parametrize(
    "target",
    [
        f"h3.{ORIGIN}",  # an address
        ORIGIN,  # the apex: every type, its NS with its in-zone name servers' addresses
        f"mx.{ORIGIN}",  # an MX whose in-zone target's addresses the chain carries too
        f"alias.{ORIGIN}",  # a CNAME itself (to www): each hop is given
        f"nothing.{ORIGIN}",  # absent: NXDOMAIN, the lookup noted as a full compile notes it
        f"dangling.{ORIGIN}",  # a CNAME to an absent name: the same at the second hop
        f"fresh.{ORIGIN}",  # itself: a loop, answered as a full compile answers it
    ],
)
def test_a_cname_into_the_zone_is_grafted_with_its_targets_record_sets(target):
    zone = base_zone()
    image, references = compiled(zone)
    after = [*zone[1:], rrset(f"fresh.{ORIGIN}", "CNAME", target)]
    after = [soa(2), *after]
    result, new_references, reason = graft(image, references, zone, after)
    assert reason is None
    assert_grafted_as_compiled(result, new_references, after)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (f"deep.{ORIGIN}", "does not all hold"),  # an empty non-terminal: NODATA, not NXDOMAIN
        (f"y.x.wild.{ORIGIN}", "a wildcard may answer"),  # below the wildcard's owner
    ],
)
def test_a_cname_into_the_zone_a_graft_cannot_take_is_compiled(target, why):
    zone = base_zone()
    image, references = compiled(zone)
    after = [soa(2), *zone[1:], rrset(f"fresh.{ORIGIN}", "CNAME", target)]
    result, _references, reason = graft(image, references, zone, after)
    assert result is None and why in reason
