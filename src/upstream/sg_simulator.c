/*
 * sg_simulator: synthetic output for sandbox calls.
 *
 * Every draw comes from xoshiro256**, seeded by BLAKE2b over (seed, salt,
 * canonical input), so a call always gets the same answer and a different
 * call gets a different one.  The shape comes from the definition's
 * examples when it has them, otherwise from the output schema, with
 * realistic text for common property names.  Output properties named like
 * input properties echo the input.  Whatever is built is validated against
 * the schema before it leaves: the answer is NULL, never a wrong output.
 *
 * Apply time calls this once (with no input) to prove that sandbox calls
 * cannot fail later, so whether generation succeeds must not depend on the
 * draws: a choice among candidates takes the first that the schema accepts,
 * and an array whose items cannot be made is left empty when that is
 * allowed, rather than only when the draw happened to say zero items.
 */
#include "upstream/sg_simulator.h"

#include "core/sg_json_alloc.h"
#include "core/sg_rng.h"
#include "upstream/sg_sim_seed.h"

#include <math.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Generated values per call; a schema that needs more is refused. */
#define SIM_MAX_NODES 10000
/* Longest generated string: a longer minLength needs an example. */
#define SIM_MAX_STRING 8192
/* Integers stay exact in the doubles that the validator compares. */
#define SIM_INT_LIMIT 9007199254740992.0
/* Longest id that is re-rolled; a longer one is kept as the example has it. */
#define SIM_MAX_REROLL 256

struct memo {
	const json_t *node;
	struct sg_schema *s;
};

struct gen {
	struct sg_rng rng;
	size_t nodes;
	bool vary;          /* re-roll ids taken from examples */
	bool varied;        /* an id was re-rolled in this attempt */
	const json_t *echo; /* the call's input; borrowed for the call */
	const char *salt;
	const struct sg_schema *root;
	const json_t *checked; /* examples known to match root: picked without a check */
	struct memo *memo;     /* each sub-schema is compiled at most once per call */
	size_t n_memo, cap_memo;
};

/* ---- randomness ------------------------------------------------------- */

static uint64_t
next64(struct gen *g)
{
	return sg_rng_next(&g->rng);
}

/* A number in [0, n), n >= 1.  Modulo bias is harmless in synthetic data. */
static uint64_t
below(struct gen *g, uint64_t n)
{
	return n > 1 ? next64(g) % n : 0;
}

static void
reseed(struct gen *g, uint64_t h)
{
	sg_rng_seed(&g->rng, h);
	g->nodes = 0;
	g->varied = false;
}

/* ---- candidate checks --------------------------------------------------- */

/*
 * `node` compiled on its own, kept until the call ends.  Sub-schemas of a
 * compiled document always compile, so NULL means out of memory.
 */
static const struct sg_schema *
compiled(struct gen *g, const json_t *node)
{
	struct sg_schema_error err;
	struct sg_schema *s;

	if (node == sg_schema_json(g->root))
		return g->root;
	for (size_t i = 0; i < g->n_memo; i++)
		if (g->memo[i].node == node)
			return g->memo[i].s;
	if (g->n_memo == g->cap_memo) {
		size_t cap = g->cap_memo ? 2 * g->cap_memo : 8;
		struct memo *m = realloc(g->memo, cap * sizeof(*m));
		if (m == NULL)
			return NULL;
		g->memo = m;
		g->cap_memo = cap;
	}
	if ((s = sg_schema_compile(node, &err)) != NULL)
		g->memo[g->n_memo++] = (struct memo){node, s};
	return s;
}

/* Whether the sub-schema `node` accepts `v`; out of memory proves nothing. */
static bool
accepts(struct gen *g, const json_t *node, const json_t *v)
{
	/* Most nodes belong to the compiled output schema: reuse its regexes. */
	int rc = sg_schema_validate_sub_jansson(g->root, node, v);
	if (rc != 1)
		return rc == 0;
	const struct sg_schema *s = compiled(g, node);
	return s != NULL && sg_schema_validate_jansson(s, v, NULL, 0, NULL) == 0;
}

/* One value of `list` that `node` accepts, from a drawn start; NULL if none. */
static const json_t *
pick(struct gen *g, const json_t *node, const json_t *list)
{
	size_t n = json_array_size(list), start = (size_t)below(g, n);

	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(list, (start + i) % n);
		if (accepts(g, node, v))
			return v;
	}
	return NULL;
}

/* ---- text --------------------------------------------------------------- */

enum text {
	X_WORDS,
	X_SENTENCE,
	X_TITLE,
	X_ID,
	X_EMAIL,
	X_FULLNAME,
	X_FIRST,
	X_LAST,
	X_USER,
	X_COMPANY,
	X_PHONE,
	X_DATETIME,
	X_DATE,
	X_TIME,
	X_UUID,
	X_URI,
	X_HOST,
	X_IPV4,
	X_STATUS,
	X_COUNTRY,
	X_CITY,
	X_CURRENCY,
};

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

#define PICK(g, a) ((a)[below((g), sizeof(a) / sizeof((a)[0]))])

static const struct {
	const char *name;
	enum text kind;
} formats[] = {
    {"email", X_EMAIL}, {"date-time", X_DATETIME}, {"date", X_DATE},
    {"time", X_TIME},   {"uuid", X_UUID},          {"uri", X_URI},
    {"url", X_URI},     {"uri-reference", X_URI},  {"hostname", X_HOST},
    {"ipv4", X_IPV4},
};

/*
 * Property names, lowercased, tried in order: '=' whole name, '$' suffix,
 * '*' anywhere.  Earlier rules win, so "company_name" is a company.
 */
static const struct {
	const char *word;
	char how;
	enum text kind;
} name_rules[] = {
    {"email", '*', X_EMAIL},
    {"_at", '$', X_DATETIME},
    {"timestamp", '*', X_DATETIME},
    {"date", '*', X_DATE},
    {"first_name", '*', X_FIRST},
    {"firstname", '*', X_FIRST},
    {"given_name", '*', X_FIRST},
    {"last_name", '*', X_LAST},
    {"lastname", '*', X_LAST},
    {"surname", '*', X_LAST},
    {"family_name", '*', X_LAST},
    {"username", '*', X_USER},
    {"login", '=', X_USER},
    {"company", '*', X_COMPANY},
    {"organization", '*', X_COMPANY},
    {"organisation", '*', X_COMPANY},
    {"employer", '*', X_COMPANY},
    {"name", '*', X_FULLNAME},
    {"phone", '*', X_PHONE},
    {"mobile", '*', X_PHONE},
    {"url", '*', X_URI},
    {"website", '*', X_URI},
    {"link", '*', X_URI},
    {"host", '*', X_HOST},
    {"ip", '=', X_IPV4},
    {"ip_address", '=', X_IPV4},
    {"subject", '*', X_TITLE},
    {"title", '*', X_TITLE},
    {"status", '*', X_STATUS},
    {"state", '=', X_STATUS},
    {"country", '*', X_COUNTRY},
    {"city", '*', X_CITY},
    {"currency", '*', X_CURRENCY},
    {"message", '*', X_SENTENCE},
    {"body", '*', X_SENTENCE},
    {"description", '*', X_SENTENCE},
    {"text", '*', X_SENTENCE},
    {"note", '*', X_SENTENCE},
    {"comment", '*', X_SENTENCE},
    {"summary", '*', X_SENTENCE},
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

/* "id", "contact_id" and "contactId" name ids; "paid" and "valid" do not. */
static bool
is_id_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && (strcmp(name, "id") == 0 || ends_with(name, "_id") ||
	                 (n > 2 && ends_with(name, "Id") && is_lower(name[n - 3])));
}

static enum text
text_for_name(const char *name)
{
	char low[64];
	size_t n = 0;

	if (name == NULL)
		return X_WORDS;
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
	return X_WORDS;
}

/* The format wins over the name: an "id" with format uuid is a uuid. */
static enum text
text_kind(const char *format, const char *name)
{
	for (size_t i = 0; format && i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(format, formats[i].name) == 0)
			return formats[i].kind;
	return is_id_name(name) ? X_ID : text_for_name(name);
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
id_tag(const struct gen *g, const char *name, char out[4])
{
	size_t n = strlen(name);
	const char *stem = name, *end = name + n - 2 - (n > 2 && name[n - 3] == '_');

	if (n == 2) {
		stem = strrchr(g->salt, '.') ? strrchr(g->salt, '.') + 1 : g->salt;
		end = stem + strlen(stem);
	}
	for (const char *p = stem; p + 1 < end; p++) /* the last word: "contact" */
		if (*p == '_')
			stem = p + 1;
	tag_of(stem, (size_t)(end - stem), out);
}

/* A moment in 2023-2025: plausible for records, and fixed by the draw. */
static void
write_time(struct gen *g, enum text kind, char *out, size_t n)
{
	static const char *const fmt[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d", "%H:%M:%SZ"};
	time_t t = (time_t)(1672531200 + below(g, 3 * 365 * 86400));
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, fmt[kind == X_DATETIME ? 0 : kind == X_DATE ? 1 : 2], &tm);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = to_lower(*s);
}

static void
write_person(struct gen *g, enum text kind, char *out, size_t n)
{
	const char *first = PICK(g, first_names), *last = PICK(g, last_names);
	unsigned num = (unsigned)below(g, 100);

	if (kind == X_EMAIL)
		snprintf(out, n, "%s.%s%u@example.com", first, last, num);
	else if (kind == X_USER)
		snprintf(out, n, "%s.%s%u", first, last, num);
	else
		snprintf(out, n, "%s%s%s", kind == X_LAST ? "" : first,
		         kind == X_FULLNAME ? " " : "", kind == X_FIRST ? "" : last);
	if (kind == X_EMAIL || kind == X_USER)
		lower(out);
}

static void
write_words(struct gen *g, enum text kind, char *out, size_t n)
{
	const char *a = PICK(g, words), *b = PICK(g, words), *c = PICK(g, words);

	if (kind == X_SENTENCE)
		snprintf(out, n, "Notes on the %s %s %s.", a, b, c);
	else if (kind == X_TITLE)
		snprintf(out, n, "%c%s %s %s", a[0] - 'a' + 'A', a + 1, b, c);
	else
		snprintf(out, n, "%s %s", a, b);
}

static void
write_text(struct gen *g, enum text kind, const char *name, char *out, size_t n)
{
	char tag[4];
	uint64_t r = next64(g);

	switch (kind) {
	case X_ID:
		id_tag(g, name, tag);
		snprintf(out, n, "%s_%012llx", tag, (unsigned long long)(r >> 16));
		break;
	case X_UUID:
		snprintf(out, n, "%08x-%04x-4%03x-%x%03x-%012llx", (unsigned)(r >> 32),
		         (unsigned)(r >> 16) & 0xffff, (unsigned)r & 0xfff,
		         8 + (unsigned)below(g, 4), (unsigned)below(g, 0x1000),
		         (unsigned long long)(next64(g) >> 16));
		break;
	case X_URI:
		snprintf(out, n, "https://example.com/%s/%08llx", PICK(g, words),
		         (unsigned long long)(r >> 32));
		break;
	case X_HOST:
		snprintf(out, n, "%s.example.com", PICK(g, words));
		break;
	case X_IPV4: /* TEST-NET-1, never a real host */
		snprintf(out, n, "192.0.2.%u", 1 + (unsigned)(r % 254));
		break;
	case X_PHONE: /* a range reserved for drama, never a real line */
		snprintf(out, n, "+44 20 7946 0%03u", (unsigned)(r % 1000));
		break;
	case X_DATETIME:
	case X_DATE:
	case X_TIME:
		write_time(g, kind, out, n);
		break;
	case X_EMAIL:
	case X_USER:
	case X_FULLNAME:
	case X_FIRST:
	case X_LAST:
		write_person(g, kind, out, n);
		break;
	case X_COMPANY:
		snprintf(out, n, "%s", PICK(g, companies));
		break;
	case X_STATUS:
		snprintf(out, n, "%s", PICK(g, statuses));
		break;
	case X_COUNTRY:
		snprintf(out, n, "%s", PICK(g, countries));
		break;
	case X_CITY:
		snprintf(out, n, "%s", PICK(g, cities));
		break;
	case X_CURRENCY:
		snprintf(out, n, "%s", PICK(g, currencies));
		break;
	case X_WORDS:
	case X_SENTENCE:
	case X_TITLE:
		write_words(g, kind, out, n);
		break;
	}
}

/* ---- generation ------------------------------------------------------- */

/* minLength and friends; compiling proved them whole and not negative. */
static uint64_t
count_kw(const json_t *node, const char *key, uint64_t dflt)
{
	const json_t *v = json_object_get(node, key);
	double d = json_number_value(v);

	if (!json_is_number(v))
		return dflt;
	return d <= 0 ? 0 : d >= 1e19 ? UINT64_MAX : (uint64_t)d;
}

/*
 * Pads `text` with words up to `lo` characters, then cuts it to `hi`.  All
 * generated text is ASCII, so bytes are characters.
 */
static json_t *
fit_length(struct gen *g, const char *text, uint64_t lo, uint64_t hi)
{
	size_t len = strlen(text), cap = (size_t)lo + 32;
	char *buf = len >= lo ? NULL : malloc(cap);
	json_t *s;

	if (buf == NULL)
		return json_stringn(text, len < hi ? len : (size_t)hi);
	memcpy(buf, text, len);
	while (len < lo) { /* one word past lo at most: the 32 spare bytes hold it */
		const char *w = PICK(g, words);
		size_t wl = strlen(w);
		buf[len++] = ' ';
		memcpy(buf + len, w, wl);
		len += wl;
	}
	s = json_stringn(buf, len < hi ? len : (size_t)hi);
	free(buf);
	return s;
}

static json_t *
gen_string(struct gen *g, const json_t *node, const char *name)
{
	uint64_t lo = count_kw(node, "minLength", 0), hi = count_kw(node, "maxLength", UINT64_MAX);
	const char *format = json_string_value(json_object_get(node, "format"));
	char text[256];

	/* A regex cannot be run backwards: such strings come from examples or echo. */
	if (json_object_get(node, "pattern") != NULL || lo > hi || lo > SIM_MAX_STRING)
		return NULL;
	write_text(g, text_kind(format, name), name, text, sizeof(text));
	return fit_length(g, text, lo, hi);
}

static bool
in_bounds(const json_t *node, double x)
{
	const json_t *mn = json_object_get(node, "minimum"), *mx = json_object_get(node, "maximum");
	const json_t *xmn = json_object_get(node, "exclusiveMinimum");
	const json_t *xmx = json_object_get(node, "exclusiveMaximum");

	return isfinite(x) && !(mn && x < json_number_value(mn)) &&
	       !(mx && x > json_number_value(mx)) && !(xmn && x <= json_number_value(xmn)) &&
	       !(xmx && x >= json_number_value(xmx));
}

/*
 * The tightest bounds, inclusive or not.  An open side gets a span of 1000
 * from the other, so unbounded numbers stay human-sized.
 */
static void
num_range(const json_t *node, double *lo, double *hi)
{
	const json_t *mn = json_object_get(node, "minimum"), *mx = json_object_get(node, "maximum");
	const json_t *xmn = json_object_get(node, "exclusiveMinimum");
	const json_t *xmx = json_object_get(node, "exclusiveMaximum");

	*lo =
	    fmax(mn ? json_number_value(mn) : -INFINITY, xmn ? json_number_value(xmn) : -INFINITY);
	*hi = fmin(mx ? json_number_value(mx) : INFINITY, xmx ? json_number_value(xmx) : INFINITY);
	if (isinf(*lo))
		*lo = isinf(*hi) ? 0 : *hi - 1000;
	if (isinf(*hi))
		*hi = *lo + 1000;
}

static json_t *
gen_integer(struct gen *g, const json_t *node)
{
	double lo, hi;

	num_range(node, &lo, &hi);
	lo = ceil(lo);
	hi = floor(hi);
	if (lo > SIM_INT_LIMIT || hi < -SIM_INT_LIMIT)
		return NULL;
	lo = fmax(lo, -SIM_INT_LIMIT);
	hi = fmin(hi, SIM_INT_LIMIT);
	/* An exclusive bound that is a whole number: one step inside. */
	if (!in_bounds(node, lo))
		lo += 1;
	if (!in_bounds(node, hi))
		hi -= 1;
	if (lo > hi)
		return NULL;
	int64_t a = (int64_t)lo, span = (int64_t)hi - a;
	json_int_t v = a + (int64_t)below(g, (uint64_t)span + 1);
	return in_bounds(node, (double)v) ? json_integer(v) : NULL;
}

/*
 * A draw across the range, rounded to quarters when that stays inside
 * (binary fractions print short: 12.25, never 12.300000000000001); the
 * fallbacks serve ranges so narrow that only neighbouring doubles fit.
 */
static json_t *
gen_number(struct gen *g, const json_t *node)
{
	double lo, hi, u = (double)below(g, 1000001) / 1e6;

	num_range(node, &lo, &hi);
	double x = lo * (1 - u) + hi * u;
	const double tries[] = {round(x * 4) / 4, x, lo / 2 + hi / 2, nextafter(lo, hi),
	                        nextafter(hi, lo)};
	for (size_t i = 0; lo <= hi && i < sizeof(tries) / sizeof(tries[0]); i++)
		if (in_bounds(node, tries[i]))
			return json_real(tries[i]);
	return NULL;
}

/*
 * A value complete() may finish.  It never changes a value in place: it
 * replaces an object's or array's members and re-rolls a string into a new
 * one.  So a container is copied one level and everything else is shared,
 * even with the snapshot's examples (jansson's reference counts are
 * atomic).  A deep copy of each example cost about 6,000 instructions a call.
 */
static json_t *
own(const json_t *v)
{
	json_t *m = (json_t *)v;
	return json_is_object(m) || json_is_array(m) ? json_copy(m) : json_incref(m);
}

static json_t *gen_node(struct gen *g, const json_t *node, const char *name, int depth);
static json_t *complete(struct gen *g, json_t *v, const json_t *node, const char *name, int depth);

/* The input's value for a root property, when the property's schema takes it. */
static const json_t *
echo_value(struct gen *g, const char *key, size_t klen, const json_t *sub)
{
	const json_t *v = json_is_object(g->echo) ? json_object_getn(g->echo, key, klen) : NULL;

	/* The output object is one level above the echoed value. */
	if (v == NULL || sg_json_depth(v, SG_SCHEMA_MAX_DEPTH) >= SG_SCHEMA_MAX_DEPTH)
		return NULL;
	return accepts(g, sub, v) ? v : NULL;
}

/* Sets `key` of `obj`: the echo, else the value already there (completed), else a new one. */
static int
fill_one(struct gen *g, json_t *obj, const char *key, size_t klen, const json_t *sub, int depth)
{
	const json_t *in = depth == 1 ? echo_value(g, key, klen, sub) : NULL;
	json_t *have = json_object_getn(obj, key, klen), *v;

	if (in != NULL)
		v = own(in);
	else if (have != NULL)
		v = complete(g, own(have), sub, key, depth + 1);
	else
		v = gen_node(g, sub, key, depth + 1);
	return v ? json_object_setn_new(obj, key, klen, v) : -1;
}

/*
 * Every declared property, optional or not, so that outputs look complete;
 * then each required name left to additionalProperties (absent: anything).
 */
static int
fill_object(struct gen *g, json_t *obj, const json_t *node, int depth)
{
	json_t *props = json_object_get(node, "properties");
	const json_t *req = json_object_get(node, "required"), *name;
	const json_t *extra = json_object_get(node, "additionalProperties");
	size_t i;

	if (depth > SG_SCHEMA_MAX_DEPTH)
		return -1;
	for (void *it = json_object_iter(props); it; it = json_object_iter_next(props, it))
		if (fill_one(g, obj, json_object_iter_key(it), json_object_iter_key_len(it),
		             json_object_iter_value(it), depth) != 0)
			return -1;
	json_array_foreach(req, i, name)
	{
		const char *key = json_string_value(name);
		size_t klen = json_string_length(name);
		if (key != NULL && json_object_getn(obj, key, klen) == NULL &&
		    fill_one(g, obj, key, klen, extra ? extra : json_true(), depth) != 0)
			return -1;
	}
	return 0;
}

static json_t *
gen_object(struct gen *g, const json_t *node, int depth)
{
	json_t *obj = json_object();

	if (obj != NULL && fill_object(g, obj, node, depth) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

/*
 * minItems up to three more, within maxItems.  Items that cannot be made
 * leave the array empty when that is allowed: a valid empty list beats no
 * answer, and the outcome must not hang on the drawn length.
 */
static json_t *
gen_array(struct gen *g, const json_t *node, const char *name, int depth)
{
	const json_t *items = json_object_get(node, "items");
	uint64_t lo = count_kw(node, "minItems", 0), hi = count_kw(node, "maxItems", UINT64_MAX);

	if (lo > hi || lo > SIM_MAX_NODES || depth > SG_SCHEMA_MAX_DEPTH)
		return NULL;
	hi = hi > lo + 3 ? lo + 3 : hi;
	uint64_t n = lo + below(g, hi - lo + 1);
	json_t *arr = json_array();
	for (uint64_t i = 0; arr != NULL && i < n; i++) {
		json_t *v = gen_node(g, items ? items : json_true(), name, depth + 1);
		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			arr = lo == 0 && g->nodes <= SIM_MAX_NODES ? json_array() : NULL;
			break;
		}
	}
	return arr;
}

/* What a schema without `type` most plainly describes. */
static const char *
implied_type(const json_t *node)
{
	static const struct {
		const char *kw, *type;
	} hints[] = {
	    {"properties", "object"},
	    {"required", "object"},
	    {"additionalProperties", "object"},
	    {"items", "array"},
	    {"minItems", "array"},
	    {"maxItems", "array"},
	    {"minimum", "number"},
	    {"maximum", "number"},
	    {"exclusiveMinimum", "number"},
	    {"exclusiveMaximum", "number"},
	};
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (json_object_get(node, hints[i].kw) != NULL)
			return hints[i].type;
	return "string"; /* anything goes, and text reads best */
}

static json_t *
gen_type(struct gen *g, const json_t *node, const char *type, const char *name, int depth)
{
	if (strcmp(type, "string") == 0)
		return gen_string(g, node, name);
	if (strcmp(type, "integer") == 0)
		return gen_integer(g, node);
	if (strcmp(type, "number") == 0)
		return gen_number(g, node);
	if (strcmp(type, "boolean") == 0)
		return json_boolean(below(g, 2));
	if (strcmp(type, "object") == 0)
		return gen_object(g, node, depth);
	if (strcmp(type, "array") == 0)
		return gen_array(g, node, name, depth);
	if (strcmp(type, "null") == 0)
		return json_null();
	return NULL; /* defensive: compiling refuses other type names */
}

/* The first listed type that can be made, null only when nothing else can. */
static json_t *
gen_typed(struct gen *g, const json_t *node, const char *name, int depth)
{
	const json_t *type = json_object_get(node, "type"), *t;
	bool null_ok = false;
	size_t i;

	if (json_is_string(type))
		return gen_type(g, node, json_string_value(type), name, depth);
	if (!json_is_array(type))
		return gen_type(g, node, implied_type(node), name, depth);
	json_array_foreach(type, i, t)
	{
		const char *tn = json_string_value(t);
		json_t *v;
		if (tn != NULL && strcmp(tn, "null") == 0)
			null_ok = true;
		else if (tn != NULL && (v = gen_type(g, node, tn, name, depth)) != NULL)
			return v;
	}
	return null_ok ? json_null() : NULL;
}

static json_t *
from_examples(struct gen *g, const json_t *node, const json_t *list, const char *name, int depth)
{
	/* The same single draw pick() makes, whose first candidate always matches here. */
	const json_t *ex = list != NULL && list == g->checked
	                       ? json_array_get(list, (size_t)below(g, json_array_size(list)))
	                       : pick(g, node, list);
	return ex ? complete(g, own(ex), node, name, depth) : NULL;
}

/* const, then enum, then the schema's own examples, then the type. */
static json_t *
gen_node(struct gen *g, const json_t *node, const char *name, int depth)
{
	const json_t *c = json_object_get(node, "const"), *e = json_object_get(node, "enum");
	json_t *v;

	if (json_is_false(node) || ++g->nodes > SIM_MAX_NODES)
		return NULL;
	if (c != NULL)
		return accepts(g, node, c) ? json_deep_copy(c) : NULL;
	if (e != NULL)
		return (c = pick(g, node, e)) ? json_deep_copy(c) : NULL;
	v = from_examples(g, node, json_object_get(node, "examples"), name, depth);
	return v ? v : gen_typed(g, node, name, depth);
}

/*
 * Same shape, new characters: letters stay letters, digits stay digits, and
 * a tag such as "ct_" stays as it is, so the id still reads like the
 * example's and usually still matches its pattern (when not, the caller
 * retries without re-rolling).  Takes ownership of `v`.
 */
static json_t *
reroll(struct gen *g, json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), keep = strcspn(s, "_-");
	char buf[SIM_MAX_REROLL];

	if (n > sizeof(buf))
		return v;
	keep = keep < n ? keep + 1 : 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (i >= keep && is_lower(ch))
			ch = (char)('a' + below(g, 26));
		else if (i >= keep && is_upper(ch))
			ch = (char)('A' + below(g, 26));
		else if (i >= keep && is_digit(ch))
			ch = (char)('0' + below(g, 10));
		buf[i] = ch;
	}
	json_t *r = json_stringn(buf, n);
	json_decref(v);
	g->varied = true;
	return r;
}

static int
complete_items(struct gen *g, json_t *arr, const json_t *node, const char *name, int depth)
{
	const json_t *items = json_object_get(node, "items");

	if (depth > SG_SCHEMA_MAX_DEPTH)
		return -1;
	for (size_t i = 0; items != NULL && i < json_array_size(arr); i++) {
		json_t *v = complete(g, own(json_array_get(arr, i)), items, name, depth + 1);
		if (v == NULL || json_array_set_new(arr, i, v) != 0)
			return -1;
	}
	return 0;
}

/*
 * Finishes a value taken from an example: objects gain what the schema
 * declares and the example lacks, and (when varying) id strings are
 * re-rolled so that calls do not all share one id.  Takes ownership of `v`.
 */
static json_t *
complete(struct gen *g, json_t *v, const json_t *node, const char *name, int depth)
{
	int rc = 0;

	if (json_is_object(v))
		rc = fill_object(g, v, node, depth);
	else if (json_is_array(v))
		rc = complete_items(g, v, node, name, depth);
	else if (json_is_string(v) && g->vary && is_id_name(name))
		return reroll(g, v);
	if (rc != 0) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static json_t *
build(struct gen *g, const json_t *examples, uint64_t h)
{
	const json_t *root = sg_schema_json(g->root);
	json_t *out = NULL;

	reseed(g, h);
	if (json_array_size(examples) > 0)
		out = from_examples(g, root, examples, NULL, 1);
	if (out == NULL)
		out = gen_node(g, root, NULL, 1);
	if (out != NULL && sg_schema_validate_jansson(g->root, out, NULL, 0, NULL) != 0) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

static json_t *
generate(const struct sg_schema *output, const json_t *examples, bool checked, const json_t *input,
         uint64_t seed, const char *salt)
{
	struct gen g = {.vary = true, .echo = input, .salt = salt ? salt : "", .root = output};
	uint64_t h;
	json_t *out = NULL;

	if (checked)
		g.checked = examples;
	if (output == NULL || sg_sim_seed(seed, g.salt, input, &h) != 0)
		return NULL;
	sg_json_alloc_watch();
	out = build(&g, examples, h);
	/* A re-rolled id may break a pattern; the examples' own ids always fit. */
	if (out == NULL && g.varied) {
		g.vary = false;
		out = build(&g, examples, h);
	}
	/*
	 * The answer is a pure function of the call; out of memory a step may
	 * have fallen back to another one, so there is none.
	 */
	if (sg_json_alloc_unwatch()) {
		json_decref(out);
		out = NULL;
	}
	for (size_t i = 0; i < g.n_memo; i++)
		sg_schema_free(g.memo[i].s);
	free(g.memo);
	return out;
}

json_t *
sg_sim_generate(const struct sg_schema *output, const json_t *examples, const json_t *input,
                uint64_t seed, const char *salt)
{
	return generate(output, examples, false, input, seed, salt);
}

json_t *
sg_sim_generate_checked(const struct sg_schema *output, const json_t *examples, const json_t *input,
                        uint64_t seed, const char *salt)
{
	return generate(output, examples, true, input, seed, salt);
}
