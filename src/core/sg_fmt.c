#include "core/sg_fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void
sg_fmt_init(struct sg_fmt *f, char *buf, size_t size)
{
	f->p = buf;
	f->end = buf + size - 1;
	f->truncated = false;
	*f->p = '\0';
}

static void
put(struct sg_fmt *f, const char *s, size_t n)
{
	size_t room = (size_t)(f->end - f->p);
	if (n > room) {
		n = room;
		f->truncated = true;
	}
	memcpy(f->p, s, n);
	f->p += n;
	*f->p = '\0';
}

void
sg_fmt_str(struct sg_fmt *f, const char *s)
{
	put(f, s, strlen(s));
}

void
sg_fmt_u64(struct sg_fmt *f, uint64_t v)
{
	char digits[20];
	size_t i = sizeof(digits);
	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	put(f, digits + i, sizeof(digits) - i);
}

/* Zero-padded to `width` digits: the fraction after the point. */
static void
put_padded(struct sg_fmt *f, uint64_t v, unsigned width)
{
	char digits[9];
	for (unsigned i = width; i-- > 0; v /= 10)
		digits[i] = (char)('0' + v % 10);
	put(f, digits, width);
}

void
sg_fmt_decimal(struct sg_fmt *f, double v, unsigned places)
{
	static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
	/*
	 * printf rounds the exact binary value.  Below 2^52 every k + 0.5 is a
	 * double and rounding the product is monotonic, so the product lands on
	 * the right side of each half unless it lands exactly on one; those
	 * ties, and negative (-0 included) or huge values, are left to printf.
	 */
	double prod = places <= 9 ? v * scale[places] : -1;
	double whole = floor(prod);
	if (!(prod >= 0 && prod < 4e15) || prod - whole == 0.5 || signbit(v)) {
		char buf[352]; /* DBL_MAX has 309 digits before the point */
		snprintf(buf, sizeof(buf), "%.*f", (int)places, v);
		sg_fmt_str(f, buf);
		return;
	}
	uint64_t units = (uint64_t)whole + (prod - whole > 0.5);
	uint64_t one = (uint64_t)scale[places];
	sg_fmt_u64(f, units / one);
	if (places > 0) {
		put(f, ".", 1);
		put_padded(f, units % one, places);
	}
}

bool
sg_fmt_truncated(const struct sg_fmt *f)
{
	return f->truncated;
}

void
sg_fmt_utc(int64_t unix_s, char out[SG_UTC_LEN])
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, SG_UTC_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		out[0] = '\0'; /* a year past 9999: no time rather than garbage */
}

void
sg_fmt_day(int64_t unix_s, char out[SG_DAY_LEN])
{
	time_t t = (time_t)unix_s;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, SG_DAY_LEN, "%Y-%m-%d", &tm) == 0)
		out[0] = '\0';
}
