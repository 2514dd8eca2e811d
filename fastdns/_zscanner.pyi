"""The Python view of fastdns._zscanner (built from ext/zscanner.pyx): the zone-file scanner."""

import os

import dns.name

class ZoneScanError(Exception):
    """The first syntax error of a zone file: ``file:line: reason`` (line 0: the whole file)."""

    file: str
    line: int
    reason: str
    def __init__(self, file: str, line: int, reason: str) -> None: ...

class ScannedZone:
    """The records of a master file in columns, one entry per record, in file order."""

    files: tuple[str, ...]
    """The files read: the zone file, then each $INCLUDEd file in the order first read."""
    fallbacks: dict[int, int]
    """Record type -> how many records of it dnspython parsed (types not parsed natively)."""
    fallback_names: int
    """How many names dnspython converted (non-ASCII text: IDNA)."""
    first_origin: bytes | None
    """The first $ORIGIN in wire format, or None."""
    def __len__(self) -> int: ...
    @property
    def nbytes(self) -> int:
        """Octets held by the columns."""
    def record(self, i: int) -> tuple[bytes, int, int, bytes, str, int]:
        """``(owner_wire, rtype, ttl, rdata_wire, file, line)``; names uncompressed, case kept."""
    @property
    def owner_offsets(self) -> memoryview:
        """uint64 ('Q') per record: offset of its owner in ``owner_data``."""
    @property
    def owner_data(self) -> memoryview:
        """Owner names in wire format ('B'); a repeated owner is stored once."""
    @property
    def types(self) -> memoryview:
        """uint16 ('H') per record."""
    @property
    def ttls(self) -> memoryview:
        """uint32 ('I') per record."""
    @property
    def rdata_offsets(self) -> memoryview:
        """uint64 ('Q'), ``len + 1`` entries: record i's rdata is ``rdata[off[i]:off[i + 1]]``."""
    @property
    def rdata(self) -> memoryview:
        """Rdata in uncompressed wire format ('B')."""
    @property
    def lines(self) -> memoryview:
        """uint32 ('I') per record: the line it starts on (of its $GENERATE, if generated)."""
    @property
    def file_indexes(self) -> memoryview:
        """uint16 ('H') per record: index into ``files``."""

def scan_zone_file(
    path: str | os.PathLike[str],
    origin: str | dns.name.Name | None = None,
    default_ttl: int | None = None,
) -> ScannedZone:
    """Scan a master file and its $INCLUDEs.

    :raises ZoneScanError: the first syntax error, an unreadable file, or text that is not UTF-8.
    :raises ValueError: ``origin`` is not a domain name.
    """

def scan_zone_text(
    text: bytes, name: str, origin: str | dns.name.Name | None = None
) -> ScannedZone:
    """Scan master-file records held in memory (one per line, no directives); ``name`` stands
    for the file in errors.

    :raises ZoneScanError: the first syntax error (a directive among them).
    """

def native_types() -> frozenset[int]:
    """The record types parsed without dnspython."""
