"""Zone transfers out of fastdns: TSIG, transfer ACLs, AXFR/IXFR responses and NOTIFY.

The workers answer queries in C; a TCP message they cannot answer there (a zone transfer, or a
query signed with TSIG) reaches the supervisor, which owns the zone models, over a Unix stream
(``channel``). Modules, one job each:

* ``config``: the ``[tsig_keys]`` and ``[transfer]`` settings of the server config file;
* ``tsig``: the keyring, request verification and TSIG error responses (RFC 8945);
* ``acl``: who may transfer a zone (addresses and keys);
* ``axfr``: a zone model as a sequence of AXFR response messages (RFC 5936), SOA first and last;
* ``service``: one forwarded request -> its response messages (transfers, signed queries);
* ``channel``: the worker <-> supervisor stream that carries a request and its responses;
* ``notify``: NOTIFY (RFC 1996) to the configured secondaries after a serial change, retried.
"""
