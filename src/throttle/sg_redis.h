/*
 * sg_redis: GCRA windows shared by many gateway nodes through Redis.
 *
 * One sg_redis per I/O thread, bound to that thread's event_base, holding
 * one hiredis async connection.  Each decision is one EVALSHA of a Lua
 * script (sg_redis_script) that checks every enforced window, charges all
 * of them or none, then counts the shadow windows, atomically inside Redis
 * and on Redis's clock, so nodes with different clocks agree.  Many
 * decisions may be in flight at once; hiredis pipelines them.
 *
 * Failure is reported, never hidden: a decision that cannot be answered in
 * timeout_ms fails with status -1 and resets the link, and while the link is
 * down sg_redis_decide refuses at once so the caller can fall back to local
 * limits.  The link comes back by itself, retried every reconnect_ms.
 *
 * Not thread-safe: every call must come from the thread running `base`.
 */
#ifndef SG_REDIS_H
#define SG_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "throttle/sg_gcra.h"

struct event_base;

#define SG_REDIS_WINDOWS_MAX 32
/* The policy's own ceiling (sg_limit.c); it keeps the script's arithmetic exact. */
#define SG_REDIS_BURST_MAX 100000

struct sg_redis_config {
	char host[256]; /* an IP address: a name would be resolved blocking the loop */
	uint16_t port;
	uint32_t timeout_ms; /* a command not answered in this long fails (and the link is reset) */
	uint32_t reconnect_ms; /* wait between reconnect attempts while down */
	char prefix[32];       /* key prefix, e.g. "sg:" */
};

struct sg_redis;

/*
 * Starts connecting at once; the link is up (sg_redis_up) once connected and
 * the script is loaded.  Returns NULL only when out of memory or when the
 * config is unusable (empty host, port 0, timeout_ms or reconnect_ms 0).
 */
struct sg_redis *sg_redis_new(struct event_base *base, const struct sg_redis_config *cfg);

/*
 * Fails every pending request's callback first, with status -1 ("redis:
 * shutting down"), then frees.  The state callback is not called.  Must not
 * be called from inside one of this sg_redis's own callbacks.  NULL is a no-op.
 */
void sg_redis_free(struct sg_redis *rd);

/* Connected and script loaded: sg_redis_decide would queue. */
bool sg_redis_up(const struct sg_redis *rd);

/*
 * `fn` is called from the loop (never from inside sg_redis_decide or
 * sg_redis_refund) each time the link goes up or down.  A link that is down
 * from the start is not reported as going down.  fn may call sg_redis_decide
 * but not sg_redis_free.
 */
void sg_redis_on_state(struct sg_redis *rd, void (*fn)(void *arg, bool up), void *arg);

struct sg_redis_window {
	uint64_t key;         /* bucket id; the Redis key is prefix + 16 hex digits */
	uint64_t emission_ns; /* T */
	uint32_t burst;       /* at most SG_REDIS_BURST_MAX */
	uint64_t reserve_ns;  /* class reserve, as sg_gcra_decide_reserved */
	bool shadow; /* counted, never refuses; evaluated only if all enforced windows admit */
};

struct sg_redis_reply {
	int status;      /* 0: decided; -1: Redis unavailable/timeout/error (error[] says why) */
	bool allowed;    /* every enforced window admitted; then all were charged, else none */
	uint8_t n;       /* windows in res[] (0 when status is -1) */
	uint64_t now_ns; /* Redis's clock when the script ran (TIME: microsecond resolution) */
	/*
	 * Per window, in the order given, exactly as sg_gcra_decide_reserved
	 * would answer for the stored TAT and now_ns.  For an enforced window
	 * `allowed` says whether that window alone admits, even when another
	 * refused and nothing was charged.  A shadow window of a refused call
	 * was not evaluated: it reports its standing (cost 0: allowed,
	 * remaining, reset).  retry_after_ns UINT64_MAX means never.
	 */
	struct sg_gcra_result res[SG_REDIS_WINDOWS_MAX];
	char error[128];
};

/* `reply` is valid only during the call. */
typedef void (*sg_redis_cb)(void *arg, const struct sg_redis_reply *reply);

/*
 * Queues one decision of `cost` units over windows w[0..n): the keys must be
 * distinct.  Returns 0 when queued: cb then runs exactly once, later, from
 * the loop.  Returns -1 at once, without calling cb, when the link is down
 * or the arguments are unusable (n of 0 or over SG_REDIS_WINDOWS_MAX, a
 * burst over SG_REDIS_BURST_MAX), so the caller can fall back.
 */
int sg_redis_decide(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost,
                    sg_redis_cb cb, void *arg);

/*
 * Gives back a previous admitted take (used when a LOCAL check after Redis
 * refuses): fire-and-forget.  Pass the windows that were charged: the
 * enforced ones, and the shadow ones whose result said allowed.  Each
 * window's TAT moves back by cost * T, so charges others made in between
 * survive.  Returns -1 when the link is down; a refund lost in flight is
 * counted in adjust_dropped.
 */
int sg_redis_refund(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost);

/*
 * Adds `cost` units a call turned out to have to every window given, never
 * refused (sg_gcra_charge).  Fire-and-forget, as sg_redis_refund.  For
 * both, a cost over SG_REDIS_BURST_MAX counts as SG_REDIS_BURST_MAX, which
 * is at least a full burst.
 */
int sg_redis_charge(struct sg_redis *rd, const struct sg_redis_window *w, size_t n, uint32_t cost);

/* Counters for metrics, owned by the loop thread. */
struct sg_redis_stats {
	uint64_t decided;        /* callbacks with status 0 */
	uint64_t failed;         /* callbacks with status -1 */
	uint64_t timeouts;       /* links reset because a command went unanswered */
	uint64_t links_lost;     /* up -> down transitions */
	uint64_t script_loads;   /* SCRIPT LOAD sent: one per connect, one per NOSCRIPT */
	uint64_t adjust_dropped; /* refunds and charges that failed */
};

void sg_redis_stats(const struct sg_redis *rd, struct sg_redis_stats *out);

/*
 * The script and its calling convention (sg_redis_script.c): what sg_redis
 * sends and reads, and what tools that drive Redis directly need.
 */
extern const char sg_redis_script[];

#define SG_REDIS_ARGS_MAX (5 + 7 * SG_REDIS_WINDOWS_MAX)

/* One command's arguments; the text they point into lives in the struct. */
struct sg_redis_args {
	int argc;
	const char *argv[SG_REDIS_ARGS_MAX];
	size_t len[SG_REDIS_ARGS_MAX];
	size_t used;
	char text[SG_REDIS_WINDOWS_MAX * (48 + 6 * 21) + 64];
};

/* SCRIPT LOAD of the script: its reply is the sha. */
void sg_redis_script_load(struct sg_redis_args *a);
/* EVALSHA of the script loaded as `sha`, in mode 'd' (decide), 'r' (refund) or 'c' (charge). */
void sg_redis_script_args(struct sg_redis_args *a, const char *sha, const char *prefix, char mode,
                          const struct sg_redis_window *w, size_t n, uint32_t cost);

/* n is 1 to SG_REDIS_WINDOWS_MAX, and no burst is over SG_REDIS_BURST_MAX. */
bool sg_redis_script_usable(const struct sg_redis_window *w, size_t n);

struct redisReply;
/*
 * Reads the reply to a decision into *out (all but status).  Returns -1
 * with out->error set when Redis answered an error or something misshapen.
 */
int sg_redis_script_reply(const struct redisReply *r, const struct sg_redis_window *w, size_t n,
                          struct sg_redis_reply *out);

#endif
