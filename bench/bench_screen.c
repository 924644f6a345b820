/*
 * The governed path with the DLP screen on against the same path with it
 * off, in one process on the same body: identify through route (the
 * simulator answers, without its latency), no HTTP.  The body is
 * bench_decide's 1 KiB mail.send, whose recipient address the screen
 * finds (pii.email: the default alerts, so the event is counted and
 * noted, and the body goes on as it is).  Rounds alternate off and on so
 * both see the same machine; the ratio of medians is the figure.
 *
 *   build/bench/bench_screen [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_clock.h"
#include "../tests/support/sg_fixture.h"
#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"
#include "path/sg_path.h"

#define N_KEYS 300
#define BATCH 1000
#define ROUNDS 6

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static char *
make_body(size_t size)
{
	static const char head[] =
	    "{\"to\":[\"someone@example.com\"],\"subject\":\"Quarterly numbers\","
	    "\"body\":\"";
	static const char tail[] = "\"}";
	char *b = malloc(size + 1);
	size_t fill = size - (sizeof(head) - 1) - (sizeof(tail) - 1);
	memcpy(b, head, sizeof(head) - 1);
	memset(b + sizeof(head) - 1, 'x', fill);
	memcpy(b + sizeof(head) - 1 + fill, tail, sizeof(tail));
	return b;
}

/* Median ns per call over `n_batches` batches; -1 when a call was not answered. */
static double
run(struct sg_fixture *f, const char *body, size_t size, size_t n_batches, bool screen)
{
	static uint64_t clock;
	char auth[128];
	size_t answered = 0;
	uint64_t *batch_ns = calloc(n_batches, sizeof(*batch_ns));
	if (clock == 0)
		clock = sg_mono_ns();
	f->gw.dlp_screen_off_for_bench = !screen;
	for (size_t b = 0; b < n_batches; b++) {
		uint64_t t0 = sg_mono_ns();
		for (size_t i = 0; i < BATCH; i++) {
			struct sg_req r;
			size_t k = (b * BATCH + i) % N_KEYS;
			k = k - k % 3 + 1 < N_KEYS ? k - k % 3 + 1 : 1; /* makers may send mail */
			snprintf(auth, sizeof(auth), "Bearer %s", f->keys[k]);
			sg_req_init(&r, &f->gw, f->snap);
			r.authorization = auth;
			r.connector_name = "mail";
			r.operation_name = "send";
			r.body = body;
			r.body_len = size;
			r.now_ns = (clock += 1000000000ull);
			sg_path_run(&r);
			answered += r.problem == NULL && r.output.len > 0;
			sg_req_finish(&r);
		}
		batch_ns[b] = sg_mono_ns() - t0;
	}
	qsort(batch_ns, n_batches, sizeof(*batch_ns), cmp_u64);
	double median = (double)batch_ns[n_batches / 2] / BATCH;
	free(batch_ns);
	return answered == n_batches * BATCH ? median : -1;
}

/* The parse and the scan alone on the same body, to show where the screen's time goes. */
static void
scan_only(struct sg_fixture *f, const char *body, size_t size, long iters)
{
	struct sg_dlp_scanner *sc = sg_dlp_scanner_thread();
	struct sg_dlp_result res;
	struct sg_json_doc doc;
	size_t hits = 0;
	uint64_t t0 = sg_mono_ns();
	for (long i = 0; i < iters; i++) {
		(void)sg_json_parse(body, size, 64, &doc, NULL);
		if (sg_dlp_scan_json(sc, f->snap->defs->dlp_db, doc.root, NULL, 0, &res) == 0)
			hits += res.n_hits;
	}
	printf("  of which parse + sg_dlp_scan_json alone: %6.0f ns/call (%zu findings per call)\n",
	       (double)(sg_mono_ns() - t0) / (double)iters, hits / (size_t)iters);
}

int
main(int argc, char **argv)
{
	struct sg_fixture f;
	long iters = argc > 1 ? atol(argv[1]) : 60000;
	size_t size = 1024, n_batches = (size_t)iters / BATCH / ROUNDS;
	if (n_batches < 1)
		n_batches = 1;
	if (sg_fixture_init(&f, N_KEYS) != 0) {
		fprintf(stderr, "bench_screen: fixture setup failed\n");
		return 1;
	}
	char *body = make_body(size);
	double off[ROUNDS], on[ROUNDS];
	(void)run(&f, body, size, 1, true); /* warm: the scanner's buffers, the slab */
	for (int i = 0; i < ROUNDS; i++) {
		off[i] = run(&f, body, size, n_batches, false);
		on[i] = run(&f, body, size, n_batches, true);
	}
	int rc = 0;
	for (int i = 0; i < ROUNDS; i++)
		if (off[i] < 0 || on[i] < 0)
			rc = 1;
	qsort(off, ROUNDS, sizeof(double), cmp_double);
	qsort(on, ROUNDS, sizeof(double), cmp_double);
	double m_off = (off[ROUNDS / 2 - 1] + off[ROUNDS / 2]) / 2,
	       m_on = (on[ROUNDS / 2 - 1] + on[ROUNDS / 2]) / 2;
	printf("governed path, %zu-byte body, simulator route: screen off %6.0f ns/call, "
	       "screen on %6.0f ns/call\n",
	       size, m_off, m_on);
	scan_only(&f, body, size, getenv("SCAN_ITERS") ? atol(getenv("SCAN_ITERS")) : 20000);
	printf("screening on keeps %.3fx of the throughput with it off (target >= 0.85)\n",
	       m_off / m_on);
	free(body);
	sg_fixture_free(&f);
	return rc;
}
