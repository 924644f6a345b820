/*
 * sg_recorder: the writer thread.  Request threads hand decisions to a
 * bounded queue and never wait on disk; the writer drains the queue in
 * batches, each in one transaction on its own connection.  A batch the
 * store refuses is kept at the head of the queue and tried again with
 * backoff, so decisions are written in the order they were pushed and
 * none is lost while the queue has room.
 */
#ifndef SG_RECORDER_H
#define SG_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sg_store.h"

struct sg_recorder;

/* Opens its own store connection on `data_dir` and starts the thread. */
struct sg_recorder *sg_recorder_start(const char *data_dir, size_t capacity, char *err,
                                      size_t errlen);
/*
 * Copies `d` into the queue.  Never blocks for long: returns -1 when the
 * queue is full (the caller counts the drop).
 */
int sg_recorder_push(struct sg_recorder *r, const struct sg_decision *d);
/*
 * Queues a finished template run; takes row->doc (set to NULL) on success.
 * -1 when 1024 runs are already waiting (the caller keeps the row).
 */
int sg_recorder_push_run(struct sg_recorder *r, struct sg_run_row *row);
/*
 * Writes out everything queued, stops the thread and frees.  NULL is a
 * no-op.  Every thread that pushes must have stopped pushing first: a push
 * still touches the recorder after it has queued its decision.  While the
 * store refuses writes, the writer keeps trying for up to 10 s, then
 * counts what is left as dropped and says so in the log.
 */
void sg_recorder_stop(struct sg_recorder *r);

/*
 * How long a partial batch may wait for more decisions before it is
 * written (default 20 ms).  A full batch, or a full queue, never waits.
 */
void sg_recorder_set_linger(struct sg_recorder *r, uint32_t ms);
/*
 * How old the oldest unwritten decision may grow before a fail-closed
 * caller is refused (default 5 s); see sg_recorder_admit.  Set it before
 * the first push.
 */
void sg_recorder_set_deadline(struct sg_recorder *r, uint32_t ms);
/*
 * audit.retention: every `every_ms` (0: an hour), the writer prunes records
 * older than `retention_ms` (0: none), a batch at a time behind a
 * checkpoint, and logs the chain's head.  Set it before the first push;
 * the first round comes one interval after the start.
 */
void sg_recorder_set_retention(struct sg_recorder *r, uint64_t retention_ms, uint64_t every_ms);
/*
 * For tests: `fn(arg)` runs on the writer before each attempt to write;
 * returning -1 fails the attempt as if the store had refused it, and it
 * may block to stall the writer.  Set it before the first push.
 */
void sg_recorder_set_fault(struct sg_recorder *r, int (*fn)(void *arg), void *arg);

/*
 * Whether a call may go on to have an effect that must be audited: false
 * when `fail_closed` and the audit is behind, that is the oldest unwritten
 * decision is older than the deadline or the queue is full.  A false answer
 * is counted (sg_recorder_refused).  Lock-free (a few relaxed loads), for
 * the request path; `now_ns` is sg_mono_ns().  A NULL recorder admits all.
 */
bool sg_recorder_admit(struct sg_recorder *r, bool fail_closed, uint64_t now_ns);

/* The wait before attempt `failures` + 1: 10 ms, doubling to at most 1 s. */
uint32_t sg_recorder_backoff_ms(uint32_t failures);

uint64_t sg_recorder_dropped(const struct sg_recorder *r);
/*
 * How often the writer added spending by counting the decisions after the
 * mark instead of its tally: once at start, then only after the tally
 * filled or a flush failed.
 */
uint64_t sg_recorder_spend_recounts(const struct sg_recorder *r);
uint64_t sg_recorder_written(const struct sg_recorder *r);
/* Failed attempts to write a batch of decisions or runs, each retried. */
uint64_t sg_recorder_retries(const struct sg_recorder *r);
/* Calls sg_recorder_admit refused. */
uint64_t sg_recorder_refused(const struct sg_recorder *r);
/* Decisions not yet written, the batch being written included.  Lock-free. */
size_t sg_recorder_backlog(const struct sg_recorder *r);
/* How long the oldest unwritten decision has waited, in ns; 0 when none.  Lock-free. */
uint64_t sg_recorder_oldest_age_ns(const struct sg_recorder *r, uint64_t now_ns);
/* Decisions queued and not yet in the batch the writer is writing. */
size_t sg_recorder_depth(struct sg_recorder *r);

#endif
