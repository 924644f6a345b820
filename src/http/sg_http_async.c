/*
 * Suspended governed requests.  A step that must wait returns
 * SG_STEP_AGAIN after asking for a wake-up here; the request is parked on
 * its thread's list with its own reference to the snapshot, because the
 * thread may move to a newer snapshot (a reload) while it waits, and the
 * request's catalog and policy pointers must stay valid until it ends.
 *
 * Everything runs on the request's own I/O thread: a wake-up is an event
 * on that thread's base, so no locks are needed.  Waiting for a turn in a
 * tenant's queue is the throttle step's business (step_throttle_queue.c);
 * the transport only wakes the request when told.
 */
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>

#include "http/sg_http.h"
#include "path/sg_path.h"

static struct sg_http_ctx *
ctx_of(struct sg_req *r)
{
	return (struct sg_http_ctx *)((char *)r - offsetof(struct sg_http_ctx, req_state));
}

void
sg_http_unsuspend(struct sg_http_ctx *c)
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
	sg_http_unsuspend(c);
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

static const char *
caller_header(struct sg_req *r, const char *name)
{
	struct sg_http_ctx *c = ctx_of(r);
	return c->req ? evhttp_find_header(evhttp_request_get_input_headers(c->req), name) : NULL;
}

const struct sg_req_io sg_http_req_io = {wake_after, wake_now, caller_header};

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
		sg_http_unsuspend(c);
		c->req = NULL; /* evhttp frees it with its connection */
		sg_http_done(c);
	}
}
