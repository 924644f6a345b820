/*
 * sg_isolate: a worker in its own namespaces, confined layer by layer.
 *
 * Spawning.  A raw clone with fork semantics (no separate stack) puts the
 * child in new user, pid, mount, ipc, uts and network namespaces at once.
 * The parent, not the child, writes the id maps: only a parent that holds
 * CAP_SETUID/CAP_SETGID outside can map the worker to an unprivileged host
 * id such as nobody, which is what a root zygote must do.  Parent and child
 * then speak over a SOCK_SEQPACKET pair:
 *
 *   parent: write setgroups/uid_map/gid_map, send 'M'
 *   child:  take the mapped ids, arm PR_SET_PDEATHSIG, send 'R' (or 'E'+why)
 *
 * The death signal is armed only after the id change because changing
 * credentials clears it.  'R' doubles as the liveness check that closes the
 * race with a parent that dies just before the signal is armed: a dead
 * parent's end is closed, so the send fails and the child leaves.
 *
 * Confining.  The order matters: the nested-namespace limit is written while
 * /proc is still mounted; the root is swapped while the process still
 * holds CAP_SYS_ADMIN in its namespace; the bounding set is dropped before
 * capset removes CAP_SETPCAP; no_new_privs comes before Landlock (which needs
 * it without CAP_SYS_ADMIN); rlimits come after Landlock, since a tight
 * RLIMIT_NOFILE would leave no descriptor for its ruleset; seccomp comes last,
 * since it forbids every call the steps before it make.
 *
 * The worker is pid 1 of its namespace, and the kernel delivers to such a
 * process only the signals it handles, plus SIGKILL and SIGSTOP.  So the
 * death signal and the parent's wall-clock kill must be SIGKILL, and
 * RLIMIT_CPU ends the worker with SIGKILL, not SIGXCPU.
 */
#include "sg_isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sg_seccomp.h"

#define NAMESPACE_FLAGS                                                                            \
	(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)
#define NOBODY_ID 65534

#define MSG_MAPS_WRITTEN 'M'
#define MSG_CHILD_READY 'R'
#define MSG_CHILD_FAILED 'E'

/*
 * The empty root is mounted over /proc before the pivot.  Any directory
 * would do, since the mount is private to the worker's namespace and dies
 * with it; /proc is one that surely exists, as spawn needed it for the maps.
 */
#define ROOT_MOUNT_POINT "/proc"

/* Landlock rights newer than this machine's <linux/landlock.h> (Linux 6.1). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#define LANDLOCK_NET_BIND_AND_CONNECT_TCP ((1ULL << 0) | (1ULL << 1))       /* ABI 4 */
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_AND_SIGNAL ((1ULL << 0) | (1ULL << 1)) /* ABI 6 */
/* The newest ABI whose rights are listed here; ABI 7 added only audit flags. */
#define LANDLOCK_KNOWN_ABI 7

/* The ruleset attribute as of ABI 6; older kernels accept it zero-padded. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

/* Writes "isolate: <what>: <strerror(errno)>" into err; returns -1. */
__attribute__((format(printf, 3, 4))) static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	int saved = errno;
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "isolate: %s: %s", what, strerror(saved));
	errno = saved;
	return -1;
}

void
sg_isolate_opts_init(struct sg_isolate_opts *o)
{
	memset(o, 0, sizeof(*o));
	bool root = geteuid() == 0;
	o->outside_uid = root ? NOBODY_ID : geteuid();
	o->outside_gid = root ? NOBODY_ID : getegid();
	o->hostname = "sandgate";
	o->limits.address_space = (rlim_t)256 << 20;
	o->limits.cpu_seconds = 60;
	o->limits.open_files = 8;
	o->limits.file_size = 0;
	o->limits.processes = 0;
	o->require_landlock = true;
}

/* ---- spawn: the parent's half ---- */

/* One write: the kernel takes an id map or a sysctl whole or not at all. */
static int
write_file(const char *path, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "open %s", path);
	size_t len = strlen(text);
	ssize_t wrote = write(fd, text, len);
	int saved = errno;
	close(fd);
	if (wrote != (ssize_t)len) {
		errno = wrote < 0 ? saved : EIO;
		return fail(err, errlen, "write %s", path);
	}
	return 0;
}

/*
 * A parent mapping its own ids needs no privilege, but must deny setgroups
 * first (otherwise the child could drop a group that a file's mode denies).
 * A privileged parent leaves setgroups allowed so that the child can drop
 * the supplementary groups it inherited, which the map does not cover.
 */
static int
write_id_maps(pid_t pid, const struct sg_isolate_opts *o, bool own_ids, char *err, size_t errlen)
{
	char path[64], map[64];
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (own_ids && write_file(path, "deny", err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)o->outside_uid);
	if (write_file(path, map, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)o->outside_gid);
	return write_file(path, map, err, errlen);
}

static int
parent_handshake(pid_t pid, int sock, const struct sg_isolate_opts *o, bool own_ids, char *err,
                 size_t errlen)
{
	if (write_id_maps(pid, o, own_ids, err, errlen) < 0) {
		size_t len = strlen(err);
		if (!own_ids && errno == EPERM)
			snprintf(err + len, errlen - len,
			         " (mapping ids other than one's own needs "
			         "CAP_SETUID and CAP_SETGID)");
		return -1;
	}
	char go = MSG_MAPS_WRITTEN;
	if (send(sock, &go, 1, MSG_NOSIGNAL) != 1)
		return fail(err, errlen, "wake the worker after writing its id maps");
	char reply[256];
	ssize_t got;
	do
		got = recv(sock, reply, sizeof(reply) - 1, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return fail(err, errlen, "read the worker's setup reply");
	if (got == 1 && reply[0] == MSG_CHILD_READY)
		return 0;
	reply[got > 0 ? got : 0] = '\0';
	snprintf(err, errlen, "isolate: worker setup: %s",
	         got > 1 && reply[0] == MSG_CHILD_FAILED ? reply + 1 : "the worker died");
	return -1;
}

/* ---- spawn: the child's half ---- */

static int
reset_signals(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP, glibc's own: refused, fine */
	sigset_t none;
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Returns NULL once the child runs as the mapped ids, undumpable, with its
 * death signal armed and an empty environment, else what failed (errno
 * says why).  Exits quietly when the parent is gone, since nobody is left
 * to tell.  The id calls are raw syscalls: glibc's wrappers would try to
 * signal the parent's other threads, if any.
 */
static const char *
child_setup(int sock, bool drop_groups)
{
	if (reset_signals() < 0)
		return "reset signal handlers";
	char byte = 0;
	ssize_t got;
	do
		got = recv(sock, &byte, 1, 0);
	while (got < 0 && errno == EINTR);
	if (got != 1 || byte != MSG_MAPS_WRITTEN)
		_exit(127);
	if (drop_groups && syscall(SYS_setgroups, 0, NULL) < 0)
		return "drop supplementary groups";
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		return "take the mapped gid";
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		return "take the mapped uid";
	/* Host processes of the same uid (nobody is common) must not ptrace it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return "make the worker undumpable";
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return "arm the parent-death signal";
	/* The zygote's environment may carry settings and secrets. */
	if (clearenv() != 0)
		return "clear the environment";
	/* Out of the caller's session: the terminal's signals are not the worker's. */
	if (setsid() < 0)
		return "start a session";
	char ready = MSG_CHILD_READY;
	if (send(sock, &ready, 1, MSG_NOSIGNAL) != 1)
		_exit(127);
	return NULL;
}

static _Noreturn void
child_run(int sock, bool drop_groups, int (*fn)(void *), void *arg)
{
	const char *failed = child_setup(sock, drop_groups);
	if (failed != NULL) {
		char msg[200];
		int len = snprintf(msg, sizeof(msg), "%c%s: %s", MSG_CHILD_FAILED, failed,
		                   strerror(errno));
		(void)send(sock, msg, len < (int)sizeof(msg) ? (size_t)len : sizeof(msg) - 1,
		           MSG_NOSIGNAL);
		_exit(127);
	}
	close(sock);
	_exit(fn(arg));
}

pid_t
sg_isolate_spawn(const struct sg_isolate_opts *o, int (*fn)(void *), void *arg, char *err,
                 size_t errlen)
{
	if (o->outside_uid == 0 || o->outside_gid == 0) {
		snprintf(err, errlen,
		         "isolate: refusing to run a worker as host uid or gid 0: "
		         "it would own the host's files if it got out; "
		         "configure an unprivileged id");
		return -1;
	}
	bool own_ids = o->outside_uid == geteuid() && o->outside_gid == getegid();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(err, errlen, "create the setup socketpair");
	/* Blocked until the child has reset its handlers: ours must not run there. */
	sigset_t all, saved;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid_t pid = (pid_t)syscall(SYS_clone, NAMESPACE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		close(sv[0]);
		child_run(sv[1], !own_ids, fn, arg);
	}
	int clone_errno = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		errno = clone_errno;
		return fail(err, errlen,
		            "clone into new user, pid, mount, ipc, uts and net "
		            "namespaces");
	}
	int rc = parent_handshake(pid, sv[0], o, own_ids, err, errlen);
	close(sv[0]);
	if (rc < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return pid;
}

/* ---- confine: one function per layer ---- */

/*
 * Each step returns 0 when its layer holds, 1 when it was skipped by leave
 * of the options, -1 with a message on failure.
 */
typedef int confine_step(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                         size_t errlen);

static int
check_namespaces(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                 size_t errlen)
{
	(void)o, (void)r;
	if (getpid() == 1)
		return 0;
	snprintf(err, errlen,
	         "isolate: not pid 1 of a new pid namespace: confine only a process "
	         "started by sg_isolate_spawn");
	return -1;
}

/*
 * A user namespace is the one kind a worker without capabilities could
 * still make, and each opens kernel code otherwise out of reach.  The limit
 * is the worker's own namespace's, so the host's stays as it was; it is
 * written while /proc is still there.
 */
static int
forbid_nested_user_namespaces(const struct sg_isolate_opts *o, struct sg_isolate_report *r,
                              char *err, size_t errlen)
{
	(void)o, (void)r;
	return write_file("/proc/sys/user/max_user_namespaces", "0\n", err, errlen);
}

/*
 * The root becomes an empty read-only tmpfs and the host's tree is detached
 * from this mount namespace altogether, so no path leads back to it.
 */
static int
enter_empty_root(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                 size_t errlen)
{
	(void)o, (void)r;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail(err, errlen, "make every mount private");
	if (mount("sandgate", ROOT_MOUNT_POINT, "tmpfs",
	          MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555") < 0)
		return fail(err, errlen, "mount an empty read-only tmpfs on %s", ROOT_MOUNT_POINT);
	if (chdir(ROOT_MOUNT_POINT) < 0)
		return fail(err, errlen, "enter the empty root");
	/* pivot_root(".", ".") stacks the old root on the new one; then detach it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return fail(err, errlen, "pivot_root into the empty root");
	if (umount2(".", MNT_DETACH) < 0)
		return fail(err, errlen, "detach the host's mount tree");
	if (chdir("/") < 0)
		return fail(err, errlen, "chdir to the new root");
	return 0;
}

static int
set_hostname(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err, size_t errlen)
{
	(void)r;
	const char *name = o->hostname ? o->hostname : "sandgate";
	if (sethostname(name, strlen(name)) < 0)
		return fail(err, errlen, "set the hostname to \"%s\"", name);
	return 0;
}

static int
compare_ints(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int
close_other_fds(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                size_t errlen)
{
	(void)r;
	int keep[SG_ISOLATE_MAX_KEEP_FDS];
	size_t n = o->n_keep_fds;
	if (n > SG_ISOLATE_MAX_KEEP_FDS) {
		snprintf(err, errlen, "isolate: %zu descriptors to keep; at most %d", n,
		         SG_ISOLATE_MAX_KEEP_FDS);
		return -1;
	}
	memcpy(keep, o->keep_fds, n * sizeof(keep[0]));
	qsort(keep, n, sizeof(keep[0]), compare_ints);
	unsigned next = 0;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || fcntl(keep[i], F_GETFD) < 0) {
			errno = EBADF;
			return fail(err, errlen, "descriptor %d to keep is not open", keep[i]);
		}
		if ((unsigned)keep[i] > next && close_range(next, (unsigned)keep[i] - 1, 0) < 0)
			return fail(err, errlen, "close descriptors %u to %d", next, keep[i] - 1);
		next = (unsigned)keep[i] + 1;
	}
	if (close_range(next, ~0u, 0) < 0) /* Linux 5.9 */
		return fail(err, errlen, "close descriptors from %u", next);
	return 0;
}

/* Soft and hard alike; a hard limit already lower than asked is kept. */
static int
apply_rlimits(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
              size_t errlen)
{
	const struct {
		int resource;
		const char *name;
		rlim_t want;
		rlim_t *applied;
	} limits[] = {
	    {RLIMIT_AS, "RLIMIT_AS", o->limits.address_space, &r->limits.address_space},
	    {RLIMIT_CPU, "RLIMIT_CPU", o->limits.cpu_seconds, &r->limits.cpu_seconds},
	    {RLIMIT_NOFILE, "RLIMIT_NOFILE", o->limits.open_files, &r->limits.open_files},
	    {RLIMIT_FSIZE, "RLIMIT_FSIZE", o->limits.file_size, &r->limits.file_size},
	    {RLIMIT_NPROC, "RLIMIT_NPROC", o->limits.processes, &r->limits.processes},
	    {RLIMIT_CORE, "RLIMIT_CORE", 0, NULL},
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit now;
		if (getrlimit(limits[i].resource, &now) < 0)
			return fail(err, errlen, "read %s", limits[i].name);
		rlim_t v = limits[i].want < now.rlim_max ? limits[i].want : now.rlim_max;
		struct rlimit rl = {.rlim_cur = v, .rlim_max = v};
		if (setrlimit(limits[i].resource, &rl) < 0)
			return fail(err, errlen, "set %s to %llu", limits[i].name,
			            (unsigned long long)v);
		if (limits[i].applied)
			*limits[i].applied = v;
	}
	return 0;
}

/*
 * Root of a user namespace holds every capability over it.  The bounding
 * set goes first, because dropping from it needs CAP_SETPCAP, which capset
 * then removes along with everything else.
 */
static int
drop_capabilities(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                  size_t errlen)
{
	(void)o, (void)r;
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return fail(err, errlen, "drop capability %d from the bounding set", cap);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return fail(err, errlen, "clear the ambient capabilities");
	struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
	memset(none, 0, sizeof(none));
	if (syscall(SYS_capset, &head, none) < 0)
		return fail(err, errlen,
		            "clear the effective, permitted and inheritable capabilities");
	return 0;
}

static int
set_no_new_privs(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                 size_t errlen)
{
	(void)o, (void)r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errlen, "set no_new_privs");
	return 0;
}

int
sg_isolate_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi > 0 ? (int)abi : 0;
}

static uint64_t
landlock_fs_rights(int abi)
{
	uint64_t fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: execute .. make_sym */
	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

/*
 * A ruleset that handles every right the ABI knows and has no rule denies
 * them all, even through a host directory descriptor that leaked in.
 */
static int
restrict_landlock(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err,
                  size_t errlen)
{
	int abi = sg_isolate_landlock_abi();
	r->landlock_abi = abi;
	if (abi == 0 && !o->require_landlock)
		return 1;
	if (abi == 0) {
		snprintf(err, errlen,
		         "isolate: the kernel has no Landlock (not built, or not in "
		         "the lsm= boot list) and the sandbox requires it; enable it, "
		         "or allow running without it in the sandbox configuration");
		return -1;
	}
	int handled = abi < LANDLOCK_KNOWN_ABI ? abi : LANDLOCK_KNOWN_ABI;
	r->landlock_handled_abi = handled;
	struct ruleset_attr attr = {
	    .handled_access_fs = landlock_fs_rights(handled),
	    .handled_access_net = handled >= 4 ? LANDLOCK_NET_BIND_AND_CONNECT_TCP : 0,
	    .scoped = handled >= 6 ? LANDLOCK_SCOPE_ABSTRACT_UNIX_AND_SIGNAL : 0,
	};
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return fail(err, errlen, "create a deny-all Landlock ruleset (ABI %d)", handled);
	long rc = syscall(SYS_landlock_restrict_self, fd, 0);
	int saved = errno;
	close(fd);
	errno = saved;
	if (rc < 0)
		return fail(err, errlen, "enforce the Landlock ruleset");
	return 0;
}

static int
load_seccomp(const struct sg_isolate_opts *o, struct sg_isolate_report *r, char *err, size_t errlen)
{
	(void)r;
	if (o->test_without_seccomp)
		return 1;
	return sg_seccomp_load_worker(err, errlen);
}

static const struct {
	confine_step *run;
	unsigned layer;
} confine_steps[] = {
    {check_namespaces, SG_ISOLATE_NAMESPACES},
    {forbid_nested_user_namespaces, SG_ISOLATE_NO_NESTED_USERNS},
    {enter_empty_root, SG_ISOLATE_EMPTY_ROOT},
    {set_hostname, SG_ISOLATE_HOSTNAME},
    {close_other_fds, SG_ISOLATE_FDS_CLOSED},
    {drop_capabilities, SG_ISOLATE_NO_CAPS},
    {set_no_new_privs, SG_ISOLATE_NO_NEW_PRIVS},
    {restrict_landlock, SG_ISOLATE_LANDLOCK},
    {apply_rlimits, SG_ISOLATE_RLIMITS}, /* after Landlock, whose ruleset needs a descriptor */
    {load_seccomp, SG_ISOLATE_SECCOMP},
};

int
sg_isolate_confine(const struct sg_isolate_opts *o, struct sg_isolate_report *report, char *err,
                   size_t errlen)
{
	memset(report, 0, sizeof(*report));
	for (size_t i = 0; i < sizeof(confine_steps) / sizeof(confine_steps[0]); i++) {
		int rc = confine_steps[i].run(o, report, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 0)
			report->enforced |= confine_steps[i].layer;
	}
	return report->enforced & SG_ISOLATE_LANDLOCK ? 0 : SG_ISOLATE_WITHOUT_LANDLOCK;
}

/* ---- the report ---- */

static const char *
layer_text(const struct sg_isolate_report *r, unsigned layer, const char *on)
{
	return r->enforced & layer ? on : "off";
}

int
sg_isolate_report_format(const struct sg_isolate_report *r, char *buf, size_t n)
{
	char landlock[48], rlimits[160];
	if (r->enforced & SG_ISOLATE_LANDLOCK && r->landlock_abi > r->landlock_handled_abi)
		snprintf(landlock, sizeof(landlock), "abi%d(rights of abi%d)", r->landlock_abi,
		         r->landlock_handled_abi);
	else if (r->enforced & SG_ISOLATE_LANDLOCK)
		snprintf(landlock, sizeof(landlock), "abi%d", r->landlock_abi);
	else
		snprintf(landlock, sizeof(landlock), "%s", r->landlock_abi ? "off" : "unavailable");
	const struct sg_isolate_limits *l = &r->limits;
	snprintf(rlimits, sizeof(rlimits),
	         "as:%llu,cpu:%llu,nofile:%llu,fsize:%llu,nproc:%llu,core:0",
	         (unsigned long long)l->address_space, (unsigned long long)l->cpu_seconds,
	         (unsigned long long)l->open_files, (unsigned long long)l->file_size,
	         (unsigned long long)l->processes);
	return snprintf(
	    buf, n,
	    "namespaces=%s nested_userns=%s root=%s hostname=%s fds=%s rlimits=%s caps=%s "
	    "no_new_privs=%s landlock=%s seccomp=%s",
	    layer_text(r, SG_ISOLATE_NAMESPACES, "user,pid,mount,ipc,uts,net"),
	    layer_text(r, SG_ISOLATE_NO_NESTED_USERNS, "0"),
	    layer_text(r, SG_ISOLATE_EMPTY_ROOT, "empty,ro"),
	    layer_text(r, SG_ISOLATE_HOSTNAME, "own"),
	    layer_text(r, SG_ISOLATE_FDS_CLOSED, "closed"),
	    layer_text(r, SG_ISOLATE_RLIMITS, rlimits), layer_text(r, SG_ISOLATE_NO_CAPS, "none"),
	    layer_text(r, SG_ISOLATE_NO_NEW_PRIVS, "on"), landlock,
	    layer_text(r, SG_ISOLATE_SECCOMP, "allowlist,kill_process"));
}
