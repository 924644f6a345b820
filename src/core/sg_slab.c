/*
 * Each thread keeps a LIFO list of free blocks, threaded through the blocks
 * themselves, so taking and giving are a few pointer moves.  Blocks larger
 * than SG_SLAB_KEEP_MAX (a rare huge reply) are freed rather than kept, and
 * the list stops at SG_SLAB_KEEP blocks, so one burst cannot pin memory.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/sg_slab.h"

#define SG_SLAB_KEEP 64
#define SG_SLAB_KEEP_MAX (256 * 1024)

struct free_block {
	struct free_block *next;
	size_t cap;
};

static _Thread_local struct free_block *pool;
static _Thread_local size_t pooled;
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

/* A thread's pool dies with it: the key's destructor runs at thread exit. */
static void
drain(void *unused)
{
	(void)unused;
	while (pool != NULL) {
		struct free_block *b = pool;
		pool = b->next;
		free(b);
	}
	pooled = 0;
}

static void
make_key(void)
{
	(void)pthread_key_create(&pool_key, drain);
}

static void
watch_thread_exit(void)
{
	(void)pthread_once(&pool_key_once, make_key);
	(void)pthread_setspecific(pool_key, &pool_key);
}

void *
sg_slab_take(size_t want, size_t *cap)
{
	/* The first block large enough; most are SG_SLAB_BLOCK, so it is the first. */
	for (struct free_block **p = &pool; *p != NULL; p = &(*p)->next) {
		struct free_block *b = *p;
		if (b->cap >= want) {
			*p = b->next;
			pooled--;
			*cap = b->cap;
			return b;
		}
	}
	size_t n = want > SG_SLAB_BLOCK ? want : SG_SLAB_BLOCK;
	void *block = malloc(n);
	if (block != NULL)
		*cap = n;
	return block;
}

void *
sg_slab_grow(void *block, size_t *cap, size_t want)
{
	if (block == NULL)
		return sg_slab_take(want, cap);
	if (want <= *cap)
		return block;
	size_t n = *cap * 2 > want ? *cap * 2 : want;
	void *grown = realloc(block, n);
	if (grown != NULL)
		*cap = n;
	return grown;
}

void
sg_slab_give(void *block, size_t cap)
{
	if (block == NULL)
		return;
	if (cap > SG_SLAB_KEEP_MAX || cap < sizeof(struct free_block) || pooled >= SG_SLAB_KEEP) {
		free(block);
		return;
	}
	if (pool == NULL)
		watch_thread_exit();
	struct free_block *b = block;
	b->cap = cap;
	b->next = pool;
	pool = b;
	pooled++;
}

void
sg_slab_release_thread(void)
{
	drain(NULL);
}

size_t
sg_slab_pooled(void)
{
	return pooled;
}
