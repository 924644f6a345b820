/* Rate table: lookup, eviction of refilled cells only, stability, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "throttle/sg_gcra.h"
#include "throttle/sg_ratetable.h"

#define NOW 1000000000000ull
#define PROBE 32 /* the table's probe window, which the eviction tests fill */

/* A key landing in shard `shard` whose probe starts at slot `slot`. */
static uint64_t
key_at(uint64_t shard, uint64_t slot)
{
	return shard << 58 | slot;
}

static void
test_same_key_same_cell(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(1000);
	assert_non_null(t);
	uint64_t k = sg_ratetable_key("key_1", "crm");
	assert_null(sg_ratetable_peek(t, k));
	assert_int_equal(sg_ratetable_count(t), 0);
	_Atomic uint64_t *c = sg_ratetable_cell(t, k, NOW);
	assert_non_null(c);
	assert_int_equal(atomic_load(c), 0); /* never seen */
	assert_ptr_equal(sg_ratetable_cell(t, k, NOW), c);
	assert_ptr_equal(sg_ratetable_peek(t, k), c);
	assert_int_equal(sg_ratetable_count(t), 1);
	sg_ratetable_free(t);
	sg_ratetable_free(NULL);
}

static void
test_different_keys_different_cells(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(4096);
	enum { N = 1000 };
	static _Atomic uint64_t *cells[N];
	for (uint64_t i = 0; i < N; i++) {
		cells[i] = sg_ratetable_cell(t, i * 0x9e3779b97f4a7c15ull + 1, NOW);
		assert_non_null(cells[i]);
		atomic_store(cells[i], i + 1);
	}
	assert_int_equal(sg_ratetable_count(t), N);
	for (uint64_t i = 0; i < N; i++) {
		assert_ptr_equal(sg_ratetable_peek(t, i * 0x9e3779b97f4a7c15ull + 1), cells[i]);
		assert_int_equal(atomic_load(cells[i]), i + 1); /* no two keys share a cell */
	}
	sg_ratetable_free(t);
}

static void
test_key_hash(void **state)
{
	(void)state;
	uint64_t k = sg_ratetable_key("key_1", "crm");
	assert_true(k != 0);
	assert_true(k == sg_ratetable_key("key_1", "crm"));
	assert_true(k != sg_ratetable_key("key_1", "crn"));
	assert_true(k != sg_ratetable_key("key_2", "crm"));
	assert_true(k != sg_ratetable_key("crm", "key_1"));
	/* The separator keeps the pair apart however the bytes are split. */
	assert_true(sg_ratetable_key("ab", "c") != sg_ratetable_key("a", "bc"));
	assert_true(sg_ratetable_key("a\xff", "b") != sg_ratetable_key("a", "\xff" "b"));
	assert_true(sg_ratetable_key("", "") != sg_ratetable_key("", "x"));
	/* Shards come from the top 6 bits: 64 scopes should not pile into a few. */
	unsigned used[64] = {0}, distinct = 0;
	char scope[8];
	for (int i = 0; i < 640; i++) {
		scope[0] = (char)('a' + i % 26);
		scope[1] = (char)('a' + i / 26 % 26);
		scope[2] = '\0';
		used[sg_ratetable_key("key_1", scope) >> 58]++;
	}
	for (int i = 0; i < 64; i++)
		distinct += used[i] > 0;
	assert_in_range(distinct, 60, 64);
}

static void
test_window_full_of_live_cells_fails_closed(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(0); /* the minimum: PROBE slots a shard */
	assert_non_null(t);
	_Atomic uint64_t *cells[PROBE];
	/* N-1 and N keys fit in one window... */
	for (uint64_t i = 0; i < PROBE; i++) {
		cells[i] = sg_ratetable_cell(t, key_at(5, i), NOW);
		assert_non_null(cells[i]);
		atomic_store(cells[i], NOW + 1); /* draining: one ns short of full */
	}
	assert_int_equal(sg_ratetable_count(t), PROBE);
	/* ...N+1 finds every slot live and gets nothing. */
	assert_null(sg_ratetable_cell(t, key_at(5, PROBE), NOW));
	assert_null(sg_ratetable_peek(t, key_at(5, PROBE)));
	/* Other shards are unaffected. */
	assert_non_null(sg_ratetable_cell(t, key_at(6, PROBE), NOW));
	for (uint64_t i = 0; i < PROBE; i++)
		assert_ptr_equal(sg_ratetable_peek(t, key_at(5, i)), cells[i]);

	/* A TAT exactly at now has refilled: that slot, and only it, is reused. */
	atomic_store(cells[9], NOW);
	_Atomic uint64_t *c = sg_ratetable_cell(t, key_at(5, PROBE), NOW);
	assert_ptr_equal(c, cells[9]);
	assert_ptr_equal(sg_ratetable_peek(t, key_at(5, PROBE)), cells[9]);
	assert_null(sg_ratetable_peek(t, key_at(5, 9)));
	assert_int_equal(atomic_load(c), NOW); /* as good as fresh: not rewritten */
	assert_int_equal(sg_ratetable_count(t), PROBE + 1); /* + shard 6; eviction adds none */
	for (uint64_t i = 0; i < PROBE; i++)
		if (i != 9)
			assert_ptr_equal(sg_ratetable_peek(t, key_at(5, i)), cells[i]);
	/* Once the new owner spends, the evicted key has nowhere to go. */
	atomic_store(c, NOW + 1);
	assert_null(sg_ratetable_cell(t, key_at(5, 9), NOW));
	sg_ratetable_free(t);
}

static void
test_eviction_takes_the_first_refilled_and_prefers_empty(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(0);
	_Atomic uint64_t *a = sg_ratetable_cell(t, key_at(1, 1), NOW);
	_Atomic uint64_t *b = sg_ratetable_cell(t, key_at(1, 2), NOW);
	assert_ptr_not_equal(a, b);
	/* `a` is refilled (never used), but slot 3 is empty: no eviction. */
	_Atomic uint64_t *c = sg_ratetable_cell(t, key_at(1, 1 + PROBE), NOW);
	assert_non_null(c);
	assert_ptr_not_equal(c, a);
	assert_ptr_not_equal(c, b);
	assert_ptr_equal(sg_ratetable_peek(t, key_at(1, 1)), a);
	/* Fill the shard with live cells, then let two refill. */
	for (uint64_t i = 4; i < PROBE + 1; i++)
		atomic_store(sg_ratetable_cell(t, key_at(1, i), NOW), NOW + 1000);
	atomic_store(a, NOW + 1000);
	atomic_store(b, NOW + 1000);
	atomic_store(c, NOW + 1000);
	assert_null(sg_ratetable_cell(t, key_at(1, 7 + PROBE), NOW));
	_Atomic uint64_t *s12 = sg_ratetable_peek(t, key_at(1, 12));
	_Atomic uint64_t *s20 = sg_ratetable_peek(t, key_at(1, 20));
	atomic_store(s20, NOW - 5);
	atomic_store(s12, NOW - 5);
	/* Probing from slot 7 meets 12 before 20. */
	assert_ptr_equal(sg_ratetable_cell(t, key_at(1, 7 + PROBE), NOW), s12);
	atomic_store(s12, NOW + 1000);
	assert_ptr_equal(sg_ratetable_cell(t, key_at(1, 8 + PROBE), NOW), s20);
	atomic_store(s20, NOW + 1000);
	assert_null(sg_ratetable_cell(t, key_at(1, 9 + PROBE), NOW));
	sg_ratetable_free(t);
}

static void
test_key_never_zero(void **state)
{
	(void)state;
	char id[32], scope[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(id, sizeof(id), "%016x", (unsigned)i * 2654435761u);
		snprintf(scope, sizeof(scope), "c%d", i % 37);
		uint64_t k = sg_ratetable_key(id, scope);
		if (k == 0)
			fail_msg("key 0 for (%s, %s)", id, scope);
		assert_true(k == sg_ratetable_key(id, scope)); /* a pure function */
	}
	assert_true(sg_ratetable_key("", "") != 0);
	assert_true(sg_ratetable_key("a", "bc") != sg_ratetable_key("ab", "c"));
}

static void
test_count_once_per_new_key(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(1000);
	assert_non_null(t);
	for (size_t i = 0; i < 50; i++) {
		char id[16];
		snprintf(id, sizeof(id), "key_%zu", i);
		uint64_t k = sg_ratetable_key(id, "mail");
		assert_null(sg_ratetable_peek(t, k));
		assert_int_equal(sg_ratetable_count(t), i); /* a peek creates nothing */
		_Atomic uint64_t *c = sg_ratetable_cell(t, k, NOW);
		assert_non_null(c);
		assert_int_equal(sg_ratetable_count(t), i + 1);
		assert_ptr_equal(sg_ratetable_cell(t, k, NOW), c); /* a hit adds nothing */
		assert_ptr_equal(sg_ratetable_cell(t, k, NOW + 5), c);
		assert_int_equal(sg_ratetable_count(t), i + 1);
	}
	sg_ratetable_free(t);
}

/*
 * Capacity 1 rounds up to PROBE slots a shard.  The raw keys share their top
 * 6 bits (shard 17) and have consecutive low bits, so they fill one probe
 * window exactly; the new key starts at the window's last slot and wraps.
 */
static void
test_tiny_table_full_window(void **state)
{
	(void)state;
	const struct sg_gcra_limit l = {.emission_ns = 1000, .burst = 4};
	struct sg_ratetable *t = sg_ratetable_new(1);
	assert_non_null(t);
	_Atomic uint64_t *cells[PROBE];
	for (uint64_t i = 0; i < PROBE; i++) {
		cells[i] = sg_ratetable_cell(t, key_at(17, i), NOW);
		assert_non_null(cells[i]); /* N-1 and then N keys fit */
		for (uint64_t j = 0; j < i; j++)
			assert_ptr_not_equal(cells[i], cells[j]);
		/* A draining bucket: spend the whole burst, so its TAT is in the future. */
		for (int n = 0; n < 4; n++)
			assert_true(sg_gcra_take(&l, cells[i], NOW, 1).allowed);
	}
	assert_int_equal(sg_ratetable_count(t), PROBE);
	const uint64_t fresh = key_at(17, PROBE - 1 + PROBE);
	assert_null(sg_ratetable_cell(t, fresh, NOW)); /* N+1: fail closed */
	assert_null(sg_ratetable_cell(t, fresh, NOW + 4000 - 1)); /* one ns before any refill */
	assert_null(sg_ratetable_peek(t, fresh));
	assert_int_equal(sg_ratetable_count(t), PROBE);

	/* One bucket has refilled: its TAT is at or before now. */
	atomic_store(cells[3], NOW - 1);
	_Atomic uint64_t *c = sg_ratetable_cell(t, fresh, NOW);
	assert_ptr_equal(c, cells[3]);
	assert_null(sg_ratetable_peek(t, key_at(17, 3)));
	assert_int_equal(sg_ratetable_count(t), PROBE);
	/*
	 * The new key's bucket is fresh: the TAT is left as it was (at or before
	 * now, see sg_ratetable.c), and GCRA decides on it exactly as on 0.
	 */
	uint64_t tat = atomic_load(c), a, b;
	assert_true(tat <= NOW);
	struct sg_gcra_result on_cell = sg_gcra_decide(&l, tat, NOW, 1, &a);
	struct sg_gcra_result on_zero = sg_gcra_decide(&l, 0, NOW, 1, &b);
	assert_true(on_cell.allowed && on_zero.allowed);
	assert_int_equal(on_cell.remaining, on_zero.remaining);
	assert_int_equal(on_cell.reset_ns, on_zero.reset_ns);
	assert_int_equal(a, b);
	for (int n = 0; n < 4; n++)
		assert_true(sg_gcra_take(&l, c, NOW, 1).allowed); /* a whole burst */
	assert_false(sg_gcra_take(&l, c, NOW, 1).allowed);
	/*
	 * The window is full again.  At NOW + 4000 every bucket has refilled;
	 * the evicted key probes from slot 3 and takes the first one it meets.
	 */
	assert_null(sg_ratetable_cell(t, key_at(17, 3), NOW));
	assert_null(sg_ratetable_cell(t, key_at(17, 3), NOW + 4000 - 1));
	assert_ptr_equal(sg_ratetable_cell(t, key_at(17, 3), NOW + 4000), cells[3]);
	assert_null(sg_ratetable_peek(t, fresh));
	sg_ratetable_free(t);
}

static void
test_cell_pointers_stay_put(void **state)
{
	(void)state;
	struct sg_ratetable *t = sg_ratetable_new(20000);
	uint64_t k = sg_ratetable_key("early", "crm");
	_Atomic uint64_t *c = sg_ratetable_cell(t, k, NOW);
	atomic_store(c, NOW + 77);
	size_t made = 0;
	for (int i = 0; i < 19000; i++) {
		char id[32];
		snprintf(id, sizeof(id), "key_%d", i);
		made += sg_ratetable_cell(t, sg_ratetable_key(id, "crm"), NOW) != NULL;
	}
	assert_in_range(made, 18000, 19000);
	assert_ptr_equal(sg_ratetable_peek(t, k), c);
	assert_ptr_equal(sg_ratetable_cell(t, k, NOW), c);
	assert_int_equal(atomic_load(c), NOW + 77);
	sg_ratetable_free(t);
}

static void
test_sizes(void **state)
{
	(void)state;
	assert_null(sg_ratetable_new(SIZE_MAX));
	assert_null(sg_ratetable_new(SIZE_MAX / 2));
	struct sg_ratetable *t = sg_ratetable_new(1000000);
	assert_non_null(t);
	assert_int_equal(sg_ratetable_count(t), 0);
	/* Key 0 is reserved for empty slots; it is folded onto 1 like the hash does. */
	_Atomic uint64_t *one = sg_ratetable_cell(t, 1, NOW);
	assert_ptr_equal(sg_ratetable_cell(t, 0, NOW), one);
	assert_ptr_equal(sg_ratetable_peek(t, 0), one);
	sg_ratetable_free(t);
}

enum { THREADS = 4, TRIES = 20000, BURST = 5000, KEYS = 2000 };

struct race {
	struct sg_ratetable *t;
	pthread_barrier_t go;
	_Atomic uint64_t *shared;
	_Atomic uint64_t *seen[THREADS][KEYS];
	unsigned admitted[THREADS];
};

struct racer_arg {
	struct race *r;
	unsigned id;
};

static void *
racer(void *arg)
{
	struct race *r = ((struct racer_arg *)arg)->r;
	unsigned id = ((struct racer_arg *)arg)->id;
	const struct sg_gcra_limit l = {.emission_ns = 1000, .burst = BURST};
	pthread_barrier_wait(&r->go);
	/* Everyone creates the same keys at once: each must get one cell. */
	for (unsigned k = 0; k < KEYS; k++)
		r->seen[id][k] = sg_ratetable_cell(r->t, 0x9e3779b97f4a7c15ull * (k + 1), NOW);
	pthread_barrier_wait(&r->go);
	/* The clock is frozen, so exactly BURST takes can succeed in total. */
	for (unsigned i = 0; i < TRIES; i++)
		r->admitted[id] += sg_gcra_take(&l, r->shared, NOW, 1).allowed;
	return NULL;
}

static void
test_threads_lose_no_updates(void **state)
{
	(void)state;
	struct race *r = calloc(1, sizeof(*r));
	r->t = sg_ratetable_new(100000);
	r->shared = sg_ratetable_cell(r->t, sg_ratetable_key("hot", "crm"), NOW);
	pthread_barrier_init(&r->go, NULL, THREADS);
	pthread_t th[THREADS];
	struct racer_arg args[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		args[i] = (struct racer_arg){r, i};
		assert_int_equal(pthread_create(&th[i], NULL, racer, &args[i]), 0);
	}
	unsigned total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		total += r->admitted[i];
	}
	assert_int_equal(total, BURST);
	assert_int_equal(atomic_load(r->shared), NOW + (uint64_t)BURST * 1000);
	assert_int_equal(sg_ratetable_count(r->t), KEYS + 1);
	for (unsigned k = 0; k < KEYS; k++) {
		assert_non_null(r->seen[0][k]);
		for (int i = 1; i < THREADS; i++)
			assert_ptr_equal(r->seen[i][k], r->seen[0][k]);
	}
	pthread_barrier_destroy(&r->go);
	sg_ratetable_free(r->t);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_key_same_cell),
		cmocka_unit_test(test_different_keys_different_cells),
		cmocka_unit_test(test_key_hash),
		cmocka_unit_test(test_key_never_zero),
		cmocka_unit_test(test_count_once_per_new_key),
		cmocka_unit_test(test_tiny_table_full_window),
		cmocka_unit_test(test_window_full_of_live_cells_fails_closed),
		cmocka_unit_test(test_eviction_takes_the_first_refilled_and_prefers_empty),
		cmocka_unit_test(test_cell_pointers_stay_put),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_threads_lose_no_updates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
