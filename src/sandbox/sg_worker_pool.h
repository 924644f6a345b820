/*
 * sg_worker_pool: the gateway's book of live sandbox workers, per owner.
 *
 * A plain data structure, no I/O and no event loop: it never spawns, kills
 * or reads anything.  The caller spawns with sg_zygote_spawn() when
 * checkout finds no idle worker, adds the new one, and retires entries on
 * EXITED notices, protocol errors and wall-clock kills.
 *
 * A worker belongs to one owner, the (tenant, user, mode) it was spawned
 * for, until it dies: checkout matches all three exactly, and checkin
 * refuses a worker given back under another owner.  A worker may keep what
 * one run left in its memory, and a run acts with its caller's credentials
 * (every ctx.call is governed as that caller), so a worker compromised by
 * one person's template must never see another person's input or act as
 * them, nor as the same person in the other mode.  The cgroup stays the
 * tenant's: ceilings are tenant ceilings.
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

#define SG_POOL_NAME_MAX 64 /* bytes of a user; tenants are shorter (sg_name.h) */
#define SG_POOL_MODE_MAX 15

/* Whose runs a worker serves: exactly one (tenant, user, mode). */
struct sg_pool_owner {
	char tenant[SG_POOL_NAME_MAX + 1];
	char user[SG_POOL_NAME_MAX + 1];
	char mode[SG_POOL_MODE_MAX + 1];
};

/*
 * Fills *o.  -1 when the tenant breaks the naming rule (it names a cgroup),
 * or the user is not 1..64 bytes, or the mode 1..15: such an owner is
 * refused by every call below.
 */
int sg_pool_owner_set(struct sg_pool_owner *o, const char *tenant, const char *user,
                      const char *mode);
/* The same tenant, user and mode, byte for byte: "acme" is never "acme2". */
bool sg_pool_owner_same(const struct sg_pool_owner *a, const struct sg_pool_owner *b);

enum sg_pool_state {
	SG_POOL_IDLE, /* waiting for a RUN */
	SG_POOL_BUSY, /* handed out: running, or just spawned and not READY yet */
};

struct sg_pool_worker {
	pid_t pid;
	int fd; /* the gateway's end of its socket; owned by the pool */
	struct sg_pool_owner owner;
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
 * Books a worker just spawned for `owner`, as BUSY for its spawner (it
 * has a READY to read).  Takes fd on success only.  -1 when the pool is
 * full, the pid is already booked, the owner is not valid, or pid or fd
 * is not valid.
 */
int sg_worker_pool_add(struct sg_worker_pool *p, pid_t pid, int fd,
                       const struct sg_pool_owner *owner);

/*
 * An idle worker of exactly `owner`, now BUSY; NULL when there is none
 * (spawn one).  The entry is owned by the pool and valid until the next
 * call that adds or removes one (add, checkin, retire).
 */
const struct sg_pool_worker *sg_worker_pool_checkout(struct sg_worker_pool *p,
                                                     const struct sg_pool_owner *owner);

/*
 * Gives back a BUSY worker after a run ended cleanly (DONE read, every
 * frame valid), counting the run.  Returns enum sg_pool_checkin, or -1
 * when pid is not a busy worker of `owner`: a caller bug, left unchanged.
 * A preforked worker goes idle after its READY, which is not a run: pass
 * counted = false for that checkin.
 */
int sg_worker_pool_checkin(struct sg_worker_pool *p, pid_t pid, const struct sg_pool_owner *owner,
                           bool counted);

/*
 * Forgets a worker that died, was killed or misbehaved, busy or idle, and
 * closes its fd.  0, or -1 when the pid is not booked (e.g. retired by
 * checkin already, and now its EXITED notice came).
 */
int sg_worker_pool_retire(struct sg_worker_pool *p, pid_t pid);

/*
 * The idle worker that has waited longest, of any owner but `except`
 * (NULL: of any owner), or NULL: the one to retire when the pool is full
 * and another owner needs room.  Valid as for checkout.
 */
const struct sg_pool_worker *sg_worker_pool_idlest(const struct sg_worker_pool *p,
                                                   const struct sg_pool_owner *except);
/* Every entry is taken. */
bool sg_worker_pool_full(const struct sg_worker_pool *p);

/* The entry for pid, or NULL; valid as for checkout. */
const struct sg_pool_worker *sg_worker_pool_find(const struct sg_worker_pool *p, pid_t pid);

/*
 * Counts of the workers of every owner in `tenant` (NULL: of every
 * tenant): a tenant's runs in progress are bounded across its users.
 */
void sg_worker_pool_count(const struct sg_worker_pool *p, const char *tenant, size_t *idle,
                          size_t *busy);

/*
 * Prefork hint: how many workers to spawn for `owner` so that it has
 * want_idle idle ones, within the pool's free room.
 */
size_t sg_worker_pool_shortfall(const struct sg_worker_pool *p, const struct sg_pool_owner *owner,
                                size_t want_idle);

#endif
