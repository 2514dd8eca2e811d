"""Zone transfers out of fastdns: TSIG, transfer ACLs, AXFR/IXFR responses, NOTIFY and UPDATE.

The workers answer queries in C; a message they cannot answer there (AXFR or a query signed
with TSIG over TCP; IXFR, NOTIFY and UPDATE over UDP or TCP) reaches the supervisor, which owns
the zone models, over a Unix stream (``channel``). Modules, one job each:

* ``config``: the ``[tsig_keys]``, ``[transfer]`` and ``[update]`` settings of the config file;
* ``tsig``: the keyring, request verification and TSIG error responses (RFC 8945);
* ``acl``: who may transfer a zone (addresses and keys);
* ``axfr``: a zone model as a sequence of AXFR response messages (RFC 5936), SOA first and last;
* ``signed``: a DNSSEC-signed zone's AXFR content: its RRSIGs, DNSKEY, NSEC3PARAM, NSEC3 chain;
* ``ixfr``: a hosted zone's IXFR differences (RFC 1995) from the store's change history;
* ``update``: an RFC 2136 UPDATE of a hosted zone as a change batch through the store;
* ``forward``: an UPDATE of a secondary zone forwarded to its primaries (RFC 2136 §6);
* ``service``: one forwarded request -> its response messages (transfers, signed queries);
* ``channel``: the worker <-> supervisor stream that carries a request and its responses;
* ``notify``: NOTIFY (RFC 1996) to the configured secondaries after a serial change, retried;
* ``secondary``: zones fetched from primaries and kept fresh.
"""
