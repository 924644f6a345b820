/*
 * Microbenchmark of the simulator's draw for crm.create_contact (from
 * examples/connectors/crm.yaml), single-threaded, with the input an
 * explorer sends (an email, a name, a company):
 *   write           sg_sim_write into a slab buffer, as the route step calls
 *                   it: parse the input, seed, draw, write, parse the output
 *                   back and validate it
 *   write, unchecked the same with the examples checked on every call
 *   write, no input  sg_sim_write without a body
 *   jansson wrapper  sg_sim_generate_checked: the input dumped, the output
 *                   loaded into a json_t, as cold callers use it
 * Each figure is the median of RUNS runs.  In a build without sanitizers the
 * bench counts heap allocations (malloc, calloc, realloc, aligned) per call,
 * which must be 0 for sg_sim_write once the thread's slab and parser are warm.
 *
 *   build/bench/bench_sim [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sg_clock.h"
#include "catalog/sg_connector.h"
#include "core/sg_json_alloc.h"
#include "upstream/sg_simulator.h"

#define RUNS 9
#define SALT "crm.create_contact"
#define SEED 20240301

static const char input[] = "{\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\","
                            "\"company\":\"Analytical Engines Ltd\"}";

#ifndef SG_SANITIZED
/* Counts the process's allocations; glibc's own functions do the work. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

static size_t n_allocs;

void *
malloc(size_t n)
{
	n_allocs++;
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	n_allocs++;
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	n_allocs++;
	return __libc_realloc(p, n);
}

void *
aligned_alloc(size_t align, size_t n)
{
	n_allocs++;
	return __libc_memalign(align, n);
}

int
posix_memalign(void **p, size_t align, size_t n)
{
	n_allocs++;
	*p = __libc_memalign(align, n);
	return *p ? 0 : 12; /* ENOMEM */
}
#define COUNTING 1
#else
static size_t n_allocs;
#define COUNTING 0
#endif

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench_sim: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

enum way { WRITE, WRITE_UNCHECKED, WRITE_NO_INPUT, JANSSON };

static volatile size_t sink;

static int
one(const struct sg_operation *op, enum way way, const json_t *in, uint64_t seed)
{
	struct sg_jbuf out = {0};
	int rc;
	if (way == JANSSON) {
		json_t *v = sg_sim_generate_checked(op->output, op->examples, in, seed, SALT);
		rc = v ? 0 : -1;
		json_decref(v);
		return rc;
	}
	rc = sg_sim_write(&out, op->output, op->examples, way == WRITE_NO_INPUT ? NULL : input,
	                  way == WRITE_NO_INPUT ? 0 : sizeof(input) - 1, seed, SALT,
	                  way != WRITE_UNCHECKED);
	sink += out.len;
	sg_jbuf_release(&out);
	return rc;
}

/* Median ns per call over RUNS runs of `iters` calls; allocations per call in *allocs. */
static double
measure(const struct sg_operation *op, enum way way, const json_t *in, uint64_t iters,
        double *allocs)
{
	double runs[RUNS];
	size_t before = 0;
	for (int i = 0; i < 100; i++) /* warm: the slab, the parser, the caches */
		one(op, way, in, SEED);
	for (int r = 0; r < RUNS; r++) {
		if (r == RUNS - 1)
			before = n_allocs;
		uint64_t t0 = sg_mono_ns();
		for (uint64_t i = 0; i < iters; i++)
			if (one(op, way, in, SEED) != 0) {
				fprintf(stderr, "bench_sim: the simulator failed\n");
				exit(1);
			}
		runs[r] = (double)(sg_mono_ns() - t0) / (double)iters;
	}
	*allocs = (double)(n_allocs - before) / (double)iters;
	qsort(runs, RUNS, sizeof(runs[0]), cmp_double);
	return runs[RUNS / 2];
}

int
main(int argc, char **argv)
{
	uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
	struct sg_diags d = {0};
	size_t len;

	sg_json_alloc_install();
	char *yaml = read_file(SG_EXAMPLES_DIR "/connectors/crm.yaml", &len);
	struct sg_connector *c = sg_connector_parse("crm.yaml", yaml, len, SEED, &d);
	const struct sg_operation *op = c ? sg_connector_op(c, "create_contact") : NULL;
	if (op == NULL) {
		sg_diags_print(&d, stderr);
		return 1;
	}
	json_t *in = json_loads(input, 0, NULL);
	struct sg_jbuf out = {0};
	if (sg_sim_write(&out, op->output, op->examples, input, sizeof(input) - 1, SEED, SALT,
	                 true) != 0)
		return 1;
	printf("crm.create_contact, %llu calls per run, median of %d runs%s\n",
	       (unsigned long long)iters, RUNS, COUNTING ? "" : " (allocations not counted)");
	printf("  output: %s\n", out.data);
	sg_jbuf_release(&out);
	static const struct {
		enum way way;
		const char *name;
	} ways[] = {
	    {WRITE, "sg_sim_write"},
	    {WRITE_UNCHECKED, "sg_sim_write, examples checked per call"},
	    {WRITE_NO_INPUT, "sg_sim_write, no input"},
	    {JANSSON, "sg_sim_generate_checked (json_t in and out)"},
	};
	for (size_t i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		double allocs, ns = measure(op, ways[i].way, in, iters, &allocs);
		if (COUNTING)
			printf("  %-46s %8.0f ns/call  %6.2f allocations/call\n", ways[i].name, ns,
			       allocs);
		else
			printf("  %-46s %8.0f ns/call\n", ways[i].name, ns);
	}
	json_decref(in);
	sg_connector_free(c);
	sg_diags_free(&d);
	free(yaml);
	return 0;
}
