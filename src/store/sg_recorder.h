/*
 * sg_recorder: the writer thread.  Request threads hand decisions to a
 * bounded queue and never wait on disk; the writer drains the queue in
 * batches, each in one transaction on its own connection.
 */
#ifndef SG_RECORDER_H
#define SG_RECORDER_H

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
 * still touches the recorder after it has queued its decision.
 */
void sg_recorder_stop(struct sg_recorder *r);

/*
 * How long a partial batch may wait for more decisions before it is
 * written (default 20 ms).  A full batch, or a full queue, never waits.
 */
void sg_recorder_set_linger(struct sg_recorder *r, uint32_t ms);

uint64_t sg_recorder_dropped(const struct sg_recorder *r);
/*
 * How often the writer added spending by counting the decisions after the
 * mark instead of its tally: once at start, then only after the tally
 * filled or a flush failed.
 */
uint64_t sg_recorder_spend_recounts(const struct sg_recorder *r);
uint64_t sg_recorder_written(const struct sg_recorder *r);
/* Decisions queued and not yet in the batch the writer is writing. */
size_t sg_recorder_depth(struct sg_recorder *r);

#endif
