/*
 * cgroups, twice over:
 *  - against fake cgroupfs trees in a temporary directory (v2, v1, hybrid
 *    mounts, missing controllers), checking every file written and every
 *    word of the errors and the report;
 *  - for real on this machine's cgroup v1 hierarchies: a memory ceiling
 *    that OOM-kills, a pids ceiling that stops fork(), a CPU quota that
 *    holds, and kill-all.  Groups are named after the test's pid so
 *    parallel runs never meet, and teardown removes them even when an
 *    assertion failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/sg_testdir.h"
#include "sandbox/sg_cgroup.h"

#define MiB (1024ull * 1024ull)

/* Open descriptors, so setup and teardown can prove none leaked. */
static int
open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- fake trees ---- */

struct fake {
	int fds;
	char dir[128];
	struct sg_cgroup_where where;
	char mountinfo[256], self[256];
};

static void
mkdir_p(const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", buf, strerror(errno));
}

/* Writes `text` to <fake>/<rel>, making directories on the way. */
static void
put(const struct fake *f, const char *rel, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdir_p(path);
	*slash = '/';
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* The contents of <fake>/<rel>; "(missing)" when absent.  Valid until the next call. */
static const char *
get(const struct fake *f, const char *rel)
{
	static char buf[4096];
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return "(missing)";
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static bool
exists(const struct fake *f, const char *rel)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	return access(path, F_OK) == 0;
}

/* Empty files standing in for the ones the kernel shows in a new group. */
static void
touch_all(const struct fake *f, const char *dir, const char *const *files)
{
	for (; *files; files++) {
		char rel[512];
		snprintf(rel, sizeof(rel), "%s/%s", dir, *files);
		put(f, rel, "");
	}
}

static int
fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(sg_testdir_make(f->dir, sizeof(f->dir), "cgroup"), 0);
	snprintf(f->mountinfo, sizeof(f->mountinfo), "%s/mountinfo", f->dir);
	snprintf(f->self, sizeof(f->self), "%s/self-cgroup", f->dir);
	f->where = (struct sg_cgroup_where){f->dir, f->mountinfo, f->self};
	f->fds = open_fds();
	*state = f;
	return 0;
}

static int
fake_teardown(void **state)
{
	struct fake *f = *state;
	int leaked = open_fds() - f->fds;
	sg_testdir_remove(f->dir);
	free(f);
	assert_int_equal(leaked, 0);
	return 0;
}

static void
detect(const struct fake *f, struct sg_cgroup_system *sys)
{
	char err[512] = "";
	if (sg_cgroup_detect(&f->where, sys, err, sizeof(err)) != 0)
		fail_msg("detect: %s", err);
}

/* "<fake dir><suffix>", for comparing paths.  Valid until the next call. */
static const char *
at(const struct fake *f, const char *suffix)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "%s%s", f->dir, suffix);
	return buf;
}

static char *
report_text(const struct sg_cgroup *g)
{
	json_t *j = sg_cgroup_report_json(sg_cgroup_report(g));
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

static const struct sg_cgroup_ceilings all_ceilings = {
    .cpu_quota_us = 50000,
    .memory_bytes = 64 * MiB,
    .pids_max = 64,
    .io_major = 8,
    .io_minor = 0,
    .io_read_bps = 1 * MiB,
    .io_write_bps = 2 * MiB,
};

/* ---- fake v2 ---- */

#define V2_MOUNTS                                                                                  \
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"                                  \
	"24 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "  \
	"rw,nsdelegate\n"
#define V2_BASE "sys/fs/cgroup/system.slice/sandgate.service"
#define V2_GROUP V2_BASE "/sandgate/acme"

static const char *const v2_group_files[] = {
    "cgroup.procs",    "cgroup.kill", "cgroup.subtree_control",
    "cpu.max",         "cpu.stat",    "memory.max",
    "memory.swap.max", "memory.peak", "pids.max",
    "pids.current",    "io.max",      NULL};

static void
fake_v2(const struct fake *f, const char *controllers)
{
	put(f, "mountinfo", V2_MOUNTS);
	put(f, "self-cgroup", "0::/system.slice/sandgate.service\n");
	put(f, V2_BASE "/cgroup.controllers", controllers);
	put(f, V2_BASE "/cgroup.subtree_control", "");
	put(f, V2_BASE "/sandgate/cgroup.subtree_control", "");
	touch_all(f, V2_GROUP, v2_group_files);
}

static void
test_v2_writes_every_ceiling(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v2(f, "cpuset cpu io memory hugetlb pids rdma misc\n");
	detect(f, &sys);
	for (int c = 0; c < SG_CGROUP_NCTRL; c++) {
		assert_int_equal(sys.ctrl[c].version, SG_CGROUP_V2);
		assert_string_equal(sys.ctrl[c].base, at(f, "/" V2_BASE));
	}
	assert_string_equal(sys.cpuacct_base, "");
	struct sg_cgroup *g =
	    sg_cgroup_create(&sys, "acme", &all_ceilings, SG_CGROUP_STRICT, err, sizeof(err));
	if (g == NULL)
		fail_msg("create: %s", err);
	/* Controllers are handed down level by level, in one write each. */
	assert_string_equal(get(f, V2_BASE "/cgroup.subtree_control"), "+cpu +memory +pids +io");
	assert_string_equal(get(f, V2_BASE "/sandgate/cgroup.subtree_control"),
	                    "+cpu +memory +pids +io");
	assert_string_equal(get(f, V2_GROUP "/cpu.max"), "50000 100000");
	assert_string_equal(get(f, V2_GROUP "/memory.max"), "67108864");
	assert_string_equal(get(f, V2_GROUP "/memory.swap.max"), "0");
	assert_string_equal(get(f, V2_GROUP "/pids.max"), "64");
	assert_string_equal(get(f, V2_GROUP "/io.max"), "8:0 rbps=1048576 wbps=2097152");
	for (int c = 0; c < SG_CGROUP_NCTRL; c++)
		assert_string_equal(sg_cgroup_path(g, (enum sg_cgroup_ctrl)c), at(f, "/" V2_GROUP));
	char *r = report_text(g);
	assert_string_equal(
	    r,
	    "{\"ceilings\":{"
	    "\"cpu\":{\"ceiling\":\"50000 us per 100000 us\",\"configured\":true,\"enforced\":true,"
	    "\"version\":\"v2\"},"
	    "\"io\":{\"ceiling\":\"8:0 read 1048576 B/s, write 2097152 B/s\",\"configured\":true,"
	    "\"enforced\":true,\"version\":\"v2\"},"
	    "\"memory\":{\"ceiling\":\"64 MiB\",\"configured\":true,\"enforced\":true,"
	    "\"version\":\"v2\"},"
	    "\"pids\":{\"ceiling\":\"64 tasks\",\"configured\":true,\"enforced\":true,"
	    "\"version\":\"v2\"}},"
	    "\"mode\":\"strict\",\"tenant\":\"acme\"}");
	free(r);

	/* One directory for all of v2: attach writes once. */
	assert_int_equal(sg_cgroup_attach(g, 4242, err, sizeof(err)), 0);
	assert_string_equal(get(f, V2_GROUP "/cgroup.procs"), "4242");
	put(f, V2_GROUP "/cgroup.procs", ""); /* never let kill() see a real pid from a fake tree */
	put(f, V2_GROUP "/memory.peak", "123456\n");
	put(f, V2_GROUP "/cpu.stat", "usage_usec 777\nuser_usec 700\nsystem_usec 77\n");
	put(f, V2_GROUP "/pids.current", "3\n");
	struct sg_cgroup_stats st;
	sg_cgroup_stats(g, &st);
	assert_true(st.has_memory_peak && st.has_cpu_usage && st.has_pids);
	assert_int_equal(st.memory_peak_bytes, 123456);
	assert_int_equal(st.cpu_usage_us, 777);
	assert_int_equal(st.pids_current, 3);
	assert_int_equal(sg_cgroup_kill(g, err, sizeof(err)), 0);
	assert_string_equal(get(f, V2_GROUP "/cgroup.kill"), "1");
	sg_cgroup_free(g);
}

static void
test_v2_controllers_already_delegated_are_not_rewritten(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v2(f, "cpu io memory pids\n");
	put(f, V2_BASE "/cgroup.subtree_control", "cpu io memory pids\n");
	put(f, V2_BASE "/sandgate/cgroup.subtree_control", "memory pids\n");
	unlink(at(f, "/" V2_GROUP "/memory.swap.max")); /* no swap accounting */
	detect(f, &sys);
	struct sg_cgroup_ceilings ce = {.memory_bytes = 3 * MiB + 1, .pids_max = 5};
	struct sg_cgroup *g =
	    sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_STRICT, err, sizeof(err));
	if (g == NULL)
		fail_msg("create: %s", err);
	assert_string_equal(get(f, V2_BASE "/cgroup.subtree_control"), "cpu io memory pids\n");
	assert_string_equal(get(f, V2_BASE "/sandgate/cgroup.subtree_control"), "+cpu +io");
	assert_string_equal(get(f, V2_GROUP "/memory.max"), "3145729");
	assert_false(exists(f, V2_GROUP "/memory.swap.max"));
	assert_string_equal(get(f, V2_GROUP "/cpu.max"), ""); /* no CPU ceiling: untouched */
	assert_string_equal(sg_cgroup_report(g)->ctrl[SG_CGROUP_MEMORY].ceiling, "3145729 bytes");
	sg_cgroup_free(g);
}

static void
test_v2_missing_controller_strict_fails_and_cleans_up(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	put(f, "mountinfo", V2_MOUNTS);
	put(f, "self-cgroup", "0::/system.slice/sandgate.service\n");
	put(f, V2_BASE "/cgroup.controllers", "cpu pids\n");
	put(f, V2_BASE "/cgroup.subtree_control", "cpu pids");
	detect(f, &sys);
	assert_int_equal(sys.ctrl[SG_CGROUP_CPU].version, SG_CGROUP_V2);
	assert_int_equal(sys.ctrl[SG_CGROUP_MEMORY].version, SG_CGROUP_NONE);
	struct sg_cgroup_ceilings ce = {.memory_bytes = 64 * MiB};
	assert_null(sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_STRICT, err, sizeof(err)));
	assert_string_equal(
	    err,
	    "memory ceiling 64 MiB cannot be applied: no cgroup memory controller is available: "
	    "cgroup v2 offers this process's group only \"cpu pids\" and no cgroup v1 memory "
	    "hierarchy is mounted; enable memory in the parent's cgroup.subtree_control or set "
	    "sandbox.cgroups: best_effort");
	/* What the failed call made, it removed. */
	assert_false(exists(f, V2_GROUP));
	assert_false(exists(f, V2_BASE "/sandgate"));

	json_t *j = sg_cgroup_system_json(&sys);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(j, "cpu"), "version")), "v2");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "io"), "reason")),
	                    sys.ctrl[SG_CGROUP_IO].why);
	json_decref(j);
}

static void
test_v2_best_effort_reports_what_is_enforced(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v2(f, "cpu pids\n");
	detect(f, &sys);
	struct sg_cgroup_ceilings ce = {
	    .cpu_quota_us = 25000, .cpu_period_us = 50000, .memory_bytes = 1 << 30, .pids_max = 10};
	struct sg_cgroup *g =
	    sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_BEST_EFFORT, err, sizeof(err));
	if (g == NULL)
		fail_msg("create: %s", err);
	assert_string_equal(get(f, V2_GROUP "/cpu.max"), "25000 50000");
	assert_string_equal(get(f, V2_GROUP "/pids.max"), "10");
	assert_string_equal(get(f, V2_GROUP "/memory.max"), ""); /* not ours to write */
	assert_string_equal(sg_cgroup_path(g, SG_CGROUP_MEMORY), "");
	char *r = report_text(g);
	assert_string_equal(
	    r,
	    "{\"ceilings\":{"
	    "\"cpu\":{\"ceiling\":\"25000 us per 50000 us\",\"configured\":true,\"enforced\":true,"
	    "\"version\":\"v2\"},"
	    "\"io\":{\"configured\":false},"
	    "\"memory\":{\"ceiling\":\"1 GiB\",\"configured\":true,\"enforced\":false,"
	    "\"reason\":\"no cgroup memory controller is available: cgroup v2 offers this "
	    "process's group only \\\"cpu pids\\\" and no cgroup v1 memory hierarchy is mounted; "
	    "enable memory in the parent's cgroup.subtree_control\"},"
	    "\"pids\":{\"ceiling\":\"10 tasks\",\"configured\":true,\"enforced\":true,"
	    "\"version\":\"v2\"}},"
	    "\"mode\":\"best_effort\",\"tenant\":\"acme\"}");
	free(r);
	sg_cgroup_free(g);
}

/* A write the kernel refuses names the file, the errno and what to do. */
static void
test_v2_refused_write_is_explained(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v2(f, "cpu memory pids\n");
	unlink(at(f, "/" V2_GROUP "/pids.max"));
	detect(f, &sys);
	struct sg_cgroup_ceilings ce = {.pids_max = 7};
	assert_null(sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_STRICT, err, sizeof(err)));
	char want[2048];
	snprintf(
	    want, sizeof(want),
	    "pids ceiling 7 tasks cannot be applied: writing \"7\" to %s/" V2_GROUP "/pids.max "
	    "failed: No such file or directory; the kernel does not provide it here; enable the "
	    "controller or set sandbox.cgroups: best_effort",
	    f->dir);
	assert_string_equal(err, want);
	assert_true(exists(f, V2_GROUP)); /* it existed before the call: not ours to remove */
}

/* ---- fake v1 ---- */

/* cpu and cpuacct co-mounted, memory bound from a container's subtree, blkio at a path with a
 * space. */
#define V1_MOUNTS                                                                                  \
	"30 23 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"               \
	"32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:11 - cgroup cgroup "           \
	"rw,cpu,cpuacct\n"                                                                         \
	"33 30 0:29 /docker/abc /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory\n"    \
	"34 30 0:30 / /sys/fs/cgroup/pids rw shared:13 master:2 - cgroup cgroup rw,pids\n"         \
	"35 30 0:31 / /sys/fs/cgroup/blk\\040io rw - cgroup cgroup rw,blkio\n"                     \
	"36 30 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
#define V1_SELF                                                                                    \
	"12:pids:/user.slice\n11:memory:/docker/abc/inner\n10:cpu,cpuacct:/\n"                     \
	"9:blkio:/user.slice\n1:name=systemd:/user.slice\n0::/user.slice\n"
#define V1_CPU "sys/fs/cgroup/cpu,cpuacct/sandgate/acme"
#define V1_MEM "sys/fs/cgroup/memory/inner/sandgate/acme"
#define V1_PIDS "sys/fs/cgroup/pids/user.slice/sandgate/acme"
#define V1_BLKIO "sys/fs/cgroup/blk io/user.slice/sandgate/acme"

static void
fake_v1(const struct fake *f, bool memsw)
{
	static const char *const cpu[] = {"cgroup.procs", "cpu.cfs_period_us", "cpu.cfs_quota_us",
	                                  "cpuacct.usage", NULL};
	static const char *const mem[] = {"cgroup.procs", "memory.limit_in_bytes",
	                                  "memory.max_usage_in_bytes", NULL};
	static const char *const pids[] = {"cgroup.procs", "pids.max", "pids.current", NULL};
	static const char *const blkio[] = {"cgroup.procs", "blkio.throttle.read_bps_device",
	                                    "blkio.throttle.write_bps_device", NULL};
	put(f, "mountinfo", V1_MOUNTS);
	put(f, "self-cgroup", V1_SELF);
	touch_all(f, V1_CPU, cpu);
	touch_all(f, V1_MEM, mem);
	touch_all(f, V1_PIDS, pids);
	touch_all(f, V1_BLKIO, blkio);
	if (memsw)
		put(f, V1_MEM "/memory.memsw.limit_in_bytes", "");
}

/* A pid that was in use and is no longer (reaped). */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static bool
fake_dir_exists(const struct fake *f, const char *rel)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Each gateway keeps its tenant groups under its own sandgate-<pid>, and
 * removes what a gateway that died left; a live gateway's are left alone.
 */
static void
test_a_gateway_owns_its_groups_and_sweeps_the_dead(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char dead[96], live[96], other[96], mine[64], err[2048] = "", link[64] = "";
	unsigned long long ns = 0;
	assert_true(readlink("/proc/self/ns/pid", link, sizeof(link) - 1) > 0);
	assert_int_equal(sscanf(link, "pid:[%llu]", &ns), 1);
	fake_v1(f, false);
	pid_t gone = dead_pid();
	snprintf(dead, sizeof(dead), "sys/fs/cgroup/pids/user.slice/sandgate-%llu-%d/acme", ns,
	         (int)gone);
	snprintf(live, sizeof(live), "sys/fs/cgroup/pids/user.slice/sandgate-%llu-%d/acme", ns,
	         (int)getppid());
	/* The same pid in another pid namespace cannot be judged from here. */
	snprintf(other, sizeof(other), "sys/fs/cgroup/pids/user.slice/sandgate-%llu-%d/acme",
	         ns + 1, (int)gone);
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", f->dir, dead);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/%s", f->dir, live);
	mkdir_p(path);
	snprintf(path, sizeof(path), "%s/%s", f->dir, other);
	mkdir_p(path);

	detect(f, &sys);
	assert_string_equal(sys.group, "sandgate");
	sg_cgroup_own(&sys);
	snprintf(mine, sizeof(mine), "sandgate-%llu-%d", ns, (int)getpid());
	assert_string_equal(sys.group, mine);
	*strrchr(dead, '/') = '\0';
	assert_false(fake_dir_exists(f, dead));
	assert_true(fake_dir_exists(f, live));
	assert_true(fake_dir_exists(f, other));
	/* A tenant's group goes under the gateway's own directory. */
	struct sg_cgroup_ceilings ce = {0};
	struct sg_cgroup *g = sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_BEST_EFFORT, err,
	                                       sizeof(err));
	assert_non_null(g);
	assert_non_null(strstr(sg_cgroup_path(g, SG_CGROUP_PIDS), mine));
	assert_int_equal(sg_cgroup_remove(g, err, sizeof(err)), 0);
	sg_cgroup_free(g);
	snprintf(live, sizeof(live), "sys/fs/cgroup/pids/user.slice/%s", mine);
	assert_false(fake_dir_exists(f, live));
}

static void
test_v1_finds_each_hierarchy_and_writes_every_ceiling(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v1(f, true);
	detect(f, &sys);
	assert_string_equal(sys.ctrl[SG_CGROUP_CPU].base, at(f, "/sys/fs/cgroup/cpu,cpuacct"));
	assert_string_equal(sys.ctrl[SG_CGROUP_MEMORY].base, at(f, "/sys/fs/cgroup/memory/inner"));
	assert_string_equal(sys.ctrl[SG_CGROUP_PIDS].base, at(f, "/sys/fs/cgroup/pids/user.slice"));
	assert_string_equal(sys.ctrl[SG_CGROUP_IO].base, at(f, "/sys/fs/cgroup/blk io/user.slice"));
	assert_string_equal(sys.cpuacct_base, at(f, "/sys/fs/cgroup/cpu,cpuacct"));
	for (int c = 0; c < SG_CGROUP_NCTRL; c++)
		assert_int_equal(sys.ctrl[c].version, SG_CGROUP_V1);

	struct sg_cgroup *g =
	    sg_cgroup_create(&sys, "acme", &all_ceilings, SG_CGROUP_STRICT, err, sizeof(err));
	if (g == NULL)
		fail_msg("create: %s", err);
	assert_string_equal(get(f, V1_CPU "/cpu.cfs_period_us"), "100000");
	assert_string_equal(get(f, V1_CPU "/cpu.cfs_quota_us"), "50000");
	assert_string_equal(get(f, V1_MEM "/memory.limit_in_bytes"), "67108864");
	assert_string_equal(get(f, V1_MEM "/memory.memsw.limit_in_bytes"), "67108864");
	assert_string_equal(get(f, V1_PIDS "/pids.max"), "64");
	assert_string_equal(get(f, V1_BLKIO "/blkio.throttle.read_bps_device"), "8:0 1048576");
	assert_string_equal(get(f, V1_BLKIO "/blkio.throttle.write_bps_device"), "8:0 2097152");
	for (int c = 0; c < SG_CGROUP_NCTRL; c++)
		assert_int_equal(sg_cgroup_report(g)->ctrl[c].version, SG_CGROUP_V1);

	/* Four directories (cpu and cpuacct share one): attach writes each once. */
	assert_int_equal(sg_cgroup_attach(g, 4242, err, sizeof(err)), 0);
	const char *dirs[] = {V1_CPU, V1_MEM, V1_PIDS, V1_BLKIO};
	for (size_t i = 0; i < 4; i++) {
		char rel[256];
		snprintf(rel, sizeof(rel), "%s/cgroup.procs", dirs[i]);
		assert_string_equal(get(f, rel), "4242");
		put(f, rel, "");
	}
	put(f, V1_CPU "/cpuacct.usage", "5000000\n");
	put(f, V1_MEM "/memory.max_usage_in_bytes", "999\n");
	put(f, V1_PIDS "/pids.current", "2\n");
	struct sg_cgroup_stats st;
	sg_cgroup_stats(g, &st);
	assert_int_equal(st.cpu_usage_us, 5000);
	assert_int_equal(st.memory_peak_bytes, 999);
	assert_int_equal(st.pids_current, 2);
	sg_cgroup_free(g);
}

static void
test_v1_without_swap_accounting_writes_no_memsw(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[2048] = "";
	fake_v1(f, false);
	detect(f, &sys);
	struct sg_cgroup_ceilings ce = {.memory_bytes = 32 * MiB};
	struct sg_cgroup *g =
	    sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_STRICT, err, sizeof(err));
	if (g == NULL)
		fail_msg("create: %s", err);
	assert_string_equal(get(f, V1_MEM "/memory.limit_in_bytes"), "33554432");
	assert_false(exists(f, V1_MEM "/memory.memsw.limit_in_bytes"));
	assert_string_equal(get(f, V1_CPU "/cpu.cfs_quota_us"), ""); /* no CPU ceiling asked */
	sg_cgroup_free(g);
}

static void
test_hierarchies_that_do_not_show_our_cgroup_are_skipped(void **state)
{
	struct fake *f = *state;
	struct sg_cgroup_system sys;
	char err[512];
	put(f, "mountinfo", V1_MOUNTS);
	/* Our memory cgroup lies outside the mount's subtree; no v2 and no io at all. */
	put(f, "self-cgroup", "11:memory:/elsewhere\n10:cpu,cpuacct:/\n");
	detect(f, &sys);
	assert_int_equal(sys.ctrl[SG_CGROUP_CPU].version, SG_CGROUP_V1);
	assert_int_equal(sys.ctrl[SG_CGROUP_MEMORY].version, SG_CGROUP_NONE);
	assert_int_equal(sys.ctrl[SG_CGROUP_PIDS].version, SG_CGROUP_NONE);
	assert_string_equal(sys.ctrl[SG_CGROUP_MEMORY].why,
	                    "no cgroup memory controller is mounted; mount it");
	struct sg_cgroup_ceilings ce = {.memory_bytes = 64 * MiB};
	assert_null(sg_cgroup_create(&sys, "acme", &ce, SG_CGROUP_STRICT, err, sizeof(err)));
	assert_string_equal(err,
	                    "memory ceiling 64 MiB cannot be applied: no cgroup memory "
	                    "controller is mounted; mount it or set sandbox.cgroups: best_effort");

	struct sg_cgroup_where bad = {f->dir, at(f, "/no-such-mountinfo"), f->self};
	assert_int_equal(sg_cgroup_detect(&bad, &sys, err, sizeof(err)), -1);
	char want[512];
	snprintf(want, sizeof(want), "cannot read %s/no-such-mountinfo: No such file or directory",
	         f->dir);
	assert_string_equal(err, want);
}

/* ---- argument checks, no file system needed ---- */

static void
test_tenant_names_and_ceilings_are_checked(void **state)
{
	(void)state;
	struct sg_cgroup_system none = {0}; /* nothing mounted */
	struct sg_cgroup_ceilings no_ceilings = {0};
	char err[512], name[80];
	for (size_t n = SG_CGROUP_TENANT_MAX - 1; n <= SG_CGROUP_TENANT_MAX + 1; n++) {
		memset(name, 't', n);
		name[n] = '\0';
		struct sg_cgroup *g =
		    sg_cgroup_create(&none, name, &no_ceilings, SG_CGROUP_STRICT, err, sizeof(err));
		assert_int_equal(g != NULL, n <= SG_CGROUP_TENANT_MAX);
		sg_cgroup_free(g);
	}
	const char *bad[] = {"", "a/b", "..", ".", "a b", "a.b", "é", "Acme", "-a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(sg_cgroup_create(&none, bad[i], &no_ceilings, SG_CGROUP_BEST_EFFORT,
		                             err, sizeof(err)));
		char want[200];
		snprintf(want, sizeof(want), "tenant \"%s\" cannot name a cgroup: ", bad[i]);
		assert_memory_equal(err, want, strlen(want));
		assert_non_null(strstr(err, "use 1 to 63 lowercase letters, digits, '-' or '_'"));
	}
	struct {
		struct sg_cgroup_ceilings ce;
		const char *reason;
	} cases[] = {
	    {{.cpu_quota_us = 999},
	     "cpu ceiling: quota_us 999 is below the kernel's minimum of 1000"},
	    {{.cpu_quota_us = 1000}, NULL},
	    {{.cpu_quota_us = 1000, .cpu_period_us = 999},
	     "cpu ceiling: period_us 999 must be from 1000 to 1000000"},
	    {{.cpu_quota_us = 1000, .cpu_period_us = 1000}, NULL},
	    {{.cpu_quota_us = 1000, .cpu_period_us = 1000000}, NULL},
	    {{.cpu_quota_us = 1000, .cpu_period_us = 1000001},
	     "cpu ceiling: period_us 1000001 must be from 1000 to 1000000"},
	    {{.io_read_bps = 1}, "io ceiling: name the block device it applies to (major:minor)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Best effort does not excuse a configuration mistake. */
		struct sg_cgroup *g = sg_cgroup_create(&none, "t", &cases[i].ce,
		                                       SG_CGROUP_BEST_EFFORT, err, sizeof(err));
		if (cases[i].reason == NULL) {
			assert_non_null(g);
			assert_false(sg_cgroup_report(g)->ctrl[SG_CGROUP_CPU].enforced);
		} else {
			assert_null(g);
			assert_string_equal(err, cases[i].reason);
		}
		sg_cgroup_free(g);
	}
}

/* ---- real cgroup v1 on this machine ---- */

struct real {
	int fds;
	bool absent; /* no v1 hierarchy for cpu, memory or pids here */
	struct sg_cgroup_system sys;
	struct sg_cgroup *g;
	pid_t child;
	int go[2]; /* the child waits on go[0] until it has been attached */
	char tenant[64];
};

static int
real_setup(void **state)
{
	struct real *r = calloc(1, sizeof(*r));
	char err[512];
	assert_non_null(r);
	r->go[0] = r->go[1] = -1;
	r->fds = open_fds();
	*state = r;
	if (sg_cgroup_detect(NULL, &r->sys, err, sizeof(err)) != 0)
		fail_msg("detect: %s", err);
	for (int c = 0; c < SG_CGROUP_IO; c++)
		if (r->sys.ctrl[c].version != SG_CGROUP_V1) {
			fprintf(
			    stderr,
			    "\n*** SKIPPING A REAL CGROUP v1 TEST: no v1 %s hierarchy here (%s).\n"
			    "*** This machine and CI are expected to have one: investigate.\n\n",
			    sg_cgroup_ctrl_name((enum sg_cgroup_ctrl)c), r->sys.ctrl[c].why);
			r->absent = true;
		}
	static int n;
	snprintf(r->tenant, sizeof(r->tenant), "test-%d-%d", (int)getpid(), n++);
	return 0;
}

static int
real_teardown(void **state)
{
	struct real *r = *state;
	char err[2048];
	if (r->child > 0) {
		kill(r->child, SIGKILL);
		waitpid(r->child, NULL, 0);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	while (waitpid(-1, NULL, WNOHANG) > 0) /* orphans adopted by a test that failed */
		;
	if (r->g != NULL) {
		if (sg_cgroup_kill(r->g, err, sizeof(err)) != 0 ||
		    sg_cgroup_remove(r->g, err, sizeof(err)) != 0)
			fprintf(stderr, "cleanup of cgroup %s failed: %s\n", r->tenant, err);
		sg_cgroup_free(r->g);
	}
	if (r->go[0] >= 0)
		close(r->go[0]);
	if (r->go[1] >= 0)
		close(r->go[1]);
	int leaked = open_fds() - r->fds;
	free(r);
	assert_int_equal(leaked, 0);
	return 0;
}

/* Skips loudly (see real_setup) when the machine has no v1 hierarchies. */
static void
make_group(struct real *r, const struct sg_cgroup_ceilings *ce)
{
	char err[2048] = "";
	if (r->absent)
		skip();
	r->g = sg_cgroup_create(&r->sys, r->tenant, ce, SG_CGROUP_STRICT, err, sizeof(err));
	if (r->g == NULL)
		fail_msg("create: %s", err);
}

/*
 * Forks a child that runs `body` once the parent has attached it to the
 * group.  The child leaves with _exit only: no atexit handlers, so no leak
 * checker thread that a pids ceiling would refuse.
 */
static void
spawn_attached(struct real *r, int (*body)(void))
{
	char err[2048] = "";
	assert_int_equal(pipe2(r->go, O_CLOEXEC), 0);
	r->child = fork();
	assert_true(r->child >= 0);
	if (r->child == 0) {
		char c;
		close(r->go[1]);
		_exit(read(r->go[0], &c, 1) == 1 ? body() : 100);
	}
	close(r->go[0]);
	r->go[0] = -1;
	if (sg_cgroup_attach(r->g, r->child, err, sizeof(err)) != 0)
		fail_msg("attach: %s", err);
	assert_int_equal(write(r->go[1], "g", 1), 1);
}

static int
wait_child(struct real *r)
{
	int status;
	assert_int_equal(waitpid(r->child, &status, 0), r->child);
	r->child = 0;
	return status;
}

static const char *
group_file(const struct real *r, enum sg_cgroup_ctrl c, const char *file)
{
	static char buf[256];
	if (sg_cgroup_read(sg_cgroup_path(r->g, c), file, buf, sizeof(buf)) != 0)
		fail_msg("cannot read %s/%s", sg_cgroup_path(r->g, c), file);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* Touches 256 MiB a page at a time; 3 if the allocation itself is refused. */
static int
touch_256_mib(void)
{
	size_t n = 256 * MiB;
	volatile char *p =
	    mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 3;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = 1;
	return 0;
}

static void
test_real_v1_memory_ceiling_kills_the_hog(void **state)
{
	struct real *r = *state;
	struct sg_cgroup_ceilings ce = {.memory_bytes = 32 * MiB};
	make_group(r, &ce);
	assert_string_equal(group_file(r, SG_CGROUP_MEMORY, "memory.limit_in_bytes"), "33554432");
	spawn_attached(r, touch_256_mib);
	int status = wait_child(r);
	struct sg_cgroup_stats st;
	char oom[256];
	sg_cgroup_stats(r->g, &st);
	assert_int_equal(sg_cgroup_read(sg_cgroup_path(r->g, SG_CGROUP_MEMORY),
	                                "memory.oom_control", oom, sizeof(oom)),
	                 0);
	const char *kills = strstr(oom, "oom_kill ");
	fprintf(stderr, "memory: child %s %d; peak %llu bytes; memsw.failcnt %s; %.*s\n",
	        WIFSIGNALED(status) ? "killed by signal" : "exited with",
	        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
	        (unsigned long long)st.memory_peak_bytes,
	        group_file(r, SG_CGROUP_MEMORY, "memory.memsw.failcnt"),
	        kills ? (int)strcspn(kills, "\n") : 0, kills ? kills : "");
	assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
	            (WIFEXITED(status) && WEXITSTATUS(status) == 3));
	/* Killed by the cgroup's own OOM killer, not by anything else. */
	if (WIFSIGNALED(status))
		assert_true(kills != NULL && atoi(kills + strlen("oom_kill ")) >= 1);
	assert_true(st.has_memory_peak);
	assert_true(st.memory_peak_bytes <= 32 * MiB);
}

/* 0 when fork() fails with EAGAIN, as the ceiling should make it. */
static int
try_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p > 0) {
		waitpid(p, NULL, 0);
		return 2;
	}
	return errno == EAGAIN ? 0 : 3;
}

static void
test_real_v1_pids_ceiling_stops_fork(void **state)
{
	struct real *r = *state;
	struct sg_cgroup_ceilings ce = {.pids_max = 1};
	make_group(r, &ce);
	assert_string_equal(group_file(r, SG_CGROUP_PIDS, "pids.max"), "1");
	spawn_attached(r, try_fork);
	int status = wait_child(r);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fprintf(stderr,
	        "pids: fork() in a group at pids.max 1 failed with EAGAIN; "
	        "pids.events: %s\n",
	        sg_cgroup_has(sg_cgroup_path(r->g, SG_CGROUP_PIDS), "pids.events")
	            ? group_file(r, SG_CGROUP_PIDS, "pids.events")
	            : "(absent)");
}

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
spin_half_a_second(void)
{
	for (int64_t end = now_us() + 500000; now_us() < end;)
		;
	return 0;
}

static void
test_real_v1_cpu_quota_holds(void **state)
{
	struct real *r = *state;
	struct sg_cgroup_ceilings ce = {.cpu_quota_us = 20000, .cpu_period_us = 100000};
	make_group(r, &ce);
	assert_string_equal(group_file(r, SG_CGROUP_CPU, "cpu.cfs_quota_us"), "20000");
	assert_string_equal(group_file(r, SG_CGROUP_CPU, "cpu.cfs_period_us"), "100000");
	int64_t start = now_us();
	spawn_attached(r, spin_half_a_second);
	int status = wait_child(r);
	int64_t wall = now_us() - start;
	struct sg_cgroup_stats st;
	sg_cgroup_stats(r->g, &st);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(st.has_cpu_usage);
	fprintf(stderr,
	        "cpu: quota 20%%: %lld us of CPU in %lld us of wall time (%.0f%%); "
	        "cpu.stat: %s\n",
	        (long long)st.cpu_usage_us, (long long)wall,
	        100.0 * (double)st.cpu_usage_us / (double)wall,
	        group_file(r, SG_CGROUP_CPU, "cpu.stat"));
	/* 20% of the wall clock, plus one period of slack for timing at the edges. */
	assert_true(st.cpu_usage_us > 0);
	assert_true(st.cpu_usage_us <= (uint64_t)wall / 5 + 100000);
}

static int
sleep_with_a_grandchild(void)
{
	if (fork() == 0)
		pause();
	pause();
	return 0;
}

/*
 * The test becomes a child subreaper so the orphaned grandchild is ours to
 * reap: a zombie stays charged to pids.current until someone reaps it, and
 * pid 1 on this machine takes its time.
 */
static void
test_real_v1_kill_all_and_remove(void **state)
{
	struct real *r = *state;
	struct sg_cgroup_ceilings ce = {.memory_bytes = 64 * MiB, .pids_max = 16};
	char err[2048] = "";
	make_group(r, &ce);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	spawn_attached(r, sleep_with_a_grandchild);
	struct sg_cgroup_stats st = {0};
	for (int i = 0; i < 500 && st.pids_current < 2; i++) {
		usleep(1000);
		sg_cgroup_stats(r->g, &st);
	}
	assert_int_equal(st.pids_current, 2); /* the child and its own child */
	/* Still populated: removal must refuse rather than orphan live processes. */
	assert_int_equal(sg_cgroup_remove(r->g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "processes remain in it: kill the group first"));
	assert_int_equal(sg_cgroup_kill(r->g, err, sizeof(err)), 0);
	int status = wait_child(r), reaped = 1;
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	while (waitpid(-1, &status, 0) > 0) {
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		reaped++;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	assert_int_equal(reaped, 2);
	sg_cgroup_stats(r->g, &st);
	assert_int_equal(st.pids_current, 0);
	char path[2048];
	snprintf(path, sizeof(path), "%s", sg_cgroup_path(r->g, SG_CGROUP_MEMORY));
	assert_int_equal(sg_cgroup_remove(r->g, err, sizeof(err)), 0);
	assert_int_equal(access(path, F_OK), -1);
	sg_cgroup_free(r->g);
	r->g = NULL;
}

/* A device the kernel does not know: the strict error names it, and nothing is left behind. */
static void
test_real_v1_strict_failure_is_explained_and_undone(void **state)
{
	struct real *r = *state;
	struct sg_cgroup_ceilings ce = {
	    .memory_bytes = 64 * MiB, .io_major = 259, .io_minor = 999, .io_read_bps = MiB};
	char err[2048] = "", want[2048], dir[1200];
	if (r->absent || r->sys.ctrl[SG_CGROUP_IO].version != SG_CGROUP_V1)
		skip();
	assert_null(sg_cgroup_create(&r->sys, r->tenant, &ce, SG_CGROUP_STRICT, err, sizeof(err)));
	snprintf(dir, sizeof(dir), "%s/sandgate/%s", r->sys.ctrl[SG_CGROUP_IO].base, r->tenant);
	snprintf(want, sizeof(want),
	         "io ceiling 259:999 read 1048576 B/s, write 0 B/s cannot be applied: writing "
	         "\"259:999 1048576\" to %s/blkio.throttle.read_bps_device failed: No such device; "
	         "there is no such block device; check the io ceiling's major:minor or set "
	         "sandbox.cgroups: best_effort",
	         dir);
	assert_string_equal(err, want);
	assert_int_equal(access(dir, F_OK), -1);
	snprintf(dir, sizeof(dir), "%s/sandgate/%s", r->sys.ctrl[SG_CGROUP_MEMORY].base, r->tenant);
	assert_int_equal(access(dir, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_v2_writes_every_ceiling, fake_setup,
	                                    fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v2_controllers_already_delegated_are_not_rewritten,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v2_missing_controller_strict_fails_and_cleans_up,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v2_best_effort_reports_what_is_enforced,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v2_refused_write_is_explained, fake_setup,
	                                    fake_teardown),
	    cmocka_unit_test_setup_teardown(test_a_gateway_owns_its_groups_and_sweeps_the_dead,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_finds_each_hierarchy_and_writes_every_ceiling,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_without_swap_accounting_writes_no_memsw,
	                                    fake_setup, fake_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_hierarchies_that_do_not_show_our_cgroup_are_skipped, fake_setup,
	        fake_teardown),
	    cmocka_unit_test(test_tenant_names_and_ceilings_are_checked),
	    cmocka_unit_test_setup_teardown(test_real_v1_memory_ceiling_kills_the_hog, real_setup,
	                                    real_teardown),
	    cmocka_unit_test_setup_teardown(test_real_v1_pids_ceiling_stops_fork, real_setup,
	                                    real_teardown),
	    cmocka_unit_test_setup_teardown(test_real_v1_cpu_quota_holds, real_setup,
	                                    real_teardown),
	    cmocka_unit_test_setup_teardown(test_real_v1_kill_all_and_remove, real_setup,
	                                    real_teardown),
	    cmocka_unit_test_setup_teardown(test_real_v1_strict_failure_is_explained_and_undone,
	                                    real_setup, real_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
