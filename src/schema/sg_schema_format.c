/*
 * sg_schema_format: the `format` values that are checked, each with the
 * standard it follows.  A failed check says what is wrong and shows a valid
 * value, because the client reading the message has to fix the request:
 *
 *   date-time  RFC 3339 section 5.6: 2026-12-07T09:30:00Z, with t/z also in
 *              lower case, an optional fraction, and Z or +hh:mm / -hh:mm.
 *              Months 01-12, days within the month (leap years counted),
 *              hours 00-23, minutes 00-59, seconds 00-59, and 60 only for a
 *              leap second, which falls at 23:59 UTC.
 *   date       RFC 3339 full-date: 2026-12-07, with the same ranges.
 *   uri        RFC 3986 absolute URI: a scheme, ':', and the rest made only
 *              of the characters the grammar allows, with valid %-escapes;
 *              an authority (after "//") has digits for its port, and [ ]
 *              only around an IP literal.  Relative references and IRIs
 *              (raw non-ASCII) are refused.
 *   uuid       RFC 4122 text: 8-4-4-4-12 hex digits, either case, any
 *              version.
 *   email      a practical rule, not RFC 5322's whole grammar (no quoted
 *              local parts, comments or address literals):
 *                local@domain, with exactly one '@';
 *                local: 1-64 characters, letters, digits and
 *                  !#$%&'*+-/=?^_`{|}~ (RFC 5322 atext) and dots, a dot
 *                  neither first, last nor next to another;
 *                domain: at most 255 characters, two or more labels
 *                  separated by dots, each 1-63 letters, digits or hyphens,
 *                  neither starting nor ending with a hyphen.
 *
 * Any other format name is an annotation, as JSON Schema allows.  All
 * checks read bytes (ASCII only, whatever the locale) and allocate nothing.
 */
#include "schema/sg_schema_node.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum sg_schema_format f;
	const char *what; /* the message's start: "is not <what>" */
} formats[] = {
    {"date-time", SG_FORMAT_DATE_TIME, "a date-time (RFC 3339, e.g. 2026-12-07T09:30:00Z)"},
    {"date", SG_FORMAT_DATE, "a date (RFC 3339, e.g. 2026-12-07)"},
    {"email", SG_FORMAT_EMAIL, "an email address (e.g. ada@example.com)"},
    {"uri", SG_FORMAT_URI, "an absolute URI (RFC 3986, e.g. https://example.com/path)"},
    {"uuid", SG_FORMAT_UUID,
     "a UUID (8-4-4-4-12 hex digits, e.g. "
     "123e4567-e89b-12d3-a456-426614174000)"},
};
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

enum sg_schema_format
sg_schema_format_lookup(const char *name)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (strcmp(name, formats[i].name) == 0)
			return formats[i].f;
	return SG_FORMAT_NONE;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* `n` digits at s[at], as a number; -1 when they are not all digits or not all there. */
static int
digits(const char *s, size_t len, size_t at, size_t n)
{
	int v = 0;
	if (at + n > len)
		return -1;
	for (size_t i = at; i < at + n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* A reason: written into `why`, and false so that a check can return it. */
static bool reason(char *why, size_t n, const char *fmt, ...) SG_SCHEMA_PRINTF(3, 4);

static bool
reason(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return false;
}

/* A character as a message shows it: 'x', or its code when it would not print. */
static const char *
show_char(char c, char *buf, size_t n)
{
	unsigned char u = (unsigned char)c;
	if (u >= 0x80)
		snprintf(buf, n, "a non-ASCII character");
	else if (u < 0x20 || u == 0x7f)
		snprintf(buf, n, "the control character 0x%02X", u);
	else
		snprintf(buf, n, "the character '%c'", c);
	return buf;
}

/* ---- date and date-time -------------------------------------------------- */

static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};

static int
days_in(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 full-date at the start of `s`: 10 bytes. */
static bool
full_date(const char *s, size_t len, char *why, size_t n)
{
	int y = digits(s, len, 0, 4), m = digits(s, len, 5, 2), d = digits(s, len, 8, 2);

	if (y < 0 || m < 0 || d < 0 || s[4] != '-' || s[7] != '-')
		return reason(why, n, "%s", "");
	if (m < 1 || m > 12)
		return reason(why, n, "month %02d does not exist", m);
	if (d < 1)
		return reason(why, n, "day 00 does not exist");
	if (d > days_in(y, m))
		return reason(why, n, "%s %04d has %d days", month_names[m - 1], y, days_in(y, m));
	return true;
}

/* The time after the date's 'T': hh:mm:ss[.frac](Z|+hh:mm|-hh:mm), to the end. */
static bool
full_time(const char *s, size_t len, char *why, size_t n)
{
	int h = digits(s, len, 0, 2), mi = digits(s, len, 3, 2), sec = digits(s, len, 6, 2);
	size_t at = 8;

	if (h < 0 || mi < 0 || sec < 0 || s[2] != ':' || s[5] != ':')
		return reason(why, n, "%s", "");
	if (at < len && s[at] == '.') {
		size_t start = ++at;
		while (at < len && is_digit(s[at]))
			at++;
		if (at == start)
			return reason(why, n, "the fraction after '.' needs digits");
	}
	int off = 0; /* minutes east of UTC */
	if (at == len)
		return reason(why, n,
		              "it has no time zone; end it with Z or an offset like +01:00");
	if ((s[at] == 'Z' || s[at] == 'z') && at + 1 == len) {
		off = 0;
	} else if (s[at] == '+' || s[at] == '-') {
		int oh = digits(s, len, at + 1, 2), om = digits(s, len, at + 4, 2);
		if (oh < 0 || om < 0 || s[at + 3] != ':' || at + 6 != len)
			return reason(why, n, "%s", "");
		if (oh > 23 || om > 59)
			return reason(why, n, "the offset %.6s is out of range (-23:59 to +23:59)",
			              s + at);
		off = (s[at] == '-' ? -1 : 1) * (oh * 60 + om);
	} else {
		return reason(why, n, "%s", "");
	}
	if (h > 23)
		return reason(why, n, "hours run from 00 to 23");
	if (mi > 59)
		return reason(why, n, "minutes run from 00 to 59");
	/* A leap second is 23:59:60 UTC, whatever the local time says. */
	if (sec > 60 || (sec == 60 && ((h * 60 + mi - off) % 1440 + 1440) % 1440 != 1439))
		return reason(why, n,
		              "seconds run from 00 to 59 (60 only for a leap second, at "
		              "23:59 UTC)");
	return true;
}

static bool
check_date_time(const char *s, size_t len, char *why, size_t n)
{
	if (len < 11 || !full_date(s, len, why, n))
		return len < 11 ? reason(why, n, "%s", "") : false;
	if (s[10] == ' ')
		return reason(why, n, "the date and the time are joined by T, not a space");
	if (s[10] != 'T' && s[10] != 't')
		return reason(why, n, "%s", "");
	return full_time(s + 11, len - 11, why, n);
}

static bool
check_date(const char *s, size_t len, char *why, size_t n)
{
	if (len != 10)
		return reason(why, n, "%s", "");
	return full_date(s, len, why, n);
}

/* ---- uuid ----------------------------------------------------------------- */

static bool
check_uuid(const char *s, size_t len, char *why, size_t n)
{
	static const size_t want[5] = {8, 4, 4, 4, 12};
	size_t group = 0, have = 0;
	char c[48];

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '-') {
			if (!is_hex(s[i]))
				return reason(why, n, "%s is not a hex digit",
				              show_char(s[i], c, sizeof(c)));
			have++;
			continue;
		}
		if (group >= 5)
			return reason(why, n, "it has more than 5 groups");
		if (have != want[group])
			return reason(why, n, "group %zu has %zu digit%s, not %zu", group + 1, have,
			              have == 1 ? "" : "s", want[group]);
		group++;
		have = 0;
	}
	if (group != 5)
		return reason(why, n, "it has %zu group%s, not 5", group, group == 1 ? "" : "s");
	return true;
}

/* ---- email ---------------------------------------------------------------- */

/* RFC 5322 atext: what an unquoted local part is made of, besides dots. */
static bool
is_atext(char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
email_local(const char *s, size_t len, char *why, size_t n)
{
	char c[48];

	if (len == 0)
		return reason(why, n, "there is nothing before the @");
	if (len > 64)
		return reason(why, n, "the part before the @ is longer than 64 characters");
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.' && (i == 0 || i + 1 == len || s[i - 1] == '.'))
			return reason(why, n,
			              "the part before the @ starts or ends with a dot, or "
			              "has two in a row");
		if (s[i] != '.' && !is_atext(s[i]))
			return reason(why, n, "%s is not allowed before the @",
			              show_char(s[i], c, sizeof(c)));
	}
	return true;
}

static bool
email_domain(const char *s, size_t len, char *why, size_t n)
{
	size_t labels = 0;

	if (len == 0)
		return reason(why, n, "there is nothing after the @");
	if (len > 255)
		return reason(why, n, "the domain is longer than 255 characters");
	for (size_t start = 0; start <= len; labels++) {
		const char *dot = memchr(s + start, '.', len - start);
		size_t end = dot ? (size_t)(dot - s) : len;
		bool ok = end > start && end - start <= 63 && s[start] != '-' && s[end - 1] != '-';
		for (size_t i = start; ok && i < end; i++)
			ok = is_alpha(s[i]) || is_digit(s[i]) || s[i] == '-';
		if (!ok)
			return reason(why, n,
			              "the domain's parts are 1 to 63 letters, digits or "
			              "hyphens, with no hyphen first or last");
		start = end + 1;
	}
	if (labels < 2)
		return reason(why, n, "the domain has no dot");
	return true;
}

static bool
check_email(const char *s, size_t len, char *why, size_t n)
{
	const char *at = memchr(s, '@', len);

	if (at == NULL)
		return reason(why, n, "it has no @");
	size_t local = (size_t)(at - s);
	if (memchr(at + 1, '@', len - local - 1) != NULL)
		return reason(why, n, "it has more than one @");
	return email_local(s, local, why, n) && email_domain(at + 1, len - local - 1, why, n);
}

/* ---- uri ------------------------------------------------------------------ */

static bool
is_unreserved(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
is_sub_delim(char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/*
 * s[i..end) made of unreserved characters, sub-delims, %-escapes and the
 * characters in `extra`; on failure `why` names the first offender.
 */
static bool
uri_chars(const char *s, size_t i, size_t end, const char *extra, char *why, size_t n)
{
	char c[48];

	for (; i < end; i++) {
		if (s[i] == '%') {
			if (i + 2 >= end || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return reason(why, n, "%% must be followed by two hex digits");
			i += 2;
			continue;
		}
		if (is_unreserved(s[i]) || is_sub_delim(s[i]) || strchr(extra, s[i]) != NULL)
			continue;
		if ((unsigned char)s[i] >= 0x80)
			return reason(why, n,
			              "non-ASCII characters must be percent-encoded as UTF-8");
		return reason(why, n, "%s must be percent-encoded (%%%02X)",
		              show_char(s[i], c, sizeof(c)), (unsigned char)s[i]);
	}
	return true;
}

/* authority = [ userinfo "@" ] host [ ":" port ], in s[i..end). */
static bool
uri_authority(const char *s, size_t i, size_t end, char *why, size_t n)
{
	const char *at = NULL;
	for (size_t k = i; k < end; k++) /* the last '@': userinfo holds none unescaped */
		if (s[k] == '@')
			at = s + k;
	if (at != NULL) {
		if (!uri_chars(s, i, (size_t)(at - s), ":", why, n))
			return false;
		i = (size_t)(at - s) + 1;
	}
	size_t host_end = end;
	if (i < end && s[i] == '[') {
		const char *close = memchr(s + i, ']', end - i);
		if (close == NULL)
			return reason(why, n, "an IP literal opened with [ needs its ]");
		if (!uri_chars(s, i + 1, (size_t)(close - s), ":", why, n))
			return false;
		host_end = (size_t)(close - s) + 1;
		if (host_end < end && s[host_end] != ':')
			return reason(why, n, "only a port may follow an IP literal's ]");
	} else {
		const char *colon = memchr(s + i, ':', end - i);
		host_end = colon ? (size_t)(colon - s) : end;
		if (!uri_chars(s, i, host_end, "", why, n))
			return false;
	}
	for (size_t k = host_end + 1; k < end; k++)
		if (!is_digit(s[k]))
			return reason(why, n, "the port after the host must be digits");
	return true;
}

static bool
check_uri(const char *s, size_t len, char *why, size_t n)
{
	size_t i = 0;

	while (i < len && (is_alpha(s[i]) || (i > 0 && (is_digit(s[i]) || s[i] == '+' ||
	                                                s[i] == '-' || s[i] == '.'))))
		i++;
	if (i == 0 || i == len || s[i] != ':')
		return reason(why, n,
		              "it needs a scheme (a letter, then letters, digits, +, - or "
		              ".) and a colon, such as https: or mailto:");
	i++;
	const char *hash = memchr(s + i, '#', len - i);
	size_t end = hash ? (size_t)(hash - s) : len;
	if (hash != NULL && !uri_chars(s, end + 1, len, ":@/?", why, n))
		return false;
	const char *q = memchr(s + i, '?', end - i);
	size_t path_end = q ? (size_t)(q - s) : end;
	if (q != NULL && !uri_chars(s, path_end + 1, end, ":@/?", why, n))
		return false;
	if (path_end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		const char *slash = memchr(s + i + 2, '/', path_end - i - 2);
		size_t auth_end = slash ? (size_t)(slash - s) : path_end;
		if (!uri_authority(s, i + 2, auth_end, why, n))
			return false;
		i = auth_end;
	}
	return uri_chars(s, i, path_end, ":@/", why, n);
}

bool
sg_schema_format_check(enum sg_schema_format f, const char *s, size_t len, char *msg,
                       size_t msg_len)
{
	char why[160] = "";
	bool ok;

	switch (f) {
	case SG_FORMAT_DATE_TIME:
		ok = check_date_time(s, len, why, sizeof(why));
		break;
	case SG_FORMAT_DATE:
		ok = check_date(s, len, why, sizeof(why));
		break;
	case SG_FORMAT_EMAIL:
		ok = check_email(s, len, why, sizeof(why));
		break;
	case SG_FORMAT_URI:
		ok = check_uri(s, len, why, sizeof(why));
		break;
	case SG_FORMAT_UUID:
		ok = check_uuid(s, len, why, sizeof(why));
		break;
	default:
		return true;
	}
	if (ok)
		return true;
	const char *what = "";
	for (size_t i = 0; i < N_FORMATS; i++)
		if (formats[i].f == f)
			what = formats[i].what;
	snprintf(msg, msg_len, "is not %s%s%s", what, why[0] ? ": " : "", why);
	return false;
}
