/*
 * The gateway's side of the sandbox: handing workers to runs, spawning
 * through the zygote, and what the zygote says about workers that ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sg_clock.h"
#include "core/sg_name.h"
#include "obs/sg_log.h"
#include "sandbox/sg_frame.h"
#include "sandbox/sg_sandbox_int.h"

/* ---- exits ---- */

static void
note_exit(struct sg_sandbox *sb, const struct sg_zygote_exit *e)
{
	pthread_mutex_lock(&sb->pool_mu);
	sb->exits[sb->exit_next++ % EXITS_KEPT] = (struct exit_rec){e->pid, e->status};
	const struct sg_pool_worker *w = sg_worker_pool_find(sb->pool, e->pid);
	/* A busy worker's fd is in a run's hands: that run retires it. */
	if (w != NULL && w->state == SG_POOL_IDLE)
		sg_worker_pool_retire(sb->pool, e->pid);
	pthread_mutex_unlock(&sb->pool_mu);
}

static void
mark_broken(struct sg_sandbox *sb, const char *why)
{
	if (atomic_load(&sb->broken))
		return;
	snprintf(sb->reason, sizeof(sb->reason), "the sandbox zygote stopped: %.200s", why);
	atomic_store(&sb->broken, true);
	sg_log(SG_LOG_ERROR, NULL, "%s; template runs are refused until the gateway restarts",
	       sb->reason);
}

/* With zyg_mu held: takes every notice already read or waiting. */
void
sg_sandbox_drain_exits(struct sg_sandbox *sb)
{
	struct sg_zygote_exit e;
	char err[256];
	int rc;
	if (sb->z.broken) {
		mark_broken(sb, "it exited or stopped following the protocol");
		return;
	}
	while ((rc = sg_zygote_next_exit(&sb->z, 0, &e, err, sizeof(err))) != 0) {
		if (rc < 0) {
			mark_broken(sb, err);
			return;
		}
		note_exit(sb, &e);
	}
}

int
sg_sandbox_exit_status(struct sg_sandbox *sb, pid_t pid, int *status)
{
	int found = 0;
	pthread_mutex_lock(&sb->pool_mu);
	/* Newest first: a pid the kernel reused may have an older record. */
	for (size_t k = 1; k <= EXITS_KEPT && !found; k++) {
		const struct exit_rec *e = &sb->exits[(sb->exit_next - k) % EXITS_KEPT];
		if (e->pid == pid) {
			*status = e->status;
			found = 1;
		}
	}
	pthread_mutex_unlock(&sb->pool_mu);
	return found;
}

/* ---- spawning ---- */

void
sg_sandbox_zygote_kill(struct sg_sandbox *sb, pid_t pid)
{
	char err[256];
	pthread_mutex_lock(&sb->zyg_mu);
	/* Refused when it exited already; its EXITED notice says how. */
	if (sg_zygote_kill(&sb->z, pid, err, sizeof(err)) < 0 && sb->z.broken)
		mark_broken(sb, err);
	sg_sandbox_drain_exits(sb);
	pthread_mutex_unlock(&sb->zyg_mu);
}

bool
sg_sandbox_doom(struct sg_sandbox *sb, pid_t pid)
{
	if (sb->n_doomed == sb->max_workers)
		return false;
	sb->doomed[sb->n_doomed++] = pid;
	return true;
}

void
sg_sandbox_kill_doomed(struct sg_sandbox *sb)
{
	pid_t pids[SPAWNS_PER_TICK * 4];
	size_t n;
	do {
		pthread_mutex_lock(&sb->pool_mu);
		n = sb->n_doomed < sizeof(pids) / sizeof(pids[0]) ? sb->n_doomed
		                                                  : sizeof(pids) / sizeof(pids[0]);
		sb->n_doomed -= n;
		memcpy(pids, sb->doomed + sb->n_doomed, n * sizeof(pids[0]));
		pthread_mutex_unlock(&sb->pool_mu);
		for (size_t i = 0; i < n; i++)
			sg_sandbox_zygote_kill(sb, pids[i]);
	} while (n > 0);
}

/*
 * Reads the new worker's READY (it has confined itself and waits for a
 * RUN) without ever blocking past the deadline: a worker slowed by its
 * tenant's ceilings must not hold the I/O thread.
 */
static int
await_ready(int fd, char *err, size_t errlen)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return snprintf(err, errlen, "cannot set up a new worker's socket"), -1;
	struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 256);
	struct sg_frame_msg m = {0};
	enum sg_frame_rc rc = d ? SG_FRAME_MORE : SG_FRAME_ERROR;
	int64_t end = sg_mono_ms() + READY_TIMEOUT_MS, left;
	while (rc == SG_FRAME_MORE && (left = end - sg_mono_ms()) > 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t buf[256];
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		size_t used = 0;
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
			rc = SG_FRAME_ERROR; /* it exited while confining itself */
		else if (n > 0)
			rc = sg_frame_decoder_feed(d, buf, (size_t)n, &used, &m);
		/* READY is the only frame a new worker sends; bytes after it are out of turn. */
		if (rc == SG_FRAME_MESSAGE && (used != (size_t)n || m.type != SG_FRAME_READY))
			rc = SG_FRAME_ERROR;
	}
	sg_frame_msg_clear(&m);
	sg_frame_decoder_free(d);
	if (rc == SG_FRAME_MESSAGE)
		return 0;
	return snprintf(err, errlen,
	                rc == SG_FRAME_MORE
	                    ? "a new worker did not get ready within %d ms"
	                    : "a new worker failed while confining itself (%d ms allowed; the "
	                      "gateway's log has the zygote's reason)",
	                READY_TIMEOUT_MS),
	       -1;
}

int
sg_sandbox_spawn_ready(struct sg_sandbox *sb, const struct sg_pool_owner *owner, bool idle,
                       struct sg_sandbox_worker *w, char *err, size_t errlen)
{
	pid_t pid = 0;
	int fd = -1, rc;
	if (atomic_load(&sb->broken))
		return snprintf(err, errlen, "%s", sb->reason), -1;
	pthread_mutex_lock(&sb->zyg_mu);
	rc = sg_zygote_spawn(&sb->z, owner->tenant, 0, &pid, &fd, err, errlen);
	if (rc < 0 && sb->z.broken)
		mark_broken(sb, err);
	sg_sandbox_drain_exits(sb);
	pthread_mutex_unlock(&sb->zyg_mu);
	if (rc < 0)
		return -1;
	if (await_ready(fd, err, errlen) < 0) {
		close(fd);
		sg_sandbox_zygote_kill(sb, pid);
		return -1;
	}
	pthread_mutex_lock(&sb->pool_mu);
	rc = sg_worker_pool_add(sb->pool, pid, fd, owner);
	if (rc == 0 && idle)
		sg_worker_pool_checkin(sb->pool, pid, owner, false);
	pthread_mutex_unlock(&sb->pool_mu);
	if (rc < 0) {
		close(fd);
		sg_sandbox_zygote_kill(sb, pid);
		return snprintf(err, errlen, "all %zu sandbox workers are in use", sb->max_workers),
		       -1;
	}
	w->pid = pid;
	w->fd = fd;
	w->owner = *owner;
	return 0;
}

/* ---- handing out ---- */

/*
 * With pool_mu held: the owner's entry, made (or taken from the stalest)
 * when missing; NULL when every entry has workers being made.
 */
static struct recent *
note_recent(struct sg_sandbox *sb, const struct sg_pool_owner *owner, time_t now)
{
	size_t oldest = RECENT_MAX;
	for (size_t i = 0; i < sb->n_recent; i++) {
		if (sg_pool_owner_same(&sb->recent[i].owner, owner)) {
			sb->recent[i].last = now;
			return &sb->recent[i];
		}
		/* An entry counting workers being made is not given away. */
		if (sb->recent[i].spawning == 0 &&
		    (oldest == RECENT_MAX || sb->recent[i].last < sb->recent[oldest].last))
			oldest = i;
	}
	if (sb->n_recent == RECENT_MAX && oldest == RECENT_MAX)
		return NULL;
	size_t at = sb->n_recent < RECENT_MAX ? sb->n_recent++ : oldest;
	sb->recent[at] = (struct recent){.owner = *owner, .last = now};
	return &sb->recent[at];
}

/* With pool_mu held: the owner's entry, or NULL. */
static struct recent *
find_recent(struct sg_sandbox *sb, const struct sg_pool_owner *owner)
{
	for (size_t i = 0; i < sb->n_recent; i++)
		if (sg_pool_owner_same(&sb->recent[i].owner, owner))
			return &sb->recent[i];
	return NULL;
}

/* With pool_mu held: workers being made for any owner in `tenant`. */
static size_t
tenant_spawning(const struct sg_sandbox *sb, const char *tenant)
{
	size_t n = 0;
	for (size_t i = 0; i < sb->n_recent; i++)
		if (strcmp(sb->recent[i].owner.tenant, tenant) == 0)
			n += sb->recent[i].spawning;
	return n;
}

/* An idle worker must have nothing to say: data or EOF means it broke or died. */
static bool
quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

void
sg_sandbox_wake_keeper(struct sg_sandbox *sb)
{
	uint64_t one = 1;
	(void)!write(sb->wake_fd, &one, sizeof(one));
}

/* With pool_mu held: 1 and *w for a healthy idle worker, 0 for none; *dead for one to kill. */
static int
take_idle(struct sg_sandbox *sb, const struct sg_pool_owner *owner, struct sg_sandbox_worker *w,
          pid_t *dead)
{
	const struct sg_pool_worker *pw = sg_worker_pool_checkout(sb->pool, owner);
	if (pw == NULL)
		return 0;
	if (!quiet(pw->fd)) {
		*dead = pw->pid;
		sg_worker_pool_retire(sb->pool, pw->pid);
		return 0;
	}
	*w = (struct sg_sandbox_worker){.pid = pw->pid, .fd = pw->fd, .owner = *owner};
	return 1;
}

/*
 * With pool_mu held, when every worker slot is taken: the idle worker of
 * another owner that has waited longest gives its place (its pid is
 * returned for killing), so owners that ran once cannot lock out the rest.
 */
static pid_t
make_room(struct sg_sandbox *sb, const struct sg_pool_owner *owner)
{
	if (!sg_worker_pool_full(sb->pool))
		return 0;
	const struct sg_pool_worker *v = sg_worker_pool_idlest(sb->pool, owner);
	pid_t pid = v ? v->pid : 0;
	if (pid != 0)
		sg_worker_pool_retire(sb->pool, pid);
	return pid;
}

/* With pool_mu held: a reason to say no, GOT with *w, WAIT (queued), or -1: look again. */
static int
try_take(struct sg_sandbox *sb, const struct sg_pool_owner *owner, struct sg_sandbox_worker *w,
         struct sg_sandbox_wait *wait, pid_t *dead, bool *wake)
{
	size_t idle, busy;
	struct recent *rc = note_recent(sb, owner, time(NULL));
	if (rc == NULL || atomic_load(&sb->stopping))
		return SG_SANDBOX_BUSY;
	/* tenant_runs bounds the tenant, all its users together. */
	sg_worker_pool_count(sb->pool, owner->tenant, &idle, &busy);
	/* Workers being made count too, or racing threads would all make one. */
	if (busy + tenant_spawning(sb, owner->tenant) >= sb->tenant_runs)
		return SG_SANDBOX_BUSY;
	if (take_idle(sb, owner, w, dead)) {
		/* It took a ready one: have the keeper make the next. */
		*wake = sg_worker_pool_shortfall(sb->pool, owner, sb->prefork) > 0;
		return SG_SANDBOX_GOT;
	}
	if (*dead != 0)
		return -1; /* dropped a dead one: look again */
	if (sb->n_waits >= sb->max_workers)
		return SG_SANDBOX_BUSY; /* as many runs wait as there are workers at all */
	rc->spawning++;
	sb->n_waits++;
	wait->owner = *owner;
	wait->deadline_ms = sg_mono_ms() + WAIT_MAX_MS;
	wait->next = NULL;
	*sb->waits_tail = wait;
	sb->waits_tail = &wait->next;
	*wake = true;
	return SG_SANDBOX_WAIT;
}

enum sg_sandbox_acquire
sg_sandbox_acquire(struct sg_sandbox *sb, const char *tenant, const char *user, const char *mode,
                   struct sg_sandbox_worker *w, struct sg_sandbox_wait *wait, char *err,
                   size_t errlen)
{
	struct sg_pool_owner owner;
	char why[200];
	int got;
	if (atomic_load(&sb->broken))
		return snprintf(err, errlen, "%s", sb->reason), SG_SANDBOX_UNAVAILABLE;
	/* Refused here, never remembered: the keeper would try to prefork for it forever. */
	if (sg_pool_owner_set(&owner, tenant, user, mode) != 0)
		return snprintf(err, errlen,
		                "tenant \"%.64s\" cannot have sandbox workers: %s; ask an admin "
		                "for a key of a tenant named that way",
		                tenant,
		                sg_name_valid(tenant) ? "the user or mode is not valid"
		                                      : sg_name_why(tenant, why, sizeof(why))),
		       SG_SANDBOX_UNAVAILABLE;
	do {
		pid_t dead = 0;
		bool wake = false;
		pthread_mutex_lock(&sb->pool_mu);
		got = try_take(sb, &owner, w, wait, &dead, &wake);
		bool doomed = dead != 0 && sg_sandbox_doom(sb, dead);
		pthread_mutex_unlock(&sb->pool_mu);
		if (dead != 0 && !doomed)
			sg_sandbox_zygote_kill(sb, dead);
		if (wake || doomed)
			sg_sandbox_wake_keeper(sb);
	} while (got == -1);
	return (enum sg_sandbox_acquire)got;
}

/*
 * With pool_mu held: the oldest waiting run and what to do for it.  An
 * idle worker of its tenant (one may have come back meanwhile) is given at
 * once (1); when every slot is busy, or its deadline passed, it is refused
 * at once (-1) rather than after a spawn that could not be booked; else 0:
 * make one, in the room of *victim if that is set.
 */
static int
next_wait(struct sg_sandbox *sb, struct sg_sandbox_wait **out, pid_t *victim, pid_t *dead)
{
	struct sg_sandbox_wait *wt = sb->waits;
	if ((*out = wt) == NULL)
		return 0;
	sb->waits = wt->next;
	if (sb->waits == NULL)
		sb->waits_tail = &sb->waits;
	sb->n_waits--;
	if (take_idle(sb, &wt->owner, &wt->w, dead))
		return 1;
	if (sg_mono_ms() > wt->deadline_ms || atomic_load(&sb->stopping)) {
		snprintf(wt->err, sizeof(wt->err), "no worker was free within %d ms", WAIT_MAX_MS);
		return -1;
	}
	*victim = make_room(sb, &wt->owner);
	if (*victim == 0 && sg_worker_pool_full(sb->pool)) {
		snprintf(wt->err, sizeof(wt->err), "all %zu sandbox workers are running",
		         sb->max_workers);
		return -1;
	}
	return 0;
}

/* With pool_mu held: the wait is answered; its worker no longer being made. */
static void
done_waiting(struct sg_sandbox *sb, const struct sg_sandbox_wait *wt)
{
	struct recent *r = find_recent(sb, &wt->owner);
	if (r != NULL && r->spawning > 0)
		r->spawning--;
}

void
sg_sandbox_serve_waits(struct sg_sandbox *sb)
{
	for (;;) {
		struct sg_sandbox_wait *wt;
		pid_t victim = 0, dead = 0;
		pthread_mutex_lock(&sb->pool_mu);
		int what = next_wait(sb, &wt, &victim, &dead);
		pthread_mutex_unlock(&sb->pool_mu);
		if (wt == NULL)
			return;
		if (dead != 0)
			sg_sandbox_zygote_kill(sb, dead);
		if (victim != 0)
			sg_sandbox_zygote_kill(sb, victim);
		wt->rc = what == 1  ? 0
		         : what < 0 ? -1
		                    : sg_sandbox_spawn_ready(sb, &wt->owner, false, &wt->w, wt->err,
		                                             sizeof(wt->err));
		pthread_mutex_lock(&sb->pool_mu);
		done_waiting(sb, wt);
		pthread_mutex_unlock(&sb->pool_mu);
		wt->ready(wt->arg); /* the waiting run owns wt again from here */
	}
}

bool
sg_sandbox_cpu_ns(pid_t pid, uint64_t *ns)
{
	char path[64], buf[128];
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return sscanf(buf, "%" SCNu64, ns) == 1;
}

void
sg_sandbox_release(struct sg_sandbox *sb, const struct sg_sandbox_worker *w)
{
	uint64_t cpu = 0;
	/* RLIMIT_CPU covers the worker's life: let it go before a run could hit it. */
	if (sg_sandbox_cpu_ns(w->pid, &cpu) &&
	    cpu > (uint64_t)(WORKER_CPU_S - LAST_RUN_CPU_S) * 1000000000ull) {
		sg_sandbox_discard(sb, w);
		return;
	}
	pthread_mutex_lock(&sb->pool_mu);
	(void)sg_worker_pool_checkin(sb->pool, w->pid, &w->owner, true);
	pthread_mutex_unlock(&sb->pool_mu);
}

void
sg_sandbox_discard(struct sg_sandbox *sb, const struct sg_sandbox_worker *w)
{
	pthread_mutex_lock(&sb->pool_mu);
	sg_worker_pool_retire(sb->pool, w->pid);
	bool doomed = sg_sandbox_doom(sb, w->pid);
	pthread_mutex_unlock(&sb->pool_mu);
	if (doomed)
		sg_sandbox_wake_keeper(sb);
	else
		sg_sandbox_zygote_kill(sb, w->pid);
}

bool
sg_sandbox_oom_kills(struct sg_sandbox *sb, const char *tenant, uint64_t *n)
{
	const struct sg_cgroup_hierarchy *h = &sb->sys.ctrl[SG_CGROUP_MEMORY];
	char dir[SG_CGROUP_PATH_MAX + 96];
	if (!sb->cgroups || h->version == SG_CGROUP_NONE)
		return false;
	snprintf(dir, sizeof(dir), "%s/%s/%s", h->base, sb->sys.group, tenant);
	return h->version == SG_CGROUP_V2
	           ? sg_cgroup_read_u64(dir, "memory.events", "oom_kill", n)
	           : sg_cgroup_read_u64(dir, "memory.oom_control", "oom_kill", n);
}
