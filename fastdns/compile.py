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

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.name
import dns.rdatatype

from fastdns.collector import collector_paused
from fastdns.image import (
    DENIAL_COMPACT,
    DENIAL_NSEC3,
    NODE_CUT,
    NONE,
    TMPL_AA,
    TMPL_ALWAYS_TC,
    TMPL_DENIAL,
    TMPL_OWNER_IS_QNAME,
    TMPL_POLICY,
    Nsec3Tables,
    OnlineSigning,
    Template,
    TrieBuilder,
    member_signing_data,
    name_key,
    pack_image,
)
from fastdns.model import RecordSet, Zone
from fastdns.policy import (
    HEALTH_ALWAYS,
    HEALTH_GROUP,
    POLICY_MULTIVALUE,
    PolicyEnvironment,
    PolicyGroup,
    build_group,
    health_of,
    policy_of,
)
from fastdns.wire import TemplateTooLarge, WireCache, WireName, WireWriter

if TYPE_CHECKING:
    from fastdns.dnssec.signer import ZoneSigner

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
DNSKEY, NSEC3PARAM, NSEC3, RRSIG, NSEC = (
    dns.rdatatype.DNSKEY,
    dns.rdatatype.NSEC3PARAM,
    dns.rdatatype.NSEC3,
    dns.rdatatype.RRSIG,
    dns.rdatatype.NSEC,
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


def compile_zone(
    zone: Zone, env: PolicyEnvironment | None = None, signer: ZoneSigner | None = None
) -> bytes:
    """Compile a validated zone into an image for ``fastdns._core.Catalog``; ``env`` gives
    what routing-policy groups are built from (health-check slots, client classifiers);
    ``signer`` signs the zone (``fastdns.dnssec.signer``)."""
    return compile_zone_with_groups(zone, env, signer).image


def compile_zone_with_groups(
    zone: Zone, env: PolicyEnvironment | None = None, signer: ZoneSigner | None = None
) -> CompiledZone:
    """``compile_zone``, and what each policy group of the image was compiled from.

    With a ``signer`` the zone is served signed (issue 6): DNSKEY and NSEC3PARAM are added at
    the apex, every template gets a signed twin that the hot path sends when the query has the
    DO bit (RFC 3225 §3), and the image carries the NSEC3 chain (RFC 5155) for the denials the
    hot path completes per query. Without one the image is what it has always been.
    """
    with collector_paused():
        if signer is not None:
            zone = _with_dnssec_records(zone, signer)
        compiler = _ZoneCompiler(zone, env or PolicyEnvironment(), signer)
        image = compiler.compile()
        return CompiledZone(image, tuple(compiler.group_info))


def _with_dnssec_records(zone: Zone, signer: ZoneSigner, nsec3: bool | None = None) -> Zone:
    """``zone`` plus the apex DNSKEY and NSEC3PARAM RRsets (RFC 4035 §2.1, RFC 5155 §4);
    without NSEC3PARAM when ``nsec3`` is false (by default: when the zone uses compact
    denial, which has no chain)."""
    from fastdns.dnssec.signer import DNSKEY_TTL

    signed = Zone(zone.origin, dict(zone.rrsets), zone.source)
    signed.rrsets[(zone.origin, DNSKEY)] = [
        RecordSet(zone.origin, DNSKEY, DNSKEY_TTL, tuple(signer.dnskey_rdatas()))
    ]
    if not (nsec3 if nsec3 is not None else not signer.compact):
        return signed
    # RFC 5155 §4: the NSEC3PARAM TTL is not used by resolvers; 0 as BIND and Knot publish it.
    signed.rrsets[(zone.origin, NSEC3PARAM)] = [
        RecordSet(zone.origin, NSEC3PARAM, 0, (signer.nsec3param_rdata(),))
    ]
    return signed


def _is_subdomain(key: Key, parent: Key) -> bool:
    """``Name.is_subdomain`` on keys: ``parent`` is ``key`` or one of its ancestors."""
    return len(key) >= len(parent) and key[len(key) - len(parent) :] == parent


def _is_wildcard(key: Key) -> bool:
    return key[0] == WILDCARD_LABEL


class _ZoneCompiler:
    def __init__(self, zone: Zone, env: PolicyEnvironment, signer: ZoneSigner | None = None):
        self.zone = zone
        self.env = env
        self.signer = signer
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
        self.compact = None
        if self.signer is not None and self.signer.compact:
            from fastdns.dnssec.compact import CompactDenial

            self.compact = CompactDenial(
                self.data, self.cuts, self._occluded, list(self.trie.by_key)
            )
            self.n3_records = []
        elif self.signer is not None:
            self._build_nsec3_chain()
        # Templates 0 and 1 are NODATA and NXDOMAIN (the hot path's TEMPLATE_NODATA and
        # TEMPLATE_NXDOMAIN); their signed twins come after both.
        nodata, nxdomain = self._negative(NOERROR), self._negative(NXDOMAIN)
        self.nodata, self.nxdomain = nodata.finish_plain(), nxdomain.finish_plain()
        nodata.finish_twin()
        nxdomain.finish_twin()
        for key, index in list(self.trie.by_key.items()):
            self._fill(self.trie.nodes[index], key)
        nodes = self.trie.layout()
        online = self._online(nodes) if self._signs_online() else None
        if self.compact is not None:
            return pack_image(self.origin, nodes, self.templates, self.groups, None, online)
        tables = self._nsec3_tables() if self.signer is not None else None
        return pack_image(self.origin, nodes, self.templates, self.groups, tables, online)

    def _signs_online(self) -> bool:
        """Whether the hot path signs for this zone (compact denial, multivalue answers)."""
        from fastdns.dnssec.compact import supports_online

        return self.signer is not None and supports_online(self.signer.keys.zsks[0].algorithm)

    def _online(self, nodes) -> OnlineSigning:
        """The hot path's online signing: the ZSK and, for compact denial, every node's NSEC
        type bitmap."""
        der, tag, algorithm = self.signer.online_key()
        if self.compact is None:
            return OnlineSigning(der, tag, algorithm, self.negative_ttl, DENIAL_NSEC3, [])
        key_of = {index: key for key, index in self.trie.by_key.items()}
        bitmaps = [self.compact.bitmap(key_of[i]) for i in range(len(nodes))]
        return OnlineSigning(der, tag, algorithm, self.negative_ttl, DENIAL_COMPACT, bitmaps)

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
        if group.kind == POLICY_MULTIVALUE and self._signs_online():
            group.signing = _multivalue_signing(members, rdtype, self.origin)
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
    def _writer(self, question: Key, *, owner_is_qname: bool = False) -> _TemplatePair:
        return _TemplatePair(self, question, owner_is_qname)

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

    def _negative(self, rcode: int) -> _TemplatePair:
        """NXDOMAIN / NODATA: the zone's SOA in authority (RFC 2308 §2.1, §2.2).

        The signed twin adds the SOA's RRSIG and is marked TMPL_DENIAL: the hot path appends
        the NSEC3 records that prove the denial for the name it walked to (RFC 5155 §7.2)."""
        w = self._writer(self.apex)
        self._write_soa(w)
        w.flags = TMPL_AA | rcode
        w.denial = True
        return w

    def _write_soa(self, w: _TemplatePair) -> None:
        w.authority(
            self.names.name(self.origin), SOA, self.negative_ttl, self.soa.rdatas, self.apex
        )

    def _positive(self, key: Key, rdtype: int) -> int:
        """The answer from the RRset at ``key``, owned by the query name, with additional data."""
        return self._positive_of(key, self.data[key][rdtype])

    def _positive_of(self, key: Key, rrset: RecordSet, *, additional: bool = True) -> int:
        """``rrset``'s records as the answer for a query name at ``key``."""
        w = self._writer(key, owner_is_qname=_is_wildcard(key))
        w.answer(None, rrset.rdtype, rrset.ttl, rrset.rdatas, key)
        if additional:
            self._additional(w, rrset)
        return w.finish(flags=TMPL_AA)

    def _additional(self, w: _TemplatePair, rrset: RecordSet) -> None:
        """A/AAAA of in-zone NS, MX and SRV targets (RFC 1034 §4.3.2 step 6, RFC 2782)."""
        targets = self._targets(rrset)
        if targets:
            seen: set = set()
            for target in targets:
                if _is_subdomain(target.key, self.apex):
                    self._write_addresses(w, target, seen)

    def _write_addresses(self, w: _TemplatePair, target: WireName, seen: set) -> None:
        """The A and AAAA RRsets of ``target`` not in ``seen``, in the additional section."""
        types = self.data.get(target.key, {})
        for t in (A, AAAA):
            addr = types.get(t)
            if addr is None or (target.key, t) in seen or (target.key, t) in self.policy:
                continue
            seen.add((target.key, t))
            for rdata in addr.rdatas:
                w.additional(target, t, addr.ttl, rdata)

    def _referral(self, cut: Key) -> int:
        """RFC 1034 §4.3.2 step 3b: NS in authority, glue in additional, AA clear."""
        w = self._writer(cut)
        # The cut is the question, so its NS owner is a pointer to it whatever the spelling.
        self._write_delegation(w, cut, self.names.labels(cut))
        return w.finish()

    def _write_delegation(self, w: _TemplatePair, cut: Key, cut_name: WireName) -> None:
        """The cut's NS RRset, then its glue.

        In-domain glue (below the cut) is required; sibling glue elsewhere in the zone is
        optional and may be dropped to fit (RFC 9471 §2.1, §2.2). Signed, the NS RRset stays
        unsigned (the child's data, RFC 4035 §2.2) and is followed by the DS RRset and its
        RRSIG, or by the NSEC3 matching the cut that proves there is no DS (RFC 4035 §3.1.4,
        RFC 5155 §7.2.7).
        """
        ns_set = self.data[cut][NS]
        w.authority(cut_name, NS, ns_set.ttl, ns_set.rdatas, None)
        ds = self.data[cut].get(DS)
        if ds is not None:
            w.signed_authority(cut_name, DS, ds.ttl, ds.rdatas, cut)
        else:
            w.proof(lambda: [self._n3_match(cut)])
        targets = self._targets(ns_set)
        in_domain = [t for t in targets if _is_subdomain(t.key, cut)]
        sibling = [
            t for t in targets if _is_subdomain(t.key, self.apex) and not _is_subdomain(t.key, cut)
        ]
        seen: set = set()
        for group in (in_domain, sibling):
            for target in group:
                self._write_addresses(w, target, seen)
            if group is in_domain:
                w.require_additional()

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

        Returns (hops, end): hops are (owner, CNAME record set, data key) triples after the
        first, the data key being the node that holds the CNAME (the ``*`` node when a
        wildcard synthesised it); end is ("out",) when the target leaves the zone, ("loop",),
        ("policy",) at a CNAME chosen by a routing policy, ("nxdomain", target), ("cut", cut,
        spelling) or ("node", owner, data key) for the node whose data answers the final owner.
        """
        hops: list[tuple[WireName, RecordSet, Key]] = []
        visited = {key}
        target = self.names.name(self.data[key][CNAME].rdatas[0].target)
        for _ in range(MAX_CHAIN):
            if not _is_subdomain(target.key, self.apex):
                return hops, ("out",)
            if target.key in visited:
                return hops, ("loop",)
            found = self._resolve(target.key)
            if found.kind == "nxdomain":
                return hops, ("nxdomain", target)
            if found.kind == "cut":
                return hops, ("cut", found.node, self._spelled_cut(target, found.node))
            types = self.data.get(found.node, {})
            if CNAME not in types:
                return hops, ("node", target, found.node)
            if (found.node, CNAME) in self.policy:
                return hops, ("policy",)
            hops.append((target, types[CNAME], found.node))
            visited.add(target.key)
            target = self.names.name(types[CNAME].rdatas[0].target)
        return hops, ("loop",)

    def _chain(self, key: Key, hops, end, qtype: int | None) -> int:
        w = self._writer(key, owner_is_qname=_is_wildcard(key))
        first = self.data[key][CNAME]
        w.answer(None, CNAME, first.ttl, first.rdatas, key)
        for owner, rrset, data_key in hops:
            w.answer(owner, CNAME, rrset.ttl, rrset.rdatas, data_key)
            if _is_wildcard(data_key) and owner.key != data_key:
                # RFC 5155 §7.2.6: a synthesised answer proves no closer name exists.
                w.proof(lambda o=owner, d=data_key: self._proof_wildcard(o.key, d, nodata=False))
        rcode, required = NOERROR, 0
        if end[0] == "cut":
            # The restarted lookup meets a zone cut: a referral after the CNAMEs (RFC 1034
            # §4.3.2 steps 3a then 3b); AA stays set for the authoritative CNAME part.
            self._write_delegation(w, end[1], end[2])
        elif end[0] == "nxdomain":
            # RFC 6604 §3: the RCODE describes the last name in the chain.
            rcode = NXDOMAIN
            self._write_soa(w)
            w.proof(lambda: self._proof_nxdomain(end[1].key))
            if self.compact is not None:
                w.twin_flags = TMPL_AA | NOERROR  # RFC 9824 §3.1: the name "exists"
        elif end[0] == "node":
            owner, data_key = end[1], end[2]
            final = self.data.get(data_key, {}).get(qtype) if qtype is not None else None
            wildcard = _is_wildcard(data_key) and owner.key != data_key
            if (data_key, qtype) in self.policy:
                pass  # chosen per query: the resolver asks for the target itself
            elif final is not None:
                w.answer(owner, qtype, final.ttl, final.rdatas, data_key)
                if wildcard:
                    w.proof(lambda: self._proof_wildcard(owner.key, data_key, nodata=False))
                self._additional(w, final)
            else:
                self._write_soa(w)
                if wildcard:
                    w.proof(lambda: self._proof_wildcard(owner.key, data_key, nodata=True))
                else:
                    w.proof(lambda: [self._n3_match(data_key)])
        return w.finish(flags=TMPL_AA | rcode, ar_required=required)

    # -- NSEC3 (RFC 5155) --------------------------------------------------------------------
    def _build_nsec3_chain(self) -> None:
        """One NSEC3 per owner name and empty non-terminal, none for names below a cut
        (RFC 5155 §7.1), in hash order, each with its RRSIG (``fastdns.dnssec.nsec3``, which
        zone transfers build the same chain with).

        ``n3_owners[i]`` is the owner of entry ``i``, ``n3_hashes`` the sorted hashes; every
        entry is written into templates as owner + NSEC3 + RRSIG, and into the image's table
        (for the hot path's per-query proofs) in that form too.
        """
        from fastdns.dnssec.nsec3 import nsec3_chain

        chain = nsec3_chain(
            self.origin, self.trie.by_key, self.data, self.cuts, self.signer, self.negative_ttl
        )
        self.n3_hashes = chain.hashes
        self.n3_index = chain.index
        self.n3_records = [  # (owner WireName, NSEC3, NSEC3 rdata, RRSIG rdatas)
            (self.names.labels(owner), NSEC3, rdata, sigs)
            for owner, (rdata, sigs) in zip(chain.owners, chain.records, strict=True)
        ]

    def _n3_match(self, key: Key) -> int:
        """The entry whose owner is the hash of ``key`` (an existing, non-occluded name);
        compact denial: the NSEC owned by ``key``."""
        if self.compact is not None:
            return self._compact_entry(self.compact.match(key))
        return self.n3_index[key]

    def _compact_entry(self, record: int) -> int:
        """A compact-denial NSEC as a proof entry (owner, type, RDATA, RRSIGs), signed once."""
        while len(self.n3_records) < len(self.compact.records):
            owner, rdata = self.compact.records[len(self.n3_records)]
            sigs = self.signer.sign(dns.name.Name(owner), NSEC, self.negative_ttl, [rdata])
            self.n3_records.append((self.names.labels(owner), NSEC, rdata, sigs))
        return record

    def _n3_cover(self, key: Key) -> int:
        """The entry whose owner hash precedes ``key``'s and whose next hash follows it (the
        last entry covers hashes before the first: the chain is circular, RFC 5155 §3.1.7)."""
        from fastdns.dnssec.signer import nsec3_hash_key

        return (bisect.bisect_right(self.n3_hashes, nsec3_hash_key(key)) - 1) % len(self.n3_hashes)

    def _closest_encloser(self, key: Key) -> Key:
        by_key = self.trie.by_key
        for i in range(1, len(key)):
            if key[i:] in by_key:
                return key[i:]
        return self.apex

    def _proof_nxdomain(self, key: Key) -> list[int]:
        """RFC 5155 §7.2.2: the closest encloser's NSEC3, the one covering the next closer
        name, the one covering the wildcard at the closest encloser."""
        if self.compact is not None:
            return [self._compact_entry(self.compact.nxdomain(key))]
        ce = self._closest_encloser(key)
        next_closer = key[len(key) - len(ce) - 1 :]
        return [self._n3_match(ce), self._n3_cover(next_closer), self._n3_cover((b"*", *ce))]

    def _proof_wildcard(self, key: Key, wildcard: Key, *, nodata: bool) -> list[int]:
        """RFC 5155 §7.2.6 (answer: the NSEC3 covering the next closer name) and §7.2.5
        (NODATA: also the closest encloser's and the wildcard's own NSEC3)."""
        if self.compact is not None:
            return [self._compact_entry(self.compact.wildcard(key, wildcard, nodata=nodata))]
        ce = wildcard[1:]
        next_closer = key[len(key) - len(ce) - 1 :]
        cover = self._n3_cover(next_closer)
        if not nodata:
            return [cover]
        return [self._n3_match(ce), cover, self._n3_match(wildcard)]

    def _nsec3_tables(self) -> Nsec3Tables:
        """The chain for the image: entries in hash order as self-contained wire RRs, and per
        node (final numbering) its own entry and the entry covering ``*.<node>``."""
        entries = []
        ttl = self.negative_ttl
        for digest, (owner, _type, rdata, sigs) in zip(
            self.n3_hashes, self.n3_records, strict=True
        ):
            owner_wire = dns.name.Name(owner.labels).to_wire()
            wire = _rr_wire(owner_wire, NSEC3, ttl, rdata)
            for sig in sigs:
                wire += _rr_wire(owner_wire, RRSIG, ttl, sig)
            entries.append((digest, wire, 1 + len(sigs)))
        per_node = [(NONE, NONE)] * len(self.trie.nodes)
        for key, index in self.trie.by_key.items():
            match = self.n3_index.get(key)
            if match is None:
                continue  # occluded: never a closest encloser of an authoritative answer
            per_node[index] = (match, self._n3_cover((b"*", *key)))
        return Nsec3Tables(entries, per_node)


def _multivalue_signing(members, rdtype: int, origin) -> list[bytes] | None:
    """Each multivalue member's records in canonical form, for the hot path to sign the ones
    it chooses as one RRset; None (one member per signed answer) when the members' TTLs differ
    (RFC 2181 §5.2: one RRset, one TTL) or one is an alias."""
    if len({m.ttl for m in members}) != 1 or any(m.alias_target is not None for m in members):
        return None
    return [
        member_signing_data(rdtype, m.ttl, [r.to_digestable(origin) for r in m.rdatas])
        for m in members
    ]


def _rr_wire(owner_wire: bytes, rdtype: int, ttl: int, rdata) -> bytes:
    """One RR without compression (copied as is by the hot path at any offset)."""
    data = rdata.to_wire()
    return owner_wire + struct.pack("!HHIH", rdtype, 1, ttl, len(data)) + data


class _TemplatePair:
    """A template and, in a signed zone, its signed twin, written side by side.

    The twin holds the same records plus, in the answer and authority sections, the RRSIG of
    every authoritative RRset (RFC 4035 §3.1.1), and in the authority section the NSEC3 records
    of ``proof`` (each with its RRSIG, RFC 4035 §3.1.3) and signed-only RRsets (DS in
    referrals, RFC 4035 §3.1.4). Additional-section data is left unsigned (RFC 4035 §3.1.1
    makes its signatures optional). A template compiled for a wildcard node has no additional
    section in its twin: the hot path appends the NSEC3 covering the query's next closer name
    at the end of the message, which must be the authority section then.
    """

    __slots__ = (
        "an",
        "compiler",
        "denial",
        "flags",
        "index",
        "marks",
        "ns",
        "plain",
        "proofs",
        "required",
        "signed",
        "signed_marks",
        "twin_flags",
        "wildcard",
    )

    def __init__(self, compiler: _ZoneCompiler, question: Key, owner_is_qname: bool):
        self.compiler = compiler
        self.plain = WireWriter(question, compiler.names, owner_is_qname=owner_is_qname)
        self.signed = (
            WireWriter(question, compiler.names, owner_is_qname=owner_is_qname)
            if compiler.signer is not None
            else None
        )
        self.wildcard = owner_is_qname
        self.an = [0, 0]
        self.ns = [0, 0]
        self.marks: list[int] = []
        self.signed_marks: list[int] = []
        self.required = 0
        self.proofs: list[int] = []
        self.flags = 0
        self.denial = False  # the twin gets TMPL_DENIAL: the hot path appends the proof
        self.twin_flags: int | None = None  # the twin's flags when not the template's
        self.index = NONE

    def _signatures(self, owner: WireName | None, rdtype, ttl, rdatas, signed_as: Key) -> int:
        signer = self.compiler.signer
        sigs = signer.sign(dns.name.Name(signed_as), rdtype, ttl, rdatas)
        return self.signed.rrset(owner, RRSIG, ttl, sigs)

    def answer(self, owner: WireName | None, rdtype, ttl, rdatas, signed_as: Key) -> None:
        """An RRset in the answer section; ``signed_as``: the owner its RRSIG is made for."""
        self.an[0] += self.plain.rrset(owner, rdtype, ttl, rdatas)
        if self.signed is not None:
            self.an[1] += self.signed.rrset(owner, rdtype, ttl, rdatas)
            self.an[1] += self._signatures(owner, rdtype, ttl, rdatas, signed_as)

    def authority(self, owner: WireName, rdtype, ttl, rdatas, signed_as: Key | None) -> None:
        """An RRset in the authority section, signed in the twin unless ``signed_as`` is None
        (the NS RRset of a referral belongs to the child, RFC 4035 §2.2)."""
        self.ns[0] += self.plain.rrset(owner, rdtype, ttl, rdatas)
        if self.signed is not None:
            self.ns[1] += self.signed.rrset(owner, rdtype, ttl, rdatas)
            if signed_as is not None:
                self.ns[1] += self._signatures(owner, rdtype, ttl, rdatas, signed_as)

    def signed_authority(self, owner: WireName, rdtype, ttl, rdatas, signed_as: Key) -> None:
        """An RRset and its RRSIG in the twin's authority section only."""
        if self.signed is not None:
            self.ns[1] += self.signed.rrset(owner, rdtype, ttl, rdatas)
            self.ns[1] += self._signatures(owner, rdtype, ttl, rdatas, signed_as)

    def proof(self, entries: Callable[[], list[int]]) -> None:
        """NSEC3 entries for the twin's authority section (each once); ``entries`` is only
        called for a signed zone (an unsigned one has no chain)."""
        if self.signed is not None:
            for entry in entries():
                if entry not in self.proofs:
                    self.proofs.append(entry)

    def _flush_proofs(self) -> None:
        ttl = self.compiler.negative_ttl
        for entry in self.proofs:
            owner, rdtype, rdata, sigs = self.compiler.n3_records[entry]
            self.ns[1] += self.signed.rrset(owner, rdtype, ttl, [rdata])
            self.ns[1] += self.signed.rrset(owner, RRSIG, ttl, sigs)
        self.proofs = []

    def additional(self, owner: WireName, rdtype, ttl, rdata) -> None:
        self.marks.append(self.plain.mark())
        self.plain.rr(owner, rdtype, ttl, rdata)
        if self.signed is not None and not self.wildcard:
            self._flush_proofs()
            self.signed_marks.append(self.signed.mark())
            self.signed.rr(owner, rdtype, ttl, rdata)

    def require_additional(self) -> None:
        """The additional RRs written so far must fit, else TC (RFC 9471 in-domain glue)."""
        self.required = len(self.marks)

    def finish(self, *, flags: int = 0, ar_required: int = 0) -> int:
        """The template's index (its twin, if any, follows it)."""
        self.flags = flags
        self.required = max(ar_required, self.required)
        index = self.finish_plain()
        self.finish_twin()
        return index

    def finish_plain(self) -> int:
        self.index = self.compiler._finish(
            self.plain, an=self.an[0], ns=self.ns[0], ar_marks=self.marks,
            ar_required=self.required, flags=self.flags,
        )  # fmt: skip
        return self.index

    def finish_twin(self) -> None:
        if self.signed is None:
            return
        compiler = self.compiler
        self._flush_proofs()
        marks = self.signed_marks
        twin = compiler._finish(
            self.signed, an=self.an[1], ns=self.ns[1], ar_marks=marks,
            ar_required=min(self.required, len(marks)),
            flags=(self.flags if self.twin_flags is None else self.twin_flags)
            | (TMPL_DENIAL if self.denial else 0),
        )  # fmt: skip
        compiler.templates[self.index].twin = twin
