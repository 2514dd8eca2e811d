"""DNSSEC for hosted zones (issue 6): keys, their storage, and signing at compile time.

``keys`` makes key pairs and the records that publish them (DNSKEY, DS, key tags);
``keystore`` keeps them in the state database with the zone's signing status; ``signer``
signs record sets and builds the NSEC3 chain for ``fastdns.compile``.
"""
