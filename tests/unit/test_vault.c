/* sg_vault: sealed connector credentials and the master key's sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "../support/sg_testdir.h"
#include "core/sg_vault.h"

static const char secret[] = "sk_live_0123456789abcdef";

static void
test_key(struct sg_vault_key *k, unsigned char fill)
{
	unsigned char raw[SG_VAULT_KEY_LEN];
	memset(raw, fill, sizeof(raw));
	sg_vault_key_from(k, raw);
}

static void
test_a_sealed_secret_opens_only_as_it_was(void **state)
{
	(void)state;
	struct sg_vault_key k, other;
	unsigned char *rec;
	size_t rec_len, n;
	char *plain, err[256];
	test_key(&k, 1);
	test_key(&other, 2);
	assert_int_equal(strlen(k.id), SG_VAULT_KEY_ID_LEN);
	assert_string_not_equal(k.id, other.id);
	assert_int_equal(sg_vault_seal(&k, "crm", secret, strlen(secret), &rec, &rec_len), 0);
	/* The credential is nowhere in the record. */
	assert_null(memmem(rec, rec_len, secret, strlen(secret)));
	assert_int_equal(sg_vault_open(&k, "crm", rec, rec_len, &plain, &n, err, sizeof(err)), 0);
	assert_int_equal(n, strlen(secret));
	assert_string_equal(plain, secret);
	sg_vault_free(plain, n);

	/* Under another name: refused, so a record cannot be moved to another connector. */
	assert_int_equal(sg_vault_open(&k, "mail", rec, rec_len, &plain, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "altered or belongs to another name"));
	/* Another key: named, with both ids. */
	assert_int_equal(sg_vault_open(&other, "crm", rec, rec_len, &plain, &n, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, k.id));
	assert_non_null(strstr(err, other.id));
	/* Every byte of the sealed part is covered. */
	for (size_t i = 4 + SG_VAULT_KEY_ID_LEN; i < rec_len; i++) {
		rec[i] ^= 0x40;
		assert_int_equal(sg_vault_open(&k, "crm", rec, rec_len, &plain, &n, err, sizeof(err)),
		                 -1);
		rec[i] ^= 0x40;
	}
	assert_int_equal(sg_vault_open(&k, "crm", rec, 10, &plain, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a sealed record"));
	free(rec);
}

static void
test_two_seals_differ(void **state)
{
	(void)state;
	struct sg_vault_key k;
	unsigned char *a, *b;
	size_t an, bn;
	test_key(&k, 3);
	assert_int_equal(sg_vault_seal(&k, "crm", secret, strlen(secret), &a, &an), 0);
	assert_int_equal(sg_vault_seal(&k, "crm", secret, strlen(secret), &b, &bn), 0);
	assert_int_equal(an, bn);
	assert_memory_not_equal(a, b, an); /* a fresh nonce each time */
	free(a);
	free(b);
}

static void
test_the_key_file_is_made_once_and_kept_private(void **state)
{
	(void)state;
	char dir[256], path[300], err[512];
	struct sg_vault_key first, again;
	struct stat st;
	assert_int_equal(sg_testdir_make(dir, sizeof(dir), "vault"), 0);
	unsetenv("SANDGATE_MASTER_KEY");
	unsetenv("SANDGATE_MASTER_KEY_FILE");
	assert_int_equal(sg_vault_key_load(&first, dir, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/master.key", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sg_vault_key_load(&again, dir, err, sizeof(err)), 0);
	assert_memory_equal(first.key, again.key, SG_VAULT_KEY_LEN);
	assert_string_equal(first.id, again.id);

	/* Readable by others: refused, with what to do. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sg_vault_key_load(&again, dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);

	/* SANDGATE_MASTER_KEY_FILE points elsewhere; the environment's key comes first. */
	char other[300];
	snprintf(other, sizeof(other), "%s/elsewhere.key", dir);
	setenv("SANDGATE_MASTER_KEY_FILE", other, 1);
	assert_int_equal(sg_vault_key_load(&again, dir, err, sizeof(err)), 0);
	assert_string_not_equal(first.id, again.id);
	assert_int_equal(stat(other, &st), 0);
	char b64[64];
	sodium_bin2base64(b64, sizeof(b64), first.key, SG_VAULT_KEY_LEN,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	setenv("SANDGATE_MASTER_KEY", b64, 1);
	assert_int_equal(sg_vault_key_load(&again, dir, err, sizeof(err)), 0);
	assert_string_equal(first.id, again.id);
	setenv("SANDGATE_MASTER_KEY", "not a key", 1);
	assert_int_equal(sg_vault_key_load(&again, dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "SANDGATE_MASTER_KEY does not hold a master key"));
	unsetenv("SANDGATE_MASTER_KEY");
	unsetenv("SANDGATE_MASTER_KEY_FILE");
	sg_vault_key_wipe(&first);
	sg_vault_key_wipe(&again);
	sg_testdir_remove(dir);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_sealed_secret_opens_only_as_it_was),
	    cmocka_unit_test(test_two_seals_differ),
	    cmocka_unit_test(test_the_key_file_is_made_once_and_kept_private),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
