# $GENERATE (BIND's extension, as dnspython implements it in dns.zonefile and dns.grange):
#
#     $GENERATE start-stop[/step] owner-template [ttl] [class] type rdata-template
#
# Each '$' in a template is the counter, or with a modifier ${offset[,width[,base]]} the counter
# plus offset, zero-padded to width, in base d, o, x, X, or n/N (nibbles, least significant
# first, dot-separated, for reverse zones). '$$' is a '$'; a backslash escape is copied as is.
# The rdata template is one token; after substitution it is read as rdata text on its own.
#
# Included by zscanner.pyx.


cdef int parse_generate_range(const uint8_t* p, Py_ssize_t n, uint64_t* start, uint64_t* stop,
                              uint64_t* step) noexcept nogil:
    """dns.grange.from_text: ``start-stop[/step]``, start <= stop, step >= 1. -1 if not."""
    cdef int state = 0
    cdef uint64_t current = 0
    cdef int digits = 0
    cdef bint have_start = False
    cdef Py_ssize_t i
    step[0] = 1
    if n > 0 and p[0] == C_MINUS:
        return -1
    for i in range(n):
        if p[i] == C_MINUS and state == 0:
            if digits == 0:
                return -1
            start[0] = current
            have_start = True
            state = 1
        elif p[i] == C_SLASH:
            if digits == 0:
                return -1
            stop[0] = current
            state = 2
        elif is_digit(p[i]):
            if current < (<uint64_t> 1 << 40):
                current = current * 10 + (p[i] - C_ZERO)
            digits += 1
            continue
        else:
            return -1
        current = 0
        digits = 0
    if state == 0 or digits == 0 or not have_start:
        return -1
    if state == 1:
        stop[0] = current
    else:
        step[0] = current
    if step[0] < 1 or start[0] > stop[0] or stop[0] > 0xFFFFFFFFU or step[0] > 0xFFFFFFFFU:
        return -1
    return 0


cdef int append_number(ByteBuffer* out, int64_t value, int base, uint32_t width) noexcept nogil:
    """Python's format(value, base).zfill(width) for base d, o, x and X."""
    cdef char digits[72]
    cdef int n = 0
    cdef uint64_t magnitude = <uint64_t> (-value if value < 0 else value)
    cdef const char* alphabet = b"0123456789ABCDEF" if base == 88 else b"0123456789abcdef"
    cdef uint32_t radix = 8 if base == 111 else (16 if base == 120 or base == 88 else 10)
    cdef uint32_t length, k
    while True:
        digits[n] = alphabet[magnitude % radix]
        n += 1
        magnitude //= radix
        if magnitude == 0:
            break
    length = n + (1 if value < 0 else 0)
    if buf_reserve(out, (width if width > length else length) + 1) < 0:
        return -1
    if value < 0:
        out.data[out.length] = C_MINUS
        out.length += 1
    k = length
    while k < width:
        out.data[out.length] = C_ZERO
        out.length += 1
        k += 1
    while n > 0:
        n -= 1
        out.data[out.length] = <uint8_t> digits[n]
        out.length += 1
    return 0


cdef int append_nibbles(ByteBuffer* out, uint64_t value, int32_t width, bint upper) noexcept nogil:
    """dnspython's _generate_nibbles: hex digits least significant first, dot-separated, padded
    with zero nibbles until the text is at least ``width`` characters long."""
    cdef const char* alphabet = b"0123456789ABCDEF" if upper else b"0123456789abcdef"
    while True:
        if buf_reserve(out, 2) < 0:
            return -1
        out.data[out.length] = <uint8_t> alphabet[value & 15]
        out.length += 1
        value >>= 4
        if width > 0:
            width -= 1
        if width > 0 or value != 0:
            out.data[out.length] = C_DOT
            out.length += 1
            if width > 0:
                width -= 1
        if value == 0 and width == 0:
            return 0


cdef int generate_text(_Scanner s, const uint8_t* p, Py_ssize_t n, int64_t counter,
                       uint32_t line) noexcept:
    """Substitute ``counter`` into the template ``p`` (dnspython's _generate_text), appending
    to s.generated."""
    cdef ByteBuffer* out = &s.generated
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t j
    cdef int64_t offset, value
    cdef uint64_t width
    cdef int base
    cdef bint negative
    cdef int digits
    while i < n:
        if p[i] == C_BSLASH:
            if buf_append(out, p + i, 2 if i + 1 < n else 1) < 0:
                return fail_out_of_memory(s, line)
            i += 2
            continue
        if p[i] != C_DOLLAR:
            if buf_append(out, p + i, 1) < 0:
                return fail_out_of_memory(s, line)
            i += 1
            continue
        if i + 1 < n and p[i + 1] == C_DOLLAR:
            if buf_append(out, p + i, 1) < 0:
                return fail_out_of_memory(s, line)
            i += 2
            continue
        i += 1
        offset = 0
        width = 0
        base = 100                             # 'd'
        if i < n and p[i] == C_LBRACE:
            # {([+-]?\d+)(?:,(\d+)(?:,([doxXnN]))?)?}
            j = i + 1
            negative = False
            if j < n and (p[j] == C_PLUS or p[j] == C_MINUS):
                negative = p[j] == C_MINUS
                j += 1
            digits = 0
            while j < n and is_digit(p[j]):
                if offset < (<int64_t> 1 << 40):
                    offset = offset * 10 + (p[j] - C_ZERO)
                digits += 1
                j += 1
            if digits == 0:
                return fail(s, line, b"invalid $GENERATE modifier")
            if negative:
                offset = -offset
            if j < n and p[j] == C_COMMA:
                j += 1
                digits = 0
                while j < n and is_digit(p[j]):
                    if width < 1000:
                        width = width * 10 + (p[j] - C_ZERO)
                    digits += 1
                    j += 1
                if digits == 0:
                    return fail(s, line, b"invalid $GENERATE modifier")
                if width > MAX_GENERATE_WIDTH:
                    return fail(s, line, b"$GENERATE width is too large (at most 127)")
                if j < n and p[j] == C_COMMA:
                    j += 1
                    if j < n and p[j] in b"doxXnN":
                        base = p[j]
                        j += 1
                    else:
                        return fail(s, line, b"invalid $GENERATE modifier")
            if j >= n or p[j] != C_RBRACE:
                return fail(s, line, b"invalid $GENERATE modifier")
            i = j + 1
        if offset >= (<int64_t> 1 << 40) or offset <= -(<int64_t> 1 << 40):
            return fail(s, line, b"$GENERATE offset out of range")
        value = counter + offset
        if base == 110 or base == 78:          # 'n', 'N'
            if value < 0:
                return fail(s, line, b"negative $GENERATE value in nibble mode")
            if append_nibbles(out, <uint64_t> value, <int32_t> width, base == 78) < 0:
                return fail_out_of_memory(s, line)
        elif append_number(out, value, base, <uint32_t> width) < 0:
            return fail_out_of_memory(s, line)
    return 0


cdef int directive_generate(_Scanner s, Lexer* lx, int file_index) noexcept:
    """$GENERATE: one record per counter value (dnspython's Reader._generate_line). Unlike
    dnspython, text after the rdata template is an error rather than the start of a record."""
    cdef Token t
    cdef Token lhs
    cdef Token rhs
    cdef Lexer sub
    cdef WireOut o
    cdef uint32_t line = lx.statement_line
    cdef uint32_t ttl = 0
    cdef uint64_t start = 0
    cdef uint64_t stop = 0
    cdef uint64_t step = 1
    cdef uint64_t counter
    cdef int rclass, rtype, r
    if not s.st.has_origin:
        return fail(s, line, NO_ORIGIN)
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID and t.kind != TK_QSTR:
        return fail(s, line, b"missing $GENERATE range")
    if parse_generate_range(t.text, t.length, &start, &stop, &step) < 0:
        return fail_token(s, &t, b"bad $GENERATE range ",
                          b": expecting start-stop[/step], start <= stop, below 2**32")
    if lx_get(lx, &lhs, False, False, &s.err) < 0:
        return -1
    if lhs.kind != TK_ID:
        return fail_token(s, &lhs, b"bad $GENERATE owner template: found ", b"")
    if take_identifier(s, lx, &t) < 0:
        return -1
    if ttl_from_text(t.text, t.length, &ttl):
        s.st.last_ttl = ttl
        s.st.last_ttl_known = True
        if take_identifier(s, lx, &t) < 0:
            return -1
    elif not implicit_ttl(s, &ttl):
        return fail(s, t.line, b"missing default TTL value: $GENERATE has no TTL, and no $TTL "
                               b"or earlier TTL applies")
    rclass = class_from_text(t.text, t.length)
    if rclass >= 0:
        if rclass != 1:
            return fail_token(s, &t, b"record class must be IN, not ", b"")
        if take_identifier(s, lx, &t) < 0:
            return -1
    rtype = type_from_text(t.text, t.length)
    if rtype < 0:
        return fail_token(s, &t, b"unknown record type ", b"")
    set_type_name(s, &t)
    if lx_get(lx, &rhs, False, False, &s.err) < 0:
        return -1
    if rhs.kind != TK_ID:
        return fail_token(s, &rhs, b"bad $GENERATE rdata template: found ", b"")
    if expect_end(s, lx, b" after the $GENERATE rdata template (quote nothing; escape spaces)") < 0:
        return -1

    counter = start
    while counter <= stop:
        s.generated.length = 0
        if generate_text(s, lhs.text, lhs.length, <int64_t> counter, line) < 0:
            return -1
        r = name_from_text(s.generated.data, s.generated.length, &s.st.origin, &s.st.last_name,
                           &s.err)
        if r == NEEDS_DNSPYTHON:
            r = dnspython_name(s, s.generated.data, s.generated.length, &s.st.origin,
                               &s.st.last_name, line)
        if r < 0:
            s.err.line = line
            return -1
        s.st.has_last_name = True
        s.generated.length = 0
        if generate_text(s, rhs.text, rhs.length, <int64_t> counter, line) < 0:
            return -1
        lx_init(&sub, s.generated.data, s.generated.length, line)
        s.generating_rdata = True
        r = begin_rdata(s, &o, line)
        if r == 0:
            r = parse_rdata(s, &sub, rtype, line, &o)
        s.generating_rdata = False
        if r < 0:
            return -1
        if lx_get(&sub, &t, False, False, &s.err) < 0:
            return -1
        if t.kind != TK_EOL and t.kind != TK_EOF:
            return fail_token(s, &t, b"unexpected ", b" after the generated record data")
        if commit_record(s, &s.st.last_name, rtype, ttl, o.length, line, file_index) < 0:
            return -1
        counter += step
    return 0
