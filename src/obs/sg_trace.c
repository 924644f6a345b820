#include "obs/sg_trace.h"

#include "core/sg_fmt.h"
#include "core/sg_rng.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool
all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

bool
sg_trace_parse(const char *v, struct sg_trace *t)
{
	/* version(2) - trace(32) - parent(16) - flags(2) */
	if (v == NULL || strlen(v) < 55)
		return false;
	if (v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!is_lower_hex(v, 2) || !is_lower_hex(v + 3, 32) || !is_lower_hex(v + 36, 16) ||
	    !is_lower_hex(v + 53, 2))
		return false;
	/* Version ff is forbidden; 00 must be exactly 55 characters long. */
	if (memcmp(v, "ff", 2) == 0 || (memcmp(v, "00", 2) == 0 && v[55] != '\0'))
		return false;
	if (all_zero(v + 3, 32) || all_zero(v + 36, 16))
		return false;
	memcpy(t->trace_id, v + 3, 32);
	t->trace_id[32] = '\0';
	memcpy(t->parent_id, v + 36, 16);
	t->parent_id[16] = '\0';
	memcpy(t->flags, v + 53, 2);
	t->flags[2] = '\0';
	return true;
}

/*
 * Ids must be unique and unguessable enough not to collide across nodes,
 * not secret.  A per-thread xoshiro256** seeded from the system RNG avoids
 * a getrandom(2) per id on the request path.
 */
static _Thread_local struct sg_rng rng;
static _Thread_local bool seeded;

static uint64_t
next_u64(void)
{
	if (!seeded) {
		uint64_t seed;
		randombytes_buf(&seed, sizeof(seed));
		sg_rng_seed(&rng, seed);
		seeded = true;
	}
	return sg_rng_next(&rng);
}

static void
random_hex(char *out, size_t nbytes)
{
	uint64_t b[2];
	do {
		b[0] = next_u64();
		b[1] = next_u64();
	} while (sodium_is_zero((const unsigned char *)b, nbytes));
	sodium_bin2hex(out, nbytes * 2 + 1, (const unsigned char *)b, nbytes);
}

void
sg_trace_begin(struct sg_trace *t, const char *traceparent)
{
	if (!sg_trace_parse(traceparent, t)) {
		random_hex(t->trace_id, 16);
		t->parent_id[0] = '\0';
		memcpy(t->flags, "01", 3);
	}
	random_hex(t->span_id, 8);
}

void
sg_trace_format(const struct sg_trace *t, char *out, unsigned long n)
{
	struct sg_fmt f;
	sg_fmt_init(&f, out, n);
	sg_fmt_str(&f, "00-");
	sg_fmt_str(&f, t->trace_id);
	sg_fmt_str(&f, "-");
	sg_fmt_str(&f, t->span_id);
	sg_fmt_str(&f, "-");
	sg_fmt_str(&f, t->flags);
}
