# SVCB and HTTPS (RFC 9460): SvcPriority, TargetName and SvcParams.
#
# Included by zscanner.pyx. The rules are dnspython's dns/rdtypes/svcbbase.py:
#
# - a parameter is ``key``, ``key=value`` or ``key="value"`` (no space after '='); keys are
#   lower-case names or keyNNNNN (no leading zeros, no escapes) and may appear once;
# - keyNNNNN=value gives the value's wire form (after unescaping), for any key;
# - mandatory, alpn, port, ipv4hint, ech and ipv6hint need a value; no-default-alpn and ohttp
#   take none; other keys may be empty;
# - alpn and docpath are comma-separated lists where "\," is a comma inside an item (Appendix
#   A.1); ipv4hint and ipv6hint are comma-separated addresses; ech is base64;
# - in the record, parameters are sorted by key; AliasMode (priority 0) has none; every key
#   "mandatory" lists must be present, and no-default-alpn needs alpn.

cdef enum:
    KEY_MANDATORY = 0
    KEY_ALPN = 1
    KEY_NO_DEFAULT_ALPN = 2
    KEY_PORT = 3
    KEY_IPV4HINT = 4
    KEY_ECH = 5
    KEY_IPV6HINT = 6
    KEY_OHTTP = 8
    KEY_DOCPATH = 10

    EMPTY_NEVER = 0
    EMPTY_ALWAYS = 1
    EMPTY_ALLOWED = 2


ctypedef struct SvcParam:
    uint32_t key
    size_t start                           # of the value's wire form in the values buffer
    size_t length


cdef Mnemonic SVC_KEY_NAMES[MNEMONIC_SLOTS]


cdef int svc_emptiness(uint32_t key) noexcept nogil:
    if key == KEY_MANDATORY or key == KEY_ALPN or key == KEY_PORT or key == KEY_IPV4HINT \
            or key == KEY_ECH or key == KEY_IPV6HINT:
        return EMPTY_NEVER
    if key == KEY_NO_DEFAULT_ALPN or key == KEY_OHTTP:
        return EMPTY_ALWAYS
    return EMPTY_ALLOWED


cdef int svc_key_from_text(const uint8_t* p, Py_ssize_t n, bint* generic) noexcept nogil:
    """A SvcParamKey: a registered name or keyNNNNN (dnspython's _check_key_text and
    _validate_key); -1 if it is not one."""
    cdef Py_ssize_t i
    cdef uint64_t v
    generic[0] = False
    if n < 1 or n > 63:
        return -1
    for i in range(n):
        if not (97 <= p[i] <= 122 or is_digit(p[i]) or p[i] == C_MINUS):
            return -1                          # [a-z0-9-]{1,63}
    if n >= 3 and p[0] == 107 and p[1] == 101 and p[2] == 121:       # "key"
        generic[0] = True
        if n > 4 and p[3] == C_ZERO:
            return -1                          # leading zeros
        if parse_decimal(p + 3, n - 3, &v) == 0:
            return <int> v if v <= 65535 else -1
    return mnemonic_find(SVC_KEY_NAMES, p, n)


cdef const char* svc_split_list(const uint8_t* p, Py_ssize_t n, ByteBuffer* out) noexcept nogil:
    """alpn / docpath: comma-separated items, "\\," and "\\\\" escaped (dnspython's _split),
    each 1..255 octets, as <character-string>s."""
    cdef Py_ssize_t i = 0
    cdef size_t length_at
    while True:
        length_at = out.length
        if buf_append(out, b"\0", 1) < 0:
            return b"out of memory"
        while i < n and p[i] != C_COMMA:
            if p[i] == C_BSLASH:
                if i + 1 >= n:
                    return b"backslash at the end of a value list"
                if p[i + 1] != C_COMMA and p[i + 1] != C_BSLASH:
                    return b"invalid escape in value list"
                i += 1
            if buf_append(out, p + i, 1) < 0:
                return b"out of memory"
            i += 1
        if out.length - length_at - 1 == 0 or out.length - length_at - 1 > 255:
            return b"list items must be 1 to 255 octets"
        out.data[length_at] = <uint8_t> (out.length - length_at - 1)
        if i >= n:
            return NULL
        i += 1                                 # the comma


cdef const char* svc_check_value(uint32_t key, const uint8_t* p, size_t n) noexcept nogil:
    """Is ``p`` the wire form of a value of ``key``? (dnspython's from_wire_parser of each
    parameter class, and their constructors.) NULL if so, else why not."""
    cdef size_t pos = 0
    cdef int last = -1
    if key == KEY_MANDATORY:
        if n == 0 or n % 2:
            return b"bad mandatory key list"
        while pos < n:
            if get_u16(p + pos) <= last:
                return b"mandatory keys not in strictly increasing order"
            last = get_u16(p + pos)
            if last == KEY_MANDATORY:
                return b"listed the mandatory key as mandatory"
            pos += 2
        return NULL
    if key == KEY_ALPN or key == KEY_DOCPATH:
        if n == 0 and key == KEY_ALPN:
            return b"empty alpn list"
        while pos < n:
            if p[pos] == 0 or not wire_string(p, n, &pos):
                return b"bad list of strings"
        return NULL
    if key == KEY_NO_DEFAULT_ALPN or key == KEY_OHTTP:
        return verdict(n == 0, b"no-default-alpn and ohttp take no value")
    if key == KEY_PORT:
        return verdict(n == 2, b"port is not 2 octets")
    if key == KEY_IPV4HINT:
        return verdict(n > 0 and n % 4 == 0, b"bad ipv4hint")
    if key == KEY_IPV6HINT:
        return verdict(n > 0 and n % 16 == 0, b"bad ipv6hint")
    if key == KEY_ECH:
        return verdict(n >= 6 and get_u16(p) == n - 2, b"invalid ECHConfigList")
    return NULL


cdef const char* svc_value_from_text(uint32_t key, bint generic, const uint8_t* p, Py_ssize_t n,
                                     ByteBuffer* scratch, ByteBuffer* out) noexcept nogil:
    """The presentation form ``p`` (as written, escapes kept) of a value of ``key`` to wire
    form, appended to ``out``: dnspython's from_value of each parameter class. NULL, or why
    not."""
    cdef Py_ssize_t i, start
    cdef size_t begin = out.length
    cdef uint64_t port
    cdef uint8_t address[16]
    cdef uint32_t keys[64]
    cdef int count = 0
    cdef int k, j
    cdef bint key_generic
    cdef const char* why
    cdef WireOut o
    if generic or not (key <= KEY_IPV6HINT or key == KEY_OHTTP or key == KEY_DOCPATH):
        # raw octets (keyNNNNN=, or a key without a presentation format of its own)
        scratch.length = 0
        if unescape_append(p, n, scratch) < 0:
            return b"bad escape"
        if key == KEY_PORT and generic and scratch.length >= 2:
            scratch.length = 2                 # dnspython reads two octets and ignores the rest
        why = svc_check_value(key, scratch.data, scratch.length) if generic else NULL
        if why != NULL:
            return why
        if buf_append(out, scratch.data, scratch.length) < 0:
            return b"out of memory"
        return NULL
    if key == KEY_MANDATORY:
        if memchr(p, C_BSLASH, n) != NULL:
            return b"escape in mandatory value"
        i = 0
        while True:
            start = i
            while i < n and p[i] != C_COMMA:
                i += 1
            k = svc_key_from_text(p + start, i - start, &key_generic)
            if k < 0:
                return b"bad key in mandatory list"
            if k == KEY_MANDATORY:
                return b"listed the mandatory key as mandatory"
            if count == 64:
                return b"too many mandatory keys"
            j = count                          # insertion sort: lists are short
            while j > 0 and keys[j - 1] > <uint32_t> k:
                keys[j] = keys[j - 1]
                j -= 1
            if j > 0 and keys[j - 1] == <uint32_t> k:
                return b"duplicate key in mandatory list"
            keys[j] = k
            count += 1
            if i >= n:
                break
            i += 1
        for j in range(count):
            if buf_reserve(out, 2) < 0:
                return b"out of memory"
            out.data[out.length] = <uint8_t> (keys[j] >> 8)
            out.data[out.length + 1] = <uint8_t> keys[j]
            out.length += 2
        return NULL
    if key == KEY_ALPN or key == KEY_DOCPATH:
        if n == 0:
            return NULL                        # docpath="" (alpn cannot be empty)
        scratch.length = 0
        if unescape_append(p, n, scratch) < 0:
            return b"bad escape"
        return svc_split_list(scratch.data, scratch.length, out)
    if key == KEY_NO_DEFAULT_ALPN or key == KEY_OHTTP:
        return verdict(n == 0, b"no-default-alpn and ohttp take no value")
    if key == KEY_PORT:
        if parse_decimal(p, n, &port) < 0 or port > 65535:
            return b"port is not an integer of 0..65535"
        if buf_reserve(out, 2) < 0:
            return b"out of memory"
        out.data[out.length] = <uint8_t> (port >> 8)
        out.data[out.length + 1] = <uint8_t> port
        out.length += 2
        return NULL
    if key == KEY_IPV4HINT or key == KEY_IPV6HINT:
        i = 0
        while True:
            start = i
            while i < n and p[i] != C_COMMA:
                i += 1
            if key == KEY_IPV4HINT:
                if not ipv4_from_text(p + start, i - start, address):
                    return b"bad IPv4 address in ipv4hint"
                k = 4
            else:
                if not ipv6_from_text(p + start, i - start, address):
                    return b"bad IPv6 address in ipv6hint"
                k = 16
            if buf_append(out, address, k) < 0:
                return b"out of memory"
            if i >= n:
                return NULL
            i += 1
    # KEY_ECH: base64, no escapes
    if memchr(p, C_BSLASH, n) != NULL:
        return b"escape in ECH value"
    if buf_reserve(out, <size_t> n) < 0:
        return b"out of memory"
    o.data = out.data + out.length
    o.length = 0
    o.overflow = False
    why = base64_decode(p, n, &o)
    if why != NULL:
        return why
    out.length += o.length
    return svc_check_value(key, out.data + begin, out.length - begin)


cdef int parse_svcb_text(_Scanner s, Lexer* lx, WireOut* o) noexcept:
    """SVCB/HTTPS presentation format (RFC 9460 §2.1, dnspython's SVCBBase.from_text)."""
    cdef Token t
    cdef size_t priority_at = o.length
    cdef int key
    cdef bint generic
    cdef Py_ssize_t equals, i
    cdef const uint8_t* key_text
    cdef Py_ssize_t key_length
    cdef const uint8_t* value
    cdef Py_ssize_t value_length
    cdef bint has_value
    cdef const char* why
    cdef SvcParam param
    cdef SvcParam* params
    cdef size_t count
    if f_uint(s, lx, o, 16, b"priority") < 0 or f_name(s, lx, o, b"target") < 0:
        return -1
    s.svcb_params.length = 0
    s.svcb_values.length = 0
    while True:
        if lx_get(lx, &t, False, False, &s.err) < 0:
            return -1
        if t.kind == TK_EOL or t.kind == TK_EOF:
            lx_unget_token(lx, &t)
            break
        if o.data[priority_at] == 0 and o.data[priority_at + 1] == 0:
            return fail_field(s, &t, b"parameter", b"no parameters in AliasMode (priority 0)")
        if t.kind != TK_ID:
            return fail_field(s, &t, b"parameter", b"not an identifier")
        equals = -1
        for i in range(t.length):
            if t.text[i] == C_EQ:
                equals = i
                break
        if equals == 0:
            return fail_field(s, &t, b"parameter", b"cannot start with '='")
        key_text = t.text
        key_length = t.length if equals < 0 else equals
        has_value = equals >= 0
        value = t.text + equals + 1
        value_length = t.length - equals - 1
        if equals == t.length - 1:
            # key="value": the quoted string must follow the '=' at once
            if lx_get(lx, &t, True, False, &s.err) < 0:
                return -1
            if t.kind != TK_QSTR:
                return fail_field(s, &t, b"parameter", b"space after '='")
            value = t.text
            value_length = t.length
        key = svc_key_from_text(key_text, key_length, &generic)
        if key < 0 or memchr(key_text, C_BSLASH, key_length) != NULL:
            return fail_field(s, &t, b"parameter", b"bad key")
        if (not has_value or value_length == 0) and svc_emptiness(key) == EMPTY_NEVER:
            return fail_field(s, &t, b"parameter", b"value cannot be empty")
        param.key = <uint32_t> key
        param.start = s.svcb_values.length
        if has_value:
            why = svc_value_from_text(key, generic, value, value_length, &s.scratch,
                                      &s.svcb_values)
            if why != NULL:
                return fail_field(s, &t, b"parameter", why)
        param.length = s.svcb_values.length - param.start
        # insert in key order
        if buf_reserve(&s.svcb_params, sizeof(SvcParam)) < 0:
            return fail_out_of_memory(s, t.line)
        params = <SvcParam*> s.svcb_params.data
        count = s.svcb_params.length // sizeof(SvcParam)
        i = <Py_ssize_t> count
        while i > 0 and params[i - 1].key > param.key:
            params[i] = params[i - 1]
            i -= 1
        if i > 0 and params[i - 1].key == param.key:
            return fail_field(s, &t, b"parameter", b"duplicate key")
        params[i] = param
        s.svcb_params.length += sizeof(SvcParam)
    params = <SvcParam*> s.svcb_params.data
    count = s.svcb_params.length // sizeof(SvcParam)
    for i in range(<Py_ssize_t> count):
        out_u16(o, params[i].key)
        out_u16(o, <uint32_t> params[i].length)
        out_bytes(o, s.svcb_values.data + params[i].start, params[i].length)
    return 0


cdef const char* check_svcb_wire(const uint8_t* p, size_t n) noexcept nogil:
    """Well-formed SVCB/HTTPS rdata (dnspython's SVCBBase.from_wire_parser and constructor)."""
    cdef size_t pos = 2
    cdef size_t params_at
    cdef int last = -1
    cdef uint32_t key, length, listed
    cdef bint has_alpn = False
    cdef bint has_no_default_alpn = False
    cdef size_t mandatory_at = 0
    cdef size_t mandatory_length = 0
    cdef size_t i, scan
    cdef const char* why
    if n < 2 or not wire_name(p, n, &pos):
        return b"malformed rdata"
    if get_u16(p) == 0 and pos != n:
        return b"parameters in AliasMode"
    params_at = pos
    while pos < n:
        if pos + 4 > n:
            return b"malformed rdata"
        key = get_u16(p + pos)
        length = get_u16(p + pos + 2)
        if <int> key <= last:
            return b"SvcParamKeys not in strictly increasing order"
        last = key
        pos += 4
        if pos + length > n:
            return b"malformed rdata"
        if length == 0 and svc_emptiness(key) == EMPTY_NEVER:
            return b"SvcParamValue cannot be empty"
        why = svc_check_value(key, p + pos, length)
        if why != NULL:
            return why
        if key == KEY_MANDATORY:
            mandatory_at = pos
            mandatory_length = length
        has_alpn |= key == KEY_ALPN
        has_no_default_alpn |= key == KEY_NO_DEFAULT_ALPN
        pos += length
    for i in range(0, mandatory_length, 2):
        listed = get_u16(p + mandatory_at + i)
        scan = params_at
        while scan < n and get_u16(p + scan) != listed:
            scan += 4 + get_u16(p + scan + 2)
        if scan >= n:
            return b"a key declared mandatory is not present"
    if has_no_default_alpn and not has_alpn:
        return b"no-default-alpn present, but alpn missing"
    return NULL
