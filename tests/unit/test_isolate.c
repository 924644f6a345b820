/*
 * OS isolation: every case spawns real workers and judges them by what the
 * kernel lets them do and by how they end (the wait status).  A check inside
 * a worker reports on the kept stderr and exits non-zero, since cmocka's
 * asserts belong to the parent.  Workers always leave through _exit, so
 * neither cmocka nor LeakSanitizer runs in them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <lauxlib.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <lua.h>
#include <lualib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sg_isolate.h"
#include "sandbox/sg_seccomp.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
/* The RLIMIT_AS case needs ASan's malloc to return NULL, as glibc's does. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

#define AS_HEADROOM ((rlim_t)256 << 20)

/* ---- inside a worker ---- */

static _Noreturn void
check_failed(int line, const char *what)
{
	char msg[300];
	int n =
	    snprintf(msg, sizeof(msg), "test_isolate.c:%d: worker check failed: %s (errno %d)\n",
	             line, what, errno);
	(void)!write(2, msg, (size_t)n);
	_exit(1);
}
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			check_failed(__LINE__, #cond);                                             \
	} while (0)

struct job {
	struct sg_isolate_opts o;
	int sock;  /* the worker's end of a socketpair */
	int extra; /* per case: a port, a host descriptor, a table index */
};

static void
confine(const struct job *j, struct sg_isolate_report *r)
{
	char err[256];
	if (sg_isolate_confine(&j->o, r, err, sizeof(err)) < 0) {
		(void)!write(2, err, strlen(err));
		_exit(2);
	}
}

static void
say(int sock, const char *text)
{
	CHECK(write(sock, text, strlen(text)) == (ssize_t)strlen(text));
}

static void
read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	ssize_t got = read(fd, buf, n - 1);
	CHECK(got >= 0);
	buf[got] = '\0';
	close(fd);
}

/* ---- in the parent ---- */

static rlim_t
address_space_in_use(void)
{
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu", &pages), 1);
	fclose(f);
	return (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE));
}

/* A job whose worker keeps stderr and its socket end; pair[0] is the parent's. */
static struct job
job_new(int pair[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
	struct job j = {.sock = pair[1]};
	sg_isolate_opts_init(&j.o);
	j.o.hostname = "sandgate-test";
	j.o.keep_fds[0] = 2;
	j.o.keep_fds[1] = pair[1];
	j.o.n_keep_fds = 2;
	/* ASan reserves terabytes of shadow up front: limit the growth, not the total. */
	j.o.limits.address_space = address_space_in_use() + AS_HEADROOM;
	j.o.require_landlock = sg_isolate_landlock_abi() > 0;
	return j;
}

static pid_t
spawn(struct job *j, int (*fn)(void *))
{
	char err[256] = "";
	pid_t pid = sg_isolate_spawn(&j->o, fn, j, err, sizeof(err));
	if (pid < 0)
		fail_msg("spawn: %s", err);
	close(j->sock);
	return pid;
}

static int
reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	return status;
}

static void
assert_exit_ok(int status, const char *what)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: worker ended with %s %d", what,
		         WIFEXITED(status) ? "exit code" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void
assert_killed_by(int status, int sig, const char *what)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
		fail_msg("%s: expected signal %d, worker ended with %s %d", what, sig,
		         WIFEXITED(status) ? "exit code" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static int
count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- spawn ---- */

static int
worker_reports_ids(void *arg)
{
	const struct job *j = arg;
	char map[128];
	unsigned inside, outside, count;
	CHECK(getpid() == 1);
	CHECK(getenv("SG_TEST_SECRET") == NULL && (environ == NULL || environ[0] == NULL));
	struct sigaction usr1;
	sigset_t mask;
	CHECK(sigaction(SIGUSR1, NULL, &usr1) == 0 && usr1.sa_handler == SIG_DFL);
	CHECK(sigprocmask(SIG_SETMASK, NULL, &mask) == 0 && !sigismember(&mask, SIGUSR2));
	CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0);
	if (j->extra) /* the parent had no groups, or could drop them */
		CHECK(getgroups(0, NULL) == 0);
	read_file("/proc/self/uid_map", map, sizeof(map));
	CHECK(sscanf(map, "%u %u %u", &inside, &outside, &count) == 3);
	CHECK(inside == 0 && outside == j->o.outside_uid && count == 1);
	read_file("/proc/self/gid_map", map, sizeof(map));
	CHECK(sscanf(map, "%u %u %u", &inside, &outside, &count) == 3);
	CHECK(inside == 0 && outside == j->o.outside_gid && count == 1);
	say(j->sock, "up");
	char go;
	CHECK(read(j->sock, &go, 1) == 1); /* the parent looks at us from outside meanwhile */
	return 0;
}

static void
ignore_signal(int sig)
{
	(void)sig;
}

static void
test_spawn_runs_pid_1_as_the_mapped_host_ids(void **state)
{
	(void)state;
	int fds_before = count_open_fds();
	int pair[2];
	struct job j = job_new(pair);
	j.extra = geteuid() == 0; /* a root parent makes the worker drop its groups */
	/* A zygote's secrets, handler and mask, none of which the worker may inherit. */
	assert_int_equal(setenv("SG_TEST_SECRET", "hunter2", 1), 0);
	struct sigaction handler = {.sa_handler = ignore_signal}, old_usr1;
	sigset_t usr2, old_mask;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	assert_int_equal(sigaction(SIGUSR1, &handler, &old_usr1), 0);
	assert_int_equal(sigprocmask(SIG_BLOCK, &usr2, &old_mask), 0);
	gid_t groups[64], extra_group = 4242;
	int n_groups = getgroups(64, groups);
	assert_true(n_groups >= 0);
	if (j.extra) /* a root parent with a supplementary group the worker must shed */
		assert_int_equal(setgroups(1, &extra_group), 0);
	pid_t pid = spawn(&j, worker_reports_ids);
	if (j.extra)
		assert_int_equal(setgroups((size_t)n_groups, groups), 0);
	unsetenv("SG_TEST_SECRET");
	sigaction(SIGUSR1, &old_usr1, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	char buf[4096];
	assert_int_equal(read(pair[0], buf, 2), 2);
	snprintf(buf, sizeof(buf), "/proc/%d/status", (int)pid);
	FILE *f = fopen(buf, "r");
	assert_non_null(f);
	char expect_nspid[64], expect_uid[64], expect_gid[64];
	snprintf(expect_nspid, sizeof(expect_nspid), "NSpid:\t%d\t1\n", (int)pid);
	unsigned u = (unsigned)j.o.outside_uid, g = (unsigned)j.o.outside_gid;
	snprintf(expect_uid, sizeof(expect_uid), "Uid:\t%u\t%u\t%u\t%u\n", u, u, u, u);
	snprintf(expect_gid, sizeof(expect_gid), "Gid:\t%u\t%u\t%u\t%u\n", g, g, g, g);
	int seen = 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (strncmp(buf, "Uid:", 4) == 0 || strncmp(buf, "Gid:", 4) == 0) {
			assert_string_equal(buf, buf[0] == 'U' ? expect_uid : expect_gid);
			seen++;
		}
		if (strncmp(buf, "NSpid:", 6) == 0) {
			assert_string_equal(buf, expect_nspid);
			seen++;
		}
	}
	fclose(f);
	assert_int_equal(seen, 3);
	assert_int_equal(write(pair[0], "g", 1), 1);
	assert_exit_ok(reap(pid), __func__);
	close(pair[0]);
	assert_int_equal(count_open_fds(), fds_before); /* spawn leaks nothing here */
}

static int
worker_checks_setgroups_denied(void *arg)
{
	char text[64];
	read_file("/proc/self/setgroups", text, sizeof(text));
	CHECK(strcmp(text, "deny\n") == 0);
	return worker_reports_ids(arg);
}

/* Runs as uid 65534 with no capabilities, like a zygote started by a user. */
static int
unprivileged_parent(struct job *j, int parent_end)
{
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return 10;
	struct sg_isolate_opts o;
	sg_isolate_opts_init(&o);
	if (o.outside_uid != 65534 || o.outside_gid != 65534)
		return 11; /* the defaults map one's own ids */
	char err[256] = "";
	o.outside_uid = 12345;
	if (sg_isolate_spawn(&o, worker_checks_setgroups_denied, j, err, sizeof(err)) != -1 ||
	    strstr(err, "needs CAP_SETUID and CAP_SETGID") == NULL)
		return 12;
	pid_t pid = sg_isolate_spawn(&j->o, worker_checks_setgroups_denied, j, err, sizeof(err));
	if (pid < 0)
		return 13;
	close(j->sock); /* so that a worker dying early shows as EOF below */
	char buf[64];
	if (read(parent_end, buf, 2) != 2)
		return 14;
	snprintf(buf, sizeof(buf), "/proc/%d/mem", (int)pid); /* same uid, yet no access */
	if (open(buf, O_RDONLY | O_CLOEXEC) != -1 || errno != EACCES)
		return 16;
	if (write(parent_end, "g", 1) != 1)
		return 14;
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 15;
	return 0;
}

static void
test_unprivileged_parent_maps_its_own_ids(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* it needs root to become an unprivileged user */
	int pair[2];
	struct job j = job_new(pair);
	j.extra = 1;
	pid_t helper = fork();
	assert_true(helper >= 0);
	if (helper == 0)
		_exit(unprivileged_parent(&j, pair[0]));
	close(pair[1]);
	close(pair[0]);
	assert_exit_ok(reap(helper), __func__);
}

static void
test_spawn_refuses_host_root(void **state)
{
	(void)state;
	struct sg_isolate_opts o;
	sg_isolate_opts_init(&o);
	char err[256];
	o.outside_uid = 0;
	assert_int_equal(sg_isolate_spawn(&o, worker_reports_ids, NULL, err, sizeof(err)), -1);
	assert_string_equal(err,
	                    "isolate: refusing to run a worker as host uid or gid 0: it would "
	                    "own the host's files if it got out; configure an unprivileged id");
	sg_isolate_opts_init(&o);
	o.outside_gid = 0;
	err[0] = '\0';
	assert_int_equal(sg_isolate_spawn(&o, worker_reports_ids, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "uid or gid 0"));
}

static int
worker_probes_network(void *arg)
{
	const struct job *j = arg;
	char dev[4096];
	read_file("/proc/self/net/dev", dev, sizeof(dev));
	int interfaces = 0;
	for (char *line = strchr(strchr(dev, '\n') + 1, '\n'); line && line[1];
	     line = strchr(line + 1, '\n')) {
		interfaces++;
		CHECK(strncmp(line + 1 + strspn(line + 1, " "), "lo:", 3) == 0);
	}
	CHECK(interfaces == 1);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	CHECK((ifr.ifr_flags & IFF_UP) == 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->extra)};
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(s, (struct sockaddr *)&to, sizeof(to)) == -1 && errno == ENETUNREACH);
	return 0;
}

static void
test_network_namespace_has_only_a_down_loopback(void **state)
{
	(void)state;
	/* A real listener on the host's loopback, which the worker must not reach. */
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	int pair[2];
	struct job j = job_new(pair);
	j.extra = ntohs(a.sin_port);
	assert_exit_ok(reap(spawn(&j, worker_probes_network)), __func__);
	close(pair[0]);
	close(l);
}

/* ---- confinement without the syscall filter ---- */

static int
worker_looks_at_its_root(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	struct statfs fs;
	CHECK(statfs("/", &fs) == 0);
	CHECK(fs.f_type == TMPFS_MAGIC && (fs.f_flags & ST_RDONLY));
	CHECK(fs.f_files - fs.f_ffree == 1); /* one inode in use: the root itself */
	/* The host's tree is gone, not hidden under the root ("/.." would climb it). */
	CHECK(statfs("/..", &fs) == 0 && fs.f_type == TMPFS_MAGIC);
	CHECK(access("/../etc/passwd", F_OK) == -1 && errno == ENOENT);
	DIR *d = opendir("/");
	if (d == NULL) {
		CHECK(errno == EACCES && (r.enforced & SG_ISOLATE_LANDLOCK));
	} else {
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
		closedir(d);
	}
	CHECK(open("/etc/passwd", O_RDONLY) == -1 && errno == ENOENT);
	CHECK(access("/proc/self", F_OK) == -1 && errno == ENOENT);
	CHECK(mkdir("/tmp", 0700) == -1 && (errno == EROFS || errno == EACCES));
	char cwd[16];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL && strcmp(cwd, "/") == 0);
	struct utsname u;
	CHECK(uname(&u) == 0 && strcmp(u.nodename, "sandgate-test") == 0);
	return 0;
}

static void
test_confined_root_is_empty_and_read_only(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	j.o.test_without_seccomp = true;
	assert_exit_ok(reap(spawn(&j, worker_looks_at_its_root)), __func__);
	close(pair[0]);
}

static int
worker_tries_a_leaked_directory(void *arg)
{
	const struct job *j = arg;
	int before = openat(j->extra, "passwd", O_RDONLY | O_CLOEXEC);
	CHECK(before >= 0); /* the descriptor works until Landlock is on */
	close(before);
	struct sg_isolate_report r;
	confine(j, &r);
	CHECK(r.enforced & SG_ISOLATE_LANDLOCK);
	CHECK(r.landlock_abi == sg_isolate_landlock_abi());
	CHECK(openat(j->extra, "passwd", O_RDONLY) == -1 && errno == EACCES);
	CHECK(openat(j->extra, ".", O_RDONLY | O_DIRECTORY) == -1 && errno == EACCES);
	if (r.landlock_handled_abi >= 4) { /* TCP connect is refused before routing */
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80)};
		to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(s >= 0 && connect(s, (struct sockaddr *)&to, sizeof(to)) == -1);
		CHECK(errno == EACCES);
	}
	return 0;
}

static void
test_landlock_denies_a_leaked_host_directory(void **state)
{
	(void)state;
	if (sg_isolate_landlock_abi() == 0)
		skip();
	int pair[2];
	struct job j = job_new(pair);
	j.o.test_without_seccomp = true;
	j.extra = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(j.extra >= 0);
	j.o.keep_fds[j.o.n_keep_fds++] = j.extra;
	assert_exit_ok(reap(spawn(&j, worker_tries_a_leaked_directory)), __func__);
	close(j.extra);
	close(pair[0]);
}

static int
worker_checks_privileges_and_limits(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
	CHECK(syscall(SYS_capget, &head, caps) == 0);
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		CHECK(caps[i].effective == 0 && caps[i].permitted == 0 && caps[i].inheritable == 0);
	CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 0);
	CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	CHECK(sethostname("x", 1) == -1 && errno == EPERM);
	CHECK(fork() == -1 && errno == EAGAIN); /* RLIMIT_NPROC 0, even without seccomp */
	CHECK(unshare(CLONE_NEWUSER) == -1 && errno == ENOSPC); /* max_user_namespaces 0 */
	const struct {
		int resource;
		rlim_t want;
	} limits[] = {
	    {RLIMIT_AS, j->o.limits.address_space},  {RLIMIT_CPU, j->o.limits.cpu_seconds},
	    {RLIMIT_NOFILE, j->o.limits.open_files}, {RLIMIT_FSIZE, j->o.limits.file_size},
	    {RLIMIT_NPROC, j->o.limits.processes},   {RLIMIT_CORE, 0},
	};
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl;
		CHECK(getrlimit(limits[i].resource, &rl) == 0);
		CHECK(rl.rlim_cur == limits[i].want && rl.rlim_max == limits[i].want);
	}
	struct rlimit more = {.rlim_cur = 64, .rlim_max = 64};
	CHECK(setrlimit(RLIMIT_NOFILE, &more) == -1 && errno == EPERM);
	/* Every descriptor but the kept ones is gone. */
	for (int fd = 0; fd < 1024; fd++)
		CHECK((fcntl(fd, F_GETFD) >= 0) == (fd == 2 || fd == j->sock));
	return 0;
}

static void
test_confined_worker_holds_no_privilege_or_descriptor(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	j.o.test_without_seccomp = true;
	/* Descriptors a careless zygote might hold, none close-on-exec. */
	int stray[3] = {open("/etc/hostname", O_RDONLY), open("/", O_RDONLY), dup(pair[0])};
	pid_t pid = spawn(&j, worker_checks_privileges_and_limits);
	for (int i = 0; i < 3; i++)
		close(stray[i]);
	assert_exit_ok(reap(pid), __func__);
	close(pair[0]);
}

static int
worker_keeps_a_closed_descriptor(void *arg)
{
	struct job *j = arg;
	j->o.keep_fds[j->o.n_keep_fds++] = 999;
	struct sg_isolate_report r;
	char err[256];
	CHECK(sg_isolate_confine(&j->o, &r, err, sizeof(err)) == -1);
	CHECK(strcmp(err, "isolate: descriptor 999 to keep is not open: Bad file descriptor") == 0);
	CHECK(!(r.enforced & SG_ISOLATE_FDS_CLOSED) && (r.enforced & SG_ISOLATE_EMPTY_ROOT));
	return 0;
}

static void
test_confine_fails_closed_with_a_message(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	assert_exit_ok(reap(spawn(&j, worker_keeps_a_closed_descriptor)), __func__);
	close(pair[0]);
	/* Outside a spawned worker (not pid 1) nothing is touched. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sg_isolate_report r;
		char err[256];
		int rc = sg_isolate_confine(&j.o, &r, err, sizeof(err));
		_exit(rc == -1 && r.enforced == 0 && strstr(err, "not pid 1") ? 0 : 1);
	}
	assert_exit_ok(reap(pid), "confine outside spawn");
}

/* ---- full confinement: the syscall filter ---- */

static const char *const forbidden[] = {
    "open",
    "openat",
    "socket",
    "fork",
    "vfork",
    "clone3",
    "execve",
    "ptrace",
    "mount",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "keyctl",
    "io_uring_setup",
    "userfaultfd",
    "personality",
    "process_vm_readv",
    "mmap PROT_EXEC",
    "mprotect",
    "sendmsg",
    "sendto with an address",
    "dup",
    "prctl",
    "setrlimit",
    "kill",
    "x32 getpid",
    "i386 getpid (int 0x80)",
};

static long
i386_getpid(void)
{
	long ret = -1;
#if defined(__x86_64__)
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory"); /* i386 getpid */
#endif
	return ret;
}

/* Makes the forbidden call named forbidden[which]; returns if it got through. */
static void
make_forbidden_call(size_t which)
{
	static char page[4096] __attribute__((aligned(4096)));
	uint64_t clone_args[11] = {0};
	char *argv[] = {"/bin/true", NULL};
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	struct sockaddr_in to = {.sin_family = AF_INET};
	struct rlimit none = {0, 0};
	const char *name = forbidden[which];
	if (!strcmp(name, "open"))
		(void)open("/etc/passwd", O_RDONLY);
	else if (!strcmp(name, "openat"))
		(void)syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);
	else if (!strcmp(name, "socket"))
		(void)socket(AF_UNIX, SOCK_STREAM, 0);
	else if (!strcmp(name, "fork"))
		(void)fork();
	else if (!strcmp(name, "vfork"))
		(void)syscall(SYS_vfork);
	else if (!strcmp(name, "clone3"))
		(void)syscall(SYS_clone3, clone_args, sizeof(clone_args));
	else if (!strcmp(name, "execve"))
		(void)execve(argv[0], argv, argv + 1);
	else if (!strcmp(name, "ptrace"))
		(void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	else if (!strcmp(name, "mount"))
		(void)mount("none", "/", "tmpfs", 0, NULL);
	else if (!strcmp(name, "unshare"))
		(void)unshare(CLONE_NEWUSER);
	else if (!strcmp(name, "setns"))
		(void)setns(0, 0);
	else if (!strcmp(name, "bpf"))
		(void)syscall(SYS_bpf, 0, NULL, 0);
	else if (!strcmp(name, "perf_event_open"))
		(void)syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	else if (!strcmp(name, "keyctl"))
		(void)syscall(SYS_keyctl, 0, 0, 0, 0, 0);
	else if (!strcmp(name, "io_uring_setup"))
		(void)syscall(SYS_io_uring_setup, 1, NULL);
	else if (!strcmp(name, "userfaultfd"))
		(void)syscall(SYS_userfaultfd, 0);
	else if (!strcmp(name, "personality"))
		(void)syscall(SYS_personality, 0xffffffff);
	else if (!strcmp(name, "process_vm_readv"))
		(void)syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0);
	else if (!strcmp(name, "mmap PROT_EXEC"))
		(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else if (!strcmp(name, "mprotect"))
		(void)mprotect(page, sizeof(page), PROT_READ);
	else if (!strcmp(name, "sendmsg"))
		(void)sendmsg(2, &msg, 0);
	else if (!strcmp(name, "sendto with an address"))
		(void)sendto(2, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
	else if (!strcmp(name, "dup"))
		(void)dup(2);
	else if (!strcmp(name, "prctl"))
		(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	else if (!strcmp(name, "setrlimit"))
		(void)setrlimit(RLIMIT_CORE, &none);
	else if (!strcmp(name, "kill"))
		(void)kill(1, 0);
	else if (!strcmp(name, "x32 getpid"))
		(void)syscall(0x40000000 | SYS_getpid); /* __X32_SYSCALL_BIT */
	else if (!strcmp(name, "i386 getpid (int 0x80)"))
		(void)i386_getpid();
	else
		CHECK(!"a forbidden call without code");
}

static int
worker_makes_a_forbidden_call(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	say(j->sock, "c");
	make_forbidden_call((size_t)j->extra);
	return 0; /* still alive: the call got through */
}

/* Whether the kernel runs i386 code at all; if not, int 0x80 faults instead. */
static bool
kernel_has_ia32(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(i386_getpid() == getpid() ? 0 : 1);
	int status = reap(pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void
test_seccomp_kills_every_forbidden_call(void **state)
{
	(void)state;
	bool ia32 = kernel_has_ia32();
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		if (!ia32 && strstr(forbidden[i], "i386"))
			continue;
#if !defined(__x86_64__)
		if (strstr(forbidden[i], "x32"))
			continue;
#endif
		int pair[2];
		struct job j = job_new(pair);
		j.extra = (int)i;
		pid_t pid = spawn(&j, worker_makes_a_forbidden_call);
		char c = 0;
		if (read(pair[0], &c, 1) != 1 || c != 'c')
			fail_msg("%s: the worker did not get confined", forbidden[i]);
		assert_killed_by(reap(pid), SIGSYS, forbidden[i]);
		close(pair[0]);
	}
}

/* A template-like chunk: strings, big tables, GC, errors, coroutines, clocks. */
static const char lua_chunk[] =
    "local t = {} for i = 1, 100000 do t[i] = tostring(i) end\n"
    "local s = table.concat(t, ',')\n"
    "local n = 0 for _ in s:gmatch('%d+') do n = n + 1 end\n"
    "local big = string.rep('x', 8 * 1024 * 1024)\n"
    "local ok = pcall(error, 'boom')\n"
    "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
    "local r1 = co(1) local r2 = co(10)\n"
    "collectgarbage()\n"
    "assert(os.clock() >= 0 and os.time() > 0 and math.random(1, 6) >= 1)\n"
    "return n + #big + r1 + r2 + (ok and 1000 or 0) + #string.format('%.3f', 1 / 3)\n";

static long long
run_lua_chunk(void)
{
	lua_State *L = luaL_newstate();
	CHECK(L != NULL);
	luaL_openlibs(L);
	CHECK(luaL_loadbufferx(L, lua_chunk, sizeof(lua_chunk) - 1, "=chunk", "t") == LUA_OK);
	CHECK(lua_pcall(L, 0, 1, 0) == LUA_OK);
	long long v = (long long)lua_tointeger(L, -1);
	lua_close(L);
	return v;
}

static void
churn_memory(void)
{
	for (size_t size = 1; size <= ((size_t)32 << 20); size *= 3) {
		unsigned char *p = malloc(size);
		CHECK(p != NULL);
		p[0] = p[size - 1] = 7;
		unsigned char *q = realloc(p, size * 2); /* large blocks grow by mremap */
		CHECK(q != NULL && q[0] == 7);
		free(q);
		free(calloc(size, 1));
	}
}

static int
worker_runs_a_template_workload(void *arg)
{
	const struct job *j = arg;
	json_object_seed(0); /* jansson seeds from /dev/urandom: do it while files exist */
	struct sg_isolate_report r;
	confine(j, &r);
	churn_memory();
	struct timespec ts, nap = {0, 1000000};
	CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && clock_gettime(CLOCK_REALTIME, &ts) == 0);
	CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0 && nanosleep(&nap, NULL) == 0);
	long long lua = run_lua_chunk();
	json_t *frame = json_pack("{s:s, s:I}", "type", "done", "value", (json_int_t)lua);
	char *text = json_dumps(frame, JSON_COMPACT);
	json_t *back = json_loads(text, 0, NULL);
	CHECK(back != NULL && json_equal(frame, back));
	char report[512], line[1024];
	sg_isolate_report_format(&r, report, sizeof(report));
	int n = snprintf(line, sizeof(line), "%s %s\n", text, report);
	json_decref(back);
	json_decref(frame);
	free(text);
	CHECK(send(j->sock, line, (size_t)n, MSG_NOSIGNAL) == n);
	char ack[3];
	struct iovec iov = {ack, sizeof(ack)};
	CHECK(readv(j->sock, &iov, 1) == 3 && memcmp(ack, "ack", 3) == 0);
	return 0;
}

static void
test_worker_runs_lua_and_speaks_over_its_socket(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	pid_t pid = spawn(&j, worker_runs_a_template_workload);
	char line[1024];
	size_t have = 0;
	while (have == 0 || line[have - 1] != '\n') {
		ssize_t got = read(pair[0], line + have, sizeof(line) - 1 - have);
		if (got <= 0)
			fail_msg("the worker hung up early (status %d)", reap(pid));
		have += (size_t)got;
	}
	line[have] = '\0';
	assert_non_null(strstr(line, "{\"type\":\"done\",\"value\":8488635} "));
	assert_non_null(
	    strstr(line, " namespaces=user,pid,mount,ipc,uts,net nested_userns=0 root=empty,ro "));
	assert_non_null(strstr(line, " caps=none no_new_privs=on "));
	assert_non_null(strstr(line, " seccomp=allowlist,kill_process\n"));
	if (sg_isolate_landlock_abi() > 0)
		assert_non_null(strstr(line, " landlock=abi"));
	assert_int_equal(write(pair[0], "ack", 3), 3);
	assert_exit_ok(reap(pid), __func__);
	close(pair[0]);
}

static int
worker_allocates_past_its_limit(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	CHECK(malloc((size_t)1 << 30) == NULL); /* 1 GiB against 256 MiB of headroom */
	void *small = malloc((size_t)1 << 20);
	CHECK(small != NULL);
	free(small);
	size_t total = 0;
	for (void *p; (p = malloc((size_t)4 << 20)) != NULL;)
		total += (size_t)4 << 20; /* kept: the limit, not a leak, must stop this */
	CHECK(total > AS_HEADROOM / 2 && total <= AS_HEADROOM);
	return 0;
}

static void
test_rlimit_as_makes_big_allocations_fail(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	assert_exit_ok(reap(spawn(&j, worker_allocates_past_its_limit)), __func__);
	close(pair[0]);
}

static int
worker_spins(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	for (volatile unsigned long i = 0;; i++)
		;
	return 0;
}

static void
test_cpu_limit_kills_a_spinning_worker(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	j.o.limits.cpu_seconds = 1;
	pid_t pid = spawn(&j, worker_spins);
	int status = 0;
	for (int tick = 0; tick < 100 && waitpid(pid, &status, WNOHANG) == 0; tick++)
		usleep(100000);
	if (kill(pid, 0) == 0) { /* still there after 10 s: the limit did nothing */
		kill(pid, SIGKILL);
		reap(pid);
		fail_msg("RLIMIT_CPU did not stop the worker");
	}
	assert_killed_by(status, SIGKILL, __func__); /* pid 1 ignores SIGXCPU */
	close(pair[0]);
}

static int
worker_waits_forever(void *arg)
{
	const struct job *j = arg;
	struct sg_isolate_report r;
	confine(j, &r);
	say(j->sock, "c");
	char c;
	CHECK(read(j->sock, &c, 1) == 1); /* blocks: the helper never writes */
	return 0;
}

/*
 * The middle process spawns a worker and is then killed.  The test's helper
 * is a child subreaper, so the orphaned worker is reparented to it and its
 * end can be observed.
 */
static int
orphan_a_worker(struct job *j, int parent_end)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return 20;
	pid_t middle = fork();
	if (middle == 0) {
		char err[256];
		if (sg_isolate_spawn(&j->o, worker_waits_forever, j, err, sizeof(err)) > 0)
			for (;;)
				pause();
		_exit(21);
	}
	close(j->sock); /* so that a middle dying early shows as EOF below */
	char c;
	if (middle < 0 || read(parent_end, &c, 1) != 1 || c != 'c')
		return 22;
	kill(middle, SIGKILL);
	int status;
	if (waitpid(middle, &status, 0) != middle)
		return 23;
	alarm(10); /* the worker must go by itself */
	pid_t gone = waitpid(-1, &status, 0);
	return gone > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 24;
}

static void
test_worker_dies_with_its_parent(void **state)
{
	(void)state;
	int pair[2];
	struct job j = job_new(pair);
	pid_t helper = fork();
	assert_true(helper >= 0);
	if (helper == 0)
		_exit(orphan_a_worker(&j, pair[0]));
	close(pair[1]);
	close(pair[0]);
	assert_exit_ok(reap(helper), __func__);
}

/* ---- the report and the filter as data ---- */

static void
test_report_names_every_layer(void **state)
{
	(void)state;
	struct sg_isolate_report r = {
	    .enforced = 0x3ff,
	    .landlock_abi = 7,
	    .landlock_handled_abi = 7,
	    .limits = {268435456, 60, 8, 0, 0},
	};
	char buf[512];
	sg_isolate_report_format(&r, buf, sizeof(buf));
	assert_string_equal(buf,
	                    "namespaces=user,pid,mount,ipc,uts,net nested_userns=0 root=empty,ro "
	                    "hostname=own "
	                    "fds=closed rlimits=as:268435456,cpu:60,nofile:8,fsize:0,nproc:0,"
	                    "core:0 caps=none no_new_privs=on landlock=abi7 "
	                    "seccomp=allowlist,kill_process");
	r.landlock_abi = 9;
	sg_isolate_report_format(&r, buf, sizeof(buf));
	assert_non_null(strstr(buf, " landlock=abi9(rights of abi7) "));
	r = (struct sg_isolate_report){.enforced = SG_ISOLATE_NAMESPACES};
	sg_isolate_report_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "namespaces=user,pid,mount,ipc,uts,net nested_userns=off root=off "
	                         "hostname=off "
	                         "fds=off rlimits=off caps=off no_new_privs=off "
	                         "landlock=unavailable seccomp=off");
}

static void
test_filter_builds_and_kills_by_default(void **state)
{
	(void)state;
	char err[128];
	scmp_filter_ctx ctx = sg_seccomp_worker_filter(err, sizeof(err));
	assert_non_null(ctx);
	uint32_t action = 0;
	assert_int_equal(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_DEFAULT, &action), 0);
	assert_int_equal(action, SCMP_ACT_KILL_PROCESS);
	assert_int_equal(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_BADARCH, &action), 0);
	assert_int_equal(action, SCMP_ACT_KILL_PROCESS);
	seccomp_release(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spawn_runs_pid_1_as_the_mapped_host_ids),
	    cmocka_unit_test(test_unprivileged_parent_maps_its_own_ids),
	    cmocka_unit_test(test_spawn_refuses_host_root),
	    cmocka_unit_test(test_network_namespace_has_only_a_down_loopback),
	    cmocka_unit_test(test_confined_root_is_empty_and_read_only),
	    cmocka_unit_test(test_landlock_denies_a_leaked_host_directory),
	    cmocka_unit_test(test_confined_worker_holds_no_privilege_or_descriptor),
	    cmocka_unit_test(test_confine_fails_closed_with_a_message),
	    cmocka_unit_test(test_seccomp_kills_every_forbidden_call),
	    cmocka_unit_test(test_worker_runs_lua_and_speaks_over_its_socket),
	    cmocka_unit_test(test_rlimit_as_makes_big_allocations_fail),
	    cmocka_unit_test(test_cpu_limit_kills_a_spinning_worker),
	    cmocka_unit_test(test_worker_dies_with_its_parent),
	    cmocka_unit_test(test_report_names_every_layer),
	    cmocka_unit_test(test_filter_builds_and_kills_by_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
