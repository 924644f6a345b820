/*
 * Every block carries a 16-byte header with its size class, so free and
 * realloc know it without a lookup, and user memory keeps malloc's 16-byte
 * alignment.  Classes are powers of two from 32 to 4096 bytes; anything
 * larger goes to malloc as it is.  A block freed on another thread joins
 * that thread's lists: memory moves, it is never shared.  Each list stops
 * at SG_EVMEM_KEEP blocks, so a burst cannot pin memory for good.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_evmem.h"

/*
 * Under AddressSanitizer a block on a free list is poisoned, and a block
 * handed out is readable for the bytes asked for only: a use after free or
 * an overrun in code that uses libevent's memory is still reported.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SG_EVMEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_EVMEM_ASAN 1
#endif
#endif
#ifdef SG_EVMEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SG_EVMEM_MIN_SHIFT 5 /* 32 bytes */
#define SG_EVMEM_CLASSES 8   /* 32 .. 4096 */
#define SG_EVMEM_KEEP 512
#define SG_EVMEM_BIG 0xff

struct block_head {
	union {
		struct block_head *next; /* while free */
		uint64_t cls;            /* while in use */
	} u;
	uint64_t pad; /* keeps user memory 16-aligned */
};

static _Thread_local struct block_head *lists[SG_EVMEM_CLASSES];
static _Thread_local unsigned counts[SG_EVMEM_CLASSES];
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static _Thread_local int watched;

static int
class_of(size_t n)
{
	size_t size = (size_t)1 << SG_EVMEM_MIN_SHIFT;
	for (int c = 0; c < SG_EVMEM_CLASSES; c++, size <<= 1)
		if (n <= size)
			return c;
	return SG_EVMEM_BIG;
}

static size_t
class_size(int c)
{
	return (size_t)1 << (SG_EVMEM_MIN_SHIFT + c);
}

/* A thread's lists die with it. */
static void
drain(void *unused)
{
	(void)unused;
	for (int c = 0; c < SG_EVMEM_CLASSES; c++) {
		while (lists[c] != NULL) {
			struct block_head *b = lists[c];
			UNPOISON(b + 1, class_size(c));
			lists[c] = b->u.next;
			free(b);
		}
		counts[c] = 0;
	}
}

static void
make_key(void)
{
	(void)pthread_key_create(&cache_key, drain);
}

static void
watch_thread_exit(void)
{
	(void)pthread_once(&cache_key_once, make_key);
	(void)pthread_setspecific(cache_key, &cache_key);
	watched = 1;
}

void *
sg_evmem_malloc(size_t n)
{
	int c = class_of(n);
	struct block_head *b;
	if (c != SG_EVMEM_BIG && lists[c] != NULL) {
		b = lists[c];
		lists[c] = b->u.next;
		counts[c]--;
	} else {
		if (n > SIZE_MAX - sizeof(*b))
			return NULL;
		b = malloc(sizeof(*b) + (c == SG_EVMEM_BIG ? n : class_size(c)));
		if (b == NULL)
			return NULL;
	}
	b->u.cls = (uint64_t)c;
	if (c != SG_EVMEM_BIG) {
		POISON(b + 1, class_size(c));
		UNPOISON(b + 1, n);
	}
	return b + 1;
}

void
sg_evmem_free(void *p)
{
	if (p == NULL)
		return;
	struct block_head *b = (struct block_head *)p - 1;
	int c = (int)b->u.cls;
	if (c == SG_EVMEM_BIG || counts[c] >= SG_EVMEM_KEEP) {
		if (c != SG_EVMEM_BIG)
			UNPOISON(p, class_size(c));
		free(b);
		return;
	}
	if (!watched)
		watch_thread_exit();
	POISON(p, class_size(c));
	b->u.next = lists[c];
	lists[c] = b;
	counts[c]++;
}

void *
sg_evmem_realloc(void *p, size_t n)
{
	if (p == NULL)
		return sg_evmem_malloc(n);
	struct block_head *b = (struct block_head *)p - 1;
	int c = (int)b->u.cls;
	if (c == SG_EVMEM_BIG) {
		if (n > SIZE_MAX - sizeof(*b))
			return NULL;
		struct block_head *g = realloc(b, sizeof(*b) + n);
		return g ? g + 1 : NULL;
	}
	if (n <= class_size(c)) {
		UNPOISON(p, n);
		return p;
	}
	void *q = sg_evmem_malloc(n);
	if (q == NULL)
		return NULL;
	/* Only the bytes asked for before are readable, and the rest means nothing. */
	UNPOISON(p, class_size(c));
	memcpy(q, p, class_size(c));
	sg_evmem_free(p);
	return q;
}

size_t
sg_evmem_cached(void)
{
	size_t n = 0;
	for (int c = 0; c < SG_EVMEM_CLASSES; c++)
		n += counts[c];
	return n;
}

void
sg_evmem_install(void)
{
	event_set_mem_functions(sg_evmem_malloc, sg_evmem_realloc, sg_evmem_free);
}
