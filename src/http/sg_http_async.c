/*
 * Suspended governed requests.  A step that must wait returns
 * SG_STEP_AGAIN after asking for a wake-up here; the request is parked on
 * its thread's list with its own reference to the snapshot, because the
 * thread may move to a newer snapshot (a reload) while it waits, and the
 * request's catalog and policy pointers must stay valid until it ends.
 *
 * Everything runs on the request's own I/O thread: a wake-up is an event
 * on that thread's base, and each thread has its own fair queue (calls
 * over a limit waiting for a turn), so no locks are needed.  Fairness is
 * therefore per thread; SO_REUSEPORT spreads each tenant's connections
 * over the threads.
 */
#include <event2/event.h>
#include <stdlib.h>

#include "http/sg_http.h"
#include "obs/sg_throttle_metrics.h"
#include "path/sg_path.h"
#include "throttle/sg_ratetable.h"

static struct sg_http_ctx *
ctx_of(struct sg_req *r)
{
	return (struct sg_http_ctx *)((char *)r - offsetof(struct sg_http_ctx, req_state));
}

static void
unlink_ctx(struct sg_http_ctx *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->t->suspended = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->is_suspended = false;
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct sg_http_ctx *c = arg;
	(void)fd;
	(void)what;
	unlink_ctx(c);
	sg_http_governed_resume(c);
}

/* The request's one wake-up event, made on first use and reused. */
static struct event *
wake_event(struct sg_http_ctx *c)
{
	if (c->wake_ev == NULL)
		c->wake_ev = event_new(c->t->base, -1, 0, on_wake, c);
	return c->wake_ev;
}

static int
wake_after(struct sg_req *r, uint64_t delay_ns)
{
	struct sg_http_ctx *c = ctx_of(r);
	struct timeval tv = {(time_t)(delay_ns / 1000000000ull),
	                     (suseconds_t)(delay_ns % 1000000000ull / 1000)};
	struct event *ev = wake_event(c);
	return ev != NULL && event_add(ev, &tv) == 0 ? 0 : -1;
}

static int
wake_now(struct sg_req *r)
{
	struct event *ev = wake_event(ctx_of(r));
	if (ev == NULL)
		return -1;
	event_active(ev, EV_TIMEOUT, 1);
	return 0;
}

/* ---- the thread's fair queue -------------------------------------------- */

static struct sg_req *
req_of(struct sg_fairq_item *it)
{
	return (struct sg_req *)((char *)it - offsetof(struct sg_req, qitem));
}

/* Arms the queue timer for `at` unless it is already due sooner. */
static void
queue_timer_at(struct sg_io_thread *t, uint64_t at, uint64_t now)
{
	if (at >= t->queue_next)
		return;
	uint64_t delay = at > now ? at - now : 0;
	struct timeval tv = {(time_t)(delay / 1000000000ull),
	                     (suseconds_t)(delay % 1000000000ull / 1000)};
	if (event_add(t->queue_ev, &tv) == 0)
		t->queue_next = at;
}

/* The tenant's count of waiting calls, for GET /v1/me/usage; NULL when off or full. */
static _Atomic uint64_t *
tenant_waiting(struct sg_req *r)
{
	return r->gw->waiting ? sg_ratetable_cell(r->gw->waiting, r->qitem.tenant, 0) : NULL;
}

static void
leave_queue(struct sg_req *r)
{
	_Atomic uint64_t *w = tenant_waiting(r);
	if (w != NULL)
		atomic_fetch_sub_explicit(w, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&sg_throttle_stats.queue_depth, 1, memory_order_relaxed);
	r->io->wake(r); /* an HTTP request, or a template's ctx.call */
}

static bool
try_admit(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	(void)ud;
	struct sg_req *r = req_of(it);
	if (!sg_throttle_retry(r, now))
		return false;
	leave_queue(r);
	return true;
}

static void
expire(void *ud, struct sg_fairq_item *it, uint64_t now)
{
	(void)ud;
	(void)now;
	struct sg_req *r = req_of(it);
	r->queue_state = SG_Q_EXPIRED;
	leave_queue(r);
}

static void
on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_io_thread *t = arg;
	const struct sg_fairq_ops ops = {t, try_admit, expire};
	uint64_t now = sg_now_ns();
	(void)fd;
	(void)what;
	t->queue_next = UINT64_MAX;
	uint64_t next = sg_fairq_run(t->fairq, now, &ops);
	if (next != UINT64_MAX)
		queue_timer_at(t, next, now);
}

int
sg_http_queue_push(struct sg_io_thread *t, struct sg_req *r)
{
	bool again = r->queue_state == SG_Q_ASK_AGAIN; /* keeps its place and deadline order */
	if (t->fairq == NULL ||
	    (again ? sg_fairq_push_front : sg_fairq_push)(t->fairq, &r->qitem) != 0)
		return -1;
	_Atomic uint64_t *w = tenant_waiting(r);
	if (w != NULL)
		atomic_fetch_add_explicit(w, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sg_throttle_stats.queue_depth, 1, memory_order_relaxed);
	if (r->queue_state != SG_Q_ASK_AGAIN) /* a Redis call put back is not a new wait */
		atomic_fetch_add_explicit(&sg_throttle_stats.queued, 1, memory_order_relaxed);
	queue_timer_at(
	    t, r->qitem.ready_at < r->qitem.deadline ? r->qitem.ready_at : r->qitem.deadline,
	    r->now_ns);
	return 0;
}

static int
enqueue(struct sg_req *r)
{
	return sg_http_queue_push(ctx_of(r)->t, r);
}

int
sg_http_queue_init(struct sg_io_thread *t, const struct sg_config *cfg)
{
	t->queue_next = UINT64_MAX;
	/* A quantum of the heaviest weight: every visit can admit a ready head. */
	t->fairq = sg_fairq_new((uint32_t)cfg->queue_depth, 1000);
	t->queue_ev = event_new(t->base, -1, 0, on_queue_timer, t);
	return t->fairq && t->queue_ev ? 0 : -1;
}

void
sg_http_queue_free(struct sg_io_thread *t)
{
	if (t->queue_ev)
		event_free(t->queue_ev);
	/* Waiting calls are parked requests too; sg_http_abandon_suspended frees them. */
	sg_fairq_free(t->fairq);
	t->queue_ev = NULL;
	t->fairq = NULL;
}

const struct sg_req_io sg_http_req_io = {wake_after, wake_now, enqueue};

void
sg_http_suspend(struct sg_http_ctx *c)
{
	if (c->pinned == NULL) {
		c->pinned = c->req_state.snap;
		sg_snapshot_ref(c->pinned);
	}
	c->is_suspended = true;
	c->prev = NULL;
	c->next = c->t->suspended;
	if (c->next)
		c->next->prev = c;
	c->t->suspended = c;
}

void
sg_http_abandon_suspended(struct sg_io_thread *t)
{
	while (t->suspended != NULL) {
		struct sg_http_ctx *c = t->suspended;
		unlink_ctx(c);
		c->req = NULL; /* evhttp frees it with its connection */
		sg_http_done(c);
	}
}
