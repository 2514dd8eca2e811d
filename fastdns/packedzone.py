"""A zone's record sets packed for the native compiler, and its image grafted per change (issue 8).

Two kinds of zone change a few record sets at a time while they are served: hosted zones
(the API and RFC 2136 UPDATE, fastdns.hostedcolumns) and secondary zones (RFC 1995 IXFR,
fastdns.xfr.secondary). Both keep each record set packed in the layout
``fastdns._zcompile.compile_packed`` takes -- owner, type, TTL, records in wire format -- and
hand this module the record sets each change touched.

A change to a zone whose image is large -- record sets replaced, added or deleted, and the SOA
serial moved -- is grafted onto the last image (``fastdns._zcompile.graft_image``) rather than
compiled again, where the compiler's rules allow it: the image answers as a full compile would,
for a copy of the old image instead of a compile of every record set. The small compile the
graft copies templates from (``_MiniZone``) holds the changed record sets, what their answers
copy (in-zone targets' addresses, a CNAME target's data, a delegation's every record set),
and the unchanged record sets whose templates copy a changed name's data (``copiers_of``),
which are written again with it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Hashable, Iterable, MutableMapping

import dns.name
import dns.rdatatype

from fastdns._zcompile import NATIVE_TYPES, compile_packed, copiers_of, graft_image
from fastdns.snapshot import SealedImage, image_buffer, sealed_image

__all__ = [
    "PackedZone",
    "in_zone",
    "pack_records",
    "packed_type",
    "targets_inside",
    "targets_outside",
    "unpack_records",
]

log = logging.getLogger("fastdns")

HEAD = struct.Struct("=HIH")  # type, TTL, record count (after the owner)
RDLEN = struct.Struct("=H")
REPLACED, ADDED, DELETED, RETEMPLATED = 0, 1, 2, 3  # graft_image's kinds of change
A, NS, SOA, CNAME, MX, AAAA, SRV, DS = 1, 2, 6, 5, 15, 28, 33, 43

# Grafting (see the module's doc): at most this many record sets changed at once, and until the
# bodies grafted onto an image since its compile are an eighth of it (the old bodies stay in it,
# unused, until the next compile).
GRAFT_MAX_RECORD_SETS = 256
GRAFT_MAX_GROWTH = 8
# At most this many names whose templates copy the changed names' data are written again
# (graft_image takes 64 in-zone targets).
GRAFT_MAX_COPIERS = 32


def pack_records(owner: bytes, rtype: int, ttl: int, rdatas: Iterable[bytes]) -> bytes:
    """One record set in ``compile_packed``'s layout: ``owner`` in uncompressed wire format,
    each RDATA in uncompressed wire format (at most 65535 of them)."""
    rdatas = list(rdatas)
    parts = [bytes((len(owner),)), owner, HEAD.pack(rtype, ttl, len(rdatas))]
    for rdata in rdatas:
        parts.append(RDLEN.pack(len(rdata)))
        parts.append(rdata)
    return b"".join(parts)


def unpack_records(packed: bytes) -> tuple[bytes, int, int, list[bytes]]:
    """``(owner, type, TTL, RDATAs)`` of a record set packed by :func:`pack_records`."""
    owner_end = 1 + packed[0]
    rtype, ttl, count = HEAD.unpack_from(packed, owner_end)
    rdatas = []
    at = owner_end + HEAD.size
    for _ in range(count):
        rdlen = RDLEN.unpack_from(packed, at)[0]
        rdatas.append(packed[at + 2 : at + 2 + rdlen])
        at += 2 + rdlen
    return packed[1:owner_end], rtype, ttl, rdatas


def packed_type(packed: bytes) -> int:
    """The type of a packed record set."""
    return HEAD.unpack_from(packed, 1 + packed[0])[0]


class PackedZone:
    """A zone's packed record sets (``packed``, keyed as the subclass keeps them) and its last
    image when it is large, with what grafting onto it needs. The subclass fills ``packed``,
    notes each record set it touches in ``changed`` (its packed form before, None when it was
    added) and sets ``reshaped`` when the zone must be compiled afresh; :meth:`compile` then
    grafts or compiles."""

    def __init__(self, label: str):
        self.label = label  # what the log calls the zone ("hosted zone Z1", "secondary zone x.")
        self.packed: MutableMapping[Hashable, bytes] = {}
        # Since the last compile: the record sets changed, each with its packed form before
        # (None: added); ``reshaped`` when the zone must be compiled.
        self.changed: dict[Hashable, bytes | None] = {}
        self.reshaped = True
        # The last image when it is large (a SealedImage, shared with the served zone) and what
        # grafting onto it needs: its referenced nodes, record sets, serial and compiled size.
        self.image: SealedImage | None = None
        self.references: bytes | None = None
        self.image_record_sets = 0
        self.image_serial = 0
        self.compiled_size = 0
        self.refusal: str | None = None  # why the last compile was not grafted (None: it was)

    def key_of(self, owner: bytes, rtype: int) -> Hashable:
        """The key of the record set (``owner`` in wire format, any case; ``rtype``)."""
        raise NotImplementedError

    def packed_parts(self) -> list[bytes]:
        """The packed record sets as ``compile_packed``'s parts."""
        return list(self.packed.values())

    def note_change(self, key: Hashable) -> None:
        """Note that the record set ``key`` is about to change (keeps its first packed form)."""
        if key not in self.changed:
            self.changed[key] = self.packed.get(key)

    def compile(
        self, origin: dns.name.Name
    ) -> tuple[bytes | SealedImage | None, str | None, int, int]:
        """``(image, None, record_sets, serial)`` from the packed record sets, or
        ``(None, reason, 0, 0)`` when the native compiler does not take the zone."""
        grafted = self._graft(origin)
        self.changed = {}
        self.reshaped = False
        if grafted is not None:
            return grafted, None, self.image_record_sets, self.image_serial
        self.forget()
        image, reason, record_sets, _soa, _ttl, serial, references = compile_packed(
            self.packed_parts(), origin.to_wire(), image_buffer, with_references=True
        )
        image = sealed_image(image)
        if isinstance(image, SealedImage):
            self.image, self.references = image, references
            self.image_record_sets, self.image_serial = record_sets, serial
            self.compiled_size = len(image)
        return image, reason, record_sets, serial

    def forget(self) -> None:
        """Forget the last image: the next compile is a full one."""
        self.image = self.references = None
        self.changed = {}

    def _graft(self, origin: dns.name.Name) -> SealedImage | None:
        """The last image with this compile's changes grafted on, or None when the zone must
        be compiled (see the module's doc), its reason in ``refusal``."""
        self.refusal = None
        if self.image is None or self.reshaped:
            return self._refuse("no image, or the zone reshaped")
        if len(self.changed) > GRAFT_MAX_RECORD_SETS:
            return self._refuse("too many record sets changed")
        if len(self.image) - self.compiled_size > self.compiled_size // GRAFT_MAX_GROWTH:
            return self._refuse("the grafts have grown the image")
        origin_wire = origin.to_wire().lower()
        soa = self.packed.get(self.key_of(origin_wire, SOA))
        ns = self.packed.get(self.key_of(origin_wire, NS))
        if soa is None or ns is None:
            return self._refuse("no SOA or apex NS")
        changes: list[tuple[bytes, int, int]] = []
        mini = _MiniZone(origin_wire, {self.key_of(origin_wire, SOA): soa})
        mini.sets[self.key_of(origin_wire, NS)] = ns
        serials = [-1, -1]
        timers = None
        added = 0
        given: set[Hashable] = set()  # the record sets given as changes
        for key, before in self.changed.items():
            after = self.packed.get(key)
            if after == before:
                continue  # the same again, or added and deleted
            packed = after if after is not None else before
            rtype = packed_type(packed)
            if rtype == SOA:
                soa_change = _soa_change(before, after) if before and after else None
                if soa_change is None:
                    return self._refuse("the SOA changed beyond its serial and timers")
                *serials, timers = soa_change
                continue
            owner = packed[1 : 1 + packed[0]]
            if not self._give_mini(mini, key, owner, rtype, after):
                return None  # its answers hold other names' data (graft_image's contract)
            kind = ADDED if before is None else DELETED if after is None else REPLACED
            added += (kind == ADDED) - (kind == DELETED)
            changes.append((owner, rtype, kind))
            given.add(key)
        if not changes and serials[0] < 0:
            return self.image
        # The templates that copy a changed name's data (a CNAME to it, an MX naming it...)
        # are written again from mini with it: their record sets go there unchanged.
        copiers = copiers_of(self.image, self.references, [change[0] for change in changes])
        if copiers and len(copiers) > GRAFT_MAX_COPIERS:
            return self._refuse("too many templates copy the changed names' data")
        for copier in copiers or ():
            for rtype in _COPYING_TYPES:
                key = self.key_of(copier, rtype)
                packed = self.packed.get(key)
                if packed is None or key in given:
                    continue
                if not self._give_mini(mini, key, copier, rtype, packed):
                    return None
                changes.append((copier, rtype, RETEMPLATED))
        # mini: the changed record sets, the copiers' and what the answers of both copy.
        mini_image, reason, *_ = compile_packed(list(mini.sets.values()), origin.to_wire())
        if mini_image is None:
            return self._refuse(reason)
        image, references, reason = graft_image(
            self.image, mini_image, changes, *serials, self.references, image_buffer, timers,
            list(mini.targets), list(mini.chains),
        )  # fmt: skip
        if image is None:
            return self._refuse(reason)
        self.image, self.references = sealed_image(image), references
        self.image_record_sets += added
        if serials[1] >= 0:
            self.image_serial = serials[1]
        log.info(
            "%s: %d record sets%s grafted onto the last image (%d bytes more than its compile)",
            self.label,
            len(changes),
            " and the SOA serial" if serials[1] >= 0 else "",
            len(self.image) - self.compiled_size,
        )
        return self.image

    def _refuse(self, reason: str) -> None:
        """Note why this compile is not a graft (``refusal``, logged)."""
        self.refusal = reason
        log.debug("%s: compiled, not grafted: %s", self.label, reason)

    def _sets_at(self, owner: bytes, types: Iterable[int] | None = None) -> dict[Hashable, bytes]:
        """The record sets at ``owner`` of ``types`` (every type the native compiler takes),
        by key."""
        return {
            key: packed
            for key in (self.key_of(owner, t) for t in types or _CHAIN_TYPES)
            if (packed := self.packed.get(key)) is not None
        }

    def _give_mini(
        self, mini: _MiniZone, key: Hashable, owner: bytes, rtype: int, after: bytes | None
    ) -> bool:
        """Give ``mini`` the record set ``key`` (``after``; None: deleted) and what its answers
        copy; False when the graft must not take it (``refusal`` says why)."""
        origin_wire = mini.origin_wire
        if after is not None:
            inside = targets_inside(after, origin_wire) if rtype in _TARGET_OFFSET else []
            if inside and not self._take_targets(mini, owner, rtype, inside):
                return False
            mini.sets[key] = after
        if owner.lower() != origin_wire and (
            rtype in (NS, DS) or self.key_of(owner, NS) in self.packed
        ):
            return self._give_delegation(mini, owner)
        cut = self._cut_above(owner, origin_wire)
        if cut is not None:
            # Glue, or an address the cut hides: graft_image takes the node's shape (none, or
            # gone with its last record set) from mini, which needs the cut and every set there.
            mini.add(self._sets_at(owner), self.changed)
            return self._give_delegation(mini, cut)
        return True

    def _give_delegation(self, mini: _MiniZone, owner: bytes) -> bool:
        """Give ``mini`` the delegation at ``owner``: it takes its whole shape from there
        (graft_image), its referrals, its DS answer and the data it occludes, which need every
        set it has and the addresses of its in-zone name servers (RFC 9471 §2)."""
        delegation = self._sets_at(owner)
        ns = delegation.get(self.key_of(owner, NS))
        inside = targets_inside(ns, mini.origin_wire) if ns is not None else []
        if inside and not self._take_targets(mini, owner, NS, inside):
            return False
        mini.add(delegation, self.changed)
        return True

    def _cut_above(self, owner: bytes, origin_wire: bytes) -> bytes | None:
        """The closest name above ``owner`` and below the apex with an NS record set."""
        name = owner[1 + owner[0] :]
        while len(name) > len(origin_wire):
            if self.key_of(name, NS) in self.packed:
                return name
            name = name[1 + name[0] :]
        return None

    def _take_targets(
        self, mini: _MiniZone, copier: bytes, rtype: int, inside: list[bytes]
    ) -> bool:
        """Note the in-zone targets of an NS, CNAME, MX or SRV record set at ``copier`` and
        give ``mini`` the record sets it must hold for them; False when the graft must not
        take them.

        An NS, MX or SRV answer (and a referral) copies its targets' A and AAAA record sets
        (RFC 1034 §4.3.2 step 6, RFC 9471 §2). A CNAME's answers are its target's
        data of every type (RFC 1034 §3.6.2): every record set of the types with a name there
        is given (``graft_image`` checks that these are all the target has, and that it is no
        CNAME itself)."""
        for target in inside:
            pair = target.lower(), copier.lower()
            if pair in mini.targets:
                continue  # taken for this copier already: a chain that loops, or meets itself
            found = self._sets_at(target, (A, AAAA) if rtype != CNAME else _CHAIN_TYPES)
            if not found and rtype == CNAME:
                # The chain ends at a name without data: NXDOMAIN, unless it is an empty
                # non-terminal or a wildcard answers it, which graft_image refuses.
                mini.targets[pair] = None
                mini.chains[target.lower()] = None
                continue
            # (An NS, MX or SRV target without addresses adds none: graft_image checks that it
            # is a name of the zone, whose lookup a full compile notes as found.)
            mini.targets[pair] = None
            if rtype == CNAME:
                mini.chains[target.lower()] = None
                # The chain's answers carry the additional data of the target's own NS, MX
                # and SRV record sets (their in-zone targets' addresses too) and, where it is a
                # CNAME itself, the next hop's data: each hop is taken the same way.
                for packed in list(found.values()):
                    inner_type = packed_type(packed)
                    inner = (
                        targets_inside(packed, mini.origin_wire)
                        if inner_type in _TARGET_OFFSET
                        else []
                    )
                    if inner and not self._take_targets(mini, copier, inner_type, inner):
                        return False
            mini.add(found, self.changed)
        return True


class _MiniZone:
    """What a graft compiles on its own (``mini``, see graft_image): the record sets by key,
    and the in-zone targets whose data their answers copy, as (target, copier) in order, the
    CNAME targets among them."""

    def __init__(self, origin_wire: bytes, sets: dict[Hashable, bytes]):
        self.origin_wire = origin_wire
        self.sets = sets
        self.targets: dict[tuple[bytes, bytes], None] = {}
        self.chains: dict[bytes, None] = {}

    def add(self, sets: dict[Hashable, bytes], changed: dict) -> None:
        """Add ``sets`` as they are now, but those changed (given as changes, or deleted)."""
        for key, packed in sets.items():
            if key not in changed:
                self.sets.setdefault(key, packed)


# The types whose templates copy other names' data (graft_image's copiers).
_COPYING_TYPES = (NS, CNAME, MX, SRV)
# Types whose answers follow a name in their RDATA (a CNAME chain, MX and SRV targets'
# addresses): the record sets of in-zone targets are given to the small compile.
_TARGET_OFFSET = {NS: 0, CNAME: 0, MX: 2, SRV: 6}  # the name's offset in the RDATA
# The types looked up at a CNAME's in-zone target: every type with a name that the native
# compiler takes (a target with another type is refused by graft_image's check).
_CHAIN_TYPES = tuple(t for t in dns.rdatatype.RdataType if t in NATIVE_TYPES)


def targets_inside(packed: bytes, origin_wire: bytes) -> list[bytes]:
    """The names a packed CNAME, MX or SRV record set points at that are inside the zone
    whose origin is ``origin_wire`` (uncompressed wire format, lower-cased), as the records
    spell them."""
    owner_end = 1 + packed[0]
    rtype, _ttl, count = HEAD.unpack_from(packed, owner_end)
    skip = _TARGET_OFFSET[rtype]
    at = owner_end + HEAD.size
    inside = []
    for _ in range(count):
        rdlen = RDLEN.unpack_from(packed, at)[0]
        name = packed[at + 2 + skip : at + 2 + rdlen]
        at += 2 + rdlen
        if in_zone(name, origin_wire):
            inside.append(name)
    return inside


def in_zone(name: bytes, origin_wire: bytes) -> bool:
    """Whether ``name`` is ``origin_wire`` or below it (both uncompressed wire format; the
    origin lower-cased, the name in any case, RFC 4343)."""
    lower = name.lower()
    cut = len(lower) - len(origin_wire)
    if cut < 0 or not lower.endswith(origin_wire):
        return False
    at = 0
    while at < cut:  # the suffix must start at a label
        at += 1 + lower[at]
    return at == cut


def targets_outside(packed: bytes, origin_wire: bytes) -> bool:
    """Whether every name a packed CNAME, MX or SRV record set points at is outside the zone
    whose origin is ``origin_wire`` (uncompressed wire format, lower-cased)."""
    return not targets_inside(packed, origin_wire)


def _soa_change(before: bytes, after: bytes) -> tuple[int, int, bytes | None] | None:
    """(old serial, new serial, new REFRESH/RETRY/EXPIRE or None when they are the same) when
    two packed SOA record sets differ in those fields alone (the last record's RDATA ends with
    serial, refresh, retry, expire, minimum: RFC 1035 §3.3.13), else None: a change of the
    names, the TTL or MINIMUM (the negative TTL, RFC 2308 §5) is compiled."""
    if len(before) != len(after) or before[-4:] != after[-4:] or before[:-20] != after[:-20]:
        return None
    timers = after[-16:-4] if after[-16:-4] != before[-16:-4] else None
    return int.from_bytes(before[-20:-16], "big"), int.from_bytes(after[-20:-16], "big"), timers
