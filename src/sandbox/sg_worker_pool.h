/*
 * sg_worker_pool: the gateway's book of live sandbox workers, per tenant.
 *
 * A plain data structure, no I/O and no event loop: it never spawns, kills
 * or reads anything.  The caller spawns with sg_zygote_spawn() when
 * checkout finds no idle worker, adds the new one, and retires entries on
 * EXITED notices, protocol errors and wall-clock kills.  A worker belongs
 * to the tenant it was spawned for until it dies: checkout matches tenant
 * names exactly, and checkin refuses a worker given back under another
 * name, since one tenant's worker may hold what another's templates left
 * in its memory.
 *
 * Not thread-safe: one pool per I/O thread, or one lock around it.  Lookups
 * scan every entry; pools hold tens to hundreds of workers.
 */
#ifndef SG_WORKER_POOL_H
#define SG_WORKER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SG_POOL_TENANT_MAX 64

enum sg_pool_state {
	SG_POOL_IDLE, /* waiting for a RUN */
	SG_POOL_BUSY, /* handed out: running, or just spawned and not READY yet */
};

struct sg_pool_worker {
	pid_t pid;
	int fd; /* the gateway's end of its socket; owned by the pool */
	char tenant[SG_POOL_TENANT_MAX + 1];
	uint32_t runs_done;
	enum sg_pool_state state;
	uint64_t idle_since; /* the pool's clock when it last went idle */
};

/* What checkin did with the worker. */
enum sg_pool_checkin {
	SG_POOL_KEPT = 0,    /* idle again */
	SG_POOL_RETIRED = 1, /* it served max_runs: entry gone, fd closed; it exits by itself */
};

struct sg_worker_pool;

/*
 * max_workers bounds the entries; max_runs must equal the max_runs the
 * workers were spawned with (they exit after that many, and a pool that
 * counted differently would hand out a worker that is gone).  NULL when out
 * of memory or either is 0.
 */
struct sg_worker_pool *sg_worker_pool_new(size_t max_workers, uint32_t max_runs);
/* Closes every descriptor still in the pool.  NULL does nothing. */
void sg_worker_pool_free(struct sg_worker_pool *p);

/*
 * Books a worker just spawned for `tenant`, as BUSY for its spawner (it
 * has a READY to read).  Takes fd on success only.  -1 when the pool is
 * full, the pid is already booked, the tenant name is not 1..64 bytes, or
 * pid or fd is not valid.
 */
int sg_worker_pool_add(struct sg_worker_pool *p, pid_t pid, int fd, const char *tenant);

/*
 * An idle worker of exactly `tenant`, now BUSY; NULL when there is none
 * (spawn one).  The entry is owned by the pool and valid until the next
 * call that adds or removes one (add, checkin, retire).
 */
const struct sg_pool_worker *sg_worker_pool_checkout(struct sg_worker_pool *p, const char *tenant);

/*
 * Gives back a BUSY worker after a run ended cleanly (DONE read, every
 * frame valid), counting the run.  Returns enum sg_pool_checkin, or -1
 * when pid is not a busy worker of `tenant`: a caller bug, left unchanged.
 * A preforked worker goes idle after its READY, which is not a run: pass
 * counted = false for that checkin.
 */
int sg_worker_pool_checkin(struct sg_worker_pool *p, pid_t pid, const char *tenant, bool counted);

/*
 * Forgets a worker that died, was killed or misbehaved, busy or idle, and
 * closes its fd.  0, or -1 when the pid is not booked (e.g. retired by
 * checkin already, and now its EXITED notice came).
 */
int sg_worker_pool_retire(struct sg_worker_pool *p, pid_t pid);

/*
 * The idle worker that has waited longest, of any tenant but `except`
 * (NULL: of any tenant), or NULL: the one to retire when the pool is full
 * and another tenant needs room.  Valid as for checkout.
 */
const struct sg_pool_worker *sg_worker_pool_idlest(const struct sg_worker_pool *p,
                                                   const char *except);
/* Every entry is taken. */
bool sg_worker_pool_full(const struct sg_worker_pool *p);

/* The entry for pid, or NULL; valid as for checkout. */
const struct sg_pool_worker *sg_worker_pool_find(const struct sg_worker_pool *p, pid_t pid);

/* Counts of `tenant`'s workers (NULL: every tenant's). */
void sg_worker_pool_count(const struct sg_worker_pool *p, const char *tenant, size_t *idle,
                          size_t *busy);

/*
 * Prefork hint: how many workers to spawn for `tenant` so that it has
 * want_idle idle ones, within the pool's free room.
 */
size_t sg_worker_pool_shortfall(const struct sg_worker_pool *p, const char *tenant,
                                size_t want_idle);

#endif
