"""Zone -> compiled zone image: the authoritative answering logic, run once per zone.

For every node of the zone and every kind of question it can be asked, this module decides the
answer the way RFC 1034 §4.3.2 describes (with RFC 2308 negative answers, RFC 4592 wildcards,
RFC 8482 ANY) and encodes it as a template (see ``fastdns.wire``). What is left for the hot path
is the walk down the trie and the choice of template by QTYPE:

* exact match, not a cut: the node's (qtype -> template) table, else its default (NODATA, or the
  CNAME chain ending in NODATA/NXDOMAIN);
* a zone cut on the way down, or at the name with QTYPE != DS: the cut's referral;
* no match: the closest encloser's ``*`` child if it has one (wildcard templates), else NXDOMAIN.

A (name, type) with a routing policy -- several record sets told apart by SetIdentifier, or an
alias to such a group -- gets no single template: its type entry names a policy group
(``TMPL_POLICY | index``) whose members each have their own template, and ``fastdns.policy``
builds the group's table that the hot path evaluates per query. Answers that would need a policy
decision inside a template are cut short instead of frozen at one member's values: a CNAME chain
stops at the name whose data is chosen by policy (the resolver asks for it and gets a per-query
answer), and additional-section addresses of such names are left out (RFC 1034 §4.3.2 step 6
makes them optional).

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
    TMPL_POLICY,
    Template,
    TrieBuilder,
    name_key,
    pack_image,
)
from fastdns.model import RecordSet, Zone
from fastdns.policy import (
    HEALTH_ALWAYS,
    HEALTH_GROUP,
    PolicyEnvironment,
    PolicyGroup,
    build_group,
    health_of,
    policy_of,
)
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
# Alias -> group -> alias ... nesting the hot path evaluates (ext/core_types.pxd MAX_POLICY_DEPTH).
MAX_POLICY_DEPTH = 4

Key = tuple[bytes, ...]  # a name's labels lower-cased, root label last (image.name_key)


@dataclass(frozen=True)
class _Found:
    """Compile-time resolution of a name inside the zone (mirrors the hot path's walk)."""

    kind: str  # "exact" | "wildcard" | "nxdomain" | "cut"
    node: Key  # the node whose data answers (the * node for wildcards, the cut)


@dataclass(frozen=True)
class GroupInfo:
    """What a policy group of an image was compiled from, for explaining its choices: the
    group's record sets in member order (``Catalog.answer_explained`` names members by
    position) and the policy they share."""

    name: dns.name.Name
    rdtype: int
    policy: str | None
    members: tuple[RecordSet, ...]


@dataclass(frozen=True)
class CompiledZone:
    image: bytes
    groups: tuple[GroupInfo, ...]


def compile_zone(zone: Zone, env: PolicyEnvironment | None = None) -> bytes:
    """Compile a validated zone into an image for ``fastdns._core.Catalog``; ``env`` gives
    what routing-policy groups are built from (health-check slots, client classifiers)."""
    return compile_zone_with_groups(zone, env).image


def compile_zone_with_groups(zone: Zone, env: PolicyEnvironment | None = None) -> CompiledZone:
    """``compile_zone``, and what each policy group of the image was compiled from."""
    with _collector_paused():
        compiler = _ZoneCompiler(zone, env or PolicyEnvironment())
        image = compiler.compile()
        return CompiledZone(image, tuple(compiler.group_info))


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
    def __init__(self, zone: Zone, env: PolicyEnvironment):
        self.zone = zone
        self.env = env
        self.origin = zone.origin
        self.apex = name_key(zone.origin)
        self.names = WireCache()
        # The first candidate of every (name, type), for what needs only the name's types; the
        # keys of routing-policy groups (and aliases to them) in ``policy``.
        self.data: dict[Key, dict[int, RecordSet]] = {}
        self.candidates: dict[tuple[Key, int], list[RecordSet]] = {}
        for (name, rdtype), candidates in zone.rrsets.items():
            key = name_key(name)
            self.data.setdefault(key, {})[rdtype] = candidates[0]
            self.candidates[(key, rdtype)] = candidates
        self.policy = {k for k in self.candidates if self._is_policy(k, 0)}
        self.groups: list[PolicyGroup] = []
        self.group_info: list[GroupInfo] = []
        self.group_index: dict[tuple[Key, int, Key], int] = {}
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
        return pack_image(self.origin, nodes, self.templates, self.groups)

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
            if (key, CNAME) in self.policy:
                # Each member names its own canonical name: answer the CNAME alone, for every
                # QTYPE; the resolver restarts at the target (RFC 1034 §4.3.2 step 3a allows
                # the chain to be followed by the resolver).
                group = TMPL_POLICY | self._group(key, CNAME, key, 0)
                node.types = [(CNAME, group), (ANY, group)]
                node.default_template = group
                return
            self._fill_cname(node, key)
            return
        templates = {
            t: TMPL_POLICY | self._group(key, t, key, 0)
            if (key, t) in self.policy
            else self._positive(key, t)
            for t in types
        }
        node.types = list(templates.items())
        node.types.append((ANY, templates[self._any_type(types)]))

    # -- routing-policy groups ---------------------------------------------------------------
    def _is_policy(self, k: tuple[Key, int], depth: int) -> bool:
        """Whether (name, type) is answered per query: a routing-policy group, or an alias
        (possibly through further aliases) to one."""
        candidates = self.candidates.get(k)
        if not candidates:
            return False
        first = candidates[0]
        if len(candidates) > 1 or policy_of(first) is not None:
            return True
        if first.alias_target is None or depth >= MAX_POLICY_DEPTH:
            return False
        return self._is_policy((name_key(first.alias_target), k[1]), depth + 1)

    def _group(self, key: Key, rdtype: int, source: Key, depth: int) -> int:
        """The index of the group answering (``key``, ``rdtype``) with the record sets of
        (``source``, ``rdtype``): ``source`` is ``key`` itself, or the target of an alias at
        ``key`` whose answers must be written for the alias's own name."""
        memo = (key, rdtype, source)
        index = self.group_index.get(memo)
        if index is not None:
            return index
        members = self.candidates[(source, rdtype)]
        templates, health = [], []
        for member in members:
            tmpl, h = self._member(key, rdtype, member, depth)
            templates.append(tmpl)
            health.append(h)
        group = build_group(members, templates, health, self.env)
        self.groups.append(group)
        self.group_info.append(
            GroupInfo(members[0].name, rdtype, policy_of(members[0]), tuple(members))
        )
        index = self.group_index[memo] = len(self.groups) - 1
        return index

    def _member(self, key: Key, rdtype: int, member: RecordSet, depth: int) -> tuple[int, int]:
        """A group member's template (or nested group) and health reference."""
        target = name_key(member.alias_target) if member.alias_target is not None else None
        if (
            target is not None
            and depth + 1 < MAX_POLICY_DEPTH
            and self._is_policy((target, rdtype), depth + 1)
        ):
            nested = self._group(key, rdtype, target, depth + 1)
            health = health_of(member, self.env)
            if health == HEALTH_ALWAYS and member.evaluate_target_health:
                # Route 53: an alias evaluating target health is healthy while any record of
                # the target is.
                health = HEALTH_GROUP | nested
            return TMPL_POLICY | nested, health
        health = health_of(member, self.env)
        if health == HEALTH_ALWAYS and target is not None and member.evaluate_target_health:
            static = self.candidates.get((target, rdtype))
            if static:
                health = health_of(static[0], self.env)
        # Multivalue members are concatenated into one answer by the hot path: their templates
        # hold answer records only.
        additional = rdtype != CNAME and policy_of(member) != "MultiValueAnswer"
        return self._positive_of(key, member, additional=additional), health

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
        return self._positive_of(key, self.data[key][rdtype])

    def _positive_of(self, key: Key, rrset: RecordSet, *, additional: bool = True) -> int:
        """``rrset``'s records as the answer for a query name at ``key``."""
        w = WireWriter(key, self.names, owner_is_qname=_is_wildcard(key))
        an = w.rrset(None, rrset.rdtype, rrset.ttl, rrset.rdatas)
        marks = self._additional(w, rrset) if additional else []
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
            if addr is None or (target.key, t) in seen or (target.key, t) in self.policy:
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
        ("out",) when the target leaves the zone, ("loop",), ("policy",) at a CNAME chosen by a
        routing policy, ("nxdomain",), ("cut", cut,
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
            if (found.node, CNAME) in self.policy:
                return hops, ("policy",)
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
            if (data_key, qtype) in self.policy:
                pass  # chosen per query: the resolver asks for the target itself
            elif final is not None:
                an += w.rrset(owner, qtype, final.ttl, final.rdatas)
                marks = self._additional(w, final)
            else:
                ns = w.rrset(self.names.name(self.origin), SOA, self.negative_ttl, self.soa.rdatas)
        return self._finish(
            w, an=an, ns=ns, ar_marks=marks, ar_required=required, flags=TMPL_AA | rcode
        )
