"""Where a client is, for the routing policies that depend on it.

Geolocation, geoproximity, latency and IP-based (CIDR) routing all classify the client address
(the EDNS Client Subnet address, else the resolver's) into a class id with one binary search
over sorted address ranges, then read per-group tables indexed by that class id. This package
builds the classifiers and holds Route 53's location semantics, at compile time:

- ``codes``: Route 53's continent, country and subdivision codes; GeoLocation validation.
- ``ranges``: the classifier (most specific network wins), its FDC1/FDC2 binary layouts, and
  the RFC 7871 scope prefix of an answer.
- ``mmdb``: client locations from a MaxMind database.
- ``cidr``: CIDR collections (IP-based routing) from the configuration.
- ``latency``: the client network -> Region -> latency table from the configuration.
- ``regions``: AWS Region names and approximate coordinates.
- ``geoproximity``: biased great-circle distance and the nearest-first order.
"""
