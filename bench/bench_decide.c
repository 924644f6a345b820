/*
 * Microbenchmark of the decision path (identify → resolve → authorize →
 * validate → throttle), no HTTP, with a 1 KiB body, over 10,000 keys.
 * The request clock advances one second per call so every bucket has
 * refilled and every decision is an admission: the slowest honest case.
 *
 *   build/bench/bench_decide [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/sg_clock.h"
#include "../tests/support/sg_fixture.h"
#include "json/sg_json.h"
#include "path/sg_path.h"

#define N_KEYS 10000
#define BATCH 1000

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* mail.send with a body field sized so that the whole request is `size` bytes. */
static char *
make_body(size_t size)
{
	static const char head[] = "{\"to\":[\"someone@example.com\"],\"subject\":\"Quarterly numbers\","
				   "\"body\":\"";
	static const char tail[] = "\"}";
	char *b = malloc(size + 1);
	size_t fill = size - (sizeof(head) - 1) - (sizeof(tail) - 1);
	memcpy(b, head, sizeof(head) - 1);
	memset(b + sizeof(head) - 1, 'x', fill);
	memcpy(b + sizeof(head) - 1 + fill, tail, sizeof(tail));
	return b;
}

/* Runs `iters` decisions with a body of `size` bytes; prints and returns the median ns. */
static double
run(struct sg_fixture *f, long iters, size_t size)
{
	char *body = make_body(size);
	char auth[128];
	size_t n_batches = (size_t)iters / BATCH, admitted = 0;
	uint64_t *batch_ns = calloc(n_batches, sizeof(*batch_ns));
	static uint64_t clock; /* shared by runs, so buckets always see time move forward */
	if (clock == 0)
		clock = sg_mono_ns();
	for (size_t b = 0; b < n_batches; b++) {
		uint64_t t0 = sg_mono_ns();
		for (size_t i = 0; i < BATCH; i++) {
			struct sg_req r;
			/* Makers (index % 3 == 1) may call mail.send. */
			size_t k = (b * BATCH + i) % N_KEYS;
			k = k - k % 3 + 1 < N_KEYS ? k - k % 3 + 1 : 1;
			snprintf(auth, sizeof(auth), "Bearer %s", f->keys[k]);
			sg_req_init(&r, &f->gw, f->snap);
			r.authorization = auth;
			r.connector_name = "mail";
			r.operation_name = "send";
			r.body = body;
			r.body_len = size;
			r.now_ns = (clock += 1000000000ull);
			sg_path_run_decide(&r);
			admitted += r.problem == NULL;
			sg_req_finish(&r);
		}
		batch_ns[b] = sg_mono_ns() - t0;
	}
	qsort(batch_ns, n_batches, sizeof(*batch_ns), cmp_u64);
	double median = (double)batch_ns[n_batches / 2] / BATCH;
	printf("decision path (identify..throttle, %4zu-byte body, %d keys): median %6.0f ns/call, "
	       "p99 batch %6.0f ns/call, admitted %zu/%zu\n",
	    size, N_KEYS, median, (double)batch_ns[n_batches * 99 / 100] / BATCH, admitted,
	    n_batches * BATCH);
	free(batch_ns);
	free(body);
	return admitted == n_batches * BATCH ? median : -1;
}

/*
 * The request path's parser alone on the same body, to show where the time
 * goes, and jansson's (the parser before it) for comparison.
 */
static void
parse_only(long iters, size_t size)
{
	char *body = make_body(size);
	struct sg_json_doc doc;
	uint64_t t0 = sg_mono_ns();
	for (long i = 0; i < iters; i++)
		(void)sg_json_parse(body, size, 64, &doc, NULL);
	printf("  of which sg_json_parse alone (%4zu-byte body):             %6.0f ns/call\n", size,
	    (double)(sg_mono_ns() - t0) / (double)iters);
	t0 = sg_mono_ns();
	for (long i = 0; i < iters / 10; i++)
		json_decref(json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL));
	printf("  jansson json_loadb on the same body, for comparison:           %6.0f ns/call\n",
	    (double)(sg_mono_ns() - t0) / (double)(iters / 10));
	free(body);
}

int
main(int argc, char **argv)
{
	struct sg_fixture f;
	long iters = argc > 1 ? atol(argv[1]) : 300000;
	if (sg_fixture_init(&f, N_KEYS) != 0) {
		fprintf(stderr, "bench_decide: fixture setup failed\n");
		return 1;
	}
	double a = run(&f, iters, 1024);
	parse_only(iters / 4, 1024);
	double b = run(&f, iters, 128);
	parse_only(iters / 4, 128);
	sg_fixture_free(&f);
	return (a < 0 || b < 0) ? 1 : 0;
}
