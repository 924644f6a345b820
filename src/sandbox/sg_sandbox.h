/*
 * sg_sandbox: the gateway's side of the template sandbox, shared by every
 * I/O thread.  It owns the zygote client, the pool of live workers and a
 * keeper thread, and hands out one idle worker of a tenant at a time.
 *
 * Locks: `pool_mu` guards the pool and is held for microseconds; `zyg_mu`
 * guards the zygote client and is held while the zygote spawns or kills
 * (a millisecond or two).  A worker serves one (tenant, user, mode) only
 * (sg_worker_pool.h says why).  Workers are only ever made on the keeper
 * thread: a run with no idle worker of its own waits for one without
 * holding its I/O thread, and the keeper keeps `prefork` idle workers
 * ready for every (tenant, user, mode) that ran a template in the last ten
 * minutes.  The keeper also reads the zygote's EXITED notices, forgets idle
 * workers that died and keeps each wait status for a while, so a run whose
 * worker vanished can say why (a seccomp kill, a crash, the tenant's memory
 * ceiling).
 */
#ifndef SG_SANDBOX_H
#define SG_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/sg_config.h"
#include "sandbox/sg_cgroup.h"
#include "sandbox/sg_worker_pool.h"

struct sg_sandbox;

/* A worker handed to one run; fd stays the sandbox's (never close it). */
struct sg_sandbox_worker {
	pid_t pid;
	int fd; /* non-blocking, close-on-exec */
	struct sg_pool_owner owner;
};

/*
 * Checks what the config asks for (a probe cgroup with the tenant
 * ceilings: in strict mode a ceiling that cannot be applied is an error
 * naming it) and forks the zygote.  Call it while the process is single-
 * threaded and before any secret or jansson object exists (sg_zygote.h).
 * NULL with err when it cannot; a disabled sandbox is not started at all
 * (the caller checks cfg->sandbox_enabled).
 */
struct sg_sandbox *sg_sandbox_start(const struct sg_config *cfg, char *err, size_t errlen);
/* Starts the keeper thread; call once threads are allowed.  -1 with err. */
int sg_sandbox_run_keeper(struct sg_sandbox *sb, char *err, size_t errlen);
/* Stops the keeper and the zygote (which kills every worker).  NULL is a no-op. */
void sg_sandbox_stop(struct sg_sandbox *sb);

enum sg_sandbox_acquire {
	SG_SANDBOX_GOT = 0,
	SG_SANDBOX_BUSY = 1,         /* the tenant already has tenant_runs runs in progress */
	SG_SANDBOX_WAIT = 2,         /* the keeper is making one: wait->ready will be called */
	SG_SANDBOX_UNAVAILABLE = -1, /* the sandbox is broken: err says why */
};

/*
 * A run waiting for a worker to be made.  The caller fills `ready` and
 * `arg` and keeps the struct alive until `ready` is called (once, from
 * the keeper thread: do no more there than wake your own thread).  By
 * then rc is 0 with `w` the worker, or -1 with `err` saying why not.
 */
struct sg_sandbox_wait {
	void (*ready)(void *arg);
	void *arg;
	int rc;
	struct sg_sandbox_worker w;
	char err[256];
	/* The sandbox's. */
	struct sg_pool_owner owner;
	int64_t deadline_ms; /* monotonic: answered 503 when no worker is made by then */
	struct sg_sandbox_wait *next;
};

/*
 * An idle worker of exactly (tenant, user, mode) in *w; when there is
 * none, the keeper makes one (SG_SANDBOX_WAIT), so that no I/O thread waits
 * for a worker to confine itself.  Idle workers that died or spoke out of
 * turn are dropped on the way.  A tenant whose name breaks the naming rule
 * (a key made before the rule) is UNAVAILABLE at once, with err saying so.
 */
enum sg_sandbox_acquire sg_sandbox_acquire(struct sg_sandbox *sb, const char *tenant,
                                           const char *user, const char *mode,
                                           struct sg_sandbox_worker *w,
                                           struct sg_sandbox_wait *wait, char *err, size_t errlen);
/*
 * The run ended cleanly (DONE read, nothing after it): the worker goes
 * back to idle, or is let go after runs_per_worker runs or when it has
 * used most of its lifetime CPU.
 */
void sg_sandbox_release(struct sg_sandbox *sb, const struct sg_sandbox_worker *w);
/* The worker cannot be trusted again: killed (if alive) and forgotten. */
void sg_sandbox_discard(struct sg_sandbox *sb, const struct sg_sandbox_worker *w);

/* A dead worker's wait status: 1 with *status, 0 when the zygote has not told yet. */
int sg_sandbox_exit_status(struct sg_sandbox *sb, pid_t pid, int *status);
/* How often the tenant's memory cgroup has OOM-killed; false when unknown. */
bool sg_sandbox_oom_kills(struct sg_sandbox *sb, const char *tenant, uint64_t *n);
/* CPU time the process has used, from /proc/PID/schedstat; false when gone. */
bool sg_sandbox_cpu_ns(pid_t pid, uint64_t *ns);

/* The zygote is serving. */
bool sg_sandbox_ready(struct sg_sandbox *sb);
/* The /readyz member described in docs/sandbox.md. */
json_t *sg_sandbox_status_json(struct sg_sandbox *sb);

#endif
