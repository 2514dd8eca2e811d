# The slow paths: dnspython parses what the scanner does not, one record (or name) at a time.
#
# Included by zscanner.pyx. Used for record types dnspython knows and the scanner does not parse
# (LOC, CERT, APL, IPSECKEY, ...), and for names with non-ASCII text, which dnspython turns into
# IDNA names. Correct but slow (tens of microseconds each); ScannedZone.fallbacks counts them.
# dnspython's modules are looked up once, when the tables are built (load_tables).

cdef object dnspython_origin(_Scanner s, const Name* origin):
    """``origin`` as a dns.name.Name (cached: consecutive slow paths share an origin)."""
    cdef bytes wire = (<const char*> origin.wire)[:origin.length]
    if wire != s.origin_wire:
        s.origin_wire = wire
        s.origin_object = _dns_name.from_wire(wire, 0)[0]
    return s.origin_object


cdef int fail_exception(_Scanner s, uint32_t line, str what, object error) noexcept:
    """Turn an exception from dnspython into the scan's error."""
    cdef bytes reason
    try:
        text = _CAUGHT_PREFIX.sub("", str(error)) or type(error).__name__
        reason = f"{what}{text}".encode("utf-8", "replace")
    except BaseException:
        reason = b"dnspython failed"
    msg_clear(&s.err)
    msg_add(&s.err, reason)
    s.err.line = line
    return -1


cdef int dnspython_name(_Scanner s, const uint8_t* text, Py_ssize_t n, const Name* origin,
                        Name* out, uint32_t line) noexcept:
    """A name with non-ASCII text: dns.name.from_text applies IDNA (as dnspython's reader
    would: with the file's $UNICODE codec, but the default one in $GENERATE's rdata, which
    dnspython reads with a tokenizer of its own)."""
    cdef bytes wire
    try:
        parsed = _dns_name.from_text(
            (<const char*> text)[:n].decode("utf-8"),
            dnspython_origin(s, origin) if origin != NULL else None,
            None if s.generating_rdata else s.idna_codec,
        )
        wire = parsed.to_wire() if parsed.is_absolute() else b""
    except Exception as error:
        return fail_exception(s, line, "bad name: ", error)
    if not wire:
        return fail(s, line, NO_ORIGIN)
    memcpy(out.wire, <const char*> wire, len(wire))
    out.length = <uint32_t> len(wire)
    out.absolute = True
    s.fallback_names += 1
    return 0


cdef int dnspython_rdata(_Scanner s, int rtype, str text, uint32_t line, WireOut* o) noexcept:
    """``text`` (the rdata of one record) parsed by dns.rdata.from_text, in wire format."""
    cdef bytes wire
    tok = None
    try:
        tok = _dns_tokenizer.Tokenizer(text, "<rdata>",
                                       None if s.generating_rdata else s.idna_codec)
        rdata = _dns_rdata.from_text(_IN, rtype, tok, dnspython_origin(s, &s.st.origin), False)
        wire = rdata.to_wire()
    except Exception as error:
        if tok is not None:
            line += tok.line_number - 1
        return fail_exception(s, line, f"bad {s.type_name.decode('ascii', 'replace')} rdata: ",
                              error)
    out_bytes(o, <const char*> wire, len(wire))
    if o.overflow:
        return fail(s, line, b"rdata longer than 65535 octets")
    try:
        s.fallbacks[rtype] = s.fallbacks.get(rtype, 0) + 1
    except Exception:
        return fail_out_of_memory(s, line)
    return 0


cdef int dnspython_rdata_from_lexer(_Scanner s, Lexer* lx, int rtype, WireOut* o) noexcept:
    """The rest of the record in ``lx`` to dnspython, as text. The lexer reads to the end of
    the record first (so quotes and parentheses are checked the same way as everywhere else);
    parentheses opened before the rdata are opened again in front of the text."""
    cdef Py_ssize_t start = lx_next_char_offset(lx)
    cdef int depth = lx.multiline
    cdef uint32_t line = lx_next_char_line(lx)
    cdef Token t
    while True:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            break
    lx_unget_token(lx, &t)
    try:
        text = "(" * depth + (<const char*> lx.buf)[start:t.offset].decode("utf-8")
    except Exception as error:
        return fail_exception(s, line, "", error)
    return dnspython_rdata(s, rtype, text, line, o)
