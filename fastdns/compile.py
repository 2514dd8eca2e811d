"""Zone -> compiled zone image: the authoritative answering logic, run once per zone.

For every node of the zone and every kind of question it can be asked, this module decides the
answer the way RFC 1034 §4.3.2 describes (with RFC 2308 negative answers, RFC 4592 wildcards,
RFC 8482 ANY) and encodes it as a template (see ``fastdns.wire``). What is left for the hot path
is the walk down the trie and the choice of template by QTYPE:

* exact match, not a cut: the node's (qtype -> template) table, else its default (NODATA, or the
  CNAME chain ending in NODATA/NXDOMAIN);
* a zone cut on the way down, or at the name with QTYPE != DS: the cut's referral;
* no match: the closest encloser's ``*`` child if it has one (wildcard templates), else NXDOMAIN.

Names are compared, looked up and walked as :func:`fastdns.image.name_key` tuples (labels
lower-cased, RFC 4343), each converted once: hashing and comparing ``dns.name.Name`` objects in the
inner loops used to be most of the compile time, which the management API pays on every change.
Names are written in the spelling the zone gives them (``fastdns.wire.WireCache``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from fastdns.image import (
    NODE_CUT,
    TMPL_AA,
    TMPL_ALWAYS_TC,
    TMPL_OWNER_IS_QNAME,
    Template,
    TrieBuilder,
    name_key,
    pack_image,
)
from fastdns.model import RecordSet, Zone
from fastdns.wire import TemplateTooLarge, WireCache, WireName, WireWriter

A, AAAA, NS, CNAME, SOA, MX, SRV, DS, ANY = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.NS,
    dns.rdatatype.CNAME,
    dns.rdatatype.SOA,
    dns.rdatatype.MX,
    dns.rdatatype.SRV,
    dns.rdatatype.DS,
    dns.rdatatype.ANY,
)
NOERROR, NXDOMAIN = 0, 3
WILDCARD_LABEL = b"*"
# Longest CNAME chain followed inside a zone; loops are stopped earlier by a visited set.
MAX_CHAIN = 16

Key = tuple[bytes, ...]  # a name's labels lower-cased, root label last (image.name_key)


@dataclass(frozen=True)
class _Found:
    """Compile-time resolution of a name inside the zone (mirrors the hot path's walk)."""

    kind: str  # "exact" | "wildcard" | "nxdomain" | "cut"
    node: Key  # the node whose data answers (the * node for wildcards, the cut)


def compile_zone(zone: Zone) -> bytes:
    """Compile a validated zone into an image for ``fastdns._core.Catalog``."""
    with _collector_paused():
        return _ZoneCompiler(zone).compile()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of a compile.

    A compile allocates a few long-lived objects per name and makes no reference cycles, so
    the collector finds nothing to free, yet every full collection it starts on the way walks
    every object of the zone: a fifth of the time of a 100,000-name compile. Reference counting
    frees everything as usual. A collector that is already off is left alone.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _is_subdomain(key: Key, parent: Key) -> bool:
    """``Name.is_subdomain`` on keys: ``parent`` is ``key`` or one of its ancestors."""
    return len(key) >= len(parent) and key[len(key) - len(parent) :] == parent


def _is_wildcard(key: Key) -> bool:
    return key[0] == WILDCARD_LABEL


class _ZoneCompiler:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.origin = zone.origin
        self.apex = name_key(zone.origin)
        self.names = WireCache()
        # Static data only: a policy group (several candidates) is compiled by the policy step.
        self.data: dict[Key, dict[int, RecordSet]] = {}
        for (name, rdtype), candidates in zone.rrsets.items():
            self.data.setdefault(name_key(name), {})[rdtype] = candidates[0]
        self.cuts = {k for k, types in self.data.items() if NS in types and k != self.apex}
        soa = zone.soa
        if soa is None:
            raise ValueError(f"zone {self.origin} has no SOA at its apex")
        # RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, SOA MINIMUM).
        self.negative_ttl = min(soa.ttl, soa.rdatas[0].minimum)
        self.soa = soa
        self.trie = TrieBuilder(self.origin)
        for key in self.data:
            self.trie.add_key(key)
        self.templates: list[Template] = []

    # -- driver ------------------------------------------------------------------------------
    def compile(self) -> bytes:
        self.nodata = self._negative(NOERROR)
        self.nxdomain = self._negative(NXDOMAIN)
        for key, index in list(self.trie.by_key.items()):
            self._fill(self.trie.nodes[index], key)
        nodes = self.trie.layout()
        return pack_image(self.origin, nodes, self.templates)

    def _fill(self, node, key: Key) -> None:
        node.default_template = self.nodata
        if key in self.cuts:
            # RFC 1034 §4.3.2 step 3b: a referral; RFC 4035 §3.1.4.1: DS is the parent's data.
            node.flags |= NODE_CUT
            node.default_template = self._referral(key)
            node.types = [(DS, self._positive(key, DS) if DS in self.data[key] else self.nodata)]
            return
        types = self.data.get(key)
        if not types or self._occluded(key):
            return  # empty non-terminal (RFC 4592 §2.2.2) or glue below a cut: NODATA
        if CNAME in types:
            self._fill_cname(node, key)
            return
        templates = {t: self._positive(key, t) for t in types}
        node.types = list(templates.items())
        node.types.append((ANY, templates[self._any_type(types)]))

    # -- resolution at compile time ----------------------------------------------------------
    def _occluded(self, key: Key) -> bool:
        """A cut strictly between the apex and ``key`` hides ``key`` (RFC 1034 §4.2.1)."""
        depth = len(key) - len(self.apex)  # labels below the apex
        if depth < 2:
            return False
        cuts = self.cuts
        return any(key[i:] in cuts for i in range(1, depth))

    def _resolve(self, qname: Key) -> _Found:
        """Where the hot path's walk would end for ``qname`` (inside this zone)."""
        by_key = self.trie.by_key
        name = self.apex
        for i in range(len(qname) - len(self.apex) - 1, -1, -1):
            if name in self.cuts:
                return _Found("cut", name)
            child = qname[i:]
            if child not in by_key:
                wildcard = (WILDCARD_LABEL, *name)
                if wildcard in by_key:
                    return _Found("wildcard", wildcard)
                return _Found("nxdomain", name)
            name = child
        if name in self.cuts:
            return _Found("cut", name)
        return _Found("exact", name)

    def _spelled_cut(self, target: WireName, cut: Key) -> WireName:
        """The cut met on the way to ``target``, spelled as the walk saw it: the target's own
        labels below the apex, the zone's origin above."""
        end = len(target.labels) - len(self.apex)
        return self.names.labels(
            target.labels[len(target.labels) - len(cut) : end] + self.origin.labels
        )

    @staticmethod
    def _any_type(types: dict[int, RecordSet]) -> int:
        # RFC 8482 §4.1: ANY may be answered with one RRset; take the lowest type code, which
        # is deterministic and what Knot DNS does.
        return min(types)

    def _targets(self, rrset: RecordSet) -> list[WireName]:
        """The names whose addresses go in the additional section with ``rrset``."""
        if rrset.rdtype == NS or rrset.rdtype == SRV:
            return [self.names.name(r.target) for r in rrset.rdatas]
        if rrset.rdtype == MX:
            return [self.names.name(r.exchange) for r in rrset.rdatas]
        return []

    # -- templates ---------------------------------------------------------------------------
    def _finish(self, w: WireWriter, *, an=0, ns=0, ar_marks=(), ar_required=0, flags=0) -> int:
        if w.owner_is_qname:
            flags |= TMPL_OWNER_IS_QNAME
        try:
            body = w.body()
            template = Template(
                body, w.pointers, an, ns, len(ar_marks), list(ar_marks), ar_required, flags,
                w.qname_len,
            )  # fmt: skip
        except TemplateTooLarge:
            template = Template(b"", [], 0, 0, 0, [], 0, flags | TMPL_ALWAYS_TC, w.qname_len)
        self.templates.append(template)
        return len(self.templates) - 1

    def _negative(self, rcode: int) -> int:
        """NXDOMAIN / NODATA: the zone's SOA in authority (RFC 2308 §2.1, §2.2)."""
        w = WireWriter(self.apex, self.names)
        w.rrset(self.names.name(self.origin), SOA, self.negative_ttl, self.soa.rdatas)
        return self._finish(w, ns=1, flags=TMPL_AA | rcode)

    def _positive(self, key: Key, rdtype: int) -> int:
        """The answer from the RRset at ``key``, owned by the query name, with additional data."""
        w = WireWriter(key, self.names, owner_is_qname=_is_wildcard(key))
        rrset = self.data[key][rdtype]
        an = w.rrset(None, rdtype, rrset.ttl, rrset.rdatas)
        marks = self._additional(w, rrset)
        return self._finish(w, an=an, ar_marks=marks, flags=TMPL_AA)

    def _additional(self, w: WireWriter, rrset: RecordSet) -> list[int]:
        """A/AAAA of in-zone NS, MX and SRV targets (RFC 1034 §4.3.2 step 6, RFC 2782)."""
        marks: list[int] = []
        targets = self._targets(rrset)
        if targets:
            seen: set = set()
            for target in targets:
                if _is_subdomain(target.key, self.apex):
                    self._write_addresses(w, target, seen, marks)
        return marks

    def _write_addresses(self, w: WireWriter, target: WireName, seen: set, marks: list) -> None:
        """The A and AAAA RRsets of ``target`` not in ``seen``; each RR's offset to ``marks``."""
        types = self.data.get(target.key, {})
        for t in (A, AAAA):
            addr = types.get(t)
            if addr is None or (target.key, t) in seen:
                continue
            seen.add((target.key, t))
            for rdata in addr.rdatas:
                marks.append(w.mark())
                w.rr(target, t, addr.ttl, rdata)

    def _referral(self, cut: Key) -> int:
        """RFC 1034 §4.3.2 step 3b: NS in authority, glue in additional, AA clear."""
        w = WireWriter(cut, self.names)
        # The cut is the question, so its NS owner is a pointer to it whatever the spelling.
        ns, marks, required = self._write_delegation(w, cut, self.names.labels(cut))
        return self._finish(w, ns=ns, ar_marks=marks, ar_required=required)

    def _write_delegation(
        self, w: WireWriter, cut: Key, cut_name: WireName
    ) -> tuple[int, list[int], int]:
        """The cut's NS RRset, then its glue; returns (NS count, additional marks, required).

        In-domain glue (below the cut) is required; sibling glue elsewhere in the zone is
        optional and may be dropped to fit (RFC 9471 §2.1, §2.2).
        """
        ns_set = self.data[cut][NS]
        ns = w.rrset(cut_name, NS, ns_set.ttl, ns_set.rdatas)
        targets = self._targets(ns_set)
        in_domain = [t for t in targets if _is_subdomain(t.key, cut)]
        sibling = [
            t for t in targets if _is_subdomain(t.key, self.apex) and not _is_subdomain(t.key, cut)
        ]
        marks: list[int] = []
        required = 0
        seen: set = set()
        for group in (in_domain, sibling):
            for target in group:
                self._write_addresses(w, target, seen, marks)
            if group is in_domain:
                required = len(marks)
        return ns, marks, required

    # -- CNAME -------------------------------------------------------------------------------
    def _fill_cname(self, node, key: Key) -> None:
        """RFC 1034 §4.3.2 step 3a: restart the lookup at the canonical name, within the zone."""
        hops, end = self._chase(key)
        cname = self._positive(key, CNAME)
        node.types = [(CNAME, cname), (ANY, cname)]
        if end[0] == "node":
            data_key = end[2]
            for t in self.data.get(data_key, {}):
                if t != CNAME:
                    node.types.append((t, self._chain(key, hops, end, t)))
        node.default_template = self._chain(key, hops, end, None)

    def _chase(self, key: Key):
        """The CNAME hops after ``key`` and how the chain ends.

        Returns (hops, end): hops are (owner, CNAME record set) pairs after the first; end is
        ("out",) when the target leaves the zone, ("loop",), ("nxdomain",), ("cut", cut,
        spelling) or ("node", owner, data key) for the node whose data answers the final owner.
        """
        hops: list[tuple[WireName, RecordSet]] = []
        visited = {key}
        target = self.names.name(self.data[key][CNAME].rdatas[0].target)
        for _ in range(MAX_CHAIN):
            if not _is_subdomain(target.key, self.apex):
                return hops, ("out",)
            if target.key in visited:
                return hops, ("loop",)
            found = self._resolve(target.key)
            if found.kind == "nxdomain":
                return hops, ("nxdomain",)
            if found.kind == "cut":
                return hops, ("cut", found.node, self._spelled_cut(target, found.node))
            types = self.data.get(found.node, {})
            if CNAME not in types:
                return hops, ("node", target, found.node)
            hops.append((target, types[CNAME]))
            visited.add(target.key)
            target = self.names.name(types[CNAME].rdatas[0].target)
        return hops, ("loop",)

    def _chain(self, key: Key, hops, end, qtype: int | None) -> int:
        w = WireWriter(key, self.names, owner_is_qname=_is_wildcard(key))
        first = self.data[key][CNAME]
        an = w.rrset(None, CNAME, first.ttl, first.rdatas)
        for owner, rrset in hops:
            an += w.rrset(owner, CNAME, rrset.ttl, rrset.rdatas)
        rcode, ns, marks, required = NOERROR, 0, [], 0
        if end[0] == "cut":
            # The restarted lookup meets a zone cut: a referral after the CNAMEs (RFC 1034
            # §4.3.2 steps 3a then 3b); AA stays set for the authoritative CNAME part.
            ns, marks, required = self._write_delegation(w, end[1], end[2])
        elif end[0] == "nxdomain":
            # RFC 6604 §3: the RCODE describes the last name in the chain.
            rcode = NXDOMAIN
            ns = w.rrset(self.names.name(self.origin), SOA, self.negative_ttl, self.soa.rdatas)
        elif end[0] == "node":
            owner, data_key = end[1], end[2]
            final = self.data.get(data_key, {}).get(qtype) if qtype is not None else None
            if final is not None:
                an += w.rrset(owner, qtype, final.ttl, final.rdatas)
                marks = self._additional(w, final)
            else:
                ns = w.rrset(self.names.name(self.origin), SOA, self.negative_ttl, self.soa.rdatas)
        return self._finish(
            w, an=an, ns=ns, ar_marks=marks, ar_required=required, flags=TMPL_AA | rcode
        )
