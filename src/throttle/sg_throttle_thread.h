/*
 * sg_throttle_thread: what each I/O thread keeps for throttling, on its own
 * event loop: the fair queue where calls over a limit wait for a turn (and
 * the timer that serves it), and, with throttle.backend: redis, its Redis
 * link, so decisions pipeline on a connection no other thread touches.
 * Transports only create one per thread and hand it to their requests
 * (sg_req.throttle); the throttle step does the rest.
 */
#ifndef SG_THROTTLE_THREAD_H
#define SG_THROTTLE_THREAD_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_config.h"
#include "throttle/sg_fairq.h"

struct sg_redis;
struct sg_throttle_thread;

/*
 * Resolves redis.host into `ip`, once, before any loop runs: a loop must
 * never block on DNS, and hiredis would resolve a name blocking.  Does
 * nothing (returns 0) with the local backend.
 */
int sg_throttle_redis_resolve(const struct sg_config *cfg, char *ip, size_t iplen, char *err,
                              size_t errlen);

/*
 * One thread's state on `base`.  `ops` serves the queue (the throttle
 * step's sg_throttle_queue_ops); `redis_ip` is what sg_throttle_redis_resolve
 * gave.  `index` names the thread in logs.  NULL when out of memory.
 */
struct sg_throttle_thread *sg_throttle_thread_new(struct event_base *base, int index,
                                                  const struct sg_config *cfg,
                                                  const struct sg_fairq_ops *ops,
                                                  const char *redis_ip);
/*
 * Fails every Redis decision still waiting (which wakes its request) and
 * frees.  Calls still waiting in the queue are left to their transport,
 * which frees its parked requests.  NULL is a no-op.
 */
void sg_throttle_thread_free(struct sg_throttle_thread *t);

/*
 * Parks `it` in its tenant's queue and arms the timer for when it may fit
 * or expire; `front` puts back a call whose turn came but was refused
 * again, keeping its place.  -1 when the tenant's queue is full.
 */
int sg_throttle_thread_push(struct sg_throttle_thread *t, struct sg_fairq_item *it, bool front,
                            uint64_t now);

/* The thread's Redis link, or NULL (local backend, or no thread). */
struct sg_redis *sg_throttle_thread_redis(const struct sg_throttle_thread *t);

/* /readyz: the throttle store's state (new reference). */
json_t *sg_throttle_store_check(const struct sg_config *cfg);

#endif
