/*
 * sg_fetch_int: what sg_fetch.c (the multi handle on the event loop) and
 * sg_fetch_easy.c (one transfer's options, callbacks and outcome) share.
 * Not for use outside src/upstream/sg_fetch*.c.
 */
#ifndef SG_FETCH_INT_H
#define SG_FETCH_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "upstream/sg_fetch.h"

struct event;

struct sg_fetch {
	struct sg_fetcher *f;
	CURL *easy;
	struct sg_fetch *prev, *next; /* the fetcher's transfers in flight */
	bool in_multi;                /* added to the multi handle (else: failing early) */
	struct event *early;          /* fires the callback of a fetch that failed in start */
	enum sg_fetch_error early_error;
	sg_fetch_done_fn done;
	void *arg;
	sg_fetch_admit_fn admit;
	void *admit_arg;
	struct curl_slist *headers, *resolve; /* curl keeps pointers to these until the end */
	/* The response body, NUL-terminated, and its cap. */
	char *body;
	size_t body_len, body_cap, max_response;
	bool too_large;                              /* the write callback stopped at the cap */
	bool refused;                                /* admit() said no to an address */
	bool admitted;                               /* admit() said yes to an address */
	bool refused_at_send; /* admit() said no to the connection a request was about to use */
	char *content_type, *retry_after, *location; /* the final response's, or NULL */
	char errbuf[CURL_ERROR_SIZE];
};

/* Copies curl's words into a result's message, cut to fit (snprintf's "%s" draws gcc's warning). */
static inline void
sg_fetch_message(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Sets every option of one transfer on x->easy; -1 with x->early_error set when it cannot. */
int sg_fetch_easy_setup(struct sg_fetch *x, const struct sg_fetch_request *rq);
/* Fills `res` for a transfer curl finished with `rc`; res's strings point into x. */
void sg_fetch_easy_result(struct sg_fetch *x, CURLcode rc, struct sg_fetch_result *res);
/* Frees what one transfer allocated (not the easy handle) and clears it for reuse. */
void sg_fetch_easy_clear(struct sg_fetch *x);

#endif
