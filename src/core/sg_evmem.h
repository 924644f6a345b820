/*
 * sg_evmem: libevent's allocator.  evhttp allocates and frees about a
 * hundred small blocks per request (the request, each header's struct, key
 * and value, buffers, the parsed URI), and glibc's malloc and free were 15%
 * of a governed call's instructions on the I/O thread even with a larger
 * thread cache.  Each thread here keeps its own free lists by size class,
 * so a request's blocks are the last request's blocks.
 *
 * Installed only by `serve`, before its first libevent call.  Under
 * AddressSanitizer free blocks are poisoned, so the system tests run it.
 */
#ifndef SG_EVMEM_H
#define SG_EVMEM_H

#include <stddef.h>

/* Hands libevent the functions below; call before any other libevent call. */
void sg_evmem_install(void);

void *sg_evmem_malloc(size_t n);
void *sg_evmem_realloc(void *p, size_t n);
void sg_evmem_free(void *p);
/* Blocks this thread's lists hold now (for tests). */
size_t sg_evmem_cached(void);

#endif
