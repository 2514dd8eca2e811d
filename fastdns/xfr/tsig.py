"""TSIG (RFC 8945) for requests the control plane answers: verify, and say why not.

Signing and verifying are dnspython's (``dns.tsig``, ``dns.message``); this module decides what
a request's signature means for its answer (RFC 8945 §5.2) and builds the error responses of
§5.3.2 (BADKEY, BADSIG: unsigned, MAC empty) and §5.2.3 (BADTIME: signed, our time in Other
Data). Secrets stay in ``dns.tsig.Key`` objects and are never logged.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig

from fastdns.xfr.config import TsigKeySpec

__all__ = ["Keyring", "VerifiedRequest", "sign_response", "verify_request"]


class Keyring:
    """The configured TSIG keys by name (``dns.tsig.Key`` each)."""

    def __init__(self, specs: Mapping[dns.name.Name, TsigKeySpec] | None = None) -> None:
        self._keys = {name: spec.key() for name, spec in (specs or {}).items()}

    def get(self, name: dns.name.Name | None) -> dns.tsig.Key | None:
        return self._keys.get(name) if name is not None else None

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({sorted(str(name) for name in self._keys)})"


@dataclass
class VerifiedRequest:
    """A parsed request and what its TSIG says.

    ``key`` is the key that signed it (verified), or None for an unsigned request. When the
    signature is bad, ``error`` is the TSIG error (BADKEY, BADSIG, BADTIME) and ``response``
    the complete answer to send (NOTAUTH, RFC 8945 §5.2).
    """

    message: dns.message.Message
    key: dns.tsig.Key | None = None
    error: int = 0
    response: bytes | None = None


def verify_request(wire: bytes, keyring: Keyring, now: int | None = None) -> VerifiedRequest:
    """Parse ``wire`` and check its TSIG, if it has one, against ``keyring``.

    ``dns.exception.DNSException`` (or ``ValueError``) when the message cannot be parsed at all.
    """
    # First without checking the signature, to learn which key it names (RFC 8945 §5.2.1).
    unchecked = dns.message.from_wire(wire, keyring=False)
    if not unchecked.had_tsig:
        return VerifiedRequest(unchecked)
    key = keyring.get(unchecked.keyname)
    if key is None or key.algorithm != unchecked.keyalgorithm:
        return _failed(unchecked, dns.rcode.BADKEY)
    try:
        message = dns.message.from_wire(wire, keyring=key)
    except (dns.tsig.BadKey, dns.tsig.BadAlgorithm):
        return _failed(unchecked, dns.rcode.BADKEY)
    except dns.tsig.BadSignature:
        return _failed(unchecked, dns.rcode.BADSIG)
    except dns.tsig.BadTime:
        # The MAC is good (dnspython checks the time last), so the error is signed (§5.2.3).
        return _failed(unchecked, dns.rcode.BADTIME, key, now)
    return VerifiedRequest(message, key)


def _failed(
    request: dns.message.Message,
    error: int,
    key: dns.tsig.Key | None = None,
    now: int | None = None,
) -> VerifiedRequest:
    """The NOTAUTH answer for a request whose TSIG failed with ``error``."""
    response = dns.message.make_response(request)
    response.set_rcode(dns.rcode.NOTAUTH)
    tsig = request.tsig[0]
    if key is not None:  # BADTIME: signed with the request's key, our time as Other Data
        now = int(time.time()) if now is None else now
        response.use_tsig(
            key,
            fudge=tsig.fudge,
            original_id=tsig.original_id,
            tsig_error=error,
            other_data=struct.pack("!HI", now >> 32 & 0xFFFF, now & 0xFFFFFFFF),
        )
        response.request_mac = tsig.mac
        return VerifiedRequest(request, None, error, response.to_wire())
    # BADKEY, BADSIG: the request's TSIG with the error and an empty MAC, unsigned (§5.3.2).
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        tsig.algorithm,
        tsig.time_signed,
        tsig.fudge,
        b"",
        tsig.original_id,
        error,
        b"",
    )
    response.tsig = dns.rrset.from_rdata(request.keyname, 0, rdata)
    return VerifiedRequest(request, None, error, response.to_wire())


def sign_response(response: dns.message.Message, request: VerifiedRequest) -> dns.message.Message:
    """Arrange for ``response`` to be signed with the key that signed ``request`` (if any), as
    RFC 8945 §5.3 requires."""
    if request.key is not None:
        tsig = request.message.tsig[0]
        response.use_tsig(request.key, fudge=tsig.fudge, original_id=tsig.original_id)
        response.request_mac = request.message.mac
    return response
