/*
 * The state of a live call's attempts, shared by route's three files on a
 * real upstream: step_route_live.c (the attempts and their fetches),
 * step_route_judge.c (what an answer becomes) and step_route_token.c (the
 * OAuth2 token exchange).  Private to route.
 */
#ifndef SG_STEP_ROUTE_LIVE_H
#define SG_STEP_ROUTE_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "path/sg_req.h"
#include "path/step_route.h"
#include "upstream/sg_credential.h"
#include "upstream/sg_egress.h"
#include "upstream/sg_fetch.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

struct sg_breaker;
struct sg_oauth_entry;

struct live {
	struct sg_req *r;
	/* The connector answering: the one asked for, or its failover. */
	const struct sg_connector *conn;
	const struct sg_operation *op;
	const struct sg_environment *env;
	struct sg_breaker *breaker; /* NULL: unguarded (registry full) */
	struct sg_fetch *fetch;     /* in flight, or NULL */
	bool probe;                 /* this attempt is the half-open breaker's probe */
	bool failed_over;
	bool backing_off;             /* woken by the backoff timer, not by a fetch */
	bool token_wait;              /* woken to look again for a token another call is fetching */
	bool token_fetch;             /* what is in flight is the OAuth2 token exchange */
	struct sg_oauth_entry *oauth; /* oauth2: the token cache entry of conn's credential */
	uint64_t token_taken_ns;      /* oauth2: when this call took its token from the cache */
	char *req_url;     /* the last attempt's URL, kept only where redirects are followed */
	bool cross_origin; /* a redirect left the base URL's origin: no credential */
	unsigned attempt;  /* attempts made on conn, the current one included */
	unsigned redirects;
	enum sg_cred_slot cred;
	int64_t cred_gen;    /* the credential table's generation when the request was built */
	bool auth_retried;   /* a 401 was already tried again with a reloaded credential */
	char *url;           /* a redirect's target, or NULL: built from the definition */
	bool as_get;         /* a 303 turned the call into a GET without a body */
	char origin[320];    /* scheme://host:port of the base URL: the breaker's key */
	char host[256];      /* the host of the URL being fetched: the egress guard's */
	char base_host[256]; /* the base URL's host, parsed once per connector aimed at */
	uint64_t start_ns;   /* when the call reached route: attempts are timed from here */
	uint64_t deadline_ns;
	uint64_t attempt_ns; /* when the current attempt started */
	uint64_t waited_ns;  /* the backoff slept before the next attempt */

	/* The last attempt's outcome, kept from its callback until the path resumes. */
	bool have_result;
	enum sg_fetch_error error;
	long status;
	char *body;
	size_t body_len;
	char *location;
	char retry_after[64];
	bool refused;
	struct sg_egress_verdict verdict; /* the refusal, when refused */
};

/* The next attempt: token, breaker, request, fetch; SG_STEP_AGAIN while it runs. */
enum sg_step_rc sg_live_attempt(struct live *lv);
/* Points the call at connector `c`'s operation `op`: the asked one, or its failover. */
int sg_live_aim(struct live *lv, const struct sg_connector *c, const struct sg_operation *op);
/* Whether the operation's failover may answer this caller; sets it in *alt and *alt_op. */
bool sg_live_may_fail_over(struct live *lv, const struct sg_connector **alt,
                           const struct sg_operation **alt_op);
/* Whether an outcome counts against the host (a connect error, a timeout, a 5xx or 429). */
bool sg_live_host_failed(const struct sg_fetch_result *res);
/* The host of `url` (brackets stripped) and, when `origin` is given, scheme://host:port. */
int sg_live_url_host(const char *url, char *host, size_t n, char *origin, size_t on);
/* `want_ms`, but never more than what is left of the call's deadline (at least 1 ms). */
uint32_t sg_live_capped_ms(uint32_t want_ms, uint64_t left_ns);
/* The fetch's admit callback: the egress guard on each address before connect. */
bool sg_live_admit(void *arg, const struct sockaddr *sa, socklen_t len);
/* The fetch's completion: keeps the outcome and wakes the request. */
void sg_live_fetched(void *arg, const struct sg_fetch_result *res);

/* 503 upstream_unavailable with a Retry-After of `retry_after_ns` (at least 1 s). */
enum sg_step_rc sg_live_unavailable(struct live *lv, uint64_t retry_after_ns, const char *why);
/* The problem for an attempt that got no answer. */
enum sg_step_rc sg_live_transport_problem(struct live *lv);
/* What the last attempt's outcome becomes: an answer, another attempt, or a problem. */
enum sg_step_rc sg_live_judge(struct live *lv);

/* A token for OAuth2 in `token`: true, or false with the step's outcome in *rc. */
bool sg_live_token_ready(struct live *lv, char *token, size_t n, enum sg_step_rc *rc);
/* What the token endpoint's answer becomes: the call's attempt, or a problem. */
enum sg_step_rc sg_live_judge_token(struct live *lv);

#endif
