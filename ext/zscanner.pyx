# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""fastdns's zone-file scanner: RFC 1035 master files to records in columnar buffers.

``scan_zone_file(path, origin)`` reads a master file and the files it ``$INCLUDE``s in C and
returns a :class:`ScannedZone`: for every record its owner (uncompressed wire format, case as
written), type, TTL, rdata (uncompressed wire format, names absolute: RFC 3597 §4) and the file
and line it came from, in a handful of flat arrays; no Python object is made per record. The
syntax is RFC 1035 §5.1 ($ORIGIN, $INCLUDE, ``@``, relative names, parentheses, comments, quoted
strings, \\X and \\DDD escapes, the previous owner for a line that starts with whitespace, TTL
and class in either order), RFC 2308 §4 ($TTL, TTL units), RFC 3597 §5 (``TYPEnnn``,
``\\# length hex`` for any type) and BIND's $GENERATE.

dnspython is the reference: the scanner accepts exactly the files fastdns.zonefile's dnspython
reader accepts and produces the same records (tests/test_zscanner.py checks it). Types it does
not parse itself (see ``native_types()``) and non-ASCII (IDNA) names are handed to dnspython one
record at a time: correct but slow; ``ScannedZone.fallbacks`` counts them.

The first syntax error stops the scan with :class:`ZoneScanError` (file, line, reason). Only
class IN is accepted.

Layout: zscanner.pxd declares the structures; the .pxi files hold, in order, the output buffers,
the lexer, names and numbers, rdata, $GENERATE, the record reader and the dnspython slow paths.
"""

import os
import re

from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE
from libc.errno cimport EINTR, ENOMEM, errno
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset, strerror, strlen, strncpy
from posix.fcntl cimport O_CLOEXEC, O_RDONLY, open
from posix.stat cimport fstat, struct_stat
from posix.unistd cimport close, read

from zscanner cimport *

__all__ = ["ScannedZone", "ZoneScanError", "native_types", "scan_zone_file", "scan_zone_text"]


class ZoneScanError(Exception):
    """The first syntax error of a zone file: ``file:line: reason``.

    ``line`` is the line of the record or directive at fault (0: the file as a whole, e.g. it
    cannot be read); for an error in an ``$INCLUDE``d file, ``file`` is that file.
    """

    def __init__(self, file: str, line: int, reason: str):
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


# What the scanner does with each type (KIND_*), filled by load_tables from dnspython's registry.
cdef uint8_t TYPE_KIND[65536]

# Types parsed here, text and \# forms alike.
NATIVE_TYPES = (
    T_A, T_NS, T_CNAME, T_SOA, T_PTR, T_HINFO, T_MX, T_TXT, T_RP, T_AFSDB, T_RT, T_AAAA, T_SRV,
    T_NAPTR, T_KX, T_DNAME, T_DS, T_SSHFP, T_RRSIG, T_NSEC, T_DNSKEY, T_DHCID, T_NSEC3,
    T_NSEC3PARAM, T_TLSA, T_SMIMEA, T_CDS, T_CDNSKEY, T_OPENPGPKEY, T_CSYNC, T_ZONEMD, T_SVCB,
    T_HTTPS, T_SPF, T_URI, T_CAA,
)

cdef bint tables_loaded = False
cdef object _dns_name = None
cdef object _dns_rdata = None
cdef object _dns_tokenizer = None
cdef object _IN = None
cdef object IDNA_2003 = None
cdef object IDNA_2008 = None
_CAUGHT_PREFIX = re.compile(r"^caught exception <class '[^']*'>: ")


cdef void load_tables() except *:
    """Build the mnemonic and type tables from dnspython's registries (once): the scanner knows
    the same type names as dnspython, and sends to it exactly the types it has a class for."""
    global tables_loaded, _dns_name, _dns_rdata, _dns_tokenizer, _IN, IDNA_2003, IDNA_2008
    if tables_loaded:
        return
    import dns.dnssectypes
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.svcbbase
    import dns.tokenizer

    init_delimiters()
    memcpy(HEX_DIGITS, b"0123456789abcdef", 17)
    load_mnemonics(TYPE_NAMES, dns.rdatatype.RdataType.__members__)
    load_mnemonics(CLASS_NAMES, dns.rdataclass.RdataClass.__members__)
    load_mnemonics(ALGORITHM_NAMES, dns.dnssectypes.Algorithm.__members__)
    load_mnemonics(SVC_KEY_NAMES, dns.rdtypes.svcbbase.ParamKey.__members__)
    memset(TYPE_KIND, KIND_GENERIC, sizeof(TYPE_KIND))
    for rdtype in dns.rdatatype.RdataType:
        if dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype) is not dns.rdata.GenericRdata:
            TYPE_KIND[int(rdtype)] = KIND_DNSPYTHON
    for rdtype in NATIVE_TYPES:
        TYPE_KIND[rdtype] = KIND_NATIVE
    _dns_name = dns.name
    _dns_rdata = dns.rdata
    _dns_tokenizer = dns.tokenizer
    _IN = dns.rdataclass.IN
    IDNA_2003 = dns.name.IDNA_2003_Practical
    IDNA_2008 = dns.name.IDNA_2008_Practical
    tables_loaded = True


def native_types() -> frozenset[int]:
    """The record types parsed without dnspython."""
    return frozenset(NATIVE_TYPES)


cdef class _Scanner:
    """The state of one scan: the reader state dnspython's Reader keeps, scratch buffers, the
    columns being filled, and the first error."""
    cdef ErrorInfo err
    cdef ReadState st
    cdef Columns cols
    cdef ByteBuffer scratch                # one unescaped token
    cdef ByteBuffer concat                 # identifiers concatenated (hex, base64, \# data)
    cdef ByteBuffer generated              # a $GENERATE template after substitution
    cdef ByteBuffer svcb_params            # SvcParam entries of the SVCB record being read
    cdef ByteBuffer svcb_values            # their values in wire format
    cdef const uint8_t* value              # the value take_value read
    cdef Py_ssize_t value_length
    cdef char type_name[24]                # the current record's type, for messages
    cdef uint8_t bitmap[256][32]           # a type bitmap being built, by window
    cdef uint8_t bitmap_length[256]
    cdef uint64_t last_owner_offset        # the last owner stored, to store a repeat once
    cdef uint32_t last_owner_length
    cdef bint has_last_owner
    cdef Name first_origin
    cdef bint has_first_origin
    cdef list files                        # paths (bytes) in the order first read
    cdef dict fallbacks                    # record type -> records dnspython parsed
    cdef Py_ssize_t fallback_names
    cdef object idna_codec                 # $UNICODE's choice for the current file
    cdef bint generating_rdata             # reading $GENERATE's rdata (default IDNA codec)
    cdef bint records_only                 # scan_zone_text: no directives
    cdef bytes origin_wire                 # cache of dnspython_origin
    cdef object origin_object

    def __cinit__(self):
        self.err.line = 0
        self.err.file_index = -1
        self.err.reason[0] = 0
        self.files = []
        self.fallbacks = {}
        self.idna_codec = None
        self.origin_wire = b""
        self.type_name[0] = 0

    def __dealloc__(self):
        free_columns(&self.cols)
        buf_free(&self.scratch)
        buf_free(&self.concat)
        buf_free(&self.generated)
        buf_free(&self.svcb_params)
        buf_free(&self.svcb_values)


include "zscanner_buffers.pxi"
include "zscanner_lexer.pxi"
include "zscanner_names.pxi"
include "zscanner_rdata.pxi"
include "zscanner_svcb.pxi"
include "zscanner_generate.pxi"
include "zscanner_reader.pxi"
include "zscanner_dnspython.pxi"


cdef void free_columns(Columns* c) noexcept nogil:
    buf_free(&c.owner_offset)
    buf_free(&c.owner_data)
    buf_free(&c.rtype)
    buf_free(&c.ttl)
    buf_free(&c.rdata_offset)
    buf_free(&c.rdata)
    buf_free(&c.line)
    buf_free(&c.file_index)
    c.count = 0


cdef void shrink_columns(Columns* c) noexcept nogil:
    buf_shrink(&c.owner_offset)
    buf_shrink(&c.owner_data)
    buf_shrink(&c.rtype)
    buf_shrink(&c.ttl)
    buf_shrink(&c.rdata_offset)
    buf_shrink(&c.rdata)
    buf_shrink(&c.line)
    buf_shrink(&c.file_index)


cdef class _Column:
    """A read-only buffer over one column of a ScannedZone (which it keeps alive)."""
    cdef object zone
    cdef void* data
    cdef Py_ssize_t count
    cdef Py_ssize_t itemsize
    cdef bytes fmt
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]

    def __getbuffer__(self, Py_buffer* view, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("ScannedZone columns are read-only")
        self.shape[0] = self.count
        self.strides[0] = self.itemsize
        view.buf = self.data if self.data != NULL else <void*> self.shape
        view.obj = self
        view.len = self.count * self.itemsize
        view.readonly = 1
        view.itemsize = self.itemsize
        view.format = <char*> self.fmt if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        view.shape = self.shape if flags & PyBUF_ND else NULL
        view.strides = self.strides if flags & PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer* view):
        pass


cdef class ScannedZone:
    """The records of a master file, in columns (one entry per record, in file order).

    ``len(zone)`` records; ``zone.record(i)`` is one as Python values; the columns are
    read-only memoryviews for native code:

    ============== ====== ============================================================
    column         format per record
    ============== ====== ============================================================
    owner_offsets  Q      offset of the owner in ``owner_data`` (repeats share one copy)
    owner_data     B      owner names, uncompressed wire format, case as written
    types          H      record type
    ttls           I      TTL
    rdata_offsets  Q      ``count + 1`` entries: record i's rdata is ``[off[i], off[i+1])``
    rdata          B      rdata, uncompressed wire format (RFC 3597 §4), names absolute
    lines          I      line of the record (for $GENERATE, of the directive)
    file_indexes   H      index into ``files`` of the file the record is in
    ============== ====== ============================================================
    """
    cdef Columns cols
    cdef readonly tuple files
    cdef readonly dict fallbacks
    cdef readonly Py_ssize_t fallback_names
    cdef readonly object first_origin

    def __dealloc__(self):
        free_columns(&self.cols)

    def __len__(self) -> int:
        return self.cols.count

    @property
    def nbytes(self) -> int:
        """Octets held by the columns."""
        cdef Columns* c = &self.cols
        return (c.owner_offset.length + c.owner_data.length + c.rtype.length + c.ttl.length
                + c.rdata_offset.length + c.rdata.length + c.line.length + c.file_index.length)

    def record(self, Py_ssize_t i) -> tuple:
        """Record ``i`` as ``(owner_wire, rtype, ttl, rdata_wire, file, line)``."""
        cdef Columns* c = &self.cols
        cdef uint64_t owner, start, end
        if i < 0:
            i += c.count
        if i < 0 or <size_t> i >= c.count:
            raise IndexError("record index out of range")
        owner = (<uint64_t*> c.owner_offset.data)[i]
        start = (<uint64_t*> c.rdata_offset.data)[i]
        end = (<uint64_t*> c.rdata_offset.data)[i + 1]
        return (
            (<const char*> c.owner_data.data + owner)[
                :name_wire_length(c.owner_data.data + owner)],
            (<uint16_t*> c.rtype.data)[i],
            (<uint32_t*> c.ttl.data)[i],
            (<const char*> c.rdata.data + start)[:end - start],
            self.files[(<uint16_t*> c.file_index.data)[i]],
            (<uint32_t*> c.line.data)[i],
        )

    cdef memoryview _column(self, ByteBuffer* b, Py_ssize_t itemsize, bytes fmt):
        cdef _Column column = _Column.__new__(_Column)
        column.zone = self
        column.data = b.data
        column.itemsize = itemsize
        column.count = <Py_ssize_t> (b.length // itemsize)
        column.fmt = fmt
        return memoryview(column)

    @property
    def owner_offsets(self) -> memoryview:
        return self._column(&self.cols.owner_offset, 8, b"Q")

    @property
    def owner_data(self) -> memoryview:
        return self._column(&self.cols.owner_data, 1, b"B")

    @property
    def types(self) -> memoryview:
        return self._column(&self.cols.rtype, 2, b"H")

    @property
    def ttls(self) -> memoryview:
        return self._column(&self.cols.ttl, 4, b"I")

    @property
    def rdata_offsets(self) -> memoryview:
        return self._column(&self.cols.rdata_offset, 8, b"Q")

    @property
    def rdata(self) -> memoryview:
        return self._column(&self.cols.rdata, 1, b"B")

    @property
    def lines(self) -> memoryview:
        return self._column(&self.cols.line, 4, b"I")

    @property
    def file_indexes(self) -> memoryview:
        return self._column(&self.cols.file_index, 2, b"H")


cdef int origin_from_argument(_Scanner s, object origin) except -1:
    """The ``origin`` argument (text, or a dns.name.Name) as the scan's starting origin."""
    cdef bytes text
    cdef Name root
    cdef int r
    if origin is None:
        return 0
    if hasattr(origin, "to_wire"):
        text = origin.to_text().encode("utf-8")
    else:
        text = str(origin).encode("utf-8")
    name_set_root(&root)
    r = name_from_text(<const uint8_t*> (<const char*> text), len(text), &root, &s.st.origin,
                       &s.err)
    if r == NEEDS_DNSPYTHON:
        r = dnspython_name(s, <const uint8_t*> (<const char*> text), len(text), &root,
                           &s.st.origin, 0)
    if r < 0:
        raise ValueError(f"bad zone origin {origin!r}: {s.err.reason.decode('utf-8', 'replace')}")
    s.st.has_origin = True
    s.st.last_name = s.st.origin
    s.st.has_last_name = True
    return 0


def scan_zone_file(path, origin=None, default_ttl=None) -> ScannedZone:
    """Scan the master file ``path`` (and its ``$INCLUDE``s) into a :class:`ScannedZone`.

    ``origin``: the origin of relative names until a ``$ORIGIN`` (text such as
    ``"example.com."`` or a dns.name.Name); without one, the file must set ``$ORIGIN`` before
    its first record. ``default_ttl``: the TTL of records that give none until a ``$TTL``
    (without it, the SOA minimum serves, as in dnspython).

    :raises ZoneScanError: the first syntax error, a file that cannot be read, or a file that
        is not UTF-8.
    :raises ValueError: ``origin`` is not a domain name.
    """
    cdef _Scanner s = _Scanner()
    cdef bytes top = os.fsencode(path)
    cdef uint64_t zero = 0
    load_tables()
    origin_from_argument(s, origin)
    if default_ttl is not None:
        if not 0 <= default_ttl <= 0xFFFFFFFF:
            raise ValueError(f"default_ttl {default_ttl!r} is not a TTL")
        s.st.default_ttl = default_ttl
        s.st.default_ttl_known = True
    if buf_append(&s.cols.rdata_offset, &zero, 8) < 0:
        raise MemoryError()
    if scan_file(s, top, 0) < 0:
        index = s.err.file_index if s.err.file_index >= 0 else 0
        raise ZoneScanError(os.fsdecode(s.files[index]) if s.files else os.fsdecode(top),
                            s.err.line, s.err.reason.decode("utf-8", "replace"))
    return scanned_zone(s)


def scan_zone_text(text: bytes, name: str, origin=None) -> ScannedZone:
    """Scan records held in memory, as :func:`scan_zone_file` scans a file's: ``text`` is
    master-file records (UTF-8), one per line, each with its TTL; ``name`` stands for the file
    in errors. Directives ($ORIGIN, $INCLUDE...) are refused: the text is made by fastdns from
    data it holds (fastdns.hostedcolumns packs a hosted zone's record sets this way when it
    loads them), and must not reach a file.

    :raises ZoneScanError: the first syntax error.
    """
    cdef _Scanner s = _Scanner()
    cdef bytes label = os.fsencode(name)
    cdef const uint8_t[::1] data = text
    cdef uint64_t zero = 0
    cdef int r
    load_tables()
    origin_from_argument(s, origin)
    s.records_only = True
    if buf_append(&s.cols.rdata_offset, &zero, 8) < 0:
        raise MemoryError()
    s.files.append(label)
    r = scan_data(s, &data[0] if len(text) else <const uint8_t*> b"", len(text), 0, label, 0)
    if r < 0:
        raise ZoneScanError(name, s.err.line, s.err.reason.decode("utf-8", "replace"))
    return scanned_zone(s)


cdef ScannedZone scanned_zone(_Scanner s):
    """The columns ``s`` filled, handed over to a ScannedZone."""
    cdef ScannedZone zone
    zone = ScannedZone.__new__(ScannedZone)
    zone.cols = s.cols
    memset(&s.cols, 0, sizeof(Columns))
    shrink_columns(&zone.cols)
    zone.files = tuple(os.fsdecode(p) for p in s.files)
    zone.fallbacks = s.fallbacks
    zone.fallback_names = s.fallback_names
    zone.first_origin = ((<const char*> s.first_origin.wire)[:s.first_origin.length]
                         if s.has_first_origin else None)
    return zone
