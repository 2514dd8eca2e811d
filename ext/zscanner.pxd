# Declarations of the zone-file scanner (fastdns._zscanner, built from ext/zscanner.pyx and the
# zscanner_*.pxi files it includes): limits, character codes, the token and lexer state, names in
# wire format, the growable output buffers and the reader state saved around $INCLUDE.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef enum:
    MAX_NAME_WIRE = 255            # RFC 1035 §3.1
    MAX_LABEL = 63                 # RFC 1035 §2.3.4
    MAX_RDATA = 65535              # RDLENGTH is 16 bits (RFC 1035 §3.2.1)
    MAX_INCLUDE_DEPTH = 10         # nested $INCLUDE levels; also stops include cycles
    MAX_FILES = 65535              # file indexes are 16 bits
    MAX_GENERATE_WIDTH = 127       # BIND formats into 128 octets; dnspython has the same limit
    REASON_SIZE = 320
    MNEMONIC_SLOTS = 1024          # a power of two, well above the ~100 type names

    # Token kinds, as dnspython's tokenizer (dns/tokenizer.py) returns them.
    TK_EOF = 0
    TK_EOL = 1
    TK_WS = 2                      # leading whitespace: the owner is the previous one
    TK_ID = 3
    TK_QSTR = 4
    TK_COMMENT = 5

    # What the scanner does with a record type.
    KIND_GENERIC = 0               # dnspython has no class for it: only RFC 3597 \# rdata
    KIND_NATIVE = 1                # parsed here (text and \# forms)
    KIND_DNSPYTHON = 2             # dnspython has a class we do not: one dnspython call each

    # Results of parsing a name or an rdata: 0 is done, -1 an error (reason set), and this one
    # asks for the dnspython slow path (a name with non-ASCII text needs IDNA).
    NEEDS_DNSPYTHON = 1

    NO_CHAR = -2                   # the lexer's unget slot is empty
    END_OF_INPUT = -1

    # Character codes the lexer and the parsers test for.
    C_TAB = 9
    C_NL = 10
    C_CR = 13
    C_SP = 32
    C_QUOTE = 34
    C_HASH = 35
    C_DOLLAR = 36
    C_LPAR = 40
    C_RPAR = 41
    C_PLUS = 43
    C_COMMA = 44
    C_MINUS = 45
    C_DOT = 46
    C_SLASH = 47
    C_ZERO = 48
    C_NINE = 57
    C_COLON = 58
    C_SEMI = 59
    C_EQ = 61
    C_AT = 64
    C_BSLASH = 92
    C_LBRACE = 123
    C_RBRACE = 125

    # Record types the scanner treats specially.
    T_A = 1
    T_NS = 2
    T_CNAME = 5
    T_SOA = 6
    T_PTR = 12
    T_HINFO = 13
    T_MX = 15
    T_TXT = 16
    T_RP = 17
    T_AFSDB = 18
    T_RT = 21
    T_AAAA = 28
    T_SRV = 33
    T_NAPTR = 35
    T_KX = 36
    T_DNAME = 39
    T_DS = 43
    T_SSHFP = 44
    T_RRSIG = 46
    T_NSEC = 47
    T_DNSKEY = 48
    T_DHCID = 49
    T_NSEC3 = 50
    T_NSEC3PARAM = 51
    T_TLSA = 52
    T_SMIMEA = 53
    T_CDS = 59
    T_CDNSKEY = 60
    T_OPENPGPKEY = 61
    T_CSYNC = 62
    T_ZONEMD = 63
    T_SVCB = 64
    T_HTTPS = 65
    T_SPF = 99
    T_URI = 256
    T_CAA = 257


ctypedef struct Token:
    int kind
    const uint8_t* text            # as written (escapes kept); a quoted string without quotes
    Py_ssize_t length
    Py_ssize_t offset              # of text in the lexer's buffer; for EOL, of the newline
    bint has_escape
    uint32_t line


ctypedef struct Lexer:
    # A port of dnspython's Tokenizer over bytes: the same delimiters, quoting, parentheses,
    # comments, CR handling and one-character/one-token unget, so that both read a file the
    # same way.
    const uint8_t* buf
    Py_ssize_t pos
    Py_ssize_t end
    Py_ssize_t last_pos            # where the character getc last returned came from
    uint32_t line
    int multiline                  # open parentheses
    bint quoting
    bint after_cr
    int ungot                      # NO_CHAR, END_OF_INPUT or a byte
    Py_ssize_t ungot_pos
    bint has_pushback
    Token pushback
    uint32_t statement_line        # where the current record or directive began: lexer errors


ctypedef struct ErrorInfo:
    char reason[REASON_SIZE]
    uint32_t line
    int file_index


ctypedef struct Name:
    uint8_t wire[256]              # uncompressed wire format, case as written
    uint32_t length
    bint absolute


ctypedef struct Mnemonic:
    # One entry of an open-addressing table from an upper-case mnemonic (a type, class or
    # DNSSEC algorithm name) to its number.
    char text[24]
    uint8_t length
    uint16_t value
    bint used


ctypedef struct ByteBuffer:
    uint8_t* data
    size_t length
    size_t capacity


ctypedef struct WireOut:
    # The rdata being built: written in place at the end of the rdata column, at most
    # MAX_RDATA octets; an overflow is sticky and checked once per record.
    uint8_t* data
    size_t length
    bint overflow


ctypedef struct ReadState:
    # What dnspython's zonefile.Reader saves around an $INCLUDE (and restores after it).
    Name origin
    bint has_origin
    Name last_name
    bint has_last_name
    uint32_t last_ttl
    bint last_ttl_known
    uint32_t default_ttl
    bint default_ttl_known
    bint default_ttl_from_soa


ctypedef struct Columns:
    # The scanned records, one entry per record in each per-record column.
    size_t count
    ByteBuffer owner_offset        # uint64: offset of the owner in owner_data
    ByteBuffer owner_data          # owner names in wire format; a repeated owner is stored once
    ByteBuffer rtype               # uint16
    ByteBuffer ttl                 # uint32
    ByteBuffer rdata_offset        # uint64, count + 1 entries: record i is [off[i], off[i + 1])
    ByteBuffer rdata               # rdata in uncompressed wire format
    ByteBuffer line                # uint32: line where the record (or its $GENERATE) starts
    ByteBuffer file_index          # uint16: index into ScannedZone.files
