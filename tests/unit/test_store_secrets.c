/* The store's sealed connector credentials: slots, AAD binding, promotion and re-sealing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "../support/sg_testdir.h"
#include "core/sg_vault.h"
#include "store/sg_store.h"
#include "upstream/sg_credential.h"

static const char planted[] = "sk_live_PLANTED_4242";
static const char planted_next[] = "sk_live_NEXT_9191";

struct fx {
	char dir[128];
	struct sg_store *s;
};

static int
setup(void **state)
{
	static struct fx f;
	char err[256];
	unsetenv("SANDGATE_MASTER_KEY");
	unsetenv("SANDGATE_MASTER_KEY_FILE");
	if (sg_testdir_make(f.dir, sizeof(f.dir), "secrets") != 0 || sodium_init() < 0)
		return -1;
	f.s = sg_store_open(f.dir, err, sizeof(err));
	*state = &f;
	return f.s ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sg_store_close(f->s);
	return sg_testdir_remove(f->dir);
}

static void
set(struct fx *f, const char *connector, const char *slot, const char *value, int64_t expires)
{
	char err[256], id[SG_VAULT_KEY_ID_LEN + 1];
	assert_int_equal(sg_store_secret_set(f->s, f->dir, connector, slot, value, strlen(value),
	                                     expires, id, err, sizeof(err)),
	                 0);
}

/* Opens what (connector, slot) holds with the data dir's master key; NULL when it does not open. */
static char *
open_slot(struct fx *f, const char *connector, const char *slot, const char *as_connector,
          const char *as_slot)
{
	unsigned char *rec;
	size_t rec_len, n;
	char aad[96], err[256], *plain = NULL, *out = NULL;
	struct sg_vault_key k;
	if (sg_store_secret_get_sealed(f->s, connector, slot, &rec, &rec_len, NULL) != 0)
		return NULL;
	assert_int_equal(sg_vault_key_load(&k, f->dir, err, sizeof(err)), 0);
	sg_secret_aad(aad, sizeof(aad), as_connector, as_slot);
	if (sg_vault_open(&k, aad, rec, rec_len, &plain, &n, err, sizeof(err)) == 0) {
		out = strdup(plain);
		sg_vault_free(plain, n);
	}
	sg_vault_key_wipe(&k);
	free(rec);
	return out;
}

static void
test_set_list_and_the_generation(void **state)
{
	struct fx *f = *state;
	struct sg_secret_row *rows;
	size_t n;
	int64_t g0, g1, g2;
	assert_int_equal(sg_store_secrets_generation(f->s, &g0), 0);
	set(f, "crm", "current", planted, 1900000000);
	assert_int_equal(sg_store_secrets_generation(f->s, &g1), 0);
	assert_true(g1 > g0);
	set(f, "crm", "next", planted_next, 0);
	set(f, "alpha", "current", "a:b", 0);
	assert_int_equal(sg_store_secrets_generation(f->s, &g2), 0);
	assert_true(g2 > g1);
	assert_int_equal(sg_store_secrets_list(f->s, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].connector, "alpha");
	assert_string_equal(rows[1].connector, "crm");
	assert_string_equal(rows[1].slot, "current");
	assert_int_equal(rows[1].expires_at, 1900000000);
	assert_string_equal(rows[2].slot, "next");
	assert_int_equal(rows[2].expires_at, 0);
	assert_int_equal(strlen(rows[1].key_id), SG_VAULT_KEY_ID_LEN);
	free(rows);
	char *v = open_slot(f, "crm", "current", "crm", "current");
	assert_string_equal(v, planted);
	free(v);
	/* Delete: once, then there is nothing. */
	assert_int_equal(sg_store_secret_delete(f->s, "alpha", "current"), 0);
	assert_int_equal(sg_store_secret_delete(f->s, "alpha", "current"), 1);
}

static void
test_a_record_moved_to_another_row_does_not_open(void **state)
{
	struct fx *f = *state;
	unsigned char *rec;
	size_t rec_len;
	char err[256];
	set(f, "crm", "current", planted, 0);
	assert_int_equal(sg_store_secret_get_sealed(f->s, "crm", "current", &rec, &rec_len, NULL),
	                 0);
	assert_null(memmem(rec, rec_len, planted, strlen(planted)));
	/* Copied as it is to another connector, and to the other slot. */
	assert_int_equal(sg_store_secret_put_sealed(f->s, "mail", "current", rec, rec_len, 0), 0);
	assert_int_equal(sg_store_secret_put_sealed(f->s, "crm", "next", rec, rec_len, 0), 0);
	free(rec);
	assert_null(open_slot(f, "mail", "current", "mail", "current"));
	assert_null(open_slot(f, "crm", "next", "crm", "next"));
	/* A gateway refuses the whole table and keeps the one it had. */
	struct sg_credstore *cs = sg_credstore_new(f->dir, 0);
	assert_non_null(cs);
	assert_int_equal(sg_credstore_refresh(cs, f->s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "altered or belongs to another name"));
	assert_null(strstr(err, planted));
	sg_credstore_free(cs);
}

static void
test_promote_moves_next_to_current(void **state)
{
	struct fx *f = *state;
	char err[256];
	set(f, "crm", "current", planted, 0);
	assert_int_equal(sg_store_secret_promote(f->s, f->dir, "crm", err, sizeof(err)), 1);
	set(f, "crm", "next", planted_next, 1900000000);
	assert_int_equal(sg_store_secret_promote(f->s, f->dir, "crm", err, sizeof(err)), 0);
	char *v = open_slot(f, "crm", "current", "crm", "current");
	assert_string_equal(v, planted_next);
	free(v);
	assert_null(open_slot(f, "crm", "next", "crm", "next"));
	struct sg_secret_row *rows;
	size_t n;
	assert_int_equal(sg_store_secrets_list(f->s, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].expires_at, 1900000000);
	free(rows);
}

struct swap {
	const char *path;
	const char *old_id;
	int fail_after; /* 1: put the file in place, then fail, as a COMMIT that does not happen */
};

static int
swap_file(void *arg, char *err, size_t errlen)
{
	struct swap *sw = arg;
	if (sg_vault_key_commit_new(sw->path, sw->old_id, err, errlen) != 0)
		return -1;
	return sw->fail_after ? -1 : 0;
}

static void
load_into(struct fx *f, struct sg_credstore **cs)
{
	char err[256];
	*cs = sg_credstore_new(f->dir, 0);
	assert_non_null(*cs);
	assert_int_equal(sg_credstore_refresh(*cs, f->s, err, sizeof(err)), 0);
	assert_true(sg_credential_has_next(*cs, "crm"));
}

static void
test_reseal_moves_every_record_to_the_new_key(void **state)
{
	struct fx *f = *state;
	struct sg_vault_key old, next;
	char err[256], path[512], oldfile[600];
	size_t n;
	set(f, "crm", "current", planted, 0);
	set(f, "crm", "next", planted_next, 0);
	assert_int_equal(sg_vault_key_load(&old, f->dir, err, sizeof(err)), 0);
	assert_int_equal(sg_vault_key_path(f->dir, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(sg_vault_key_prepare_new(&next, path, err, sizeof(err)), 0);
	assert_string_not_equal(old.id, next.id);
	struct swap sw = {path, old.id, 0};
	assert_int_equal(
	    sg_store_secrets_reseal(f->s, f->dir, &next, swap_file, &sw, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sg_vault_key_drop_old(path, old.id, err, sizeof(err)), 0);
	snprintf(oldfile, sizeof(oldfile), "%s.old-%s", path, old.id);
	assert_int_not_equal(access(oldfile, F_OK), 0);

	/* Every record names the new key, which the key file now holds. */
	struct sg_secret_row *rows;
	assert_int_equal(sg_store_secrets_list(f->s, &rows, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(rows[i].key_id, next.id);
	free(rows);
	struct sg_vault_key now;
	assert_int_equal(sg_vault_key_load(&now, f->dir, err, sizeof(err)), 0);
	assert_string_equal(now.id, next.id);
	char *v = open_slot(f, "crm", "next", "crm", "next");
	assert_string_equal(v, planted_next);
	free(v);
	/* The old key opens none of them. */
	unsigned char *rec;
	size_t rec_len, pn;
	char *plain;
	assert_int_equal(sg_store_secret_get_sealed(f->s, "crm", "current", &rec, &rec_len, NULL),
	                 0);
	assert_int_equal(
	    sg_vault_open(&old, "crm/current", rec, rec_len, &plain, &pn, err, sizeof(err)), -1);
	free(rec);
	struct sg_credstore *cs;
	load_into(f, &cs);
	sg_credstore_free(cs);
	sg_vault_key_wipe(&old);
	sg_vault_key_wipe(&next);
	sg_vault_key_wipe(&now);
}

/*
 * The key file moved but the transaction did not commit (a crash there):
 * the records still name the old key, which PATH.old-ID holds, so a
 * gateway still opens them all, and the next rotation finishes the job.
 */
static void
test_a_rotation_cut_short_loses_no_key(void **state)
{
	struct fx *f = *state;
	struct sg_vault_key old, next, again;
	char err[256], path[512];
	size_t n;
	set(f, "crm", "current", planted, 0);
	set(f, "crm", "next", planted_next, 0);
	assert_int_equal(sg_vault_key_load(&old, f->dir, err, sizeof(err)), 0);
	assert_int_equal(sg_vault_key_path(f->dir, path, sizeof(path), err, sizeof(err)), 0);
	assert_int_equal(sg_vault_key_prepare_new(&next, path, err, sizeof(err)), 0);
	struct swap sw = {path, old.id, 1};
	assert_int_equal(
	    sg_store_secrets_reseal(f->s, f->dir, &next, swap_file, &sw, &n, err, sizeof(err)), -1);
	struct sg_secret_row *rows;
	assert_int_equal(sg_store_secrets_list(f->s, &rows, &n), 0);
	assert_string_equal(rows[0].key_id, old.id);
	free(rows);
	struct sg_credstore *cs;
	load_into(f, &cs);
	sg_credstore_free(cs);

	/* The next rotation starts from the new file and still finds the old key by its id. */
	assert_int_equal(sg_vault_key_prepare_new(&again, path, err, sizeof(err)), 0);
	struct swap sw2 = {path, next.id, 0};
	assert_int_equal(
	    sg_store_secrets_reseal(f->s, f->dir, &again, swap_file, &sw2, &n, err, sizeof(err)),
	    0);
	char *v = open_slot(f, "crm", "current", "crm", "current");
	assert_string_equal(v, planted);
	free(v);
	sg_vault_key_wipe(&old);
	sg_vault_key_wipe(&next);
	sg_vault_key_wipe(&again);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_set_list_and_the_generation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_record_moved_to_another_row_does_not_open, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_promote_moves_next_to_current, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reseal_moves_every_record_to_the_new_key, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_rotation_cut_short_loses_no_key, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
