/*
 * The scan runs in two phases over one buffer of every value's text:
 *
 *  1. One database of every rule, without start-of-match tracking (SOM),
 *     runs over the whole buffer and only notes which (value, rule) pairs
 *     hold a candidate.  Measured on bench_dlp's body, every rule with
 *     HS_FLAG_SOM_LEFTMOST in one database scans about 7x slower than the
 *     same database without it: SOM is what costs.
 *  2. Each rule also has a database of its own with SOM, run over each
 *     value that rule flagged, alone: that gives the match's span, which
 *     the rule's structure check confirms.  Most values hold nothing, and
 *     a flagged one is scanned again for one rule, not for all of them.
 *
 * HS_FLAG_SINGLEMATCH would make phase 1 cheaper still, but it reports a
 * rule once per buffer, not once per value, so it cannot say which values
 * to look at again: no rule uses it.
 *
 * Matches are delivered in rising end offset, so a rule's newest hit is the
 * only one a new match can overlap: it is extended in place, and the hits
 * of a value stay few however many ends a pattern reports (an email matches
 * at each of its last letters).
 */
#include "dlp/sg_dlp_scan.h"

#include <hs/hs.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer patterns are nearly always a mistake, and big automata take long to build. */
#define PATTERN_MAX_LEN 1024
/* Raw hits kept before they are sorted and cut to SG_DLP_MAX_HITS. */
#define RAW_LIMIT (4 * SG_DLP_MAX_HITS)
#define NO_VALUE UINT32_MAX
/* A schema that says what a field holds is as sure as a finding gets. */
#define HINT_CONFIDENCE 100
#define PHASE1_FLAGS 0

struct dlp_rule {
	char *id;
	char *data_class;
	char *field_hint; /* NULL: any field */
	enum sg_dlp_check check;
	double min_entropy;
	uint8_t confidence;
};

struct sg_dlp_db {
	hs_database_t *fast; /* phase 1: which values hold a candidate for which rule */
	hs_database_t **som; /* phase 2, per rule: where each match starts and ends */
	struct dlp_rule *rules;
	size_t n;
	uint64_t serial; /* tells the scanner's scratch which databases it serves */
};

/* A hit while the scan runs: rule >= db->n is hint (rule - db->n). */
struct raw_hit {
	uint32_t rule, value, start, end;
};

struct cand {
	uint32_t value, rule;
};

/* The member name a value sits under, read from the live document during the scan. */
struct name {
	const char *s;
	uint32_t len;
};

struct sg_dlp_scanner {
	hs_scratch_t *scratch;
	uint64_t scratch_serial; /* the database the scratch was last grown for */

	char *buf; /* every value's text, each followed by a NUL */
	size_t buf_len, buf_cap;
	uint32_t *offs; /* where each value starts in buf */
	struct sg_dlp_value *vals;
	struct name *names;
	size_t n_vals, vals_cap;

	char *ptrs; /* every value's pointer, each NUL-terminated */
	size_t ptrs_len, ptrs_cap;
	char *path; /* the pointer of the container being walked */
	size_t path_len, path_cap;

	struct cand *cands; /* phase 1's (value, rule) pairs */
	size_t n_cands, cands_cap;
	uint32_t *marked; /* per rule: the last value phase 1 flagged for it, + 1 */
	size_t marked_cap;

	struct raw_hit *raw; /* cap RAW_LIMIT */
	size_t n_raw;
	int32_t *open; /* per rule: its newest raw hit, or -1 */
	size_t open_cap;
	struct sg_dlp_hit hits[SG_DLP_MAX_HITS];
};

/* One scan's state, shared with Vectorscan's callbacks. */
struct scan {
	struct sg_dlp_scanner *sc;
	const struct sg_dlp_db *db;
	const struct sg_dlp_hint *hints;
	uint32_t base;       /* phase 2: where the scanned value starts in buf */
	uint32_t cached;     /* the value the last match fell in */
	uint32_t stop_value; /* after a cut, hits past this value cannot be kept */
	bool truncated;
	bool oom;
};

static _Atomic uint64_t db_serial;

/* ---- compiling ---- */

static void
rule_free(struct dlp_rule *r)
{
	free(r->id);
	free(r->data_class);
	free(r->field_hint);
}

void
sg_dlp_db_free(struct sg_dlp_db *db)
{
	if (db == NULL)
		return;
	hs_free_database(db->fast);
	for (size_t i = 0; i < db->n; i++) {
		rule_free(&db->rules[i]);
		if (db->som != NULL)
			hs_free_database(db->som[i]);
	}
	free(db->som);
	free(db->rules);
	free(db);
}

size_t
sg_dlp_db_rules(const struct sg_dlp_db *db)
{
	return db->n;
}

static const struct sg_dlp_rule_def *
def_at(const struct sg_dlp_rule_def *custom, size_t i)
{
	return i < sg_dlp_builtin_count ? &sg_dlp_builtin_rules[i]
	                                : &custom[i - sg_dlp_builtin_count];
}

/* Appends "; " (after the first) and a formatted message to err, cut to fit. */
static void __attribute__((format(printf, 3, 4)))
err_add(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used = strnlen(err, errlen);
	va_list ap;
	if (errlen == 0 || used + 1 >= errlen)
		return;
	if (used > 0) {
		snprintf(err + used, errlen - used, "; ");
		used = strnlen(err, errlen);
	}
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

/* Vectorscan's words for a few mistakes, in a policy writer's terms. */
static const char *
pattern_advice(const char *hs_message)
{
	if (strstr(hs_message, "empty buffer") != NULL)
		return "it can match an empty string; make it require at least one character";
	if (strstr(hs_message, "too large") != NULL || strstr(hs_message, "exhausted") != NULL)
		return "it is too large to compile; use smaller repeat counts or fewer "
		       "alternatives";
	return NULL;
}

static void
pattern_error(char *err, size_t errlen, const char *id, const char *what, const char *hs_message)
{
	const char *advice = pattern_advice(hs_message);
	if (advice != NULL)
		err_add(err, errlen, "rule \"%s\": pattern: %s (%s)", id, advice, what);
	else
		err_add(err, errlen, "rule \"%s\": pattern: %s", id, hs_message);
}

static bool
same_id(const struct sg_dlp_rule_def *custom, size_t n, const char *id, size_t *first)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(def_at(custom, i)->id, id) == 0) {
			*first = i;
			return true;
		}
	return false;
}

/* Checks one custom rule's fields and its pattern alone; false after adding to err. */
static bool
custom_ok(const struct sg_dlp_rule_def *custom, size_t i, char *err, size_t errlen)
{
	const struct sg_dlp_rule_def *d = def_at(custom, i);
	const char *id = d->id != NULL ? d->id : "";
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *ce = NULL;
	size_t first;

	if (d->id == NULL || d->id[0] == '\0') {
		err_add(err, errlen, "a custom rule has no id; give each rule a short name");
		return false;
	}
	if (same_id(custom, i, id, &first)) {
		err_add(err, errlen, "rule \"%s\": defined twice (%s); choose another id", id,
		        first < sg_dlp_builtin_count ? "a built-in rule has this id"
		                                     : "an earlier custom rule has this id");
		return false;
	}
	if (d->data_class == NULL || d->data_class[0] == '\0') {
		err_add(err, errlen,
		        "rule \"%s\": no data class; say what it finds, e.g. \"pii.acme_id\"", id);
		return false;
	}
	if ((unsigned)d->check >= SG_DLP_CHECK_COUNT || d->confidence > 100) {
		err_add(err, errlen, "rule \"%s\": %s", id,
		        d->confidence > 100 ? "confidence must be 0 to 100" : "unknown check");
		return false;
	}
	if (d->pattern == NULL || d->pattern[0] == '\0') {
		err_add(err, errlen,
		        "rule \"%s\": no pattern; give the regular expression it looks for", id);
		return false;
	}
	if (strlen(d->pattern) > PATTERN_MAX_LEN) {
		err_add(err, errlen, "rule \"%s\": pattern: longer than %d characters; shorten it",
		        id, PATTERN_MAX_LEN);
		return false;
	}
	if (hs_expression_info(d->pattern, 0, &info, &ce) != HS_SUCCESS) {
		pattern_error(err, errlen, id, "as written", ce != NULL ? ce->message : "invalid");
		hs_free_compile_error(ce);
		return false;
	}
	bool empty = info->min_width == 0;
	free(info);
	if (empty)
		err_add(
		    err, errlen,
		    "rule \"%s\": pattern: it can match an empty string; make it require at least "
		    "one character",
		    id);
	return !empty;
}

static char *
dup_or_null(const char *s, bool *oom)
{
	char *d = s != NULL ? strdup(s) : NULL;
	if (s != NULL && d == NULL)
		*oom = true;
	return d;
}

static int
copy_rules(struct sg_dlp_db *db, const struct sg_dlp_rule_def *custom, size_t n)
{
	bool oom = false;
	db->rules = calloc(n, sizeof(*db->rules));
	if (db->rules == NULL)
		return -1;
	db->n = n;
	for (size_t i = 0; i < n; i++) {
		const struct sg_dlp_rule_def *d = def_at(custom, i);
		struct dlp_rule *r = &db->rules[i];
		r->id = dup_or_null(d->id, &oom);
		r->data_class = dup_or_null(d->data_class, &oom);
		/* An empty hint would match every field: the same as none. */
		r->field_hint = d->field_hint != NULL && d->field_hint[0] != '\0'
		                    ? dup_or_null(d->field_hint, &oom)
		                    : NULL;
		r->check = d->check;
		r->min_entropy = d->min_entropy;
		r->confidence = d->confidence;
	}
	return oom ? -1 : 0;
}

/* Compiles rules [first, first + n) with `flag`, ids their indexes; NULL after adding to err. */
static hs_database_t *
compile_rules(const struct sg_dlp_rule_def *custom, size_t first, size_t n, unsigned flag,
              const char *what, char *err, size_t errlen)
{
	const char **pats = calloc(n, sizeof(*pats));
	unsigned *flags = calloc(n, sizeof(*flags)), *ids = calloc(n, sizeof(*ids));
	hs_database_t *hdb = NULL;
	hs_compile_error_t *ce = NULL;

	if (pats == NULL || flags == NULL || ids == NULL) {
		err_add(err, errlen, "out of memory compiling the DLP rules");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		pats[i] = def_at(custom, first + i)->pattern;
		flags[i] = flag;
		ids[i] = (unsigned)(first + i);
	}
	if (hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &hdb, &ce) !=
	    HS_SUCCESS) {
		hdb = NULL;
		if (ce != NULL && ce->expression >= 0 && (size_t)ce->expression < n)
			pattern_error(err, errlen,
			              def_at(custom, first + (size_t)ce->expression)->id, what,
			              ce->message);
		else
			err_add(err, errlen, "the DLP rules do not compile together: %s",
			        ce != NULL ? ce->message : "unknown error");
	}
	hs_free_compile_error(ce);
out:
	free(pats);
	free(flags);
	free(ids);
	return hdb;
}

static int
compile_dbs(struct sg_dlp_db *db, const struct sg_dlp_rule_def *custom, char *err, size_t errlen)
{
	db->fast = compile_rules(custom, 0, db->n, PHASE1_FLAGS, "as written", err, errlen);
	db->som = calloc(db->n, sizeof(*db->som));
	if (db->fast == NULL || db->som == NULL)
		return -1;
	for (size_t i = 0; i < db->n; i++) {
		db->som[i] = compile_rules(custom, i, 1, HS_FLAG_SOM_LEFTMOST,
		                           "when locating where a match starts", err, errlen);
		if (db->som[i] == NULL)
			return -1;
	}
	return 0;
}

struct sg_dlp_db *
sg_dlp_db_compile(const struct sg_dlp_rule_def *custom, size_t n_custom, char *err, size_t errlen)
{
	size_t n = sg_dlp_builtin_count + n_custom;
	struct sg_dlp_db *db;
	bool ok = true;

	if (errlen > 0)
		err[0] = '\0';
	for (size_t i = sg_dlp_builtin_count; i < n; i++)
		ok = custom_ok(custom, i, err, errlen) && ok;
	if (!ok)
		return NULL;
	if (n == 0 || n > INT32_MAX) {
		err_add(err, errlen, "no DLP rules to compile");
		return NULL;
	}
	db = calloc(1, sizeof(*db));
	if (db == NULL || copy_rules(db, custom, n) != 0) {
		err_add(err, errlen, "out of memory compiling the DLP rules");
		sg_dlp_db_free(db);
		return NULL;
	}
	if (compile_dbs(db, custom, err, errlen) != 0) {
		sg_dlp_db_free(db);
		return NULL;
	}
	db->serial = atomic_fetch_add(&db_serial, 1) + 1;
	return db;
}

/* ---- the scanner ---- */

static pthread_key_t scanner_key;
static pthread_once_t scanner_once = PTHREAD_ONCE_INIT;
static bool scanner_key_ok;

static void
scanner_destroy(void *arg)
{
	sg_dlp_scanner_free(arg);
}

static void
make_key(void)
{
	scanner_key_ok = pthread_key_create(&scanner_key, scanner_destroy) == 0;
}

struct sg_dlp_scanner *
sg_dlp_scanner_new(void)
{
	struct sg_dlp_scanner *sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return NULL;
	sc->raw = malloc(RAW_LIMIT * sizeof(*sc->raw));
	if (sc->raw == NULL) {
		free(sc);
		return NULL;
	}
	return sc;
}

void
sg_dlp_scanner_free(struct sg_dlp_scanner *sc)
{
	if (sc == NULL)
		return;
	hs_free_scratch(sc->scratch);
	free(sc->buf);
	free(sc->offs);
	free(sc->vals);
	free(sc->names);
	free(sc->ptrs);
	free(sc->path);
	free(sc->cands);
	free(sc->raw);
	free(sc->open);
	free(sc->marked);
	free(sc);
}

struct sg_dlp_scanner *
sg_dlp_scanner_thread(void)
{
	struct sg_dlp_scanner *sc;
	pthread_once(&scanner_once, make_key);
	if (!scanner_key_ok)
		return NULL;
	sc = pthread_getspecific(scanner_key);
	if (sc != NULL)
		return sc;
	sc = sg_dlp_scanner_new();
	if (sc != NULL && pthread_setspecific(scanner_key, sc) != 0) {
		sg_dlp_scanner_free(sc);
		return NULL;
	}
	return sc;
}

/* One scratch serves every database it was grown for: grow it for this one. */
static int
scratch_for(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db)
{
	if (sc->scratch != NULL && sc->scratch_serial == db->serial)
		return 0;
	if (hs_alloc_scratch(db->fast, &sc->scratch) != HS_SUCCESS)
		return -1;
	for (size_t i = 0; i < db->n; i++)
		if (hs_alloc_scratch(db->som[i], &sc->scratch) != HS_SUCCESS)
			return -1;
	sc->scratch_serial = db->serial;
	return 0;
}

/* Grows *p (of *cap elements of `size`) to hold `need`; 0 or -1. */
static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap > 0 ? *cap : 64;
	void *np;
	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / size)
			return -1;
		ncap *= 2;
	}
	np = realloc(*p, ncap * size);
	if (np == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

static int
grow_vals(struct sg_dlp_scanner *sc, size_t need)
{
	size_t cap = sc->vals_cap, c2 = cap, c3 = cap;
	if (need <= cap)
		return 0;
	if (grow((void **)&sc->offs, &cap, need, sizeof(*sc->offs)) != 0 ||
	    grow((void **)&sc->vals, &c2, need, sizeof(*sc->vals)) != 0 ||
	    grow((void **)&sc->names, &c3, need, sizeof(*sc->names)) != 0)
		return -1;
	/* All three grew from the same capacity by the same rule. */
	sc->vals_cap = cap;
	return 0;
}

static int
append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	if (*len + n < *len || grow((void **)p, cap, *len + n, 1) != 0)
		return -1;
	memcpy(*p + *len, s, n);
	*len += n;
	return 0;
}

/* ---- gathering the values ---- */

/* Writes the shortest text that reads back as `d` (what a writer would send). */
static int
double_text(double d, char *out, size_t cap)
{
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(out, cap, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	return n;
}

/* Writes `mag` in decimal after an optional minus; printf costs several times more. */
static int
int_text(uint64_t mag, bool neg, char *out)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	size_t n;
	do {
		*--p = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	n = (size_t)(tmp + sizeof(tmp) - p);
	if (neg)
		*out++ = '-';
	memcpy(out, p, n);
	out[n] = '\0';
	return (int)n + neg;
}

/*
 * Most doubles in a body are amounts with a few decimals.  When `d` is the
 * double nearest to m / 10^k (m < 10^15, k <= 4; the division is exact
 * before its one rounding), "m / 10^k" written out reads back as `d`, and
 * the smallest such k gives the shortest such text: no printf, no strtod.
 * -1 when `d` is not of that kind.
 */
static int
double_fast(double d, char *out)
{
	static const double pow10[] = {1, 10, 100, 1000, 10000};
	double a = fabs(d);
	if (!(a >= 1e-4 && a < 1e11))
		return -1;
	for (int k = 0; k <= 4; k++) {
		uint64_t m = (uint64_t)(a * pow10[k]), p = (uint64_t)pow10[k];
		for (uint64_t c = m; c <= m + 1; c++) {
			if ((double)c / pow10[k] != a)
				continue;
			int n = int_text(c / p, d < 0, out);
			if (k > 0) {
				char frac[8];
				int_text(c % p + p, false,
				         frac); /* "1" then k digits, zeros kept */
				out[n++] = '.';
				memcpy(out + n, frac + 1, (size_t)k + 1);
				n += k;
			}
			return n;
		}
	}
	return -1;
}

static int
number_text(struct sg_json_val v, char *out, size_t cap)
{
	int n;
	switch (sg_json_type(v)) {
	case SG_JSON_INT: {
		int64_t i = sg_json_int(v);
		return int_text(i < 0 ? 0 - (uint64_t)i : (uint64_t)i, i < 0, out);
	}
	case SG_JSON_UINT:
		return int_text(sg_json_uint(v), false, out);
	default:
		n = double_fast(sg_json_double(v), out);
		return n >= 0 ? n : double_text(sg_json_double(v), out, cap);
	}
}

/* Adds one value's text (and NUL), pointer and name. */
static int
add_value(struct sg_dlp_scanner *sc, struct sg_json_val v, const char *text, size_t len,
          bool is_number, struct name name)
{
	size_t i = sc->n_vals;
	/* Offsets and lengths are 32-bit, as is Vectorscan's length. */
	if (sc->buf_len + len + 1 > UINT32_MAX || len > UINT32_MAX || sc->ptrs_len > UINT32_MAX)
		return -1;
	if (grow_vals(sc, i + 1) != 0)
		return -1;
	sc->offs[i] = (uint32_t)sc->buf_len;
	if (append(&sc->buf, &sc->buf_len, &sc->buf_cap, text, len) != 0 ||
	    append(&sc->buf, &sc->buf_len, &sc->buf_cap, "", 1) != 0)
		return -1;
	sc->vals[i] = (struct sg_dlp_value){.v = v,
	                                    .len = (uint32_t)len,
	                                    .is_number = is_number,
	                                    .pointer_off = (uint32_t)sc->ptrs_len};
	sc->names[i] = name;
	if (append(&sc->ptrs, &sc->ptrs_len, &sc->ptrs_cap, sc->path, sc->path_len) != 0 ||
	    append(&sc->ptrs, &sc->ptrs_len, &sc->ptrs_cap, "", 1) != 0)
		return -1;
	sc->n_vals++;
	return 0;
}

/* Appends "/" and `key` escaped as RFC 6901 says: "~" as "~0", "/" as "~1". */
static int
path_push_key(struct sg_dlp_scanner *sc, const char *key, size_t len)
{
	if (append(&sc->path, &sc->path_len, &sc->path_cap, "/", 1) != 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *s = key[i] == '~' ? "~0" : key[i] == '/' ? "~1" : &key[i];
		if (append(&sc->path, &sc->path_len, &sc->path_cap, s, s == &key[i] ? 1 : 2) != 0)
			return -1;
	}
	return 0;
}

static int
path_push_index(struct sg_dlp_scanner *sc, size_t i)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "/%zu", i);
	return append(&sc->path, &sc->path_len, &sc->path_cap, num, (size_t)n);
}

static int walk(struct sg_dlp_scanner *sc, struct sg_json_val v, struct name name);

/*
 * An array element is named by the member that holds the array: a "dob"
 * array's dates are dates of birth too.
 */
static int
walk_children(struct sg_dlp_scanner *sc, struct sg_json_val v, struct name name)
{
	struct sg_json_iter it;
	struct sg_json_val child;
	const char *key;
	size_t key_len, saved = sc->path_len;

	sg_json_iter_init(&it, v);
	for (size_t i = 0; sg_json_iter_next(&it, &key, &key_len, &child); i++) {
		int rc;
		if (key != NULL) {
			if (key_len > UINT32_MAX)
				return -1;
			rc = path_push_key(sc, key, key_len);
			if (rc == 0)
				rc = walk(sc, child, (struct name){key, (uint32_t)key_len});
		} else {
			rc = path_push_index(sc, i);
			if (rc == 0)
				rc = walk(sc, child, name);
		}
		sc->path_len = saved;
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int
walk(struct sg_dlp_scanner *sc, struct sg_json_val v, struct name name)
{
	char num[40];
	const char *s;
	size_t len;

	switch (sg_json_type(v)) {
	case SG_JSON_STRING:
		s = sg_json_string(v, &len);
		return add_value(sc, v, s, len, false, name);
	case SG_JSON_INT:
	case SG_JSON_UINT:
	case SG_JSON_DOUBLE:
		len = (size_t)number_text(v, num, sizeof(num));
		return add_value(sc, v, num, len, true, name);
	case SG_JSON_ARRAY:
	case SG_JSON_OBJECT:
		return walk_children(sc, v, name);
	default:
		return 0;
	}
}

/* ---- matching ---- */

/* The value holding buffer position `pos`, or NO_VALUE for a separator. */
static uint32_t
value_at(struct scan *c, uint64_t pos)
{
	const struct sg_dlp_scanner *sc = c->sc;
	uint32_t lo = 0, hi = (uint32_t)sc->n_vals, i = c->cached;
	/* Matches come in rising order: the same value again, or the next one. */
	if (i + 1 < sc->n_vals && pos >= sc->offs[i + 1] &&
	    pos <= sc->offs[i + 1] + sc->vals[i + 1].len)
		i = c->cached = i + 1;
	if (i >= sc->n_vals || pos < sc->offs[i] || pos > sc->offs[i] + sc->vals[i].len) {
		while (hi - lo > 1) { /* the last value starting at or before pos */
			uint32_t mid = lo + (hi - lo) / 2;
			if (sc->offs[mid] <= pos)
				lo = mid;
			else
				hi = mid;
		}
		i = c->cached = lo;
	}
	return pos < sc->offs[i] + sc->vals[i].len ? i : NO_VALUE;
}

static int
cmp_rule_first(const void *a, const void *b)
{
	const struct raw_hit *x = a, *y = b;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int
cmp_doc_order(const void *a, const void *b)
{
	const struct raw_hit *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/*
 * Merges overlapping hits of one rule on one value, sorts the rest into
 * document order and keeps the first SG_DLP_MAX_HITS.
 */
static void
settle(struct scan *c)
{
	struct sg_dlp_scanner *sc = c->sc;
	size_t n = 0;
	qsort(sc->raw, sc->n_raw, sizeof(*sc->raw), cmp_rule_first);
	for (size_t i = 0; i < sc->n_raw; i++) {
		struct raw_hit *h = &sc->raw[i], *last = n > 0 ? &sc->raw[n - 1] : NULL;
		if (last != NULL && last->rule == h->rule && last->value == h->value &&
		    h->start < last->end) {
			if (h->end > last->end)
				last->end = h->end;
			continue;
		}
		sc->raw[n++] = *h;
	}
	qsort(sc->raw, n, sizeof(*sc->raw), cmp_doc_order);
	if (n > SG_DLP_MAX_HITS) {
		n = SG_DLP_MAX_HITS;
		c->truncated = true;
		c->stop_value = sc->raw[n - 1].value;
	}
	sc->n_raw = n;
	for (size_t r = 0; r < c->db->n; r++)
		sc->open[r] = -1;
}

static void
add_raw(struct scan *c, struct raw_hit h)
{
	struct sg_dlp_scanner *sc = c->sc;
	if (sc->n_raw == RAW_LIMIT)
		settle(c);
	if (h.value > c->stop_value)
		return;
	if (h.rule < c->db->n)
		sc->open[h.rule] = (int32_t)sc->n_raw;
	sc->raw[sc->n_raw++] = h;
}

/* Phase 2: a match with its start, relative to the value at c->base. */
static int
on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
         void *ctx)
{
	struct scan *c = ctx;
	struct sg_dlp_scanner *sc = c->sc;
	const struct dlp_rule *r = &c->db->rules[id];
	uint32_t v = c->cached, start = (uint32_t)from, end = (uint32_t)to;
	int32_t o = sc->open[id];
	(void)flags;

	if (from >= to)
		return 0;
	if (!sg_dlp_check_span(r->check, r->min_entropy, sc->buf + c->base + from, end - start))
		return 0;
	if (o >= 0 && sc->raw[o].value == v && start < sc->raw[o].end) {
		if (start < sc->raw[o].start)
			sc->raw[o].start = start;
		if (end > sc->raw[o].end)
			sc->raw[o].end = end;
		return 0;
	}
	add_raw(c, (struct raw_hit){(uint32_t)id, v, start, end});
	return 0;
}

/*
 * Phase 1: notes the (value, rule) a match ends in.  Ends arrive in rising
 * order, so a rule's newest pair is the only one a match can repeat.
 */
static int
on_candidate(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
             void *ctx)
{
	struct scan *c = ctx;
	struct sg_dlp_scanner *sc = c->sc;
	const struct dlp_rule *r = &c->db->rules[id];
	uint32_t v;
	(void)from, (void)flags;
	if (to == 0 || (v = value_at(c, to - 1)) == NO_VALUE || sc->marked[id] == v + 1)
		return 0;
	sc->marked[id] = v + 1;
	/* Where the field's name rules the rule out, there is nothing to look at again. */
	if (r->field_hint != NULL &&
	    !sg_dlp_field_hint_match(r->field_hint, sc->names[v].s, sc->names[v].len))
		return 0;
	if (grow((void **)&sc->cands, &sc->cands_cap, sc->n_cands + 1, sizeof(*sc->cands)) != 0) {
		c->oom = true;
		return 1;
	}
	sc->cands[sc->n_cands++] = (struct cand){v, id};
	return 0;
}

static int
run(struct scan *c)
{
	struct sg_dlp_scanner *sc = c->sc;
	c->cached = 0;
	sc->n_cands = 0;
	for (size_t r = 0; r < c->db->n; r++)
		sc->marked[r] = 0;
	if (hs_scan(c->db->fast, sc->buf, (unsigned)sc->buf_len, 0, sc->scratch, on_candidate, c) !=
	    HS_SUCCESS)
		return -1;
	for (size_t i = 0; i < sc->n_cands; i++) {
		uint32_t v = sc->cands[i].value;
		c->cached = v;
		c->base = sc->offs[v];
		if (hs_scan(c->db->som[sc->cands[i].rule], sc->buf + c->base, sc->vals[v].len, 0,
		            sc->scratch, on_match, c) != HS_SUCCESS)
			return -1;
	}
	return 0;
}

/* ---- hints ---- */

/* Whether `ptr` matches `pattern`, segment by segment, "*" matching any one. */
static bool
pointer_matches(const char *pattern, const char *ptr)
{
	for (;;) {
		const char *pe, *qe;
		size_t pl, ql;
		if (*pattern == '\0' || *ptr == '\0')
			return *pattern == '\0' && *ptr == '\0';
		if (*pattern != '/' || *ptr != '/')
			return false;
		pattern++;
		ptr++;
		pe = strchr(pattern, '/');
		qe = strchr(ptr, '/');
		pl = pe != NULL ? (size_t)(pe - pattern) : strlen(pattern);
		ql = qe != NULL ? (size_t)(qe - ptr) : strlen(ptr);
		if (!(pl == 1 && pattern[0] == '*') && (pl != ql || memcmp(pattern, ptr, pl) != 0))
			return false;
		pattern += pl;
		ptr += ql;
	}
}

static bool
hint_matches(const struct sg_dlp_hint *h, const char *ptr)
{
	return h->pointer != NULL && h->data_class != NULL && pointer_matches(h->pointer, ptr);
}

/* Whether an earlier hint already gave value `ptr` the class of hint `h`. */
static bool
hinted_before(const struct sg_dlp_hint *hints, size_t h, const char *ptr)
{
	for (size_t e = 0; e < h; e++)
		if (hint_matches(&hints[e], ptr) &&
		    strcmp(hints[e].data_class, hints[h].data_class) == 0)
			return true;
	return false;
}

static void
add_hints(struct scan *c, size_t n_hints)
{
	struct sg_dlp_scanner *sc = c->sc;
	for (size_t h = 0; h < n_hints; h++)
		for (uint32_t v = 0; v < sc->n_vals && v <= c->stop_value; v++) {
			const char *ptr = sc->ptrs + sc->vals[v].pointer_off;
			/* An empty value holds nothing of any class, and a hit never has an empty
			 * span. */
			if (sc->vals[v].len > 0 && hint_matches(&c->hints[h], ptr) &&
			    !hinted_before(c->hints, h, ptr))
				add_raw(c, (struct raw_hit){(uint32_t)(c->db->n + h), v, 0,
				                            sc->vals[v].len});
		}
}

/* ---- results ---- */

static void
publish(struct scan *c, struct sg_dlp_result *out)
{
	struct sg_dlp_scanner *sc = c->sc;
	for (size_t i = 0; i < sc->n_vals; i++)
		sc->vals[i].text = sc->buf + sc->offs[i];
	for (size_t i = 0; i < sc->n_raw; i++) {
		const struct raw_hit *h = &sc->raw[i];
		struct sg_dlp_hit *o = &sc->hits[i];
		if (h->rule < c->db->n) {
			const struct dlp_rule *r = &c->db->rules[h->rule];
			*o = (struct sg_dlp_hit){r->id,    r->data_class, h->value,
			                         h->start, h->end,        r->confidence};
		} else {
			*o = (struct sg_dlp_hit){
			    "x-data-class", c->hints[h->rule - c->db->n].data_class,
			    h->value,       h->start,
			    h->end,         HINT_CONFIDENCE};
		}
	}
	*out = (struct sg_dlp_result){.hits = sc->hits,
	                              .n_hits = sc->n_raw,
	                              .values = sc->vals,
	                              .n_values = sc->n_vals,
	                              .truncated = c->truncated,
	                              .pointers = sc->ptrs};
}

static int
scan_prepare(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db)
{
	sc->buf_len = sc->ptrs_len = sc->path_len = sc->n_vals = sc->n_raw = 0;
	if (scratch_for(sc, db) != 0 ||
	    grow((void **)&sc->open, &sc->open_cap, db->n, sizeof(*sc->open)) != 0 ||
	    grow((void **)&sc->marked, &sc->marked_cap, db->n, sizeof(*sc->marked)) != 0)
		return -1;
	for (size_t r = 0; r < db->n; r++)
		sc->open[r] = -1;
	/* The pointer storage is never empty, so a result's pointers is never NULL. */
	if (grow((void **)&sc->ptrs, &sc->ptrs_cap, 1, 1) != 0)
		return -1;
	sc->ptrs[0] = '\0';
	return 0;
}

static int
scan_finish(struct scan *c, size_t n_hints, struct sg_dlp_result *out)
{
	if (c->sc->n_vals > 0 && run(c) != 0)
		return -1;
	add_hints(c, n_hints);
	settle(c);
	publish(c, out);
	return 0;
}

static void
result_empty(struct sg_dlp_result *out)
{
	*out = (struct sg_dlp_result){.pointers = ""};
}

int
sg_dlp_scan_json(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db, struct sg_json_val root,
                 const struct sg_dlp_hint *hints, size_t n_hints, struct sg_dlp_result *out)
{
	struct scan c = {.sc = sc, .db = db, .hints = hints, .stop_value = NO_VALUE};
	result_empty(out);
	if (sc == NULL || scan_prepare(sc, db) != 0 || walk(sc, root, (struct name){"", 0}) != 0)
		return -1;
	return scan_finish(&c, hints != NULL ? n_hints : 0, out);
}

int
sg_dlp_scan_text(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db, const char *text,
                 size_t len, struct sg_dlp_result *out)
{
	struct scan c = {.sc = sc, .db = db, .stop_value = NO_VALUE};
	result_empty(out);
	if (sc == NULL || scan_prepare(sc, db) != 0 ||
	    add_value(sc, (struct sg_json_val){0}, text, len, false, (struct name){"", 0}) != 0)
		return -1;
	return scan_finish(&c, 0, out);
}
