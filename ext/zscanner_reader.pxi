# Reading a file: statements (records and directives), the record line, $ORIGIN, $TTL,
# $INCLUDE, $GENERATE and $UNICODE, and appending records to the columns.
#
# Included by zscanner.pyx. The logic is dnspython's dns.zonefile.Reader (read, _rr_line,
# _generate_line) over the C lexer; where fastdns.zonefile changes dnspython (relative
# $INCLUDE paths, the line of a record), the scanner does what fastdns does.

cdef const char* NO_ORIGIN = (
    b"no origin for relative names: give one, or use $ORIGIN before the first record")


cdef bint token_is(const Token* t, const char* word) noexcept nogil:
    """Is ``t`` the upper-case ``word``, in any case?"""
    cdef Py_ssize_t n = <Py_ssize_t> strlen(word)
    cdef Py_ssize_t i
    if t.kind != TK_ID or t.length != n:
        return False
    for i in range(n):
        if upper_ascii(t.text[i]) != word[i]:
            return False
    return True


cdef int fail_token(_Scanner s, const Token* t, const char* before, const char* after) noexcept:
    msg_clear(&s.err)
    s.err.line = t.line
    msg_add(&s.err, before)
    if t.kind == TK_EOL or t.kind == TK_EOF:
        msg_add(&s.err, b"the end of the line")
    else:
        if t.kind == TK_QSTR:
            msg_add(&s.err, b"quoted string ")
        msg_add_text(&s.err, t.text, t.length)
    msg_add(&s.err, after)
    return -1


cdef int expect_end(_Scanner s, Lexer* lx, const char* what) noexcept:
    """dnspython's get_eol: nothing but a comment may follow."""
    cdef Token t
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_EOL and t.kind != TK_EOF:
        return fail_token(s, &t, b"unexpected ", what)
    return 0


cdef int take_identifier(_Scanner s, Lexer* lx, Token* t) noexcept:
    """The next field of a record line before its rdata (TTL, class or type)."""
    if lx_get(lx, t, False, False, &s.err) < 0:
        return -1
    if t.kind == TK_ID:
        return 0
    if t.kind == TK_QSTR:
        return fail_token(s, t, b"unexpected ", b" where a TTL, class or type should be")
    return fail(s, t.line, b"missing record type")


cdef void set_type_name(_Scanner s, const Token* t) noexcept:
    cdef Py_ssize_t i
    cdef Py_ssize_t n = t.length if t.length < 23 else 23
    for i in range(n):
        s.type_name[i] = <char> upper_ascii(t.text[i])
    s.type_name[n] = 0


cdef bint implicit_ttl(_Scanner s, uint32_t* ttl) noexcept:
    """The TTL of a record that gives none (dnspython's Reader._implicit_ttl): $TTL (RFC 2308
    §4) wins; else the last TTL given (RFC 1035 §5.1), which also beats a default taken from an
    SOA minimum, whose "default TTL" meaning RFC 2308 §4 removed; else that SOA default."""
    if s.st.last_ttl_known and (not s.st.default_ttl_known or s.st.default_ttl_from_soa):
        ttl[0] = s.st.last_ttl
        return True
    if s.st.default_ttl_known:
        ttl[0] = s.st.default_ttl
        return True
    return False


# --- appending a record --------------------------------------------------------------------------

cdef int begin_rdata(_Scanner s, WireOut* o, uint32_t line) noexcept:
    """Point ``o`` at the end of the rdata column, with room for the largest rdata."""
    if buf_reserve(&s.cols.rdata, MAX_RDATA + 1) < 0:
        return fail_out_of_memory(s, line)
    o.data = s.cols.rdata.data + s.cols.rdata.length
    o.length = 0
    o.overflow = False
    return 0


cdef int commit_record(_Scanner s, const Name* owner, int rtype, uint32_t ttl, size_t rdata_length,
                       uint32_t line, int file_index) noexcept:
    """Append a record whose rdata was written in place by begin_rdata's cursor."""
    cdef Columns* c = &s.cols
    cdef uint64_t offset
    cdef uint16_t rtype16 = <uint16_t> rtype
    cdef uint16_t file16 = <uint16_t> file_index
    if not (s.has_last_owner and s.last_owner_length == owner.length
            and memcmp(c.owner_data.data + s.last_owner_offset, owner.wire, owner.length) == 0):
        s.last_owner_offset = c.owner_data.length
        s.last_owner_length = owner.length
        s.has_last_owner = True
        if buf_append(&c.owner_data, owner.wire, owner.length) < 0:
            return fail_out_of_memory(s, line)
    c.rdata.length += rdata_length
    offset = c.rdata.length
    if buf_reserve(&c.owner_offset, 8) < 0 or buf_reserve(&c.rtype, 2) < 0 \
            or buf_reserve(&c.ttl, 4) < 0 or buf_reserve(&c.rdata_offset, 8) < 0 \
            or buf_reserve(&c.line, 4) < 0 or buf_reserve(&c.file_index, 2) < 0:
        return fail_out_of_memory(s, line)
    (<uint64_t*> c.owner_offset.data)[c.count] = s.last_owner_offset
    (<uint16_t*> c.rtype.data)[c.count] = rtype16
    (<uint32_t*> c.ttl.data)[c.count] = ttl
    (<uint64_t*> c.rdata_offset.data)[c.count + 1] = offset
    (<uint32_t*> c.line.data)[c.count] = line
    (<uint16_t*> c.file_index.data)[c.count] = file16
    c.owner_offset.length += 8
    c.rtype.length += 2
    c.ttl.length += 4
    c.rdata_offset.length += 8
    c.line.length += 4
    c.file_index.length += 2
    c.count += 1
    return 0


cdef int parse_rdata(_Scanner s, Lexer* lx, int rtype, uint32_t line, WireOut* o) noexcept:
    """The rdata of a record of type ``rtype``, in whichever form it is written, into ``o``;
    the end of the line is left for the caller. Types the scanner does not parse go to
    dnspython (so do non-ASCII names in rdata, one name at a time: see f_name)."""
    cdef Token t
    cdef int kind = TYPE_KIND[rtype]
    cdef const char* why
    if kind != KIND_DNSPYTHON:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_ID and t.length == 2 and t.text[0] == C_BSLASH and t.text[1] == C_HASH:
            if parse_rdata_generic(s, lx, o) < 0:
                return -1
            if kind == KIND_NATIVE:
                why = check_rdata_wire(rtype, o.data, o.length)
                if why != NULL:
                    return fail(s, t.line, why)
            return 0
        if kind == KIND_GENERIC:
            msg_clear(&s.err)
            msg_add(&s.err, s.type_name)
            msg_add(&s.err, b" has no presentation format here: write its rdata as "
                            b"\\# <length> <hex> (RFC 3597 section 5)")
            s.err.line = t.line
            return -1
        lx_unget_token(lx, &t)
        if parse_rdata_text(s, lx, rtype, o) < 0:
            return -1
        if o.overflow:
            return fail(s, line, b"rdata longer than 65535 octets")
        why = check_rdata_wire(rtype, o.data, o.length)
        if why != NULL:
            return fail(s, line, why)
        return 0
    return dnspython_rdata_from_lexer(s, lx, rtype, o)


# --- statements ----------------------------------------------------------------------------------

cdef int record_line(_Scanner s, Lexer* lx, int file_index) noexcept:
    """One record (dnspython's Reader._rr_line): [owner] [TTL] [class] type rdata, TTL and
    class in either order (RFC 1035 §5.1); a line that starts with whitespace has the previous
    record's owner."""
    cdef Token t
    cdef uint32_t line = lx.statement_line
    cdef uint32_t ttl = 0
    cdef bint have_ttl = False
    cdef int rclass, rtype, r
    cdef WireOut o
    if not s.st.has_origin:
        return fail(s, line, NO_ORIGIN)
    if lx_get(lx, &t, True, False, &s.err) < 0:
        return -1
    if t.kind != TK_WS:
        if t.kind != TK_ID:
            return fail_token(s, &t, b"expecting an owner name, found ", b"")
        r = name_from_text(t.text, t.length, &s.st.origin, &s.st.last_name, &s.err)
        if r == NEEDS_DNSPYTHON:
            r = dnspython_name(s, t.text, t.length, &s.st.origin, &s.st.last_name, t.line)
        if r < 0:
            s.err.line = t.line
            return -1
        s.st.has_last_name = True
    else:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            return 0                           # only whitespace (and maybe a comment)
        lx_unget_token(lx, &t)
    if not s.st.has_last_name:
        return fail(s, line, b"a record that starts with whitespace, but no owner before it")

    if take_identifier(s, lx, &t) < 0:
        return -1
    if ttl_from_text(t.text, t.length, &ttl):
        have_ttl = True
        s.st.last_ttl = ttl
        s.st.last_ttl_known = True
    else:
        lx_unget_token(lx, &t)
    if take_identifier(s, lx, &t) < 0:
        return -1
    rclass = class_from_text(t.text, t.length)
    if rclass < 0:
        lx_unget_token(lx, &t)
    elif rclass != 1:
        return fail_token(s, &t, b"record class must be IN, not ", b"")
    if not have_ttl:
        if take_identifier(s, lx, &t) < 0:
            return -1
        if ttl_from_text(t.text, t.length, &ttl):
            have_ttl = True
            s.st.last_ttl = ttl
            s.st.last_ttl_known = True
        else:
            have_ttl = implicit_ttl(s, &ttl)
            lx_unget_token(lx, &t)
    if take_identifier(s, lx, &t) < 0:
        return -1
    rtype = type_from_text(t.text, t.length)
    if rtype < 0:
        return fail_token(s, &t, b"unknown record type ", b"")
    set_type_name(s, &t)

    if begin_rdata(s, &o, t.line) < 0 or parse_rdata(s, lx, rtype, t.line, &o) < 0:
        return -1
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_EOL and t.kind != TK_EOF:
        return fail_token(s, &t, b"unexpected ", b" after the record data")
    if rtype == T_SOA and not s.st.default_ttl_known:
        # No $TTL yet: the SOA minimum becomes the default, as before RFC 2308 (dnspython).
        s.st.default_ttl = get_u32(o.data + o.length - 4)
        s.st.default_ttl_known = True
        s.st.default_ttl_from_soa = True
        if not have_ttl:
            have_ttl = implicit_ttl(s, &ttl)
    if not have_ttl:
        return fail(s, t.line, b"missing default TTL value: the record has no TTL, and no $TTL "
                               b"or earlier TTL applies")
    return commit_record(s, &s.st.last_name, rtype, ttl, o.length, line, file_index)


cdef int directive_ttl(_Scanner s, Lexer* lx) noexcept:
    """$TTL <ttl> (RFC 2308 §4): the TTL of records that give none."""
    cdef Token t
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID:
        return fail_token(s, &t, b"bad $TTL: expecting a TTL, found ", b"")
    if not ttl_from_text(t.text, t.length, &s.st.default_ttl):
        return fail_token(s, &t, b"bad $TTL ", b": not well-formed (seconds, or units as in 1h30m)")
    s.st.default_ttl_known = True
    s.st.default_ttl_from_soa = False
    return expect_end(s, lx, b" after $TTL")


cdef int directive_origin(_Scanner s, Lexer* lx) noexcept:
    """$ORIGIN <name> (RFC 1035 §5.1); a relative name is relative to the current origin."""
    cdef Token t
    cdef Name origin
    cdef int r
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID:
        return fail_token(s, &t, b"bad $ORIGIN: expecting a name, found ", b"")
    r = name_from_text(t.text, t.length, &s.st.origin if s.st.has_origin else NULL, &origin,
                       &s.err)
    if r == NEEDS_DNSPYTHON:
        r = dnspython_name(s, t.text, t.length, &s.st.origin if s.st.has_origin else NULL,
                           &origin, t.line)
    if r < 0:
        s.err.line = t.line
        return -1
    if not origin.absolute:
        return fail(s, t.line, NO_ORIGIN)
    s.st.origin = origin
    s.st.has_origin = True
    if not s.has_first_origin:
        s.first_origin = origin
        s.has_first_origin = True
    return expect_end(s, lx, b" after $ORIGIN")


cdef int directive_include(_Scanner s, Lexer* lx, bytes path, int depth) noexcept:
    """$INCLUDE <file> [<origin>] (RFC 1035 §5.1): the file is read with the given origin (or
    the current one); afterwards origin, last owner and TTLs are the includer's again. A
    relative path is relative to the including file's directory (as Knot DNS and fastdns do).
    At most MAX_INCLUDE_DEPTH levels deep, which also ends include loops."""
    cdef Token t
    cdef Token name_token
    cdef ReadState saved
    cdef Name origin
    cdef uint32_t line = lx.statement_line
    cdef int r
    cdef object saved_codec
    if lx_get(lx, &t, False, False, &s.err) < 0:
        return -1
    if t.kind != TK_ID and t.kind != TK_QSTR:
        return fail(s, line, b"$INCLUDE without a file name")
    if lx_get(lx, &name_token, False, False, &s.err) < 0:
        return -1
    if name_token.kind == TK_ID:
        r = name_from_text(name_token.text, name_token.length,
                           &s.st.origin if s.st.has_origin else NULL, &origin, &s.err)
        if r == NEEDS_DNSPYTHON:
            r = dnspython_name(s, name_token.text, name_token.length,
                               &s.st.origin if s.st.has_origin else NULL, &origin,
                               name_token.line)
        if r < 0:
            s.err.line = name_token.line
            return -1
        if not origin.absolute:
            return fail(s, name_token.line, NO_ORIGIN)
        if expect_end(s, lx, b" after $INCLUDE's origin") < 0:
            return -1
    elif name_token.kind == TK_QSTR:
        return fail_token(s, &name_token, b"bad origin in $INCLUDE: ", b"")
    elif s.st.has_origin:
        origin = s.st.origin
    if depth + 1 > MAX_INCLUDE_DEPTH:
        return fail(s, line, b"$INCLUDE nested more than 10 levels deep (an include loop?)")
    try:
        included = os.path.join(os.path.dirname(path), (<const char*> t.text)[:t.length])
    except Exception:
        return fail_out_of_memory(s, line)
    saved = s.st
    saved_codec = s.idna_codec
    if name_token.kind == TK_ID or s.st.has_origin:
        s.st.origin = origin
    s.idna_codec = None
    r = scan_file(s, included, depth + 1)
    s.st = saved
    s.idna_codec = saved_codec
    if r < 0 and s.err.file_index < 0:
        # the included file could not be read: the $INCLUDE line is to blame
        s.err.line = line
    return r


cdef int directive_unicode(_Scanner s, Lexer* lx) noexcept:
    """$UNICODE 2003|2008 (a dnspython extension): the IDNA rules for non-ASCII names."""
    cdef Token t
    while True:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            return 0
        if t.kind != TK_ID:
            return fail_token(s, &t, b"bad $UNICODE ", b"")
        if t.length == 4 and memcmp(t.text, b"2008", 4) == 0:
            s.idna_codec = IDNA_2008
        elif t.length == 4 and memcmp(t.text, b"2003", 4) == 0:
            s.idna_codec = IDNA_2003


cdef int directive(_Scanner s, Lexer* lx, const Token* t, int file_index, bytes path,
                   int depth) noexcept:
    if token_is(t, b"$TTL"):
        return directive_ttl(s, lx)
    if token_is(t, b"$ORIGIN"):
        return directive_origin(s, lx)
    if token_is(t, b"$INCLUDE"):
        return directive_include(s, lx, path, depth)
    if token_is(t, b"$GENERATE"):
        return directive_generate(s, lx, file_index)
    if token_is(t, b"$UNICODE"):
        return directive_unicode(s, lx)
    return fail_token(s, t, b"unknown directive ", b"")


cdef int scan_statements(_Scanner s, Lexer* lx, int file_index, bytes path, int depth) noexcept:
    """Every statement of one file (dnspython's Reader.read)."""
    cdef Token t
    while True:
        lx.statement_line = lx_next_char_line(lx)
        if lx_get(lx, &t, True, True, &s.err) < 0:
            return -1
        if t.kind == TK_EOF:
            return 0
        if t.kind == TK_EOL:
            continue
        if t.kind == TK_COMMENT:
            if lx_get(lx, &t, False, False, &s.err) < 0:     # the end of its line
                return -1
            continue
        if t.kind == TK_ID and t.text[0] == C_DOLLAR:
            if s.records_only:
                return fail_token(s, &t, b"no directives in records-only text: ", b"")
            if directive(s, lx, &t, file_index, path, depth) < 0:
                return -1
            continue
        lx_unget_token(lx, &t)
        if record_line(s, lx, file_index) < 0:
            return -1


cdef int scan_file(_Scanner s, bytes path, int depth) noexcept:
    """Read, check and scan one file (and the files it includes)."""
    cdef uint8_t* data = NULL
    cdef Py_ssize_t size = 0
    cdef int file_index = len(s.files)
    cdef int r
    cdef int error = 0
    if file_index >= MAX_FILES:
        return fail(s, 0, b"more than 65535 files")
    s.files.append(path)
    if b"\0" in path or read_whole_file(path, &data, &size, &error) < 0:
        msg_clear(&s.err)
        s.err.line = 0
        if depth == 0:
            msg_add(&s.err, b"cannot read zone file: ")
            s.err.file_index = file_index
        else:
            msg_add(&s.err, b"cannot read included file ")
            msg_add_text(&s.err, <const uint8_t*> (<const char*> path), len(path))
            msg_add(&s.err, b": ")
        if error:
            msg_add(&s.err, strerror(error))
        else:
            msg_add(&s.err, b"bad file name")
        return -1
    r = scan_data(s, data, size, file_index, path, depth)
    free(data)
    return r


cdef int scan_data(_Scanner s, const uint8_t* data, Py_ssize_t size, int file_index, bytes path,
                   int depth) noexcept:
    """Check and scan the text of one file (``path``, already in ``s.files``)."""
    cdef Py_ssize_t bad
    cdef Py_ssize_t start = 0
    cdef Lexer lx
    cdef int r
    bad = utf8_error_offset(data, size)
    if bad >= 0:
        r = fail(s, line_of_offset(data, bad), b"not UTF-8 text")
        s.err.file_index = file_index
        return r
    if size >= 3 and data[0] == 0xEF and data[1] == 0xBB and data[2] == 0xBF:
        start = 3                              # a UTF-8 byte order mark
    lx_init(&lx, data + start, size - start, 1)
    r = scan_statements(s, &lx, file_index, path, depth)
    if r < 0 and s.err.file_index < 0:
        s.err.file_index = file_index
    return r
