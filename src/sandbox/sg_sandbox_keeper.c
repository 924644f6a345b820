/*
 * The keeper thread: reads the zygote's exit notices, keeps idle workers
 * ready for tenants that run templates, lets quiet tenants' workers go;
 * and what /readyz shows of the sandbox.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "obs/sg_log.h"
#include "sandbox/sg_sandbox_int.h"

/* ---- the keeper ---- */

struct want {
	struct sg_pool_owner owner;
	size_t n;
};

/*
 * With pool_mu held: forgets owners not seen for RECENT_S, collecting
 * their idle workers' pids (retired here, killed by the caller).
 */
static size_t
reap_stale(struct sg_sandbox *sb, time_t now, pid_t *pids, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sb->n_recent;) {
		struct recent *r = &sb->recent[i];
		if (now - r->last <= RECENT_S || r->spawning > 0) {
			i++;
			continue;
		}
		const struct sg_pool_worker *w;
		while (n < max && (w = sg_worker_pool_checkout(sb->pool, &r->owner)) != NULL) {
			pids[n++] = w->pid;
			sg_worker_pool_retire(sb->pool, w->pid);
		}
		if (n == max)
			break; /* the rest next tick */
		*r = sb->recent[--sb->n_recent];
	}
	return n;
}

/* Logs a failed prefork and holds the owner's next one back. */
static void
prefork_failed(struct sg_sandbox *sb, const struct sg_pool_owner *o, time_t now, const char *err)
{
	sg_log(SG_LOG_WARN, NULL,
	       "sandbox: preforking for tenant %s, user %s, %s mode: %s (next try in %d s)",
	       o->tenant, o->user, o->mode, err, PREFORK_RETRY_S);
	pthread_mutex_lock(&sb->pool_mu);
	for (size_t i = 0; i < sb->n_recent; i++)
		if (sg_pool_owner_same(&sb->recent[i].owner, o))
			sb->recent[i].prefork_after = now + PREFORK_RETRY_S;
	pthread_mutex_unlock(&sb->pool_mu);
}

/*
 * Tops up idle workers of recent owners, a few spawns per tick; lets stale
 * ones go.  An owner whose prefork failed is left alone for PREFORK_RETRY_S
 * (its runs still ask for workers), so a lasting failure is logged twice a
 * minute, not four times a second.
 */
static void
prefork(struct sg_sandbox *sb)
{
	struct want want[SPAWNS_PER_TICK];
	pid_t stale[SPAWNS_PER_TICK];
	size_t n_want = 0, spawns = 0;
	time_t now = time(NULL);
	pthread_mutex_lock(&sb->pool_mu);
	size_t n_stale = reap_stale(sb, now, stale, SPAWNS_PER_TICK);
	for (size_t i = 0; i < sb->n_recent && n_want < SPAWNS_PER_TICK; i++) {
		if (sb->recent[i].prefork_after > now)
			continue;
		size_t n = sg_worker_pool_shortfall(sb->pool, &sb->recent[i].owner, sb->prefork);
		if (n > 0)
			want[n_want++] = (struct want){sb->recent[i].owner, n};
	}
	pthread_mutex_unlock(&sb->pool_mu);
	for (size_t i = 0; i < n_stale; i++)
		sg_sandbox_zygote_kill(sb, stale[i]);
	for (size_t i = 0; i < n_want && !atomic_load(&sb->stopping); i++)
		for (size_t k = 0; k < want[i].n && spawns++ < SPAWNS_PER_TICK; k++) {
			struct sg_sandbox_worker w;
			char err[256];
			if (sg_sandbox_spawn_ready(sb, &want[i].owner, true, &w, err, sizeof(err)) <
			    0) {
				prefork_failed(sb, &want[i].owner, now, err);
				return;
			}
		}
}

void *
sg_sandbox_keeper_main(void *arg)
{
	struct sg_sandbox *sb = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = sb->z.fd, .events = POLLIN},
		                      {.fd = sb->wake_fd, .events = POLLIN}};
		if (atomic_load(&sb->broken))
			p[0].fd = -1;
		(void)poll(p, 2, 250); /* errors too end in a look at the state below */
		if (p[1].revents & POLLIN) {
			uint64_t v;
			(void)!read(sb->wake_fd, &v, sizeof(v));
		}
		/* Kills first: a runaway worker stops burning its tenant's CPU. */
		sg_sandbox_kill_doomed(sb);
		pthread_mutex_lock(&sb->zyg_mu);
		sg_sandbox_drain_exits(sb);
		pthread_mutex_unlock(&sb->zyg_mu);
		/* Runs waiting for a worker next; they also fail fast once broken. */
		sg_sandbox_serve_waits(sb);
		if (atomic_load(&sb->stopping))
			break; /* after answering every waiting run (refused, when stopping) */
		if (!atomic_load(&sb->broken))
			prefork(sb);
	}
	return NULL;
}

int
sg_sandbox_run_keeper(struct sg_sandbox *sb, char *err, size_t errlen)
{
	if (pthread_create(&sb->keeper, NULL, sg_sandbox_keeper_main, sb) != 0)
		return snprintf(err, errlen, "cannot start the sandbox keeper thread"), -1;
	sb->keeper_on = true;
	return 0;
}

/* ---- status ---- */

bool
sg_sandbox_ready(struct sg_sandbox *sb)
{
	return !atomic_load(&sb->broken);
}

json_t *
sg_sandbox_status_json(struct sg_sandbox *sb)
{
	size_t idle, busy;
	pthread_mutex_lock(&sb->pool_mu);
	sg_worker_pool_count(sb->pool, NULL, &idle, &busy);
	pthread_mutex_unlock(&sb->pool_mu);
	bool broken = atomic_load(&sb->broken);
	return json_pack("{s:b, s:b, s:s?, s:{s:I, s:I, s:I, s:I, s:I}, s:s, s:o}", "enabled", 1,
	                 "ready", !broken, "reason", broken ? sb->reason : NULL, "workers", "idle",
	                 (json_int_t)idle, "busy", (json_int_t)busy, "max",
	                 (json_int_t)sb->max_workers, "runs_per_worker",
	                 (json_int_t)sb->runs_per_worker, "prefork", (json_int_t)sb->prefork,
	                 "isolation", sb->isolation, "cgroups",
	                 sb->cgroups ? sg_cgroup_report_json(&sb->probe) : json_null());
}
