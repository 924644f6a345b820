/*
 * The simulator's scalars: strings, integers and numbers drawn within what
 * the schema node says.  Bounds are read from the schema's json_t, which
 * compiling has proved well-formed.  A node's keywords are read in one pass
 * over its members: a jansson lookup hashes its key, and a generated value
 * used to ask for eight of them.
 */
#include "upstream/sg_sim_scalar.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/sg_slab.h"
#include "upstream/sg_sim_text.h"

/* Longest generated string: a longer minLength needs an example. */
#define SIM_MAX_STRING 8192
/* Integers stay exact in the doubles that the validator compares. */
#define SIM_INT_LIMIT 9007199254740992.0

/* The keywords the simulator reads, with where each goes in struct sg_sim_kw. */
/* clang-format off */
static const struct {
	const char *name;
	size_t len, at;
} kws[] = {
#define KW(s, f) {s, sizeof(s) - 1, offsetof(struct sg_sim_kw, f)}
    KW("type", type),
    KW("const", konst),
    KW("enum", enums),
    KW("examples", examples),
    KW("properties", properties),
    KW("required", required),
    KW("additionalProperties", additional),
    KW("items", items),
    KW("minItems", min_items),
    KW("maxItems", max_items),
    KW("pattern", pattern),
    KW("format", format),
    KW("minLength", min_length),
    KW("maxLength", max_length),
    KW("minimum", minimum),
    KW("maximum", maximum),
    KW("exclusiveMinimum", xminimum),
    KW("exclusiveMaximum", xmaximum),
#undef KW
};
/* clang-format on */

void
sg_sim_kw_read(const json_t *node, struct sg_sim_kw *k)
{
	const char *key;
	size_t klen;
	json_t *v;

	memset(k, 0, sizeof(*k));
	json_object_keylen_foreach((json_t *)node, key, klen, v)
	{
		for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
			if (kws[i].len == klen && memcmp(kws[i].name, key, klen) == 0) {
				*(const json_t **)((char *)k + kws[i].at) = v;
				break;
			}
	}
}

uint64_t
sg_sim_count(const json_t *v, uint64_t dflt)
{
	double d = json_number_value(v);

	if (!json_is_number(v))
		return dflt;
	return d <= 0 ? 0 : d >= 1e19 ? UINT64_MAX : (uint64_t)d;
}

int
sg_sim_string(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k, const char *name,
              const char *salt)
{
	uint64_t lo = sg_sim_count(k->min_length, 0), hi = sg_sim_count(k->max_length, UINT64_MAX);
	char small[SG_SIM_TEXT_MAX + 1 + 256], *buf = small;
	size_t room = sizeof(small);
	bool checked;

	/* A regex cannot be run backwards: such strings come from examples or echo. */
	if (k->pattern != NULL || lo > hi || lo > SIM_MAX_STRING)
		return -1;
	if (lo + 32 > room && (buf = sg_slab_take((size_t)lo + 32, &room)) == NULL)
		return SG_SIM_NO_MEMORY;
	enum sg_sim_kind kind = sg_sim_kind_of(json_string_value(k->format), name, &checked);
	size_t len = sg_sim_text(r, kind, name, salt, buf);
	long fit = sg_sim_fit(r, kind, checked, buf, len, room, lo, hi);
	if (fit >= 0)
		sg_jw_string(w, buf, (size_t)fit);
	if (buf != small)
		sg_slab_give(buf, room);
	return fit >= 0 ? 0 : -1;
}

static bool
in_bounds(const struct sg_sim_kw *k, double x)
{
	return isfinite(x) && !(k->minimum && x < json_number_value(k->minimum)) &&
	       !(k->maximum && x > json_number_value(k->maximum)) &&
	       !(k->xminimum && x <= json_number_value(k->xminimum)) &&
	       !(k->xmaximum && x >= json_number_value(k->xmaximum));
}

/*
 * The tightest bounds, inclusive or not.  An open side gets a span of 1000
 * from the other, so unbounded numbers stay human-sized.
 */
static void
num_range(const struct sg_sim_kw *k, double *lo, double *hi)
{
	const json_t *mn = k->minimum, *mx = k->maximum, *xmn = k->xminimum, *xmx = k->xmaximum;

	*lo =
	    fmax(mn ? json_number_value(mn) : -INFINITY, xmn ? json_number_value(xmn) : -INFINITY);
	*hi = fmin(mx ? json_number_value(mx) : INFINITY, xmx ? json_number_value(xmx) : INFINITY);
	if (isinf(*lo))
		*lo = isinf(*hi) ? 0 : *hi - 1000;
	if (isinf(*hi))
		*hi = *lo + 1000;
}

int
sg_sim_integer(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k)
{
	double lo, hi;

	num_range(k, &lo, &hi);
	lo = ceil(lo);
	hi = floor(hi);
	if (lo > SIM_INT_LIMIT || hi < -SIM_INT_LIMIT)
		return -1;
	lo = fmax(lo, -SIM_INT_LIMIT);
	hi = fmin(hi, SIM_INT_LIMIT);
	/* An exclusive bound that is a whole number: one step inside. */
	if (!in_bounds(k, lo))
		lo += 1;
	if (!in_bounds(k, hi))
		hi -= 1;
	if (lo > hi)
		return -1;
	int64_t a = (int64_t)lo, span = (int64_t)hi - a;
	int64_t v = a + (int64_t)sg_sim_below(r, (uint64_t)span + 1);
	if (!in_bounds(k, (double)v))
		return -1;
	sg_jw_int(w, v);
	return 0;
}

/*
 * A draw across the range, rounded to quarters when that stays inside
 * (binary fractions print short: 12.25, never 12.300000000000001); the
 * fallbacks serve ranges so narrow that only neighbouring doubles fit.
 */
int
sg_sim_number(struct sg_rng *r, struct sg_jw *w, const struct sg_sim_kw *k)
{
	double lo, hi, u = (double)sg_sim_below(r, 1000001) / 1e6;

	num_range(k, &lo, &hi);
	double x = lo * (1 - u) + hi * u;
	const double tries[] = {round(x * 4) / 4, x, lo / 2 + hi / 2, nextafter(lo, hi),
	                        nextafter(hi, lo)};
	for (size_t i = 0; lo <= hi && i < sizeof(tries) / sizeof(tries[0]); i++)
		if (in_bounds(k, tries[i])) {
			sg_jw_double(w, tries[i]);
			return 0;
		}
	return -1;
}
