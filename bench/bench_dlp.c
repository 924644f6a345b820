/*
 * The DLP scan over a 1 MiB JSON body of realistic records (names, emails,
 * phones, free-text notes, order ids, dates; now and then a card, an IBAN,
 * an SSN or a token), with the full built-in rule set:
 *
 *   vectorscan   sg_dlp_scan_json: the walk, the two-phase Vectorscan scan,
 *                the checks, the attribution (what the screen step pays)
 *   one-phase    the same rules in one database with HS_FLAG_SOM_LEFTMOST
 *                on every rule, one hs_scan over the joined values and the
 *                checks: the design sg_dlp_scan did not take, for reference
 *   pcre2 loop   the same patterns, JIT-compiled, run one after another
 *                over the same strings (gathered beforehand, so the loop
 *                pays no walk), each match confirmed by the same checks
 *
 * Throughput is the body's size over the median time of RUNS runs.
 *
 *   build/bench/bench_dlp [body-bytes]
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <hs/hs.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlp/sg_dlp_rules.h"
#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"

#define RUNS 15
#define DEPTH 64

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const first[] = {"Ada",      "Grace", "Alan",  "Edsger", "Barbara", "Donald",
                                    "Margaret", "Ken",   "Radia", "Linus",  "Frances", "John"};
static const char *const last[] = {"Lovelace", "Hopper",   "Turing",   "Dijkstra",
                                   "Liskov",   "Knuth",    "Hamilton", "Thompson",
                                   "Perlman",  "Torvalds", "Allen",    "McCarthy"};
static const char *const words[] = {
    "the",      "customer", "asked",    "about",    "delivery", "of",      "order",  "and",
    "wants",    "a",        "refund",   "for",      "damaged",  "items",   "please", "call",
    "back",     "before",   "friday",   "shipping", "address",  "changed", "to",     "new",
    "office",   "invoice",  "attached", "priority", "support",  "ticket",  "was",    "closed",
    "reopened", "by",       "agent",    "note",     "warranty", "expires", "next",   "month"};
static const char *const cities[] = {"Berlin", "London", "Paris", "Austin", "Toronto", "Oslo"};

/* Rare sensitive values, each valid for its rule's check. */
static const char *const planted[] = {
    "card on file 4111 1111 1111 1111 exp 12/29",
    "pay to DE89 3704 0044 0532 0130 00 by friday",
    "ssn 123-45-6789 for the tax form",
    "deploy key ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "old key AKIAIOSFODNN7EXAMPLE leaked",
    "api_key=Zx8q2LmN4vB7tR1yW9kP3sD6fG0hJ5cV",
    "card 5555-5555-5555-4444",
};

struct out {
	char *s;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap *= 2;
		o->s = realloc(o->s, o->cap);
		if (o->s == NULL)
			abort();
	}
}

static void
note(struct out *o)
{
	int n = 8 + (int)rnd(24);
	for (int i = 0; i < n; i++)
		put(o, "%s%s", i ? " " : "", words[rnd(sizeof(words) / sizeof(words[0]))]);
}

static void
record(struct out *o, unsigned i)
{
	const char *f = first[rnd(12)], *l = last[rnd(12)];
	put(o, "{\"id\":\"ORD-2024-%06u\",\"created\":\"2024-%02u-%02uT%02u:%02u:00Z\",", i,
	    1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60));
	put(o, "\"customer\":{\"name\":\"%s %s\",\"email\":\"%c.%s%u@example.com\",", f, l,
	    f[0] | 0x20, l, rnd(100));
	put(o,
	    "\"phone\":\"+1 %03u 555 %04u\",\"address\":{\"street\":\"%u Main Street\","
	    "\"city\":\"%s\",\"zip\":\"%05u\"}},",
	    200 + rnd(700), rnd(10000), 1 + rnd(999), cities[rnd(6)], rnd(100000));
	put(o, "\"items\":[");
	for (unsigned k = 0, n = 1 + rnd(3); k < n; k++)
		put(o, "%s{\"sku\":\"SKU-%05u\",\"qty\":%u,\"price\":%u.%02u}", k ? "," : "",
		    rnd(100000), 1 + rnd(5), rnd(500), rnd(100));
	put(o, "],\"total\":%u.%02u,\"status\":\"%s\",\"notes\":\"", rnd(2000), rnd(100),
	    rnd(2) ? "shipped" : "pending");
	note(o);
	if (rnd(40) == 0)
		put(o, " %s", planted[rnd(sizeof(planted) / sizeof(planted[0]))]);
	put(o, "\"}");
}

static struct out
body(size_t target)
{
	struct out o = {malloc(1 << 16), 0, 1 << 16};
	unsigned i = 0;
	if (o.s == NULL)
		abort();
	put(&o, "{\"orders\":[");
	while (o.len < target - 1024)
		put(&o, "%s", i ? "," : ""), record(&o, i++);
	put(&o, "]}");
	return o;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return t[n / 2];
}

/* The strings the scan saw, with the member name each sits under. */
struct texts {
	const char **s;
	size_t *len;
	const char **name;
	size_t *name_len;
	char **ptr_copy; /* what name points into, for freeing */
	size_t n, bytes;
	char *joined; /* each text then a NUL, for the one-phase reference */
	size_t joined_len;
};

/* The member name from a pointer: its last segment that is not an array index. */
static void
name_of(const char *ptr, const char **name, size_t *len)
{
	const char *end = ptr + strlen(ptr), *p = end;
	for (;;) {
		const char *seg = p;
		while (seg > ptr && seg[-1] != '/')
			seg--;
		if (seg == ptr || strspn(seg, "0123456789") != (size_t)(p - seg)) {
			*name = seg;
			*len = (size_t)(p - seg);
			return;
		}
		p = seg - 1;
	}
}

static struct texts
gather(const struct sg_dlp_result *r)
{
	struct texts t = {0};
	t.s = calloc(r->n_values, sizeof(*t.s));
	t.len = calloc(r->n_values, sizeof(*t.len));
	t.name = calloc(r->n_values, sizeof(*t.name));
	t.name_len = calloc(r->n_values, sizeof(*t.name_len));
	t.ptr_copy = calloc(r->n_values, sizeof(*t.ptr_copy));
	for (size_t i = 0; i < r->n_values; i++)
		t.joined_len += r->values[i].len + 1;
	t.joined = malloc(t.joined_len);
	if (!t.s || !t.len || !t.name || !t.name_len || !t.ptr_copy || !t.joined)
		abort();
	t.joined_len = 0;
	for (size_t i = 0; i < r->n_values; i++) {
		t.s[i] = (const char *)strndup(r->values[i].text, r->values[i].len);
		t.len[i] = r->values[i].len;
		char *copy = strdup(sg_dlp_pointer(r, (uint32_t)i));
		if (copy == NULL || t.s[i] == NULL)
			abort();
		t.ptr_copy[i] = copy;
		name_of(copy, &t.name[i], &t.name_len[i]);
		t.bytes += t.len[i];
		memcpy(t.joined + t.joined_len, t.s[i], t.len[i] + 1);
		t.joined_len += t.len[i] + 1;
	}
	t.n = r->n_values;
	return t;
}

static void
texts_free(struct texts *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free((char *)t->s[i]);
		free(t->ptr_copy[i]);
	}
	free(t->s);
	free(t->len);
	free(t->name);
	free(t->name_len);
	free(t->ptr_copy);
	free(t->joined);
}

static bool
confirm(const struct sg_dlp_rule_def *d, const char *name, size_t name_len, const char *s,
        size_t len)
{
	if (d->field_hint != NULL && !sg_dlp_field_hint_match(d->field_hint, name, name_len))
		return false;
	return sg_dlp_check_span(d->check, d->min_entropy, s, len);
}

/* ---- PCRE2 ---- */

struct pcre_rule {
	pcre2_code *code;
	pcre2_match_data *md;
};

static struct pcre_rule *
pcre_compile_all(void)
{
	struct pcre_rule *p = calloc(sg_dlp_builtin_count, sizeof(*p));
	for (size_t i = 0; i < sg_dlp_builtin_count; i++) {
		int rc;
		PCRE2_SIZE off;
		p[i].code = pcre2_compile((PCRE2_SPTR)sg_dlp_builtin_rules[i].pattern,
		                          PCRE2_ZERO_TERMINATED, 0, &rc, &off, NULL);
		if (p[i].code == NULL || pcre2_jit_compile(p[i].code, PCRE2_JIT_COMPLETE) != 0) {
			fprintf(stderr, "bench_dlp: PCRE2 refuses rule %s\n",
			        sg_dlp_builtin_rules[i].id);
			exit(1);
		}
		p[i].md = pcre2_match_data_create_from_pattern(p[i].code, NULL);
	}
	return p;
}

static size_t
pcre_loop(const struct pcre_rule *p, const struct texts *t)
{
	size_t found = 0;
	for (size_t r = 0; r < sg_dlp_builtin_count; r++) {
		const struct sg_dlp_rule_def *d = &sg_dlp_builtin_rules[r];
		for (size_t v = 0; v < t->n; v++) {
			PCRE2_SIZE at = 0;
			while (at <= t->len[v] &&
			       pcre2_jit_match(p[r].code, (PCRE2_SPTR)t->s[v], t->len[v], at, 0,
			                       p[r].md, NULL) > 0) {
				PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p[r].md);
				found += confirm(d, t->name[v], t->name_len[v], t->s[v] + ov[0],
				                 ov[1] - ov[0]);
				at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
			}
		}
	}
	return found;
}

/* ---- one phase, SOM on every rule ---- */

struct one_phase {
	const struct texts *t;
	size_t v, found;
	size_t *offs;
};

static int
on_som(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
	struct one_phase *o = ctx;
	(void)flags;
	while (o->v + 1 < o->t->n && o->offs[o->v + 1] <= from)
		o->v++;
	if (to > o->offs[o->v] + o->t->len[o->v])
		return 0;
	o->found += confirm(&sg_dlp_builtin_rules[id], o->t->name[o->v], o->t->name_len[o->v],
	                    o->t->joined + from, to - from);
	return 0;
}

static hs_database_t *
som_db(void)
{
	const char *pats[64];
	unsigned flags[64], ids[64];
	hs_database_t *db;
	hs_compile_error_t *err;
	for (unsigned i = 0; i < sg_dlp_builtin_count; i++) {
		pats[i] = sg_dlp_builtin_rules[i].pattern;
		flags[i] = HS_FLAG_SOM_LEFTMOST;
		ids[i] = i;
	}
	if (hs_compile_multi(pats, flags, ids, (unsigned)sg_dlp_builtin_count, HS_MODE_BLOCK, NULL,
	                     &db, &err) != HS_SUCCESS) {
		fprintf(stderr, "bench_dlp: %s\n", err->message);
		exit(1);
	}
	return db;
}

int
main(int argc, char **argv)
{
	size_t target = argc > 1 ? strtoul(argv[1], NULL, 10) : 1 << 20;
	struct out b = body(target);
	struct sg_json_doc doc;
	struct sg_dlp_result r;
	char err[512];
	double tv[RUNS], tp[RUNS], t1[RUNS];
	size_t hits = 0, found = 0;

	struct sg_dlp_db *db = sg_dlp_db_compile(NULL, 0, err, sizeof(err));
	struct sg_dlp_scanner *sc = sg_dlp_scanner_new();
	if (db == NULL || sc == NULL ||
	    sg_json_parse(b.s, b.len, DEPTH, &doc, NULL) != SG_JSON_OK) {
		fprintf(stderr, "bench_dlp: setup failed: %s\n", db == NULL ? err : "parse");
		return 1;
	}
	for (int i = 0; i < RUNS; i++) {
		double t0 = now_s();
		if (sg_dlp_scan_json(sc, db, doc.root, NULL, 0, &r) != 0)
			return 1;
		tv[i] = now_s() - t0;
	}
	hits = r.n_hits;
	bool truncated = r.truncated;
	struct texts t = gather(&r);

	hs_database_t *one = som_db();
	hs_scratch_t *scratch = NULL;
	size_t *offs = malloc(t.n * sizeof(*offs)), one_found = 0;
	for (size_t i = 0, at = 0; i < t.n; at += t.len[i++] + 1)
		offs[i] = at;
	hs_alloc_scratch(one, &scratch);
	for (int i = 0; i < RUNS; i++) {
		struct one_phase o = {&t, 0, 0, offs};
		double t0 = now_s();
		hs_scan(one, t.joined, (unsigned)t.joined_len, 0, scratch, on_som, &o);
		t1[i] = now_s() - t0;
		one_found = o.found;
	}

	struct pcre_rule *p = pcre_compile_all();
	for (int i = 0; i < RUNS / 3; i++) {
		double t0 = now_s();
		found = pcre_loop(p, &t);
		tp[i] = now_s() - t0;
	}

	double mb = (double)b.len / 1e6;
	double sv = median(tv, RUNS), s1 = median(t1, RUNS), sp = median(tp, RUNS / 3);
	printf("DLP scan, %.2f MB JSON body: %zu values, %.2f MB of text, %zu built-in rules\n", mb,
	       t.n, (double)t.bytes / 1e6, sg_dlp_builtin_count);
	printf(
	    "vectorscan (sg_dlp_scan_json, two-phase): median %7.2f ms  %8.0f MB/s  (%zu hits%s)\n",
	    sv * 1e3, mb / sv, hits, truncated ? ", cut at the cap" : "");
	printf("one-phase SOM database, scan only:        median %7.2f ms  %8.0f MB/s  (%zu "
	       "confirmed matches)\n",
	       s1 * 1e3, mb / s1, one_found);
	printf("pcre2 JIT loop, rules one after another:  median %7.2f ms  %8.0f MB/s  (%zu "
	       "confirmed matches)\n",
	       sp * 1e3, mb / sp, found);
	printf("ratio vectorscan/pcre2: %.1fx (target >= 5: %s)\n", sp / sv,
	       sp / sv >= 5 ? "met" : "missed");
	printf("vectorscan throughput: %.0f MB/s (target >= 500: %s)\n", mb / sv,
	       mb / sv >= 500 ? "met" : "missed");

	for (size_t i = 0; i < sg_dlp_builtin_count; i++) {
		pcre2_match_data_free(p[i].md);
		pcre2_code_free(p[i].code);
	}
	free(p);
	hs_free_scratch(scratch);
	hs_free_database(one);
	free(offs);
	texts_free(&t);
	sg_dlp_scanner_free(sc);
	sg_dlp_db_free(db);
	free(b.s);
	return 0;
}
