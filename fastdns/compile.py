"""Zone -> compiled zone image: the authoritative answering logic, run once per zone.

For every node of the zone and every kind of question it can be asked, this module decides the
answer the way RFC 1034 §4.3.2 describes (with RFC 2308 negative answers, RFC 4592 wildcards,
RFC 8482 ANY) and encodes it as a template (see ``fastdns.wire``). What is left for the hot path
is the walk down the trie and the choice of template by QTYPE:

* exact match, not a cut: the node's (qtype -> template) table, else its default (NODATA, or the
  CNAME chain ending in NODATA/NXDOMAIN);
* a zone cut on the way down, or at the name with QTYPE != DS: the cut's referral;
* no match: the closest encloser's ``*`` child if it has one (wildcard templates), else NXDOMAIN.
"""

from __future__ import annotations

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
    pack_image,
)
from fastdns.model import RecordSet, Zone
from fastdns.wire import TemplateTooLarge, WireWriter

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


@dataclass(frozen=True)
class _Found:
    """Compile-time resolution of a name inside the zone (mirrors the hot path's walk)."""

    kind: str  # "exact" | "wildcard" | "nxdomain" | "cut"
    node: dns.name.Name  # the node whose data answers (the * node for wildcards, the cut)


def compile_zone(zone: Zone) -> bytes:
    """Compile a validated zone into an image for ``fastdns._core.Catalog``."""
    return _ZoneCompiler(zone).compile()


class _ZoneCompiler:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.origin = zone.origin
        # Static data only: a policy group (several candidates) is compiled by the policy step.
        self.data: dict[dns.name.Name, dict[int, RecordSet]] = {}
        for (name, rdtype), candidates in zone.rrsets.items():
            self.data.setdefault(name, {})[rdtype] = candidates[0]
        self.cuts = {n for n, types in self.data.items() if NS in types and n != self.origin}
        soa = zone.soa
        if soa is None:
            raise ValueError(f"zone {self.origin} has no SOA at its apex")
        # RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, SOA MINIMUM).
        self.negative_ttl = min(soa.ttl, soa.rdatas[0].minimum)
        self.soa = soa
        self.trie = TrieBuilder(self.origin)
        for name in self.data:
            self.trie.add(name)
        self.templates: list[Template] = []
        self._memo: dict[tuple, int] = {}

    # -- driver ------------------------------------------------------------------------------
    def compile(self) -> bytes:
        self.nodata = self._negative(NOERROR)
        self.nxdomain = self._negative(NXDOMAIN)
        for name, index in list(self.trie.by_name.items()):
            self._fill(self.trie.nodes[index], name)
        nodes = self.trie.layout()
        return pack_image(self.origin, nodes, self.templates)

    def _fill(self, node, name: dns.name.Name) -> None:
        node.default_template = self.nodata
        if name in self.cuts:
            # RFC 1034 §4.3.2 step 3b: a referral; RFC 4035 §3.1.4.1: DS is the parent's data.
            node.flags |= NODE_CUT
            node.default_template = self._referral(name)
            node.types = [(DS, self._positive(name, DS) if DS in self.data[name] else self.nodata)]
            return
        types = self.data.get(name, {})
        if not types or self._occluded(name):
            return  # empty non-terminal (RFC 4592 §2.2.2) or glue below a cut: NODATA
        if CNAME in types:
            self._fill_cname(node, name)
            return
        node.types = [(t, self._positive(name, t)) for t in types]
        node.types.append((ANY, self._positive(name, self._any_type(types))))

    # -- resolution at compile time ----------------------------------------------------------
    def _occluded(self, name: dns.name.Name) -> bool:
        n = name.parent() if name != self.origin else name
        while n != self.origin:
            if n in self.cuts:
                return True
            n = n.parent()
        return False

    def _resolve(self, qname: dns.name.Name) -> _Found:
        """Where the hot path's walk would end for ``qname`` (inside this zone)."""
        relative = qname.relativize(self.origin).labels
        name = self.origin
        for i in range(len(relative) - 1, -1, -1):
            if name != self.origin and name in self.cuts:
                return _Found("cut", name)
            child = dns.name.Name(relative[i:] + self.origin.labels)
            if child not in self.trie.by_name:
                wildcard = dns.name.Name((WILDCARD_LABEL, *name.labels))
                if wildcard in self.trie.by_name:
                    return _Found("wildcard", wildcard)
                return _Found("nxdomain", name)
            name = child
        if name != self.origin and name in self.cuts:
            return _Found("cut", name)
        return _Found("exact", name)

    @staticmethod
    def _any_type(types: dict[int, RecordSet]) -> int:
        # RFC 8482 §4.1: ANY may be answered with one RRset; take the lowest type code, which
        # is deterministic and what Knot DNS does.
        return min(types)

    # -- templates ---------------------------------------------------------------------------
    def _is_wildcard(self, name: dns.name.Name) -> bool:
        return name.labels[0] == WILDCARD_LABEL

    def _finish(self, w: WireWriter, *, an=0, ns=0, ar_marks=(), ar_required=0, flags=0) -> int:
        if w.owner_is_qname:
            flags |= TMPL_OWNER_IS_QNAME
        try:
            body = w.body()
            template = Template(
                body, w.pointers, an, ns, len(ar_marks), list(ar_marks), ar_required, flags,
                len(w.question.to_wire()),
            )  # fmt: skip
        except TemplateTooLarge:
            template = Template(
                b"", [], 0, 0, 0, [], 0, flags | TMPL_ALWAYS_TC, len(w.question.to_wire())
            )
        self.templates.append(template)
        return len(self.templates) - 1

    def _memoized(self, key: tuple, build) -> int:
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = build()
        return found

    def _negative(self, rcode: int) -> int:
        """NXDOMAIN / NODATA: the zone's SOA in authority (RFC 2308 §2.1, §2.2)."""
        w = WireWriter(self.origin)
        w.rrset(self.origin, SOA, self.negative_ttl, self.soa.rdatas)
        return self._finish(w, ns=1, flags=TMPL_AA | rcode)

    def _positive(self, name: dns.name.Name, rdtype: int) -> int:
        def build() -> int:
            w = WireWriter(name, owner_is_qname=self._is_wildcard(name))
            rrset = self.data[name][rdtype]
            an = w.rrset(None, rdtype, rrset.ttl, rrset.rdatas)
            marks = self._additional(w, [rrset], exclude=set())
            return self._finish(w, an=an, ar_marks=marks, flags=TMPL_AA)

        return self._memoized(("positive", name, rdtype), build)

    def _additional(self, w: WireWriter, rrsets, exclude: set) -> list[int]:
        """A/AAAA of in-zone NS, MX and SRV targets (RFC 1034 §4.3.2 step 6, RFC 2782)."""
        marks: list[int] = []
        seen = set(exclude)
        for rrset in rrsets:
            for target in _targets(rrset):
                if not target.is_subdomain(self.origin):
                    continue
                for t in (A, AAAA):
                    addr = self.data.get(target, {}).get(t)
                    if addr is None or (target, t) in seen:
                        continue
                    seen.add((target, t))
                    for rdata in addr.rdatas:
                        marks.append(w.mark())
                        w.rr(target, t, addr.ttl, rdata)
        return marks

    def _referral(self, cut: dns.name.Name) -> int:
        """RFC 1034 §4.3.2 step 3b: NS in authority, glue in additional, AA clear."""
        w = WireWriter(cut)
        ns, marks, required = self._write_delegation(w, cut)
        return self._finish(w, ns=ns, ar_marks=marks, ar_required=required)

    def _write_delegation(self, w: WireWriter, cut: dns.name.Name) -> tuple[int, list[int], int]:
        """The cut's NS RRset, then its glue; returns (NS count, additional marks, required).

        In-domain glue (below the cut) is required; sibling glue elsewhere in the zone is
        optional and may be dropped to fit (RFC 9471 §2.1, §2.2).
        """
        ns_set = self.data[cut][NS]
        ns = w.rrset(cut, NS, ns_set.ttl, ns_set.rdatas)
        in_domain = [t for t in _targets(ns_set) if t.is_subdomain(cut)]
        sibling = [
            t for t in _targets(ns_set) if t.is_subdomain(self.origin) and not t.is_subdomain(cut)
        ]
        marks: list[int] = []
        required = 0
        seen: set = set()
        for group in (in_domain, sibling):
            for target in group:
                for t in (A, AAAA):
                    addr = self.data.get(target, {}).get(t)
                    if addr is None or (target, t) in seen:
                        continue
                    seen.add((target, t))
                    for rdata in addr.rdatas:
                        marks.append(w.mark())
                        w.rr(target, t, addr.ttl, rdata)
            if group is in_domain:
                required = len(marks)
        return ns, marks, required

    # -- CNAME -------------------------------------------------------------------------------
    def _fill_cname(self, node, name: dns.name.Name) -> None:
        """RFC 1034 §4.3.2 step 3a: restart the lookup at the canonical name, within the zone."""
        hops, end = self._chase(name)
        node.types = [(CNAME, self._positive(name, CNAME)), (ANY, self._positive(name, CNAME))]
        if end[0] == "node":
            _owner, data_name = end[1], end[2]
            for t in self.data.get(data_name, {}):
                if t != CNAME:
                    node.types.append((t, self._chain(name, hops, end, t)))
        node.default_template = self._chain(name, hops, end, None)

    def _chase(self, name: dns.name.Name):
        """The CNAME hops after ``name`` and how the chain ends.

        Returns (hops, end): hops are (owner, CNAME record set) pairs after the first; end is
        ("out",) when the target leaves the zone, ("loop",), ("nxdomain",), ("cut", cut) or
        ("node", owner, data_name) for the node whose data answers the final owner.
        """
        hops: list[tuple[dns.name.Name, RecordSet]] = []
        visited = {name}
        target = self.data[name][CNAME].rdatas[0].target
        for _ in range(MAX_CHAIN):
            if not target.is_subdomain(self.origin):
                return hops, ("out",)
            if target in visited:
                return hops, ("loop",)
            found = self._resolve(target)
            if found.kind == "nxdomain":
                return hops, ("nxdomain",)
            if found.kind == "cut":
                return hops, ("cut", found.node)
            types = self.data.get(found.node, {})
            if CNAME not in types:
                return hops, ("node", target, found.node)
            hops.append((target, types[CNAME]))
            visited.add(target)
            target = types[CNAME].rdatas[0].target
        return hops, ("loop",)

    def _chain(self, name: dns.name.Name, hops, end, qtype: int | None) -> int:
        w = WireWriter(name, owner_is_qname=self._is_wildcard(name))
        first = self.data[name][CNAME]
        an = w.rrset(None, CNAME, first.ttl, first.rdatas)
        for owner, rrset in hops:
            an += w.rrset(owner, CNAME, rrset.ttl, rrset.rdatas)
        rcode, ns, marks, required = NOERROR, 0, [], 0
        if end[0] == "cut":
            # The restarted lookup meets a zone cut: a referral after the CNAMEs (RFC 1034
            # §4.3.2 steps 3a then 3b); AA stays set for the authoritative CNAME part.
            ns, marks, required = self._write_delegation(w, end[1])
        elif end[0] == "nxdomain":
            # RFC 6604 §3: the RCODE describes the last name in the chain.
            rcode = NXDOMAIN
            ns = w.rrset(self.origin, SOA, self.negative_ttl, self.soa.rdatas)
        elif end[0] == "node":
            owner, data_name = end[1], end[2]
            final = self.data.get(data_name, {}).get(qtype) if qtype is not None else None
            if final is not None:
                an += w.rrset(owner, qtype, final.ttl, final.rdatas)
                marks = self._additional(w, [final], exclude=set())
            else:
                ns = w.rrset(self.origin, SOA, self.negative_ttl, self.soa.rdatas)
        return self._finish(
            w, an=an, ns=ns, ar_marks=marks, ar_required=required, flags=TMPL_AA | rcode
        )


def _targets(rrset: RecordSet) -> list[dns.name.Name]:
    if rrset.rdtype == NS:
        return [r.target for r in rrset.rdatas]
    if rrset.rdtype == MX:
        return [r.exchange for r in rrset.rdatas]
    if rrset.rdtype == SRV:
        return [r.target for r in rrset.rdatas]
    return []
