/*
 * The Redis backend's clients: one per I/O thread, on that thread's event
 * loop, so decisions pipeline on a connection no other thread touches.
 * Link changes are logged and counted here; /readyz reports them.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "http/sg_http.h"
#include "obs/sg_log.h"
#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_redis.h"

#define RECONNECT_MS 250

static const char *const fallback_words[] = {
    "deciding locally with 1/%d of each quota",
    "refusing calls",
    "admitting calls on caps alone",
};

static void
on_state(void *arg, bool up)
{
	struct sg_io_thread *t = arg;
	const struct sg_config *cfg = t->server->cfg;
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

/* The loop must never block on DNS, so the name is resolved once, here. */
static int
resolve(const struct sg_config *cfg, char *ip, size_t iplen, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
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

int
sg_server_redis_setup(struct sg_server *s, char *err, size_t errlen)
{
	const struct sg_config *cfg = s->cfg;
	struct sg_redis_config rc = {
	    .port = (uint16_t)cfg->redis_port,
	    .timeout_ms = cfg->redis_timeout_ms,
	    .reconnect_ms = RECONNECT_MS,
	    .prefix = "sg:",
	};
	if (cfg->throttle_backend != SG_BACKEND_REDIS)
		return 0;
	if (resolve(cfg, rc.host, sizeof(rc.host), err, errlen) != 0)
		return -1;
	for (int i = 0; i < s->n_threads; i++) {
		struct sg_io_thread *t = &s->threads[i];
		t->redis = sg_redis_new(t->base, &rc);
		if (t->redis == NULL) {
			snprintf(err, errlen, "out of memory for the Redis clients");
			return -1;
		}
		/* Down until the first connect succeeds. */
		atomic_fetch_add(&sg_throttle_stats.redis_links_down, 1);
		sg_redis_on_state(t->redis, on_state, t);
	}
	return 0;
}

void
sg_server_redis_free(struct sg_io_thread *t)
{
	/* Fails every decision still waiting, which wakes its request to finish. */
	sg_redis_free(t->redis);
	t->redis = NULL;
}

json_t *
sg_server_redis_check(const struct sg_server *s)
{
	const struct sg_config *cfg = s->cfg;
	if (cfg->throttle_backend != SG_BACKEND_REDIS)
		return json_pack("{s:s}", "backend", "local");
	long long down = atomic_load(&sg_throttle_stats.redis_links_down);
	return json_pack("{s:s, s:b, s:I, s:s}", "backend", "redis", "ok", down == 0, "links_down",
	                 (json_int_t)down, "failure_mode",
	                 sg_config_failure_name(cfg->redis_failure));
}
