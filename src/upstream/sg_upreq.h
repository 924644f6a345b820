/*
 * sg_upreq: the upstream request a governed call becomes, built only from
 * the connector definition and the validated input, and the problem an
 * upstream's answer becomes.  Nothing here does I/O.
 *
 * Building: the operation's path template takes its {parameters} from the
 * input, percent-encoded; the other input members become the query string
 * (GET, DELETE) or a JSON body (POST, PUT, PATCH).  The only headers are a
 * fixed User-Agent, Accept, Content-Type with a body, the call's
 * traceparent, and the caller headers the connector lists.  Credentials
 * are added afterwards by the route step (sg_credential), never here.
 */
#ifndef SG_UPREQ_H
#define SG_UPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_connector;
struct sg_operation;
struct sg_environment;
struct sg_problem_def;

#define SG_UPREQ_MAX_HEADERS 24
#define SG_UPSTREAM_USER_AGENT "sandgate/1"

struct sg_upreq {
	char method[8];
	char *url; /* malloc'd: base_url + encoded path + "?" query */
	char *headers[SG_UPREQ_MAX_HEADERS]; /* malloc'd "Name: value" lines */
	size_t n_headers;
	char *body; /* malloc'd JSON, or NULL */
	size_t body_len;
};

/* A caller header, as the transport saw it. */
struct sg_upreq_caller_header {
	const char *name;
	const char *value;
};

/*
 * Builds the request for `op` of `c` against `env` from `input` (JSON text
 * that has passed the operation's input schema).  Returns 0, or -1 with a
 * sentence for the caller in `err` and *bad_param set to the offending
 * parameter's name (a path parameter that is missing, not a scalar,
 * empty, ".", or contains '/', '\\', "..", CR, LF or NUL, also once
 * %-decoded), or to the name of a forwarded caller header whose value
 * holds CR or LF; that name stays valid until the thread's next build.
 * *bad_param is NULL when the fault is not the caller's (no base_url, out
 * of memory, too many headers).  The input is parsed with the thread's
 * sg_json parser: a document parsed before on this thread is no longer live.
 * `traceparent` is the call's own (NULL or "": none).
 */
int sg_upreq_build(struct sg_upreq *rq, const struct sg_connector *c, const struct sg_operation *op,
                   const struct sg_environment *env, const char *input, size_t input_len,
                   const char *traceparent, const struct sg_upreq_caller_header *caller,
                   size_t n_caller, char *err, size_t errlen, const char **bad_param);
/* Appends one header line ("Name: value"); -1 when full, out of memory or it holds CR/LF. */
int sg_upreq_add_header(struct sg_upreq *rq, const char *name, const char *value);
/* Appends name=value (both percent-encoded) to the URL's query; -1 when out of memory. */
int sg_upreq_add_query(struct sg_upreq *rq, const char *name, const char *value);
/* Frees what the request holds, wiping header values (they may carry credentials). */
void sg_upreq_release(struct sg_upreq *rq);

/*
 * Seconds to wait from a Retry-After value (delta-seconds or an HTTP-date,
 * RFC 9110 §10.2.3) at unix time `now_s`; -1 when absent or malformed.
 * Capped at one day.
 */
int64_t sg_upreq_retry_after(const char *value, int64_t now_s);

/*
 * The problem an upstream's HTTP status becomes; NULL for 2xx.  401 and 403
 * are the connector's credential (upstream_auth), 404 upstream_not_found,
 * 408 and 504 upstream_timeout, 429 and 503 upstream_unavailable, another
 * 4xx upstream_rejected, 3xx redirect_refused (a redirect not followed),
 * anything else upstream_error.
 */
const struct sg_problem_def *sg_upreq_status_problem(long status);

/*
 * Why a caller header (lower-case name) may never be forwarded upstream:
 * the caller's own credentials, hop-by-hop and framing headers, the
 * gateway's own; NULL when it may be listed in forward_headers.
 */
const char *sg_upreq_forward_refusal(const char *lower_name);

#endif
