/*
 * sg_breaker: the health of each upstream host, shared by every I/O
 * thread: a circuit breaker and a pause.
 *
 * The breaker is closed while the host answers.  Over a sliding window
 * (1 s buckets), once at least `min_calls` calls have ended and
 * `failure_pct` of them failed, it opens: calls fail fast without reaching
 * the host.  After `open_ms` it is half-open and lets `probes` calls
 * through; their success closes it (with a fresh window), a failure opens
 * it again for twice as long, up to `max_open_ms`.
 *
 * A pause is the host's own request: a 429 or 503 with Retry-After stops
 * calls to it until then, whatever the breaker says.
 *
 * Hosts are registered on first use and never forgotten while the process
 * lives (a state must survive a catalog reload), up to SG_BREAKER_MAX_HOSTS.
 */
#ifndef SG_BREAKER_H
#define SG_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "upstream/sg_retry.h"

#define SG_BREAKER_MAX_HOSTS 1024
#define SG_BREAKER_WINDOW_BUCKETS 60 /* the longest window, in 1 s buckets */

enum sg_breaker_state { SG_BREAKER_CLOSED, SG_BREAKER_OPEN, SG_BREAKER_HALF_OPEN };

struct sg_breaker_config {
	uint32_t window_s;    /* 1..60, default 10 */
	uint32_t min_calls;   /* default 20 */
	uint32_t failure_pct; /* 1..100, default 50 */
	uint32_t open_ms;     /* first open period, default 5000 */
	uint32_t max_open_ms; /* default 60000 */
	uint32_t probes;      /* calls let through while half-open, default 1 */
};

/* Fills the defaults above. */
void sg_breaker_config_default(struct sg_breaker_config *cfg);

struct sg_breakers;
struct sg_breaker;

struct sg_breakers *sg_breakers_new(void);
void sg_breakers_free(struct sg_breakers *bs);

/*
 * The breaker of `host` ("https://api.example.com:443"), created with `cfg`
 * on first use; a later call with another config updates it.  NULL when out
 * of memory or the registry is full (then the caller goes on unguarded).
 */
struct sg_breaker *sg_breaker_of(struct sg_breakers *bs, const char *host,
                                 const struct sg_breaker_config *cfg);

/* Why admit said no. */
enum sg_breaker_refusal { SG_BREAKER_ADMITTED, SG_BREAKER_IS_OPEN, SG_BREAKER_IS_PAUSED };

/*
 * Whether one call may go now.  When admitted in half-open state, *probe
 * is set and the call's outcome must be recorded with it.  When refused,
 * *retry_after_ns says when to come back.
 */
enum sg_breaker_refusal sg_breaker_admit(struct sg_breaker *b, uint64_t now_ns, bool *probe,
                                         uint64_t *retry_after_ns);
/* The outcome of an admitted call; `failed` is a connect error, timeout or 5xx/429. */
void sg_breaker_record(struct sg_breaker *b, uint64_t now_ns, bool failed, bool probe);
/* An admitted probe that never ran (cancelled): its turn is given back. */
void sg_breaker_forget_probe(struct sg_breaker *b);
/* The host's retry budget (sg_retry.h). */
struct sg_retry_budget *sg_breaker_budget(struct sg_breaker *b);
/* The host asked for a pause (Retry-After) until `until_ns`. */
void sg_breaker_pause(struct sg_breaker *b, uint64_t until_ns);

enum sg_breaker_state sg_breaker_state(struct sg_breaker *b, uint64_t now_ns);
const char *sg_breaker_state_name(enum sg_breaker_state s);

/* For metrics and /readyz: each host's state; stops when fn returns non-zero. */
typedef int (*sg_breaker_visit_fn)(void *arg, const char *host, enum sg_breaker_state s,
                                   uint64_t opened_total, bool paused);
void sg_breakers_each(struct sg_breakers *bs, uint64_t now_ns, sg_breaker_visit_fn fn, void *arg);

/*
 * Prometheus text for every host: sandgate_upstream_breaker_state{host}
 * (0 closed, 1 half-open, 2 open), sandgate_upstream_breaker_opened_total
 * and sandgate_upstream_paused.
 */
void sg_breakers_render(struct sg_breakers *bs, uint64_t now_ns, FILE *f);

#endif
