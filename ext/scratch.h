/* Scratch memory of the native zone compiler (ext/zcompile.pyx), kept between compiles.
 *
 * A change of one record in a large zone recompiles the whole zone (issue 8). With glibc's
 * malloc, every large working array of a compile is a fresh mmap: for a million record sets
 * that is about 290 MB of pages the kernel must fault in and zero again on every compile
 * (0.49 s a compile, against 0.34 s when the pages are kept; bench/compile_speed.py --packed).
 * Here a freed block of SCRATCH_LARGE bytes or more is kept for the next compile instead, until
 * scratch_release() gives every kept block back (the supervisor does so once the initial load is
 * done and a while after the last change, so an idle server does not hold it).
 *
 * Blocks carry a 16-byte header (their capacity and whether they are mapped), so the returned
 * pointers keep malloc's 16-byte alignment. Thread-safe: compiles may run on several threads.
 */
#ifndef FASTDNS_SCRATCH_H
#define FASTDNS_SCRATCH_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SCRATCH_LARGE ((size_t)256 << 10) /* blocks this size or more are mapped and kept */
#define SCRATCH_SLOTS 64                  /* at most this many kept blocks */
#define SCRATCH_HEADER 16
#define SCRATCH_PAGE ((size_t)4096)

typedef struct {
    size_t capacity; /* usable bytes after the header */
    size_t mapped;   /* 1: a kept-able mapping; 0: from malloc */
} scratch_header;

static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static scratch_header *scratch_kept_blocks[SCRATCH_SLOTS];
static size_t scratch_kept_count = 0;

static inline void *scratch_payload(scratch_header *h) { return (char *)h + SCRATCH_HEADER; }
static inline scratch_header *scratch_head(void *p) {
    return (scratch_header *)((char *)p - SCRATCH_HEADER);
}

/* The smallest kept block of at least n usable bytes, taken out of the cache; or NULL. */
static scratch_header *scratch_take(size_t n) {
    scratch_header *best = NULL;
    size_t best_slot = 0;
    pthread_mutex_lock(&scratch_lock);
    for (size_t i = 0; i < scratch_kept_count; i++) {
        scratch_header *h = scratch_kept_blocks[i];
        if (h->capacity >= n && (best == NULL || h->capacity < best->capacity)) {
            best = h;
            best_slot = i;
        }
    }
    if (best != NULL)
        scratch_kept_blocks[best_slot] = scratch_kept_blocks[--scratch_kept_count];
    pthread_mutex_unlock(&scratch_lock);
    return best;
}

static void *scratch_malloc(size_t n) {
    if (n > SIZE_MAX - SCRATCH_PAGE - SCRATCH_HEADER)
        return NULL;
    if (n + SCRATCH_HEADER < SCRATCH_LARGE) {
        scratch_header *h = (scratch_header *)malloc(n + SCRATCH_HEADER);
        if (h == NULL)
            return NULL;
        h->capacity = n;
        h->mapped = 0;
        return scratch_payload(h);
    }
    scratch_header *h = scratch_take(n);
    if (h != NULL)
        return scratch_payload(h); /* as malloc: the contents are whatever was there */
    size_t size = (n + SCRATCH_HEADER + SCRATCH_PAGE - 1) & ~(SCRATCH_PAGE - 1);
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    h = (scratch_header *)base;
    h->capacity = size - SCRATCH_HEADER;
    h->mapped = 1;
    return scratch_payload(h);
}

static void scratch_unmap(scratch_header *h) { munmap(h, h->capacity + SCRATCH_HEADER); }

static void scratch_free(void *p) {
    if (p == NULL)
        return;
    scratch_header *h = scratch_head(p);
    if (!h->mapped) {
        free(h);
        return;
    }
    pthread_mutex_lock(&scratch_lock);
    if (scratch_kept_count < SCRATCH_SLOTS) {
        scratch_kept_blocks[scratch_kept_count++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&scratch_lock);
    if (h != NULL)
        scratch_unmap(h);
}

static void *scratch_calloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = scratch_malloc(count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

static void *scratch_realloc(void *p, size_t n) {
    if (p == NULL)
        return scratch_malloc(n);
    scratch_header *h = scratch_head(p);
    if (n <= h->capacity)
        return p;
    if (!h->mapped && n + SCRATCH_HEADER < SCRATCH_LARGE) {
        scratch_header *grown = (scratch_header *)realloc(h, n + SCRATCH_HEADER);
        if (grown == NULL)
            return NULL;
        grown->capacity = n;
        return scratch_payload(grown);
    }
    void *q = scratch_malloc(n);
    if (q == NULL)
        return NULL; /* as realloc: p is left as it was */
    memcpy(q, p, h->capacity);
    scratch_free(p);
    return q;
}

/* Give every kept block back to the system; the bytes given back. */
static size_t scratch_release(void) {
    scratch_header *blocks[SCRATCH_SLOTS];
    size_t count, total = 0;
    pthread_mutex_lock(&scratch_lock);
    count = scratch_kept_count;
    memcpy(blocks, scratch_kept_blocks, count * sizeof(blocks[0]));
    scratch_kept_count = 0;
    pthread_mutex_unlock(&scratch_lock);
    for (size_t i = 0; i < count; i++) {
        total += blocks[i]->capacity + SCRATCH_HEADER;
        scratch_unmap(blocks[i]);
    }
    return total;
}

/* The bytes kept for the next compile. */
static size_t scratch_kept(void) {
    size_t total = 0;
    pthread_mutex_lock(&scratch_lock);
    for (size_t i = 0; i < scratch_kept_count; i++)
        total += scratch_kept_blocks[i]->capacity + SCRATCH_HEADER;
    pthread_mutex_unlock(&scratch_lock);
    return total;
}

#endif
