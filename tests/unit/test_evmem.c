/* sg_evmem: libevent's per-thread size-class allocator. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sg_evmem.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define ASAN 1
#endif
#endif

/* Under ASan a free block is poisoned and a live one is readable for what was asked only. */
static void
test_free_blocks_are_poisoned(void **state)
{
	(void)state;
#ifdef ASAN
	char *a = sg_evmem_malloc(40);
	assert_false(__asan_address_is_poisoned(a));
	assert_false(__asan_address_is_poisoned(a + 39));
	assert_true(__asan_address_is_poisoned(a + 40));
	sg_evmem_free(a);
	assert_true(__asan_address_is_poisoned(a));
	char *b = sg_evmem_malloc(60);
	assert_ptr_equal(a, b);
	assert_false(__asan_address_is_poisoned(b + 59));
	sg_evmem_free(b);
#else
	skip();
#endif
}

static void
test_a_freed_block_is_the_next_of_its_class(void **state)
{
	(void)state;
	size_t before = sg_evmem_cached();
	char *a = sg_evmem_malloc(40);
	assert_non_null(a);
	assert_int_equal((uintptr_t)a % 16, 0);
	memset(a, 'x', 40);
	sg_evmem_free(a);
	assert_int_equal(sg_evmem_cached(), before + 1);
	/* 50 bytes is the same class (64) as 40: the same block comes back. */
	char *b = sg_evmem_malloc(50);
	assert_ptr_equal(a, b);
	assert_int_equal(sg_evmem_cached(), before);
	/* Another class does not take it. */
	sg_evmem_free(b);
	char *c = sg_evmem_malloc(200);
	assert_ptr_not_equal(c, b);
	sg_evmem_free(c);
	sg_evmem_free(NULL);
}

static void
test_realloc_keeps_the_contents(void **state)
{
	(void)state;
	char *p = sg_evmem_realloc(NULL, 10);
	assert_non_null(p);
	memcpy(p, "0123456789", 10);
	char *q = sg_evmem_realloc(p, 30); /* still the 32-byte class: in place */
	assert_ptr_equal(p, q);
	char *r = sg_evmem_realloc(q, 3000); /* another class: moved and copied */
	assert_memory_equal(r, "0123456789", 10);
	char *big = sg_evmem_realloc(r, 100000); /* past the classes: plain heap */
	assert_memory_equal(big, "0123456789", 10);
	big[99999] = 'z';
	char *bigger = sg_evmem_realloc(big, 200000);
	assert_memory_equal(bigger, "0123456789", 10);
	assert_int_equal(bigger[99999], 'z');
	size_t before = sg_evmem_cached();
	sg_evmem_free(bigger); /* a big block is never kept */
	assert_int_equal(sg_evmem_cached(), before);
}

static void
test_lists_are_capped(void **state)
{
	(void)state;
	enum { N = 2000 };
	static void *blocks[N];
	for (int i = 0; i < N; i++)
		assert_non_null(blocks[i] = sg_evmem_malloc(100));
	size_t before = sg_evmem_cached();
	for (int i = 0; i < N; i++)
		sg_evmem_free(blocks[i]);
	size_t kept = sg_evmem_cached() - before;
	assert_true(kept > 0 && kept < N);
}

static void *
free_elsewhere(void *p)
{
	sg_evmem_free(p);
	return (void *)sg_evmem_cached();
}

static void
test_a_block_freed_on_another_thread_joins_its_lists(void **state)
{
	(void)state;
	void *p = sg_evmem_malloc(500);
	pthread_t t;
	void *cached;
	assert_int_equal(pthread_create(&t, NULL, free_elsewhere, p), 0);
	assert_int_equal(pthread_join(t, &cached), 0);
	assert_int_equal((size_t)cached, 1); /* and the thread's lists died with it */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_freed_block_is_the_next_of_its_class),
	    cmocka_unit_test(test_free_blocks_are_poisoned),
	    cmocka_unit_test(test_realloc_keeps_the_contents),
	    cmocka_unit_test(test_lists_are_capped),
	    cmocka_unit_test(test_a_block_freed_on_another_thread_joins_its_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
