"""The Python view of fastdns._zcompile (built from ext/zcompile.pyx): zone files compiled from
the scanner's columns."""

from collections.abc import Callable, Iterable
from typing import Any

from fastdns._zscanner import ScannedZone

NATIVE_TYPES: frozenset[int]
"""The record types the native compiler handles; a zone with any other falls back."""

def compile_columns(
    scanned: ScannedZone,
    origin: bytes,
    image_buffer: Callable[[int], Any | None] | None = None,
) -> tuple[Any, str | None, int, int, int, int]:
    """``(image, None, record_sets, soa_record, soa_ttl, serial)``, or
    ``(None, reason, 0, -1, 0, 0)``
    when the zone is not compiled natively (an unhandled type, or a validation rule broken).
    The image is ``bytes``, or the writable buffer ``image_buffer(size)`` returned for it."""

def compile_packed(
    packed: list[bytes] | tuple[bytes, ...],
    origin: bytes,
    image_buffer: Callable[[int], Any | None] | None = None,
    with_references: bool = False,
) -> tuple[Any, ...]:
    """As ``compile_columns``, for record sets packed by ``fastdns.hostedcolumns``: a list of
    ``bytes``, each one or more packed record sets. ``with_references``: a seventh item,
    ``(references, absent, copiers)`` for ``graft_image`` (None when there is no image)."""

References = tuple[bytes, bytes | None, bytes | None]

def graft_image(
    old: Any,
    mini: Any,
    changes: list[tuple[bytes, int, int]],
    old_serial: int,
    new_serial: int,
    references: References,
    image_buffer: Callable[[int], Any | None] | None = None,
    timers: bytes | None = None,
    targets: list[tuple[bytes, bytes]] = ...,
    chains: list[bytes] = ...,
) -> tuple[Any, References | None, str | None]:
    """``(image, references, None)``: ``old`` with ``changes`` (owner wire, type, kind: 0
    replaced, 1 added, 2 deleted, 3 the same record set written again as its templates copy
    changed data) grafted on from ``mini`` and the serial moved (and the SOA's REFRESH, RETRY
    and EXPIRE when ``timers`` gives them; ``targets``: (target, copier) pairs, the in-zone
    names the NS, MX, SRV and CNAME record sets given point at, whose data ``mini`` holds,
    with the owners whose answers copy it; ``chains``: those of CNAMEs), or ``(None, None,
    reason)`` when the zone must be compiled (ext/zcompile_patch.pxi)."""

def copiers_of(image: Any, references: References, names: list[bytes]) -> list[bytes] | None:
    """The owners (wire format, lower-cased) whose templates in ``image`` copy the data of
    ``names``: what a graft of a change at those names writes again; None if not kept."""

def release_scratch() -> int:
    """Give back the memory kept from earlier compiles (ext/scratch.h); the bytes given back."""

def kept_scratch() -> int:
    """The bytes of memory kept from earlier compiles for the next one."""

def same_bytes(a: Any, b: Any) -> bool:
    """Whether two buffers (bytes, mmaps) hold the same bytes (one memcmp)."""

def pack_scanned(scanned: ScannedZone, counts: Iterable[int]) -> list[bytes]:
    """The scanned records as record sets in ``compile_packed``'s layout, ``counts[i]``
    records in the i-th."""

class TransferFormError(ValueError):
    """A zone transfer message that does not parse (ext/zcompile_xfr.pxi)."""

def read_transfer_message(
    message: bytes,
) -> tuple[
    int,
    int,
    tuple[bytes, int, int] | None,
    list[tuple[bytes, int, int, int, bytes, bool]],
    tuple[int, bytes, bytes] | None,
]:
    """``(id, flags, question, records, tsig)`` of one zone transfer response: the answer
    records as ``(owner, type, class, TTL, RDATA, checked)`` with names uncompressed, the TSIG
    record as ``(offset, owner, RDATA)``."""

def index_packed(blob: bytes) -> tuple[bytes, int, list[int], list[int]]:
    """``(index, count, foreign, repeats)`` of packed record sets one after another: (key
    hash, offset) u64 pairs sorted, how many sets, the offsets of those of non-native types,
    the index positions whose hash repeats the one before's."""

def key_hash(key: bytes) -> int:
    """The hash ``index_packed`` files a record set's key under."""

def packed_entry(blob: bytes, offset: int) -> tuple[bytes, int]:
    """``(key, end)`` of the packed record set at ``blob[offset:]``."""
