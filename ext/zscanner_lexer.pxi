# Lexing: reading a file, checking it is UTF-8, and cutting it into tokens.
#
# Included by zscanner.pyx. The tokenizer is a port of dnspython's (dns/tokenizer.py) to bytes,
# decision for decision, because dnspython is the reference the scanner is tested against:
#
# - delimiters are space, tab, newline, ';', '(', ')' and '"'; inside a quoted string only '"';
# - '(' and ')' (RFC 1035 §5.1) count nesting; inside parentheses newlines are whitespace;
# - a quoted string's closing quote is handled at the start of the next token, after which
#   whitespace is skipped, so `"a""b"` is two strings;
# - a backslash keeps itself and the next character in the token (the escape is interpreted by
#   whoever reads the token: names, strings and numbers unescape differently); a backslash
#   before a newline is an error outside quotes and part of the string inside;
# - outside a quoted string CR ends a line like LF, and CR LF is one line end;
# - one character and one token can be put back.
#
# A token's text is a slice of the file buffer, never a copy: the hot loop allocates nothing.

cdef bint DELIMITER[256]
# Octets that end the fast scan of a token's body (a delimiter, an escape or a CR; inside a
# quoted string: the quote, an escape or a newline). Everything else is simply part of the token.
cdef bint SPECIAL_IN_IDENTIFIER[256]
cdef bint SPECIAL_IN_QUOTES[256]


cdef void init_delimiters() noexcept nogil:
    memset(DELIMITER, 0, sizeof(DELIMITER))
    DELIMITER[C_SP] = True
    DELIMITER[C_TAB] = True
    DELIMITER[C_NL] = True
    DELIMITER[C_SEMI] = True
    DELIMITER[C_LPAR] = True
    DELIMITER[C_RPAR] = True
    DELIMITER[C_QUOTE] = True
    memcpy(SPECIAL_IN_IDENTIFIER, DELIMITER, sizeof(DELIMITER))
    SPECIAL_IN_IDENTIFIER[C_BSLASH] = True
    SPECIAL_IN_IDENTIFIER[C_CR] = True
    memset(SPECIAL_IN_QUOTES, 0, sizeof(SPECIAL_IN_QUOTES))
    SPECIAL_IN_QUOTES[C_QUOTE] = True
    SPECIAL_IN_QUOTES[C_BSLASH] = True
    SPECIAL_IN_QUOTES[C_NL] = True


# --- input files ---------------------------------------------------------------------------------

cdef int read_whole_file(const char* path, uint8_t** data, Py_ssize_t* size,
                         int* error) noexcept nogil:
    """Read a file into a malloc'd buffer. -1 with ``error`` set to the errno on failure."""
    cdef int fd = open(path, O_RDONLY | O_CLOEXEC)
    cdef struct_stat st
    cdef size_t capacity, length = 0
    cdef ssize_t got
    cdef uint8_t* buf = NULL
    cdef uint8_t* grown
    if fd < 0:
        error[0] = errno
        return -1
    if fstat(fd, &st) < 0:
        error[0] = errno
        close(fd)
        return -1
    # st_size is only a hint (a pipe or /proc file says 0): read until EOF, growing as needed.
    capacity = <size_t> st.st_size + 1 if st.st_size > 0 else 65536
    buf = <uint8_t*> malloc(capacity)
    if buf == NULL:
        error[0] = ENOMEM
        close(fd)
        return -1
    while True:
        if length == capacity:
            grown = <uint8_t*> realloc(buf, capacity * 2)
            if grown == NULL:
                error[0] = ENOMEM
                free(buf)
                close(fd)
                return -1
            buf = grown
            capacity *= 2
        got = read(fd, buf + length, capacity - length)
        if got < 0:
            if errno == EINTR:
                continue
            error[0] = errno
            free(buf)
            close(fd)
            return -1
        if got == 0:
            break
        length += <size_t> got
    close(fd)
    data[0] = buf
    size[0] = <Py_ssize_t> length
    return 0


cdef Py_ssize_t utf8_error_offset(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """Offset of the first octet that does not start a well-formed UTF-8 sequence (the Unicode
    standard's Table 3-7, as Python's strict decoder checks it), or -1 if all of ``p`` is."""
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    cdef uint8_t c, lo, hi
    cdef int more, k
    while i < n:
        # Zone files are almost all ASCII: test eight octets at a time.
        if i + 8 <= n:
            memcpy(&word, p + i, 8)
            if (word & <uint64_t> 0x8080808080808080) == 0:
                i += 8
                continue
        c = p[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            more = 1
        elif 0xE0 <= c <= 0xEF:
            more = 2
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F                      # no UTF-16 surrogates
        elif 0xF0 <= c <= 0xF4:
            more = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F                      # nothing above U+10FFFF
        else:
            return i
        if i + more >= n:
            return i                           # truncated at the end of the file
        if not (lo <= p[i + 1] <= hi):
            return i
        for k in range(2, more + 1):
            if not (0x80 <= p[i + k] <= 0xBF):
                return i
        i += more + 1
    return -1


cdef uint32_t line_of_offset(const uint8_t* p, Py_ssize_t offset) noexcept nogil:
    cdef uint32_t line = 1
    cdef Py_ssize_t i
    for i in range(offset):
        if p[i] == C_NL:
            line += 1
    return line


# --- the tokenizer -------------------------------------------------------------------------------

cdef void lx_init(Lexer* lx, const uint8_t* buf, Py_ssize_t n, uint32_t first_line) noexcept nogil:
    memset(lx, 0, sizeof(Lexer))
    lx.buf = buf
    lx.end = n
    lx.line = first_line
    lx.ungot = NO_CHAR
    lx.statement_line = first_line


cdef inline int lx_getc(Lexer* lx) noexcept nogil:
    """The next character (an octet), or END_OF_INPUT. Counts lines; CR and CR LF read as LF
    outside quoted strings, as dnspython's Tokenizer._get_char does."""
    cdef int c
    if lx.ungot != NO_CHAR:
        c = lx.ungot
        lx.ungot = NO_CHAR
        lx.last_pos = lx.ungot_pos
        return c
    if lx.pos >= lx.end:
        lx.last_pos = lx.end
        return END_OF_INPUT
    c = lx.buf[lx.pos]
    lx.last_pos = lx.pos
    lx.pos += 1
    if lx.after_cr:
        lx.after_cr = False
        if c == C_NL:
            if lx.pos >= lx.end:
                lx.last_pos = lx.end
                return END_OF_INPUT
            c = lx.buf[lx.pos]
            lx.last_pos = lx.pos
            lx.pos += 1
    if c == C_CR and not lx.quoting:
        lx.after_cr = True
        c = C_NL
    if c == C_NL:
        lx.line += 1
    return c


cdef inline void lx_unget(Lexer* lx, int c) noexcept nogil:
    lx.ungot = c
    lx.ungot_pos = lx.last_pos


cdef inline void lx_unget_token(Lexer* lx, const Token* t) noexcept nogil:
    lx.has_pushback = True
    lx.pushback = t[0]


cdef inline uint32_t lx_next_char_line(const Lexer* lx) noexcept nogil:
    """The line of the next character to be read (a put-back newline was already counted)."""
    return lx.line - 1 if lx.ungot == C_NL else lx.line


cdef inline Py_ssize_t lx_next_char_offset(const Lexer* lx) noexcept nogil:
    return lx.ungot_pos if lx.ungot != NO_CHAR else lx.pos


cdef inline int lx_skip_whitespace(Lexer* lx) noexcept nogil:
    """Skip spaces and tabs (and newlines inside parentheses); return how many."""
    cdef int skipped = 0
    cdef int c
    while True:
        c = lx_getc(lx)
        if c != C_SP and c != C_TAB:
            if c != C_NL or lx.multiline == 0:
                lx_unget(lx, c)
                return skipped
        skipped += 1


cdef int lx_fail(Lexer* lx, ErrorInfo* err, const char* reason) noexcept nogil:
    # A file that cannot be tokenized is blamed on the line where the record began (an
    # unbalanced parenthesis is found at the end of the file, far from its cause).
    strncpy(err.reason, reason, REASON_SIZE - 1)
    err.reason[REASON_SIZE - 1] = 0
    err.line = lx.statement_line
    return -1


cdef int lx_get(Lexer* lx, Token* t, bint want_leading, bint want_comment,
                ErrorInfo* err) noexcept nogil:
    """The next token (dnspython's Tokenizer.get). ``want_leading``: return TK_WS when the
    line starts with whitespace; ``want_comment``: return a comment as TK_COMMENT instead of
    treating it as the end of the line. 0, or -1 with ``err`` set."""
    cdef int c
    cdef int kind = TK_ID
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t count = 0
    cdef bint has_escape = False
    cdef const bint* special
    if lx.has_pushback:
        lx.has_pushback = False
        if lx.pushback.kind == TK_WS:
            if want_leading:
                t[0] = lx.pushback
                return 0
        elif lx.pushback.kind == TK_COMMENT:
            if want_comment:
                t[0] = lx.pushback
                return 0
        else:
            t[0] = lx.pushback
            return 0
    t.text = NULL
    t.length = 0
    t.has_escape = False
    if lx_skip_whitespace(lx) > 0 and want_leading:
        t.kind = TK_WS
        t.offset = lx_next_char_offset(lx)
        t.line = lx_next_char_line(lx)
        return 0
    t.line = lx_next_char_line(lx)
    while True:
        c = lx_getc(lx)
        if c == END_OF_INPUT or (c == C_QUOTE if lx.quoting else DELIMITER[c]):
            if c == END_OF_INPUT and lx.quoting:
                return lx_fail(lx, err, b"end of file inside a quoted string")
            if count == 0 and kind != TK_QSTR:
                if c == C_LPAR:
                    lx.multiline += 1
                    lx_skip_whitespace(lx)
                    continue
                elif c == C_RPAR:
                    if lx.multiline <= 0:
                        return lx_fail(lx, err, b"unbalanced parentheses: ')' without '('")
                    lx.multiline -= 1
                    lx_skip_whitespace(lx)
                    continue
                elif c == C_QUOTE:
                    if not lx.quoting:
                        lx.quoting = True
                        kind = TK_QSTR
                        start = lx.last_pos + 1
                        t.line = lx.line
                    else:
                        # the closing quote of the previous token
                        lx.quoting = False
                        lx_skip_whitespace(lx)
                    continue
                elif c == C_NL:
                    t.kind = TK_EOL
                    t.offset = lx.last_pos
                    t.line = lx.line - 1
                    return 0
                elif c == C_SEMI:
                    while True:
                        c = lx_getc(lx)
                        if c == C_NL or c == END_OF_INPUT:
                            break
                    if want_comment:
                        lx_unget(lx, c)
                        t.kind = TK_COMMENT
                        return 0
                    elif c == END_OF_INPUT:
                        if lx.multiline:
                            return lx_fail(lx, err, b"unbalanced parentheses: '(' never closed")
                        t.kind = TK_EOF
                        t.offset = lx.end
                        t.line = lx.line
                        return 0
                    elif lx.multiline:
                        lx_skip_whitespace(lx)
                        continue
                    t.kind = TK_EOL
                    t.offset = lx.last_pos
                    t.line = lx.line - 1
                    return 0
                # otherwise the end of the input: an EOF token, below
            else:
                lx_unget(lx, c)
            break
        elif lx.quoting and c == C_NL:
            return lx_fail(lx, err, b"newline in quoted string")
        if count == 0 and kind == TK_ID:
            start = lx.last_pos
            t.line = lx.line
        if c == C_BSLASH:
            has_escape = True
            c = lx_getc(lx)
            if c == END_OF_INPUT or (c == C_NL and not lx.quoting):
                return lx_fail(lx, err, b"backslash at the end of a line")
            count += 1
        count += 1
        # Fast path: the ordinary octets that follow need none of getc's bookkeeping (no line
        # end, no CR outside quotes, nothing put back).
        if lx.ungot == NO_CHAR:
            special = &SPECIAL_IN_QUOTES[0] if lx.quoting else &SPECIAL_IN_IDENTIFIER[0]
            while lx.pos < lx.end and not special[lx.buf[lx.pos]]:
                lx.pos += 1
                count += 1
    if count == 0 and kind != TK_QSTR:
        if lx.multiline:
            return lx_fail(lx, err, b"unbalanced parentheses: '(' never closed")
        t.kind = TK_EOF
        t.offset = lx.end
        t.line = lx.line
        return 0
    t.kind = kind
    t.text = lx.buf + start
    t.length = lx.last_pos - start
    t.offset = start
    t.has_escape = has_escape
    return 0


# --- escapes -------------------------------------------------------------------------------------

cdef int unescape_append(const uint8_t* p, Py_ssize_t n, ByteBuffer* out) noexcept nogil:
    """Append ``p`` with its escapes applied (RFC 1035 §5.1: \\DDD is the octet DDD, \\X is X),
    as dnspython's Token.unescape_to_bytes does. -1: a malformed \\DDD; -2: out of memory."""
    cdef Py_ssize_t i = 0
    cdef uint32_t v
    if buf_reserve(out, <size_t> n) < 0:
        return -2
    while i < n:
        if p[i] != C_BSLASH:
            out.data[out.length] = p[i]
            out.length += 1
            i += 1
            continue
        if i + 1 >= n:
            return -1
        if not is_digit(p[i + 1]):
            out.data[out.length] = p[i + 1]
            out.length += 1
            i += 2
            continue
        if i + 3 >= n:
            return -1
        if not (is_digit(p[i + 2]) and is_digit(p[i + 3])):
            return -1
        v = (p[i + 1] - C_ZERO) * 100 + (p[i + 2] - C_ZERO) * 10 + (p[i + 3] - C_ZERO)
        if v > 255:
            return -1
        out.data[out.length] = <uint8_t> v
        out.length += 1
        i += 4
    return 0


cdef inline bint is_digit(int c) noexcept nogil:
    return C_ZERO <= c <= C_NINE
