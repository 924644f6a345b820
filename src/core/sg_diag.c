#include "sg_diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void
sg_diags_add(struct sg_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sg_diags_addv(d, file, line, col, fmt, ap);
	va_end(ap);
}

/*
 * Loaders judge a file by whether the count of diagnostics grew, so an
 * error must be counted even when there is no memory to store it: every
 * array has one slot more than `cap`, kept for this note, and a list that
 * never got an array points at a static one.  Errors after the note may be
 * lost, but the count has already grown.
 */
static char oom_msg[] = "out of memory: this error and later ones could not be recorded";
static struct sg_diag oom_only = {NULL, 0, 0, oom_msg};
static char no_text[] = "out of memory while describing this error";

static bool
grow(struct sg_diags *d)
{
	size_t cap = d->cap ? d->cap * 2 : 8;
	struct sg_diag *v = realloc(d->cap ? d->v : NULL, (cap + 1) * sizeof(*v));
	if (v == NULL)
		return false;
	if (d->cap == 0 && d->n > 0) /* from oom_only */
		memcpy(v, d->v, d->n * sizeof(*v));
	d->v = v;
	d->cap = cap;
	return true;
}

void
sg_diags_addv(struct sg_diags *d, const char *file, int line, int col, const char *fmt,
    va_list ap)
{
	if (d->n >= d->cap && !grow(d)) {
		if (d->n > d->cap)
			return; /* the note is there already */
		if (d->cap == 0)
			d->v = &oom_only;
		else
			d->v[d->n] = oom_only;
		d->n++;
		return;
	}
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	struct sg_diag *e = &d->v[d->n++];
	e->file = file ? strdup(file) : NULL;
	e->line = line;
	e->col = col;
	e->msg = msg ? msg : no_text;
}

void
sg_diags_print(const struct sg_diags *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct sg_diag *e = &d->v[i];
		if (e->file && e->line > 0)
			fprintf(out, "%s:%d:%d: %s\n", e->file, e->line, e->col, e->msg);
		else if (e->file)
			fprintf(out, "%s: %s\n", e->file, e->msg);
		else
			fprintf(out, "%s\n", e->msg);
	}
}

void
sg_diags_free(struct sg_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		if (d->v[i].msg != oom_msg && d->v[i].msg != no_text)
			free(d->v[i].msg);
	}
	if (d->cap > 0)
		free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

#define MAX_WORD 64

static size_t
min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;
	return m < c ? m : c;
}

/*
 * Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of neighbours, the typos people actually make ("mial").
 */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char m[MAX_WORD + 1][MAX_WORD + 1];
	if (la > MAX_WORD || lb > MAX_WORD)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++)
		m[i][0] = (unsigned char)i;
	for (size_t j = 0; j <= lb; j++)
		m[0][j] = (unsigned char)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = min3(m[i - 1][j] + 1u, m[i][j - 1] + 1u, m[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    m[i - 2][j - 2] + 1u < best)
				best = m[i - 2][j - 2] + 1u;
			m[i][j] = (unsigned char)best;
		}
	return m[la][lb];
}

const char *
sg_did_you_mean(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		size_t dist = edit_distance(word, candidates[i]);
		if (dist < best_d) {
			best_d = dist;
			best = candidates[i];
		}
	}
	/* A third of the word's length, at least 1, keeps hints plausible. */
	size_t allowed = strlen(word) / 3;
	if (allowed < 1)
		allowed = 1;
	return best_d <= allowed ? best : NULL;
}
