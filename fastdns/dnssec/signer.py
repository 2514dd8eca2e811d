"""Signatures and NSEC3 records for one compile of a signed zone.

What does not depend on the query is signed at compile time: ``fastdns.compile`` asks a
``ZoneSigner`` for the RRSIGs of every authoritative RRset a template holds and, in the NSEC3
mode, for the zone's NSEC3 chain, and writes them into the signed twin of each template. In
the compact-denial mode (the default, Route 53's) the NSEC records that name the query name are
signed by the hot path with the ZSK ``online_key`` gives it (``ext/online.pxi``).

* RRSIG (RFC 4034 §3): inception an hour in the past (clock skew between us and validators),
  expiration ``VALIDITY`` ahead plus up to ``JITTER`` per RRset so that re-signing work does not
  all fall due at once. The supervisor recompiles a signed zone once half the validity has passed
  (``resign_at``), so no served signature comes near its expiration. The DNSKEY RRset is signed
  by the active KSKs, everything else by the ZSKs (RFC 4033 §2's split; RFC 6781 §3.1).
* NSEC3 (RFC 5155) with RFC 9276 §3.1's parameters: SHA-1, no extra iterations, empty salt,
  no opt-out. Hashes are of the canonical (lower-cased) wire name (RFC 5155 §5).
"""

from __future__ import annotations

import base64
import hashlib
import random
import time

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rrset
from dns.rdtypes.util import Bitmap

from fastdns.dnssec.compact import supports_online
from fastdns.dnssec.keys import DNSKEY_TTL
from fastdns.dnssec.keystore import DENIAL_COMPACT, DENIAL_NSEC3, ZoneKeys

__all__ = [
    "DENIAL_COMPACT",
    "DENIAL_NSEC3",
    "DNSKEY_TTL",
    "INCEPTION_SKEW",
    "JITTER",
    "VALIDITY",
    "ZoneSigner",
    "nsec3_hash_key",
]

VALIDITY = 14 * 86400
INCEPTION_SKEW = 3600
JITTER = 4 * 3600
NSEC3_SHA1 = 1  # RFC 5155 §11
NSEC3_ITERATIONS = 0  # RFC 9276 §3.1
NSEC3_SALT = b""


def nsec3_hash_key(key: tuple[bytes, ...]) -> bytes:
    """The NSEC3 hash (RFC 5155 §5) of a name given by its lower-cased labels, with RFC 9276
    parameters: one SHA-1 over the canonical wire name and the empty salt."""
    wire = b"".join(bytes((len(label),)) + label for label in key)
    return hashlib.sha1(wire + NSEC3_SALT).digest()


def hash_label(digest: bytes) -> bytes:
    """An NSEC3 owner's first label: the hash in lower-case base32hex (RFC 4648 §7)."""
    return base64.b32hexencode(digest).lower()


class ZoneSigner:
    """Signs the RRsets of one zone with ``keys``; ``now`` is the clock (tests pass their own).

    Signatures are cached by RRset and signing key, so an RRset that appears in many templates
    (the apex NS, a CNAME chain's hops) is signed once per compile, and a recompile after a
    change (``previous``: the signer of the zone's last compile) reuses every signature made
    less than half a validity ago and signs only what changed. ``signatures`` counts the
    signatures made (not reused).
    """

    def __init__(
        self,
        origin: dns.name.Name,
        keys: ZoneKeys,
        now: float | None = None,
        previous: ZoneSigner | None = None,
        denial: str = DENIAL_COMPACT,
    ):
        self.origin = origin
        self.keys = keys
        # Compact denial needs the hot path to sign (ECDSA P-256 and Ed25519); a zone whose ZSK
        # has another algorithm keeps NSEC3.
        if denial == DENIAL_COMPACT and not supports_online(keys.zsks[0].algorithm):
            denial = DENIAL_NSEC3
        self.denial = denial
        self.now = int(time.time() if now is None else now)
        self.inception = self.now - INCEPTION_SKEW
        self._random = random.Random()
        # RRset and key -> (RRSIGs, when they were made); only what this compile used.
        self._cache: dict[tuple, tuple[tuple, int]] = {}
        self._previous = previous._cache if previous is not None else {}
        self._oldest = self.now  # when the oldest signature this compile serves was made
        self.signatures = 0

    @property
    def compact(self) -> bool:
        return self.denial == DENIAL_COMPACT

    def online_key(self) -> tuple[bytes, int, int]:
        """The ZSK the hot path signs with: (PKCS#8 DER private key, key tag, algorithm)."""
        from cryptography.hazmat.primitives import serialization

        key = self.keys.zsks[0]
        der = key.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return der, key.tag, key.algorithm

    @property
    def resign_at(self) -> float:
        """When the oldest signature served is half-way to its expiration: the zone must be
        compiled again by then (the signatures made then replace every older one)."""
        return self._oldest + VALIDITY / 2

    def dnskey_rdatas(self) -> list:
        """The apex DNSKEY RRset: every active KSK, the signing ZSK and the ZSKs published
        before or after their time (rollover)."""
        return [k.dnskey for k in (*self.keys.ksks, *self.keys.zsks, *self.keys.standby)]

    @staticmethod
    def nsec3param_rdata():
        return dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC3PARAM,
            NSEC3_SHA1,
            0,
            NSEC3_ITERATIONS,
            NSEC3_SALT,
        )

    @staticmethod
    def nsec3_rdata(next_digest: bytes, types) -> object:
        """An NSEC3 RDATA (RFC 5155 §3.2) naming the next hash and the owner's types."""
        return dns.rdtypes.ANY.NSEC3.NSEC3(
            dns.rdataclass.IN,
            dns.rdatatype.NSEC3,
            NSEC3_SHA1,
            0,  # no opt-out (RFC 9276 §3.1)
            NSEC3_ITERATIONS,
            NSEC3_SALT,
            next_digest,
            Bitmap.from_rdtypes(sorted(types)).windows,
        )

    def sign(self, owner: dns.name.Name, rdtype: int, ttl: int, rdatas) -> tuple:
        """The RRSIG RDATAs of the RRset (``owner``, ``rdtype``): one per signing key.

        ``owner`` is the RRset's real owner: for wildcard synthesis the ``*`` name, whose
        RRSIG Labels field then leaves the ``*`` out (RFC 4034 §3.1.3, RFC 4035 §5.3.2).
        """
        keys = self.keys.ksks if rdtype == dns.rdatatype.DNSKEY else self.keys.zsks
        cache_key = (
            owner,
            rdtype,
            ttl,
            tuple(sorted(r.to_digestable(owner) for r in rdatas)),
            tuple(k.dnskey.key for k in keys),
        )
        found = self._cache.get(cache_key)
        if found is not None:
            return found[0]
        found = self._previous.get(cache_key)
        if found is not None and self.now < found[1] + VALIDITY / 2:
            self._cache[cache_key] = found
            self._oldest = min(self._oldest, found[1])
            return found[0]
        from dns import dnssec  # imported here: see fastdns.dnssec.keys

        rrset = dns.rrset.from_rdata_list(owner, ttl, list(rdatas))
        expiration = self.now + VALIDITY + self._random.randrange(JITTER)
        sigs = tuple(
            dnssec.sign(
                rrset,
                key.private_key,
                self.origin,
                key.dnskey,
                inception=self.inception,
                expiration=expiration,
                deterministic=False,
            )
            for key in keys
        )
        self.signatures += len(sigs)
        self._cache[cache_key] = (sigs, self.now)
        return sigs
