/*
 * The zygote process: single-threaded, it spawns, kills and reaps sandbox
 * workers for the gateway (sg_zygote.c is the gateway's client for it).
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

#include "core/sg_name.h"

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
		return sg_zygote_say(err, errlen, "move the control socket: %s", strerror(errno));
	close(zs->ctl);
	zs->ctl = ctl;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return sg_zygote_say(err, errlen, "open /dev/null: %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		if ((i < 2 || !zs->cfg.keep_stderr || fcntl(2, F_GETFD) < 0) && null != i &&
		    dup2(null, i) < 0)
			return sg_zygote_say(err, errlen, "point descriptor %d at /dev/null: %s", i,
			                     strerror(errno));
	if (null > 2)
		close(null);
	if ((ctl > 3 && close_range(3, (unsigned)ctl - 1, 0) < 0) ||
	    close_range((unsigned)ctl + 1, ~0u, 0) < 0)
		return sg_zygote_say(err, errlen, "close inherited descriptors: %s",
		                     strerror(errno));
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
		return sg_zygote_say(err, errlen, "watch SIGCHLD: %s", strerror(errno));
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
		return sg_zygote_say(err, errlen, "arm the parent-death signal: %s",
		                     strerror(errno));
	if (getppid() != parent)
		_exit(0); /* the gateway died before the signal was armed */
	setpgid(0, 0);    /* the terminal's ^C is the gateway's to handle (it drains) */
	if (zs->cfg.scrub != NULL)
		zs->cfg.scrub(zs->cfg.scrub_arg);
	if (wipe_environment() != 0)
		return sg_zygote_say(err, errlen, "clear the environment");
	if (setup_fds(zs, err, errlen) < 0 || setup_signals(zs, err, errlen) < 0)
		return -1;
	/* Orphans below us are ours to reap: a zombie still counts in pids.current. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return sg_zygote_say(err, errlen, "become a child subreaper: %s", strerror(errno));
	zs->tenants = calloc(zs->cfg.max_tenants, sizeof(*zs->tenants));
	zs->workers = calloc(zs->cfg.max_workers, sizeof(*zs->workers));
	if (zs->tenants == NULL || zs->workers == NULL)
		return sg_zygote_say(err, errlen, "out of memory for %u workers",
		                     zs->cfg.max_workers);
	return 0;
}

/* NUL-terminated within its field, and a name by the one rule. */
static bool
valid_tenant(const char *t, size_t size)
{
	return strnlen(t, size) < size && sg_name_valid(t);
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
		return sg_zygote_say(
		    err, errlen, "%zu tenants have cgroups, the configured maximum", zs->n_tenants);
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
		return sg_zygote_say(err, errlen, "socketpair: %s", strerror(errno));
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
		sg_zygote_say(err, errlen, "worker %d died before it started", (int)pid);
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
		sg_zygote_say(why.text, sizeof(why.text), "a tenant name is " SG_NAME_RULE);
	else if (runs > zs->cfg.worker.max_runs)
		sg_zygote_say(
		    why.text, sizeof(why.text),
		    "max_runs %u is over the configured %u that the worker's CPU limit is sized "
		    "for",
		    runs, zs->cfg.worker.max_runs);
	else if (zs->n_workers >= zs->cfg.max_workers)
		sg_zygote_say(why.text, sizeof(why.text),
		              "%zu workers are alive, the configured maximum", zs->n_workers);
	else if (tenant_group(zs, req->tenant, &g, why.text, sizeof(why.text)) == 0)
		pid = start_worker(zs, g, runs, &fd, why.text, sizeof(why.text));
	if (pid < 0)
		return sg_zygote_send(zs->ctl, Z_SPAWN_FAILED, m->h.id, &why, -1) == 0;
	zs->workers[zs->n_workers++] = pid;
	struct z_pid reply = {pid};
	int rc = sg_zygote_send(zs->ctl, Z_SPAWNED, m->h.id, &reply, fd);
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
	return sg_zygote_send(zs->ctl, Z_KILLED, m->h.id, &reply, -1) == 0;
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
		if (sg_zygote_send(zs->ctl, Z_EXITED, 0, &exited, -1) < 0)
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
	int rc = sg_zygote_recv(zs->ctl, &m, NULL, err, sizeof(err));
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

_Noreturn void
sg_zygote_main(const struct sg_zygote_config *cfg, const struct sg_cgroup_system *sys, int ctl,
               pid_t parent)
{
	struct zygote own = {.cfg = *cfg, .sys = *sys, .ctl = ctl}, *zs = &own;
	struct z_text why;
	memset(&why, 0, sizeof(why));
	if (zygote_setup(zs, parent, why.text, sizeof(why.text)) < 0) {
		(void)sg_zygote_send(zs->ctl, Z_START_FAILED, 0, &why, -1);
		_exit(1);
	}
	if (sg_zygote_send(zs->ctl, Z_HELLO, 0, NULL, -1) < 0)
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
