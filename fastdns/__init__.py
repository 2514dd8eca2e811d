"""fastdns: a self-hosted authoritative DNS server with Route 53 semantics.

The per-packet path lives in the compiled extension ``fastdns._core`` (sources in ``ext/``);
everything else (zones, validation, compilation, serving) is Python.
"""

__version__ = "0.1.0"
