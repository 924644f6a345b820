/*
 * Starting the sandbox (checking the tenant ceilings, forking the zygote)
 * and stopping it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "obs/sg_log.h"
#include "sandbox/sg_frame.h"
#include "sandbox/sg_sandbox_int.h"

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
	/* Before the zygote is forked, which inherits it: this gateway's groups are its own. */
	sg_cgroup_own(&sb->sys);
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

#ifdef SG_TEST_HOOKS
/* A copy: the zygote wipes the environment's strings, which workers are copies of. */
static const char *
test_env(const char *name, int slot)
{
	static char copies[4][SG_FRAME_TEMPLATE_MAX + 1];
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
#ifdef SG_SANITIZED
	/* A sanitizer's report from a worker reaches the gateway's log. */
	o->isolate.keep_fds[o->isolate.n_keep_fds++] = 2;
#endif
#ifdef SG_TEST_HOOKS
	/* Built with -Dtest_hooks=true only: the system tests break a worker on purpose. */
	o->test_fault_seccomp = test_env("SANDGATE_TEST_SECCOMP_TEMPLATE", 0);
	o->test_fault_fork = test_env("SANDGATE_TEST_FORK_TEMPLATE", 1);
	o->test_fault_crash = test_env("SANDGATE_TEST_CRASH_TEMPLATE", 2);
	o->test_fault_garbage = test_env("SANDGATE_TEST_GARBAGE_TEMPLATE", 3);
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
	sb->waits_tail = &sb->waits;
	sb->pool = sg_worker_pool_new(sb->max_workers, sb->runs_per_worker);
	sb->doomed = calloc(sb->max_workers, sizeof(*sb->doomed));
	pthread_mutex_init(&sb->pool_mu, NULL);
	pthread_mutex_init(&sb->zyg_mu, NULL);
	if (sb->wake_fd < 0 || sb->pool == NULL || sb->doomed == NULL) {
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
	zc.cgroup_group = sb->sys.group; /* this gateway's own, which the gateway reads too */
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
		sg_sandbox_wake_keeper(sb);
		pthread_join(sb->keeper, NULL);
	}
	if (sg_zygote_stop(&sb->z, err, sizeof(err)) < 0)
		sg_log(SG_LOG_WARN, NULL, "sandbox: %s", err);
	sg_worker_pool_free(sb->pool);
	free(sb->doomed);
	if (sb->wake_fd >= 0)
		close(sb->wake_fd);
	pthread_mutex_destroy(&sb->pool_mu);
	pthread_mutex_destroy(&sb->zyg_mu);
	free(sb);
}
