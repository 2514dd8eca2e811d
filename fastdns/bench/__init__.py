"""``fastdns bench``: how fast is a DNS server, and how does fastdns compare with Knot and NSD.

Modules, one job each:

- ``queries``: dnsperf-format query files, query mixes drawn from a zone directory, wire encoding;
- ``load``: one run of the compiled load generator ``fastdns._loadgen`` (sources in
  ``ext/loadgen.pyx``) and its ``LoadResult``;
- ``histogram``: latency percentiles from the generator's log-linear histogram;
- ``servers``: start fastdns, Knot DNS or NSD on a free port; server CPU time from /proc;
- ``dnsperf``: run dnsperf with the same queries and read its statistics;
- ``report``: text and JSON reports, medians over rounds and ratios between servers;
- ``plot``: the latency-by-percentile PNG (its own small PNG writer);
- ``cli``: the ``bench`` command line, registered by ``fastdns.cli``.
"""

# The query mix of ``fastdns bench`` without --mix; here rather than in ``queries`` so that the
# command line can name it without importing dnspython's message machinery.
DEFAULT_MIX = "A=40,AAAA=20,MX=10,NXDOMAIN=20,CNAME=10"
