/*
 * The Redis link of one I/O thread: a hiredis async context on the
 * thread's event_base, with the deadlines, reconnects and script reloads
 * hiredis 0.14 leaves to its user.
 *
 * Every command sent is a `struct req` on the pending list, oldest first.
 * Redis answers a connection's commands in order, so the head is always the
 * oldest unanswered command: one timer, armed at or before the head's
 * deadline, is the command timeout.  When it finds the head late it frees
 * the context, which fails everything in flight.
 *
 * What this file relies on in hiredis 0.14:
 *  - a command's callback runs exactly once, with the reply or with NULL
 *    when the connection fails or the context is freed (the NULL calls come
 *    first, then onDisconnect, and only for a context that had connected);
 *  - redisAsyncFree outside hiredis's own callbacks frees at once, running
 *    those NULL callbacks before it returns (sg_redis never calls it from
 *    inside them, where it would be deferred);  redisAsyncDisconnect inside
 *    a callback closes once the callback returns;
 *  - a failed connect calls onConnect(REDIS_ERR), then frees the context;
 *  - queuing a command never runs a callback, so sg_redis_decide cannot
 *    re-enter its caller.
 */
#include "throttle/sg_redis.h"
#include "core/sg_clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "obs/sg_log.h"

#define NS_PER_MS 1000000ull

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_UP };
enum req_kind { REQ_DECIDE, REQ_ADJUST, REQ_LOAD };

struct req {
	struct req *prev, *next; /* rd's pending list, in the order sent */
	struct sg_redis *rd;
	enum req_kind kind;
	char mode; /* the script's: 'd' decide, 'r' refund, 'c' charge */
	bool retried;
	uint64_t deadline_ns;
	uint64_t loads_seen; /* rd->loads_sent when sent: was the script loaded since? */
	sg_redis_cb cb;
	void *arg;
	uint32_t cost;
	uint8_t n;
	struct sg_redis_window w[]; /* kept to send again after NOSCRIPT */
};

struct sg_redis {
	struct event_base *base;
	struct sg_redis_config cfg;
	redisAsyncContext *ac; /* NULL while down */
	enum link_state state;
	bool closing;
	bool said_down; /* this outage is logged already */
	char sha[41];
	uint64_t loads_sent;
	struct req *head, *tail;
	struct event *deadline;  /* fires at or before the head's deadline */
	struct event *reconnect; /* while down */
	char down_why[128];      /* the error of the requests an outage fails */
	void (*state_fn)(void *arg, bool up);
	void *state_arg;
	struct sg_redis_stats stats;
};

static void
timer_add_ns(struct event *ev, uint64_t ns)
{
	uint64_t us = (ns + 999) / 1000;
	struct timeval tv = {.tv_sec = (time_t)(us / 1000000),
	                     .tv_usec = (suseconds_t)(us % 1000000)};
	evtimer_add(ev, &tv);
}

static void
log_link(struct sg_redis *rd, enum sg_log_level level, const char *msg, const char *why)
{
	json_t *extra = json_pack("{s:s, s:i}", "host", rd->cfg.host, "port", (int)rd->cfg.port);
	if (extra != NULL && why != NULL)
		json_object_set_new(extra, "reason", json_string(why));
	sg_log(level, extra, "%s", msg);
}

static void
pending_push(struct sg_redis *rd, struct req *q)
{
	q->next = NULL;
	q->prev = rd->tail;
	if (rd->tail != NULL)
		rd->tail->next = q;
	else
		rd->head = q;
	rd->tail = q;
	/* The timer already pending fires no later than this request's deadline. */
	if (!evtimer_pending(rd->deadline, NULL))
		timer_add_ns(rd->deadline, (uint64_t)rd->cfg.timeout_ms * NS_PER_MS);
}

static void
pending_remove(struct sg_redis *rd, struct req *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		rd->head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		rd->tail = q->prev;
	q->prev = q->next = NULL;
}

static void
notify(struct sg_redis *rd, bool up)
{
	if (rd->state_fn != NULL)
		rd->state_fn(rd->state_arg, up);
}

/* The link is gone (rd no longer owns rd->ac): say so once and plan the next attempt. */
static void
link_lost(struct sg_redis *rd, const char *why)
{
	bool was_up = rd->state == LINK_UP;
	rd->ac = NULL;
	rd->state = LINK_DOWN;
	snprintf(rd->down_why, sizeof(rd->down_why), "redis: %s", why);
	if (rd->closing)
		return;
	timer_add_ns(rd->reconnect, (uint64_t)rd->cfg.reconnect_ms * NS_PER_MS);
	if (!rd->said_down)
		log_link(rd, SG_LOG_WARN,
		         was_up ? "redis link down" : "redis unreachable; retrying", why);
	rd->said_down = true;
	if (was_up) {
		rd->stats.links_lost++;
		notify(rd, false);
	}
}

/* Drops the link from outside hiredis's callbacks, failing all in flight. */
static void
link_reset(struct sg_redis *rd, const char *why)
{
	redisAsyncContext *ac = rd->ac;
	if (ac == NULL)
		return;
	ac->data = NULL; /* its onDisconnect is no longer ours to act on */
	link_lost(rd, why);
	redisAsyncFree(ac);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

static int
send_req(struct sg_redis *rd, struct req *q)
{
	struct sg_redis_args a;
	if (q->kind == REQ_LOAD)
		sg_redis_script_load(&a);
	else
		sg_redis_script_args(&a, rd->sha, rd->cfg.prefix, q->mode, q->w, q->n, q->cost);
	if (redisAsyncCommandArgv(rd->ac, on_reply, q, a.argc, a.argv, a.len) != REDIS_OK)
		return -1;
	q->deadline_ns = sg_mono_ns() + (uint64_t)rd->cfg.timeout_ms * NS_PER_MS;
	q->loads_seen = rd->loads_sent;
	pending_push(rd, q);
	return 0;
}

static struct req *
req_new(struct sg_redis *rd, enum req_kind kind, char mode, const struct sg_redis_window *w,
        size_t n, uint32_t cost)
{
	struct req *q = calloc(1, sizeof(*q) + n * sizeof(*w));
	if (q == NULL)
		return NULL;
	q->rd = rd;
	q->kind = kind;
	q->mode = mode;
	q->cost = cost;
	q->n = (uint8_t)n;
	if (n > 0)
		memcpy(q->w, w, n * sizeof(*w));
	return q;
}

static int
send_load(struct sg_redis *rd)
{
	struct req *q = req_new(rd, REQ_LOAD, 0, NULL, 0, 0);
	if (q == NULL || send_req(rd, q) != 0) {
		free(q);
		return -1;
	}
	rd->loads_sent++;
	rd->stats.script_loads++;
	return 0;
}

static void
finish(struct req *q, const struct sg_redis_reply *reply)
{
	struct sg_redis *rd = q->rd;
	if (reply->status == 0)
		rd->stats.decided++;
	else
		rd->stats.failed++;
	q->cb(q->arg, reply);
	free(q);
}

static void
fail(struct req *q, const char *why)
{
	if (q->kind != REQ_DECIDE) {
		if (q->kind == REQ_ADJUST)
			q->rd->stats.adjust_dropped++;
		free(q);
		return;
	}
	struct sg_redis_reply reply = {.status = -1};
	snprintf(reply.error, sizeof(reply.error), "%s", why);
	finish(q, &reply);
}

static void
deliver(struct req *q, const redisReply *r)
{
	if (q->kind == REQ_ADJUST) {
		q->rd->stats.adjust_dropped += r->type == REDIS_REPLY_ERROR;
		free(q);
		return;
	}
	struct sg_redis_reply reply = {.status = 0};
	reply.status = sg_redis_script_reply(r, q->w, q->n, &reply);
	finish(q, &reply);
}

static void
script_loaded(struct sg_redis *rd, redisAsyncContext *ac, const redisReply *r)
{
	if (r->type == REDIS_REPLY_STRING && r->len == 40) {
		memcpy(rd->sha, r->str, 40);
		if (rd->state != LINK_CONNECTING || rd->ac != ac)
			return;
		rd->state = LINK_UP;
		rd->said_down = false;
		log_link(rd, SG_LOG_INFO, "redis link up", NULL);
		notify(rd, true);
		return;
	}
	char why[96];
	snprintf(why, sizeof(why), "SCRIPT LOAD failed: %s",
	         r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	if (rd->state != LINK_CONNECTING || rd->ac != ac) {
		log_link(rd, SG_LOG_WARN, "redis script reload failed", why);
		return;
	}
	/* E.g. LOADING: drop the link and try it all again later.  Inside a
	   callback hiredis closes it once this returns. */
	link_lost(rd, why);
	redisAsyncDisconnect(ac);
}

/*
 * Sends a command again after NOSCRIPT (the script cache was flushed, or
 * this is a failover replica).  A SCRIPT LOAD is queued first unless one
 * was sent after the command: on one connection Redis runs them in order.
 */
static int
retry_after_noscript(struct sg_redis *rd, struct req *q)
{
	q->retried = true;
	if (q->loads_seen == rd->loads_sent && send_load(rd) != 0)
		return -1;
	return send_req(rd, q);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct req *q = privdata;
	struct sg_redis *rd = q->rd;
	const redisReply *r = reply;

	pending_remove(rd, q);
	if (r == NULL) {
		/* hiredis is failing everything on a broken or freed context. */
		if (rd->ac == ac)
			link_lost(rd, ac->errstr[0] != '\0' ? ac->errstr : "connection lost");
		fail(q, rd->down_why);
	} else if (q->kind == REQ_LOAD) {
		script_loaded(rd, ac, r);
		free(q);
	} else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 &&
	           !q->retried && rd->ac == ac && retry_after_noscript(rd, q) == 0) {
		return; /* sent again */
	} else {
		deliver(q, r);
	}
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct sg_redis *rd = ac->data;
	if (status != REDIS_OK && rd != NULL && rd->ac == ac)
		link_lost(rd, ac->errstr);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sg_redis *rd = ac->data;
	if (rd != NULL && rd->ac == ac)
		link_lost(rd, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void
connect_now(struct sg_redis *rd)
{
	redisAsyncContext *ac = redisAsyncConnect(rd->cfg.host, rd->cfg.port);
	if (ac == NULL) {
		link_lost(rd, "out of memory");
		return;
	}
	if (ac->err != 0) {
		link_lost(rd, ac->errstr);
		redisAsyncFree(ac);
		return;
	}
	ac->data = rd;
	redisLibeventAttach(ac, rd->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rd->ac = ac;
	rd->state = LINK_CONNECTING;
	/* Queued before the connect completes; its deadline bounds the connect too. */
	if (send_load(rd) != 0)
		link_reset(rd, "cannot queue SCRIPT LOAD");
}

static void
on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sg_redis *rd = arg;
	if (rd->ac == NULL)
		connect_now(rd);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct sg_redis *rd = arg;
	if (rd->head == NULL)
		return;
	uint64_t now = sg_mono_ns();
	if (rd->head->deadline_ns > now) {
		timer_add_ns(rd->deadline, rd->head->deadline_ns - now);
		return;
	}
	char why[64];
	snprintf(why, sizeof(why), "no reply in %u ms", (unsigned)rd->cfg.timeout_ms);
	rd->stats.timeouts++;
	link_reset(rd, why);
}

struct sg_redis *
sg_redis_new(struct event_base *base, const struct sg_redis_config *cfg)
{
	if (base == NULL || cfg->host[0] == '\0' || cfg->port == 0 || cfg->timeout_ms == 0 ||
	    cfg->reconnect_ms == 0 || memchr(cfg->host, '\0', sizeof(cfg->host)) == NULL ||
	    memchr(cfg->prefix, '\0', sizeof(cfg->prefix)) == NULL)
		return NULL;
	struct sg_redis *rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return NULL;
	rd->base = base;
	rd->cfg = *cfg;
	rd->deadline = evtimer_new(base, on_deadline, rd);
	rd->reconnect = evtimer_new(base, on_reconnect, rd);
	if (rd->deadline == NULL || rd->reconnect == NULL) {
		sg_redis_free(rd);
		return NULL;
	}
	connect_now(rd);
	return rd;
}

void
sg_redis_free(struct sg_redis *rd)
{
	if (rd == NULL)
		return;
	rd->closing = true;
	rd->state_fn = NULL;
	link_reset(rd, "shutting down");
	while (rd->head != NULL) { /* defensive: freeing the context failed them all */
		struct req *q = rd->head;
		pending_remove(rd, q);
		fail(q, "redis: shutting down");
	}
	if (rd->deadline != NULL)
		event_free(rd->deadline);
	if (rd->reconnect != NULL)
		event_free(rd->reconnect);
	free(rd);
}

bool
sg_redis_up(const struct sg_redis *rd)
{
	return rd->state == LINK_UP;
}

void
sg_redis_on_state(struct sg_redis *rd, void (*fn)(void *arg, bool up), void *arg)
{
	rd->state_fn = fn;
	rd->state_arg = arg;
}

static int
queue(struct sg_redis *rd, enum req_kind kind, char mode, const struct sg_redis_window *w, size_t n,
      uint32_t cost, sg_redis_cb cb, void *arg)
{
	if (rd->state != LINK_UP || !sg_redis_script_usable(w, n))
		return -1;
	if (kind == REQ_ADJUST && cost > SG_REDIS_BURST_MAX)
		cost = SG_REDIS_BURST_MAX; /* keeps cost * T exact in the script */
	struct req *q = req_new(rd, kind, mode, w, n, cost);
	if (q == NULL)
		return -1;
	q->cb = cb;
	q->arg = arg;
	if (send_req(rd, q) != 0) {
		free(q);
		return -1;
	}
	return 0;
}

int
sg_redis_decide(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost,
                sg_redis_cb cb, void *arg)
{
	if (cb == NULL)
		return -1;
	return queue(rd, REQ_DECIDE, 'd', w, n, cost, cb, arg);
}

int
sg_redis_refund(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost)
{
	return queue(rd, REQ_ADJUST, 'r', w, n, cost, NULL, NULL);
}

int
sg_redis_charge(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost)
{
	return queue(rd, REQ_ADJUST, 'c', w, n, cost, NULL, NULL);
}

void
sg_redis_stats(const struct sg_redis *rd, struct sg_redis_stats *out)
{
	*out = rd->stats;
}
