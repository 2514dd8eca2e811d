"""Checking signed answers with independent validators: dnspython's ``dns.dnssec.validate``
for every RRset and its RRSIG, and BIND's ``delv`` with the zone's key as its trust anchor."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

__all__ = ["delv", "validate_sections", "write_trust_anchor"]

RRSIG = dns.rdatatype.RRSIG


def validate_sections(response: dns.message.Message, keys: dict) -> int:
    """Validate every RRset of the answer and authority sections against its RRSIGs with the
    zone's DNSKEY RRset (``keys``: {origin: DNSKEY rrset}); NS RRsets below the apex
    (referrals: the child's data, unsigned) must have none. Returns how many were validated;
    raises when one does not validate or lacks a signature."""
    validated = 0
    (origin,) = keys
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == RRSIG:
                continue
            sigs = [
                s for s in section if s.rdtype == RRSIG and s.name == rrset.name
                and s.covers == rrset.rdtype
            ]  # fmt: skip
            if rrset.rdtype == dns.rdatatype.NS and rrset.name != origin:
                assert not sigs, f"referral NS {rrset.name} is signed"
                continue
            assert sigs, f"no RRSIG for {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}"
            assert len(sigs) == 1
            dns.dnssec.validate(rrset, sigs[0], keys)
            validated += 1
    return validated


def write_trust_anchor(path: Path, origin: str, dnskey) -> Path:
    """A delv anchor file trusting ``dnskey`` (a KSK) for ``origin`` (BIND's trust-anchors
    syntax; delv treats static-key and initial-key alike)."""
    key = base64.b64encode(dnskey.key).decode()
    path.write_text(
        "trust-anchors {\n"
        f'  {origin} static-key {dnskey.flags} {dnskey.protocol} {dnskey.algorithm} "{key}";\n'
        "};\n"
    )
    return path


def delv(host: str, port: int, anchors: Path, origin: str, name: str, rdtype: str) -> str:
    """delv's verdict and records for (name, rdtype), validating from ``origin``'s anchor."""
    result = subprocess.run(
        ["delv", f"@{host}", "-p", str(port), "-a", str(anchors), f"+root={origin}", name,
         rdtype],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr
