/*
 * throttle, waiting: a call over a rate window that frees up within the
 * queue's wait parks in its tenant's fair queue on the I/O thread running
 * it (sg_throttle_thread) instead of being refused.  The queue calls back
 * here when the call's turn comes or its deadline passes, and the call's
 * transport is asked to wake it; the step then runs again and finds the
 * outcome in its queue state.
 *
 * Each thread has its own queue, so no locks; fairness is per thread, and
 * SO_REUSEPORT spreads each tenant's connections over the threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/sg_metrics.h"
#include "obs/sg_throttle_metrics.h"
#include "path/step_throttle_int.h"
#include "throttle/sg_ratetable.h"
#include "throttle/sg_throttle_thread.h"

static struct sg_throttle_call *
call_of(struct sg_fairq_item *it)
{
	return (struct sg_throttle_call *)((char *)it - offsetof(struct sg_throttle_call, qitem));
}

/* The tenant's count of waiting calls, for GET /v1/me/usage; NULL when off or full. */
static _Atomic uint64_t *
tenant_waiting(struct sg_req *r, struct sg_throttle_call *tc)
{
	return r->gw->waiting ? sg_ratetable_cell(r->gw->waiting, tc->qitem.tenant, 0) : NULL;
}

static int
push(struct sg_req *r, struct sg_throttle_call *tc)
{
	bool again = tc->queue_state == SG_Q_ASK_AGAIN; /* keeps its place and deadline order */
	if (sg_throttle_thread_push(r->throttle, &tc->qitem, again, r->now_ns) != 0)
		return -1;
	_Atomic uint64_t *w = tenant_waiting(r, tc);
	if (w != NULL)
		atomic_fetch_add_explicit(w, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_depth, 1, memory_order_relaxed);
	if (!again) /* a Redis call put back is not a new wait */
		atomic_fetch_add_explicit(&sg_throttle_stats.queued, 1, memory_order_relaxed);
	return 0;
}

static void
leave_queue(struct sg_throttle_call *tc)
{
	struct sg_req *r = tc->r;
	_Atomic uint64_t *w = tenant_waiting(r, tc);
	if (w != NULL)
		atomic_fetch_sub_explicit(w, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&sg_throttle_stats.queue_depth, 1, memory_order_relaxed);
	/*
	 * An HTTP request, or a template's ctx.call.  A call that left the
	 * queue and cannot be woken would hang holding what it took: out of
	 * memory for an event leaves nothing sound to do (as for Redis).
	 */
	if (r->io->wake(r) != 0)
		abort();
}

static bool
try_admit(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	(void)ud;
	struct sg_throttle_call *tc = call_of(it);
	if (!sg_throttle_retry(tc->r, tc, now))
		return false;
	leave_queue(tc);
	return true;
}

static void
expire(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	(void)ud;
	(void)now;
	struct sg_throttle_call *tc = call_of(it);
	tc->queue_state = SG_Q_EXPIRED;
	leave_queue(tc);
}

const struct sg_fairq_ops sg_throttle_queue_ops = {NULL, try_admit, expire};

void
sg_throttle_note_admitted(struct sg_throttle_call *tc, uint64_t now)
{
	tc->queue_state = SG_Q_ADMITTED;
	tc->r->queue_wait_us = (now - tc->qitem.enqueued_at) / 1000;
	sg_metrics_queue_wait(tc->r->queue_wait_us);
}

enum sg_step_rc
sg_throttle_refuse_after_wait(struct sg_req *r, struct sg_throttle_call *tc)
{
	r->queue_wait_us = (r->now_ns - tc->qitem.enqueued_at) / 1000ull;
	uint64_t waited_ms = r->queue_wait_us / 1000ull;
	uint64_t ready = tc->qitem.ready_at;
	tc->verdict.retry_after_ns = ready > r->now_ns ? ready - r->now_ns : 1;
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_expired, 1, memory_order_relaxed);
	enum sg_step_rc rc = sg_throttle_refuse(r, tc);
	char waited[96];
	snprintf(waited, sizeof(waited),
	         "after waiting %llu ms for a turn: ", (unsigned long long)waited_ms);
	size_t len = strlen(waited), dlen = strnlen(r->detail, sizeof(r->detail) - 1 - len);
	memmove(r->detail + len, r->detail, dlen + 1);
	memcpy(r->detail, waited, len);
	r->detail[sizeof(r->detail) - 1] = '\0';
	return rc;
}

/* Waiting helps only a rate window that frees up within the queue's wait. */
static bool
may_queue(const struct sg_req *r, const struct sg_throttle_call *tc)
{
	uint64_t max_wait = (uint64_t)r->gw->config->queue_wait_ms * 1000000ull;
	if (r->io == NULL || r->throttle == NULL || max_wait == 0 ||
	    r->cls == SG_CLASS_BACKGROUND || tc->verdict.retry_after_ns > max_wait)
		return false;
	/* Asked again after a turn: the first wait's deadline still holds. */
	if (tc->queue_state == SG_Q_ASK_AGAIN &&
	    r->now_ns + tc->verdict.retry_after_ns > tc->qitem.deadline)
		return false;
	for (uint8_t i = 0; i < tc->verdict.n_violated; i++)
		if (tc->verdict.violated[i].window == NULL)
			return false;
	return true;
}

enum sg_step_rc
sg_throttle_queue_or_refuse(struct sg_req *r, struct sg_throttle_call *tc)
{
	if (!may_queue(r, tc)) {
		if (tc->queue_state != SG_Q_ASK_AGAIN || tc->verdict.retry_after_ns == UINT64_MAX)
			return sg_throttle_refuse(r, tc);
		tc->qitem.ready_at = r->now_ns + tc->verdict.retry_after_ns;
		return sg_throttle_refuse_after_wait(r, tc);
	}
	struct sg_fairq_item *it = &tc->qitem;
	if (tc->queue_state == SG_Q_ASK_AGAIN) {
		it->ready_at = r->now_ns + tc->verdict.retry_after_ns;
	} else {
		*it = (struct sg_fairq_item){
		    .tenant = tc->ids.who[SG_WHO_TENANT],
		    .cost = r->op->weight,
		    .enqueued_at = r->now_ns,
		    .ready_at = r->now_ns + tc->verdict.retry_after_ns,
		    .deadline = r->now_ns + (uint64_t)r->gw->config->queue_wait_ms * 1000000ull,
		};
	}
	if (push(r, tc) == 0) {
		tc->queue_state = SG_Q_WAITING;
		return SG_STEP_AGAIN;
	}
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_full, 1, memory_order_relaxed);
	enum sg_step_rc rc = sg_throttle_refuse(r, tc);
	size_t len = strlen(r->detail);
	snprintf(r->detail + len, sizeof(r->detail) - len,
	         ", and your tenant already has %d calls waiting for a turn",
	         r->gw->config->queue_depth);
	return rc;
}
