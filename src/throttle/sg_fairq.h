/*
 * sg_fairq: calls that hit a limit wait here, one FIFO per tenant, and the
 * tenants are served by deficit round robin (Shreedhar and Varghese), so a
 * tenant with many waiting calls gets no more turns than one with a few.
 *
 * One queue per I/O thread: no locks.  The queue knows nothing of requests
 * or clocks; its owner passes the time and two callbacks, one that tries to
 * admit a waiting call and one told when a call's deadline passed.
 */
#ifndef SG_FAIRQ_H
#define SG_FAIRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded in the waiting call; the queue only links it. */
struct sg_fairq_item {
	struct sg_fairq_item *next;
	uint64_t tenant; /* any stable hash of the tenant */
	uint32_t cost;   /* units, >= 1 */
	uint64_t enqueued_at;
	uint64_t ready_at; /* no try before this: the limiter said when it may fit */
	uint64_t deadline; /* expired at or after this */
};

struct sg_fairq_ops {
	void *ud;
	/*
	 * Tries to admit `it` at `now`.  True: admitted, and it has left the
	 * queue.  False: still refused; the callee sets it->ready_at.
	 */
	bool (*try_admit)(void *ud, struct sg_fairq_item *it, uint64_t now);
	/* `it` reached its deadline and has left the queue. */
	void (*expire)(void *ud, struct sg_fairq_item *it, uint64_t now);
};

struct sg_fairq;

/* `depth` bounds each tenant's queue; `quantum` is the units a tenant earns per round. */
struct sg_fairq *sg_fairq_new(uint32_t depth, uint32_t quantum);
/* Frees the queue's own memory; waiting items are not touched. */
void sg_fairq_free(struct sg_fairq *q);

/* Appends `it` to its tenant's queue; -1 when that queue is full or memory runs out. */
int sg_fairq_push(struct sg_fairq *q, struct sg_fairq_item *it);
/* Puts back at the head a call whose turn came but was refused again, keeping its place. */
int sg_fairq_push_front(struct sg_fairq *q, struct sg_fairq_item *it);

/*
 * Serves the queues at `now`: expires what is past its deadline and admits
 * heads in deficit round robin order until no tenant can go on.  Returns
 * the next time it should run again, or UINT64_MAX when the queue is empty.
 */
uint64_t sg_fairq_run(struct sg_fairq *q, uint64_t now, const struct sg_fairq_ops *ops);

/* Waiting calls in all queues. */
size_t sg_fairq_len(const struct sg_fairq *q);
/* 1-based place of `it` in its tenant's queue, or 0 when it is not queued. */
size_t sg_fairq_position(const struct sg_fairq *q, const struct sg_fairq_item *it);

#endif
