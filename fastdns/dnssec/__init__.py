"""DNSSEC for hosted zones (issue 6): keys, their storage, and signing at compile time.

``keys`` makes key pairs and the records that publish them (DNSKEY, DS, key tags);
``keystore`` keeps them in the state database with the zone's signing status; ``signer``
signs record sets and makes NSEC3 records; ``nsec3`` builds the NSEC3 chain, the same for
``fastdns.compile`` and zone transfers; ``serial`` moves a signed zone's SOA serial when its
DNSSEC data changes (keys, signatures), so that secondaries follow.
"""
