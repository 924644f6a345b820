/*
 * For the sandbox's own files (sg_sandbox.c hands out workers,
 * sg_sandbox_keeper.c runs the keeper thread, sg_sandbox_start.c starts
 * and stops it all): the state they share.  Lock order is zyg_mu before
 * pool_mu; nothing takes zyg_mu while holding pool_mu, so a spawn (slow)
 * never stalls a checkout (fast).
 */
#ifndef SG_SANDBOX_INT_H
#define SG_SANDBOX_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "sandbox/sg_cgroup.h"
#include "sandbox/sg_sandbox.h"
#include "sandbox/sg_worker_pool.h"
#include "sandbox/sg_zygote.h"

#define EXITS_KEPT 256
#define RECENT_MAX 1024
#define RECENT_S 600
/* After a prefork fails (and is logged), the owner's next try waits this long. */
#define PREFORK_RETRY_S 30
#define READY_TIMEOUT_MS 2000
#define SPAWNS_PER_TICK 8
/* A run waits this long for the keeper to make its worker, then gets 503. */
#define WAIT_MAX_MS 5000
/* Lifetime CPU of a worker (RLIMIT_CPU) and the margin left for its last run. */
#define WORKER_CPU_S 600
#define LAST_RUN_CPU_S 61

struct exit_rec {
	pid_t pid;
	int status;
};

/* An owner that ran a template lately: the keeper keeps workers ready for it. */
struct recent {
	struct sg_pool_owner owner;
	time_t last;
	time_t prefork_after; /* a failed prefork is not retried before this */
	size_t spawning;      /* workers being made for a run of this owner right now */
};

struct sg_sandbox {
	uint32_t runs_per_worker;
	size_t prefork, tenant_runs, max_workers;
	pthread_mutex_t pool_mu, zyg_mu;
	struct sg_worker_pool *pool;       /* pool_mu */
	struct exit_rec exits[EXITS_KEPT]; /* pool_mu; a ring */
	size_t exit_next;
	struct recent recent[RECENT_MAX]; /* pool_mu */
	size_t n_recent;
	struct sg_sandbox_wait *waits, **waits_tail; /* pool_mu: runs waiting for a worker, FIFO */
	size_t n_waits;                              /* pool_mu; at most max_workers */
	pid_t *doomed; /* pool_mu: workers to kill, by the keeper (max_workers of them) */
	size_t n_doomed;
	struct sg_zygote z; /* zyg_mu */
	_Atomic bool broken;
	char reason[256]; /* why broken; written once, before broken is set */
	int wake_fd;
	pthread_t keeper;
	bool keeper_on;
	_Atomic bool stopping;
	bool cgroups;
	struct sg_cgroup_system sys;
	struct sg_cgroup_report probe;
	char isolation[512];
};

/* With zyg_mu held: takes every exit notice already read or waiting. */
void sg_sandbox_drain_exits(struct sg_sandbox *sb);
/* SIGKILLs a worker through the zygote (takes zyg_mu: the keeper, or nobody busy). */
void sg_sandbox_zygote_kill(struct sg_sandbox *sb, pid_t pid);
/*
 * With pool_mu held: has the keeper kill `pid` (already out of the pool).
 * I/O threads never wait for zyg_mu, which a spawn holds for milliseconds.
 * False when the list is full: the caller kills it itself.
 */
bool sg_sandbox_doom(struct sg_sandbox *sb, pid_t pid);
/* Keeper only: kills every worker doomed so far. */
void sg_sandbox_kill_doomed(struct sg_sandbox *sb);
/*
 * A confined, READY worker of `owner`, in its tenant's cgroup, booked BUSY
 * in the pool (idle for a prefork).
 */
int sg_sandbox_spawn_ready(struct sg_sandbox *sb, const struct sg_pool_owner *owner, bool idle,
                           struct sg_sandbox_worker *w, char *err, size_t errlen);
void sg_sandbox_wake_keeper(struct sg_sandbox *sb);
/* Keeper only: makes a worker for each waiting run, oldest first. */
void sg_sandbox_serve_waits(struct sg_sandbox *sb);
/* sg_sandbox_keeper.c: the keeper thread. */
void *sg_sandbox_keeper_main(void *arg);

#endif
