/*
 * sg_runs: the template runs GET /v1/runs/{id} can show.  Recent runs,
 * and those started with ?wait=false while they run (only their caller
 * holds the id of a synchronous one before it ends), are held in memory
 * as their JSON documents; a finished run is also written to the store
 * (through the writer thread), and read back from there once it has left
 * memory.
 *
 * Thread-safe: one mutex, held while a document pointer is swapped or
 * copied, never while JSON is built.
 */
#ifndef SG_RUNS_H
#define SG_RUNS_H

#include <stdbool.h>
#include <stddef.h>

struct sg_runs;

/* Holds up to `cap` documents; finished ones are forgotten oldest first. */
struct sg_runs *sg_runs_new(size_t cap, const char *data_dir);
void sg_runs_free(struct sg_runs *rs);

/*
 * Stores the latest document of run `id` (takes `doc`, a malloc'd JSON
 * text).  -1 when memory is full of running runs (doc is freed).
 */
int sg_runs_publish(struct sg_runs *rs, const char *id, const char *tenant, char *doc,
                    bool finished);

/* A copy of the run's document for a caller of `tenant`, or NULL (unknown or not theirs). */
char *sg_runs_get(struct sg_runs *rs, const char *id, const char *tenant);

/* Runs in memory still running; for tests and /metrics. */
size_t sg_runs_running(struct sg_runs *rs);

#endif
