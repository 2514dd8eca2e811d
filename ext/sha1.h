/* SHA-1 (FIPS 180-4 §6.1) for NSEC3 hashes (RFC 5155 §5) on the hot path.
 *
 * Self-contained so that the extension needs no crypto library: NSEC3 with RFC 9276's
 * parameters hashes one short name (at most 255 octets) per denial, and SHA-1's weakness
 * against chosen collisions does not matter for hashing names (RFC 9276 §2.4). */
#ifndef FASTDNS_SHA1_H
#define FASTDNS_SHA1_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fastdns_rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void fastdns_sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 80; i++)
        w[i] = fastdns_rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
        t = fastdns_rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = fastdns_rol32(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* out = SHA-1(data[0..len)); len < 2^29. */
static void fastdns_sha1(const uint8_t *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    uint8_t block[64];
    size_t done = 0, rest;
    uint64_t bits = (uint64_t)len * 8;
    int i;
    while (len - done >= 64) {
        fastdns_sha1_block(h, data + done);
        done += 64;
    }
    rest = len - done;
    memset(block, 0, 64);
    memcpy(block, data + done, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        fastdns_sha1_block(h, block);
        memset(block, 0, 64);
    }
    for (i = 0; i < 8; i++)
        block[63 - i] = (uint8_t)(bits >> (8 * i));
    fastdns_sha1_block(h, block);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

#endif
