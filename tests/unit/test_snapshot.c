/* The snapshot's key index: every stored key is found by its id, and nothing else is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../support/sg_fixture.h"
#include "core/sg_keys.h"

static void
test_every_key_is_found_by_its_id(void **state)
{
	(void)state;
	struct sg_fixture f;
	assert_int_equal(sg_fixture_init(&f, 600), 0);
	assert_int_equal(f.snap->n_keys, 600);
	for (size_t i = 0; i < f.n_keys; i++) {
		char id[SG_KEY_ID_LEN + 1], user[32];
		assert_int_equal(sg_key_parse(f.keys[i], strlen(f.keys[i]), id), 0);
		const struct sg_key_entry *k = sg_snapshot_key(f.snap, id);
		assert_non_null(k);
		assert_string_equal(k->id, id);
		snprintf(user, sizeof(user), "user%zu", i);
		assert_string_equal(k->user, user);
	}
	sg_fixture_free(&f);
}

static void
test_unknown_ids_are_not_found(void **state)
{
	(void)state;
	struct sg_fixture f;
	assert_int_equal(sg_fixture_init(&f, 50), 0);
	for (size_t i = 0; i < f.n_keys; i++) {
		char id[SG_KEY_ID_LEN + 1];
		assert_int_equal(sg_key_parse(f.keys[i], strlen(f.keys[i]), id), 0);
		/* One character off, one shorter, and one longer: none is a stored id. */
		id[SG_KEY_ID_LEN - 1] = id[SG_KEY_ID_LEN - 1] == 'a' ? 'b' : 'a';
		assert_null(sg_snapshot_key(f.snap, id));
		id[SG_KEY_ID_LEN - 1] = '\0';
		assert_null(sg_snapshot_key(f.snap, id));
	}
	assert_null(sg_snapshot_key(f.snap, ""));
	assert_null(sg_snapshot_key(f.snap, "0123456789abcdefX"));
	sg_fixture_free(&f);
}

static void
test_a_store_without_keys_finds_nothing(void **state)
{
	(void)state;
	struct sg_fixture f;
	assert_int_equal(sg_fixture_init(&f, 0), 0);
	assert_int_equal(f.snap->n_keys, 0);
	assert_null(sg_snapshot_key(f.snap, "0123456789abcdef"));
	sg_fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_is_found_by_its_id),
	    cmocka_unit_test(test_unknown_ids_are_not_found),
	    cmocka_unit_test(test_a_store_without_keys_finds_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
