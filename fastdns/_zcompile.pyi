"""The Python view of fastdns._zcompile (built from ext/zcompile.pyx): zone files compiled from
the scanner's columns."""

from fastdns._zscanner import ScannedZone

NATIVE_TYPES: frozenset[int]
"""The record types the native compiler handles; a zone with any other falls back."""

def compile_columns(
    scanned: ScannedZone, origin: bytes
) -> tuple[bytes | None, str | None, int, int, int, int]:
    """``(image, None, record_sets, soa_record, soa_ttl, serial)``, or
    ``(None, reason, 0, -1, 0, 0)``
    when the zone is not compiled natively (an unhandled type, or a validation rule broken)."""

def compile_packed(
    packed: list[bytes] | tuple[bytes, ...], origin: bytes
) -> tuple[bytes | None, str | None, int, int, int, int]:
    """As ``compile_columns``, for record sets packed by ``fastdns.hostedcolumns``: a list of
    ``bytes``, each one or more packed record sets."""
