/* The snapshot's key index: every stored key is found by its id, and nothing else is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/sg_fixture.h"
#include "core/sg_diag.h"
#include "core/sg_keys.h"
#include "store/sg_store.h"
#include "throttle/sg_adaptive.h"

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

/* The live documents, with the crm connector's upstream_concurrency set to `conc`. */
static struct sg_store_doc *
docs_with_crm_concurrency(struct sg_store *st, const char *conc, size_t *n)
{
	struct sg_store_doc *docs;
	assert_int_equal(sg_store_live_docs(st, &docs, n), 0);
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(docs[i].kind, "connector") != 0 || strcmp(docs[i].name, "crm") != 0)
			continue;
		char *text = NULL;
		assert_true(asprintf(&text, "%supstream_concurrency: %s\n", docs[i].text, conc) > 0);
		free(docs[i].text);
		docs[i].text = text;
	}
	return docs;
}

static const struct sg_adaptive *
crm_adaptive(const struct sg_defs *defs)
{
	for (size_t i = 0; i < defs->catalog->n; i++)
		if (strcmp(defs->catalog->v[i]->name, "crm") == 0)
			return defs->catalog->v[i]->adaptive;
	return NULL;
}

/*
 * A reload that fails after a connector changed its upstream concurrency
 * leaves the live limit alone; only publishing a snapshot changes it.
 */
static void
test_a_failed_reload_leaves_live_upstream_limits_alone(void **state)
{
	(void)state;
	struct sg_fixture f;
	struct sg_diags d = {0};
	size_t n;
	assert_int_equal(sg_fixture_init(&f, 0), 0);
	struct sg_store_doc *docs = docs_with_crm_concurrency(f.store, "{ initial: 8, max: 64 }", &n);
	struct sg_defs *live = sg_defs_build(docs, n, 1, &d);
	sg_store_docs_free(docs, n);
	assert_non_null(live);
	const struct sg_adaptive *a = crm_adaptive(live);
	assert_non_null(a);
	struct sg_snapshot *snap = calloc(1, sizeof(*snap));
	snap->refs = 1;
	snap->defs = live;
	sg_snapshot_publish(snap);
	assert_int_equal(a->limit_now, 8);
	assert_int_equal(a->cfg.max, 64);

	/* The connector narrows its limit, and a policy in the same build is broken. */
	docs = docs_with_crm_concurrency(f.store, "{ initial: 2, max: 4 }", &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(docs[i].kind, "policy") == 0) {
			free(docs[i].text);
			docs[i].text = strdup("kind: policy\nname: default\nroles: 5\n");
		}
	assert_null(sg_defs_build(docs, n, 1, &d));
	assert_true(d.n > 0);
	assert_int_equal(a->limit_now, 8);
	assert_int_equal(a->cfg.max, 64);
	sg_store_docs_free(docs, n);
	sg_diags_free(&d);

	/* The same change, built whole and published, takes effect. */
	docs = docs_with_crm_concurrency(f.store, "{ initial: 2, max: 4 }", &n);
	struct sg_defs *next = sg_defs_build(docs, n, 1, &d);
	sg_store_docs_free(docs, n);
	assert_non_null(next);
	assert_ptr_equal(crm_adaptive(next), a);
	assert_int_equal(a->cfg.max, 64);
	snap = calloc(1, sizeof(*snap));
	snap->refs = 1;
	snap->defs = next;
	sg_snapshot_publish(snap);
	assert_int_equal(a->cfg.max, 4);
	assert_int_equal(a->limit_now, 4);
	sg_snapshot_unpublish();
	sg_fixture_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_is_found_by_its_id),
	    cmocka_unit_test(test_unknown_ids_are_not_found),
	    cmocka_unit_test(test_a_store_without_keys_finds_nothing),
	    cmocka_unit_test(test_a_failed_reload_leaves_live_upstream_limits_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
