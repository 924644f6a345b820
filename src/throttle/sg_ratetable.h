/*
 * sg_ratetable: the shared table of GCRA cells, keyed by a 64-bit hash of
 * (key id, connector).  Sharded; lookups and updates from many I/O threads.
 *
 * Eviction is bounded and safe: when a shard is full, only cells whose TAT
 * is at or before `now` (a bucket that has completely refilled) may be
 * reused.  Such a cell is indistinguishable from a fresh one, so eviction
 * never hands a throttled client a fresh bucket.  When no cell can be
 * evicted, the lookup fails and the caller must deny (fail closed).
 */
#ifndef SG_RATETABLE_H
#define SG_RATETABLE_H

#include <stddef.h>
#include <stdint.h>

struct sg_ratetable;

/* `capacity` is the total number of cells across all shards. */
struct sg_ratetable *sg_ratetable_new(size_t capacity);
void sg_ratetable_free(struct sg_ratetable *t);

/*
 * Returns the cell for `key` (never 0; callers hash with sg_ratetable_key),
 * creating it when absent.  The cell stays valid for the table's lifetime;
 * its key may be reassigned only after it has fully refilled, which is
 * harmless to a holder by the argument above.  Returns NULL when the shard
 * is full of live cells.
 */
_Atomic uint64_t *sg_ratetable_cell(struct sg_ratetable *t, uint64_t key, uint64_t now);

/*
 * Starts loading the line where `key`'s probe begins.  A caller about to
 * look up several keys prefetches them all first, so their cache misses
 * overlap instead of queueing one after another.
 */
void sg_ratetable_prefetch(const struct sg_ratetable *t, uint64_t key);

/* Looks a cell up without creating it; NULL when absent. */
_Atomic uint64_t *sg_ratetable_peek(struct sg_ratetable *t, uint64_t key);

/* 64-bit hash of (key id, scope), never 0. */
uint64_t sg_ratetable_key(const char *key_id, const char *scope);

size_t sg_ratetable_count(const struct sg_ratetable *t);

#endif
