"""DNSSEC key pairs and the records that publish them.

Keys are made with ``cryptography`` and turned into records with dnspython's ``dns.dnssec``
helpers, so the DNSKEY wire format, key tags (RFC 4034 Appendix B) and DS digests (RFC 4509,
SHA-256) come from one reference implementation rather than our own framing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

# dns.dnssec and cryptography are imported where keys are made or read: a server with no signed
# zone never loads them (some 13 MB of every supervisor's memory).

__all__ = [
    "ALGORITHMS",
    "ECDSAP256SHA256",
    "ED25519",
    "KSK_FLAGS",
    "ZSK_FLAGS",
    "SigningKey",
    "generate_private_key",
]

ECDSAP256SHA256 = 13  # RFC 6605
ED25519 = 15  # RFC 8080
ALGORITHMS = {ECDSAP256SHA256: "ECDSAP256SHA256", ED25519: "ED25519"}
# RFC 4034 §2.1.1: bit 7 Zone Key; RFC 3757: bit 15 Secure Entry Point marks a KSK.
ZSK_FLAGS = 256
KSK_FLAGS = 257
DS_DIGEST_SHA256 = 2  # RFC 4509
DNSKEY_TTL = 3600  # the apex DNSKEY RRset's TTL: how long resolvers may cache a key set


def generate_private_key(algorithm: int):
    """A new private key for ``algorithm`` (13 or 15)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if algorithm == ECDSAP256SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported DNSSEC algorithm {algorithm}")


def private_key_to_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


@dataclass(frozen=True)
class SigningKey:
    """One key of a zone: its private key and the DNSKEY that publishes it.

    ``__repr__`` leaves the private key out so that it never reaches a log line.
    """

    name: str
    role: str  # "KSK" or "ZSK"
    algorithm: int
    private_key: object
    dnskey: dns.rdata.Rdata

    def __repr__(self) -> str:
        return f"SigningKey({self.name!r}, {self.role}, algorithm {self.algorithm}, tag {self.tag})"

    @classmethod
    def from_private_key(cls, name: str, role: str, algorithm: int, key) -> SigningKey:
        from dns import dnssec

        flags = KSK_FLAGS if role == "KSK" else ZSK_FLAGS
        dnskey = dnssec.make_dnskey(key.public_key(), algorithm, flags=flags)
        return cls(name, role, algorithm, key, dnskey)

    @property
    def tag(self) -> int:
        """The key tag (RFC 4034 Appendix B)."""
        from dns import dnssec

        return dnssec.key_id(self.dnskey)

    def ds(self, origin: dns.name.Name) -> dns.rdata.Rdata:
        """The DS record for the parent zone (RFC 4509: SHA-256 digest)."""
        from dns import dnssec

        return dnssec.make_ds(origin, self.dnskey, "SHA256")

    @property
    def public_key_text(self) -> str:
        """The DNSKEY's public key field in base64 (Route 53's ``PublicKey``)."""
        return base64.b64encode(self.dnskey.key).decode()
