/*
 * sg_worker: the main loop of a sandbox worker, the process that runs
 * untrusted templates.  It runs inside a process made by sg_isolate_spawn()
 * (the zygote does that, see sg_zygote.h) and speaks sg_frame messages over
 * one stream socket to the gateway:
 *
 *   worker:  READY
 *   gateway: RUN              worker: CALL seq 1      (per ctx.call)
 *   gateway: CALL_RESULT 1    worker: ... DONE        (then the next RUN)
 *
 * The worker is the untrusted side: it obeys well-formed frames only and
 * leaves at the first thing it does not expect.  The gateway, which holds
 * power, checks everything the worker says and kills it on any doubt.
 */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sg_isolate.h"

/* How a worker ends, as its exit status; anything else is a signal. */
enum sg_worker_exit {
	SG_WORKER_EXIT_DONE = 0,      /* served max_runs, or the gateway closed between runs */
	SG_WORKER_EXIT_SETUP = 10,    /* could not prepare or confine itself */
	SG_WORKER_EXIT_PROTOCOL = 11, /* the gateway sent a malformed or unexpected frame */
	SG_WORKER_EXIT_IO = 12,       /* the socket failed, or closed in the middle of a run */
	SG_WORKER_EXIT_MEMORY = 13,   /* out of memory outside the Lua VM */
};

struct sg_worker_opts {
	/*
	 * Confinement of this worker.  keep_fds must list the socket (the
	 * zygote adds it); listing 2 keeps stderr, which only tests should do.
	 */
	struct sg_isolate_opts isolate;
	/*
	 * Runs served before the worker exits by itself (at least 1).  Every
	 * run's CPU counts against isolate.limits.cpu_seconds, which covers
	 * the worker's whole life, so size the two together.
	 */
	uint32_t max_runs;
	size_t frame_cap; /* payload cap both ways; 0 means SG_FRAME_MAX */
	/*
	 * Tests only (NULL in production): called once confined, before READY,
	 * with the socket and what sg_isolate_confine() enforced.  It lets a
	 * test make a forbidden call or play a hostile worker.
	 */
	void (*test_after_confine)(int fd, const struct sg_isolate_report *r);
	/*
	 * Tests only (NULL in production): a RUN of the template so named
	 * makes a system call the filter kills, forks, crashes, or sends the
	 * gateway a malformed frame before running.  The system tests use them
	 * to check how the gateway takes it.
	 */
	const char *test_fault_seccomp;
	const char *test_fault_fork;
	const char *test_fault_crash;
	const char *test_fault_garbage;
};

/* max_runs 100, SG_FRAME_MAX, and sg_isolate_opts_init() defaults. */
void sg_worker_opts_init(struct sg_worker_opts *o);

/*
 * The worker's whole life; returns its exit status (enum sg_worker_exit).
 * Must run in a process made by sg_isolate_spawn() that nothing else uses:
 * it does the few things that would need a forbidden call later (seeding
 * jansson, loading the time zone, the C locale), confines itself, sends
 * READY, then serves RUN frames one at a time.  Nothing here uses stdio or
 * sendmsg/recvmsg, which the syscall filter forbids.  On a protocol error
 * inside a ctx.call it leaves with _exit at once, since Lua is mid-run.
 */
int sg_worker_main(int fd, const struct sg_worker_opts *o);

#endif
