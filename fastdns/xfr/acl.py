"""Who may transfer a zone: the address and TSIG key checks of a ``TransferPolicy``.

RFC 5936 §5 leaves access control to the operator; RFC 8945 §5.2 says a bad signature is
answered before any policy (the caller does that). Default deny: a zone whose policy names
neither addresses nor keys cannot be transferred.
"""

from __future__ import annotations

import ipaddress

import dns.name

from fastdns.xfr.config import TransferPolicy

__all__ = ["transfer_allowed"]


def transfer_allowed(policy: TransferPolicy, peer: str, key_name: dns.name.Name | None) -> bool:
    """Whether ``peer`` (an IP address as text) may transfer under ``policy``, its request
    signed with the (already verified) key ``key_name`` or unsigned (None)."""
    if policy.allow is None and policy.keys is None:
        return False
    if policy.allow is not None:
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not any(address in network for network in policy.allow):
            return False
    if policy.keys is not None:
        return key_name is not None and key_name in policy.keys
    return True
