# Online signing (issue 6): RRSIGs made per query, for what cannot be signed in advance (the
# NSEC records of compact denial, which name the query name itself: RFC 9824, RFC 4470).
#
# ECDSA P-256 with SHA-256 (algorithm 13, RFC 6605) or Ed25519 (algorithm 15, RFC 8080) through
# OpenSSL's libcrypto. The zone's signing ZSK comes with the snapshot (PKCS#8 DER in the image
# blob, read into an EVP_PKEY when the image is loaded); the key's type says which algorithm. Both
# make 64-octet signatures; Ed25519's are deterministic (RFC 8032 §5.1.6), so a signature made
# again for an RRset whose cache entry was lost is the same one. Signatures are kept in a
# per-process cache keyed by a SHA-256 of the key and the signed RRset, so a repeated denial costs
# a hash and a lookup, not a signature; an entry is reused only while more than half its validity
# remains, so nothing served is near its expiration (RFC 4034 §3.1.5), and each entry's validity
# has its own jitter so re-signing does not fall due all at once.

cdef extern from "time.h" nogil:
    ctypedef long time_t
    time_t time(time_t* t)

cdef extern from "pthread.h" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t* m, const void* attr)
    int pthread_mutex_lock(pthread_mutex_t* m)
    int pthread_mutex_unlock(pthread_mutex_t* m)

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_PKEY:
        pass
    ctypedef struct EVP_PKEY_CTX:
        pass
    EVP_PKEY* d2i_AutoPrivateKey(EVP_PKEY** a, const unsigned char** pp, long length)
    void EVP_PKEY_free(EVP_PKEY* key)
    int EVP_PKEY_get_bits(const EVP_PKEY* key)
    int EVP_PKEY_get_base_id(const EVP_PKEY* key)
    EVP_PKEY_CTX* EVP_PKEY_CTX_new(EVP_PKEY* key, void* engine)
    void EVP_PKEY_CTX_free(EVP_PKEY_CTX* ctx)
    int EVP_PKEY_sign_init(EVP_PKEY_CTX* ctx)
    int EVP_PKEY_sign(EVP_PKEY_CTX* ctx, unsigned char* sig, size_t* siglen,
                      const unsigned char* tbs, size_t tbslen)
    int EVP_PKEY_EC
    int EVP_PKEY_ED25519
    ctypedef struct EVP_MD:
        pass
    ctypedef struct EVP_MD_CTX:
        pass
    EVP_MD* EVP_MD_fetch(void* libctx, const char* algorithm, const char* properties)
    EVP_MD_CTX* EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX* ctx)
    int EVP_DigestSignInit(EVP_MD_CTX* ctx, EVP_PKEY_CTX** pctx, const EVP_MD* md,
                           void* engine, EVP_PKEY* key)
    int EVP_DigestSign(EVP_MD_CTX* ctx, unsigned char* sig, size_t* siglen,
                       const unsigned char* tbs, size_t tbslen)
    int EVP_DigestInit_ex(EVP_MD_CTX* ctx, const EVP_MD* md, void* engine)
    int EVP_DigestUpdate(EVP_MD_CTX* ctx, const void* data, size_t length)
    int EVP_DigestFinal_ex(EVP_MD_CTX* ctx, unsigned char* md, unsigned int* length)

cdef extern from "openssl/ecdsa.h" nogil:
    ctypedef struct ECDSA_SIG:
        pass
    ctypedef struct BIGNUM:
        pass
    ECDSA_SIG* d2i_ECDSA_SIG(ECDSA_SIG** sig, const unsigned char** pp, long length)
    void ECDSA_SIG_free(ECDSA_SIG* sig)
    void ECDSA_SIG_get0(const ECDSA_SIG* sig, const BIGNUM** r, const BIGNUM** s)

cdef extern from "openssl/bn.h" nogil:
    int BN_bn2binpad(const BIGNUM* a, unsigned char* to, int tolen)

cdef enum:
    ALG_ECDSAP256SHA256 = 13       # RFC 6605
    ALG_ED25519 = 15               # RFC 8080
    # Both algorithms' signatures: P-256's r and s, 32 octets each (RFC 6605 §4); Ed25519's R
    # and S, 32 octets each (RFC 8080 §4, RFC 8032 §5.1.6).
    ONLINE_SIG_LEN = 64
    RRSIG_FIXED_LEN = 18           # RRSIG RDATA before the signer's name (RFC 4034 §3.1)
    TYPE_RRSIG = 46
    TYPE_NSEC = 47
    ONLINE_VALIDITY = 2 * 86400    # seconds a signature made now is valid
    ONLINE_JITTER = 4 * 3600       # up to this much more, per cache entry
    ONLINE_INCEPTION_SKEW = 3600   # valid from an hour ago: clock skew between us and validators
    SIG_CACHE_SLOTS = 1 << 15      # per process (3.5 MB); a slot holds one signature
    SIG_CACHE_WAYS = 8             # slots per set: names whose hashes meet share a set
    SIG_INPUT_MAX = 4096           # the largest RRset signed online (compact NSEC, multivalue)


ctypedef struct SigCacheEntry:
    uint8_t digest[32]             # SHA-256 of key id, owner, labels, type, TTL and RDATAs
    uint32_t inception
    uint32_t expiration            # 0: empty
    unsigned long long used        # cache_clock when last served: the least recent goes
    uint8_t sig[ONLINE_SIG_LEN]


cdef SigCacheEntry* sig_cache = NULL
cdef pthread_mutex_t sig_cache_lock
cdef pthread_mutex_t sign_lock      # an image's signing context signs one message at a time
# SHA-256 fetched once: OpenSSL 3's one-shot SHA256() looks the algorithm up on every call,
# which costs more than hashing a short RRset. One context per lock that guards its use.
cdef EVP_MD* sha256_md = NULL
cdef EVP_MD_CTX* key_md_ctx = NULL      # under sig_cache_lock
cdef EVP_MD_CTX* sign_md_ctx = NULL     # under sign_lock
cdef long long clock_offset = 0    # tests move the clock (set_online_clock_offset)
cdef unsigned long long online_signatures = 0
cdef unsigned long long online_hits = 0
cdef unsigned long long cache_clock = 0   # counts cache accesses (under sig_cache_lock)


cdef int online_init() except -1:
    """The per-process signature cache; called once when the module is imported."""
    global sig_cache
    sig_cache = <SigCacheEntry*> PyMem_Malloc(sizeof(SigCacheEntry) * SIG_CACHE_SLOTS)
    if sig_cache == NULL:
        raise MemoryError()
    memset(sig_cache, 0, sizeof(SigCacheEntry) * SIG_CACHE_SLOTS)
    pthread_mutex_init(&sig_cache_lock, NULL)
    pthread_mutex_init(&sign_lock, NULL)
    global sha256_md, key_md_ctx, sign_md_ctx
    sha256_md = EVP_MD_fetch(NULL, b"SHA256", NULL)
    key_md_ctx = EVP_MD_CTX_new()
    sign_md_ctx = EVP_MD_CTX_new()
    if sha256_md == NULL or key_md_ctx == NULL or sign_md_ctx == NULL:
        raise ImportError("fastdns._core: libcrypto has no SHA-256")
    return 0


cdef inline int sha256(EVP_MD_CTX* ctx, const uint8_t* data, size_t length,
                       uint8_t* out) noexcept nogil:
    """SHA-256 of ``data`` with ``ctx`` (its lock held). 0, or -1."""
    if EVP_DigestInit_ex(ctx, sha256_md, NULL) != 1 or \
            EVP_DigestUpdate(ctx, data, length) != 1 or \
            EVP_DigestFinal_ex(ctx, out, NULL) != 1:
        return -1
    return 0


cdef inline uint32_t online_now() noexcept nogil:
    return <uint32_t> (time(NULL) + clock_offset)


cdef inline void write_u32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = v >> 24
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef int ecdsa_sign(EVP_PKEY_CTX* ctx, const uint8_t* data, size_t length,
                    uint8_t* out) noexcept nogil:
    """ECDSA P-256 over the SHA-256 of ``data`` with a context ready to sign (made once per
    image: making one per signature costs as much as the signature); ``out`` gets r || s
    (RFC 6605 §4). 0, or -1."""
    cdef uint8_t digest[32]
    cdef uint8_t der[80]
    cdef size_t der_len = sizeof(der)
    cdef const uint8_t* p = der
    cdef const BIGNUM* r
    cdef const BIGNUM* s
    cdef ECDSA_SIG* sig
    cdef int ok = -1
    pthread_mutex_lock(&sign_lock)
    ok = sha256(sign_md_ctx, data, length, digest) == 0 and \
        EVP_PKEY_sign(ctx, der, &der_len, digest, 32) == 1
    pthread_mutex_unlock(&sign_lock)
    if not ok:
        return -1
    ok = -1
    sig = d2i_ECDSA_SIG(NULL, &p, <long> der_len)
    if sig != NULL:
        ECDSA_SIG_get0(sig, &r, &s)
        if BN_bn2binpad(r, out, 32) == 32 and BN_bn2binpad(s, out + 32, 32) == 32:
            ok = 0
        ECDSA_SIG_free(sig)
    return ok


cdef int ed25519_sign(EVP_MD_CTX* ctx, EVP_PKEY* key, const uint8_t* data, size_t length,
                      uint8_t* out) noexcept nogil:
    """Ed25519 (pure, RFC 8032) over ``data`` itself, the RRSIG's signed data with no digest
    of our own (RFC 8080 §3, §4); ``out`` gets the 64-octet signature. ``ctx`` is the image's,
    set up again for each message: OpenSSL 3 does not let a one-shot EVP_DigestSign context
    sign twice. 0, or -1."""
    cdef size_t sig_len = ONLINE_SIG_LEN
    cdef int ok
    pthread_mutex_lock(&sign_lock)
    ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 and \
        EVP_DigestSign(ctx, out, &sig_len, data, length) == 1 and sig_len == ONLINE_SIG_LEN
    pthread_mutex_unlock(&sign_lock)
    return 0 if ok else -1


cdef int sign_rrset(const Image* img, const uint8_t* owner, int owner_len, int labels,
                    uint16_t rtype, uint32_t ttl, const uint8_t* rdatas, int rdatas_len,
                    uint8_t* out) noexcept nogil:
    """The RRSIG RDATA (RFC 4034 §3.1) over the RRset (``owner``, ``rtype``, ``ttl``) whose
    records are ``rdatas``: each RDLENGTH then RDATA, canonical form and order (§6.2, §6.3).
    ``owner``: lower-cased wire name; ``labels``: the RRSIG Labels field (§3.1.3).

    Written to ``out``; returns its length, or -1 (no key, too large, libcrypto failed)."""
    cdef uint8_t buf[SIG_INPUT_MAX]
    cdef uint8_t key_digest[32]
    cdef uint8_t sig[ONLINE_SIG_LEN]
    cdef uint32_t now = online_now()
    cdef uint32_t inception, expiration
    cdef int pos, n, rdlen, prefix_len
    cdef int signer_len = img.hdr.apex_len
    cdef SigCacheEntry* set_
    cdef SigCacheEntry* slot = NULL
    cdef int way
    cdef bint hit = False
    global online_signatures, online_hits, cache_clock
    if img.zsk == NULL or 32 + owner_len + 7 + rdatas_len > SIG_INPUT_MAX:
        return -1
    # The cache key: which key, and every octet of the RRset it signs.
    memcpy(buf, img.zsk_id, 32)
    memcpy(buf + 32, owner, owner_len)
    pos = 32 + owner_len
    buf[pos] = <uint8_t> labels
    write_u16(buf + pos + 1, rtype)
    write_u32(buf + pos + 3, ttl)
    memcpy(buf + pos + 7, rdatas, rdatas_len)
    pthread_mutex_lock(&sig_cache_lock)
    if sha256(key_md_ctx, buf, pos + 7 + rdatas_len, key_digest) < 0:
        pthread_mutex_unlock(&sig_cache_lock)
        return -1
    set_ = &sig_cache[((key_digest[0] | (key_digest[1] << 8)) * SIG_CACHE_WAYS) &
                      (SIG_CACHE_SLOTS - 1)]
    for way in range(SIG_CACHE_WAYS):
        if set_[way].expiration != 0 and memcmp(set_[way].digest, key_digest, 32) == 0:
            slot = &set_[way]
            break
    if slot != NULL and <long long> slot.expiration - now > ONLINE_VALIDITY // 2 and \
            slot.inception <= now:
        hit = True
        inception = slot.inception
        expiration = slot.expiration
        memcpy(sig, slot.sig, ONLINE_SIG_LEN)
        cache_clock += 1
        slot.used = cache_clock
        online_hits += 1
    pthread_mutex_unlock(&sig_cache_lock)
    # The RRSIG RDATA up to the signature: also the start of the signed data (§3.1.8.1).
    write_u16(out, rtype)
    out[2] = img.zsk_algorithm
    out[3] = <uint8_t> labels
    write_u32(out + 4, ttl)
    write_u16(out + 16, img.zsk_tag)
    memcpy(out + RRSIG_FIXED_LEN, (<const uint8_t*> img.hdr) + img.hdr.apex_off, signer_len)
    prefix_len = RRSIG_FIXED_LEN + signer_len
    if not hit:
        inception = now - ONLINE_INCEPTION_SKEW
        expiration = now + ONLINE_VALIDITY + \
            ((key_digest[2] | (key_digest[3] << 8) | (now << 16)) % ONLINE_JITTER)
        write_u32(out + 8, expiration)
        write_u32(out + 12, inception)
        # Signed data: RRSIG RDATA without the signature, then each RR in canonical form.
        memcpy(buf, out, prefix_len)
        pos = prefix_len
        n = 0
        while n < rdatas_len:
            rdlen = read_u16(rdatas + n)
            if pos + owner_len + 10 + rdlen > SIG_INPUT_MAX or n + 2 + rdlen > rdatas_len:
                return -1
            memcpy(buf + pos, owner, owner_len)
            pos += owner_len
            write_u16(buf + pos, rtype)
            write_u16(buf + pos + 2, CLASS_IN)
            write_u32(buf + pos + 4, ttl)
            memcpy(buf + pos + 8, rdatas + n, 2 + rdlen)
            pos += 10 + rdlen
            n += 2 + rdlen
        if img.zsk_algorithm == ALG_ED25519:
            if ed25519_sign(<EVP_MD_CTX*> img.sign_ctx, <EVP_PKEY*> img.zsk, buf, pos, sig) < 0:
                return -1
        elif ecdsa_sign(<EVP_PKEY_CTX*> img.sign_ctx, buf, pos, sig) < 0:
            return -1
        pthread_mutex_lock(&sig_cache_lock)
        if slot == NULL or memcmp(slot.digest, key_digest, 32) != 0:
            # A new entry replaces an empty slot, else the least recently served. (Not the
            # one expiring first: the jitter would make fresh entries look old.)
            slot = &set_[0]
            for way in range(1, SIG_CACHE_WAYS):
                if set_[way].used < slot.used:
                    slot = &set_[way]
        memcpy(slot.digest, key_digest, 32)
        slot.inception = inception
        slot.expiration = expiration
        cache_clock += 1
        slot.used = cache_clock
        memcpy(slot.sig, sig, ONLINE_SIG_LEN)
        online_signatures += 1
        pthread_mutex_unlock(&sig_cache_lock)
    write_u32(out + 8, expiration)
    write_u32(out + 12, inception)
    memcpy(out + prefix_len, sig, ONLINE_SIG_LEN)
    return prefix_len + ONLINE_SIG_LEN


cdef int load_online_key(Image* img, const uint8_t* der, int der_len) except -1:
    """Read a zone's private ZSK (PKCS#8 DER) for online signing: an ECDSA P-256 key for
    algorithm 13, an Ed25519 key for 15 (``img.zsk_algorithm``, from the image's ImgOnline)."""
    cdef const uint8_t* p = der
    cdef EVP_PKEY* key = d2i_AutoPrivateKey(NULL, &p, der_len)
    cdef EVP_PKEY_CTX* ctx = NULL
    cdef EVP_MD_CTX* md_ctx = NULL
    if key == NULL:
        raise ValueError("zone image: unreadable signing key")
    if img.zsk_algorithm == ALG_ED25519:
        if EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519:
            EVP_PKEY_free(key)
            raise ValueError("zone image: algorithm 15 needs an Ed25519 key")
        # Set up once here so that a key libcrypto cannot sign with fails the load, not a query.
        md_ctx = EVP_MD_CTX_new()
        if md_ctx == NULL or EVP_DigestSignInit(md_ctx, NULL, NULL, NULL, key) != 1:
            EVP_MD_CTX_free(md_ctx)
            EVP_PKEY_free(key)
            raise ValueError("zone image: cannot sign with this key")
        img.sign_ctx = md_ctx
    else:
        if EVP_PKEY_get_base_id(key) != EVP_PKEY_EC or EVP_PKEY_get_bits(key) != 256:
            EVP_PKEY_free(key)
            raise ValueError("zone image: algorithm 13 needs an ECDSA P-256 key")
        ctx = EVP_PKEY_CTX_new(key, NULL)
        if ctx == NULL or EVP_PKEY_sign_init(ctx) != 1:
            EVP_PKEY_CTX_free(ctx)
            EVP_PKEY_free(key)
            raise ValueError("zone image: cannot sign with this key")
        img.sign_ctx = ctx
    img.zsk = key
    with nogil:
        pthread_mutex_lock(&sig_cache_lock)
        sha256(key_md_ctx, der, der_len, img.zsk_id)
        pthread_mutex_unlock(&sig_cache_lock)
    return 0


cdef void free_online_key(Image* img) noexcept:
    """Release what load_online_key made (nothing when the image has no online key)."""
    if img.zsk == NULL:
        return
    if img.zsk_algorithm == ALG_ED25519:
        EVP_MD_CTX_free(<EVP_MD_CTX*> img.sign_ctx)
    else:
        EVP_PKEY_CTX_free(<EVP_PKEY_CTX*> img.sign_ctx)
    EVP_PKEY_free(<EVP_PKEY*> img.zsk)
    img.zsk = NULL
    img.sign_ctx = NULL


def set_online_clock_offset(long long seconds):
    """Move the online signer's clock by ``seconds`` (tests of signature expiry only)."""
    global clock_offset
    clock_offset = seconds


def online_stats():
    """``(signatures made, cache hits)`` of online signing in this process."""
    return online_signatures, online_hits
