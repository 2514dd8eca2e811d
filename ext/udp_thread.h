/* The few C11-style atomics the UDP receive thread (ext/udp_thread.pxi) needs, as GCC/Clang
 * builtins: Cython has no spelling for them. Relaxed order is enough everywhere they are used:
 * counters are independent words that only have to add up exactly, and the stop flag is
 * re-checked after a system call that itself orders memory. */
#ifndef FASTDNS_UDP_THREAD_H
#define FASTDNS_UDP_THREAD_H

#include <stdint.h>

static inline void fd_counter_add(uint64_t *word, uint64_t n)
{
	__atomic_fetch_add(word, n, __ATOMIC_RELAXED);
}

static inline int fd_flag_load(const int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static inline void fd_flag_store(int *flag, int value)
{
	__atomic_store_n(flag, value, __ATOMIC_RELEASE);
}

#endif
