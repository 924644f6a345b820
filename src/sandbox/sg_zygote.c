/*
 * zygote: a single-threaded process that spawns, kills and reaps sandbox
 * workers for the gateway, and the gateway's client for it.
 *
 * Spawn order, and why.  sg_isolate_spawn() returns once the child runs as
 * its mapped ids, but before the child has run anything of its own: the
 * worker's entry first blocks reading one "go" byte from its socket.  The
 * zygote attaches it to the tenant's cgroup in that pause, then writes the
 * byte on the gateway's end of the same stream (the worker consumes it, so
 * the gateway never sees it), then hands that end to the gateway.  So the
 * cgroup holds the worker before it seeds, confines itself or runs Lua;
 * only the few pages touched by sg_isolate's own setup stay charged to the
 * zygote's group.  (cgroup v2's CLONE_INTO_CGROUP would close even that gap,
 * but it needs clone3, and v1, this machine's, has nothing like it.)
 * Confinement comes last, in the worker, since it needs nothing from us.
 *
 * Kills go through the zygote because only the parent knows a pid is still
 * its unreaped child: a pid in the table cannot have been reused.
 */
#include "sandbox/sg_zygote.h"

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

#define GO_BYTE 'G'
#define TEXT_MAX 1024
#define RECV_NONE (-2) /* recv_msg: nothing waiting */

/* ---- the control messages ---- */

enum ztype {
	Z_HELLO = 1,    /* zygote: set up and serving (no payload) */
	Z_START_FAILED, /* zygote, instead of HELLO: z_text, then it exits */
	Z_SPAWN,        /* gateway: z_spawn */
	Z_SPAWNED,      /* zygote: z_pid, plus the gateway's end as SCM_RIGHTS */
	Z_SPAWN_FAILED, /* zygote: z_text */
	Z_KILL,         /* gateway: z_pid */
	Z_KILLED,       /* zygote: z_status {pid, 0 or errno} */
	Z_EXITED,       /* zygote: z_status {pid, wait status}; id 0 */
	Z_NTYPES,
};

struct zhdr {
	uint32_t type, id, len; /* len: payload bytes, exactly payload_size[type] */
};
struct z_spawn {
	char tenant[SG_ZYGOTE_TENANT_MAX + 1]; /* NUL-padded */
	uint32_t max_runs;
};
struct z_pid {
	int32_t pid;
};
struct z_text {
	char text[TEXT_MAX]; /* NUL-terminated */
};
struct z_status {
	int32_t pid, value;
};

struct zmsg {
	struct zhdr h;
	union {
		struct z_spawn spawn;
		struct z_pid pid;
		struct z_text text;
		struct z_status status;
	} u;
};

static const size_t payload_size[Z_NTYPES] = {
    [Z_START_FAILED] = sizeof(struct z_text), [Z_SPAWN] = sizeof(struct z_spawn),
    [Z_SPAWNED] = sizeof(struct z_pid),       [Z_SPAWN_FAILED] = sizeof(struct z_text),
    [Z_KILL] = sizeof(struct z_pid),          [Z_KILLED] = sizeof(struct z_status),
    [Z_EXITED] = sizeof(struct z_status),
};

__attribute__((format(printf, 3, 4))) static int
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* One message; with fd >= 0 that descriptor rides along (SCM_RIGHTS). */
static int
send_msg(int sock, enum ztype type, uint32_t id, const void *payload, int fd)
{
	struct zmsg m;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&m, 0, sizeof(m));
	m.h = (struct zhdr){(uint32_t)type, id, (uint32_t)payload_size[type]};
	if (payload_size[type] > 0)
		memcpy(&m.u, payload, payload_size[type]);
	struct iovec iov = {&m, sizeof(m.h) + payload_size[type]};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

/* Keeps the first descriptor received in *fd (when fd is given), closes the rest. */
static int
take_fds(struct msghdr *mh, int *fd)
{
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++, n++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd != NULL && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return n;
}

/*
 * One message, checked before anything in it is used: nothing cut short,
 * a known type, its exact payload size both in the header and on the wire,
 * and a descriptor with SPAWNED and only with it (closed when fd is NULL).
 * Returns 1, 0 on EOF, RECV_NONE when nothing waits, or -1 with err.
 */
static int
recv_msg(int sock, struct zmsg *m, int *fd, char *err, size_t errlen)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {m, sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl)};
	ssize_t n;
	if (fd != NULL)
		*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return RECV_NONE;
	if (n < 0)
		return say(err, errlen, "control socket: %s", strerror(errno));
	int fds = take_fds(&mh, fd);
	if (n == 0 && fds == 0)
		return 0;
	uint32_t t = (size_t)n >= sizeof(m->h) ? m->h.type : 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		say(err, errlen, "a control message was cut short");
	else if (t == 0 || t >= Z_NTYPES)
		say(err, errlen, "a control message of %zd bytes has no known type", n);
	else if (m->h.len != payload_size[t] || (size_t)n != sizeof(m->h) + payload_size[t])
		say(err, errlen, "control message type %u: %zd bytes, not %zu", t, n,
		    sizeof(m->h) + payload_size[t]);
	else if ((t == Z_SPAWNED) != (fds == 1) || (fds > 0 && fd == NULL))
		say(err, errlen, "control message type %u came with %d descriptors", t, fds);
	else
		return 1;
	if (fd != NULL && *fd >= 0)
		close(*fd);
	return -1;
}

/* ---- the zygote process ---- */

struct ztenant {
	char name[SG_ZYGOTE_TENANT_MAX + 1];
	struct sg_cgroup *group;
};

struct zygote {
	struct sg_zygote_config cfg;
	struct sg_cgroup_system sys;
	int ctl, sigfd;
	struct ztenant *tenants; /* cfg.max_tenants of them */
	size_t n_tenants;
	pid_t *workers; /* cfg.max_workers of them: spawned, not yet reaped */
	size_t n_workers;
};

/* A few lines only (the gateway learns everything else from replies). */
__attribute__((format(printf, 2, 3))) static void
zlog(const struct zygote *zs, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	if (!zs->cfg.keep_stderr)
		return;
	int n = snprintf(line, sizeof(line), "sandgate zygote: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = n < (int)sizeof(line) - 1 ? n : (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(2, line, (size_t)n);
}

static ssize_t
find_worker(const struct zygote *zs, pid_t pid)
{
	for (size_t i = 0; i < zs->n_workers; i++)
		if (zs->workers[i] == pid)
			return (ssize_t)i;
	return -1;
}

static _Noreturn void
zygote_exit(struct zygote *zs, int code)
{
	char err[SG_CGROUP_WHY_MAX];
	for (size_t i = 0; i < zs->n_workers; i++)
		kill(zs->workers[i], SIGKILL);
	for (size_t i = 0; i < zs->n_workers; i++)
		while (waitpid(zs->workers[i], NULL, 0) < 0 && errno == EINTR)
			;
	for (size_t i = 0; i < zs->n_tenants; i++) {
		if (sg_cgroup_remove(zs->tenants[i].group, err, sizeof(err)) < 0)
			zlog(zs, "tenant %s: %s", zs->tenants[i].name, err);
		sg_cgroup_free(zs->tenants[i].group);
	}
	_exit(code); /* not exit: the gateway's atexit handlers and buffers are not ours */
}

/* Descriptors: the control socket (moved above 2), and 0-2 on /dev/null. */
static int
setup_fds(struct zygote *zs, char *err, size_t errlen)
{
	int ctl = fcntl(zs->ctl, F_DUPFD_CLOEXEC, 3);
	if (ctl < 0)
		return say(err, errlen, "move the control socket: %s", strerror(errno));
	close(zs->ctl);
	zs->ctl = ctl;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return say(err, errlen, "open /dev/null: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if ((i < 2 || !zs->cfg.keep_stderr || fcntl(2, F_GETFD) < 0) && null != i &&
		    dup2(null, i) < 0)
			return say(err, errlen, "point descriptor %d at /dev/null: %s", i,
			           strerror(errno));
	if (null > 2)
		close(null);
	if ((ctl > 3 && close_range(3, (unsigned)ctl - 1, 0) < 0) ||
	    close_range((unsigned)ctl + 1, ~0u, 0) < 0)
		return say(err, errlen, "close inherited descriptors: %s", strerror(errno));
	return 0;
}

/* Default handlers, SIGPIPE ignored, SIGCHLD only through a signalfd. */
static int
setup_signals(struct zygote *zs, char *err, size_t errlen)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL); /* SIGKILL, SIGSTOP, glibc's own: refused, fine */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_SETMASK, &chld, NULL) < 0 ||
	    (zs->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		return say(err, errlen, "watch SIGCHLD: %s", strerror(errno));
	return 0;
}

/*
 * clearenv() drops only the pointers: the strings stay in memory (the
 * exec-time block on the stack, which /proc/<pid>/environ still shows,
 * and setenv's copies on the heap), and every worker would inherit them.
 */
static int
wipe_environment(void)
{
	for (char **e = environ; e != NULL && *e != NULL; e++)
		explicit_bzero(*e, strlen(*e));
	return clearenv();
}

static int
zygote_setup(struct zygote *zs, pid_t parent, char *err, size_t errlen)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return say(err, errlen, "arm the parent-death signal: %s", strerror(errno));
	if (getppid() != parent)
		_exit(0); /* the gateway died before the signal was armed */
	setpgid(0, 0);    /* the terminal's ^C is the gateway's to handle (it drains) */
	if (zs->cfg.scrub != NULL)
		zs->cfg.scrub(zs->cfg.scrub_arg);
	if (wipe_environment() != 0)
		return say(err, errlen, "clear the environment");
	if (setup_fds(zs, err, errlen) < 0 || setup_signals(zs, err, errlen) < 0)
		return -1;
	/* Orphans below us are ours to reap: a zombie still counts in pids.current. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return say(err, errlen, "become a child subreaper: %s", strerror(errno));
	zs->tenants = calloc(zs->cfg.max_tenants, sizeof(*zs->tenants));
	zs->workers = calloc(zs->cfg.max_workers, sizeof(*zs->workers));
	if (zs->tenants == NULL || zs->workers == NULL)
		return say(err, errlen, "out of memory for %u workers", zs->cfg.max_workers);
	return 0;
}

static bool
valid_tenant(const char *t, size_t size)
{
	size_t n = strnlen(t, size);
	if (n == 0 || n == size)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_' || t[i] == '-'))
			return false;
	return true;
}

/* The tenant's cgroup, made at its first SPAWN and kept; NULL with cgroups off. */
static int
tenant_group(struct zygote *zs, const char *tenant, struct sg_cgroup **g, char *err, size_t errlen)
{
	*g = NULL;
	if (!zs->cfg.cgroups)
		return 0;
	for (size_t i = 0; i < zs->n_tenants; i++)
		if (strcmp(zs->tenants[i].name, tenant) == 0)
			return (*g = zs->tenants[i].group), 0;
	if (zs->n_tenants >= zs->cfg.max_tenants)
		return say(err, errlen, "%zu tenants have cgroups, the configured maximum",
		           zs->n_tenants);
	*g =
	    sg_cgroup_create(&zs->sys, tenant, &zs->cfg.ceilings, zs->cfg.cgroup_mode, err, errlen);
	if (*g == NULL)
		return -1;
	struct ztenant *t = &zs->tenants[zs->n_tenants++];
	snprintf(t->name, sizeof(t->name), "%s", tenant);
	t->group = *g;
	return 0;
}

struct worker_start {
	int fd;
	struct sg_worker_opts opts;
	struct zygote *zs;
};

/*
 * In the new worker, still trusted code: forget which tenants and workers
 * the zygote knows (this is a copy of its memory), then wait to be let go.
 */
static int
worker_entry(void *arg)
{
	struct worker_start *ws = arg;
	struct zygote *zs = ws->zs;
	explicit_bzero(zs->tenants, zs->cfg.max_tenants * sizeof(*zs->tenants));
	explicit_bzero(zs->workers, zs->cfg.max_workers * sizeof(*zs->workers));
	char go = 0;
	ssize_t n;
	do
		n = read(ws->fd, &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || go != GO_BYTE)
		return SG_WORKER_EXIT_SETUP;
	return sg_worker_main(ws->fd, &ws->opts);
}

/* Spawn, attach while it waits, let it go; returns the pid and the gateway's end. */
static pid_t
start_worker(struct zygote *zs, const struct sg_cgroup *g, uint32_t max_runs, int *gw_fd, char *err,
             size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return say(err, errlen, "socketpair: %s", strerror(errno));
	struct worker_start ws = {.fd = sv[1], .opts = zs->cfg.worker, .zs = zs};
	ws.opts.max_runs = max_runs;
	ws.opts.isolate.keep_fds[ws.opts.isolate.n_keep_fds++] = sv[1]; /* room checked at start */
	pid_t pid = sg_isolate_spawn(&ws.opts.isolate, worker_entry, &ws, err, errlen);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	char go = GO_BYTE;
	if (g != NULL && sg_cgroup_attach(g, pid, err, errlen) < 0)
		goto fail;
	if (send(sv[0], &go, 1, MSG_NOSIGNAL) != 1) {
		say(err, errlen, "worker %d died before it started", (int)pid);
		goto fail;
	}
	*gw_fd = sv[0];
	return pid;
fail:
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(sv[0]);
	return -1;
}

/* Each request handler returns 1 to go on, 0 when the gateway is gone. */
static int
do_spawn(struct zygote *zs, const struct zmsg *m)
{
	const struct z_spawn *req = &m->u.spawn;
	uint32_t runs = req->max_runs ? req->max_runs : zs->cfg.worker.max_runs;
	struct z_text why;
	struct sg_cgroup *g;
	int fd = -1;
	pid_t pid = -1;
	memset(&why, 0, sizeof(why));
	if (!valid_tenant(req->tenant, sizeof(req->tenant)))
		say(why.text, sizeof(why.text),
		    "a tenant name is 1 to %d letters, digits, '_' or '-'", SG_ZYGOTE_TENANT_MAX);
	else if (runs > zs->cfg.worker.max_runs)
		say(why.text, sizeof(why.text),
		    "max_runs %u is over the configured %u that the worker's CPU limit is sized "
		    "for",
		    runs, zs->cfg.worker.max_runs);
	else if (zs->n_workers >= zs->cfg.max_workers)
		say(why.text, sizeof(why.text), "%zu workers are alive, the configured maximum",
		    zs->n_workers);
	else if (tenant_group(zs, req->tenant, &g, why.text, sizeof(why.text)) == 0)
		pid = start_worker(zs, g, runs, &fd, why.text, sizeof(why.text));
	if (pid < 0)
		return send_msg(zs->ctl, Z_SPAWN_FAILED, m->h.id, &why, -1) == 0;
	zs->workers[zs->n_workers++] = pid;
	struct z_pid reply = {pid};
	int rc = send_msg(zs->ctl, Z_SPAWNED, m->h.id, &reply, fd);
	close(fd);
	return rc == 0;
}

static int
do_kill(struct zygote *zs, const struct zmsg *m)
{
	struct z_status reply = {m->u.pid.pid, 0};
	if (reply.pid <= 0)
		reply.value = EINVAL; /* never kill(0) or kill(-1) */
	else if (find_worker(zs, reply.pid) < 0)
		reply.value = ESRCH;
	else if (kill(reply.pid, SIGKILL) < 0)
		reply.value = errno;
	return send_msg(zs->ctl, Z_KILLED, m->h.id, &reply, -1) == 0;
}

/* Reaps every child that ended; workers are reported, adopted orphans are not. */
static int
reap(struct zygote *zs)
{
	struct signalfd_siginfo si;
	while (read(zs->sigfd, &si, sizeof(si)) > 0)
		;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		ssize_t i = find_worker(zs, pid);
		if (i < 0)
			continue;
		zs->workers[i] = zs->workers[--zs->n_workers];
		struct z_status exited = {pid, status};
		if (send_msg(zs->ctl, Z_EXITED, 0, &exited, -1) < 0)
			return 0;
	}
	return 1;
}

/* 1 to go on, 0 when the gateway closed its end, -1 when it broke the protocol. */
static int
serve_request(struct zygote *zs)
{
	struct zmsg m;
	char err[256];
	int rc = recv_msg(zs->ctl, &m, NULL, err, sizeof(err));
	if (rc == RECV_NONE)
		return 1;
	if (rc < 0)
		zlog(zs, "%s", err);
	if (rc <= 0)
		return rc;
	switch (m.h.type) {
	case Z_SPAWN:
		return do_spawn(zs, &m);
	case Z_KILL:
		return do_kill(zs, &m);
	default:
		zlog(zs, "the gateway sent message type %u, which only the zygote sends", m.h.type);
		return -1;
	}
}

static _Noreturn void
zygote_main(struct zygote *zs, pid_t parent)
{
	struct z_text why;
	memset(&why, 0, sizeof(why));
	if (zygote_setup(zs, parent, why.text, sizeof(why.text)) < 0) {
		(void)send_msg(zs->ctl, Z_START_FAILED, 0, &why, -1);
		_exit(1);
	}
	if (send_msg(zs->ctl, Z_HELLO, 0, NULL, -1) < 0)
		zygote_exit(zs, 1);
	for (;;) {
		struct pollfd p[2] = {{zs->ctl, POLLIN, 0}, {zs->sigfd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			zygote_exit(zs, 1);
		/* Reap first, so a worker's EXITED precedes the replies that follow it. */
		if (p[1].revents && !reap(zs))
			zygote_exit(zs, 0);
		int rc = p[0].revents ? serve_request(zs) : 1;
		if (rc <= 0)
			zygote_exit(zs, rc == 0 ? 0 : 2);
	}
}

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

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
broken(struct sg_zygote *z, int fd, char *err, size_t errlen, const char *why)
{
	if (fd >= 0)
		close(fd);
	z->broken = true;
	return say(err, errlen, "zygote: %s; stop it and start a new one", why);
}

/* One message within timeout_ms (-1: no limit): 1, 0 on timeout, -1 with err. */
static int
client_read(struct sg_zygote *z, int timeout_ms, struct zmsg *m, int *fd, char *err, size_t errlen)
{
	int64_t end = now_ms() + timeout_ms;
	char why[200];
	if (z->broken || z->fd < 0)
		return say(err, errlen, "zygote: not running; start a new one");
	for (;;) {
		int rc = recv_msg(z->fd, m, fd, why, sizeof(why));
		if (rc == 1)
			return 1;
		if (rc != RECV_NONE)
			return broken(z, -1, err, errlen, rc == 0 ? "it exited" : why);
		int left = timeout_ms < 0 ? -1 : (int)(end - now_ms());
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
			return say(err, errlen, "zygote: out of memory for exit notices");
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
		return say(err, errlen, "zygote: not running; start a new one");
	if (++z->last_id == 0)
		z->last_id = 1; /* 0 is for notices */
	if (send_msg(z->fd, type, z->last_id, payload, -1) < 0)
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
	return say(err, errlen, "zygote: %s: %s", what, t);
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
		return say(err, errlen,
		           "zygote: cannot read /proc/self/status to check that "
		           "this process is single-threaded");
	if (threads != 1)
		return say(err, errlen,
		           "zygote: must start while the process has one thread, and it has %d: "
		           "start it before any thread",
		           threads);
	if (cfg->worker.max_runs == 0 || cfg->max_workers == 0 || cfg->max_tenants == 0)
		return say(err, errlen,
		           "zygote: max_runs, max_workers and max_tenants must be 1 or more");
	if (cfg->worker.isolate.n_keep_fds >= SG_ISOLATE_MAX_KEEP_FDS)
		return say(err, errlen,
		           "zygote: worker.isolate.keep_fds leaves no room for the socket");
	return 0;
}

int
sg_zygote_start(const struct sg_zygote_config *cfg, struct sg_zygote *z, char *err, size_t errlen)
{
	struct zygote zs; /* only the zygote's copy is used, for its whole life */
	int sv[2];
	memset(z, 0, sizeof(*z));
	z->fd = -1;
	z->reply_timeout_ms = cfg->reply_timeout_ms > 0 ? cfg->reply_timeout_ms : 5000;
	if (check_start(cfg, err, errlen) < 0)
		return -1;
	memset(&zs, 0, sizeof(zs));
	zs.cfg = *cfg;
	if (cfg->cgroups && sg_cgroup_detect(cfg->cgroup_where, &zs.sys, err, errlen) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return say(err, errlen, "zygote: socketpair: %s", strerror(errno));
	pid_t parent = getpid(), pid = fork();
	if (pid == 0) {
		close(sv[0]);
		zs.ctl = sv[1];
		zygote_main(&zs, parent);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return say(err, errlen, "zygote: fork: %s", strerror(errno));
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
		return say(err, errlen, "zygote: a tenant name is 1 to %d bytes, not %zu",
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
		return say(err, errlen,
		           "zygote: pid %d is not a live worker of this zygote (it "
		           "exited already, or never was one)",
		           (int)pid);
	if (m.u.status.value != 0)
		return say(err, errlen, "zygote: kill %d: %s", (int)pid,
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
	int64_t end = now_ms() + timeout_ms;
	pid_t got;
	while ((got = waitpid(pid, status, WNOHANG)) == 0 && now_ms() < end)
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
			rc = say(err, errlen, "zygote: waitpid %d: %s", (int)z->pid,
			         strerror(errno));
		else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			rc = say(err, errlen, "zygote: ended with %s %d",
			         WIFEXITED(status) ? "exit status" : "signal",
			         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	free(z->exits);
	memset(z, 0, sizeof(*z));
	z->fd = -1;
	return rc;
}
