/*
 * The shared GCRA cell table.
 *
 * Layout: SHARDS shards of equal size, each a fixed array of 16-byte slots
 * {key, tat} probed linearly for at most PROBE slots.  The shard comes from
 * the key's top bits and the slot from its bottom bits, so the two never
 * correlate.  All slots are one allocation made at creation and never
 * resized, so a cell pointer stays valid for the table's lifetime.  A
 * capacity of 1,000,000 gives 64 shards of 16,384 slots: 16 MiB in all,
 * mapped on 2 MiB pages where the kernel allows.
 * Rounding each shard up to a power of two costs at most 2x that.
 *
 * Bounded probing trades fill for short lookups.  Filled with buckets that
 * never refill, a 1,000,000-cell table refuses its first key at about 54%
 * load and 1.4% of keys at 86%, so size it at twice the number of clients
 * expected to be draining at once; refilled buckets never count.
 *
 * Readers find an existing key without a lock: a slot's key is published
 * with a release store once its cell is ready and read with an acquire
 * load.  Writers of keys hold the shard's mutex, so two threads never claim
 * the same slot and a key is never present twice.  Keys are never removed,
 * only reassigned, so an empty slot ends every probe run.
 *
 * Eviction: when a key's probe window has no empty slot, the first slot
 * whose TAT is at or before `now` is given to the new key.  Such a bucket
 * has completely refilled: GCRA reads max(tat, now), so from now on it
 * decides exactly as a never-seen bucket would.  The evicted client loses
 * nothing it was owed, and the new client gets a full bucket, which is what
 * it would get from an empty slot.  A client whose bucket is still draining
 * is never evicted; if every slot in the window is draining the lookup
 * fails and the caller refuses the request, because forgetting a throttled
 * client would be the one unsafe answer.
 *
 * The TAT is deliberately not reset on eviction.  It is already as good as
 * fresh, and leaving it alone means every write to a cell is a CAS, so no
 * take is ever overwritten.  A thread that looked the old key up just before
 * the eviction may still take from the cell.  That is harmless: the old
 * bucket was full, so its request was rightly admitted, and its charge lands
 * on the new key's bucket, which can only make the new key stricter, by at
 * most the requests in flight at that instant.  The old key's next lookup
 * starts a fresh bucket, so those few requests go uncounted against it: a
 * slack of one request per thread per eviction, and only ever for a client
 * that was owed a full bucket, never for one that is being throttled.
 *
 * The hash is not keyed: key ids are issued by the gateway and scopes come
 * from configuration, so clients cannot aim keys at one probe window.
 */
#include "throttle/sg_ratetable.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SHARD_BITS 6
#define SHARDS ((size_t)1 << SHARD_BITS)
#define PROBE 32

struct slot {
	_Atomic uint64_t key; /* 0 = empty, never reused as a real key */
	_Atomic uint64_t tat;
};

_Static_assert(sizeof(struct slot) == 16, "a slot is two words");

/* Padded so that inserts into neighbouring shards do not share a line. */
union shard_lock {
	pthread_mutex_t m;
	char line[64];
};

struct sg_ratetable {
	struct slot *slots; /* SHARDS runs of (mask + 1) slots, inside the mapping */
	void *map;
	size_t map_len;
	size_t mask;
	_Atomic size_t count;
	union shard_lock locks[SHARDS];
};

/* Slots per shard; 0 when the table could not be addressed. */
static size_t
shard_size(size_t capacity)
{
	size_t need = capacity / SHARDS + (capacity % SHARDS != 0);
	size_t max = SIZE_MAX / sizeof(struct slot) / SHARDS;
	/* At least PROBE, so a probe window never wraps onto itself. */
	size_t n = PROBE;
	while (n < need) {
		if (n > max / 2)
			return 0;
		n <<= 1;
	}
	return n;
}

#define HUGE_PAGE ((size_t)2 << 20)

/*
 * The slots live in their own anonymous mapping, aligned to 2 MiB and
 * offered to transparent huge pages.  Every call looks up several cells
 * at random across megabytes; with 4 KiB pages each lookup also missed the
 * TLB.  The kernel zeroes the pages, and still backs only what is touched.
 */
static int
map_slots(struct sg_ratetable *t, size_t n)
{
	size_t bytes = n * sizeof(struct slot);
	if (bytes > SIZE_MAX - HUGE_PAGE)
		return -1;
	t->map_len = bytes + HUGE_PAGE;
	t->map = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->map == MAP_FAILED) {
		t->map = NULL;
		return -1;
	}
	uintptr_t at = ((uintptr_t)t->map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	t->slots = (struct slot *)at;
	if (bytes >= HUGE_PAGE)
		(void)madvise(t->slots, bytes, MADV_HUGEPAGE); /* advice: fine to be refused */
	return 0;
}

struct sg_ratetable *
sg_ratetable_new(size_t capacity)
{
	size_t per = shard_size(capacity);
	if (per == 0)
		return NULL;
	struct sg_ratetable *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	if (map_slots(t, SHARDS * per) != 0) {
		free(t);
		return NULL;
	}
	t->mask = per - 1;
	for (size_t i = 0; i < SHARDS; i++) {
		if (pthread_mutex_init(&t->locks[i].m, NULL) != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&t->locks[i].m);
			munmap(t->map, t->map_len);
			free(t);
			return NULL;
		}
	}
	return t;
}

void
sg_ratetable_free(struct sg_ratetable *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < SHARDS; i++)
		pthread_mutex_destroy(&t->locks[i].m);
	munmap(t->map, t->map_len);
	free(t);
}

static size_t
shard_of(uint64_t key)
{
	return (size_t)(key >> (64 - SHARD_BITS));
}

static struct slot *
probe(const struct sg_ratetable *t, uint64_t key, size_t i)
{
	struct slot *run = t->slots + shard_of(key) * (t->mask + 1);
	return &run[(key + i) & t->mask];
}

static struct slot *
find(const struct sg_ratetable *t, uint64_t key)
{
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *sl = probe(t, key, i);
		uint64_t k = atomic_load_explicit(&sl->key, memory_order_acquire);
		if (k == key)
			return sl;
		if (k == 0)
			return NULL;
	}
	return NULL;
}

static void
publish(struct slot *sl, uint64_t key)
{
	atomic_store_explicit(&sl->key, key, memory_order_release);
}

/*
 * Caller holds the shard's lock, which orders every earlier key write, so
 * relaxed loads see them.  Prefers an empty slot to an eviction, so live
 * entries are only displaced when the window is genuinely full.
 */
static struct slot *
insert_locked(struct sg_ratetable *t, uint64_t key, uint64_t now)
{
	struct slot *victim = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *sl = probe(t, key, i);
		uint64_t k = atomic_load_explicit(&sl->key, memory_order_relaxed);
		if (k == key)
			return sl; /* inserted by another thread while we waited */
		if (k == 0) {
			publish(sl, key); /* its TAT is still 0 from the zeroed mapping */
			atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
			return sl;
		}
		if (victim == NULL && atomic_load_explicit(&sl->tat, memory_order_relaxed) <= now)
			victim = sl;
	}
	if (victim != NULL)
		publish(victim, key);
	return victim;
}

_Atomic uint64_t *
sg_ratetable_cell(struct sg_ratetable *t, uint64_t key, uint64_t now)
{
	/* Defensive: 0 marks an empty slot; fold it like sg_ratetable_key does. */
	key = key ? key : 1;
	struct slot *sl = find(t, key);
	if (sl != NULL)
		return &sl->tat;
	pthread_mutex_t *lock = &t->locks[shard_of(key)].m;
	pthread_mutex_lock(lock);
	sl = insert_locked(t, key, now);
	pthread_mutex_unlock(lock);
	return sl != NULL ? &sl->tat : NULL;
}

void
sg_ratetable_prefetch(const struct sg_ratetable *t, uint64_t key)
{
	__builtin_prefetch(probe(t, key ? key : 1, 0), 1, 3);
}

_Atomic uint64_t *
sg_ratetable_peek(struct sg_ratetable *t, uint64_t key)
{
	struct slot *sl = find(t, key ? key : 1);
	return sl != NULL ? &sl->tat : NULL;
}

static uint64_t
fnv1a(uint64_t h, const unsigned char *p)
{
	for (; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h;
}

/*
 * FNV-1a over "key_id NUL scope": NUL cannot occur inside either string, so
 * distinct pairs give distinct byte streams ("a","bc" vs "ab","c").  FNV
 * leaves the top bits, which pick the shard, poorly mixed; the splitmix64
 * finaliser spreads every input bit over the whole word.
 */
uint64_t
sg_ratetable_key(const char *key_id, const char *scope)
{
	uint64_t h = fnv1a(0xcbf29ce484222325ull, (const unsigned char *)key_id);
	h *= 0x100000001b3ull; /* the NUL separator: h ^ 0 == h */
	h = fnv1a(h, (const unsigned char *)scope);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h ? h : 1;
}

size_t
sg_ratetable_count(const struct sg_ratetable *t)
{
	return atomic_load_explicit(&t->count, memory_order_relaxed);
}
