/*
 * The gateway's client for the zygote (see sg_zygote.h): start it, ask it
 * to spawn or kill, take its exit notices, stop it.
 */
#include "core/sg_clock.h"
#include "sandbox/sg_zygote_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the client, in the gateway ---- */

void
sg_zygote_config_init(struct sg_zygote_config *c)
{
	memset(c, 0, sizeof(*c));
	sg_worker_opts_init(&c->worker);
	c->cgroup_mode = SG_CGROUP_STRICT;
	c->max_workers = 256;
	c->max_tenants = 1024;
	c->reply_timeout_ms = 5000;
}

static int
broken(struct sg_zygote *z, int fd, char *err, size_t errlen, const char *why)
{
	if (fd >= 0)
		close(fd);
	z->broken = true;
	return sg_zygote_say(err, errlen, "zygote: %s; stop it and start a new one", why);
}

/* One message within timeout_ms (-1: no limit): 1, 0 on timeout, -1 with err. */
static int
client_read(struct sg_zygote *z, int timeout_ms, struct zmsg *m, int *fd, char *err, size_t errlen)
{
	int64_t end = sg_mono_ms() + timeout_ms;
	char why[200];
	if (z->broken || z->fd < 0)
		return sg_zygote_say(err, errlen, "zygote: not running; start a new one");
	for (;;) {
		int rc = sg_zygote_recv(z->fd, m, fd, why, sizeof(why));
		if (rc == 1)
			return 1;
		if (rc != RECV_NONE)
			return broken(z, -1, err, errlen, rc == 0 ? "it exited" : why);
		int left = timeout_ms < 0 ? -1 : (int)(end - sg_mono_ms());
		if (timeout_ms >= 0 && left <= 0)
			return 0;
		struct pollfd p = {z->fd, POLLIN, 0};
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return broken(z, -1, err, errlen, strerror(errno));
	}
}

static int
queue_exit(struct sg_zygote *z, const struct zmsg *m, char *err, size_t errlen)
{
	if (m->u.status.pid <= 0)
		return broken(z, -1, err, errlen, "it reported the exit of a pid under 1");
	if (z->n_exits == z->cap_exits) {
		size_t cap = z->cap_exits ? 2 * z->cap_exits : 16;
		struct sg_zygote_exit *grown = realloc(z->exits, cap * sizeof(*grown));
		if (grown == NULL)
			return sg_zygote_say(err, errlen, "zygote: out of memory for exit notices");
		z->exits = grown;
		z->cap_exits = cap;
	}
	z->exits[z->n_exits++] = (struct sg_zygote_exit){m->u.status.pid, m->u.status.value};
	return 0;
}

/* Reads until the answer to request `id`, queueing EXITED notices met on the way. */
static int
await_reply(struct sg_zygote *z, uint32_t id, struct zmsg *m, int *fd, char *err, size_t errlen)
{
	for (;;) {
		int rc = client_read(z, z->reply_timeout_ms, m, fd, err, errlen);
		if (rc == 0)
			return broken(z, -1, err, errlen, "no answer in time");
		if (rc < 0)
			return -1;
		if (m->h.type == Z_EXITED && queue_exit(z, m, err, errlen) < 0)
			return -1;
		if (m->h.type == Z_EXITED)
			continue;
		if (m->h.id != id)
			return broken(z, fd ? *fd : -1, err, errlen, "it answered another request");
		return 0;
	}
}

static int
request(struct sg_zygote *z, enum ztype type, const void *payload, struct zmsg *m, int *fd,
        char *err, size_t errlen)
{
	if (z->broken || z->fd < 0)
		return sg_zygote_say(err, errlen, "zygote: not running; start a new one");
	if (++z->last_id == 0)
		z->last_id = 1; /* 0 is for notices */
	if (sg_zygote_send(z->fd, type, z->last_id, payload, -1) < 0)
		return broken(z, -1, err, errlen, strerror(errno));
	return await_reply(z, z->last_id, m, fd, err, errlen);
}

/* The zygote's text, NUL-terminated and printable, after `what`. */
static int
text_error(struct zmsg *m, const char *what, char *err, size_t errlen)
{
	char *t = m->u.text.text;
	t[sizeof(m->u.text.text) - 1] = '\0';
	for (char *c = t; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return sg_zygote_say(err, errlen, "zygote: %s: %s", what, t);
}

static int
count_threads(void)
{
	char buf[8192];
	size_t have = 0;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (have < sizeof(buf) - 1 && (n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0)
		have += (size_t)n;
	close(fd);
	buf[have] = '\0';
	const char *t = strstr(buf, "\nThreads:");
	return t ? atoi(t + strlen("\nThreads:")) : -1;
}

static int
check_start(const struct sg_zygote_config *cfg, char *err, size_t errlen)
{
	int threads = count_threads();
	if (threads < 0)
		return sg_zygote_say(err, errlen,
		                     "zygote: cannot read /proc/self/status to check that "
		                     "this process is single-threaded");
	if (threads != 1)
		return sg_zygote_say(
		    err, errlen,
		    "zygote: must start while the process has one thread, and it has %d: "
		    "start it before any thread",
		    threads);
	if (cfg->worker.max_runs == 0 || cfg->max_workers == 0 || cfg->max_tenants == 0)
		return sg_zygote_say(
		    err, errlen, "zygote: max_runs, max_workers and max_tenants must be 1 or more");
	if (cfg->worker.isolate.n_keep_fds >= SG_ISOLATE_MAX_KEEP_FDS)
		return sg_zygote_say(
		    err, errlen, "zygote: worker.isolate.keep_fds leaves no room for the socket");
	return 0;
}

int
sg_zygote_start(const struct sg_zygote_config *cfg, struct sg_zygote *z, char *err, size_t errlen)
{
	struct sg_cgroup_system sys; /* found here, used by the zygote only */
	int sv[2];
	memset(z, 0, sizeof(*z));
	z->fd = -1;
	z->reply_timeout_ms = cfg->reply_timeout_ms > 0 ? cfg->reply_timeout_ms : 5000;
	if (check_start(cfg, err, errlen) < 0)
		return -1;
	memset(&sys, 0, sizeof(sys));
	if (cfg->cgroups && sg_cgroup_detect(cfg->cgroup_where, &sys, err, errlen) < 0)
		return -1;
	if (cfg->cgroup_group != NULL)
		snprintf(sys.group, sizeof(sys.group), "%s", cfg->cgroup_group);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sg_zygote_say(err, errlen, "zygote: socketpair: %s", strerror(errno));
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		close(sv[0]);
		sg_zygote_main(cfg, &sys, sv[1], parent);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return sg_zygote_say(err, errlen, "zygote: fork: %s", strerror(errno));
	}
	z->pid = pid;
	z->fd = sv[0];
	struct zmsg m;
	int rc = await_reply(z, 0, &m, NULL, err, errlen);
	if (rc == 0 && m.h.type == Z_START_FAILED)
		rc = text_error(&m, "setup failed", err, errlen);
	else if (rc == 0 && m.h.type != Z_HELLO)
		rc = broken(z, -1, err, errlen, "it did not say hello");
	if (rc < 0)
		sg_zygote_stop(z, NULL, 0);
	return rc;
}

int
sg_zygote_spawn(struct sg_zygote *z, const char *tenant, uint32_t max_runs, pid_t *pid, int *fd,
                char *err, size_t errlen)
{
	struct z_spawn req;
	struct zmsg m;
	struct stat st;
	int got = -1;
	memset(&req, 0, sizeof(req));
	size_t n = strlen(tenant);
	if (n == 0 || n > SG_ZYGOTE_TENANT_MAX)
		return sg_zygote_say(err, errlen, "zygote: a tenant name is 1 to %d bytes, not %zu",
		                     SG_ZYGOTE_TENANT_MAX, n);
	memcpy(req.tenant, tenant, n);
	req.max_runs = max_runs;
	if (request(z, Z_SPAWN, &req, &m, &got, err, errlen) < 0)
		return -1;
	if (m.h.type == Z_SPAWN_FAILED)
		return text_error(&m, "cannot spawn a worker", err, errlen);
	if (m.h.type != Z_SPAWNED || m.u.pid.pid <= 0 || fstat(got, &st) < 0 ||
	    !S_ISSOCK(st.st_mode))
		return broken(z, got, err, errlen, "it answered SPAWN with something else");
	*pid = m.u.pid.pid;
	*fd = got;
	return 0;
}

int
sg_zygote_kill(struct sg_zygote *z, pid_t pid, char *err, size_t errlen)
{
	struct z_pid req = {pid};
	struct zmsg m;
	if (request(z, Z_KILL, &req, &m, NULL, err, errlen) < 0)
		return -1;
	if (m.h.type != Z_KILLED || m.u.status.pid != pid)
		return broken(z, -1, err, errlen, "it answered KILL with something else");
	if (m.u.status.value == ESRCH)
		return sg_zygote_say(err, errlen,
		                     "zygote: pid %d is not a live worker of this zygote (it "
		                     "exited already, or never was one)",
		                     (int)pid);
	if (m.u.status.value != 0)
		return sg_zygote_say(err, errlen, "zygote: kill %d: %s", (int)pid,
		                     strerror(m.u.status.value));
	return 0;
}

int
sg_zygote_next_exit(struct sg_zygote *z, int timeout_ms, struct sg_zygote_exit *e, char *err,
                    size_t errlen)
{
	struct zmsg m;
	if (z->n_exits == 0) {
		int rc = client_read(z, timeout_ms, &m, NULL, err, errlen);
		if (rc <= 0)
			return rc;
		if (m.h.type != Z_EXITED)
			return broken(z, -1, err, errlen, "it answered a request nobody made");
		if (queue_exit(z, &m, err, errlen) < 0)
			return -1;
	}
	*e = z->exits[0];
	memmove(z->exits, z->exits + 1, --z->n_exits * sizeof(*z->exits));
	return 1;
}

/* Waits up to timeout_ms for the zygote to exit, then SIGKILLs it. */
static int
wait_zygote(pid_t pid, int timeout_ms, int *status)
{
	int64_t end = sg_mono_ms() + timeout_ms;
	pid_t got;
	while ((got = waitpid(pid, status, WNOHANG)) == 0 && sg_mono_ms() < end)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	if (got == pid)
		return 0;
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int
sg_zygote_stop(struct sg_zygote *z, char *err, size_t errlen)
{
	int status = 0, rc = 0;
	if (z->pid > 0) {     /* otherwise stopped, never started or zeroed: fd is not ours */
		close(z->fd); /* the zygote reads EOF and shuts down */
		if (wait_zygote(z->pid, z->reply_timeout_ms, &status) < 0)
			rc = sg_zygote_say(err, errlen, "zygote: waitpid %d: %s", (int)z->pid,
			                   strerror(errno));
		else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			rc = sg_zygote_say(err, errlen, "zygote: ended with %s %d",
			                   WIFEXITED(status) ? "exit status" : "signal",
			                   WIFEXITED(status) ? WEXITSTATUS(status)
			                                     : WTERMSIG(status));
	}
	free(z->exits);
	memset(z, 0, sizeof(*z));
	z->fd = -1;
	return rc;
}
