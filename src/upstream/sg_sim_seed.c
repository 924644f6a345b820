/*
 * The canonical form fed to the hash: a type tag, then for containers their
 * size and members (object keys sorted bytewise, each with its length),
 * for strings their length and bytes, for numbers their 64 bits.  Every
 * piece says its own length, so no two values feed the same bytes.  This
 * costs a fraction of serializing the value with sorted keys, which the
 * simulator used to do for every call.
 */
#include "upstream/sg_sim_seed.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void
put_le64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void
feed_u64(crypto_generichash_state *st, unsigned char tag, uint64_t v)
{
	unsigned char b[9] = {tag};
	put_le64(b + 1, v);
	crypto_generichash_update(st, b, sizeof(b));
}

static void
feed_bytes(crypto_generichash_state *st, unsigned char tag, const char *s, size_t n)
{
	feed_u64(st, tag, n);
	crypto_generichash_update(st, (const unsigned char *)s, n);
}

static int
by_bytes(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int feed_value(crypto_generichash_state *st, const json_t *v);

static int
feed_object(crypto_generichash_state *st, const json_t *v)
{
	size_t n = json_object_size(v), i = 0;
	const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
	const char *k;
	json_t *m;
	if (n && keys == NULL)
		return -1;
	json_object_foreach((json_t *)v, k, m) keys[i++] = k;
	if (n > 1)
		qsort(keys, n, sizeof(*keys), by_bytes);
	feed_u64(st, 'o', n);
	int rc = 0;
	for (i = 0; rc == 0 && i < n; i++) {
		feed_bytes(st, 'k', keys[i], strlen(keys[i]));
		rc = feed_value(st, json_object_get(v, keys[i]));
	}
	free(keys);
	return rc;
}

static int
feed_value(crypto_generichash_state *st, const json_t *v)
{
	double d;
	uint64_t bits;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return feed_object(st, v);
	case JSON_ARRAY:
		feed_u64(st, 'a', json_array_size(v));
		for (size_t i = 0; i < json_array_size(v); i++)
			if (feed_value(st, json_array_get(v, i)) != 0)
				return -1;
		return 0;
	case JSON_STRING:
		feed_bytes(st, 's', json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		feed_u64(st, 'i', (uint64_t)json_integer_value(v));
		return 0;
	case JSON_REAL:
		d = json_real_value(v);
		memcpy(&bits, &d, sizeof(bits));
		feed_u64(st, 'r', bits);
		return 0;
	default: /* true, false, null: the tag says it all */
		feed_u64(st, (unsigned char)('0' + json_typeof(v)), 0);
		return 0;
	}
}

int
sg_sim_seed(uint64_t seed, const char *salt, const json_t *input, uint64_t *out)
{
	crypto_generichash_state st;
	unsigned char h[8];
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	feed_u64(&st, 'S', seed);
	feed_bytes(&st, 'n', salt, strlen(salt));
	int rc = input ? feed_value(&st, input) : (feed_u64(&st, '0' + JSON_NULL, 0), 0);
	crypto_generichash_final(&st, h, sizeof(h));
	*out = 0;
	for (int i = 0; i < 8; i++)
		*out |= (uint64_t)h[i] << (8 * i);
	return rc;
}
