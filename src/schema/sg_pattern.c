/*
 * Scratch memory: Vectorscan needs one scratch per thread scanning at a
 * time, big enough for every database it scans.  A prototype grows with
 * each compiled pattern; each thread clones it the first time it matches
 * after the prototype changed, and frees its clone when it exits.
 */
#include "schema/sg_pattern.h"

#include <hs/hs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_MAX_LEN 512
#define PATTERN_MAX_REPEAT 1000

struct sg_pattern {
	hs_database_t *db;
};

struct thread_scratch {
	hs_scratch_t *s;
	uint64_t generation;
};

static pthread_mutex_t proto_mu = PTHREAD_MUTEX_INITIALIZER;
static hs_scratch_t *proto;               /* under proto_mu */
static _Atomic uint64_t proto_generation; /* moves whenever proto does */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void
free_thread_scratch(void *arg)
{
	struct thread_scratch *ts = arg;
	hs_free_scratch(ts->s);
	free(ts);
}

static void
make_key(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, free_thread_scratch) == 0;
}

/*
 * Inside brackets, "[:alpha:]" is one element and its ']' does not end the
 * class.  Returns its last character, or `p` when `p` does not start one.
 */
static const char *
skip_posix_class(const char *p)
{
	const char *q = p + 2;
	if (p[0] != '[' || p[1] != ':')
		return p;
	while (*q >= 'a' && *q <= 'z')
		q++;
	return q > p + 2 && q[0] == ':' && q[1] == ']' ? q + 1 : p;
}

static bool
is_quantifier(char ch)
{
	return ch == '*' || ch == '+' || ch == '?' || ch == '{';
}

/*
 * Stacked quantifiers ("a+++") and large counts ("a{30000}", or many
 * ".{1000}") make automata that take gigabytes and minutes to build, so
 * one bad definition could hang apply.  Refuse them before compiling, and
 * PCRE's \Q...\E, which ECMA-262 does not have and which would hide a `$`
 * from the rewrite below.  NULL when acceptable, else the reason.
 */
static const char *
refused(const char *s)
{
	bool after_quantifier = false, in_class = false;
	unsigned long repeats = 0;
	if (strlen(s) > PATTERN_MAX_LEN)
		return "is longer than 512 characters";
	for (const char *p = s; *p; p++) {
		if (*p == '\\' && p[1]) {
			if (p[1] == 'Q' || p[1] == 'E')
				return "uses \\Q...\\E, which JSON Schema patterns do not have; "
				       "escape each character instead";
			p++;
			after_quantifier = false;
		} else if (in_class) {
			const char *end = skip_posix_class(p);
			if (end == p)
				in_class = *p != ']';
			p = end;
		} else if (*p == '[') {
			in_class = true;
			if (p[1] == ']' || (p[1] == '^' && p[2] == ']'))
				p += p[1] == '^' ? 2 : 1; /* a leading ] is a literal */
			after_quantifier = false;
		} else if (is_quantifier(*p)) {
			/* "+?" and "*?" are lazy, not stacked: the same automaton. */
			if (after_quantifier && *p != '?')
				return "stacks quantifiers (like \"++\" or \"*{2}\"); use one";
			if (*p == '{') {
				char *end;
				unsigned long lo = strtoul(p + 1, &end, 10);
				unsigned long hi = *end == ',' ? strtoul(end + 1, &end, 10) : lo;
				repeats += lo > hi ? lo : hi;
				if (lo > PATTERN_MAX_REPEAT || hi > PATTERN_MAX_REPEAT ||
				    repeats > PATTERN_MAX_REPEAT)
					return "repeats more than 1000 times in all";
				p = *end == '}' ? end : p;
			}
			after_quantifier = *p != '?';
		} else {
			after_quantifier = false;
		}
	}
	return NULL;
}

/*
 * Where PCRE and ECMA-262 (without flags) read a character differently:
 * ECMA's `$` is the end of the string, PCRE's also matches before a final
 * newline, which would let "abc\n" through ^[a-z]+$; and ECMA's `.` stops
 * at every line terminator, PCRE's only at \n.  Outside brackets and not
 * escaped, `$` becomes \z and `.` excludes \r as well.  It still matches
 * U+2028 and U+2029: excluding those multi-byte characters multiplies the
 * automaton, and Vectorscan then refuses patterns such as a.{50}b.
 */
#define ECMA_DOT "[^\\n\\r]"

static char *
ecma_rewrite(const char *s)
{
	char *out = malloc((sizeof(ECMA_DOT) - 1) * strlen(s) + 1), *o = out;
	bool in_class = false;
	if (out == NULL)
		return NULL;
	for (const char *p = s; *p; p++) {
		if (*p == '\\' && p[1]) {
			*o++ = *p++;
			*o++ = *p;
			continue;
		}
		if (in_class) {
			const char *end = skip_posix_class(p);
			if (end == p)
				in_class = *p != ']';
			while (p < end)
				*o++ = *p++;
		} else if (*p == '[') {
			in_class = true;
			if (p[1] == '^')
				*o++ = *p++;
			if (p[1] == ']')
				*o++ = *p++; /* a leading ] is a literal */
		} else if (*p == '$') {
			*o++ = '\\';
			*o++ = 'z';
			continue;
		} else if (*p == '.') {
			memcpy(o, ECMA_DOT, sizeof(ECMA_DOT) - 1);
			o += sizeof(ECMA_DOT) - 1;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/*
 * Makes the prototype big enough for `db` as well; the threads' clones
 * follow.  A copy is grown and swapped in, because Vectorscan frees the
 * scratch it cannot grow: a failure here must not take the scratch of
 * every pattern already compiled with it.
 */
static int
grow_prototype(const hs_database_t *db)
{
	hs_scratch_t *next = NULL;
	int rc = -1;
	pthread_mutex_lock(&proto_mu);
	if ((proto == NULL || hs_clone_scratch(proto, &next) == HS_SUCCESS) &&
	    hs_alloc_scratch(db, &next) == HS_SUCCESS) {
		hs_free_scratch(proto);
		proto = next;
		atomic_fetch_add_explicit(&proto_generation, 1, memory_order_release);
		rc = 0;
	} else {
		hs_free_scratch(next); /* NULL when Vectorscan freed it already */
	}
	pthread_mutex_unlock(&proto_mu);
	return rc;
}

struct sg_pattern *
sg_pattern_compile(const char *source, char *why, size_t whylen)
{
	const char *reason = refused(source);
	if (reason != NULL) {
		snprintf(why, whylen, "%s", reason);
		return NULL;
	}
	char *expr = ecma_rewrite(source);
	struct sg_pattern *p = calloc(1, sizeof(*p));
	hs_compile_error_t *err = NULL;
	if (expr == NULL || p == NULL) {
		snprintf(why, whylen, "cannot be compiled: out of memory");
		goto fail;
	}
	/* SINGLEMATCH: only whether it matches counts; ALLOWEMPTY: "^$" and "a*" are valid. */
	if (hs_compile(expr, HS_FLAG_SINGLEMATCH | HS_FLAG_UTF8 | HS_FLAG_ALLOWEMPTY, HS_MODE_BLOCK,
	               NULL, &p->db, &err) != HS_SUCCESS) {
		snprintf(why, whylen, "is not supported: %s",
		         err && err->message ? err->message : "it cannot be compiled");
		hs_free_compile_error(err);
		goto fail;
	}
	if (grow_prototype(p->db) != 0) {
		snprintf(why, whylen, "cannot be compiled: out of memory for matching");
		goto fail;
	}
	free(expr);
	return p;
fail:
	free(expr);
	sg_pattern_free(p);
	return NULL;
}

void
sg_pattern_free(struct sg_pattern *p)
{
	if (p == NULL)
		return;
	hs_free_database(p->db);
	free(p);
}

static hs_scratch_t *
thread_scratch(void)
{
	pthread_once(&scratch_once, make_key);
	if (!scratch_key_ok)
		return NULL;
	struct thread_scratch *ts = pthread_getspecific(scratch_key);
	uint64_t gen = atomic_load_explicit(&proto_generation, memory_order_acquire);
	if (ts != NULL && ts->generation == gen)
		return ts->s;
	if (ts == NULL) {
		if ((ts = calloc(1, sizeof(*ts))) == NULL || pthread_setspecific(scratch_key, ts)) {
			free(ts);
			return NULL;
		}
	}
	/* On failure the old clone stays: it still fits the older patterns. */
	pthread_mutex_lock(&proto_mu);
	hs_scratch_t *mine = NULL;
	if (proto != NULL && hs_clone_scratch(proto, &mine) == HS_SUCCESS) {
		hs_free_scratch(ts->s);
		ts->s = mine;
		ts->generation = atomic_load_explicit(&proto_generation, memory_order_relaxed);
	}
	pthread_mutex_unlock(&proto_mu);
	return ts->s;
}

static int
on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags;
	*(bool *)ctx = true;
	return 1; /* one match answers the question: stop */
}

bool
sg_pattern_match(const struct sg_pattern *p, const char *s, size_t len)
{
	hs_scratch_t *scratch = thread_scratch();
	bool matched = false;
	if (scratch == NULL || len > UINT32_MAX)
		return false;
	hs_error_t rc = hs_scan(p->db, s, (unsigned)len, 0, scratch, on_match, &matched);
	return (rc == HS_SUCCESS || rc == HS_SCAN_TERMINATED) && matched;
}
