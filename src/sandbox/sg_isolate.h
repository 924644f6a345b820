/*
 * sg_isolate: spawning a sandbox worker in its own namespaces and confining
 * it, layer by layer, so that a broken Lua VM still holds nothing: no file,
 * no network, no process, no privilege.
 *
 * The zygote calls sg_isolate_spawn(); the worker function it runs calls
 * sg_isolate_confine() once it has opened what it needs (its socket), and
 * from then on it can only compute, allocate, read the clock and speak over
 * the descriptors it kept.
 */
#ifndef SG_ISOLATE_H
#define SG_ISOLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SG_ISOLATE_MAX_KEEP_FDS 8

/*
 * Each is set as both soft and hard limit, so the worker cannot raise it.
 * RLIMIT_CORE is always 0 besides: a core dump would carry tenant data.
 */
struct sg_isolate_limits {
	rlim_t address_space; /* RLIMIT_AS, bytes of mappings: malloc fails beyond */
	/*
	 * RLIMIT_CPU, seconds of CPU over the worker's whole life (not per run).
	 * The worker is pid 1 of its namespace, which ignores SIGXCPU, so the
	 * limit ends it with SIGKILL.
	 */
	rlim_t cpu_seconds;
	rlim_t open_files; /* RLIMIT_NOFILE: highest new descriptor + 1 */
	rlim_t file_size;  /* RLIMIT_FSIZE, bytes */
	rlim_t processes;  /* RLIMIT_NPROC, for the worker's host uid */
};

struct sg_isolate_opts {
	/*
	 * Host identity of the worker, mapped to uid/gid 0 inside.  Never 0: a
	 * worker that got out of its namespaces would own the host's files.  A
	 * parent mapping ids other than its own needs CAP_SETUID/CAP_SETGID.
	 */
	uid_t outside_uid;
	gid_t outside_gid;
	const char *hostname; /* borrowed; read in the child only */
	/* Descriptors that survive confinement (e.g. the socketpair end). */
	int keep_fds[SG_ISOLATE_MAX_KEEP_FDS];
	size_t n_keep_fds;
	struct sg_isolate_limits limits;
	/* Refuse to run without Landlock (the default) rather than warn. */
	bool require_landlock;
	/*
	 * Tests only: stop before the syscall filter, so a test can look at the
	 * other layers with calls the filter would kill.
	 */
	bool test_without_seccomp;
};

/*
 * Safe defaults: nobody/nogroup (65534) when the caller is root, else the
 * caller's own ids; hostname "sandgate"; 256 MiB of address space, 60 s of
 * CPU, 8 descriptors, no file writes, no processes; Landlock required.
 */
void sg_isolate_opts_init(struct sg_isolate_opts *o);

/* Layers that sg_isolate_confine() put in place, as bits of `enforced`. */
enum sg_isolate_layer {
	SG_ISOLATE_NAMESPACES = 1u << 0,       /* user, pid, mount, ipc, uts, net */
	SG_ISOLATE_NO_NESTED_USERNS = 1u << 1, /* max_user_namespaces 0 inside */
	SG_ISOLATE_EMPTY_ROOT = 1u << 2,       /* read-only empty tmpfs; host tree detached */
	SG_ISOLATE_HOSTNAME = 1u << 3,         /* set in the worker's own uts namespace */
	SG_ISOLATE_FDS_CLOSED = 1u << 4,       /* all but keep_fds */
	SG_ISOLATE_NO_CAPS = 1u << 5,          /* bounding, ambient, effective, permitted */
	SG_ISOLATE_NO_NEW_PRIVS = 1u << 6,
	SG_ISOLATE_LANDLOCK = 1u << 7, /* deny-all over every right the ABI knows */
	SG_ISOLATE_RLIMITS = 1u << 8,  /* as, cpu, nofile, fsize, nproc, core=0 */
	SG_ISOLATE_SECCOMP = 1u << 9,  /* worker allowlist, KILL_PROCESS */
};

struct sg_isolate_report {
	unsigned enforced;               /* enum sg_isolate_layer bits */
	int landlock_abi;                /* the kernel's ABI; 0: unavailable */
	int landlock_handled_abi;        /* the newest ABI whose rights we know */
	struct sg_isolate_limits limits; /* as applied */
};

/* Returned by sg_isolate_confine() when it ran without Landlock, by leave. */
#define SG_ISOLATE_WITHOUT_LANDLOCK 1

/*
 * Starts fn(arg) in a new process that is pid 1 of new user, pid, mount,
 * ipc, uts and network namespaces (the network namespace holds only a
 * loopback that is down, and lives as long as the worker).  Before fn
 * runs, the child's ids are mapped (see sg_isolate_opts), it is not
 * dumpable, its environment is empty, its signal handlers are the
 * defaults, and it is set to die by SIGKILL when the caller's thread exits.
 * The child inherits every descriptor and exits with fn's return value.
 * Returns the child's pid (reap it with waitpid), or -1 with a message in
 * err.
 *
 * Call it only from a single-threaded process (the zygote): the child is a
 * raw clone of the caller, and a lock held by another thread at that moment
 * would stay held in the child forever.
 */
pid_t sg_isolate_spawn(const struct sg_isolate_opts *o, int (*fn)(void *), void *arg, char *err,
                       size_t errlen);

/*
 * Confines the calling worker, in this order: no nested user namespaces,
 * empty read-only root, hostname, descriptors, capabilities, no_new_privs,
 * Landlock, rlimits, seccomp.  Each step fails closed: on -1 (with a
 * message in err) the caller must exit, since the process is half
 * confined.  Returns 0 when every layer holds, or
 * SG_ISOLATE_WITHOUT_LANDLOCK when the kernel has no Landlock and
 * o->require_landlock is false.  `report` is filled either way.  Must run
 * in a process made by sg_isolate_spawn().
 */
int sg_isolate_confine(const struct sg_isolate_opts *o, struct sg_isolate_report *report, char *err,
                       size_t errlen);

/* The running kernel's Landlock ABI version, or 0 when it has none. */
int sg_isolate_landlock_abi(void);

/*
 * One line for /readyz and the logs, e.g. "namespaces=user,pid,mount,ipc,
 * uts,net nested_userns=0 root=empty,ro ... landlock=abi7
 * seccomp=allowlist,kill_process".  Returns what snprintf returns.
 */
int sg_isolate_report_format(const struct sg_isolate_report *r, char *buf, size_t n);

#endif
