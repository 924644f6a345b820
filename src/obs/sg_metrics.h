/*
 * sg_metrics: Prometheus counters without shared writes.  Each I/O thread
 * owns one sg_metrics_shard and is its only writer; a scrape sums the
 * shards with relaxed atomic loads.  Nothing on the request path takes a
 * lock or bounces a cache line between threads.
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/sg_problem.h"

#define SG_METRICS_MAX_SHARDS 64
#define SG_METRICS_SERIES 256
#define SG_METRICS_BUCKETS 14

struct sg_metrics_series {
	char connector[64];
	int status;
	_Atomic uint64_t count;
};

struct sg_metrics_shard {
	/* Series are appended by the owner and published through `n_series`. */
	struct sg_metrics_series series[SG_METRICS_SERIES];
	_Atomic size_t n_series;
	_Atomic uint64_t overflow; /* requests whose series did not fit */
	_Atomic uint64_t latency_bucket[SG_METRICS_BUCKETS];
	_Atomic uint64_t latency_sum_us;
	_Atomic uint64_t latency_count;
	_Atomic uint64_t decisions[SG_DEC_COUNT];
	_Atomic int64_t in_flight;
};

/* Why a new connection was closed at once. */
enum sg_conn_refused { SG_CONN_REFUSED_TOTAL, SG_CONN_REFUSED_PER_ADDRESS, SG_CONN_REFUSED_COUNT };

/* Global extras the scrape reports, set by the owner of each value. */
struct sg_metrics_gauges {
	_Atomic uint64_t snapshot_generation;
	_Atomic uint64_t reloads_ok;
	_Atomic uint64_t reloads_failed;
	_Atomic uint64_t record_dropped;
	/* The writer's state, copied from the recorder when scraped. */
	_Atomic uint64_t record_written;
	_Atomic uint64_t record_backlog;
	_Atomic uint64_t record_oldest_age_us;
	_Atomic uint64_t record_retries;
	_Atomic uint64_t audit_refused;
	_Atomic uint64_t throttle_cells;
	/* The transport (src/http/sg_conn.c), per connection, never per request. */
	_Atomic int64_t conns_open;
	_Atomic uint64_t conns_refused[SG_CONN_REFUSED_COUNT];
	_Atomic uint64_t request_timeouts[2]; /* 0: head, 1: body */
	_Atomic uint64_t accept_paused;
	/* Requests refused for want of a valid key (src/throttle/sg_unauth.c). */
	_Atomic uint64_t unauth_refused;  /* by identify: 401 */
	_Atomic uint64_t unauth_limited;  /* before identify, the address over its rate: 429 */
	_Atomic uint64_t unauth_recorded; /* of both, the ones written to the audit */
};

/* Returns a zeroed shard registered for scraping; NULL past the maximum. */
struct sg_metrics_shard *sg_metrics_shard_new(void);
void sg_metrics_reset_all(void);

/* Owner thread only.  `connector` may be NULL for requests that never resolved one. */
void sg_metrics_observe(struct sg_metrics_shard *m, const char *connector, int status,
                        enum sg_decision_kind d, uint64_t latency_us);

extern struct sg_metrics_gauges sg_gauges;

/* Renders every series in Prometheus text format 0.0.4.  Returns a malloc'd string. */
char *sg_metrics_render(size_t *len);

#endif
