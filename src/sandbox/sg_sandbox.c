/*
 * The gateway's side of the sandbox: zygote client, worker pool, keeper.
 * Lock order is zyg_mu before pool_mu; nothing takes zyg_mu while holding
 * pool_mu, so a spawn (slow) never stalls a checkout (fast).
 */
#include "sandbox/sg_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "obs/sg_log.h"
#include "sandbox/sg_cgroup.h"
#include "sandbox/sg_frame.h"
#include "sandbox/sg_worker_pool.h"
#include "sandbox/sg_zygote.h"

#define EXITS_KEPT 256
#define RECENT_MAX 1024
#define RECENT_S 600
#define READY_TIMEOUT_MS 2000
#define SPAWNS_PER_TICK 8
/* Lifetime CPU of a worker (RLIMIT_CPU) and the margin left for its last run. */
#define WORKER_CPU_S 600
#define LAST_RUN_CPU_S 61

struct exit_rec {
	pid_t pid;
	int status;
};

struct recent {
	char tenant[65];
	time_t last;
	size_t spawning; /* workers being made for a run of this tenant right now */
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
static void
drain_exits(struct sg_sandbox *sb)
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

static void
zygote_kill(struct sg_sandbox *sb, pid_t pid)
{
	char err[256];
	pthread_mutex_lock(&sb->zyg_mu);
	/* Refused when it exited already; its EXITED notice says how. */
	if (sg_zygote_kill(&sb->z, pid, err, sizeof(err)) < 0 && sb->z.broken)
		mark_broken(sb, err);
	drain_exits(sb);
	pthread_mutex_unlock(&sb->zyg_mu);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	int64_t end = mono_ms() + READY_TIMEOUT_MS;
	while (rc == SG_FRAME_MORE && mono_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t buf[256];
		if (poll(&p, 1, (int)(end - mono_ms())) <= 0)
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

/* A confined, READY worker of `tenant`, booked BUSY in the pool (idle for a prefork). */
static int
spawn_ready(struct sg_sandbox *sb, const char *tenant, bool idle, struct sg_sandbox_worker *w,
            char *err, size_t errlen)
{
	pid_t pid = 0;
	int fd = -1, rc;
	if (atomic_load(&sb->broken))
		return snprintf(err, errlen, "%s", sb->reason), -1;
	pthread_mutex_lock(&sb->zyg_mu);
	rc = sg_zygote_spawn(&sb->z, tenant, 0, &pid, &fd, err, errlen);
	if (rc < 0 && sb->z.broken)
		mark_broken(sb, err);
	drain_exits(sb);
	pthread_mutex_unlock(&sb->zyg_mu);
	if (rc < 0)
		return -1;
	if (await_ready(fd, err, errlen) < 0) {
		close(fd);
		zygote_kill(sb, pid);
		return -1;
	}
	pthread_mutex_lock(&sb->pool_mu);
	rc = sg_worker_pool_add(sb->pool, pid, fd, tenant);
	if (rc == 0 && idle)
		sg_worker_pool_checkin(sb->pool, pid, tenant, false);
	pthread_mutex_unlock(&sb->pool_mu);
	if (rc < 0) {
		close(fd);
		zygote_kill(sb, pid);
		return snprintf(err, errlen, "all %zu sandbox workers are in use", sb->max_workers),
		       -1;
	}
	w->pid = pid;
	w->fd = fd;
	snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
	return 0;
}

/* ---- handing out ---- */

/* With pool_mu held: the tenant's entry, made (or taken from the stalest) when missing. */
static struct recent *
note_recent(struct sg_sandbox *sb, const char *tenant, time_t now)
{
	size_t oldest = 0;
	for (size_t i = 0; i < sb->n_recent; i++) {
		if (strcmp(sb->recent[i].tenant, tenant) == 0) {
			sb->recent[i].last = now;
			return &sb->recent[i];
		}
		if (sb->recent[i].last < sb->recent[oldest].last)
			oldest = i;
	}
	size_t at = sb->n_recent < RECENT_MAX ? sb->n_recent++ : oldest;
	sb->recent[at] = (struct recent){.last = now};
	snprintf(sb->recent[at].tenant, sizeof(sb->recent[at].tenant), "%s", tenant);
	return &sb->recent[at];
}

/* With pool_mu held: the tenant's entry, or NULL. */
static struct recent *
find_recent(struct sg_sandbox *sb, const char *tenant)
{
	for (size_t i = 0; i < sb->n_recent; i++)
		if (strcmp(sb->recent[i].tenant, tenant) == 0)
			return &sb->recent[i];
	return NULL;
}

/* An idle worker must have nothing to say: data or EOF means it broke or died. */
static bool
quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

static void
wake_keeper(struct sg_sandbox *sb)
{
	uint64_t one = 1;
	(void)!write(sb->wake_fd, &one, sizeof(one));
}

/* With pool_mu held: 1 and *w for a healthy idle worker, 0 for none; *dead for one to kill. */
static int
take_idle(struct sg_sandbox *sb, const char *tenant, struct sg_sandbox_worker *w, pid_t *dead)
{
	const struct sg_pool_worker *pw = sg_worker_pool_checkout(sb->pool, tenant);
	if (pw == NULL)
		return 0;
	if (!quiet(pw->fd)) {
		*dead = pw->pid;
		sg_worker_pool_retire(sb->pool, pw->pid);
		return 0;
	}
	*w = (struct sg_sandbox_worker){.pid = pw->pid, .fd = pw->fd};
	snprintf(w->tenant, sizeof(w->tenant), "%s", tenant);
	return 1;
}

/*
 * With pool_mu held, when every worker slot is taken: the idle worker of
 * another tenant that has waited longest gives its place (its pid is
 * returned for killing), so tenants that ran once cannot lock out the rest.
 */
static pid_t
make_room(struct sg_sandbox *sb, const char *tenant)
{
	if (!sg_worker_pool_full(sb->pool))
		return 0;
	const struct sg_pool_worker *v = sg_worker_pool_idlest(sb->pool, tenant);
	pid_t pid = v ? v->pid : 0;
	if (pid != 0)
		sg_worker_pool_retire(sb->pool, pid);
	return pid;
}

/* With pool_mu held: a reason to say no, or GOT with *w, or -1: spawn one. */
static int
try_take(struct sg_sandbox *sb, const char *tenant, struct sg_sandbox_worker *w, pid_t *dead,
         bool *wake)
{
	size_t idle, busy;
	struct recent *rc = note_recent(sb, tenant, time(NULL));
	sg_worker_pool_count(sb->pool, tenant, &idle, &busy);
	/* Workers being made count too, or racing threads would all make one. */
	if (busy + rc->spawning >= sb->tenant_runs)
		return SG_SANDBOX_BUSY;
	if (take_idle(sb, tenant, w, dead)) {
		*wake = idle <= sb->prefork; /* it took a ready one: make the next */
		return SG_SANDBOX_GOT;
	}
	if (*dead == 0) {
		*dead = make_room(sb, tenant);
		rc->spawning++;
		return -1;
	}
	return -2; /* dropped a dead one: look again */
}

enum sg_sandbox_acquire
sg_sandbox_acquire(struct sg_sandbox *sb, const char *tenant, struct sg_sandbox_worker *w,
                   char *err, size_t errlen)
{
	int got;
	do {
		pid_t dead = 0;
		bool wake = false;
		pthread_mutex_lock(&sb->pool_mu);
		got = try_take(sb, tenant, w, &dead, &wake);
		pthread_mutex_unlock(&sb->pool_mu);
		if (dead != 0)
			zygote_kill(sb, dead);
		if (wake || got == -1)
			wake_keeper(sb);
	} while (got == -2);
	if (got != -1)
		return (enum sg_sandbox_acquire)got;
	int rc = spawn_ready(sb, tenant, false, w, err, errlen);
	pthread_mutex_lock(&sb->pool_mu);
	struct recent *r = find_recent(sb, tenant);
	if (r != NULL && r->spawning > 0)
		r->spawning--;
	pthread_mutex_unlock(&sb->pool_mu);
	return rc == 0 ? SG_SANDBOX_GOT : SG_SANDBOX_UNAVAILABLE;
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
	(void)sg_worker_pool_checkin(sb->pool, w->pid, w->tenant, true);
	pthread_mutex_unlock(&sb->pool_mu);
}

void
sg_sandbox_discard(struct sg_sandbox *sb, const struct sg_sandbox_worker *w)
{
	pthread_mutex_lock(&sb->pool_mu);
	sg_worker_pool_retire(sb->pool, w->pid);
	pthread_mutex_unlock(&sb->pool_mu);
	zygote_kill(sb, w->pid);
}

bool
sg_sandbox_oom_kills(struct sg_sandbox *sb, const char *tenant, uint64_t *n)
{
	const struct sg_cgroup_hierarchy *h = &sb->sys.ctrl[SG_CGROUP_MEMORY];
	char dir[SG_CGROUP_PATH_MAX + 96];
	if (!sb->cgroups || h->version == SG_CGROUP_NONE)
		return false;
	snprintf(dir, sizeof(dir), "%s/sandgate/%s", h->base, tenant);
	return h->version == SG_CGROUP_V2
	           ? sg_cgroup_read_u64(dir, "memory.events", "oom_kill", n)
	           : sg_cgroup_read_u64(dir, "memory.oom_control", "oom_kill", n);
}

/* ---- the keeper ---- */

struct want {
	char tenant[65];
	size_t n;
};

/*
 * With pool_mu held: forgets tenants not seen for RECENT_S, collecting
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
		while (n < max && (w = sg_worker_pool_checkout(sb->pool, r->tenant)) != NULL) {
			pids[n++] = w->pid;
			sg_worker_pool_retire(sb->pool, w->pid);
		}
		if (n == max)
			break; /* the rest next tick */
		*r = sb->recent[--sb->n_recent];
	}
	return n;
}

/* Tops up idle workers of recent tenants, a few spawns per tick; lets stale ones go. */
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
		size_t n = sg_worker_pool_shortfall(sb->pool, sb->recent[i].tenant, sb->prefork);
		if (n > 0) {
			snprintf(want[n_want].tenant, sizeof(want[n_want].tenant), "%s",
			         sb->recent[i].tenant);
			want[n_want++].n = n;
		}
	}
	pthread_mutex_unlock(&sb->pool_mu);
	for (size_t i = 0; i < n_stale; i++)
		zygote_kill(sb, stale[i]);
	for (size_t i = 0; i < n_want && !atomic_load(&sb->stopping); i++)
		for (size_t k = 0; k < want[i].n && spawns++ < SPAWNS_PER_TICK; k++) {
			struct sg_sandbox_worker w;
			char err[256];
			if (spawn_ready(sb, want[i].tenant, true, &w, err, sizeof(err)) < 0) {
				sg_log(SG_LOG_WARN, NULL, "sandbox: preforking for %s: %s",
				       want[i].tenant, err);
				return;
			}
		}
}

static void *
keeper_main(void *arg)
{
	struct sg_sandbox *sb = arg;
	while (!atomic_load(&sb->stopping)) {
		struct pollfd p[2] = {{.fd = sb->z.fd, .events = POLLIN},
		                      {.fd = sb->wake_fd, .events = POLLIN}};
		if (atomic_load(&sb->broken))
			p[0].fd = -1;
		if (poll(p, 2, 250) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			uint64_t v;
			(void)!read(sb->wake_fd, &v, sizeof(v));
		}
		pthread_mutex_lock(&sb->zyg_mu);
		drain_exits(sb);
		pthread_mutex_unlock(&sb->zyg_mu);
		if (!atomic_load(&sb->broken) && !atomic_load(&sb->stopping))
			prefork(sb);
	}
	return NULL;
}

int
sg_sandbox_run_keeper(struct sg_sandbox *sb, char *err, size_t errlen)
{
	if (pthread_create(&sb->keeper, NULL, keeper_main, sb) != 0)
		return snprintf(err, errlen, "cannot start the sandbox keeper thread"), -1;
	sb->keeper_on = true;
	return 0;
}

/* ---- start and stop ---- */

static void
ceilings_of(const struct sg_config *cfg, struct sg_cgroup_ceilings *c)
{
	memset(c, 0, sizeof(*c));
	c->cpu_period_us = 100000;
	c->cpu_quota_us = (uint64_t)cfg->sandbox_tenant_cpu_pct * 1000;
	c->memory_bytes = cfg->sandbox_tenant_memory;
	c->pids_max = (uint64_t)cfg->sandbox_tenant_pids;
	/* The config checked the device's form. */
	if (sscanf(cfg->sandbox_io_device, "%" SCNu32 ":%" SCNu32, &c->io_major, &c->io_minor) ==
	    2) {
		c->io_read_bps = cfg->sandbox_io_read_bps;
		c->io_write_bps = cfg->sandbox_io_write_bps;
	}
}

/*
 * Applies the ceilings to a throw-away group: in strict mode a ceiling
 * that cannot be applied stops the start here, with the controller named,
 * instead of failing every run later.  The report is what /readyz shows.
 */
static int
probe_cgroups(struct sg_sandbox *sb, const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_cgroup_ceilings ce;
	enum sg_cgroup_mode mode =
	    cfg->sandbox_cgroups == SG_CGROUPS_STRICT ? SG_CGROUP_STRICT : SG_CGROUP_BEST_EFFORT;
	char name[32], why[SG_CGROUP_WHY_MAX];
	ceilings_of(cfg, &ce);
	if (sg_cgroup_detect(NULL, &sb->sys, why, sizeof(why)) < 0)
		return snprintf(err, errlen, "sandbox: cannot find the cgroup hierarchies: %s",
		                why),
		       -1;
	snprintf(name, sizeof(name), "probe-%d", (int)getpid());
	struct sg_cgroup *g = sg_cgroup_create(&sb->sys, name, &ce, mode, why, sizeof(why));
	if (g == NULL)
		return snprintf(err, errlen, "sandbox: %s%s", why,
		                strstr(why, "best_effort")
		                    ? ""
		                    : " (or set sandbox.cgroups: best_effort to "
		                      "run without that ceiling)"),
		       -1;
	sb->probe = *sg_cgroup_report(g);
	snprintf(sb->probe.tenant, sizeof(sb->probe.tenant), "each tenant");
	(void)sg_cgroup_remove(g, why, sizeof(why));
	sg_cgroup_free(g);
	return 0;
}

/*
 * What this process maps now, which a worker starts with: worker_memory is
 * growth over it (libraries, and under AddressSanitizer terabytes of
 * reserved shadow, are not the template's to pay for).
 */
static rlim_t
mapped_now(void)
{
	char buf[64] = "";
	unsigned long long pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			sscanf(buf, "%llu", &pages);
		close(fd);
	}
	return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

#ifndef NDEBUG
/* A copy: the zygote wipes the environment's strings, which workers are copies of. */
static const char *
test_env(const char *name, int slot)
{
	static char copies[3][SG_FRAME_TEMPLATE_MAX + 1];
	const char *v = getenv(name);
	if (v == NULL)
		return NULL;
	snprintf(copies[slot], sizeof(copies[slot]), "%s", v);
	return copies[slot];
}
#endif

static void
worker_opts(const struct sg_config *cfg, struct sg_worker_opts *o)
{
	sg_worker_opts_init(o);
	o->max_runs = (uint32_t)cfg->sandbox_runs_per_worker;
	o->isolate.limits.address_space = mapped_now() + (rlim_t)cfg->sandbox_worker_memory;
	o->isolate.limits.cpu_seconds = WORKER_CPU_S;
	o->isolate.require_landlock = sg_isolate_landlock_abi() > 0;
#ifndef NDEBUG
	/* Debug builds only: sanitizer reports reach the log, and tests may break a worker. */
	o->isolate.keep_fds[o->isolate.n_keep_fds++] = 2;
	o->test_fault_seccomp = test_env("SANDGATE_TEST_SECCOMP_TEMPLATE", 0);
	o->test_fault_fork = test_env("SANDGATE_TEST_FORK_TEMPLATE", 1);
	o->test_fault_crash = test_env("SANDGATE_TEST_CRASH_TEMPLATE", 2);
#endif
}

/* What every READY worker enforces: each layer fails closed, so READY means all of them. */
static void
describe_isolation(struct sg_sandbox *sb, const struct sg_worker_opts *o)
{
	struct sg_isolate_report r = {0};
	r.landlock_abi = sg_isolate_landlock_abi();
	r.enforced = SG_ISOLATE_NAMESPACES | SG_ISOLATE_NO_NESTED_USERNS | SG_ISOLATE_EMPTY_ROOT |
	             SG_ISOLATE_HOSTNAME | SG_ISOLATE_FDS_CLOSED | SG_ISOLATE_NO_CAPS |
	             SG_ISOLATE_NO_NEW_PRIVS | SG_ISOLATE_RLIMITS | SG_ISOLATE_SECCOMP |
	             (r.landlock_abi > 0 ? SG_ISOLATE_LANDLOCK : 0u);
	r.landlock_handled_abi = r.landlock_abi;
	r.limits = o->isolate.limits;
	sg_isolate_report_format(&r, sb->isolation, sizeof(sb->isolation));
}

static struct sg_sandbox *
sandbox_new(const struct sg_config *cfg)
{
	struct sg_sandbox *sb = calloc(1, sizeof(*sb));
	if (sb == NULL)
		return NULL;
	sb->runs_per_worker = (uint32_t)cfg->sandbox_runs_per_worker;
	sb->prefork = (size_t)cfg->sandbox_prefork;
	sb->tenant_runs = (size_t)cfg->sandbox_tenant_runs;
	sb->max_workers = (size_t)cfg->sandbox_max_workers;
	sb->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sb->pool = sg_worker_pool_new(sb->max_workers, sb->runs_per_worker);
	pthread_mutex_init(&sb->pool_mu, NULL);
	pthread_mutex_init(&sb->zyg_mu, NULL);
	if (sb->wake_fd < 0 || sb->pool == NULL) {
		sg_sandbox_stop(sb);
		return NULL;
	}
	return sb;
}

struct sg_sandbox *
sg_sandbox_start(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_zygote_config zc;
	struct sg_sandbox *sb = sandbox_new(cfg);
	if (sb == NULL)
		return snprintf(err, errlen, "sandbox: out of memory"), NULL;
	sb->cgroups = cfg->sandbox_cgroups != SG_CGROUPS_OFF;
	if (sb->cgroups && probe_cgroups(sb, cfg, err, errlen) < 0) {
		sg_sandbox_stop(sb);
		return NULL;
	}
	sg_zygote_config_init(&zc);
	worker_opts(cfg, &zc.worker);
	describe_isolation(sb, &zc.worker);
	zc.cgroups = sb->cgroups;
	ceilings_of(cfg, &zc.ceilings);
	zc.cgroup_mode = sb->probe.mode;
	/* Room for workers killed to make room but not yet reaped by the zygote. */
	zc.max_workers = (uint32_t)cfg->sandbox_max_workers + SPAWNS_PER_TICK * 2;
	zc.reply_timeout_ms = 1000; /* a spawn takes milliseconds; the caller holds zyg_mu */
	zc.keep_stderr = true;
	if (sg_zygote_start(&zc, &sb->z, err, errlen) < 0) {
		sg_sandbox_stop(sb);
		return NULL;
	}
	return sb;
}

void
sg_sandbox_stop(struct sg_sandbox *sb)
{
	char err[256];
	if (sb == NULL)
		return;
	atomic_store(&sb->stopping, true);
	if (sb->keeper_on) {
		wake_keeper(sb);
		pthread_join(sb->keeper, NULL);
	}
	if (sg_zygote_stop(&sb->z, err, sizeof(err)) < 0)
		sg_log(SG_LOG_WARN, NULL, "sandbox: %s", err);
	sg_worker_pool_free(sb->pool);
	if (sb->wake_fd >= 0)
		close(sb->wake_fd);
	pthread_mutex_destroy(&sb->pool_mu);
	pthread_mutex_destroy(&sb->zyg_mu);
	free(sb);
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
