/*
 * sg_trace: W3C Trace Context.  An incoming traceparent keeps its trace id;
 * the gateway adds its own span.  An absent or malformed header starts a new
 * trace, because a bad header from a client must never break a request.
 */
#ifndef SG_TRACE_H
#define SG_TRACE_H

#include <stdbool.h>

struct sg_trace {
	char trace_id[33]; /* 32 lowercase hex */
	char parent_id[17];/* the caller's span, "" when we started the trace */
	char span_id[17];  /* ours */
	char flags[3];     /* "01" sampled */
};

/* Fills `t` from a traceparent header value (may be NULL). */
void sg_trace_begin(struct sg_trace *t, const char *traceparent);
/* Formats our traceparent for the response: 00-trace-span-flags. out >= 56 bytes. */
void sg_trace_format(const struct sg_trace *t, char *out, unsigned long n);
/* Strict parse of version 00 headers; exposed for tests. */
bool sg_trace_parse(const char *v, struct sg_trace *t);

#endif
