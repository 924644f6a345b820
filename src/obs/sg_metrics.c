#include "obs/sg_metrics.h"
#include "obs/sg_dlp_metrics.h"
#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_adaptive.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sg_metrics_gauges sg_gauges;

static struct sg_metrics_shard *shards[SG_METRICS_MAX_SHARDS];
static _Atomic size_t n_shards;

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bucket_us[SG_METRICS_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};

struct sg_metrics_shard *
sg_metrics_shard_new(void)
{
	size_t i = atomic_fetch_add(&n_shards, 1);
	if (i >= SG_METRICS_MAX_SHARDS)
		return NULL;
	struct sg_metrics_shard *m = calloc(1, sizeof(*m));
	shards[i] = m;
	return m;
}

void
sg_metrics_reset_all(void)
{
	size_t n = atomic_load(&n_shards);
	for (size_t i = 0; i < n && i < SG_METRICS_MAX_SHARDS; i++) {
		free(shards[i]);
		shards[i] = NULL;
	}
	atomic_store(&n_shards, 0);
	memset(&sg_gauges, 0, sizeof(sg_gauges));
}

static struct sg_metrics_series *
find_series(struct sg_metrics_shard *m, const char *connector, int status)
{
	size_t n = atomic_load_explicit(&m->n_series, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		if (m->series[i].status == status && strcmp(m->series[i].connector, connector) == 0)
			return &m->series[i];
	if (n == SG_METRICS_SERIES)
		return NULL;
	struct sg_metrics_series *s = &m->series[n];
	snprintf(s->connector, sizeof(s->connector), "%s", connector);
	s->status = status;
	/* Publish only after the labels are written, so a scrape never reads half a series. */
	atomic_store_explicit(&m->n_series, n + 1, memory_order_release);
	return s;
}

static void
bump(_Atomic uint64_t *c, uint64_t by)
{
	/* Single writer: a relaxed load and store is enough and cheaper than an RMW. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
	                      memory_order_relaxed);
}

void
sg_metrics_observe(struct sg_metrics_shard *m, const char *connector, int status,
                   enum sg_decision_kind d, uint64_t latency_us)
{
	if (m == NULL)
		return;
	struct sg_metrics_series *s = find_series(m, connector ? connector : "", status);
	if (s)
		bump(&s->count, 1);
	else
		bump(&m->overflow, 1);
	size_t b = 0;
	while (b < SG_METRICS_BUCKETS - 1 && latency_us > bucket_us[b])
		b++;
	bump(&m->latency_bucket[b], 1);
	bump(&m->latency_sum_us, latency_us);
	bump(&m->latency_count, 1);
	if ((unsigned)d < SG_DEC_COUNT)
		bump(&m->decisions[d], 1);
}

static uint64_t
load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sums the (connector, status) series of every shard into one list. */
static size_t
merge_series(struct sg_metrics_series *out, size_t cap, uint64_t *counts)
{
	size_t n_out = 0, ns = atomic_load(&n_shards);
	for (size_t i = 0; i < ns && i < SG_METRICS_MAX_SHARDS; i++) {
		struct sg_metrics_shard *m = shards[i];
		size_t n = m ? atomic_load_explicit(&m->n_series, memory_order_acquire) : 0;
		for (size_t j = 0; j < n; j++) {
			struct sg_metrics_series *s = &m->series[j];
			size_t k = 0;
			while (k < n_out && (out[k].status != s->status ||
			                     strcmp(out[k].connector, s->connector)))
				k++;
			if (k == n_out) {
				if (n_out == cap)
					continue;
				memcpy(out[k].connector, s->connector, sizeof(s->connector));
				out[k].status = s->status;
				counts[k] = 0;
				n_out++;
			}
			counts[k] += load(&s->count);
		}
	}
	return n_out;
}

static void
render_requests(FILE *f)
{
	/* Heap, not static: two threads may scrape at once. */
	size_t cap = SG_METRICS_SERIES * 4;
	struct sg_metrics_series *merged = calloc(cap, sizeof(*merged));
	uint64_t *counts = calloc(cap, sizeof(*counts));
	size_t n = (merged && counts) ? merge_series(merged, cap, counts) : 0;
	fputs("# HELP sandgate_requests_total Requests answered, by connector and HTTP status.\n"
	      "# TYPE sandgate_requests_total counter\n",
	      f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "sandgate_requests_total{connector=\"%s\",status=\"%d\"} %llu\n",
		        merged[i].connector, merged[i].status, (unsigned long long)counts[i]);
	free(merged);
	free(counts);
}

static void
render_latency(FILE *f)
{
	uint64_t buckets[SG_METRICS_BUCKETS] = {0}, sum = 0, count = 0;
	size_t ns = atomic_load(&n_shards);
	for (size_t i = 0; i < ns && i < SG_METRICS_MAX_SHARDS; i++) {
		if (shards[i] == NULL)
			continue;
		for (size_t b = 0; b < SG_METRICS_BUCKETS; b++)
			buckets[b] += load(&shards[i]->latency_bucket[b]);
		sum += load(&shards[i]->latency_sum_us);
		count += load(&shards[i]->latency_count);
	}
	fputs("# HELP sandgate_request_duration_seconds Time from request to response.\n"
	      "# TYPE sandgate_request_duration_seconds histogram\n",
	      f);
	uint64_t cum = 0;
	for (size_t b = 0; b < SG_METRICS_BUCKETS; b++) {
		cum += buckets[b];
		if (b < SG_METRICS_BUCKETS - 1)
			fprintf(f, "sandgate_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			        (double)bucket_us[b] / 1e6, (unsigned long long)cum);
		else
			fprintf(f, "sandgate_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
			        (unsigned long long)cum);
	}
	fprintf(f, "sandgate_request_duration_seconds_sum %.6f\n", (double)sum / 1e6);
	fprintf(f, "sandgate_request_duration_seconds_count %llu\n", (unsigned long long)count);
}

static uint64_t
sum_decision(enum sg_decision_kind d)
{
	uint64_t total = 0;
	size_t ns = atomic_load(&n_shards);
	for (size_t i = 0; i < ns && i < SG_METRICS_MAX_SHARDS; i++)
		if (shards[i])
			total += load(&shards[i]->decisions[d]);
	return total;
}

static void
render_decisions(FILE *f)
{
	fputs("# HELP sandgate_decisions_total Governed-path decisions, by outcome.\n"
	      "# TYPE sandgate_decisions_total counter\n",
	      f);
	for (int d = 0; d < SG_DEC_COUNT; d++)
		fprintf(f, "sandgate_decisions_total{decision=\"%s\"} %llu\n", sg_decision_name(d),
		        (unsigned long long)sum_decision(d));
	fprintf(f,
	        "# HELP sandgate_throttled_total Requests refused by a rate limit.\n"
	        "# TYPE sandgate_throttled_total counter\n"
	        "sandgate_throttled_total %llu\n"
	        "# HELP sandgate_denied_total Requests refused by policy.\n"
	        "# TYPE sandgate_denied_total counter\n"
	        "sandgate_denied_total %llu\n",
	        (unsigned long long)sum_decision(SG_DEC_THROTTLED),
	        (unsigned long long)sum_decision(SG_DEC_DENIED));
}

static void
render_gauges(FILE *f)
{
	int64_t in_flight = 0;
	uint64_t overflow = 0;
	size_t ns = atomic_load(&n_shards);
	for (size_t i = 0; i < ns && i < SG_METRICS_MAX_SHARDS; i++) {
		if (shards[i] == NULL)
			continue;
		in_flight += atomic_load_explicit(&shards[i]->in_flight, memory_order_relaxed);
		overflow += load(&shards[i]->overflow);
	}
	fprintf(f,
	        "# HELP sandgate_in_flight_requests Requests being processed now.\n"
	        "# TYPE sandgate_in_flight_requests gauge\n"
	        "sandgate_in_flight_requests %lld\n"
	        "# HELP sandgate_series_overflow_total Requests not counted by series (label table "
	        "full).\n"
	        "# TYPE sandgate_series_overflow_total counter\n"
	        "sandgate_series_overflow_total %llu\n"
	        "# HELP sandgate_snapshot_generation Generation of the live catalog and policy.\n"
	        "# TYPE sandgate_snapshot_generation gauge\n"
	        "sandgate_snapshot_generation %llu\n"
	        "# HELP sandgate_reloads_total Snapshot reloads, by result.\n"
	        "# TYPE sandgate_reloads_total counter\n"
	        "sandgate_reloads_total{result=\"ok\"} %llu\n"
	        "sandgate_reloads_total{result=\"failed\"} %llu\n"
	        "# HELP sandgate_record_dropped_total Decisions not written: the queue was full or "
	        "the store refused the batch.\n"
	        "# TYPE sandgate_record_dropped_total counter\n"
	        "sandgate_record_dropped_total %llu\n"
	        "# HELP sandgate_throttle_cells Rate-limit cells in use.\n"
	        "# TYPE sandgate_throttle_cells gauge\n"
	        "sandgate_throttle_cells %llu\n",
	        (long long)in_flight, (unsigned long long)overflow,
	        (unsigned long long)load(&sg_gauges.snapshot_generation),
	        (unsigned long long)load(&sg_gauges.reloads_ok),
	        (unsigned long long)load(&sg_gauges.reloads_failed),
	        (unsigned long long)load(&sg_gauges.record_dropped),
	        (unsigned long long)load(&sg_gauges.throttle_cells));
}

/* The audit writer: how far behind it is, and what that cost. */
static void
render_record(FILE *f)
{
	fprintf(f,
	        "# HELP sandgate_record_written_total Decisions written to the store.\n"
	        "# TYPE sandgate_record_written_total counter\n"
	        "sandgate_record_written_total %llu\n"
	        "# HELP sandgate_record_backlog Decisions not yet written to the store.\n"
	        "# TYPE sandgate_record_backlog gauge\n"
	        "sandgate_record_backlog %llu\n"
	        "# HELP sandgate_record_oldest_age_seconds How long the oldest unwritten decision "
	        "has waited.\n"
	        "# TYPE sandgate_record_oldest_age_seconds gauge\n"
	        "sandgate_record_oldest_age_seconds %.6f\n"
	        "# HELP sandgate_record_retries_total Writes the store refused, each tried again.\n"
	        "# TYPE sandgate_record_retries_total counter\n"
	        "sandgate_record_retries_total %llu\n"
	        "# HELP sandgate_audit_refused_total Calls refused because the audit was behind "
	        "(audit.on_failure: fail_closed).\n"
	        "# TYPE sandgate_audit_refused_total counter\n"
	        "sandgate_audit_refused_total %llu\n",
	        (unsigned long long)load(&sg_gauges.record_written),
	        (unsigned long long)load(&sg_gauges.record_backlog),
	        (double)load(&sg_gauges.record_oldest_age_us) / 1e6,
	        (unsigned long long)load(&sg_gauges.record_retries),
	        (unsigned long long)load(&sg_gauges.audit_refused));
}

static void
render_transport(FILE *f)
{
	fprintf(f,
	        "# HELP sandgate_connections_open Client connections open now.\n"
	        "# TYPE sandgate_connections_open gauge\n"
	        "sandgate_connections_open %lld\n"
	        "# HELP sandgate_connections_refused_total Connections closed at once: a cap "
	        "was reached.\n"
	        "# TYPE sandgate_connections_refused_total counter\n"
	        "sandgate_connections_refused_total{reason=\"total\"} %llu\n"
	        "sandgate_connections_refused_total{reason=\"per_address\"} %llu\n"
	        "# HELP sandgate_request_timeouts_total Requests cut with 408: their head or body "
	        "missed its deadline.\n"
	        "# TYPE sandgate_request_timeouts_total counter\n"
	        "sandgate_request_timeouts_total{phase=\"head\"} %llu\n"
	        "sandgate_request_timeouts_total{phase=\"body\"} %llu\n"
	        "# HELP sandgate_accept_paused_total Times accepting paused: accept failed, "
	        "e.g. out of file descriptors.\n"
	        "# TYPE sandgate_accept_paused_total counter\n"
	        "sandgate_accept_paused_total %llu\n"
	        "# HELP sandgate_unauthenticated_total Requests refused for want of a valid key: "
	        "by identify (refused), or before it, the address being over its rate (limited).\n"
	        "# TYPE sandgate_unauthenticated_total counter\n"
	        "sandgate_unauthenticated_total{result=\"refused\"} %llu\n"
	        "sandgate_unauthenticated_total{result=\"limited\"} %llu\n"
	        "# HELP sandgate_unauthenticated_recorded_total Of those, the ones written to the "
	        "audit (a sample per client address).\n"
	        "# TYPE sandgate_unauthenticated_recorded_total counter\n"
	        "sandgate_unauthenticated_recorded_total %llu\n",
	        (long long)atomic_load_explicit(&sg_gauges.conns_open, memory_order_relaxed),
	        (unsigned long long)load(&sg_gauges.conns_refused[SG_CONN_REFUSED_TOTAL]),
	        (unsigned long long)load(&sg_gauges.conns_refused[SG_CONN_REFUSED_PER_ADDRESS]),
	        (unsigned long long)load(&sg_gauges.request_timeouts[0]),
	        (unsigned long long)load(&sg_gauges.request_timeouts[1]),
	        (unsigned long long)load(&sg_gauges.accept_paused),
	        (unsigned long long)load(&sg_gauges.unauth_refused),
	        (unsigned long long)load(&sg_gauges.unauth_limited),
	        (unsigned long long)load(&sg_gauges.unauth_recorded));
}

char *
sg_metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (f == NULL)
		return NULL;
	render_requests(f);
	render_latency(f);
	render_decisions(f);
	render_gauges(f);
	render_record(f);
	render_transport(f);
	sg_metrics_rules_render(f);
	sg_dlp_metrics_render(f);
	sg_adaptive_render(f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}
