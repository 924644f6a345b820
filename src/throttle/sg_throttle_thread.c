#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_clock.h"
#include "obs/sg_log.h"
#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_redis.h"
#include "throttle/sg_throttle_thread.h"

#define RECONNECT_MS 250

struct sg_throttle_thread {
	int index;
	const struct sg_config *cfg;
	struct sg_fairq *fairq;
	const struct sg_fairq_ops *ops;
	struct event *timer;
	uint64_t timer_at; /* when the timer fires; UINT64_MAX: not armed */
	struct sg_redis *redis;
};

/* ---- the fair queue's timer ---- */

/* Arms the timer for `at` unless it is already due sooner. */
static void
timer_at(struct sg_throttle_thread *t, uint64_t at, uint64_t now)
{
	if (at >= t->timer_at)
		return;
	uint64_t delay = at > now ? at - now : 0;
	struct timeval tv = {(time_t)(delay / 1000000000ull),
	                     (suseconds_t)(delay % 1000000000ull / 1000)};
	if (event_add(t->timer, &tv) == 0)
		t->timer_at = at;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_throttle_thread *t = arg;
	uint64_t now = sg_mono_ns();
	(void)fd;
	(void)what;
	t->timer_at = UINT64_MAX;
	uint64_t next = sg_fairq_run(t->fairq, now, t->ops);
	if (next != UINT64_MAX)
		timer_at(t, next, now);
}

int
sg_throttle_thread_push(struct sg_throttle_thread *t, struct sg_fairq_item *it, bool front,
                        uint64_t now)
{
	if (t == NULL || (front ? sg_fairq_push_front : sg_fairq_push)(t->fairq, it) != 0)
		return -1;
	timer_at(t, it->ready_at < it->deadline ? it->ready_at : it->deadline, now);
	return 0;
}

/* ---- Redis ---- */

static const char *const fallback_words[] = {
    "deciding locally with 1/%d of each quota",
    "refusing calls",
    "admitting calls on caps alone",
};

static void
on_redis_state(void *arg, bool up)
{
	struct sg_throttle_thread *t = arg;
	const struct sg_config *cfg = t->cfg;
	char what[96];
	atomic_fetch_add(&sg_throttle_stats.redis_links_down, up ? -1 : 1);
	snprintf(what, sizeof(what), fallback_words[cfg->redis_failure], cfg->redis_nodes);
	if (up)
		sg_log(SG_LOG_INFO, json_pack("{s:i}", "thread", t->index),
		       "Redis is reachable; limits are shared between gateways");
	else
		sg_log(SG_LOG_WARN,
		       json_pack("{s:i, s:s}", "thread", t->index, "failure_mode",
		                 sg_config_failure_name(cfg->redis_failure)),
		       "Redis is unreachable; %s until it is back", what);
}

int
sg_throttle_redis_resolve(const struct sg_config *cfg, char *ip, size_t iplen, char *err,
                          size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	if (cfg->throttle_backend != SG_BACKEND_REDIS)
		return 0;
	int rc = getaddrinfo(cfg->redis_host, NULL, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "redis.host \"%s\" does not resolve: %s", cfg->redis_host,
		         gai_strerror(rc));
		return -1;
	}
	const void *addr = ai->ai_family == AF_INET6
	                       ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
	                       : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
	inet_ntop(ai->ai_family, addr, ip, (socklen_t)iplen);
	freeaddrinfo(ai);
	return 0;
}

static int
redis_start(struct sg_throttle_thread *t, struct event_base *base, const char *ip)
{
	const struct sg_config *cfg = t->cfg;
	struct sg_redis_config rc = {
	    .port = (uint16_t)cfg->redis_port,
	    .timeout_ms = cfg->redis_timeout_ms,
	    .reconnect_ms = RECONNECT_MS,
	    .prefix = "sg:",
	};
	snprintf(rc.host, sizeof(rc.host), "%s", ip);
	if ((t->redis = sg_redis_new(base, &rc)) == NULL)
		return -1;
	/* Down until the first connect succeeds. */
	atomic_fetch_add(&sg_throttle_stats.redis_links_down, 1);
	sg_redis_on_state(t->redis, on_redis_state, t);
	return 0;
}

struct sg_redis *
sg_throttle_thread_redis(const struct sg_throttle_thread *t)
{
	return t != NULL ? t->redis : NULL;
}

json_t *
sg_throttle_store_check(const struct sg_config *cfg)
{
	if (cfg->throttle_backend != SG_BACKEND_REDIS)
		return json_pack("{s:s}", "backend", "local");
	long long down = atomic_load(&sg_throttle_stats.redis_links_down);
	return json_pack("{s:s, s:b, s:I, s:s}", "backend", "redis", "ok", down == 0, "links_down",
	                 (json_int_t)down, "failure_mode",
	                 sg_config_failure_name(cfg->redis_failure));
}

/* ---- the thread's state ---- */

struct sg_throttle_thread *
sg_throttle_thread_new(struct event_base *base, int index, const struct sg_config *cfg,
                       const struct sg_fairq_ops *ops, const char *redis_ip)
{
	struct sg_throttle_thread *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->index = index;
	t->cfg = cfg;
	t->ops = ops;
	t->timer_at = UINT64_MAX;
	/* A quantum of the heaviest weight: every visit can admit a ready head. */
	t->fairq = sg_fairq_new((uint32_t)cfg->queue_depth, 1000);
	t->timer = event_new(base, -1, 0, on_timer, t);
	if (t->fairq == NULL || t->timer == NULL ||
	    (cfg->throttle_backend == SG_BACKEND_REDIS && redis_start(t, base, redis_ip) != 0)) {
		sg_throttle_thread_free(t);
		return NULL;
	}
	return t;
}

void
sg_throttle_thread_free(struct sg_throttle_thread *t)
{
	if (t == NULL)
		return;
	sg_redis_free(t->redis);
	if (t->timer)
		event_free(t->timer);
	sg_fairq_free(t->fairq);
	free(t);
}
