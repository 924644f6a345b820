/*
 * sg_diag: configuration and definition errors, collected in one pass and
 * printed "file:line:col: message", the way a compiler reports them.
 */
#ifndef SG_DIAG_H
#define SG_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct sg_diag {
	char *file; /* may be NULL when the error has no source file */
	int line;   /* 1-based; 0 when unknown */
	int col;    /* 1-based; 0 when unknown */
	char *msg;
};

struct sg_diags {
	struct sg_diag *v;
	size_t n;
	size_t cap;
};

void sg_diags_add(struct sg_diags *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sg_diags_addv(struct sg_diags *d, const char *file, int line, int col, const char *fmt,
    va_list ap) __attribute__((format(printf, 5, 0)));
/* Prints every diagnostic, one per line. */
void sg_diags_print(const struct sg_diags *d, FILE *out);
void sg_diags_free(struct sg_diags *d);

/*
 * Closest candidate to `word` by edit distance, or NULL when nothing is close
 * enough to be a plausible typo.  Used for "did you mean" hints.
 */
const char *sg_did_you_mean(const char *word, const char *const *candidates, size_t n);

#endif
