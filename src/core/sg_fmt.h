/*
 * sg_fmt: a bounded string builder for the values a reply formats on every
 * call (rate-limit headers, the cost, the traceparent).  snprintf parses its
 * format on each call, about 1,000 instructions; a governed reply made six
 * such calls.  These appends copy and convert directly.
 *
 * Like snprintf, the result is always NUL-terminated and silently truncated
 * when the buffer is too small; sg_fmt_truncated says whether it was.
 */
#ifndef SG_FMT_H
#define SG_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_fmt {
	char *p;   /* where the next byte goes */
	char *end; /* the last byte of the buffer, kept for the NUL */
	bool truncated;
};

/* `size` must be at least 1. */
void sg_fmt_init(struct sg_fmt *f, char *buf, size_t size);
void sg_fmt_str(struct sg_fmt *f, const char *s);
void sg_fmt_u64(struct sg_fmt *f, uint64_t v);
/* `v` with `places` (at most 9) digits after the point, as "%.*f" prints it. */
void sg_fmt_decimal(struct sg_fmt *f, double v, unsigned places);
bool sg_fmt_truncated(const struct sg_fmt *f);

/* Room for a UTC time as sg_fmt_utc writes it, NUL included. */
#define SG_UTC_LEN 32
/* Unix seconds as "2026-11-28T00:00:00Z" (RFC 3339, UTC), the form every reply uses. */
void sg_fmt_utc(int64_t unix_s, char out[SG_UTC_LEN]);
/* The UTC day of `unix_s`, "2026-12-31"; "" past year 9999. */
#define SG_DAY_LEN 16
void sg_fmt_day(int64_t unix_s, char out[SG_DAY_LEN]);

#endif
