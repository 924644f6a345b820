/*
 * sg_cgroup: per-tenant resource ceilings for sandbox workers.
 *
 * Each controller (cpu, memory, pids, io) is found on its own: on cgroup v2
 * when the unified hierarchy offers it to this process's cgroup, otherwise
 * on a cgroup v1 hierarchy of that controller.  Groups are made under the
 * process's own cgroup in each hierarchy, as <base>/<group>/<tenant>, so
 * the gateway stays inside whatever was delegated to it.
 *
 * In strict mode (the default) a configured ceiling that cannot be applied
 * is an error naming the controller and the cause.  In best-effort mode the
 * group is made with whatever can be applied, and the report says which
 * ceilings are in force.
 */
#ifndef SG_CGROUP_H
#define SG_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/sg_name.h"

#define SG_CGROUP_PATH_MAX 1024
/* A tenant names its cgroup directory, so tenants follow the naming rule. */
#define SG_CGROUP_TENANT_MAX SG_NAME_MAX
#define SG_CGROUP_WHY_MAX 2048 /* room for a full path and what to do */

enum sg_cgroup_ctrl {
	SG_CGROUP_CPU,
	SG_CGROUP_MEMORY,
	SG_CGROUP_PIDS,
	SG_CGROUP_IO, /* "io" on v2, "blkio" on v1 */
	SG_CGROUP_NCTRL,
};

enum sg_cgroup_version { SG_CGROUP_NONE, SG_CGROUP_V1, SG_CGROUP_V2 };

enum sg_cgroup_mode { SG_CGROUP_STRICT, SG_CGROUP_BEST_EFFORT };

/* Zero in a field means "no ceiling" for it. */
struct sg_cgroup_ceilings {
	uint64_t cpu_quota_us;  /* CPU time per period; at least 1000 */
	uint64_t cpu_period_us; /* 1000..1000000; 0 means 100000 */
	uint64_t memory_bytes;  /* swap is held to zero beside it where the kernel allows */
	uint64_t pids_max;      /* tasks (threads count) in the group */
	uint32_t io_major;      /* the block device the io ceilings apply to */
	uint32_t io_minor;
	uint64_t io_read_bps;
	uint64_t io_write_bps;
};

/* Where to look.  Tests point all three at a fake tree. */
struct sg_cgroup_where {
	const char *root;        /* prefixed to every cgroupfs path; NULL or "" for none */
	const char *mountinfo;   /* NULL: /proc/self/mountinfo */
	const char *self_cgroup; /* NULL: /proc/self/cgroup */
};

struct sg_cgroup_hierarchy {
	enum sg_cgroup_version version;
	char base[SG_CGROUP_PATH_MAX]; /* this process's cgroup there, root prefix included */
	char why[SG_CGROUP_WHY_MAX];   /* version NONE: why, and what to do about it */
};

#define SG_CGROUP_GROUP_MAX 48

struct sg_cgroup_system {
	struct sg_cgroup_hierarchy ctrl[SG_CGROUP_NCTRL];
	char cpuacct_base[SG_CGROUP_PATH_MAX]; /* v1 cpuacct, for CPU usage; "" when none */
	/*
	 * The directory under each base that holds the tenant groups:
	 * "sandgate" from sg_cgroup_detect; a gateway makes it its own
	 * (sg_cgroup_own), so two gateways never share or remove each
	 * other's groups.
	 */
	char group[SG_CGROUP_GROUP_MAX];
};

/*
 * Finds each controller's hierarchy.  A controller that is missing is not
 * an error (its `why` says what is missing); -1 means the mount table or
 * the process's cgroup file could not be read, with `err` set.
 */
int sg_cgroup_detect(const struct sg_cgroup_where *w, struct sg_cgroup_system *sys, char *err,
                     size_t errlen);

/*
 * Makes `sys` this process's: its tenant groups go under
 * <base>/sandgate-<pid namespace>-<pid>/.  Groups a gateway that died
 * left behind (an empty such directory of a pid in our namespace that is
 * gone) are removed first; another namespace's pids cannot be judged, so
 * its directories are left alone.  Call it
 * in the gateway before the zygote is forked, which inherits it.
 */
void sg_cgroup_own(struct sg_cgroup_system *sys);
/* {"cpu": {"version": "v1", "base": "..."}, "memory": {"version": "none", "reason": "..."}, ...} */
json_t *sg_cgroup_system_json(const struct sg_cgroup_system *sys);

const char *sg_cgroup_ctrl_name(enum sg_cgroup_ctrl c);
const char *sg_cgroup_version_name(enum sg_cgroup_version v);
const char *sg_cgroup_mode_name(enum sg_cgroup_mode m);

/* What one tenant's group enforces, per controller. */
struct sg_cgroup_enforced {
	bool configured;                /* a ceiling was asked for */
	bool enforced;                  /* and it is in force */
	enum sg_cgroup_version version; /* the hierarchy holding it; NONE when not enforced */
	char ceiling[96];               /* for people: "64 MiB", "50000 us per 100000 us" */
	char why[SG_CGROUP_WHY_MAX];    /* configured but not enforced: why */
};

struct sg_cgroup_report {
	char tenant[SG_CGROUP_TENANT_MAX + 1];
	enum sg_cgroup_mode mode;
	struct sg_cgroup_enforced ctrl[SG_CGROUP_NCTRL];
};

struct sg_cgroup;

/*
 * Makes (or reuses) <base>/<group>/<tenant> in every hierarchy found and
 * writes the ceilings.  Tenant names are 1..64 of [A-Za-z0-9_-].  Groups
 * are also made where no ceiling is set, so that usage can be read and all
 * processes killed; failing to make one of those is not an error.  Strict
 * mode: any configured ceiling not applied fails the whole call (groups
 * made by it are removed again) with one message naming the controller,
 * the cause and the fix.  Bad ceilings (a CPU quota under 1000 us) fail in
 * either mode.  Free with sg_cgroup_free; the groups outlive that.
 */
struct sg_cgroup *sg_cgroup_create(const struct sg_cgroup_system *sys, const char *tenant,
                                   const struct sg_cgroup_ceilings *ceilings,
                                   enum sg_cgroup_mode mode, char *err, size_t errlen);
void sg_cgroup_free(struct sg_cgroup *g);

/* Valid until sg_cgroup_free. */
const struct sg_cgroup_report *sg_cgroup_report(const struct sg_cgroup *g);
json_t *sg_cgroup_report_json(const struct sg_cgroup_report *r);
/* The group's directory for a controller, "" when it has none there. */
const char *sg_cgroup_path(const struct sg_cgroup *g, enum sg_cgroup_ctrl c);

/* Moves process `pid` (all its threads) into every one of the group's cgroups. */
int sg_cgroup_attach(const struct sg_cgroup *g, pid_t pid, char *err, size_t errlen);

/*
 * SIGKILLs every process in the group (v2: cgroup.kill when the kernel has
 * it; otherwise rounds of reading cgroup.procs and killing, so children
 * forked meanwhile die too) and waits up to a second for the group to be
 * empty.  Zombies do not count: the caller reaps its children afterwards.
 * Refuses, without killing anything, if the calling process is in the group.
 */
int sg_cgroup_kill(const struct sg_cgroup *g, char *err, size_t errlen);

struct sg_cgroup_stats {
	bool has_memory_peak; /* v2 memory.peak, v1 memory.max_usage_in_bytes */
	uint64_t memory_peak_bytes;
	bool has_cpu_usage; /* v2 cpu.stat usage_usec, v1 cpuacct.usage */
	uint64_t cpu_usage_us;
	bool has_pids; /* pids.current */
	uint64_t pids_current;
};

/* Fills what the kernel offers; what it does not is marked absent. */
void sg_cgroup_stats(const struct sg_cgroup *g, struct sg_cgroup_stats *st);

/*
 * Removes the group's directories (waiting up to a second for exiting
 * processes), then the <group> parent when no tenant is left in it.
 * Fails while live processes remain: kill first.
 */
int sg_cgroup_remove(const struct sg_cgroup *g, char *err, size_t errlen);

/*
 * ---- For the version backends (sg_cgroup_v1.c, sg_cgroup_v2.c) only ----
 *
 * Each writes one controller's ceiling into `dir`; on failure returns -1
 * with `why` saying what failed and what to do, in the words the strict
 * error and the report use.
 */
int sg_cgroup_v1_apply(enum sg_cgroup_ctrl c, const char *dir, const struct sg_cgroup_ceilings *ce,
                       char *why, size_t whylen);
int sg_cgroup_v2_apply(enum sg_cgroup_ctrl c, const char *dir, const struct sg_cgroup_ceilings *ce,
                       char *why, size_t whylen);
/* Turns on the named v2 controllers for dir's children (cgroup.subtree_control). */
int sg_cgroup_v2_enable(const char *dir, const char *const *names, size_t n, char *why,
                        size_t whylen);

/* ---- cgroupfs by path (sg_cgroup_fs.c), shared by the files above ---- */

/* One value into dir/file, in a single write as cgroupfs wants.  The file must exist. */
int sg_cgroup_write(const char *dir, const char *file, const char *value, char *why, size_t whylen);
/* dir/file into buf, NUL-terminated; -1 when it cannot be read. */
int sg_cgroup_read(const char *dir, const char *file, char *buf, size_t n);
/* The number in dir/file, or after "key " on one of its lines; false when absent. */
bool sg_cgroup_read_u64(const char *dir, const char *file, const char *key, uint64_t *out);
bool sg_cgroup_has(const char *dir, const char *file);
/* True when space-separated `list` (as cgroup.controllers prints it) names `name`. */
bool sg_cgroup_listed(const char *list, const char *name);
/* mkdir; an existing directory is fine.  *made says whether this call made it. */
int sg_cgroup_mkdir(const char *path, bool *made, char *why, size_t whylen);
/* rmdir, waiting up to a second while killed tasks leave; a missing one is fine. */
int sg_cgroup_rmdir(const char *path, char *err, size_t errlen);
/* rmdir of path's parent, when empty; errors ignored (others may use it). */
void sg_cgroup_rmdir_parent(const char *path);
/*
 * SIGKILLs everything listed in each dir's cgroup.procs, in rounds, until
 * all are empty (a second at most).  Refuses if the caller is listed.  With
 * check_only, only that refusal is checked.
 */
int sg_cgroup_kill_listed(const char *const *dirs, size_t n, char *err, size_t errlen,
                          bool check_only);

#endif
