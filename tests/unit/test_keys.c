/* Key material: shape, parsing, keyed hashing, constant-time verify, the server secret file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sg_keys.h"

#define KEY_LEN 64 /* "sgk_" + 16 + "_" + 43 */

static void
make_key(char key[SG_KEY_MAX_LEN + 1], char id[SG_KEY_ID_LEN + 1])
{
	assert_int_equal(sg_key_generate(key, SG_KEY_MAX_LEN + 1, id), 0);
	assert_int_equal(strlen(key), KEY_LEN);
}

static int
parses(const char *key, size_t len)
{
	char id[SG_KEY_ID_LEN + 1];
	return sg_key_parse(key, len, id) == 0;
}

static void
test_generate_then_parse(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], key2[SG_KEY_MAX_LEN + 1];
	char id[SG_KEY_ID_LEN + 1], id2[SG_KEY_ID_LEN + 1], parsed[SG_KEY_ID_LEN + 1];
	make_key(key, id);
	make_key(key2, id2);
	assert_memory_equal(key, "sgk_", 4);
	assert_int_equal(key[4 + SG_KEY_ID_LEN], '_');
	assert_int_equal(strlen(id), SG_KEY_ID_LEN);
	assert_int_equal(strspn(id, "0123456789abcdef"), SG_KEY_ID_LEN);
	assert_memory_equal(key + 4, id, SG_KEY_ID_LEN);
	assert_int_equal(sg_key_parse(key, strlen(key), parsed), 0);
	assert_string_equal(parsed, id);
	/* Fresh randomness each time: neither the id nor the secret repeats. */
	assert_string_not_equal(id, id2);
	assert_string_not_equal(key + 21, key2 + 21);
}

static void
test_generate_needs_room(void **state)
{
	(void)state;
	char key[KEY_LEN], id[SG_KEY_ID_LEN + 1];
	assert_int_equal(sg_key_generate(key, sizeof(key), id), -1);
}

static void
test_parse_accepts_full_charset(void **state)
{
	(void)state;
	const char *k = "sgk_0123456789abcdef_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcde-_";
	char id[SG_KEY_ID_LEN + 1];
	assert_int_equal(strlen(k), KEY_LEN);
	assert_int_equal(sg_key_parse(k, strlen(k), id), 0);
	assert_string_equal(id, "0123456789abcdef");
}

/* Each case is the valid key with one change; the valid key itself must pass. */
static void
test_parse_rejects_shapes(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1], m[SG_KEY_MAX_LEN + 2];
	make_key(key, id);
	assert_true(parses(key, KEY_LEN));

	static const struct {
		size_t pos;
		char ch;
	} swaps[] = {
		{0, 'x'},  /* prefix */
		{0, 'S'},  /* prefix is lowercase */
		{3, '-'},  /* prefix separator */
		{4, 'g'},  /* id is hex */
		{5, 'A'},  /* id hex is lowercase */
		{19, 'F'}, /* last id character */
		{20, '-'}, /* id/secret separator */
		{21, '+'}, /* standard base64, not url-safe */
		{40, '/'},
		{63, '='}, /* padding */
		{30, ' '},
		{30, '.'},
		{10, '\0'}, /* embedded NUL inside the stated length */
		{63, '\0'},
	};
	for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
		memcpy(m, key, KEY_LEN + 1);
		m[swaps[i].pos] = swaps[i].ch;
		if (parses(m, KEY_LEN))
			fail_msg("accepted key with %#x at %zu", (unsigned)swaps[i].ch, swaps[i].pos);
	}
	assert_false(parses(key, KEY_LEN - 1)); /* short */
	memcpy(m, key, KEY_LEN);
	m[KEY_LEN] = 'A';
	m[KEY_LEN + 1] = '\0';
	assert_false(parses(m, KEY_LEN + 1)); /* long, with a valid extra character */
	assert_false(parses("", 0));
	assert_false(parses("sgk_", 4));
}

static void
test_hash_is_keyed(void **state)
{
	(void)state;
	uint8_t s1[SG_SERVER_SECRET_LEN], s2[SG_SERVER_SECRET_LEN];
	uint8_t h1[SG_KEY_HASH_LEN], h1b[SG_KEY_HASH_LEN], h2[SG_KEY_HASH_LEN];
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1];
	make_key(key, id);
	memset(s1, 1, sizeof(s1));
	memcpy(s2, s1, sizeof(s2));
	s2[31] ^= 1; /* one bit of the server secret */
	sg_key_hash(s1, key, KEY_LEN, h1);
	sg_key_hash(s1, key, KEY_LEN, h1b);
	sg_key_hash(s2, key, KEY_LEN, h2);
	assert_memory_equal(h1, h1b, SG_KEY_HASH_LEN);
	assert_memory_not_equal(h1, h2, SG_KEY_HASH_LEN);
}

static void
test_verify(void **state)
{
	(void)state;
	uint8_t secret[SG_SERVER_SECRET_LEN], stored[SG_KEY_HASH_LEN], other[SG_SERVER_SECRET_LEN];
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1], m[SG_KEY_MAX_LEN + 1];
	make_key(key, id);
	memset(secret, 7, sizeof(secret));
	memset(other, 8, sizeof(other));
	sg_key_hash(secret, key, KEY_LEN, stored);
	assert_int_equal(sg_key_verify(secret, key, KEY_LEN, stored), 1);
	assert_int_equal(sg_key_verify(other, key, KEY_LEN, stored), 0);
	/* Every single-character change, anywhere in the key, must fail. */
	for (size_t i = 0; i < KEY_LEN; i++) {
		memcpy(m, key, KEY_LEN + 1);
		m[i] = m[i] == 'a' ? 'b' : 'a';
		if (sg_key_verify(secret, m, KEY_LEN, stored) != 0)
			fail_msg("verified a key changed at %zu", i);
	}
	assert_int_equal(sg_key_verify(secret, key, KEY_LEN - 1, stored), 0);
	/* The whole stored hash counts, down to its last byte. */
	for (size_t i = 0; i < SG_KEY_HASH_LEN; i++) {
		uint8_t bad[SG_KEY_HASH_LEN];
		memcpy(bad, stored, sizeof(bad));
		bad[i] ^= 0x80;
		if (sg_key_verify(secret, key, KEY_LEN, bad) != 0)
			fail_msg("verified against a hash changed at byte %zu", i);
	}
}

static void
test_init_is_repeatable(void **state)
{
	(void)state;
	/* main already called it once; later calls are harmless and still succeed. */
	assert_int_equal(sg_keys_init(), 0);
	assert_int_equal(sg_keys_init(), 0);
}

/* The presented length is what counts: a NUL it covers is part of the key. */
static void
test_parse_length_includes_nul(void **state)
{
	(void)state;
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1];
	make_key(key, id);
	assert_int_equal(key[KEY_LEN], '\0');
	assert_true(parses(key, KEY_LEN));
	assert_false(parses(key, KEY_LEN + 1)); /* the terminator counted in */
	/* A NUL at any position inside the length: nothing treats the key as a C string. */
	for (size_t i = 0; i < KEY_LEN; i++) {
		char m[SG_KEY_MAX_LEN + 1];
		make_key(m, id);
		m[i] = '\0';
		if (parses(m, KEY_LEN))
			fail_msg("accepted a key with NUL at %zu", i);
	}
}

/* Keys that differ in one character, anywhere, never share a hash. */
static void
test_hash_differs_per_character(void **state)
{
	(void)state;
	uint8_t secret[SG_SERVER_SECRET_LEN], h[SG_KEY_HASH_LEN], hm[SG_KEY_HASH_LEN];
	char key[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1], m[SG_KEY_MAX_LEN + 1];
	make_key(key, id);
	memset(secret, 0x33, sizeof(secret));
	sg_key_hash(secret, key, KEY_LEN, h);
	for (size_t i = 0; i < KEY_LEN; i++) {
		memcpy(m, key, KEY_LEN + 1);
		m[i] = m[i] == 'Z' ? 'Y' : 'Z';
		sg_key_hash(secret, m, KEY_LEN, hm);
		if (memcmp(h, hm, sizeof(h)) == 0)
			fail_msg("same hash for a key changed at %zu", i);
	}
	/* The length is hashed too, not just the bytes up to a NUL. */
	sg_key_hash(secret, key, KEY_LEN - 1, hm);
	assert_memory_not_equal(h, hm, sizeof(h));
	/* And the same key under another secret hashes differently. */
	secret[0] ^= 1;
	sg_key_hash(secret, key, KEY_LEN, hm);
	assert_memory_not_equal(h, hm, sizeof(h));
}

/* ---- server secret file ---- */

static int
setup_dir(void **state)
{
	char *dir = strdup("/tmp/sg_test_keys.XXXXXX");
	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

/* Empties the directory, so a test that failed halfway still leaves nothing. */
static int
teardown_dir(void **state)
{
	char *dir = *state, path[512];
	DIR *d = opendir(dir);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	int rc = rmdir(dir);
	free(dir);
	return rc;
}

static void
secret_path(void **state, char *path, size_t n)
{
	snprintf(path, n, "%s/secret", (const char *)*state);
}

static void
write_file(const char *path, mode_t mode, size_t n)
{
	uint8_t buf[64];
	memset(buf, 0x5a, sizeof(buf));
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0); /* exact mode, whatever the umask */
	close(fd);
}

static void
test_secret_created_then_reloaded(void **state)
{
	char path[512];
	uint8_t a[SG_SERVER_SECRET_LEN], b[SG_SERVER_SECRET_LEN], zero[SG_SERVER_SECRET_LEN] = {0};
	struct stat st;
	secret_path(state, path, sizeof(path));
	assert_int_equal(sg_server_secret_load(path, a), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, SG_SERVER_SECRET_LEN);
	assert_memory_not_equal(a, zero, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(sg_server_secret_load(path, b), 0);
	assert_memory_equal(a, b, sizeof(a));
}

static void
test_secret_refuses_readable_by_others(void **state)
{
	char path[512];
	uint8_t out[SG_SERVER_SECRET_LEN], zero[SG_SERVER_SECRET_LEN] = {0};
	secret_path(state, path, sizeof(path));
	write_file(path, 0644, SG_SERVER_SECRET_LEN);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(sg_server_secret_load(path, out), -1);
	assert_memory_equal(out, zero, sizeof(out)); /* nothing half-loaded */
	write_file(path, 0640, SG_SERVER_SECRET_LEN);
	assert_int_equal(sg_server_secret_load(path, out), -1);
	/* The same file at 0600 loads, so the mode alone was the reason. */
	write_file(path, 0600, SG_SERVER_SECRET_LEN);
	assert_int_equal(sg_server_secret_load(path, out), 0);
	assert_int_equal(out[0], 0x5a);
}

static void
test_secret_refuses_wrong_size(void **state)
{
	char path[512];
	uint8_t out[SG_SERVER_SECRET_LEN];
	secret_path(state, path, sizeof(path));
	write_file(path, 0600, SG_SERVER_SECRET_LEN - 1);
	assert_int_equal(sg_server_secret_load(path, out), -1);
	write_file(path, 0600, SG_SERVER_SECRET_LEN + 1);
	assert_int_equal(sg_server_secret_load(path, out), -1);
	write_file(path, 0600, 0);
	assert_int_equal(sg_server_secret_load(path, out), -1);
}

static void
test_secret_missing_directory(void **state)
{
	char path[512];
	uint8_t out[SG_SERVER_SECRET_LEN];
	snprintf(path, sizeof(path), "%s/no/such/dir/secret", (const char *)*state);
	assert_int_equal(sg_server_secret_load(path, out), -1);
}

/*
 * Two `keys create` on a new data dir both find no secret and both make
 * one; each must end up with the same secret, whole.  Eight threads race
 * on a fresh path, 100 times, and no private copy is left behind.
 */
#define RACERS 8

struct racer {
	atomic_bool *go;
	const char *path;
	uint8_t secret[SG_SERVER_SECRET_LEN];
	int rc;
};

/* A spin on a flag, not a barrier: a failed pthread_create cannot strand the others. */
static void *
race_load(void *arg)
{
	struct racer *r = arg;
	while (!atomic_load(r->go))
		sched_yield();
	r->rc = sg_server_secret_load(r->path, r->secret);
	return NULL;
}

static void
test_secret_creation_race_gives_one_whole_secret(void **state)
{
	const char *dir = *state;
	char path[512];
	for (int round = 0; round < 100; round++) {
		atomic_bool go = false;
		pthread_t t[RACERS];
		struct racer r[RACERS];
		int started = 0;
		snprintf(path, sizeof(path), "%s/race%d", dir, round);
		for (int i = 0; i < RACERS; i++) {
			r[i] = (struct racer){.go = &go, .path = path, .rc = -2};
			if (pthread_create(&t[i], NULL, race_load, &r[i]) != 0)
				break;
			started++;
		}
		atomic_store(&go, true);
		for (int i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(started, RACERS);
		for (int i = 0; i < RACERS; i++) {
			assert_int_equal(r[i].rc, 0);
			assert_memory_equal(r[i].secret, r[0].secret, SG_SERVER_SECRET_LEN);
		}
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, SG_SERVER_SECRET_LEN);
		assert_int_equal(unlink(path), 0);
	}
	DIR *d = opendir(dir);
	assert_non_null(d);
	int left = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		left += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(left, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_then_parse),
		cmocka_unit_test(test_generate_needs_room),
		cmocka_unit_test(test_parse_accepts_full_charset),
		cmocka_unit_test(test_parse_rejects_shapes),
		cmocka_unit_test(test_hash_is_keyed),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_init_is_repeatable),
		cmocka_unit_test(test_parse_length_includes_nul),
		cmocka_unit_test(test_hash_differs_per_character),
		cmocka_unit_test_setup_teardown(test_secret_created_then_reloaded, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_refuses_readable_by_others, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_refuses_wrong_size, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_missing_directory, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_secret_creation_race_gives_one_whole_secret,
		    setup_dir, teardown_dir),
	};
	if (sg_keys_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
