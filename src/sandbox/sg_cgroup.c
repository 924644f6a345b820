/*
 * cgroups: the lifecycle of a tenant's group, <base>/<group>/<tenant> in
 * each hierarchy sg_cgroup_detect() found.  The version backends write the
 * ceilings; this file makes the directories, attaches, kills, reads usage,
 * removes, and keeps the report of what is enforced.
 */
#include "sandbox/sg_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/sg_name.h"

#define GROUP_PATH_MAX (SG_CGROUP_PATH_MAX + 96) /* base + /sandgate/ + tenant + file */

/* Controller names as cgroup v2 spells them (v1 says "blkio" for io). */
static const char *const v2_names[SG_CGROUP_NCTRL] = {"cpu", "memory", "pids", "io"};

const char *
sg_cgroup_ctrl_name(enum sg_cgroup_ctrl c)
{
	return c < SG_CGROUP_NCTRL ? v2_names[c] : "?";
}

const char *
sg_cgroup_version_name(enum sg_cgroup_version v)
{
	return v == SG_CGROUP_V1 ? "v1" : v == SG_CGROUP_V2 ? "v2" : "none";
}

const char *
sg_cgroup_mode_name(enum sg_cgroup_mode m)
{
	return m == SG_CGROUP_BEST_EFFORT ? "best_effort" : "strict";
}

/* ---- the group ---- */

struct group_dir {
	char path[GROUP_PATH_MAX];
	enum sg_cgroup_version version;
	bool made; /* created by this create call: removed again if it fails */
};

struct sg_cgroup {
	struct group_dir dirs[SG_CGROUP_NCTRL + 1]; /* distinct directories */
	size_t ndirs;
	int ctrl_dir[SG_CGROUP_NCTRL]; /* index into dirs; -1 when none */
	int cpuacct_dir;               /* v1 usage; -1 when none */
	struct sg_cgroup_report report;
};

/* Mistakes in the configuration itself fail in either mode. */
static int
check_ceilings(struct sg_cgroup_ceilings *ce, char *err, size_t errlen)
{
	if (ce->cpu_period_us == 0)
		ce->cpu_period_us = 100000;
	if (ce->cpu_quota_us != 0 && ce->cpu_quota_us < 1000) {
		snprintf(err, errlen,
		         "cpu ceiling: quota_us %" PRIu64 " is below the kernel's minimum of 1000",
		         ce->cpu_quota_us);
		return -1;
	}
	if (ce->cpu_quota_us != 0 && (ce->cpu_period_us < 1000 || ce->cpu_period_us > 1000000)) {
		snprintf(err, errlen,
		         "cpu ceiling: period_us %" PRIu64 " must be from 1000 to 1000000",
		         ce->cpu_period_us);
		return -1;
	}
	if ((ce->io_read_bps || ce->io_write_bps) && ce->io_major == 0 && ce->io_minor == 0) {
		snprintf(err, errlen,
		         "io ceiling: name the block device it applies to (major:minor)");
		return -1;
	}
	return 0;
}

static void
human_bytes(char *out, size_t n, uint64_t b)
{
	static const char *const units[] = {"GiB", "MiB", "KiB"};
	for (int i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));
		if (b >= unit && b % unit == 0) {
			snprintf(out, n, "%" PRIu64 " %s", b / unit, units[i]);
			return;
		}
	}
	snprintf(out, n, "%" PRIu64 " bytes", b);
}

/* Which ceilings were asked for, in the words the errors and the report use. */
static void
describe(const struct sg_cgroup_ceilings *ce, struct sg_cgroup_report *r)
{
	struct sg_cgroup_enforced *e = r->ctrl;
	e[SG_CGROUP_CPU].configured = ce->cpu_quota_us != 0;
	snprintf(e[SG_CGROUP_CPU].ceiling, sizeof(e->ceiling), "%" PRIu64 " us per %" PRIu64 " us",
	         ce->cpu_quota_us, ce->cpu_period_us);
	e[SG_CGROUP_MEMORY].configured = ce->memory_bytes != 0;
	human_bytes(e[SG_CGROUP_MEMORY].ceiling, sizeof(e->ceiling), ce->memory_bytes);
	e[SG_CGROUP_PIDS].configured = ce->pids_max != 0;
	snprintf(e[SG_CGROUP_PIDS].ceiling, sizeof(e->ceiling), "%" PRIu64 " tasks", ce->pids_max);
	e[SG_CGROUP_IO].configured = ce->io_read_bps != 0 || ce->io_write_bps != 0;
	snprintf(e[SG_CGROUP_IO].ceiling, sizeof(e->ceiling),
	         "%" PRIu32 ":%" PRIu32 " read %" PRIu64 " B/s, write %" PRIu64 " B/s",
	         ce->io_major, ce->io_minor, ce->io_read_bps, ce->io_write_bps);
	for (int c = 0; c < SG_CGROUP_NCTRL; c++)
		if (!e[c].configured)
			e[c].ceiling[0] = '\0';
}

static void
not_enforced(struct sg_cgroup *g, enum sg_cgroup_ctrl c, const char *why)
{
	struct sg_cgroup_enforced *e = &g->report.ctrl[c];
	if (e->configured && e->why[0] == '\0')
		snprintf(e->why, sizeof(e->why), "%s", why);
}

/*
 * Makes <base>/<group>/<tenant>; for v2 first gives <group>/ the
 * controllers in `names` so the tenant's group gets their files.  Removing
 * the last tenant may remove <group>/ between our two mkdirs: the ENOENT
 * that follows is retried.
 */
static int
make_group(struct group_dir *d, const char *base, const char *group, const char *tenant,
           const char *const *names, size_t n, char *why, size_t whylen)
{
	char parent[GROUP_PATH_MAX];
	bool parent_made = false;
	snprintf(parent, sizeof(parent), "%s/%s", base, group);
	snprintf(d->path, sizeof(d->path), "%s/%s/%s", base, group, tenant);
	for (int attempt = 0; attempt < 3; attempt++) {
		if (sg_cgroup_mkdir(parent, &parent_made, why, whylen) == -1)
			return -1;
		if (n > 0 && sg_cgroup_v2_enable(parent, names, n, why, whylen) == -1)
			break;
		if (sg_cgroup_mkdir(d->path, &d->made, why, whylen) == 0)
			return 0;
		if (errno != ENOENT)
			break;
	}
	if (parent_made)
		rmdir(parent); /* ours and still empty: leave no trace of a failed call */
	return -1;
}

static int
add_v1_dir(struct sg_cgroup *g, const char *base, const char *group, const char *tenant,
           char *why, size_t whylen)
{
	struct group_dir *d = &g->dirs[g->ndirs];
	char path[GROUP_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/%s", base, group, tenant);
	for (size_t i = 0; i < g->ndirs; i++)
		if (strcmp(g->dirs[i].path, path) == 0)
			return (int)i; /* co-mounted controllers, cpu,cpuacct */
	d->version = SG_CGROUP_V1;
	if (make_group(d, base, group, tenant, NULL, 0, why, whylen) == -1)
		return -1;
	return (int)g->ndirs++;
}

/*
 * All v2 controllers share one directory.  Each is enabled at the base and
 * at <group>/; when the batch is refused, each is tried alone so the
 * failure lands on the controller at fault and the others still work.
 */
static void
setup_v2(struct sg_cgroup *g, const struct sg_cgroup_system *sys, const char *tenant)
{
	const char *names[SG_CGROUP_NCTRL], *base = NULL;
	enum sg_cgroup_ctrl which[SG_CGROUP_NCTRL];
	char why[SG_CGROUP_WHY_MAX];
	size_t n = 0;
	for (enum sg_cgroup_ctrl c = 0; c < SG_CGROUP_NCTRL; c++)
		if (sys->ctrl[c].version == SG_CGROUP_V2) {
			base = sys->ctrl[c].base;
			which[n] = c;
			names[n++] = sg_cgroup_ctrl_name(c);
		}
	if (n == 0)
		return;
	if (sg_cgroup_v2_enable(base, names, n, why, sizeof(why)) == -1) {
		size_t kept = 0;
		for (size_t i = 0; i < n; i++)
			if (sg_cgroup_v2_enable(base, &names[i], 1, why, sizeof(why)) == -1)
				not_enforced(g, which[i], why);
			else
				which[kept] = which[i], names[kept++] = names[i];
		n = kept;
	}
	struct group_dir *d = &g->dirs[g->ndirs];
	d->version = SG_CGROUP_V2;
	if (n > 0 && make_group(d, base, sys->group, tenant, names, n, why, sizeof(why)) == -1) {
		for (size_t i = 0; i < n; i++)
			not_enforced(g, which[i], why);
		return;
	}
	for (size_t i = 0; i < n; i++)
		g->ctrl_dir[which[i]] = (int)g->ndirs;
	g->ndirs += n > 0;
}

static void
make_dirs(struct sg_cgroup *g, const struct sg_cgroup_system *sys, const char *tenant)
{
	char why[SG_CGROUP_WHY_MAX];
	setup_v2(g, sys, tenant);
	for (enum sg_cgroup_ctrl c = 0; c < SG_CGROUP_NCTRL; c++) {
		const struct sg_cgroup_hierarchy *h = &sys->ctrl[c];
		if (h->version == SG_CGROUP_NONE)
			not_enforced(g, c, h->why);
		if (h->version != SG_CGROUP_V1)
			continue;
		g->ctrl_dir[c] = add_v1_dir(g, h->base, sys->group, tenant, why, sizeof(why));
		if (g->ctrl_dir[c] == -1)
			not_enforced(g, c, why);
	}
	/* Usage only: a failure here costs a statistic, not a ceiling. */
	if (sys->cpuacct_base[0] != '\0')
		g->cpuacct_dir = add_v1_dir(g, sys->cpuacct_base, sys->group, tenant, why, sizeof(why));
}

static void
apply_all(struct sg_cgroup *g, const struct sg_cgroup_ceilings *ce)
{
	char why[SG_CGROUP_WHY_MAX];
	for (enum sg_cgroup_ctrl c = 0; c < SG_CGROUP_NCTRL; c++) {
		struct sg_cgroup_enforced *e = &g->report.ctrl[c];
		if (!e->configured || g->ctrl_dir[c] == -1)
			continue;
		const struct group_dir *d = &g->dirs[g->ctrl_dir[c]];
		int rc = d->version == SG_CGROUP_V2
		             ? sg_cgroup_v2_apply(c, d->path, ce, why, sizeof(why))
		             : sg_cgroup_v1_apply(c, d->path, ce, why, sizeof(why));
		if (rc == -1) {
			not_enforced(g, c, why);
			continue;
		}
		e->enforced = true;
		e->version = d->version;
	}
}

/* Undoes a failed strict create: only what this call made, and only if empty. */
static void
remove_made(const struct sg_cgroup *g)
{
	for (size_t i = 0; i < g->ndirs; i++)
		if (g->dirs[i].made && rmdir(g->dirs[i].path) == 0)
			sg_cgroup_rmdir_parent(g->dirs[i].path);
}

static bool
first_failure(const struct sg_cgroup *g, char *err, size_t errlen)
{
	for (int c = 0; c < SG_CGROUP_NCTRL; c++) {
		const struct sg_cgroup_enforced *e = &g->report.ctrl[c];
		if (e->configured && !e->enforced) {
			snprintf(err, errlen,
			         "%s ceiling %s cannot be applied: %s "
			         "or set sandbox.cgroups: best_effort",
			         v2_names[c], e->ceiling, e->why);
			return true;
		}
	}
	return false;
}

struct sg_cgroup *
sg_cgroup_create(const struct sg_cgroup_system *sys, const char *tenant,
                 const struct sg_cgroup_ceilings *ceilings, enum sg_cgroup_mode mode, char *err,
                 size_t errlen)
{
	struct sg_cgroup_ceilings ce = *ceilings;
	if (!sg_name_valid(tenant)) {
		char why[200];
		snprintf(err, errlen, "tenant \"%.64s\" cannot name a cgroup: %s", tenant,
		         sg_name_why(tenant, why, sizeof(why)));
		return NULL;
	}
	if (check_ceilings(&ce, err, errlen) == -1)
		return NULL;
	struct sg_cgroup *g = calloc(1, sizeof(*g));
	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int c = 0; c < SG_CGROUP_NCTRL; c++)
		g->ctrl_dir[c] = -1;
	g->cpuacct_dir = -1;
	snprintf(g->report.tenant, sizeof(g->report.tenant), "%s", tenant);
	g->report.mode = mode;
	describe(&ce, &g->report);
	make_dirs(g, sys, tenant);
	apply_all(g, &ce);
	if (mode == SG_CGROUP_STRICT && first_failure(g, err, errlen)) {
		remove_made(g);
		free(g);
		return NULL;
	}
	return g;
}

void
sg_cgroup_free(struct sg_cgroup *g)
{
	free(g);
}

const struct sg_cgroup_report *
sg_cgroup_report(const struct sg_cgroup *g)
{
	return &g->report;
}

const char *
sg_cgroup_path(const struct sg_cgroup *g, enum sg_cgroup_ctrl c)
{
	return c < SG_CGROUP_NCTRL && g->ctrl_dir[c] >= 0 ? g->dirs[g->ctrl_dir[c]].path : "";
}

json_t *
sg_cgroup_report_json(const struct sg_cgroup_report *r)
{
	json_t *ceilings = json_object();
	for (int c = 0; ceilings != NULL && c < SG_CGROUP_NCTRL; c++) {
		const struct sg_cgroup_enforced *e = &r->ctrl[c];
		json_t *o = !e->configured ? json_pack("{s:b}", "configured", 0)
		            : e->enforced
		                ? json_pack("{s:b, s:b, s:s, s:s}", "configured", 1, "enforced", 1,
		                            "ceiling", e->ceiling, "version",
		                            sg_cgroup_version_name(e->version))
		                : json_pack("{s:b, s:b, s:s, s:s}", "configured", 1, "enforced", 0,
		                            "ceiling", e->ceiling, "reason", e->why);
		if (json_object_set_new(ceilings, v2_names[c], o) != 0) {
			json_decref(ceilings);
			ceilings = NULL;
		}
	}
	if (ceilings == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:o}", "tenant", r->tenant, "mode",
	                 sg_cgroup_mode_name(r->mode), "ceilings", ceilings);
}

/* ---- processes in the group ---- */

int
sg_cgroup_attach(const struct sg_cgroup *g, pid_t pid, char *err, size_t errlen)
{
	char value[24], why[SG_CGROUP_WHY_MAX];
	snprintf(value, sizeof(value), "%d", (int)pid);
	for (size_t i = 0; i < g->ndirs; i++) {
		const struct group_dir *d = &g->dirs[i];
		/* Old v1 kernels lack cgroup.procs; tasks moves one thread, the main one. */
		const char *file =
		    d->version == SG_CGROUP_V1 && !sg_cgroup_has(d->path, "cgroup.procs")
		        ? "tasks"
		        : "cgroup.procs";
		if (sg_cgroup_write(d->path, file, value, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "attaching pid %d: %s", (int)pid, why);
			return -1;
		}
	}
	return 0;
}

int
sg_cgroup_kill(const struct sg_cgroup *g, char *err, size_t errlen)
{
	const char *dirs[SG_CGROUP_NCTRL + 1];
	char why[SG_CGROUP_WHY_MAX];
	for (size_t i = 0; i < g->ndirs; i++)
		dirs[i] = g->dirs[i].path;
	/* Nothing is killed at all when we are in the group ourselves. */
	if (sg_cgroup_kill_listed(dirs, g->ndirs, err, errlen, true) == -1)
		return -1;
	/*
	 * cgroup.kill also catches tasks forking meanwhile.  The listing rounds
	 * run anyway: they serve v1 and older v2 kernels, and wait until the
	 * kernel has emptied the group.
	 */
	for (size_t i = 0; i < g->ndirs; i++)
		if (g->dirs[i].version == SG_CGROUP_V2 && sg_cgroup_has(dirs[i], "cgroup.kill"))
			sg_cgroup_write(dirs[i], "cgroup.kill", "1", why, sizeof(why));
	return sg_cgroup_kill_listed(dirs, g->ndirs, err, errlen, false);
}

/* The directory of dirs[index], or NULL for index -1. */
static const char *
dir_of(const struct sg_cgroup *g, int index)
{
	return index >= 0 ? g->dirs[index].path : NULL;
}

void
sg_cgroup_stats(const struct sg_cgroup *g, struct sg_cgroup_stats *st)
{
	int mem = g->ctrl_dir[SG_CGROUP_MEMORY], cpu = g->ctrl_dir[SG_CGROUP_CPU];
	const char *v2 = NULL;
	uint64_t ns;
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < g->ndirs; i++)
		v2 = g->dirs[i].version == SG_CGROUP_V2 ? g->dirs[i].path : v2;
	if (mem >= 0)
		st->has_memory_peak = sg_cgroup_read_u64(g->dirs[mem].path,
		                                         g->dirs[mem].version == SG_CGROUP_V2
		                                             ? "memory.peak"
		                                             : "memory.max_usage_in_bytes",
		                                         NULL, &st->memory_peak_bytes);
	st->has_pids = sg_cgroup_read_u64(dir_of(g, g->ctrl_dir[SG_CGROUP_PIDS]), "pids.current",
	                                  NULL, &st->pids_current);
	/* v2 keeps CPU time in the core cpu.stat; v1 in cpuacct, maybe co-mounted with cpu. */
	if (v2 != NULL) {
		st->has_cpu_usage =
		    sg_cgroup_read_u64(v2, "cpu.stat", "usage_usec", &st->cpu_usage_us);
	} else if (sg_cgroup_read_u64(dir_of(g, g->cpuacct_dir), "cpuacct.usage", NULL, &ns) ||
	           (cpu >= 0 && g->dirs[cpu].version == SG_CGROUP_V1 &&
	            sg_cgroup_read_u64(g->dirs[cpu].path, "cpuacct.usage", NULL, &ns))) {
		st->has_cpu_usage = true;
		st->cpu_usage_us = ns / 1000;
	}
}

int
sg_cgroup_remove(const struct sg_cgroup *g, char *err, size_t errlen)
{
	for (size_t i = 0; i < g->ndirs; i++)
		if (sg_cgroup_rmdir(g->dirs[i].path, err, errlen) == -1)
			return -1;
	for (size_t i = 0; i < g->ndirs; i++)
		sg_cgroup_rmdir_parent(g->dirs[i].path);
	return 0;
}

/* The inode of this process's pid namespace: a pid means something only within it. */
static unsigned long long
pid_namespace(void)
{
	char link[64];
	ssize_t n = readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
	unsigned long long ns = 0;
	if (n > 0) {
		link[n] = '\0';
		(void)sscanf(link, "pid:[%llu]", &ns);
	}
	return ns;
}

/* Our namespace's pid named by "sandgate-<ns>-<pid>", or 0 when not one of those. */
static long
group_pid(const char *name, unsigned long long ns)
{
	unsigned long long their_ns;
	long pid;
	int used = 0;
	if (sscanf(name, "sandgate-%llu-%ld%n", &their_ns, &pid, &used) != 2 ||
	    name[used] != '\0' || their_ns != ns || pid <= 0 || pid > INT32_MAX)
		return 0;
	return pid;
}

/* Removes <base>/sandgate-<ns>-<pid>/ and its (empty) tenant groups when that pid is gone. */
static void
sweep_dead(const char *base, unsigned long long ns)
{
	DIR *dir = opendir(base);
	struct dirent *e;
	while (dir != NULL && (e = readdir(dir)) != NULL) {
		long pid = group_pid(e->d_name, ns);
		if (pid == 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char group[GROUP_PATH_MAX];
		snprintf(group, sizeof(group), "%s/%s", base, e->d_name);
		DIR *gd = opendir(group);
		struct dirent *t;
		while (gd != NULL && (t = readdir(gd)) != NULL) {
			char tenant[GROUP_PATH_MAX + 64];
			if (t->d_type == DT_DIR && t->d_name[0] != '.' &&
			    snprintf(tenant, sizeof(tenant), "%s/%s", group, t->d_name) <
			        (int)sizeof(tenant))
				rmdir(tenant); /* EBUSY while a process is left in it: kept */
		}
		if (gd != NULL)
			closedir(gd);
		rmdir(group);
	}
	if (dir != NULL)
		closedir(dir);
}

void
sg_cgroup_own(struct sg_cgroup_system *sys)
{
	unsigned long long ns = pid_namespace();
	for (enum sg_cgroup_ctrl c = 0; c < SG_CGROUP_NCTRL; c++)
		if (sys->ctrl[c].version != SG_CGROUP_NONE)
			sweep_dead(sys->ctrl[c].base, ns);
	if (sys->cpuacct_base[0] != '\0')
		sweep_dead(sys->cpuacct_base, ns);
	snprintf(sys->group, sizeof(sys->group), "sandgate-%llu-%d", ns, (int)getpid());
}
