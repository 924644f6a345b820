/*
 * sg_runs: the template runs GET /v1/runs/{id} can show.  Recent runs,
 * and those started with ?wait=false while they run (only their caller
 * holds the id of a synchronous one before it ends), are held in memory
 * as their JSON documents; a finished run is also written to the store
 * (through the writer thread), and read back from there once it has left
 * memory.
 *
 * Thread-safe: one mutex, held while a document pointer is swapped or
 * copied, never while JSON is built or the store is read.  Store reads
 * run on the registry's own reader thread, so the I/O thread asking
 * never waits on disk.
 */
#ifndef SG_RUNS_H
#define SG_RUNS_H

#include <stdbool.h>
#include <stddef.h>

struct sg_runs;
struct sg_runs_read;

/*
 * Holds up to `cap` documents; finished ones are forgotten oldest first.
 * With a `data_dir`, a reader thread answers reads of older runs from the
 * store there (it opens its own connection on its first read).
 */
struct sg_runs *sg_runs_new(size_t cap, const char *data_dir);
/* Stops the reader thread if it still runs, and frees every read never finished. */
void sg_runs_free(struct sg_runs *rs);

/*
 * Stores the latest document of run `id` (takes `doc`, a malloc'd JSON
 * text).  -1 when memory is full of running runs (doc is freed).
 */
int sg_runs_publish(struct sg_runs *rs, const char *id, const char *tenant, char *doc,
                    bool finished);

/*
 * Looks in memory only: 0 with *doc (a copy) when the run is held and is
 * `tenant`'s; 1 when it is not held (ask the store: sg_runs_read_new); -1
 * when it is another tenant's, or out of memory.
 */
int sg_runs_lookup(struct sg_runs *rs, const char *id, const char *tenant, char **doc);
/* A copy of the run's document for a caller of `tenant` from memory, or NULL. */
char *sg_runs_get(struct sg_runs *rs, const char *id, const char *tenant);

/*
 * Reading an older run from the store, in two steps so the caller can
 * make its wake-up first: sg_runs_read_new prepares a read (NULL without
 * a data directory, or out of memory); sg_runs_read_submit queues it for
 * the reader thread, which calls `done(done_arg)` on its own thread once
 * the answer is ready.  `done` must only wake the caller (for an I/O
 * thread: event_active on an event of its own base).  The caller then
 * takes the answer with sg_runs_read_finish.  `user` is the caller's.
 */
struct sg_runs_read *sg_runs_read_new(struct sg_runs *rs, const char *id, const char *tenant,
                                      void *user);
void sg_runs_read_submit(struct sg_runs *rs, struct sg_runs_read *rd, void (*done)(void *arg),
                         void *done_arg);
void *sg_runs_read_user(const struct sg_runs_read *rd);
/*
 * After `done`, or instead of submitting: 0 with *doc (malloc'd) when the
 * run is `tenant`'s, 1 when there is none, -1 on a store error (or when
 * never submitted).  Frees `rd`.
 */
int sg_runs_read_finish(struct sg_runs *rs, struct sg_runs_read *rd, char **doc);
/*
 * Stops the reader thread; reads still waiting are never answered (their
 * `done` is not called).  Call it before the event loops that `done`
 * wakes are freed.  Idempotent.
 */
void sg_runs_stop_reader(struct sg_runs *rs);

/* Runs in memory still running; for tests and /metrics. */
size_t sg_runs_running(struct sg_runs *rs);

#endif
