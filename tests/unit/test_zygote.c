/*
 * The process layer for real: this single-threaded test process starts a
 * zygote, which spawns confined workers into per-tenant cgroups on this
 * machine (cgroup v1, as root), and the test plays the gateway: it reads
 * READY, sends RUN and CALL_RESULT frames, decodes what workers send, and
 * kills and watches them through the zygote.  Every case checks that no
 * descriptor leaked, and stops its zygote even when an assertion failed.
 *
 * Tenant names carry the test's pid (acme-<pid>), so that parallel runs of
 * the two builds never share a cgroup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sg_frame.h"
#include "sandbox/sg_worker_pool.h"
#include "sandbox/sg_zygote.h"

#define MiB (1024ull * 1024ull)
#define MAX_CONNS 8

struct conn {
	pid_t pid;
	int fd;
	struct sg_frame_decoder *d; /* reads the worker's frames */
};

struct fx {
	int fds;
	struct sg_zygote z;
	struct sg_cgroup_system sys;
	struct conn conns[MAX_CONNS];
	size_t n_conns;
	char acme[64], globex[64];
};

/* ---- fixture ---- */

static int
open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static int
setup(void **state)
{
	static int n;
	struct fx *f = calloc(1, sizeof(*f));
	char err[512];
	assert_non_null(f);
	f->z.fd = -1;
	f->fds = open_fds();
	snprintf(f->acme, sizeof(f->acme), "acme-%d-%d", (int)getpid(), n);
	snprintf(f->globex, sizeof(f->globex), "globex-%d-%d", (int)getpid(), n++);
	if (sg_cgroup_detect(NULL, &f->sys, err, sizeof(err)) != 0)
		fail_msg("detect: %s", err);
	*state = f;
	return 0;
}

static void
drop_conn(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	sg_frame_decoder_free(c->d);
	c->fd = -1;
	c->d = NULL;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char err[512];
	for (size_t i = 0; i < f->n_conns; i++)
		drop_conn(&f->conns[i]);
	if (sg_zygote_stop(&f->z, err, sizeof(err)) != 0)
		fprintf(stderr, "stop: %s\n", err);
	int leaked = open_fds() - f->fds;
	free(f);
	assert_int_equal(leaked, 0);
	return 0;
}

static rlim_t
address_space_in_use(void)
{
	char buf[64] = "";
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	return (rlim_t)strtoull(buf, NULL, 10) * (rlim_t)sysconf(_SC_PAGESIZE);
}

/*
 * Workers keep stderr so that sanitizer reports reach the test log.  The
 * address-space limit is growth over what this process maps already,
 * since ASan reserves terabytes of shadow up front.
 */
static void
config_init(struct sg_zygote_config *c, bool cgroups)
{
	sg_zygote_config_init(c);
	c->worker.isolate.hostname = "sandgate-test";
	c->worker.isolate.keep_fds[0] = 2;
	c->worker.isolate.n_keep_fds = 1;
	c->worker.isolate.limits.address_space = address_space_in_use() + 512 * MiB;
	c->worker.isolate.require_landlock = sg_isolate_landlock_abi() > 0;
	c->keep_stderr = true;
	c->cgroups = cgroups;
	c->cgroup_mode = SG_CGROUP_BEST_EFFORT;
	c->ceilings.memory_bytes = 512 * MiB;
	c->ceilings.pids_max = 16;
}

static void
start(struct fx *f, const struct sg_zygote_config *c)
{
	char err[2048] = "";
	if (sg_zygote_start(c, &f->z, err, sizeof(err)) != 0)
		fail_msg("start: %s", err);
}

static struct conn *
spawn_runs(struct fx *f, const char *tenant, uint32_t max_runs)
{
	char err[2048] = "";
	assert_true(f->n_conns < MAX_CONNS);
	struct conn *c = &f->conns[f->n_conns++];
	c->fd = -1;
	if (sg_zygote_spawn(&f->z, tenant, max_runs, &c->pid, &c->fd, err, sizeof(err)) != 0)
		fail_msg("spawn: %s", err);
	c->d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
	assert_non_null(c->d);
	return c;
}

static struct conn *
spawn(struct fx *f, const char *tenant)
{
	return spawn_runs(f, tenant, 0);
}

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next frame from the worker, within timeout_ms. */
static enum sg_frame_rc
recv_frame(struct conn *c, struct sg_frame_msg *m, int timeout_ms)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	if (poll(&p, 1, timeout_ms) != 1)
		fail_msg("worker %d sent nothing within %d ms", (int)c->pid, timeout_ms);
	return sg_frame_read_fd(c->fd, c->d, m);
}

static void
expect_ready(struct conn *c)
{
	struct sg_frame_msg m;
	enum sg_frame_rc rc = recv_frame(c, &m, 10000);
	if (rc != SG_FRAME_MESSAGE)
		fail_msg("worker %d: no READY (%d): %s", (int)c->pid, rc,
		         sg_frame_decoder_error(c->d));
	assert_int_equal(m.type, SG_FRAME_READY);
	assert_int_equal(m.ready.pid, 1); /* pid 1 of its own namespace */
	sg_frame_msg_clear(&m);
}

static void
send_frame(struct conn *c, const struct sg_frame_msg *m)
{
	char err[256];
	if (sg_frame_write_fd(c->fd, m, 0, err, sizeof(err)) != 0)
		fail_msg("send: %s", err);
}

static void
send_run_limits(struct conn *c, const char *run_id, const char *src, json_t *input,
                struct sg_frame_limits limits)
{
	struct sg_frame_msg m = {.type = SG_FRAME_RUN};
	m.run.run_id = run_id;
	m.run.template_name = "test";
	m.run.source = src;
	m.run.input = input ? input : json_null();
	m.run.limits = limits;
	send_frame(c, &m);
}

static void
send_run(struct conn *c, const char *run_id, const char *src, json_t *input, uint64_t instructions,
         uint64_t memory)
{
	send_run_limits(c, run_id, src, input,
	                (struct sg_frame_limits){instructions, memory, 8, 4096});
}

static void
expect_done(struct conn *c, const char *run_id, struct sg_frame_msg *m)
{
	enum sg_frame_rc rc = recv_frame(c, m, 10000);
	if (rc != SG_FRAME_MESSAGE)
		fail_msg("worker %d: no DONE (%d): %s", (int)c->pid, rc,
		         sg_frame_decoder_error(c->d));
	assert_int_equal(m->type, SG_FRAME_DONE);
	assert_string_equal(m->done.run_id, run_id);
}

/* Runs src on input, expects success, returns output member `key` as an integer. */
static json_int_t
run_for_int(struct conn *c, const char *run_id, const char *src, json_t *input, const char *key)
{
	struct sg_frame_msg m;
	send_run(c, run_id, src, input, 1000000, 16 * MiB);
	expect_done(c, run_id, &m);
	if (m.done.stop != SG_STOP_OK)
		fail_msg("%s: stop %s: %s", run_id, sg_frame_stop_name(m.done.stop),
		         m.done.message);
	json_int_t v = json_integer_value(json_object_get(m.done.output, key));
	sg_frame_msg_clear(&m);
	return v;
}

/* The wait status of worker pid, from the zygote's EXITED notice. */
static int
wait_exit(struct fx *f, pid_t pid, int timeout_ms)
{
	char err[512] = "";
	int64_t end = now_ms() + timeout_ms;
	struct sg_zygote_exit e;
	for (;;) {
		int left = (int)(end - now_ms());
		int rc = sg_zygote_next_exit(&f->z, left > 0 ? left : 0, &e, err, sizeof(err));
		if (rc < 0)
			fail_msg("next_exit: %s", err);
		if (rc == 0)
			fail_msg("no EXITED for worker %d within %d ms", (int)pid, timeout_ms);
		if (e.pid == pid)
			return e.status;
	}
}

static void
assert_exited(int status, int code)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != code)
		fail_msg("expected exit status %d, got %s %d", code,
		         WIFEXITED(status) ? "exit status" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void
assert_signaled(int status, int sig)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
		fail_msg("expected signal %d, got %s %d", sig,
		         WIFEXITED(status) ? "exit status" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/*
 * The worker's end closed: EOF, or ECONNRESET when it died with bytes of
 * ours still unread (a RUN it had not taken yet).
 */
static void
expect_gone(struct conn *c)
{
	struct sg_frame_msg m;
	enum sg_frame_rc rc = recv_frame(c, &m, 5000);
	if (rc != SG_FRAME_EOF &&
	    !(rc == SG_FRAME_ERROR && strstr(sg_frame_decoder_error(c->d), "reset")))
		fail_msg("worker %d: expected its end closed, got %d (%s)", (int)c->pid, rc,
		         sg_frame_decoder_error(c->d));
}

static void
kill_worker(struct fx *f, pid_t pid)
{
	char err[512] = "";
	if (sg_zygote_kill(&f->z, pid, err, sizeof(err)) != 0)
		fail_msg("kill: %s", err);
}

/* What /proc/<pid>/<file> says, whole. */
static void
read_proc(pid_t pid, const char *file, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	ssize_t got = read(fd, buf, n - 1);
	close(fd);
	assert_true(got > 0);
	buf[got] = '\0';
}

static int
count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* <hierarchy of c>/sandgate/<tenant>, where the zygote makes the tenant's group. */
static void
group_dir(const struct fx *f, enum sg_cgroup_ctrl c, const char *tenant, char *out, size_t n)
{
	snprintf(out, n, "%s/sandgate/%s", f->sys.ctrl[c].base, tenant);
}

/* ---- the cases ---- */

static const char sum_src[] = "function run(input, ctx) return {sum = input.a + input.b} end";

static void
test_spawn_ready_and_run_a_template(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char path[64];
	config_init(&c, true);
	start(f, &c);
	/* The zygote holds /dev/null on 0 and 1, stderr, its socket and its signalfd. */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)f->z.pid);
	assert_int_equal(count_dir(path), 5);
	struct conn *a = spawn(f, f->acme);
	expect_ready(a);
	json_t *in = json_pack("{s:i, s:i}", "a", 2, "b", 3);
	struct sg_frame_msg m;
	send_run(a, "run-1", sum_src, in, 1000000, 16 * MiB);
	json_decref(in);
	expect_done(a, "run-1", &m);
	assert_int_equal(m.done.stop, SG_STOP_OK);
	assert_int_equal(json_integer_value(json_object_get(m.done.output, "sum")), 5);
	assert_int_equal(json_object_size(m.done.output), 1);
	assert_true(m.done.instructions > 0 && m.done.peak_memory > 0);
	assert_int_equal(m.done.calls, 0);
	sg_frame_msg_clear(&m);
	/* A warm worker gives every run a fresh Lua state: nothing carries over. */
	static const char count_src[] =
	    "n = (n or 0) + 1 function run(input, ctx) ctx.log('seen', n) return {n = n} end";
	assert_int_equal(run_for_int(a, "run-2", count_src, NULL, "n"), 1);
	assert_int_equal(run_for_int(a, "run-3", count_src, NULL, "n"), 1);
	/* The worker holds stderr (kept by this test) and its socket, nothing else. */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)a->pid);
	assert_int_equal(count_dir(path), 2);
}

static const char call_src[] =
    "function run(input, ctx)\n"
    "  local bad_ok, bad = pcall(ctx.call, 'Not A Name', {})\n"
    "  local r = ctx.call('crm.create_contact', {name = 'x'})\n"
    "  local ok, e = pcall(ctx.call, 'crm.create_contact', {name = 'y'})\n"
    "  return {id = r.id, ok = ok, code = e.code, detail = e.detail,\n"
    "          bad = bad.code, now = ctx.now() > 1600000000000}\n"
    "end\n";

static void
expect_call(struct conn *c, uint32_t seq, const char *name)
{
	struct sg_frame_msg m;
	assert_int_equal(recv_frame(c, &m, 10000), SG_FRAME_MESSAGE);
	assert_int_equal(m.type, SG_FRAME_CALL);
	assert_int_equal(m.call.seq, seq);
	assert_string_equal(m.call.capability, "crm.create_contact");
	json_t *want = json_pack("{s:s}", "name", name);
	assert_true(json_equal(m.call.args, want));
	json_decref(want);
	sg_frame_msg_clear(&m);
}

static void
test_ctx_call_round_trip(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	config_init(&c, true);
	start(f, &c);
	struct conn *a = spawn(f, f->acme);
	expect_ready(a);
	send_run(a, "run-1", call_src, NULL, 1000000, 16 * MiB);
	/* The badly named call never reaches the gateway: the first CALL is seq 1. */
	expect_call(a, 1, "x");
	struct sg_frame_msg r = {.type = SG_FRAME_CALL_RESULT};
	r.call_result.seq = 1;
	r.call_result.result = json_pack("{s:s}", "id", "c_1");
	send_frame(a, &r);
	json_decref(r.call_result.result);
	expect_call(a, 2, "y");
	r.call_result = (struct sg_frame_call_result){
	    .seq = 2, .error_code = "conflict", .error_detail = "a contact named y exists"};
	send_frame(a, &r);
	struct sg_frame_msg m;
	expect_done(a, "run-1", &m);
	if (m.done.stop != SG_STOP_OK)
		fail_msg("stop %s: %s", sg_frame_stop_name(m.done.stop), m.done.message);
	json_t *want =
	    json_pack("{s:s, s:b, s:s, s:s, s:s, s:b}", "id", "c_1", "ok", 0, "code", "conflict",
	              "detail", "a contact named y exists", "bad", "invalid_call", "now", 1);
	if (!json_equal(m.done.output, want)) {
		char *got = json_dumps(m.done.output, JSON_SORT_KEYS);
		fail_msg("output: %s", got);
	}
	json_decref(want);
	assert_int_equal(m.done.calls, 3); /* the Lua layer counts the refused one too */
	sg_frame_msg_clear(&m);
}

/* Raw bytes, as a broken gateway would send them: a header, then `payload`. */
static void
send_raw(struct conn *c, uint32_t len, const char *payload)
{
	uint8_t buf[256] = {len >> 24, len >> 16, len >> 8, len};
	size_t n = strlen(payload);
	assert_true(n <= sizeof(buf) - 4);
	memcpy(buf + 4, payload, n);
	assert_int_equal(write(c->fd, buf, n + 4), (ssize_t)(n + 4));
}

static json_int_t
run_sum(struct conn *c, int a, int b)
{
	json_t *in = json_pack("{s:i, s:i}", "a", a, "b", b);
	json_int_t sum = run_for_int(c, "r", sum_src, in, "sum");
	json_decref(in);
	return sum;
}

/*
 * The Lua layer caps the log's bytes, a DONE frame its lines and their
 * length, and the whole frame its size: the worker fits the log, and says
 * so in words when the output cannot fit at all.
 */
static const char chatty_src[] =
    "function run(input, ctx)\n"
    "  ctx.log(string.rep('a', 4095) .. '\\u{e9}' .. string.rep('b', 100))\n"
    "  for i = 1, 300 do ctx.log(i) end\n"
    "  return input.big and string.rep('x', 2 * 1024 * 1024) or {ok = true}\n"
    "end\n";

static void
test_done_fits_logs_and_output_into_one_frame(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	struct sg_frame_msg m;
	config_init(&c, false);
	start(f, &c);
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	const struct sg_frame_limits lim = {10000000, 64 * MiB, 8, 1 << 20};
	json_t *small = json_pack("{s:b}", "big", 0), *big = json_pack("{s:b}", "big", 1);
	send_run_limits(w, "chatty", chatty_src, small, lim);
	expect_done(w, "chatty", &m);
	assert_int_equal(m.done.stop, SG_STOP_OK);
	assert_int_equal(json_array_size(m.done.logs), SG_FRAME_LOGS_MAX);
	/* Cut before the two-byte character that straddles byte 4096, not inside it. */
	assert_int_equal(json_string_length(json_array_get(m.done.logs, 0)), 4095);
	assert_string_equal(json_string_value(json_array_get(m.done.logs, 1)), "1");
	assert_string_equal(json_string_value(json_array_get(m.done.logs, SG_FRAME_LOGS_MAX - 1)),
	                    "[sandgate] 46 more log lines were dropped: a run keeps 256");
	sg_frame_msg_clear(&m);
	send_run_limits(w, "big", chatty_src, big, lim);
	expect_done(w, "big", &m);
	assert_int_equal(m.done.stop, SG_STOP_BAD_RESULT);
	assert_non_null(strstr(m.done.message, "the run's result cannot be sent back: "));
	assert_int_equal(json_array_size(m.done.logs), 0);
	sg_frame_msg_clear(&m);
	json_decref(small);
	json_decref(big);
	assert_int_equal(run_sum(w, 1, 2), 3); /* and it goes on serving */
}

static void
test_malformed_frames_make_the_worker_exit(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	config_init(&c, false);
	start(f, &c);
	static const char early_result[] = "{\"type\":\"call_result\",\"seq\":1,\"result\":1}";
	const struct {
		const char *what, *payload;
		uint32_t len; /* 0: the payload's own */
		bool after_a_run, hang_up_mid_call;
		int code;
	} cases[] = {
	    {"payload that is not JSON", "{bad}", 0, false, false, SG_WORKER_EXIT_PROTOCOL},
	    {"length over the cap", "{", SG_FRAME_MAX + 1, false, false, SG_WORKER_EXIT_PROTOCOL},
	    {"CALL_RESULT before any RUN", early_result, 0, false, false, SG_WORKER_EXIT_PROTOCOL},
	    {"CALL_RESULT between runs", early_result, 0, true, false, SG_WORKER_EXIT_PROTOCOL},
	    {"hang-up while a call waits", NULL, 0, false, true, SG_WORKER_EXIT_IO},
	    {"hang-up between runs", NULL, 0, true, false, SG_WORKER_EXIT_DONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn *w = spawn(f, f->acme);
		expect_ready(w);
		if (cases[i].after_a_run)
			assert_int_equal(run_sum(w, 1, 1), 2);
		if (cases[i].hang_up_mid_call) {
			struct sg_frame_msg m;
			send_run(w, "r", call_src, NULL, 1000000, 16 * MiB);
			assert_int_equal(recv_frame(w, &m, 10000), SG_FRAME_MESSAGE);
			assert_int_equal(m.type, SG_FRAME_CALL);
			sg_frame_msg_clear(&m);
		}
		int64_t t0 = now_ms();
		const char *pl = cases[i].payload;
		if (pl != NULL)
			send_raw(w, cases[i].len ? cases[i].len : (uint32_t)strlen(pl), pl);
		else
			drop_conn(w);
		int status = wait_exit(f, w->pid, 5000);
		fprintf(stderr, "%s: worker ended in %lld ms\n", cases[i].what,
		        (long long)(now_ms() - t0));
		assert_exited(status, cases[i].code);
		drop_conn(w);
		f->n_conns--;
	}
}

/* A hostile worker: garbage instead of READY, then it waits to be killed. */
static void
write_garbage(int fd, const struct sg_isolate_report *r)
{
	(void)r;
	static const char garbage[] = "\0\0\0\x07garbage";
	(void)!write(fd, garbage, sizeof(garbage) - 1);
	char c;
	(void)!read(fd, &c, 1);
	_exit(0);
}

static void
test_garbage_from_a_worker_is_caught_and_it_is_killed(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char err[512] = "";
	config_init(&c, false);
	c.worker.test_after_confine = write_garbage;
	start(f, &c);
	struct conn *w = spawn(f, f->acme);
	struct sg_frame_msg m;
	assert_int_equal(recv_frame(w, &m, 10000), SG_FRAME_ERROR);
	assert_non_null(strstr(sg_frame_decoder_error(w->d), "not JSON"));
	kill_worker(f, w->pid); /* what the gateway does on any protocol error */
	assert_signaled(wait_exit(f, w->pid, 5000), SIGKILL);
	/* Gone and reaped: the zygote refuses to signal that pid again. */
	assert_int_equal(sg_zygote_kill(&f->z, w->pid, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a live worker of this zygote"));
}

static void
test_wall_clock_kill_ends_an_endless_loop(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	config_init(&c, true);
	start(f, &c);
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	send_run(w, "spin", "function run() while true do end end", NULL, INT64_MAX, 16 * MiB);
	struct pollfd p = {w->fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, 300), 0); /* the deadline passes with no DONE */
	int64_t t0 = now_ms();
	kill_worker(f, w->pid);
	assert_signaled(wait_exit(f, w->pid, 5000), SIGKILL);
	fprintf(stderr, "wall-clock kill: EXITED %lld ms after KILL\n", (long long)(now_ms() - t0));
	expect_gone(w);
}

static void
expect_line(const char *status, const char *line)
{
	if (strstr(status, line) == NULL)
		fail_msg("no \"%s\" in:\n%s", line, status);
}

/* What the kernel says about a worker from outside, with no help from it. */
static void
test_confinement_is_visible_from_outside(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char status[4096], line[128], ns[2][64], path[64];
	config_init(&c, false);
	start(f, &c);
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	read_proc(w->pid, "status", status, sizeof(status));
	expect_line(status, "\nSeccomp:\t2\n"); /* filter mode */
	expect_line(status, "\nNoNewPrivs:\t1\n");
	expect_line(status, "\nCapEff:\t0000000000000000\n");
	expect_line(status, "\nCapPrm:\t0000000000000000\n");
	expect_line(status, "\nCapBnd:\t0000000000000000\n");
	snprintf(line, sizeof(line), "\nNSpid:\t%d\t1\n", (int)w->pid);
	expect_line(status, line);
	unsigned u = c.worker.isolate.outside_uid;
	snprintf(line, sizeof(line), "\nUid:\t%u\t%u\t%u\t%u\n", u, u, u, u);
	expect_line(status, line);
	static const char *const kinds[] = {"user", "pid", "mnt", "ipc", "uts", "net"};
	for (size_t i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		ssize_t n0 = readlink(path, ns[0], sizeof(ns[0]) - 1);
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)w->pid, kinds[i]);
		ssize_t n1 = readlink(path, ns[1], sizeof(ns[1]) - 1);
		assert_true(n0 > 0 && n1 > 0);
		ns[0][n0] = ns[1][n1] = '\0';
		assert_string_not_equal(ns[0], ns[1]);
	}
}

/*
 * The test hook checks the report of what confine enforced, then makes a
 * call outside the allowlist.  Exit 70: a layer is missing; 71: the call
 * got through.  Only SIGSYS means the filter holds in zygote-made workers.
 */
static void
check_report_then_getppid(int fd, const struct sg_isolate_report *r)
{
	(void)fd;
	unsigned all = (SG_ISOLATE_SECCOMP << 1) - 1;
	unsigned want = sg_isolate_landlock_abi() > 0 ? all : all & ~SG_ISOLATE_LANDLOCK;
	if (r->enforced != want)
		_exit(70);
	(void)syscall(SYS_getppid);
	_exit(71);
}

static void
test_seccomp_kills_a_worker_that_makes_a_forbidden_call(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	config_init(&c, false);
	c.worker.test_after_confine = check_report_then_getppid;
	start(f, &c);
	struct conn *w = spawn(f, f->acme);
	assert_signaled(wait_exit(f, w->pid, 5000), SIGSYS);
}

/* The line of /proc/<pid>/cgroup for a v1 controller, e.g. "memory". */
static void
cgroup_of(pid_t pid, const char *ctrl, char *out, size_t n)
{
	char text[2048], key[32];
	read_proc(pid, "cgroup", text, sizeof(text));
	snprintf(key, sizeof(key), ":%s:", ctrl);
	const char *at = strstr(text, key);
	if (at == NULL)
		fail_msg("no %s line in /proc/%d/cgroup:\n%s", ctrl, (int)pid, text);
	at += strlen(key);
	snprintf(out, n, "%.*s", (int)strcspn(at, "\n"), at);
}

static void
assert_in_group(pid_t pid, const char *ctrl, const char *tenant)
{
	char got[1024], tail[128];
	cgroup_of(pid, ctrl, got, sizeof(got));
	snprintf(tail, sizeof(tail), "/sandgate/%s", tenant);
	size_t n = strlen(got), t = strlen(tail);
	if (n < t || strcmp(got + n - t, tail) != 0)
		fail_msg("worker %d: %s cgroup is %s, not .../sandgate/%s", (int)pid, ctrl, got,
		         tenant);
}

static void
test_tenants_get_their_own_workers_and_cgroups(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char dir[2][1200], mine[1024];
	config_init(&c, true);
	start(f, &c);
	struct conn *a = spawn(f, f->acme), *g = spawn(f, f->globex);
	expect_ready(a);
	expect_ready(g);
	assert_int_not_equal(a->pid, g->pid);
	static const char *const ctrls[] = {"memory", "pids", "cpu"};
	for (size_t i = 0; i < 3; i++) {
		assert_in_group(a->pid, ctrls[i], f->acme);
		assert_in_group(g->pid, ctrls[i], f->globex);
		cgroup_of(f->z.pid, ctrls[i], mine, sizeof(mine));
		assert_null(strstr(mine, "/sandgate/")); /* the zygote stays where it was */
	}
	/* The pool, fed the two, never hands one tenant's worker to the other. */
	struct sg_pool_owner oa, og;
	assert_int_equal(sg_pool_owner_set(&oa, f->acme, "ann", "sandbox"), 0);
	assert_int_equal(sg_pool_owner_set(&og, f->globex, "ann", "sandbox"), 0);
	struct sg_worker_pool *pool = sg_worker_pool_new(8, 100);
	assert_int_equal(sg_worker_pool_add(pool, a->pid, dup(a->fd), &oa), 0);
	assert_int_equal(sg_worker_pool_add(pool, g->pid, dup(g->fd), &og), 0);
	assert_int_equal(sg_worker_pool_checkin(pool, a->pid, &oa, false), SG_POOL_KEPT);
	assert_null(sg_worker_pool_checkout(pool, &og)); /* globex's is busy; acme's idle */
	const struct sg_pool_worker *w = sg_worker_pool_checkout(pool, &oa);
	assert_non_null(w);
	assert_int_equal(w->pid, a->pid);
	struct conn via = {w->pid, w->fd, a->d};
	assert_int_equal(run_sum(&via, 20, 22), 42);
	assert_int_equal(sg_worker_pool_checkin(pool, a->pid, &og, true), -1);
	assert_int_equal(sg_worker_pool_checkin(pool, a->pid, &oa, true), SG_POOL_KEPT);
	assert_null(sg_worker_pool_checkout(pool, &og));
	sg_worker_pool_free(pool);
	/* Stopping the zygote removes the tenants' groups. */
	group_dir(f, SG_CGROUP_MEMORY, f->acme, dir[0], sizeof(dir[0]));
	group_dir(f, SG_CGROUP_MEMORY, f->globex, dir[1], sizeof(dir[1]));
	assert_int_equal(access(dir[0], F_OK), 0);
	assert_int_equal(access(dir[1], F_OK), 0);
	char err[512] = "";
	if (sg_zygote_stop(&f->z, err, sizeof(err)) != 0)
		fail_msg("stop: %s", err);
	assert_int_equal(access(dir[0], F_OK), -1);
	assert_int_equal(access(dir[1], F_OK), -1);
}

static void
test_worker_retires_after_max_runs(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char err[512] = "";
	pid_t pid;
	int fd = -1;
	config_init(&c, false);
	c.worker.max_runs = 2;
	start(f, &c);
	/* The CPU limit is sized for max_runs: a SPAWN may ask for fewer, never more. */
	assert_int_equal(sg_zygote_spawn(&f->z, f->acme, 3, &pid, &fd, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "max_runs 3 is over the configured 2"));
	struct sg_worker_pool *pool = sg_worker_pool_new(4, 2);
	struct sg_pool_owner oa;
	assert_int_equal(sg_pool_owner_set(&oa, f->acme, "ann", "sandbox"), 0);
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	assert_int_equal(sg_worker_pool_add(pool, w->pid, dup(w->fd), &oa), 0);
	for (int run = 1; run <= 2; run++) {
		assert_int_equal(run_sum(w, run, 0), run);
		assert_int_equal(sg_worker_pool_checkin(pool, w->pid, &oa, true),
		                 run == 2 ? SG_POOL_RETIRED : SG_POOL_KEPT);
		if (run == 1)
			assert_non_null(sg_worker_pool_checkout(pool, &oa));
	}
	struct sg_frame_msg m;
	assert_int_equal(recv_frame(w, &m, 5000), SG_FRAME_EOF); /* it left by itself */
	assert_exited(wait_exit(f, w->pid, 5000), SG_WORKER_EXIT_DONE);
	sg_worker_pool_free(pool);
	/* A SPAWN asking for one run gets a worker that serves one. */
	struct conn *once = spawn_runs(f, f->acme, 1);
	expect_ready(once);
	assert_int_equal(run_sum(once, 4, 5), 9);
	assert_exited(wait_exit(f, once->pid, 5000), SG_WORKER_EXIT_DONE);
}

static void
test_closing_the_control_socket_ends_zygote_and_workers(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char err[512] = "";
	config_init(&c, true);
	start(f, &c);
	struct conn *a = spawn(f, f->acme), *g = spawn(f, f->globex);
	expect_ready(a);
	expect_ready(g);
	/* One of them mid-run, as a real gateway's would be. */
	send_run(a, "spin", "function run() while true do end end", NULL, INT64_MAX, 16 * MiB);
	pid_t zpid = f->z.pid;
	if (sg_zygote_stop(&f->z, err, sizeof(err)) != 0)
		fail_msg("stop: %s", err); /* it exited 0 after killing and reaping both */
	assert_int_equal(kill(zpid, 0), -1);
	expect_gone(a);
	expect_gone(g);
	assert_true(kill(a->pid, 0) == -1 && errno == ESRCH);
	assert_true(kill(g->pid, 0) == -1 && errno == ESRCH);
	/* A stopped handle refuses politely, and stopping twice is harmless. */
	pid_t pid;
	int fd;
	assert_int_equal(sg_zygote_spawn(&f->z, f->acme, 0, &pid, &fd, err, sizeof(err)), -1);
	assert_string_equal(err, "zygote: not running; start a new one");
	assert_int_equal(sg_zygote_stop(&f->z, err, sizeof(err)), 0);
}

/* The gateway's part in the next case, in a process of its own. */
static int
gateway_that_dies(int report)
{
	struct sg_zygote_config c;
	struct sg_zygote z;
	char err[512];
	pid_t pid;
	int fd;
	config_init(&c, false);
	if (sg_zygote_start(&c, &z, err, sizeof(err)) != 0 ||
	    sg_zygote_spawn(&z, "acme", 0, &pid, &fd, err, sizeof(err)) != 0)
		return 1;
	pid_t pids[2] = {z.pid, pid};
	char ready[64];
	/* Mid-run, the worker does not read its socket: only a signal can end it. */
	struct sg_frame_msg m = {.type = SG_FRAME_RUN};
	m.run = (struct sg_frame_run){"spin",
	                              "test",
	                              "function run() while true do end end",
	                              json_null(),
	                              {INT64_MAX, 16 * MiB, 0, 0}};
	if (read(fd, ready, sizeof(ready)) <= 0 || sg_frame_write_fd(fd, &m, 0, err, 512) != 0 ||
	    write(report, pids, sizeof(pids)) != sizeof(pids))
		return 2;
	pause();
	return 3;
}

/* The test adopts the orphans (as a subreaper) to see how they ended. */
static void
test_gateway_death_takes_zygote_and_workers_along(void **state)
{
	(void)state;
	int p[2];
	pid_t pids[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	pid_t gw = fork();
	assert_true(gw >= 0);
	if (gw == 0)
		_exit(gateway_that_dies(p[1]));
	close(p[1]);
	ssize_t got = read(p[0], pids, sizeof(pids));
	close(p[0]);
	kill(gw, SIGKILL);
	assert_int_equal(waitpid(gw, NULL, 0), gw);
	int seen = 0;
	for (int64_t end = now_ms() + 5000; got == sizeof(pids) && seen < 2 && now_ms() < end;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0) {
			usleep(2000);
			continue;
		}
		assert_true(pid == pids[0] || pid == pids[1]);
		/*
		 * The dying gateway's descriptors close before its children get the
		 * parent-death signal, so the zygote may see EOF first and exit 0
		 * after killing its worker; either way the spinning worker dies by
		 * SIGKILL, from the zygote or from its own parent-death signal.
		 */
		if (pid == pids[0] && WIFEXITED(status))
			assert_exited(status, 0);
		else
			assert_signaled(status, SIGKILL);
		seen++;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	assert_int_equal(got, sizeof(pids));
	assert_int_equal(seen, 2);
}

static const char bomb_src[] = "function run()\n"
                               "  local t, i = {}, 0\n"
                               "  while true do i = i + 1 t[i] = string.rep('x', 65536) .. i end\n"
                               "end\n";

static void
test_memory_bomb_is_killed_by_the_cgroup_ceiling(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char dir[1200], oom[512], peak[64];
	config_init(&c, true);
	c.cgroup_mode = SG_CGROUP_STRICT;
	c.ceilings.memory_bytes = 64 * MiB;
	c.worker.isolate.limits.address_space = address_space_in_use() + 2048 * MiB;
	start(f, &c);
	/* With a Lua budget under the ceiling, the language layer stops it first. */
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	struct sg_frame_msg m;
	send_run(w, "small", bomb_src, NULL, INT64_MAX, 8 * MiB);
	expect_done(w, "small", &m);
	assert_int_equal(m.done.stop, SG_STOP_MEMORY);
	sg_frame_msg_clear(&m);
	/* With 1 GiB for Lua and 2 GiB of address space, only the cgroup is left. */
	send_run(w, "big", bomb_src, NULL, INT64_MAX, 1024 * MiB);
	int status = wait_exit(f, w->pid, 20000);
	group_dir(f, SG_CGROUP_MEMORY, f->acme, dir, sizeof(dir));
	assert_int_equal(sg_cgroup_read(dir, "memory.oom_control", oom, sizeof(oom)), 0);
	assert_int_equal(sg_cgroup_read(dir, "memory.max_usage_in_bytes", peak, sizeof(peak)), 0);
	fprintf(stderr, "memory bomb: %s %d; group peak %s; %s",
	        WIFSIGNALED(status) ? "signal" : "exit status",
	        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), strtok(peak, "\n"),
	        oom);
	assert_signaled(status, SIGKILL);
	const char *kills = strstr(oom, "oom_kill ");
	assert_non_null(kills);
	assert_true(atoi(kills + strlen("oom_kill ")) >= 1); /* the cgroup's OOM killer did it */
	assert_true(strtoull(peak, NULL, 10) <= 64 * MiB);
}

/* A stand-in for the server key, loaded (wrongly) before the zygote started. */
static char server_secret[32] = "sgk-server-secret-do-not-copy";

static void
scrub_secret(void *arg)
{
	explicit_bzero(arg, sizeof(server_secret));
}

/* Whether n bytes at our address `at`, in another process's memory, are all zero. */
static bool
zero_there(pid_t pid, const void *at, size_t n)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_true(n <= sizeof(buf));
	ssize_t got = pread(fd, buf, n, (off_t)(uintptr_t)at);
	close(fd);
	assert_int_equal(got, (ssize_t)n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] != 0)
			return false;
	return true;
}

/* /proc/<pid>/environ holds no byte but NUL (the wiped exec-time block). */
static void
assert_environ_wiped(pid_t pid)
{
	char path[64], buf[65536];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t got = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(got >= 0);
	for (ssize_t i = 0; i < got; i++)
		if (buf[i] != 0)
			fail_msg("/proc/%d/environ still holds \"%.40s\"", (int)pid, buf + i);
}

static void
test_zygote_and_workers_hold_no_inherited_secret(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	config_init(&c, false);
	c.scrub = scrub_secret;
	c.scrub_arg = server_secret;
	assert_int_equal(setenv("SG_TEST_UPSTREAM_TOKEN", "tok-123", 1), 0);
	const char *token = getenv("SG_TEST_UPSTREAM_TOKEN"); /* setenv's copy, on the heap */
	start(f, &c);
	unsetenv("SG_TEST_UPSTREAM_TOKEN"); /* glibc keeps the string: token stays readable */
	assert_string_equal(server_secret, "sgk-server-secret-do-not-copy"); /* ours is intact */
	assert_string_equal(token, "tok-123");
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
	/* A worker is a copy of the zygote, not of us: both must be clean. */
	const pid_t pids[2] = {f->z.pid, w->pid};
	for (int i = 0; i < 2; i++) {
		assert_true(zero_there(pids[i], server_secret, sizeof(server_secret)));
		assert_true(zero_there(pids[i], token, strlen("tok-123")));
		assert_environ_wiped(pids[i]);
	}
}

static void *
wait_on_pipe(void *arg)
{
	char c;
	(void)!read(*(int *)arg, &c, 1);
	return NULL;
}

static void
test_start_refuses_a_threaded_process(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char err[512] = "";
	int p[2];
	pthread_t t;
	config_init(&c, false);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_on_pipe, &p[0]), 0);
	int rc = sg_zygote_start(&c, &f->z, err, sizeof(err));
	assert_int_equal(write(p[1], "x", 1), 1);
	pthread_join(t, NULL);
	close(p[0]);
	close(p[1]);
	assert_int_equal(rc, -1);
	assert_string_equal(err, "zygote: must start while the process has one thread, and it has "
	                         "2: start it before any thread");
	assert_int_equal(f->z.pid, 0);
	assert_int_equal(f->z.fd, -1);
	/* Stopping a zeroed handle touches no descriptor (not even 0). */
	struct sg_zygote zeroed;
	memset(&zeroed, 0, sizeof(zeroed));
	bool stdin_open = fcntl(0, F_GETFD) >= 0;
	assert_int_equal(sg_zygote_stop(&zeroed, err, sizeof(err)), 0);
	assert_int_equal(fcntl(0, F_GETFD) >= 0, stdin_open);
}

static void
test_requests_are_checked(void **state)
{
	struct fx *f = *state;
	struct sg_zygote_config c;
	char err[2048] = "", long_name[80];
	pid_t pid;
	int fd = -1;
	config_init(&c, true);
	start(f, &c);
	assert_int_equal(sg_zygote_spawn(&f->z, "../etc", 0, &pid, &fd, err, sizeof(err)), -1);
	assert_string_equal(err, "zygote: cannot spawn a worker: a tenant name is 1 to 63 "
	                         "lowercase letters, digits, '-' or '_', starting with a letter "
	                         "or digit");
	/* The zygote itself refuses what the rule refuses, not only its client. */
	assert_int_equal(sg_zygote_spawn(&f->z, "Acme", 0, &pid, &fd, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a tenant name is 1 to 63 lowercase"));
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(sg_zygote_spawn(&f->z, long_name, 0, &pid, &fd, err, sizeof(err)), -1);
	assert_string_equal(err, "zygote: a tenant name is 1 to 63 bytes, not 64");
	assert_int_equal(sg_zygote_kill(&f->z, getpid(), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a live worker of this zygote"));
	assert_int_equal(sg_zygote_kill(&f->z, f->z.pid, err, sizeof(err)), -1);
	assert_int_equal(sg_zygote_kill(&f->z, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "zygote: kill 0: Invalid argument");
	assert_int_equal(sg_zygote_kill(&f->z, -1, err, sizeof(err)), -1);
	assert_false(f->z.broken); /* refusals, not protocol errors: it still serves */
	struct conn *w = spawn(f, f->acme);
	expect_ready(w);
}

#define CASE(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    CASE(test_spawn_ready_and_run_a_template),
	    CASE(test_ctx_call_round_trip),
	    CASE(test_done_fits_logs_and_output_into_one_frame),
	    CASE(test_malformed_frames_make_the_worker_exit),
	    CASE(test_garbage_from_a_worker_is_caught_and_it_is_killed),
	    CASE(test_wall_clock_kill_ends_an_endless_loop),
	    CASE(test_confinement_is_visible_from_outside),
	    CASE(test_seccomp_kills_a_worker_that_makes_a_forbidden_call),
	    CASE(test_tenants_get_their_own_workers_and_cgroups),
	    CASE(test_worker_retires_after_max_runs),
	    CASE(test_closing_the_control_socket_ends_zygote_and_workers),
	    CASE(test_gateway_death_takes_zygote_and_workers_along),
	    CASE(test_memory_bomb_is_killed_by_the_cgroup_ceiling),
	    CASE(test_zygote_and_workers_hold_no_inherited_secret),
	    CASE(test_start_refuses_a_threaded_process),
	    CASE(test_requests_are_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
