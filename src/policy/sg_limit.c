/*
 * sg_limit: rate specs such as "2/s" or "5000/d", turned into GCRA
 * parameters.  Shared by policies (per-role limits) and connectors (the
 * upstream's own limit).
 */
#include "policy/sg_limit.h"

#include <stdio.h>
#include <string.h>

#define RATE_MAX_MILLI (1000000ULL * 1000) /* 1e6 calls per period, in thousandths */
#define BURST_MAX 100000

/*
 * The number is kept in thousandths so the emission interval is exact
 * integer arithmetic: "0.5/s" and "1/2s" must never differ by rounding.
 */
static int
parse_rate_milli(const char *s, size_t len, uint64_t *milli)
{
	uint64_t whole = 0, frac = 0;
	size_t i = 0, int_digits = 0, frac_digits = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, int_digits++) {
		if (int_digits >= 7)
			return -1;
		whole = whole * 10 + (uint64_t)(s[i] - '0');
	}
	if (int_digits == 0)
		return -1;
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, frac_digits++) {
			if (frac_digits >= 3)
				return -1;
			frac = frac * 10 + (uint64_t)(s[i] - '0');
		}
		if (frac_digits == 0)
			return -1;
	}
	if (i != len)
		return -1;
	for (; frac_digits < 3; frac_digits++)
		frac *= 10;
	*milli = whole * 1000 + frac;
	return *milli >= 1 && *milli <= RATE_MAX_MILLI ? 0 : -1;
}

/*
 * A burst of 0 picks the default, max(1, ceil(rate)), capped at 100000;
 * a burst over 100000 is refused.  *out is untouched on failure.
 */
int
sg_limit_parse(const char *spec, uint32_t burst, struct sg_limit *out)
{
	static const struct {
		char unit;
		uint32_t seconds;
	} periods[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	if (spec == NULL)
		return -1;
	size_t len = strlen(spec);
	const char *slash = strchr(spec, '/');
	uint64_t milli;
	if (slash == NULL || len >= sizeof(out->spec) || slash[1] == '\0' || slash[2] != '\0')
		return -1;
	if (parse_rate_milli(spec, (size_t)(slash - spec), &milli) != 0)
		return -1;
	uint32_t period = 0;
	for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
		if (slash[1] == periods[i].unit)
			period = periods[i].seconds;
	if (period == 0 || burst > BURST_MAX)
		return -1;
	/* T = period / rate, rounded to the nearest nanosecond; at most 8.64e16, no overflow. */
	uint64_t period_ns_milli = (uint64_t)period * 1000000000ULL * 1000;
	uint64_t emission = (period_ns_milli + milli / 2) / milli;
	if (emission < 1)
		return -1; /* cannot happen within RATE_MAX_MILLI; kept as a guard */
	if (burst == 0) {
		uint64_t ceil_rate = (milli + 999) / 1000;
		burst = ceil_rate > BURST_MAX ? BURST_MAX : (uint32_t)ceil_rate;
	}
	memset(out, 0, sizeof(*out));
	out->gcra.emission_ns = emission;
	out->gcra.burst = burst;
	out->rate = (double)milli / 1000.0;
	out->period_s = period;
	memcpy(out->spec, spec, len + 1);
	return 0;
}

uint64_t
sg_limit_window_s(const struct sg_limit *l)
{
	uint64_t ns = l->gcra.emission_ns * (uint64_t)l->gcra.burst;
	uint64_t s = ns / 1000000000ull + (ns % 1000000000ull != 0);
	return s ? s : 1;
}
