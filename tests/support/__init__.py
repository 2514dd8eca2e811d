"""Helpers shared by the test modules (tests/ is on sys.path, so import them as ``support.*``).

- ``support.server``: ``running_fastdns`` (the real server as a subprocess), ``free_port``.
- ``support.client``: ``query`` (every response decoded by dnspython and dnslib, which must
  agree), ``exchange_raw``, ``tcp_pipeline``.
- ``support.knot``: Knot DNS as the reference server for differential tests.
"""
