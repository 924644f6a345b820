/*
 * sg_retry: when an upstream call may be tried again, and after how long.
 *
 * Only idempotent operations are retried, and only after a failure that
 * did not reach the upstream's logic or that it asked us to repeat:
 * connect errors, 502, 503, 504 and 429.  The wait is exponential backoff
 * with full jitter (a uniform draw in [0, min(cap, base * 2^attempt))), so
 * callers that failed together do not return together.
 *
 * A retry budget keeps retries from amplifying an outage: over a sliding
 * 10 s window, retries may be at most SG_RETRY_BUDGET_PCT percent of first
 * attempts, plus a small allowance so that a quiet upstream can still be
 * retried at all (Finagle's and Envoy's retry budgets work this way).  The
 * budget lives with the upstream host's breaker (sg_breaker_budget): a
 * connector environment has one base URL, so this is the connector's
 * budget, and connectors sharing a host share the load they may add to it.
 */
#ifndef SG_RETRY_H
#define SG_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "upstream/sg_fetch.h"

#define SG_RETRY_MAX_ATTEMPTS 3 /* the first try and two retries */
#define SG_RETRY_BASE_MS 50
#define SG_RETRY_CAP_MS 1000
#define SG_RETRY_BUDGET_PCT 20
#define SG_RETRY_BUDGET_MIN 3 /* retries a window allows whatever the traffic */
#define SG_RETRY_WINDOW_S 10

/* Whether the outcome of one attempt may be retried (for an idempotent operation). */
bool sg_retry_retryable(enum sg_fetch_error error, long status);

/*
 * The wait before retry number `attempt` (1 for the first retry), drawn
 * from `rand64` (any 64 random bits).
 */
uint64_t sg_retry_backoff_ns(unsigned attempt, uint64_t rand64);

struct sg_retry_budget {
	pthread_mutex_t mu;
	struct {
		uint64_t sec; /* which second; 0: never used */
		uint32_t attempts;
		uint32_t retries;
	} win[SG_RETRY_WINDOW_S];
};

void sg_retry_budget_init(struct sg_retry_budget *b);
void sg_retry_budget_destroy(struct sg_retry_budget *b);
/* A first attempt was made. */
void sg_retry_budget_deposit(struct sg_retry_budget *b, uint64_t now_ns);
/* Takes one retry from the budget: false when it is spent (then do not retry). */
bool sg_retry_budget_withdraw(struct sg_retry_budget *b, uint64_t now_ns);

#endif
