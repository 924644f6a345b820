/*
 * Text is drawn in a fixed order from the caller's generator, so changing
 * how any kind is written (another snprintf, one more draw) changes every
 * later value of an output: keep the draws as they are unless a change is
 * worth new outputs for every existing definition.
 */
#include "upstream/sg_sim_text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const first_names[] = {"Ada",     "Grace",  "Alan",     "Katherine", "Linus",
                                          "Barbara", "Dennis", "Margaret", "Ken",       "Frances",
                                          "Edsger",  "Radia",  "Hedy",     "Donald"};
static const char *const last_names[] = {"Lovelace", "Hopper",  "Turing",   "Johnson",  "Torvalds",
                                         "Liskov",   "Ritchie", "Hamilton", "Thompson", "Allen",
                                         "Dijkstra", "Perlman", "Lamarr",   "Knuth"};
static const char *const companies[] = {
    "Analytical Engines Ltd", "Northwind Traders", "Contoso Pharma", "Fabrikam Logistics",
    "Globex Retail",          "Initech Finance",   "Tailspin Toys",  "Wingtip Travel"};
static const char *const words[] = {
    "quarterly", "planning", "review",   "launch",  "budget", "roadmap",   "hiring",  "onboarding",
    "release",   "security", "customer", "partner", "design", "migration", "kickoff", "renewal"};
static const char *const statuses[] = {"active", "pending", "completed", "open", "closed"};
static const char *const countries[] = {"GB", "DE", "FR", "NL", "SE", "US", "JP", "IE"};
static const char *const cities[] = {"London",    "Berlin", "Paris",  "Amsterdam",
                                     "Stockholm", "Dublin", "Lisbon", "Tokyo"};
static const char *const currencies[] = {"EUR", "USD", "GBP", "SEK", "CHF", "JPY"};

#define PICK(r, a) ((a)[sg_sim_below((r), sizeof(a) / sizeof((a)[0]))])

/* `checked`: the validator enforces the format, so fitting must keep the shape. */
/* clang-format off */
static const struct {
	const char *name;
	enum sg_sim_kind kind;
	bool checked;
} formats[] = {
    {"email", SG_SIM_EMAIL, true},
    {"date-time", SG_SIM_DATETIME, true},
    {"date", SG_SIM_DATE, true},
    {"time", SG_SIM_TIME, false},
    {"uuid", SG_SIM_UUID, true},
    {"uri", SG_SIM_URI, true},
    {"url", SG_SIM_URI, false},
    {"uri-reference", SG_SIM_URI, false},
    {"hostname", SG_SIM_HOST, false},
    {"ipv4", SG_SIM_IPV4, false},
};
/* clang-format on */

/*
 * Property names, lowercased, tried in order: '=' whole name, '$' suffix,
 * '*' anywhere.  Earlier rules win, so "company_name" is a company.
 */
static const struct {
	const char *word;
	char how;
	enum sg_sim_kind kind;
} name_rules[] = {
    {"email", '*', SG_SIM_EMAIL},
    {"_at", '$', SG_SIM_DATETIME},
    {"timestamp", '*', SG_SIM_DATETIME},
    {"date", '*', SG_SIM_DATE},
    {"first_name", '*', SG_SIM_FIRST},
    {"firstname", '*', SG_SIM_FIRST},
    {"given_name", '*', SG_SIM_FIRST},
    {"last_name", '*', SG_SIM_LAST},
    {"lastname", '*', SG_SIM_LAST},
    {"surname", '*', SG_SIM_LAST},
    {"family_name", '*', SG_SIM_LAST},
    {"username", '*', SG_SIM_USER},
    {"login", '=', SG_SIM_USER},
    {"company", '*', SG_SIM_COMPANY},
    {"organization", '*', SG_SIM_COMPANY},
    {"organisation", '*', SG_SIM_COMPANY},
    {"employer", '*', SG_SIM_COMPANY},
    {"name", '*', SG_SIM_FULLNAME},
    {"phone", '*', SG_SIM_PHONE},
    {"mobile", '*', SG_SIM_PHONE},
    {"url", '*', SG_SIM_URI},
    {"website", '*', SG_SIM_URI},
    {"link", '*', SG_SIM_URI},
    {"host", '*', SG_SIM_HOST},
    {"ip", '=', SG_SIM_IPV4},
    {"ip_address", '=', SG_SIM_IPV4},
    {"subject", '*', SG_SIM_TITLE},
    {"title", '*', SG_SIM_TITLE},
    {"status", '*', SG_SIM_STATUS},
    {"state", '=', SG_SIM_STATUS},
    {"country", '*', SG_SIM_COUNTRY},
    {"city", '*', SG_SIM_CITY},
    {"currency", '*', SG_SIM_CURRENCY},
    {"message", '*', SG_SIM_SENTENCE},
    {"body", '*', SG_SIM_SENTENCE},
    {"description", '*', SG_SIM_SENTENCE},
    {"text", '*', SG_SIM_SENTENCE},
    {"note", '*', SG_SIM_SENTENCE},
    {"comment", '*', SG_SIM_SENTENCE},
    {"summary", '*', SG_SIM_SENTENCE},
};

/* ASCII only, whatever the locale: ids and tags must not change with it. */
static bool
is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
to_lower(char c)
{
	return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && strcmp(s + n - t, tail) == 0;
}

bool
sg_sim_is_id_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && (strcmp(name, "id") == 0 || ends_with(name, "_id") ||
	                 (n > 2 && ends_with(name, "Id") && is_lower(name[n - 3])));
}

static enum sg_sim_kind
text_for_name(const char *name)
{
	char low[64];
	size_t n = 0;

	if (name == NULL)
		return SG_SIM_WORDS;
	for (; name[n] != '\0' && n < sizeof(low) - 1; n++)
		low[n] = to_lower(name[n]);
	low[n] = '\0';
	for (size_t i = 0; i < sizeof(name_rules) / sizeof(name_rules[0]); i++) {
		const char *w = name_rules[i].word;
		char how = name_rules[i].how;
		if ((how == '=' && strcmp(low, w) == 0) || (how == '$' && ends_with(low, w)) ||
		    (how == '*' && strstr(low, w) != NULL))
			return name_rules[i].kind;
	}
	return SG_SIM_WORDS;
}

enum sg_sim_kind
sg_sim_kind_of(const char *format, const char *name, bool *checked)
{
	*checked = false;
	for (size_t i = 0; format && i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(format, formats[i].name) == 0) {
			*checked = formats[i].checked;
			return formats[i].kind;
		}
	return sg_sim_is_id_name(name) ? SG_SIM_ID : text_for_name(name);
}

/*
 * A short tag for a word, like the "msg" in "msg_9f2c01a4be77": the first
 * letter and the next two consonants, skipping doubles.
 */
static void
tag_of(const char *word, size_t len, char out[4])
{
	size_t n = 0;

	for (size_t i = 0; i < len && n < 3; i++) {
		char c = to_lower(word[i]);
		if (!is_lower(c) && !is_digit(c))
			continue;
		if (n > 0 && (strchr("aeiou", c) != NULL || c == out[n - 1]))
			continue;
		out[n++] = c;
	}
	out[n] = '\0';
	if (n == 0)
		strcpy(out, "id");
}

/*
 * "contact_id" and "contactId" are tagged from "contact"; a bare "id" from
 * the operation in the salt, so crm.create_contact makes "cnt_..." ids.
 */
static void
id_tag(const char *salt, const char *name, char out[4])
{
	size_t n = strlen(name);
	const char *stem = name, *end = name + n - 2 - (n > 2 && name[n - 3] == '_');

	if (n == 2) {
		stem = strrchr(salt, '.') ? strrchr(salt, '.') + 1 : salt;
		end = stem + strlen(stem);
	}
	for (const char *p = stem; p + 1 < end; p++) /* the last word: "contact" */
		if (*p == '_')
			stem = p + 1;
	tag_of(stem, (size_t)(end - stem), out);
}

/* A moment in 2023-2025: plausible for records, and fixed by the draw. */
static void
write_time(struct sg_rng *r, enum sg_sim_kind kind, char *out, size_t n)
{
	static const char *const fmt[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d", "%H:%M:%SZ"};
	time_t t = (time_t)(1672531200 + sg_sim_below(r, 3 * 365 * 86400));
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, fmt[kind == SG_SIM_DATETIME ? 0 : kind == SG_SIM_DATE ? 1 : 2], &tm);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = to_lower(*s);
}

static void
write_person(struct sg_rng *r, enum sg_sim_kind kind, char *out, size_t n)
{
	const char *first = PICK(r, first_names), *last = PICK(r, last_names);
	unsigned num = (unsigned)sg_sim_below(r, 100);

	if (kind == SG_SIM_EMAIL)
		snprintf(out, n, "%s.%s%u@example.com", first, last, num);
	else if (kind == SG_SIM_USER)
		snprintf(out, n, "%s.%s%u", first, last, num);
	else
		snprintf(out, n, "%s%s%s", kind == SG_SIM_LAST ? "" : first,
		         kind == SG_SIM_FULLNAME ? " " : "", kind == SG_SIM_FIRST ? "" : last);
	if (kind == SG_SIM_EMAIL || kind == SG_SIM_USER)
		lower(out);
}

static void
write_words(struct sg_rng *r, enum sg_sim_kind kind, char *out, size_t n)
{
	const char *a = PICK(r, words), *b = PICK(r, words), *c = PICK(r, words);

	if (kind == SG_SIM_SENTENCE)
		snprintf(out, n, "Notes on the %s %s %s.", a, b, c);
	else if (kind == SG_SIM_TITLE)
		snprintf(out, n, "%c%s %s %s", a[0] - 'a' + 'A', a + 1, b, c);
	else
		snprintf(out, n, "%s %s", a, b);
}

size_t
sg_sim_text(struct sg_rng *rng, enum sg_sim_kind kind, const char *name, const char *salt,
            char *out)
{
	const size_t n = SG_SIM_TEXT_MAX + 1;
	char tag[4];
	uint64_t r = sg_rng_next(rng);

	switch (kind) {
	case SG_SIM_ID:
		id_tag(salt, name, tag);
		snprintf(out, n, "%s_%012llx", tag, (unsigned long long)(r >> 16));
		break;
	case SG_SIM_UUID: {
		/* Drawn in order: as arguments, the draws' order was the compiler's. */
		unsigned variant = 8 + (unsigned)sg_sim_below(rng, 4);
		unsigned clock = (unsigned)sg_sim_below(rng, 0x1000);
		uint64_t node = sg_rng_next(rng) >> 16;
		snprintf(out, n, "%08x-%04x-4%03x-%x%03x-%012llx", (unsigned)(r >> 32),
		         (unsigned)(r >> 16) & 0xffff, (unsigned)r & 0xfff, variant, clock,
		         (unsigned long long)node);
		break;
	}
	case SG_SIM_URI:
		snprintf(out, n, "https://example.com/%s/%08llx", PICK(rng, words),
		         (unsigned long long)(r >> 32));
		break;
	case SG_SIM_HOST:
		snprintf(out, n, "%s.example.com", PICK(rng, words));
		break;
	case SG_SIM_IPV4: /* TEST-NET-1, never a real host */
		snprintf(out, n, "192.0.2.%u", 1 + (unsigned)(r % 254));
		break;
	case SG_SIM_PHONE: /* a range reserved for drama, never a real line */
		snprintf(out, n, "+44 20 7946 0%03u", (unsigned)(r % 1000));
		break;
	case SG_SIM_DATETIME:
	case SG_SIM_DATE:
	case SG_SIM_TIME:
		write_time(rng, kind, out, n);
		break;
	case SG_SIM_EMAIL:
	case SG_SIM_USER:
	case SG_SIM_FULLNAME:
	case SG_SIM_FIRST:
	case SG_SIM_LAST:
		write_person(rng, kind, out, n);
		break;
	case SG_SIM_COMPANY:
		snprintf(out, n, "%s", PICK(rng, companies));
		break;
	case SG_SIM_STATUS:
		snprintf(out, n, "%s", PICK(rng, statuses));
		break;
	case SG_SIM_COUNTRY:
		snprintf(out, n, "%s", PICK(rng, countries));
		break;
	case SG_SIM_CITY:
		snprintf(out, n, "%s", PICK(rng, cities));
		break;
	case SG_SIM_CURRENCY:
		snprintf(out, n, "%s", PICK(rng, currencies));
		break;
	case SG_SIM_WORDS:
	case SG_SIM_SENTENCE:
	case SG_SIM_TITLE:
		write_words(rng, kind, out, n);
		break;
	}
	return strlen(out);
}

/* Plain text: words up to lo (one word past it at most), then cut to hi. */
static long
fit_words(struct sg_rng *r, char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	while (len < lo) {
		const char *w = PICK(r, words);
		size_t wl = strlen(w);
		buf[len++] = ' ';
		memcpy(buf + len, w, wl);
		len += wl;
	}
	return (long)(len < hi ? len : hi);
}

/* A URI grows by path segments and is cut only inside what it grew by. */
static long
fit_uri(struct sg_rng *r, char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	if (len > hi)
		return -1;
	while (len < lo) {
		const char *w = PICK(r, words);
		size_t wl = strlen(w);
		buf[len++] = '/';
		memcpy(buf + len, w, wl);
		len += wl;
	}
	return (long)(len < hi ? len : hi);
}

/* RFC 5321's longest local part. */
#define LOCAL_MAX 64

/* An address changes only its local part: shorter, or longer by letters. */
static long
fit_email(struct sg_rng *r, char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	char *at = memchr(buf, '@', len);
	size_t local = at ? (size_t)(at - buf) : 0, domain = len - local;

	if (at == NULL) /* defensive: every address is written with one */
		return -1;
	if (len > hi) {
		if (hi <= domain)
			return -1;
		local = (size_t)hi - domain;
		while (local > 0 && buf[local - 1] == '.')
			local--; /* a local part never ends with a dot */
	}
	while (local + domain < lo && local < LOCAL_MAX) {
		const char *w = PICK(r, words);
		size_t add = strlen(w);
		if (add > lo - local - domain)
			add = (size_t)(lo - local - domain);
		if (add > LOCAL_MAX - local)
			add = LOCAL_MAX - local;
		memmove(buf + local + add, at, domain);
		memcpy(buf + local, w, add);
		at = buf + local + add;
		local += add;
	}
	memmove(buf + local, at, domain);
	len = local + domain;
	return local > 0 && len >= lo && len <= hi ? (long)len : -1;
}

long
sg_sim_fit(struct sg_rng *r, enum sg_sim_kind kind, bool checked, char *buf, size_t len,
           size_t room, uint64_t lo, uint64_t hi)
{
	if (lo > hi || lo + 32 > room)
		return -1;
	if (!checked)
		return fit_words(r, buf, len, lo, hi);
	if (kind == SG_SIM_URI)
		return fit_uri(r, buf, len, lo, hi);
	if (kind == SG_SIM_EMAIL)
		return fit_email(r, buf, len, lo, hi);
	/* Times, dates and uuids have one length. */
	return len >= lo && len <= hi ? (long)len : -1;
}

size_t
sg_sim_reroll(struct sg_rng *r, const char *s, size_t n, char *out)
{
	size_t keep = strcspn(s, "_-");

	keep = keep < n ? keep + 1 : 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (i >= keep && is_lower(ch))
			ch = (char)('a' + sg_sim_below(r, 26));
		else if (i >= keep && is_upper(ch))
			ch = (char)('A' + sg_sim_below(r, 26));
		else if (i >= keep && is_digit(ch))
			ch = (char)('0' + sg_sim_below(r, 10));
		out[i] = ch;
	}
	return n;
}
