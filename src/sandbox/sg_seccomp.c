/*
 * sg_seccomp: the system-call allowlist of a sandbox worker.
 *
 * A worker runs one Lua VM and speaks frames over one socket that was open
 * before confinement.  It needs memory, a clock and that socket; anything
 * else it asks for is an attack or a bug, and both end the process
 * (KILL_PROCESS, seen by the parent as SIGSYS).
 *
 * How the list was found: strace -f of a throwaway program that ran, three
 * times, luaL_newstate + luaL_openlibs + a text chunk exercising strings,
 * gmatch, tables of 200k entries, a 50 MiB string.rep, collectgarbage,
 * pcall/error, coroutines, math.random, os.clock and os.time, and swapped a
 * frame over a socketpair each time.  After start-up it called only brk,
 * mmap, munmap, mremap (realloc of large blocks), clock_gettime
 * (CLOCK_PROCESS_CPUTIME_ID has no vDSO path), read and write, plus one
 * getrandom that glibc makes at its very first malloc to seed the tcache
 * key; a worker is confined long after that, so getrandom stays out.
 * The unit tests run the same kind of chunk under this filter, in the ASan
 * build too.
 *
 * Allowed on purpose beyond what that run used, each for a named reason:
 * readv/writev, recvfrom/sendto without an address (glibc's recv/send) and
 * poll/ppoll, so the frame code may choose its calls; clock_nanosleep,
 * nanosleep, gettimeofday and time, the vDSO's fallbacks; madvise with the
 * advice glibc's malloc gives under tunables; futex(FUTEX_WAKE_PRIVATE),
 * because glibc's pthread_once wakes waiters unconditionally even in a
 * single-threaded process; rt_sigreturn, rt_sigprocmask and restart_syscall,
 * the signal bookkeeping the kernel and glibc do on their own (a sleep
 * resumed after SIGSTOP/SIGCONT, abort's unblock); getpid, close, exit and
 * exit_group.
 *
 * Left out on purpose: every call that opens or creates a file descriptor
 * (open*, socket*, accept*, pipe*, dup*, memfd_create, io_uring_*,
 * userfaultfd, perf_event_open, bpf), every process-creating or -changing
 * call (clone*, fork, vfork, execve*, ptrace, process_vm_*, unshare, setns,
 * mount, pivot_root, personality, keyctl, prctl, setrlimit/prlimit64),
 * mprotect (even without PROT_EXEC it could make RELRO data writable
 * again; malloc in a single-threaded process never needs it),
 * recvmsg/sendmsg (the worker passes no descriptors, so SCM_RIGHTS is off
 * the table both ways), and fstat/newfstatat, which only stdio needs: the
 * Lua layer must not route print or io to stdio.  mmap is allowed without
 * PROT_EXEC only, so a broken VM cannot make its own machine code.
 * abort() in a worker ends as SIGSYS, not SIGABRT: raise() needs gettid
 * and tgkill, which are not here (and a pid 1 would ignore its own SIGABRT
 * anyway).
 */
#include "sg_seccomp.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct allowed_call {
	int nr;
	unsigned n_args; /* 0: any arguments; else every comparison must hold */
	struct scmp_arg_cmp arg;
};

#define ANY_ARGS(name)                                                                             \
	{                                                                                          \
		.nr = SCMP_SYS(name)                                                               \
	}
#define ARG_MASKED_EQ(name, index, mask, value)                                                    \
	{                                                                                          \
		.nr = SCMP_SYS(name), .n_args = 1,                                                 \
		.arg = {.arg = (index),                                                            \
		        .op = SCMP_CMP_MASKED_EQ,                                                  \
		        .datum_a = (mask),                                                         \
		        .datum_b = (value)},                                                       \
	}
/*
 * An int argument is compared on its low 32 bits only: the kernel sees the
 * whole register, and the C ABI leaves the upper half of an int undefined.
 */
#define ARG_INT_EQ(name, index, value) ARG_MASKED_EQ(name, index, 0xffffffffu, value)
#define ARG_NULL(name, index)                                                                      \
	{                                                                                          \
		.nr = SCMP_SYS(name), .n_args = 1,                                                 \
		.arg = {.arg = (index), .op = SCMP_CMP_EQ, .datum_a = 0},                          \
	}

static const struct allowed_call worker_calls[] = {
    /* the socket to the gateway */
    ANY_ARGS(read),
    ANY_ARGS(write),
    ANY_ARGS(readv),
    ANY_ARGS(writev),
    ARG_NULL(recvfrom, 4), /* no source address: only the connected socket */
    ARG_NULL(sendto, 4),   /* no destination address: likewise */
    ANY_ARGS(poll),
    ANY_ARGS(ppoll),
    ANY_ARGS(close),
    /* memory: malloc and the Lua allocator */
    ANY_ARGS(brk),
    ARG_MASKED_EQ(mmap, 2, PROT_EXEC, 0),
    ANY_ARGS(munmap),
    ANY_ARGS(mremap),
    ARG_INT_EQ(madvise, 2, MADV_DONTNEED),
    ARG_INT_EQ(madvise, 2, MADV_FREE),
    ARG_INT_EQ(madvise, 2, MADV_HUGEPAGE),
    ARG_INT_EQ(madvise, 2, MADV_NOHUGEPAGE),
    ARG_INT_EQ(futex, 1, FUTEX_WAKE | FUTEX_PRIVATE_FLAG),
    /* clocks: os.clock, os.time and hook budgets */
    ANY_ARGS(clock_gettime),
    ANY_ARGS(gettimeofday),
    ANY_ARGS(time),
    ANY_ARGS(clock_nanosleep),
    ANY_ARGS(nanosleep),
    /* process basics */
    ANY_ARGS(getpid),
    ANY_ARGS(rt_sigreturn),
    ANY_ARGS(rt_sigprocmask),
    ANY_ARGS(restart_syscall),
    ANY_ARGS(exit),
    ANY_ARGS(exit_group),
};

#if defined(__SANITIZE_ADDRESS__)
#define SG_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_ASAN_BUILD 1
#endif
#endif

#ifdef SG_ASAN_BUILD
/*
 * ASan builds only (the tests run confined workers under ASan): its
 * allocator marks each new region MADV_DONTDUMP, and on every noreturn call
 * (longjmp from a Lua error, _exit) it asks where the signal stack is.  Both
 * are harmless (cores are off; the query changes nothing), but release
 * builds need neither, so they are not in the list above.
 */
static const struct allowed_call asan_calls[] = {
    ARG_INT_EQ(madvise, 2, MADV_DONTDUMP),
    ARG_NULL(sigaltstack, 0),
};
#endif

/* libseccomp returns negative errno values rather than setting errno. */
static void
say(char *err, size_t errlen, const char *what, int rc)
{
	snprintf(err, errlen, "seccomp: %s: %s", what, strerror(-rc));
}

/*
 * Foreign ABIs: on x86_64 a process can still enter the kernel through
 * int 0x80, with i386 numbers under AUDIT_ARCH_I386; those get the bad-arch
 * action, which must kill too.  x32 calls arrive as x86_64 with bit 30 set
 * in the number, so none of them matches the list and the default kills
 * them.  The tests try both.
 */
static int
set_attributes(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc < 0) {
		say(err, errlen, "kill on foreign architectures", rc);
		return -1;
	}
	if (seccomp_arch_exist(ctx, SCMP_ARCH_NATIVE) != 0) { /* defensive: init adds it */
		snprintf(err, errlen,
		         "seccomp: the native architecture is missing from the filter");
		return -1;
	}
	return 0;
}

static int
allow_calls(scmp_filter_ctx ctx, const struct allowed_call *calls, size_t n, char *err,
            size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, calls[i].nr, calls[i].n_args,
		                                &calls[i].arg);
		if (rc < 0) {
			char *name =
			    seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, calls[i].nr);
			char what[96];
			snprintf(what, sizeof(what), "allow %s", name ? name : "(unknown call)");
			free(name);
			say(err, errlen, what, rc);
			return -1;
		}
	}
	return 0;
}

scmp_filter_ctx
sg_seccomp_worker_filter(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(err, errlen, "seccomp: cannot create a filter (out of memory?)");
		return NULL;
	}
	if (set_attributes(ctx, err, errlen) < 0)
		goto fail;
	if (allow_calls(ctx, worker_calls, sizeof(worker_calls) / sizeof(worker_calls[0]), err,
	                errlen) < 0)
		goto fail;
#ifdef SG_ASAN_BUILD
	if (allow_calls(ctx, asan_calls, sizeof(asan_calls) / sizeof(asan_calls[0]), err, errlen) <
	    0)
		goto fail;
#endif
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

int
sg_seccomp_load_worker(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = sg_seccomp_worker_filter(err, errlen);
	if (ctx == NULL)
		return -1;
	int rc = seccomp_load(ctx);
	seccomp_release(ctx); /* only free/munmap: both allowed once loaded */
	if (rc < 0) {
		say(err, errlen, "load the filter", rc);
		return -1;
	}
	return 0;
}
