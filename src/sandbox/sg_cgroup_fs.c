/*
 * cgroupfs by path: the file and directory operations that detection, both
 * version backends and the group share.  Every failure is put in the words
 * an operator needs: what was tried, what the kernel said, what to do.
 */
#include "core/sg_clock.h"
#include "sandbox/sg_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_PATH_MAX (SG_CGROUP_PATH_MAX + 160) /* a group's directory and a file in it */
#define WAIT_NS 1000000000LL                     /* for killed tasks to leave a group */

/* What an operator can do about a failed cgroupfs operation. */
static const char *
fix_for(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
		return "give the gateway write access there (run it as root, or delegate the "
		       "cgroup to its user)";
	case EBUSY:
		return "cgroup v2 gives controllers to the children of a group only while that "
		       "group holds no processes itself; start the gateway in a delegated cgroup "
		       "of its own (systemd Delegate=yes) and move it to a leaf";
	case ENOENT:
		return "the kernel does not provide it here; enable the controller";
	case EINVAL:
	case ERANGE:
		return "the kernel refused the value; check the configured ceiling";
	case ENODEV:
		return "there is no such block device; check the io ceiling's major:minor";
	default:
		return "check the kernel log";
	}
}

int
sg_cgroup_write(const char *dir, const char *file, const char *value, char *why, size_t whylen)
{
	char path[FILE_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int e = 0, fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd == -1) {
		e = errno;
	} else {
		size_t n = strlen(value);
		ssize_t w;
		do
			w = write(fd, value, n);
		while (w == -1 && errno == EINTR);
		e = w == -1 ? errno : (size_t)w != n ? EIO : 0;
		close(fd);
	}
	if (e == 0)
		return 0;
	snprintf(why, whylen, "writing \"%s\" to %s failed: %s; %s", value, path, strerror(e),
	         fix_for(e));
	return -1;
}

int
sg_cgroup_read(const char *dir, const char *file, char *buf, size_t n)
{
	char path[FILE_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	size_t len = 0;
	int rc = 0;
	while (len + 1 < n) {
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -1 : 0;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return rc;
}

bool
sg_cgroup_read_u64(const char *dir, const char *file, const char *key, uint64_t *out)
{
	char buf[4096], *end;
	const char *p = buf;
	if (dir == NULL || sg_cgroup_read(dir, file, buf, sizeof(buf)) == -1)
		return false;
	if (key != NULL) {
		size_t n = strlen(key);
		while (p != NULL && !(strncmp(p, key, n) == 0 && p[n] == ' '))
			p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
		if (p == NULL)
			return false;
		p += n + 1;
	}
	if (*p < '0' || *p > '9')
		return false;
	*out = strtoull(p, &end, 10);
	return true;
}

bool
sg_cgroup_has(const char *dir, const char *file)
{
	char path[FILE_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

bool
sg_cgroup_listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)) != NULL; p += n) {
		bool starts = p == list || p[-1] == ' ' || p[-1] == '+';
		bool ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';
		if (starts && ends)
			return true;
	}
	return false;
}

int
sg_cgroup_mkdir(const char *path, bool *made, char *why, size_t whylen)
{
	if (mkdir(path, 0755) == 0) {
		*made = true;
		return 0;
	}
	int e = errno;
	if (e == EEXIST)
		return 0;
	snprintf(why, whylen, "cannot create %s: %s; %s", path, strerror(e), fix_for(e));
	errno = e;
	return -1;
}

/* A killed task needs a moment to leave its group. */
static void
pause_briefly(void)
{
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
}

int
sg_cgroup_rmdir(const char *path, char *err, size_t errlen)
{
	for (int64_t deadline = (int64_t)sg_mono_ns() + WAIT_NS; rmdir(path) == -1; pause_briefly()) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		if (e != EBUSY || (int64_t)sg_mono_ns() > deadline) {
			snprintf(err, errlen, "cannot remove %s: %s%s", path, strerror(e),
			         e == EBUSY ? "; processes remain in it: kill the group first"
			                    : "");
			return -1;
		}
	}
	return 0;
}

void
sg_cgroup_rmdir_parent(const char *path)
{
	char parent[FILE_PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash != NULL) {
		*slash = '\0';
		rmdir(parent); /* ENOTEMPTY or EBUSY: someone else still uses it */
	}
}

/*
 * Calls `each` for every pid listed in dir/cgroup.procs until it returns
 * false.  Returns how many were listed, -1 when the list cannot be read.
 * Only whole positive numbers count: kill(0) or kill(-1) would hit far
 * more than the group.
 */
static long
for_each_pid(const char *dir, bool (*each)(pid_t pid, void *arg), void *arg)
{
	char path[FILE_PATH_MAX], *line = NULL;
	size_t cap = 0;
	long n = 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while (getline(&line, &cap, f) > 0) {
		char *end;
		long pid = strtol(line, &end, 10);
		if (pid <= 0 || pid > INT32_MAX || (*end != '\n' && *end != '\0'))
			continue;
		n++;
		if (!each((pid_t)pid, arg))
			break;
	}
	free(line);
	fclose(f);
	return n;
}

struct find {
	pid_t pid;
	bool found;
};

static bool
find_pid(pid_t pid, void *arg)
{
	struct find *f = arg;
	f->found = pid == f->pid;
	return !f->found;
}

static bool
kill_one(pid_t pid, void *self)
{
	if (pid != *(pid_t *)self)
		kill(pid, SIGKILL); /* ESRCH: it exited meanwhile, which is the goal */
	return true;
}

/*
 * Rounds of listing and SIGKILLing until every directory lists nobody, so
 * tasks forked between a listing and the kills die in the next round.  The
 * calling process is never a target: finding itself, it refuses up front.
 */
int
sg_cgroup_kill_listed(const char *const *dirs, size_t n, char *err, size_t errlen, bool check_only)
{
	pid_t self = getpid();
	for (size_t i = 0; i < n; i++) {
		struct find me = {self, false};
		if (for_each_pid(dirs[i], find_pid, &me) > 0 && me.found) {
			snprintf(err, errlen,
			         "refusing to kill the processes of %s: this process is in it",
			         dirs[i]);
			return -1;
		}
	}
	if (check_only)
		return 0;
	for (int64_t deadline = (int64_t)sg_mono_ns() + WAIT_NS;; pause_briefly()) {
		const char *busy = NULL;
		for (size_t i = 0; i < n; i++) {
			long listed = for_each_pid(dirs[i], kill_one, &self);
			if (listed < 0) {
				snprintf(err, errlen, "cannot list the processes in %s: %s",
				         dirs[i], strerror(errno));
				return -1;
			}
			busy = busy != NULL ? busy : listed > 0 ? dirs[i] : NULL;
		}
		if (busy == NULL)
			return 0;
		if ((int64_t)sg_mono_ns() > deadline) {
			snprintf(err, errlen, "processes remain in %s a second after SIGKILL",
			         busy);
			return -1;
		}
	}
}
