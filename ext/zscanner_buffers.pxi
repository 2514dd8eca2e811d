# Growable output buffers (the columns of a ScannedZone) and the bounded rdata cursor.
#
# Included by zscanner.pyx. Buffers grow by doubling, so appending is amortised O(1); at the end
# of a scan they are shrunk to their length, so the memory a ScannedZone reports is what it holds.


cdef inline int buf_reserve(ByteBuffer* b, size_t extra) noexcept nogil:
    """Make room for ``extra`` more octets. -1 when out of memory."""
    if b.length + extra <= b.capacity:
        return 0
    return buf_grow(b, extra)


cdef int buf_grow(ByteBuffer* b, size_t extra) noexcept nogil:
    cdef size_t need = b.length + extra
    cdef size_t capacity
    cdef uint8_t* data
    capacity = b.capacity * 2 if b.capacity else 4096
    while capacity < need:
        capacity *= 2
    data = <uint8_t*> realloc(b.data, capacity)
    if data == NULL:
        return -1
    b.data = data
    b.capacity = capacity
    return 0


cdef int buf_append(ByteBuffer* b, const void* src, size_t n) noexcept nogil:
    if b.length + n > b.capacity and buf_reserve(b, n) < 0:
        return -1
    memcpy(b.data + b.length, src, n)
    b.length += n
    return 0


cdef void buf_shrink(ByteBuffer* b) noexcept nogil:
    cdef uint8_t* data
    if b.data != NULL and b.capacity > b.length:
        data = <uint8_t*> realloc(b.data, b.length if b.length else 1)
        if data != NULL:
            b.data = data
            b.capacity = b.length


cdef void buf_free(ByteBuffer* b) noexcept nogil:
    free(b.data)
    b.data = NULL
    b.length = 0
    b.capacity = 0


# --- the rdata cursor ----------------------------------------------------------------------------

cdef inline void out_bytes(WireOut* o, const void* src, size_t n) noexcept nogil:
    if o.length + n > MAX_RDATA:
        o.overflow = True
        return
    memcpy(o.data + o.length, src, n)
    o.length += n


cdef inline void out_u8(WireOut* o, uint32_t v) noexcept nogil:
    if o.length + 1 > MAX_RDATA:
        o.overflow = True
        return
    o.data[o.length] = <uint8_t> v
    o.length += 1


cdef inline void out_u16(WireOut* o, uint32_t v) noexcept nogil:
    if o.length + 2 > MAX_RDATA:
        o.overflow = True
        return
    o.data[o.length] = <uint8_t> (v >> 8)
    o.data[o.length + 1] = <uint8_t> v
    o.length += 2


cdef inline void out_u32(WireOut* o, uint32_t v) noexcept nogil:
    if o.length + 4 > MAX_RDATA:
        o.overflow = True
        return
    o.data[o.length] = <uint8_t> (v >> 24)
    o.data[o.length + 1] = <uint8_t> (v >> 16)
    o.data[o.length + 2] = <uint8_t> (v >> 8)
    o.data[o.length + 3] = <uint8_t> v
    o.length += 4


cdef inline uint16_t get_u16(const uint8_t* p) noexcept nogil:
    return <uint16_t> ((p[0] << 8) | p[1])


cdef inline uint32_t get_u32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t> p[0]) << 24) | ((<uint32_t> p[1]) << 16) | ((<uint32_t> p[2]) << 8) | p[3]
