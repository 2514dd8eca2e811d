# Record data: presentation format -> uncompressed wire format.
#
# Included by zscanner.pyx. Three parts:
#
# 1. Field parsers, one per kind of field (integers, names, TTLs, character-strings, hex,
#    base64, base32hex, addresses, type bitmaps, DNSSEC algorithms and times). Each reads its
#    tokens from a Lexer and appends to the record's WireOut; each follows the dnspython code
#    named in its docstring, because dnspython is the reference.
# 2. parse_rdata_text: the field list of each natively parsed type, and parse_rdata_generic
#    for RFC 3597 §5's ``\# length hex`` form (any type).
# 3. check_rdata_wire: what dnspython's constructors and from_wire check, on the wire form. It
#    runs for both forms: a known type written generically must be well formed (RFC 3597 §5,
#    "the RDATA must be valid"), and constraints like a DS digest's length apply to both.
#
# Names in rdata are written uncompressed and absolute (RFC 3597 §4), with their case kept.

cdef char HEX_DIGITS[17]                   # filled by load_tables
cdef int DAYS_IN_MONTH[12]
DAYS_IN_MONTH[:] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


# --- failing with a message naming the record type and the field ---------------------------------

cdef int fail(_Scanner s, uint32_t line, const char* reason) noexcept:
    msg_clear(&s.err)
    msg_add(&s.err, reason)
    s.err.line = line
    return -1


cdef int fail_field(_Scanner s, const Token* t, const char* field, const char* detail) noexcept:
    """``missing MX exchange`` at the end of the line, else ``bad MX preference 'x': detail``."""
    msg_clear(&s.err)
    s.err.line = t.line
    if t.kind == TK_EOL or t.kind == TK_EOF:
        msg_add(&s.err, b"missing ")
        msg_add(&s.err, s.type_name)
        msg_add(&s.err, b" ")
        msg_add(&s.err, field)
        return -1
    msg_add(&s.err, b"bad ")
    msg_add(&s.err, s.type_name)
    msg_add(&s.err, b" ")
    msg_add(&s.err, field)
    msg_add(&s.err, b" ")
    msg_add_text(&s.err, t.text, t.length)
    if detail != NULL:
        msg_add(&s.err, b": ")
        msg_add(&s.err, detail)
    return -1


cdef int fail_value(_Scanner s, uint32_t line, const char* field, const char* detail) noexcept:
    """``bad DS digest: detail``, for a value read from several tokens."""
    msg_clear(&s.err)
    s.err.line = line
    msg_add(&s.err, b"bad ")
    msg_add(&s.err, s.type_name)
    msg_add(&s.err, b" ")
    msg_add(&s.err, field)
    msg_add(&s.err, b": ")
    msg_add(&s.err, detail)
    return -1


cdef int fail_out_of_memory(_Scanner s, uint32_t line) noexcept:
    return fail(s, line, b"out of memory")


# --- tokens as values ----------------------------------------------------------------------------

cdef int take_value(_Scanner s, Lexer* lx, Token* t, bint quoted_ok, const char* field) noexcept:
    """The next token, unescaped into s.value / s.value_length (Tokenizer.get().unescape()).
    It must be an identifier, or also a quoted string when ``quoted_ok``."""
    cdef int r
    if lx_get(lx, t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID and not (quoted_ok and t.kind == TK_QSTR):
        if t.kind == TK_QSTR:
            return fail_field(s, t, field, b"expecting an identifier, not a quoted string")
        return fail_field(s, t, field, NULL)
    if not t.has_escape:
        s.value = t.text
        s.value_length = t.length
        return 0
    s.scratch.length = 0
    r = unescape_append(t.text, t.length, &s.scratch)
    if r == -2:
        return fail_out_of_memory(s, t.line)
    if r < 0:
        return fail_field(s, t, field, b"bad escape")
    s.value = s.scratch.data
    s.value_length = s.scratch.length
    return 0


cdef int take_rest(_Scanner s, Lexer* lx, Token* t, const char* field) noexcept:
    """The remaining identifiers of the record, unescaped and concatenated into s.concat
    (Tokenizer.concatenate_remaining_identifiers); the end of the line is put back."""
    cdef int r
    s.concat.length = 0
    while True:
        if lx_get(lx, t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            lx_unget_token(lx, t)
            return 0
        if t.kind != TK_ID:
            return fail_field(s, t, field, b"expecting an identifier, not a quoted string")
        r = unescape_append(t.text, t.length, &s.concat)
        if r == -2:
            return fail_out_of_memory(s, t.line)
        if r < 0:
            return fail_field(s, t, field, b"bad escape")


# --- fields --------------------------------------------------------------------------------------

cdef int f_uint(_Scanner s, Lexer* lx, WireOut* o, int bits, const char* field) noexcept:
    """An unsigned decimal of ``bits`` bits (Tokenizer.get_uint8/16/32)."""
    cdef Token t
    cdef uint64_t v
    if take_value(s, lx, &t, False, field) < 0:
        return -1
    if parse_decimal(s.value, s.value_length, &v) < 0:
        return fail_field(s, &t, field, b"not an integer")
    if bits == 8:
        if v > 0xFF:
            return fail_field(s, &t, field, b"not an unsigned 8-bit integer")
        out_u8(o, <uint32_t> v)
    elif bits == 16:
        if v > 0xFFFF:
            return fail_field(s, &t, field, b"not an unsigned 16-bit integer")
        out_u16(o, <uint32_t> v)
    else:
        if v > 0xFFFFFFFFU:
            return fail_field(s, &t, field, b"not an unsigned 32-bit integer")
        out_u32(o, <uint32_t> v)
    return 0


cdef int f_name(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    """A domain name, relative to the current origin (Tokenizer.get_name)."""
    cdef Token t
    cdef Name name
    cdef int r
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID:
        if t.kind == TK_QSTR:
            return fail_field(s, &t, field, b"a name cannot be a quoted string")
        return fail_field(s, &t, field, NULL)
    r = name_from_text(t.text, t.length, &s.st.origin, &name, &s.err)
    if r == NEEDS_DNSPYTHON:
        r = dnspython_name(s, t.text, t.length, &s.st.origin, &name, t.line)
    if r < 0:
        s.err.line = t.line
        return -1
    out_bytes(o, name.wire, name.length)
    return 0


cdef int f_ttl(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    """A TTL-like period with optional units (Tokenizer.get_ttl): the SOA timers (RFC 2308 §4
    gives the SOA minimum this meaning) and RRSIG's original TTL."""
    cdef Token t
    cdef uint32_t v
    if take_value(s, lx, &t, False, field) < 0:
        return -1
    if not ttl_from_text(s.value, s.value_length, &v):
        return fail_field(s, &t, field,
                          b"not well-formed (seconds, or units as in 1w2d3h4m5s, at most 2**32-1)")
    out_u32(o, v)
    return 0


cdef int f_string(_Scanner s, Lexer* lx, WireOut* o, bint counted, const char* field) noexcept:
    """A <character-string> (RFC 1035 §3.3), quoted or not (Tokenizer.get_bytes). ``counted``:
    with its length octet and at most 255 octets; else the rest of the rdata (CAA value, URI
    target), any length."""
    cdef Token t
    if take_value(s, lx, &t, True, field) < 0:
        return -1
    if counted:
        if s.value_length > 255:
            return fail_field(s, &t, field, b"longer than 255 octets")
        out_u8(o, <uint32_t> s.value_length)
    out_bytes(o, s.value, <size_t> s.value_length)
    return 0


cdef int f_strings(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """TXT and SPF: one or more <character-string>s to the end of the record
    (dnspython's TXTBase.from_text: a string over 255 octets is an error, not split)."""
    cdef Token t
    cdef int count = 0
    cdef int r
    while True:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            if count == 0:
                return fail_field(s, &t, b"string", NULL)
            lx_unget_token(lx, &t)
            return 0
        if t.has_escape:
            s.scratch.length = 0
            r = unescape_append(t.text, t.length, &s.scratch)
            if r == -2:
                return fail_out_of_memory(s, t.line)
            if r < 0:
                return fail_field(s, &t, b"string", b"bad escape")
            s.value = s.scratch.data
            s.value_length = s.scratch.length
        else:
            s.value = t.text
            s.value_length = t.length
        if s.value_length > 255:
            return fail_field(s, &t, b"string", b"longer than 255 octets")
        out_u8(o, <uint32_t> s.value_length)
        out_bytes(o, s.value, <size_t> s.value_length)
        count += 1


cdef int hex_value(int c) noexcept nogil:
    if C_ZERO <= c <= C_NINE:
        return c - C_ZERO
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef int hex_decode(_Scanner s, const uint8_t* p, Py_ssize_t n, WireOut* o, const Token* t,
                    const char* field) noexcept:
    """binascii.unhexlify: an even number of hex digits, either case. ``t``: the token the
    digits came from, or the end of the line after a value of several tokens."""
    cdef Py_ssize_t i
    cdef int hi, lo
    cdef const char* why = NULL
    if n % 2:
        why = b"odd number of hex digits"
    else:
        for i in range(0, n, 2):
            hi = hex_value(p[i])
            lo = hex_value(p[i + 1])
            if hi < 0 or lo < 0:
                why = b"not hexadecimal"
                break
            out_u8(o, <uint32_t> (hi << 4 | lo))
    if why == NULL:
        return 0
    if t.kind == TK_EOL or t.kind == TK_EOF:
        return fail_value(s, t.line, field, why)
    return fail_field(s, t, field, why)


cdef int f_hex_rest(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    """Hex digits to the end of the record, in as many tokens as the writer liked (DS digest,
    TLSA and SSHFP data, ZONEMD digest); at least one digit."""
    cdef Token t
    if take_rest(s, lx, &t, field) < 0:
        return -1
    if s.concat.length == 0:
        return fail_field(s, &t, field, NULL)
    return hex_decode(s, s.concat.data, s.concat.length, o, &t, field)


cdef int base64_value(int c) noexcept nogil:
    if 65 <= c <= 90:
        return c - 65
    if 97 <= c <= 122:
        return c - 71
    if C_ZERO <= c <= C_NINE:
        return c + 4
    if c == C_PLUS:
        return 62
    if c == C_SLASH:
        return 63
    return -1


cdef const char* base64_decode(const uint8_t* p, Py_ssize_t n, WireOut* o) noexcept nogil:
    """RFC 4648 §4 base64 as base64.b64decode(validate=True) decodes it (CPython's strict
    a2b_base64): NULL, or why not."""
    cdef Py_ssize_t i
    cdef int quad = 0
    cdef int pads = 0
    cdef int v
    cdef uint32_t left = 0
    cdef bint padding = False
    if n > 0 and p[0] == C_EQ:
        return b"leading padding"
    for i in range(n):
        if p[i] == C_EQ:
            padding = True
            if quad >= 2:
                pads += 1
                if quad + pads >= 4:
                    if i + 1 < n:
                        return b"data after padding"
                    return NULL
            continue
        v = base64_value(p[i])
        if v < 0:
            return b"not base64"
        if padding:
            return b"data after padding"
        pads = 0
        if quad == 0:
            left = v
            quad = 1
        elif quad == 1:
            out_u8(o, (left << 2) | (v >> 4))
            left = v & 0x0F
            quad = 2
        elif quad == 2:
            out_u8(o, (left << 4) | (v >> 2))
            left = v & 0x03
            quad = 3
        else:
            out_u8(o, (left << 6) | v)
            quad = 0
    if quad == 1:
        return b"number of base64 digits is 1 more than a multiple of 4"
    if quad != 0:
        return b"incorrect padding"
    return NULL


cdef int f_base64_rest(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    """Base64 to the end of the record, in any number of tokens (DNSKEY key, RRSIG
    signature, OPENPGPKEY, DHCID); not empty."""
    cdef Token t
    cdef const char* why
    if take_rest(s, lx, &t, field) < 0:
        return -1
    if s.concat.length == 0:
        return fail_field(s, &t, field, NULL)
    why = base64_decode(s.concat.data, s.concat.length, o)
    if why != NULL:
        return fail_value(s, t.line, field, why)
    return 0


cdef bint ipv4_from_text(const uint8_t* p, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """dns.ipv4.inet_aton: four decimal parts, 0..255, no leading zeros."""
    cdef Py_ssize_t i = 0
    cdef int part = 0
    cdef int digits
    cdef uint32_t v
    while part < 4:
        digits = 0
        v = 0
        while i < n and is_digit(p[i]):
            if digits == 0 and i + 1 < n and p[i] == C_ZERO and is_digit(p[i + 1]):
                return False
            v = v * 10 + (p[i] - C_ZERO) if v < 1000 else v
            digits += 1
            i += 1
        if digits == 0 or v > 255:
            return False
        out[part] = <uint8_t> v
        part += 1
        if part < 4:
            if i >= n or p[i] != C_DOT:
                return False
            i += 1
    return i == n


cdef bint ipv6_from_text(const uint8_t* text, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """dns.ipv6.inet_aton, step for step: an embedded dotted quad at the end, at most one
    '::', 1-4 hex digits per group, eight groups in all."""
    cdef uint8_t buf[80]
    cdef uint8_t quad[4]
    cdef Py_ssize_t i, last_colon, chunk_start, chunks, length, zeros
    cdef int dots, k, v
    cdef bint seen_empty = False
    cdef bint quad_form
    cdef Py_ssize_t group = 0
    if n == 0 or n > 64:
        return False
    if text[n - 1] == C_COLON and not (n >= 2 and text[n - 2] == C_COLON):
        return False
    if text[0] == C_COLON and not (n >= 2 and text[1] == C_COLON):
        return False
    if n == 2 and text[0] == C_COLON and text[1] == C_COLON:
        memset(out, 0, 16)
        return True
    memcpy(buf, text, n)
    length = n
    # "(.*):(\d+\.\d+\.\d+\.\d+)$": the part after the last ':' as two hex groups
    last_colon = -1
    for i in range(length):
        if buf[i] == C_COLON:
            last_colon = i
    if last_colon >= 0:
        dots = 0
        quad_form = last_colon + 1 < length
        for i in range(last_colon + 1, length):
            if buf[i] == C_DOT:
                if i == last_colon + 1 or buf[i - 1] == C_DOT:
                    quad_form = False
                dots += 1
            elif not is_digit(buf[i]):
                quad_form = False
        if quad_form and dots == 3 and buf[length - 1] != C_DOT:
            if not ipv4_from_text(buf + last_colon + 1, length - last_colon - 1, quad):
                return False
            length = last_colon + 1
            for k in range(4):
                buf[length] = HEX_DIGITS[quad[k] >> 4]
                buf[length + 1] = HEX_DIGITS[quad[k] & 15]
                length += 2
                if k == 1:
                    buf[length] = C_COLON
                    length += 1
    # "::x" -> ":x", else "x::" -> "x:"
    i = 0
    if length >= 2 and buf[0] == C_COLON and buf[1] == C_COLON:
        i = 1
    elif length >= 2 and buf[length - 1] == C_COLON and buf[length - 2] == C_COLON:
        length -= 1
    chunks = 1
    for k in range(i, length):
        if buf[k] == C_COLON:
            chunks += 1
    if chunks > 8:
        return False
    chunk_start = i
    while chunk_start <= length:
        k = chunk_start
        while k < length and buf[k] != C_COLON:
            k += 1
        if k == chunk_start:
            if seen_empty:
                return False
            seen_empty = True
            for zeros in range(8 - chunks + 1):
                out[2 * group] = 0
                out[2 * group + 1] = 0
                group += 1
        else:
            if k - chunk_start > 4:
                return False
            v = 0
            for zeros in range(chunk_start, k):
                if hex_value(buf[zeros]) < 0:
                    return False
                v = v * 16 + hex_value(buf[zeros])
            out[2 * group] = <uint8_t> (v >> 8)
            out[2 * group + 1] = <uint8_t> v
            group += 1
        chunk_start = k + 1
    if chunks < 8 and not seen_empty:
        return False
    return group == 8


cdef int f_ipv4(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    cdef Token t
    cdef uint8_t address[4]
    if take_value(s, lx, &t, False, b"address") < 0:
        return -1
    if not ipv4_from_text(s.value, s.value_length, address):
        return fail_field(s, &t, b"address", b"not an IPv4 address")
    out_bytes(o, address, 4)
    return 0


cdef int f_ipv6(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    cdef Token t
    cdef uint8_t address[16]
    if take_value(s, lx, &t, False, b"address") < 0:
        return -1
    if not ipv6_from_text(s.value, s.value_length, address):
        return fail_field(s, &t, b"address", b"not an IPv6 address")
    out_bytes(o, address, 16)
    return 0


cdef int f_algorithm(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """A DNSSEC algorithm number or mnemonic (RFC 4034 §5.1, App. A.1)."""
    cdef Token t
    cdef int v
    if take_value(s, lx, &t, True, b"algorithm") < 0:
        return -1
    v = algorithm_from_text(s.value, s.value_length)
    if v < 0:
        return fail_field(s, &t, b"algorithm", b"not a DNSSEC algorithm number or mnemonic")
    out_u8(o, <uint32_t> v)
    return 0


cdef int f_type(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    cdef Token t
    cdef int v
    if take_value(s, lx, &t, True, field) < 0:
        return -1
    v = type_from_text(s.value, s.value_length)
    if v < 0:
        return fail_field(s, &t, field, b"unknown record type")
    out_u16(o, <uint32_t> v)
    return 0


cdef int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef int64_t era, yoe, doy, doe
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int f_sigtime(_Scanner s, Lexer* lx, WireOut* o, const char* field) noexcept:
    """An RRSIG time (RFC 4034 §3.2): YYYYMMDDHHmmSS in UTC, or up to ten digits of seconds
    since 1970 (dns.rdtypes.rrsigbase.sigtime_to_posixtime); it must fit 32 bits."""
    cdef Token t
    cdef uint64_t v
    cdef int64_t year, month, day, hour, minute, second, seconds
    cdef const uint8_t* p
    cdef int days_in_month
    if take_value(s, lx, &t, True, field) < 0:
        return -1
    p = s.value
    if parse_decimal(p, s.value_length, &v) < 0:
        return fail_field(s, &t, field, b"not a time (YYYYMMDDHHmmSS or seconds)")
    if s.value_length > 10:
        if s.value_length != 14:
            return fail_field(s, &t, field, b"not a time (YYYYMMDDHHmmSS or seconds)")
        year = (p[0] - 48) * 1000 + (p[1] - 48) * 100 + (p[2] - 48) * 10 + (p[3] - 48)
        month = (p[4] - 48) * 10 + (p[5] - 48)
        day = (p[6] - 48) * 10 + (p[7] - 48)
        hour = (p[8] - 48) * 10 + (p[9] - 48)
        minute = (p[10] - 48) * 10 + (p[11] - 48)
        second = (p[12] - 48) * 10 + (p[13] - 48)
        days_in_month = 0
        if 1 <= month <= 12:
            days_in_month = DAYS_IN_MONTH[month - 1]
            if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
                days_in_month = 29
        if year < 1 or not (1 <= day <= days_in_month) or hour > 23 or minute > 59 \
                or second > 59:
            return fail_field(s, &t, field, b"not a valid date and time")
        seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        if seconds < 0 or seconds > 0xFFFFFFFFU:
            return fail_field(s, &t, field, b"outside 1970-01-01 .. 2106-02-07")
        v = <uint64_t> seconds
    elif v > 0xFFFFFFFFU:
        return fail_field(s, &t, field, b"not an unsigned 32-bit integer")
    out_u32(o, <uint32_t> v)
    return 0


cdef int f_bitmap(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """The type bitmap of NSEC, NSEC3 and CSYNC (RFC 4034 §4.1.2): type mnemonics to the end of
    the record, in any order, repeats allowed, written as windows of at most 32 octets with no
    trailing zero octets (dns.rdtypes.util.Bitmap.from_text)."""
    cdef Token t
    cdef int v, window, r
    cdef bint any_window = False
    cdef const uint8_t* p
    cdef Py_ssize_t n
    while True:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            lx_unget_token(lx, &t)
            break
        p = t.text
        n = t.length
        if t.has_escape:
            s.scratch.length = 0
            r = unescape_append(t.text, t.length, &s.scratch)
            if r == -2:
                return fail_out_of_memory(s, t.line)
            if r < 0:
                return fail_field(s, &t, b"type bitmap", b"bad escape")
            p = s.scratch.data
            n = s.scratch.length
        v = type_from_text(p, n)
        if v < 0:
            return fail_field(s, &t, b"type bitmap", b"unknown record type")
        if v == 0:
            return fail_field(s, &t, b"type bitmap", b"type 0 cannot be in a bitmap")
        window = v >> 8
        s.bitmap[window][(v & 0xFF) >> 3] |= <uint8_t> (0x80 >> (v & 7))
        if s.bitmap_length[window] < ((v & 0xFF) >> 3) + 1:
            s.bitmap_length[window] = <uint8_t> (((v & 0xFF) >> 3) + 1)
        any_window = True
    if not any_window:
        return 0
    for window in range(256):
        if s.bitmap_length[window]:
            out_u8(o, <uint32_t> window)
            out_u8(o, s.bitmap_length[window])
            out_bytes(o, s.bitmap[window], s.bitmap_length[window])
            memset(s.bitmap[window], 0, 32)
            s.bitmap_length[window] = 0
    return 0


cdef int f_salt(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """NSEC3/NSEC3PARAM salt (RFC 5155 §3.3): hex, or '-' for none; with its length octet."""
    cdef Token t
    cdef size_t length_at
    if take_value(s, lx, &t, True, b"salt") < 0:
        return -1
    if s.value_length == 1 and s.value[0] == C_MINUS:
        out_u8(o, 0)
        return 0
    if s.value_length > 510:
        return fail_field(s, &t, b"salt", b"longer than 255 octets")
    length_at = o.length
    out_u8(o, 0)
    if hex_decode(s, s.value, s.value_length, o, &t, b"salt") < 0:
        return -1
    if not o.overflow:
        o.data[length_at] = <uint8_t> (o.length - length_at - 1)
    return 0


cdef int f_next_hashed(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """NSEC3's next hashed owner name (RFC 5155 §3.3): unpadded base32hex (RFC 4648 §7),
    canonical (unused low bits zero), 1..255 octets; with its length octet."""
    cdef Token t
    cdef Py_ssize_t i, n
    cdef int v
    cdef uint32_t acc = 0
    cdef int bits = 0
    cdef size_t length_at
    cdef const char* field = b"next hashed owner name"
    if take_value(s, lx, &t, True, field) < 0:
        return -1
    n = s.value_length
    if n == 0 or n % 8 in (1, 3, 6) or n > 408:
        return fail_field(s, &t, field, b"not base32hex of 1..255 octets")
    length_at = o.length
    out_u8(o, 0)
    for i in range(n):
        v = upper_ascii(s.value[i])
        if C_ZERO <= v <= C_NINE:
            v -= C_ZERO
        elif 65 <= v <= 86:                    # A..V
            v -= 55
        else:
            return fail_field(s, &t, field, b"not base32hex")
        acc = (acc << 5) | <uint32_t> v
        bits += 5
        if bits >= 8:
            bits -= 8
            out_u8(o, (acc >> bits) & 0xFF)
    if acc & ((1u << bits) - 1):
        return fail_field(s, &t, field, b"not canonical base32hex (unused bits set)")
    if not o.overflow:
        o.data[length_at] = <uint8_t> (o.length - length_at - 1)
    return 0


# --- record types --------------------------------------------------------------------------------

cdef int parse_rdata_text(_Scanner s, Lexer* lx, int rtype, WireOut* o) noexcept:
    """The presentation-format rdata of a natively parsed type (the field lists follow the
    RFCs cited and dnspython's from_text). 0, or -1 with the error set."""
    if rtype == T_A:
        return f_ipv4(s, lx, o)
    elif rtype == T_AAAA:
        return f_ipv6(s, lx, o)                                        # RFC 3596 §2.2
    elif rtype == T_NS or rtype == T_CNAME or rtype == T_PTR or rtype == T_DNAME:
        return f_name(s, lx, o, b"target")                             # RFC 1035 §3.3, 6672
    elif rtype == T_MX or rtype == T_AFSDB or rtype == T_RT or rtype == T_KX:
        if f_uint(s, lx, o, 16, b"preference") < 0:                    # RFC 1035 §3.3.9, 1183
            return -1
        return f_name(s, lx, o, b"exchange")
    elif rtype == T_SOA:                                               # RFC 1035 §3.3.13
        if f_name(s, lx, o, b"mname") < 0:
            return -1
        if f_name(s, lx, o, b"rname") < 0:
            return -1
        if f_uint(s, lx, o, 32, b"serial") < 0 or f_ttl(s, lx, o, b"refresh") < 0 \
                or f_ttl(s, lx, o, b"retry") < 0 or f_ttl(s, lx, o, b"expire") < 0:
            return -1
        return f_ttl(s, lx, o, b"minimum")
    elif rtype == T_TXT or rtype == T_SPF:
        return f_strings(s, lx, o)                                     # RFC 1035 §3.3.14
    elif rtype == T_HINFO:
        if f_string(s, lx, o, True, b"cpu") < 0:
            return -1
        return f_string(s, lx, o, True, b"os")
    elif rtype == T_RP:                                                # RFC 1183 §2.2
        if f_name(s, lx, o, b"mailbox") < 0:
            return -1
        return f_name(s, lx, o, b"text name")
    elif rtype == T_SRV:                                               # RFC 2782
        if f_uint(s, lx, o, 16, b"priority") < 0 or f_uint(s, lx, o, 16, b"weight") < 0 \
                or f_uint(s, lx, o, 16, b"port") < 0:
            return -1
        return f_name(s, lx, o, b"target")
    elif rtype == T_NAPTR:                                             # RFC 3403 §4.1
        if f_uint(s, lx, o, 16, b"order") < 0 or f_uint(s, lx, o, 16, b"preference") < 0 \
                or f_string(s, lx, o, True, b"flags") < 0 \
                or f_string(s, lx, o, True, b"services") < 0 \
                or f_string(s, lx, o, True, b"regexp") < 0:
            return -1
        return f_name(s, lx, o, b"replacement")
    elif rtype == T_CAA:                                               # RFC 8659 §4.1.1
        if f_uint(s, lx, o, 8, b"flags") < 0 or f_string(s, lx, o, True, b"tag") < 0:
            return -1
        return f_string(s, lx, o, False, b"value")
    elif rtype == T_URI:                                               # RFC 7553 §4.5
        if f_uint(s, lx, o, 16, b"priority") < 0 or f_uint(s, lx, o, 16, b"weight") < 0:
            return -1
        return f_string(s, lx, o, False, b"target")
    elif rtype == T_DS or rtype == T_CDS:                              # RFC 4034 §5.3
        if f_uint(s, lx, o, 16, b"key tag") < 0 or f_algorithm(s, lx, o) < 0 \
                or f_uint(s, lx, o, 8, b"digest type") < 0:
            return -1
        return f_hex_rest(s, lx, o, b"digest")
    elif rtype == T_DNSKEY or rtype == T_CDNSKEY:                      # RFC 4034 §2.2
        if f_uint(s, lx, o, 16, b"flags") < 0 or f_uint(s, lx, o, 8, b"protocol") < 0 \
                or f_algorithm(s, lx, o) < 0:
            return -1
        return f_base64_rest(s, lx, o, b"public key")
    elif rtype == T_RRSIG:                                             # RFC 4034 §3.2
        if f_type(s, lx, o, b"type covered") < 0 or f_algorithm(s, lx, o) < 0 \
                or f_uint(s, lx, o, 8, b"labels") < 0 or f_ttl(s, lx, o, b"original TTL") < 0 \
                or f_sigtime(s, lx, o, b"expiration") < 0 \
                or f_sigtime(s, lx, o, b"inception") < 0 \
                or f_uint(s, lx, o, 16, b"key tag") < 0:
            return -1
        if f_name(s, lx, o, b"signer") < 0:
            return -1
        return f_base64_rest(s, lx, o, b"signature")
    elif rtype == T_NSEC:                                              # RFC 4034 §4.2
        if f_name(s, lx, o, b"next domain name") < 0:
            return -1
        return f_bitmap(s, lx, o)
    elif rtype == T_NSEC3:                                             # RFC 5155 §3.3
        if f_uint(s, lx, o, 8, b"hash algorithm") < 0 or f_uint(s, lx, o, 8, b"flags") < 0 \
                or f_uint(s, lx, o, 16, b"iterations") < 0 or f_salt(s, lx, o) < 0 \
                or f_next_hashed(s, lx, o) < 0:
            return -1
        return f_bitmap(s, lx, o)
    elif rtype == T_NSEC3PARAM:                                        # RFC 5155 §4.3
        if f_uint(s, lx, o, 8, b"hash algorithm") < 0 or f_uint(s, lx, o, 8, b"flags") < 0 \
                or f_uint(s, lx, o, 16, b"iterations") < 0:
            return -1
        return f_salt(s, lx, o)
    elif rtype == T_TLSA or rtype == T_SMIMEA:                         # RFC 6698 §2.2
        if f_uint(s, lx, o, 8, b"usage") < 0 or f_uint(s, lx, o, 8, b"selector") < 0 \
                or f_uint(s, lx, o, 8, b"matching type") < 0:
            return -1
        return f_hex_rest(s, lx, o, b"certificate data")
    elif rtype == T_SSHFP:                                             # RFC 4255 §3.2
        if f_uint(s, lx, o, 8, b"algorithm") < 0 or f_uint(s, lx, o, 8, b"fingerprint type") < 0:
            return -1
        return f_hex_rest(s, lx, o, b"fingerprint")
    elif rtype == T_OPENPGPKEY or rtype == T_DHCID:                    # RFC 7929, 4701
        return f_base64_rest(s, lx, o, b"data")
    elif rtype == T_ZONEMD:                                            # RFC 8976 §2.3
        if f_uint(s, lx, o, 32, b"serial") < 0 or f_uint(s, lx, o, 8, b"scheme") < 0 \
                or f_uint(s, lx, o, 8, b"hash algorithm") < 0:
            return -1
        return f_hex_rest(s, lx, o, b"digest")
    elif rtype == T_CSYNC:                                             # RFC 7477 §2.2
        if f_uint(s, lx, o, 32, b"serial") < 0 or f_uint(s, lx, o, 16, b"flags") < 0:
            return -1
        return f_bitmap(s, lx, o)
    elif rtype == T_SVCB or rtype == T_HTTPS:
        return parse_svcb_text(s, lx, o)
    return fail(s, lx.statement_line, b"internal error: no parser for this native type")


cdef int parse_rdata_generic(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """RFC 3597 §5: ``\\# <length> <hex>...``, the ``\\#`` already read
    (dns.rdata.GenericRdata.from_text: hex in any number of tokens, none when length is 0)."""
    cdef Token t
    cdef uint64_t length
    cdef size_t start = o.length
    if take_value(s, lx, &t, False, b"generic rdata length") < 0:
        return -1
    if parse_decimal(s.value, s.value_length, &length) < 0:
        return fail_field(s, &t, b"generic rdata length", b"not an integer")
    if take_rest(s, lx, &t, b"generic rdata") < 0:
        return -1
    if hex_decode(s, s.concat.data, s.concat.length, o, &t, b"generic rdata") < 0:
        return -1
    if o.overflow:
        return fail(s, t.line, b"rdata longer than 65535 octets")
    if o.length - start != length:
        msg_clear(&s.err)
        msg_add(&s.err, b"generic rdata has ")
        msg_add_uint(&s.err, o.length - start)
        msg_add(&s.err, b" octets of hex data, not the ")
        msg_add_uint(&s.err, length)
        msg_add(&s.err, b" its length says")
        s.err.line = t.line
        return -1
    return 0


# --- the wire check ------------------------------------------------------------------------------

cdef bint wire_name(const uint8_t* p, size_t n, size_t* pos) noexcept nogil:
    """An uncompressed name at p[pos]: labels of 0..63 octets, at most 255 octets in all."""
    cdef size_t total = 0
    cdef uint32_t length
    while True:
        if pos[0] >= n:
            return False
        length = p[pos[0]]
        if length > MAX_LABEL:
            return False                       # a compression pointer or an unknown label type
        pos[0] += 1
        total += length + 1
        if total > MAX_NAME_WIRE:
            return False
        if length == 0:
            return True
        if pos[0] + length > n:
            return False
        pos[0] += length


cdef bint wire_string(const uint8_t* p, size_t n, size_t* pos) noexcept nogil:
    if pos[0] >= n or pos[0] + 1 + p[pos[0]] > n:
        return False
    pos[0] += 1 + p[pos[0]]
    return True


cdef bint wire_bitmap(const uint8_t* p, size_t n, size_t pos) noexcept nogil:
    """Windows in increasing order, 1..32 octets each, the last octet not zero (RFC 4034
    §4.1.2, dns.rdtypes.util.Bitmap)."""
    cdef int last_window = -1
    cdef uint32_t length
    while pos < n:
        if pos + 2 > n or p[pos] <= last_window:
            return False
        last_window = p[pos]
        length = p[pos + 1]
        if length == 0 or length > 32 or pos + 2 + length > n or p[pos + 1 + length] == 0:
            return False
        pos += 2 + length
    return True


cdef inline const char* verdict(bint good, const char* why) noexcept nogil:
    if good:
        return NULL
    return why


cdef const char* check_rdata_wire(int rtype, const uint8_t* p, size_t n) noexcept nogil:
    """Is ``p`` well-formed rdata of a natively parsed type? NULL if so, else why not. The
    checks are those of dnspython's from_wire and constructors (dns/rdtypes/)."""
    cdef size_t pos = 0
    cdef uint32_t expected
    cdef const char* bad = b"malformed rdata"
    if rtype == T_A:
        return verdict(n == 4, b"A rdata is not 4 octets")
    elif rtype == T_AAAA:
        return verdict(n == 16, b"AAAA rdata is not 16 octets")
    elif rtype == T_NS or rtype == T_CNAME or rtype == T_PTR or rtype == T_DNAME:
        return verdict(wire_name(p, n, &pos) and pos == n, bad)
    elif rtype == T_MX or rtype == T_AFSDB or rtype == T_RT or rtype == T_KX:
        pos = 2
        return verdict(wire_name(p, n, &pos) and pos == n, bad)
    elif rtype == T_SOA:
        return verdict(wire_name(p, n, &pos) and wire_name(p, n, &pos) and pos + 20 == n, bad)
    elif rtype == T_TXT or rtype == T_SPF:
        if n == 0:
            return b"TXT rdata needs at least one string"
        while pos < n:
            if not wire_string(p, n, &pos):
                return bad
        return NULL
    elif rtype == T_HINFO:
        return verdict(wire_string(p, n, &pos) and wire_string(p, n, &pos) and pos == n, bad)
    elif rtype == T_RP:
        return verdict(wire_name(p, n, &pos) and wire_name(p, n, &pos) and pos == n, bad)
    elif rtype == T_SRV:
        pos = 6
        return verdict(wire_name(p, n, &pos) and pos == n, bad)
    elif rtype == T_NAPTR:
        pos = 4
        return verdict(wire_string(p, n, &pos) and wire_string(p, n, &pos)
                       and wire_string(p, n, &pos) and wire_name(p, n, &pos) and pos == n, bad)
    elif rtype == T_CAA:
        pos = 1
        if not wire_string(p, n, &pos):
            return bad
        if p[1] == 0:
            return b"CAA tag is empty"
        for expected in range(2, 2 + p[1]):
            if not (is_digit(p[expected]) or 65 <= (p[expected] & 0xDF) <= 90):
                return b"CAA tag is not alphanumeric"
        return NULL
    elif rtype == T_URI:
        return verdict(n > 4, b"URI target cannot be empty")
    elif rtype == T_DS or rtype == T_CDS:
        if n < 4:
            return bad
        expected = 0
        if p[3] == 1:
            expected = 20                      # SHA-1, RFC 3658 §2.4
        elif p[3] == 2 or p[3] == 3:
            expected = 32                      # SHA-256 (RFC 4509), GOST (RFC 5933)
        elif p[3] == 4:
            expected = 48                      # SHA-384, RFC 6605
        elif p[3] == 0:
            if rtype == T_DS:
                return b"DS digest type 0 is reserved"
            expected = 1                       # CDS delete (RFC 8078 §4)
        if expected and n - 4 != expected:
            return b"digest length inconsistent with digest type"
        return NULL
    elif rtype == T_DNSKEY or rtype == T_CDNSKEY:
        return verdict(n >= 4, bad)
    elif rtype == T_RRSIG:
        pos = 18
        return verdict(wire_name(p, n, &pos), bad)
    elif rtype == T_NSEC:
        if not wire_name(p, n, &pos):
            return bad
        return verdict(wire_bitmap(p, n, pos), b"bad NSEC type bitmap")
    elif rtype == T_NSEC3:
        pos = 4
        if not wire_string(p, n, &pos):
            return bad
        if pos >= n:
            return bad
        if p[pos] == 0:
            return b"NSEC3 next hashed owner name is empty"
        if not wire_string(p, n, &pos):
            return bad
        return verdict(wire_bitmap(p, n, pos), b"bad NSEC3 type bitmap")
    elif rtype == T_NSEC3PARAM:
        pos = 4
        return verdict(wire_string(p, n, &pos) and pos == n, bad)
    elif rtype == T_TLSA or rtype == T_SMIMEA:
        if n < 3:
            return bad
        expected = 0
        if p[2] == 1:
            expected = 32                      # SHA-256
        elif p[2] == 2:
            expected = 64                      # SHA-512
        if expected and n - 3 != expected:
            return b"certificate association data length inconsistent with matching type"
        return NULL
    elif rtype == T_SSHFP:
        if n < 2:
            return bad
        expected = 0
        if p[1] == 1:
            expected = 20                      # SHA-1
        elif p[1] == 2:
            expected = 32                      # SHA-256
        if expected and n - 2 != expected:
            return b"fingerprint length inconsistent with fingerprint type"
        return NULL
    elif rtype == T_OPENPGPKEY or rtype == T_DHCID:
        return NULL
    elif rtype == T_ZONEMD:
        if n < 6:
            return bad
        if p[4] == 0:
            return b"ZONEMD scheme 0 is reserved"
        if p[5] == 0:
            return b"ZONEMD hash algorithm 0 is reserved"
        if n - 6 < 12:
            return b"ZONEMD digest must be at least 12 octets"
        expected = 0
        if p[5] == 1:
            expected = 48                      # SHA-384
        elif p[5] == 2:
            expected = 64                      # SHA-512
        if expected and n - 6 != expected:
            return b"digest length inconsistent with hash algorithm"
        return NULL
    elif rtype == T_CSYNC:
        if n < 6:
            return bad
        return verdict(wire_bitmap(p, n, 6), b"bad CSYNC type bitmap")
    elif rtype == T_SVCB or rtype == T_HTTPS:
        return check_svcb_wire(p, n)
    return NULL
