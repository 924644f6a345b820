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

/* Deeper than any input the validate step lets through; a bound for the recursion. */
#define DEPTH_MAX 256

struct member {
	const char *key;
	size_t len; /* keys may hold NUL bytes (json_object_setn) */
	const json_t *value;
};

static int
by_bytes(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static int feed_value(crypto_generichash_state *st, const json_t *v, int depth);

static int
feed_object(crypto_generichash_state *st, const json_t *v, int depth)
{
	size_t n = json_object_size(v), i = 0, len;
	struct member *m = n ? malloc(n * sizeof(*m)) : NULL;
	const char *k;
	json_t *val;
	if (n && m == NULL)
		return -1;
	json_object_keylen_foreach((json_t *)v, k, len, val) m[i++] = (struct member){k, len, val};
	if (n > 1)
		qsort(m, n, sizeof(*m), by_bytes);
	feed_u64(st, 'o', n);
	int rc = 0;
	for (i = 0; rc == 0 && i < n; i++) {
		feed_bytes(st, 'k', m[i].key, m[i].len);
		rc = feed_value(st, m[i].value, depth + 1);
	}
	free(m);
	return rc;
}

static int
feed_value(crypto_generichash_state *st, const json_t *v, int depth)
{
	double d;
	uint64_t bits;
	if (v == NULL || depth > DEPTH_MAX)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return feed_object(st, v, depth);
	case JSON_ARRAY:
		feed_u64(st, 'a', json_array_size(v));
		for (size_t i = 0; i < json_array_size(v); i++)
			if (feed_value(st, json_array_get(v, i), depth + 1) != 0)
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
	int rc = input ? feed_value(&st, input, 0) : (feed_u64(&st, '0' + JSON_NULL, 0), 0);
	crypto_generichash_final(&st, h, sizeof(h));
	*out = 0;
	for (int i = 0; i < 8; i++)
		*out |= (uint64_t)h[i] << (8 * i);
	return rc;
}
