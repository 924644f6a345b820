/*
 * sg_slab: each thread's pool of reply and scratch blocks.  A request takes
 * what it needs for its buffers and gives it all back when it finishes, so
 * once a thread has served its first requests, serving more allocates
 * nothing: glibc malloc and free were about a sixth of a governed call's
 * instructions before.
 *
 * Blocks are plain heap memory and may be grown with sg_slab_grow; a block
 * given back on another thread joins that thread's pool.
 */
#ifndef SG_SLAB_H
#define SG_SLAB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The size of a fresh block: most replies and bodies fit one. */
#define SG_SLAB_BLOCK 8192

/* A block of at least `want` bytes; its size in *cap.  NULL: out of memory. */
void *sg_slab_take(size_t want, size_t *cap);
/* Grows `block` (NULL: takes one) to at least `want` bytes, keeping its contents. */
void *sg_slab_grow(void *block, size_t *cap, size_t want);
/* Gives `block` of size `cap` back to this thread's pool (or frees it).  NULL is ignored. */
void sg_slab_give(void *block, size_t cap);
/* Frees every block in this thread's pool (for tests that must see cold allocations). */
void sg_slab_release_thread(void);
/* Blocks this thread's pool holds now (for tests). */
size_t sg_slab_pooled(void);

#ifdef __cplusplus
}
#endif

#endif
