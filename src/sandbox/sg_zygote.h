/*
 * sg_zygote: the process that makes sandbox workers, OpenBSD privsep style.
 *
 * The gateway forks the zygote once, at start, while it is still single-
 * threaded.  The zygote is single-threaded for its whole life, so it may
 * clone workers (sg_isolate_spawn) at any time; the gateway, once it runs
 * threads, may not.  They speak over a SOCK_SEQPACKET pair in small fixed
 * structs, each checked for its exact length:
 *
 *   gateway -> zygote   SPAWN {tenant, max_runs}    KILL {pid}
 *   zygote -> gateway   HELLO (once)   SPAWNED {pid} + the worker's socket
 *                       SPAWN_FAILED {why}   KILLED {pid, errno}
 *                       EXITED {pid, wait status}   (whenever a worker ends)
 *
 * Requests are answered in order, one at a time; EXITED notices arrive in
 * between and are queued by the client.  The zygote reaps its workers
 * itself, so a pid it still lists is alive or an unreaped zombie, never a
 * reused pid: KILL is safe whatever the race with the worker's own end.
 * Once a worker's EXITED has been sent, a KILL of its pid is refused.
 *
 * What the zygote holds: a copy of the gateway's memory at fork time.
 * Every worker is in turn a copy of the zygote.  So the gateway must call
 * sg_zygote_start() before it loads any secret (the server key, upstream
 * credentials), or wipe them in the zygote's copy with config.scrub.  The
 * zygote clears its environment and closes every descriptor but its
 * control socket (0-2 point at /dev/null, or 2 stays when keep_stderr).
 *
 * Start it before the first jansson object too: jansson seeds its hash
 * once per process, and a worker copied from a seeded process keeps that
 * seed, which a worker that broke out of Lua could read and use to send
 * the gateway frames whose keys collide in its hash tables.
 */
#ifndef SG_ZYGOTE_H
#define SG_ZYGOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sg_cgroup.h"
#include "sandbox/sg_worker.h"

#define SG_ZYGOTE_TENANT_MAX SG_CGROUP_TENANT_MAX

struct sg_zygote_config {
	/*
	 * Every worker's options.  The zygote appends the worker's socket to
	 * worker.isolate.keep_fds (so at most SG_ISOLATE_MAX_KEEP_FDS - 1 may
	 * be listed here) and sets max_runs per SPAWN.  worker.max_runs is the
	 * default and the ceiling a SPAWN may ask for, because the worker's
	 * RLIMIT_CPU is sized for it.
	 */
	struct sg_worker_opts worker;
	/* Each tenant's workers share <own cgroup>/<sys.group>/<tenant>. */
	bool cgroups;
	struct sg_cgroup_ceilings ceilings; /* per tenant, for all its workers together */
	enum sg_cgroup_mode cgroup_mode;
	const struct sg_cgroup_where *cgroup_where; /* NULL: this machine's */
	const char *cgroup_group; /* the gateway's own group directory; NULL: "sandgate" */
	uint32_t max_workers;                       /* alive at once; SPAWN fails beyond */
	uint32_t max_tenants; /* cgroups kept; SPAWN of a new one fails beyond */
	int reply_timeout_ms; /* how long the client waits for an answer */
	bool keep_stderr;     /* the zygote keeps fd 2 for its few log lines */
	/*
	 * Runs in the zygote right after fork, before anything else: wipe
	 * (explicit_bzero) whatever secret the gateway already held.
	 */
	void (*scrub)(void *arg);
	void *scrub_arg;
};

/* Defaults: sg_worker_opts_init(), cgroups off, 256 workers, 1024 tenants, 5 s. */
void sg_zygote_config_init(struct sg_zygote_config *c);

struct sg_zygote_exit {
	pid_t pid;  /* a worker this zygote spawned */
	int status; /* as waitpid() gives it: WIFEXITED, WTERMSIG, ... */
};

/* The client's handle.  Not thread-safe: one owner, or a lock around it. */
struct sg_zygote {
	pid_t pid; /* the zygote process, the caller's child; 0 when not running */
	/*
	 * The control socket (close-on-exec).  Watch it for reading and call
	 * sg_zygote_next_exit() with timeout 0 until it returns 0: a zygote
	 * whose notices are never read eventually blocks on sending them.
	 */
	int fd;
	bool broken; /* it exited or broke the protocol: stop it and start anew */
	uint32_t last_id;
	int reply_timeout_ms;
	struct sg_zygote_exit *exits; /* notices read while waiting for a reply */
	size_t n_exits, cap_exits;
};

/*
 * Forks the zygote and waits until it is serving.  Call it only while the
 * process is single-threaded (it refuses otherwise, by /proc/self/status):
 * fork copies only the calling thread, and a lock another thread held
 * would stay locked in the zygote forever.  Also see the top of this file
 * for secrets and jansson.  The zygote dies with the calling thread
 * (PR_SET_PDEATHSIG), so call it from the thread that lives longest.
 * Returns 0, or -1 with err (and *z stopped).
 */
int sg_zygote_start(const struct sg_zygote_config *cfg, struct sg_zygote *z, char *err,
                    size_t errlen);

/*
 * A new worker for `tenant`, in the tenant's cgroup before it runs any
 * code of its own.  max_runs 0 means the configured default.  Blocks until
 * the zygote answers (spawning takes a few milliseconds; at most
 * reply_timeout_ms).  On success *pid is the worker's pid (the zygote's
 * child, not ours: never waitpid it; kill it with sg_zygote_kill) and *fd
 * the gateway's end of its stream socket, blocking and close-on-exec, owned
 * by the caller; READY is the first frame on it.  -1 with err otherwise.
 */
int sg_zygote_spawn(struct sg_zygote *z, const char *tenant, uint32_t max_runs, pid_t *pid, int *fd,
                    char *err, size_t errlen);

/*
 * SIGKILLs a worker of this zygote (the wall-clock kill: a worker is pid 1
 * of its namespace and ignores every other signal).  Blocks for the answer.
 * -1 with err when the pid is not a live worker of this zygote, e.g. it has
 * exited already (its EXITED notice is then queued or on its way).
 */
int sg_zygote_kill(struct sg_zygote *z, pid_t pid, char *err, size_t errlen);

/*
 * The oldest EXITED notice not yet taken: 1 with *e filled, 0 when none
 * came within timeout_ms (0: only what is already there; -1: no limit),
 * -1 with err when the zygote is gone or broke the protocol.
 */
int sg_zygote_next_exit(struct sg_zygote *z, int timeout_ms, struct sg_zygote_exit *e, char *err,
                        size_t errlen);

/*
 * Closes the control socket: the zygote kills and reaps its workers,
 * removes the tenants' cgroups and exits.  Waits for it (SIGKILL after
 * reply_timeout_ms).  Returns 0 when it exited cleanly, else -1 with err.
 * Always leaves *z stopped; on a stopped or zeroed handle it does nothing.
 */
int sg_zygote_stop(struct sg_zygote *z, char *err, size_t errlen);

#endif
