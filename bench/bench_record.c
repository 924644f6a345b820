/*
 * The writer's store path: sg_store_record in batches of 256 (the writer
 * thread's batch), rows per second over a fresh store in a temporary
 * directory, median of RUNS runs.  Also the audit chain's share alone:
 * encoding and hashing one decision (sg_chain_from_decision +
 * sg_chain_hash), in ns per row.  Decisions are shaped like a live call's:
 * ids, names, a reason and an upstream attempt.
 *
 *   build/bench/bench_record [rows]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/support/sg_testdir.h"
#include "core/sg_clock.h"
#include "store/sg_store.h"

#define RUNS 5
#define BATCH 256

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void
fill(struct sg_decision *d, int i)
{
	memset(d, 0, sizeof(*d));
	d->ts_us = 1700000000000000 + i;
	snprintf(d->trace_id, sizeof(d->trace_id), "%032x", i * 2654435761u);
	snprintf(d->key_id, sizeof(d->key_id), "k_%08x", i % 97);
	snprintf(d->tenant, sizeof(d->tenant), "acme");
	snprintf(d->user, sizeof(d->user), "user-%d", i % 1000);
	snprintf(d->role, sizeof(d->role), "explorer");
	snprintf(d->mode, sizeof(d->mode), "live");
	snprintf(d->connector, sizeof(d->connector), "crm");
	snprintf(d->operation, sizeof(d->operation), "get_contact");
	snprintf(d->decision, sizeof(d->decision), "allowed");
	d->status = 200;
	snprintf(d->reason, sizeof(d->reason), "served by the upstream");
	d->latency_us = 1200 + i % 500;
	d->cost = 0.002;
	snprintf(d->upstream, sizeof(d->upstream),
	         "[{\"start_us\":%d,\"took_us\":900,\"backoff_us\":0,\"status\":200}]", i);
}

static double
run_record(const struct sg_decision *v, int rows)
{
	char dir[64], err[256];
	if (sg_testdir_make(dir, sizeof(dir), "bench-record") != 0)
		exit(1);
	struct sg_store *s = sg_store_open(dir, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "bench_record: %s\n", err);
		exit(1);
	}
	uint64_t t0 = sg_mono_ns();
	for (int done = 0; done < rows; done += BATCH)
		if (sg_store_record(s, v, BATCH) != 0) {
			fprintf(stderr, "bench_record: %s\n", sg_store_last_error(s));
			exit(1);
		}
	uint64_t t1 = sg_mono_ns();
	sg_store_close(s);
	sg_testdir_remove(dir);
	return (double)rows / ((double)(t1 - t0) / 1e9);
}

static double
run_hash(const struct sg_decision *v, int rows)
{
	uint8_t h[SG_CHAIN_HASH_LEN] = {0};
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	uint64_t t0 = sg_mono_ns();
	for (int i = 0; i < rows; i++) {
		sg_chain_from_decision(&v[i % BATCH], i, SG_CHAIN_MAIN, cols);
		sg_chain_hash(h, cols, h);
	}
	uint64_t t1 = sg_mono_ns();
	return (double)(t1 - t0) / rows;
}

int
main(int argc, char **argv)
{
	int rows = argc > 1 ? atoi(argv[1]) : 200000;
	static struct sg_decision v[BATCH];
	double r[RUNS];
	rows = rows < BATCH ? BATCH : rows / BATCH * BATCH;
	for (int i = 0; i < BATCH; i++)
		fill(&v[i], i);
	for (int i = 0; i < RUNS; i++)
		r[i] = run_record(v, rows);
	qsort(r, RUNS, sizeof(r[0]), cmp_double);
	printf("%-34s %12.0f rows/s  (median of %d runs of %d rows, batches of %d)\n",
	       "sg_store_record", r[RUNS / 2], RUNS, rows, BATCH);
	for (int i = 0; i < RUNS; i++)
		r[i] = run_hash(v, rows);
	qsort(r, RUNS, sizeof(r[0]), cmp_double);
	printf("%-34s %12.0f ns/row\n", "chain encode + BLAKE2b (alone)", r[RUNS / 2]);
	return 0;
}
