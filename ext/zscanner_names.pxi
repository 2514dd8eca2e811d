# Values that are not rdata-specific: domain names, TTLs, decimal integers, and the mnemonic
# tables for classes, types and DNSSEC algorithms.
#
# Included by zscanner.pyx. Each parser follows the dnspython function named in its docstring,
# because the scanner must accept and reject exactly what dnspython does.

cdef Mnemonic TYPE_NAMES[MNEMONIC_SLOTS]
cdef Mnemonic CLASS_NAMES[MNEMONIC_SLOTS]
cdef Mnemonic ALGORITHM_NAMES[MNEMONIC_SLOTS]


# --- error messages ------------------------------------------------------------------------------

cdef void msg_clear(ErrorInfo* e) noexcept nogil:
    e.reason[0] = 0


cdef void msg_add(ErrorInfo* e, const char* text) noexcept nogil:
    cdef size_t used = strlen(e.reason)
    strncpy(e.reason + used, text, REASON_SIZE - 1 - used)
    e.reason[REASON_SIZE - 1] = 0


cdef void msg_add_text(ErrorInfo* e, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """Append ``'text'``: printable ASCII as is, other octets as \\DDD, at most 60 octets."""
    cdef char piece[8]
    cdef Py_ssize_t i
    msg_add(e, b"'")
    for i in range(n if n <= 60 else 60):
        if 0x20 <= p[i] < 0x7F and p[i] != 0x27:
            piece[0] = <char> p[i]
            piece[1] = 0
        else:
            snprintf(piece, sizeof(piece), b"\\%03u", <unsigned> p[i])
        msg_add(e, piece)
    if n > 60:
        msg_add(e, b"...")
    msg_add(e, b"'")


cdef void msg_add_uint(ErrorInfo* e, uint64_t v) noexcept nogil:
    cdef char digits[24]
    snprintf(digits, sizeof(digits), b"%llu", <unsigned long long> v)
    msg_add(e, digits)


# --- names ---------------------------------------------------------------------------------------

cdef void name_set_root(Name* out) noexcept nogil:
    out.wire[0] = 0
    out.length = 1
    out.absolute = True


cdef int name_error(ErrorInfo* e, const char* what, const uint8_t* t, Py_ssize_t n) noexcept nogil:
    msg_clear(e)
    msg_add(e, what)
    msg_add(e, b" in name ")
    msg_add_text(e, t, n)
    return -1


cdef int name_from_text(const uint8_t* t, Py_ssize_t n, const Name* origin, Name* out,
                        ErrorInfo* e) noexcept nogil:
    """A name in presentation format (RFC 1035 §5.1: ``@`` is the origin, a name without a
    final dot is relative to it, \\X and \\DDD escape label octets) to wire format, case kept.

    As dns.name.from_text: 0, -1 with ``e.reason`` set (empty label, bad escape, label over
    63 octets, name over 255), or NEEDS_DNSPYTHON for non-ASCII text, which dnspython turns into
    an IDNA name. ``origin`` NULL leaves a relative name relative."""
    cdef Py_ssize_t i
    cdef uint32_t pos = 1                 # next free octet; wire[0] is the first label's length
    cdef uint32_t label_at = 0            # where the current label's length octet goes
    cdef uint32_t label_length = 0
    cdef uint32_t v
    cdef int c
    if n == 1 and t[0] == C_DOT:
        name_set_root(out)
        return 0
    if n == 1 and t[0] == C_AT:
        n = 0
    i = 0
    while i < n:
        c = t[i]
        if c >= 0x80:
            # dnspython treats non-ASCII text as IDNA; any error it finds first is an error too
            return NEEDS_DNSPYTHON
        if c == C_BSLASH:
            if i + 1 >= n:
                return name_error(e, b"bad escape", t, n)
            c = t[i + 1]
            if is_digit(c):
                if i + 3 >= n or not (is_digit(t[i + 2]) and is_digit(t[i + 3])):
                    return name_error(e, b"bad escape", t, n)
                v = (c - C_ZERO) * 100 + (t[i + 2] - C_ZERO) * 10 + (t[i + 3] - C_ZERO)
                if v > 255:
                    return name_error(e, b"bad escape", t, n)
                c = <int> v
                i += 4
            else:
                i += 2
        elif c == C_DOT:
            if label_length == 0:
                return name_error(e, b"empty label", t, n)
            out.wire[label_at] = <uint8_t> label_length
            label_at = pos
            pos += 1
            label_length = 0
            i += 1
            continue
        else:
            i += 1
        if label_length == MAX_LABEL:
            return name_error(e, b"label longer than 63 octets", t, n)
        if pos >= MAX_NAME_WIRE:
            return name_error(e, b"more than 255 octets", t, n)
        out.wire[pos] = <uint8_t> c
        pos += 1
        label_length += 1
    if label_length == 0 and n > 0:
        # ended with a dot: absolute; the root label goes where the next label would have
        if pos > MAX_NAME_WIRE:
            return name_error(e, b"more than 255 octets", t, n)
        out.wire[label_at] = 0
        out.length = pos
        out.absolute = True
        return 0
    if label_length > 0:
        out.wire[label_at] = <uint8_t> label_length
    else:
        pos = 0                           # "@" (or empty text): no labels of its own
    if origin == NULL:
        out.length = pos
        out.absolute = False
        return 0
    if pos + origin.length > MAX_NAME_WIRE:
        return name_error(e, b"more than 255 octets (with the origin)", t, n)
    memcpy(out.wire + pos, origin.wire, origin.length)
    out.length = pos + origin.length
    out.absolute = origin.absolute
    return 0


cdef uint32_t name_wire_length(const uint8_t* p) noexcept nogil:
    """Length of a well-formed uncompressed wire name starting at ``p``."""
    cdef uint32_t n = 0
    while p[n] != 0:
        n += p[n] + 1
    return n + 1


# --- numbers -------------------------------------------------------------------------------------

cdef int parse_decimal(const uint8_t* p, Py_ssize_t n, uint64_t* out) noexcept nogil:
    """ASCII digits only, no sign or spaces (dnspython's Tokenizer.as_int). The value
    saturates at 2**62, far above any field, so "too big" stays too big. -1: not digits."""
    cdef uint64_t v = 0
    cdef Py_ssize_t i
    if n == 0:
        return -1
    for i in range(n):
        if not is_digit(p[i]):
            return -1
        if v < (<uint64_t> 1 << 58):
            v = v * 10 + (p[i] - C_ZERO)
    out[0] = v
    return 0


cdef bint ttl_from_text(const uint8_t* p, Py_ssize_t n, uint32_t* out) noexcept nogil:
    """A TTL (dns.ttl.from_text): seconds, or BIND's units (``1w2d3h4m5s``, any case, each
    unit after digits, no trailing digits), at most 2**32 - 1 (RFC 2181 §8 allows 2**31 - 1 but
    dnspython, like real data, accepts more). False if not a TTL."""
    cdef uint64_t total = 0
    cdef uint64_t current = 0
    cdef uint64_t unit
    cdef bint need_digit = True
    cdef Py_ssize_t i
    cdef int c
    if parse_decimal(p, n, &total) == 0:
        if total > 0xFFFFFFFFU:
            return False
        out[0] = <uint32_t> total
        return True
    if n == 0:
        return False
    for i in range(n):
        c = p[i]
        if is_digit(c):
            if current < (<uint64_t> 1 << 40):
                current = current * 10 + (c - C_ZERO)
            need_digit = False
            continue
        if need_digit:
            return False
        c |= 0x20                              # lower case
        if c == 119:                           # w
            unit = 604800
        elif c == 100:                         # d
            unit = 86400
        elif c == 104:                         # h
            unit = 3600
        elif c == 109:                         # m
            unit = 60
        elif c == 115:                         # s
            unit = 1
        else:
            return False
        total += current * unit
        if total > 0xFFFFFFFFU:
            return False
        current = 0
        need_digit = True
    if not need_digit:
        return False                           # trailing digits without a unit
    out[0] = <uint32_t> total
    return True


# --- mnemonics -----------------------------------------------------------------------------------

cdef inline int upper_ascii(int c) noexcept nogil:
    return c - 32 if 97 <= c <= 122 else c


cdef uint32_t mnemonic_hash(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    cdef uint32_t h = 2166136261u            # FNV-1a over the upper-cased octets
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <uint32_t> upper_ascii(p[i])) * 16777619u
    return h


cdef void mnemonic_add(Mnemonic* table, const uint8_t* p, Py_ssize_t n, uint16_t value) noexcept:
    cdef uint32_t slot
    if n <= 0 or n >= 24:
        return
    slot = mnemonic_hash(p, n) & (MNEMONIC_SLOTS - 1)
    while table[slot].used:
        if table[slot].length == n and memcmp(table[slot].text, p, n) == 0:
            return
        slot = (slot + 1) & (MNEMONIC_SLOTS - 1)
    table[slot].used = True
    table[slot].length = <uint8_t> n
    table[slot].value = value
    memcpy(table[slot].text, p, n)


cdef int mnemonic_find(const Mnemonic* table, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """The number of the mnemonic ``p`` (any case), or -1."""
    cdef uint32_t slot
    cdef Py_ssize_t i
    if n <= 0 or n >= 24:
        return -1
    slot = mnemonic_hash(p, n) & (MNEMONIC_SLOTS - 1)
    while table[slot].used:
        if table[slot].length == n:
            for i in range(n):
                if table[slot].text[i] != upper_ascii(p[i]):
                    break
            else:
                return table[slot].value
        slot = (slot + 1) & (MNEMONIC_SLOTS - 1)
    return -1


cdef int prefixed_number(const uint8_t* p, Py_ssize_t n, const char* prefix,
                         Py_ssize_t prefix_length) noexcept nogil:
    """``TYPE65534`` / ``CLASS1`` (RFC 3597 §5): the number, -1 if not that form or > 65535."""
    cdef Py_ssize_t i
    cdef uint64_t v
    if n <= prefix_length:
        return -1
    for i in range(prefix_length):
        if upper_ascii(p[i]) != prefix[i]:
            return -1
    if parse_decimal(p + prefix_length, n - prefix_length, &v) < 0 or v > 65535:
        return -1
    return <int> v


cdef int type_from_text(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """dns.rdatatype.from_text: a mnemonic (also with '-' for '_') or TYPEnnn; -1 if unknown."""
    cdef int v = mnemonic_find(TYPE_NAMES, p, n)
    if v >= 0:
        return v
    return prefixed_number(p, n, b"TYPE", 4)


cdef int class_from_text(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """dns.rdataclass.from_text: IN, CH, HS, NONE, ANY, their long names or CLASSnnn; -1 if the
    token is not a class (then it is the TTL or the type)."""
    cdef int v = mnemonic_find(CLASS_NAMES, p, n)
    if v >= 0:
        return v
    return prefixed_number(p, n, b"CLASS", 5)


cdef int algorithm_from_text(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """dns.dnssectypes.Algorithm.from_text: a mnemonic (RFC 4034 App. A.1) or 0..255; -1."""
    cdef int v = mnemonic_find(ALGORITHM_NAMES, p, n)
    cdef uint64_t number
    if v >= 0:
        return v
    if parse_decimal(p, n, &number) < 0 or number > 255:
        return -1
    return <int> number


cdef void load_mnemonics(Mnemonic* table, object members):
    """Fill ``table`` from an enum's ``__members__`` (names and aliases), adding the '-'
    spelling of names with '_' (NSAP-PTR), as the enums' from_text accepts."""
    cdef bytes text
    for name, member in members.items():
        for spelling in {name, name.replace("_", "-")}:
            text = spelling.upper().encode("ascii")
            mnemonic_add(table, <const uint8_t*> text, len(text), int(member))
