/*
 * The Redis throttle backend against a real redis-server, one per test on a
 * free loopback port:
 *  - exactness: every reply equals sg_gcra_decide_reserved (through a small
 *    all-or-nothing model) for the stored TAT and the Redis time the script
 *    ran at, over crafted states and over long pipelined runs; the stored
 *    TATs and key expiries match too;
 *  - two nodes on two links sharing one bucket;
 *  - all or nothing, shadow windows, refund and charge, argument limits;
 *  - NOSCRIPT after SCRIPT FLUSH, a killed server, a stopped server
 *    (timeout), a server absent at start, a server refusing SCRIPT LOAD,
 *    and freeing with requests pending; no descriptor outlives a test.
 * Callbacks never assert (a longjmp out of hiredis would wreck it): they
 * record, and the test body checks.  The server is killed by pid in
 * teardown, which cmocka runs after a failed assertion too, and dies with
 * this process otherwise (PR_SET_PDEATHSIG).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "throttle/sg_gcra.h"
#include "throttle/sg_redis.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define TIMEOUT_MS 300
#define RECONNECT_MS 200
/*
 * A bound on how late something may happen is the expected time times 3
 * plus 50 ms: this machine is shared, and a sanitizer build under load is
 * descheduled for tens of ms.  What happened (a timeout, a close) is told
 * by the error and the counters, never by how long it took.
 */
#define LATE_MS(ms) (3 * (ms) + 50)
#define MS 1000000ull
#define SEC 1000000000ull

/* One decision's outcome, as a callback saw it. */
struct outcome {
	int *done;
	int calls;
	uint64_t at;
	struct sg_redis_reply reply;
};

/* A pipelined run: every reply checked against the model, in Redis's order. */
struct run {
	struct sg_redis *rd;
	struct sg_redis_window w[8];
	size_t n;
	uint64_t tat[SG_REDIS_WINDOWS_MAX];
	uint64_t span_ns; /* stop sending once Redis time has moved this far */
	unsigned sent, answered, admitted, failures, mismatches;
	uint64_t first_now, last_now;
	char first_mismatch[300];
	int done;
};

/* Two nodes hammering one bucket, each over its own link. */
struct node {
	struct shared *sh;
	struct sg_redis *rd;
};
struct shared {
	struct node node[2];
	struct sg_redis_window w;
	uint64_t span_ns, first_now, last_now;
	unsigned sent, answered, admitted, failures;
	int done;
};

struct fx {
	pid_t server;
	uint16_t port;
	struct event_base *base;
	struct event *tick;
	struct sg_redis *rd;
	struct sg_redis_config cfg;
	redisContext *admin; /* a plain blocking connection for inspecting keys */
	int ups, downs;
	int fds; /* open before setup: teardown checks none leaked */
	/*
	 * Outcomes live here, not on a test's stack: after a failed assertion
	 * requests may still be pending, and teardown's free calls back into them.
	 */
	int done;
	struct outcome o[64];
	struct outcome one; /* decide()'s */
	struct run run;
	struct shared shared;
	struct sg_redis *rd2; /* a second node */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static int
open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static uint16_t
free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0)
		fail_msg("cannot find a free port");
	close(s);
	return ntohs(a.sin_port);
}

static bool
server_answers(uint16_t port)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	bool ok = false;
	if (c != NULL && c->err == 0) {
		redisReply *r = redisCommand(c, "PING");
		ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
		freeReplyObject(r);
	}
	redisFree(c);
	return ok;
}

static void
server_start_with(struct fx *f, bool without_script_command)
{
	if (access(REDIS_SERVER, X_OK) != 0)
		fail_msg(REDIS_SERVER
		         " is missing: install the redis-server package to run these tests");
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)f->port);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (freopen("/dev/null", "w", stdout) == NULL || chdir("/tmp") != 0)
			_exit(126);
		const char *argv[16] = {REDIS_SERVER, "--port", port, "--bind",
		                        "127.0.0.1",  "--save", ""};
		const char *rest[] = {"--appendonly", "no", "--daemonize", "no", "--rename-command",
		                      "SCRIPT",       ""};
		memcpy(argv + 7, rest, (without_script_command ? 7 : 4) * sizeof(*rest));
		execv(REDIS_SERVER, (char *const *)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	f->server = pid;
	for (int i = 0; i < 250; i++) {
		if (server_answers(f->port))
			return;
		usleep(20000);
	}
	fail_msg("redis-server on port %u did not answer PING within 5 s", (unsigned)f->port);
}

static void
server_start(struct fx *f)
{
	server_start_with(f, false);
}

/* The server's state letter in /proc (R, S, T, ...), or 0 when it is gone. */
static char
server_state(const struct fx *f)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)f->server);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Signals the server and returns once the signal has taken effect: dead
 * and reaped, stopped, or running again.  kill() only queues a signal.
 */
static void
server_signal(struct fx *f, int sig)
{
	if (f->server <= 0)
		return;
	kill(f->server, sig);
	if (sig == SIGKILL) {
		waitpid(f->server, NULL, 0);
		f->server = 0;
		return;
	}
	for (int i = 0; i < 5000 && sig == SIGSTOP && server_state(f) != 'T'; i++)
		usleep(1000);
	for (int i = 0; i < 5000 && sig == SIGCONT && server_state(f) == 'T'; i++)
		usleep(1000);
	if ((sig == SIGSTOP) != (server_state(f) == 'T'))
		fail_msg("redis-server did not %s within 5 s", sig == SIGSTOP ? "stop" : "resume");
}

/*
 * Bytes sent to the server and not yet read by it, from the kernel's
 * receive queues of the server's end of each link (/proc/net/tcp): how a
 * test knows its commands reached a stopped server, rather than guessing
 * how long writing them takes.
 */
static unsigned long
server_unread(const struct fx *f)
{
	FILE *fp = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned long total = 0;
	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned lport, st;
		unsigned long tx, rx;
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %lx:%lx", &lport, &st, &tx, &rx) == 4 &&
		    lport == f->port && st == 1 /* ESTABLISHED */)
			total += rx;
	}
	fclose(fp);
	return total;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
on_state(void *arg, bool up)
{
	struct fx *f = arg;
	if (up)
		f->ups++;
	else
		f->downs++;
}

/* Runs the loop until *count reaches target or `ms` pass; true if it did. */
static bool
run_until(struct fx *f, const int *count, int target, unsigned ms)
{
	uint64_t end = now_ns() + ms * MS;
	while (*count < target && now_ns() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	return *count >= target;
}

static void
run_for(struct fx *f, unsigned ms)
{
	int never = 0;
	run_until(f, &never, 1, ms);
}

/* Runs the loop until the backend's counters satisfy `ok`, or 5 s pass; true if they did. */
static bool
run_until_stats(struct fx *f, bool (*ok)(const struct sg_redis_stats *))
{
	struct sg_redis_stats st;
	uint64_t end = now_ns() + 5000 * MS;
	for (;;) {
		sg_redis_stats(f->rd, &st);
		if (ok(&st) || now_ns() >= end)
			return ok(&st);
		event_base_loop(f->base, EVLOOP_ONCE);
	}
}

static bool
timed_out_twice(const struct sg_redis_stats *st)
{
	return st->timeouts >= 2;
}

static bool
loaded_twice(const struct sg_redis_stats *st)
{
	return st->script_loads >= 2;
}

/* Runs the loop until the server has `bytes` unread, or 5 s pass; true if it did. */
static bool
run_until_server_has(struct fx *f, unsigned long bytes)
{
	uint64_t end = now_ns() + 5000 * MS;
	while (server_unread(f) < bytes && now_ns() < end)
		event_base_loop(f->base, EVLOOP_ONCE);
	return server_unread(f) >= bytes;
}

static void
open_backend(struct fx *f)
{
	f->rd = sg_redis_new(f->base, &f->cfg);
	assert_non_null(f->rd);
	sg_redis_on_state(f->rd, on_state, f);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	*state = f;
	f->fds = open_fds();
	f->port = free_port();
	server_start(f);
	f->base = event_base_new();
	struct timeval ms = {0, 1000};
	f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
	event_add(f->tick, &ms);
	snprintf(f->cfg.host, sizeof(f->cfg.host), "127.0.0.1");
	snprintf(f->cfg.prefix, sizeof(f->cfg.prefix), "sgt:");
	f->cfg.port = f->port;
	f->cfg.timeout_ms = TIMEOUT_MS;
	f->cfg.reconnect_ms = RECONNECT_MS;
	struct timeval tv = {1, 0};
	f->admin = redisConnectWithTimeout("127.0.0.1", f->port, tv);
	assert_true(f->admin != NULL && f->admin->err == 0);
	open_backend(f);
	if (!run_until(f, &f->ups, 1, 5000))
		fail_msg("the backend did not come up against a running server");
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sg_redis_free(f->rd);
	sg_redis_free(f->rd2);
	if (f->tick != NULL)
		event_free(f->tick);
	if (f->base != NULL)
		event_base_free(f->base);
	redisFree(f->admin);
	server_signal(f, SIGKILL);
	int fds = f->fds;
	free(f);
	if (open_fds() != fds) {
		print_error("%d file descriptors before the test, %d after\n", fds, open_fds());
		return -1;
	}
	return 0;
}

static void
on_outcome(void *arg, const struct sg_redis_reply *r)
{
	struct outcome *o = arg;
	o->calls++;
	o->at = now_ns();
	o->reply = *r;
	(*o->done)++;
}

/* Slot i, cleared, counting into f->done. */
static struct outcome *
slot(struct fx *f, int i)
{
	f->o[i] = (struct outcome){.done = &f->done};
	return &f->o[i];
}

static struct sg_redis_reply
decide(struct fx *f, const struct sg_redis_window *w, size_t n, uint32_t cost)
{
	int before = f->done;
	f->one = (struct outcome){.done = &f->done};
	assert_int_equal(sg_redis_decide(f->rd, w, n, cost, on_outcome, &f->one), 0);
	assert_int_equal(f->done, before); /* never called from inside sg_redis_decide */
	assert_true(run_until(f, &f->done, before + 1, 5000));
	assert_int_equal(f->one.calls, 1);
	if (f->one.reply.status != 0)
		fail_msg("decision failed: %s", f->one.reply.error);
	assert_int_equal(f->one.reply.n, n);
	return f->one.reply;
}

static void
admin_cmd(struct fx *f, const char *fmt, const char *arg)
{
	redisReply *r = redisCommand(f->admin, fmt, arg);
	assert_non_null(r);
	freeReplyObject(r);
}

static const char *
key_name(uint64_t key)
{
	static char name[64];
	snprintf(name, sizeof(name), "sgt:%016" PRIx64, key);
	return name;
}

/* The TAT Redis holds for `key`, 0 when absent. */
static uint64_t
stored_tat(struct fx *f, uint64_t key)
{
	redisReply *r = redisCommand(f->admin, "GET %s", key_name(key));
	assert_non_null(r);
	uint64_t v = r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
	freeReplyObject(r);
	return v;
}

static long long
key_pttl(struct fx *f, uint64_t key)
{
	redisReply *r = redisCommand(f->admin, "PTTL %s", key_name(key));
	assert_non_null(r);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

static void
set_tat(struct fx *f, uint64_t key, uint64_t tat)
{
	char v[32];
	snprintf(v, sizeof(v), "%" PRIu64, tat);
	redisReply *r = redisCommand(f->admin, "SET %s %s", key_name(key), v);
	assert_non_null(r);
	freeReplyObject(r);
}

/* Redis's clock now, in ns: what the next script will see, give or take a little. */
static uint64_t
redis_now(struct fx *f)
{
	redisReply *r = redisCommand(f->admin, "TIME");
	assert_true(r != NULL && r->elements == 2);
	uint64_t t = strtoull(r->element[0]->str, NULL, 10) * SEC +
	             strtoull(r->element[1]->str, NULL, 10) * 1000;
	freeReplyObject(r);
	return t;
}

/*
 * The reference: sg_gcra_decide_reserved on every window, all or nothing,
 * shadow windows on admitted calls only, at the Redis time of the reply.
 */
static void
model_decide(const struct sg_redis_window *w, size_t n, uint32_t cost, uint64_t now, uint64_t *tat,
             struct sg_redis_reply *out)
{
	uint64_t next[SG_REDIS_WINDOWS_MAX];
	out->allowed = true;
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if (w[i].shadow != (pass == 1))
				continue;
			struct sg_gcra_limit l = {w[i].emission_ns, w[i].burst};
			uint32_t c = pass == 1 && !out->allowed ? 0 : cost;
			out->res[i] =
			    sg_gcra_decide_reserved(&l, tat[i], now, c, w[i].reserve_ns, &next[i]);
			if (pass == 0 && !out->res[i].allowed)
				out->allowed = false;
			if (pass == 1 && out->res[i].allowed)
				tat[i] = next[i];
		}
		for (size_t i = 0; pass == 0 && out->allowed && i < n; i++)
			if (!w[i].shadow)
				tat[i] = next[i];
	}
}

/* "" when the two agree, else what differs. */
static const char *
differs(const struct sg_redis_reply *got, const struct sg_redis_reply *want, size_t n)
{
	static char msg[256];
	if (got->allowed != want->allowed) {
		snprintf(msg, sizeof(msg), "allowed %d, model %d", got->allowed, want->allowed);
		return msg;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sg_gcra_result *a = &got->res[i], *b = &want->res[i];
		if (a->allowed != b->allowed || a->limit != b->limit ||
		    a->remaining != b->remaining || a->retry_after_ns != b->retry_after_ns ||
		    a->reset_ns != b->reset_ns) {
			snprintf(msg, sizeof(msg),
			         "window %zu: got {%d %u %u %" PRIu64 " %" PRIu64
			         "} model {%d %u %u %" PRIu64 " %" PRIu64 "}",
			         i, a->allowed, a->limit, a->remaining, a->retry_after_ns,
			         a->reset_ns, b->allowed, b->limit, b->remaining, b->retry_after_ns,
			         b->reset_ns);
			return msg;
		}
	}
	return "";
}

/*
 * Crafted single-window states: each reply equals sg_gcra_decide_reserved
 * at the reply's Redis time, the stored TAT equals the model's new TAT to
 * the nanosecond, and the key expires about a second after the bucket is
 * full again.
 */
static void
test_crafted_states_match_local_gcra(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t t;
		uint32_t burst, cost;
		uint64_t reserve;
		bool has_tat;
		int64_t ahead; /* stored TAT - now, roughly */
	} cases[] = {
	    {SEC, 5, 1, 0, false, 0},                                   /* fresh bucket */
	    {SEC, 5, 1, 0, true, 4500 * (int64_t)MS},                   /* over: retry ~0.5 s */
	    {SEC, 5, 1, SEC, true, 3200 * (int64_t)MS},                 /* the reserve refuses */
	    {SEC, 5, 1, SEC, true, 2800 * (int64_t)MS},                 /* the reserve still fits */
	    {333333333, 10, 3, 0, true, (int64_t)SEC},                  /* T not a whole us */
	    {17280 * MS, 5000, 1, 0, true, 4999 * 17280 * (int64_t)MS}, /* 5000/day, last unit */
	    {86400000 * SEC, 100000, 2, UINT64_MAX, false, 0},          /* 0.001/d: saturation */
	    {86400000 * SEC, 100000, 1, UINT64_MAX, true, (int64_t)SEC}, /* saturated: refused */
	    {86400000 * SEC, 100000, 1, 0, true, 5 * 86400000 * (int64_t)SEC},
	    {MS, 3, 4, 0, false, 0},                  /* cost > burst: never */
	    {MS, 3, 0, 0, true, 1500 * 1000},         /* cost 0 only peeks */
	    {SEC, 5, 2, 0, true, -10 * (int64_t)SEC}, /* TAT long past */
	    {1000, 1, 1, 0, false, 0},                /* T = 1 us */
	    {7, 100000, 99999, 0, false, 0},          /* T = 7 ns */
	    {SEC, 5, 1, 0, true, 100 * (int64_t)SEC}, /* deep in debt */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t key = 0x1000 + i, tat = 0;
		if (cases[i].has_tat) {
			tat = (uint64_t)((int64_t)redis_now(f) + cases[i].ahead);
			set_tat(f, key, tat);
		}
		struct sg_redis_window w = {key, cases[i].t, cases[i].burst, cases[i].reserve,
		                            false};
		struct sg_redis_reply got = decide(f, &w, 1, cases[i].cost), want = {0};
		uint64_t model_tat = tat;
		model_decide(&w, 1, cases[i].cost, got.now_ns, &model_tat, &want);
		const char *d = differs(&got, &want, 1);
		if (d[0] != '\0')
			fail_msg("case %zu: %s", i, d);
		assert_int_equal(stored_tat(f, key), model_tat);
		if (model_tat != tat) { /* written: expires 1 s after the bucket is full */
			long long want_ms =
			    (long long)((want.res[0].reset_ns + MS - 1) / MS) + 1000;
			if (want_ms > 1000000000000000ll)
				want_ms = 1000000000000000ll;
			long long pttl = key_pttl(f, key);
			if (pttl > want_ms || pttl < want_ms - 500)
				fail_msg("case %zu: PTTL %lld, want about %lld", i, pttl, want_ms);
		}
	}
}

static uint32_t
run_cost(const struct run *r, unsigned i)
{
	return r->n == 1 ? 1 : 1 + i % 3;
}

static void on_run_reply(void *arg, const struct sg_redis_reply *reply);

static void
run_send(struct run *r)
{
	if (sg_redis_decide(r->rd, r->w, r->n, run_cost(r, r->sent), on_run_reply, r) == 0)
		r->sent++;
}

static void
on_run_reply(void *arg, const struct sg_redis_reply *reply)
{
	struct run *r = arg;
	uint32_t cost = run_cost(r, r->answered++);
	if (reply->status != 0) {
		r->failures++;
	} else {
		struct sg_redis_reply want = {0};
		model_decide(r->w, r->n, cost, reply->now_ns, r->tat, &want);
		const char *d = differs(reply, &want, r->n);
		if (d[0] != '\0' && r->mismatches++ == 0)
			snprintf(r->first_mismatch, sizeof(r->first_mismatch), "reply %u: %s",
			         r->answered, d);
		r->admitted += reply->allowed;
		if (r->first_now == 0)
			r->first_now = reply->now_ns;
		r->last_now = reply->now_ns;
	}
	if (r->last_now - r->first_now < r->span_ns && r->failures == 0)
		run_send(r); /* from inside a callback, as the throttle step will */
	if (r->answered == r->sent)
		r->done = 1;
}

static void
run_pipelined(struct fx *f, const struct sg_redis_window *w, size_t n, uint64_t span_ns,
              unsigned depth)
{
	struct run *r = &f->run;
	*r = (struct run){.rd = f->rd, .n = n, .span_ns = span_ns};
	memcpy(r->w, w, n * sizeof(*w));
	for (unsigned i = 0; i < depth; i++)
		run_send(r);
	assert_int_equal(r->sent, depth);
	assert_true(run_until(f, &r->done, 1, 60000));
	assert_int_equal(r->failures, 0);
	if (r->mismatches != 0)
		fail_msg("%u of %u replies differ from sg_gcra; first: %s", r->mismatches,
		         r->answered, r->first_mismatch);
	for (size_t i = 0; i < r->n; i++)
		assert_int_equal(stored_tat(f, r->w[i].key), r->tat[i]);
}

/* One window hammered for a second of Redis time admits b + r*t, give or take one. */
static void
test_one_window_admits_burst_plus_rate(void **state)
{
	struct fx *f = *state;
	/* A burst of 20 rides out a 200 ms stall of this process without losing a unit. */
	const struct sg_redis_window w = {.key = 1, .emission_ns = 10 * MS, .burst = 20};
	run_pipelined(f, &w, 1, SEC, 16);
	const struct run *r = &f->run;
	double expect = 20.0 + (double)(r->last_now - r->first_now) / (double)w.emission_ns;
	print_message("%u decisions over %.3f s of Redis time: %u admitted, expected %.1f\n",
	              r->answered, (double)(r->last_now - r->first_now) / 1e9, r->admitted, expect);
	assert_true((double)r->admitted >= expect - 1.0 && (double)r->admitted <= expect + 1.0);
}

static void on_node_reply(void *arg, const struct sg_redis_reply *reply);

static void
node_send(struct node *nd)
{
	if (sg_redis_decide(nd->rd, &nd->sh->w, 1, 1, on_node_reply, nd) == 0)
		nd->sh->sent++;
}

static void
on_node_reply(void *arg, const struct sg_redis_reply *reply)
{
	struct node *nd = arg;
	struct shared *sh = nd->sh;
	sh->answered++;
	if (reply->status != 0) {
		sh->failures++;
	} else {
		sh->admitted += reply->allowed;
		if (sh->first_now == 0 || reply->now_ns < sh->first_now)
			sh->first_now = reply->now_ns;
		if (reply->now_ns > sh->last_now)
			sh->last_now = reply->now_ns;
	}
	if (sh->last_now - sh->first_now < sh->span_ns && sh->failures == 0)
		node_send(nd);
	if (sh->answered == sh->sent)
		sh->done = 1;
}

/* Two nodes, two links, one bucket: together they admit b + r*t, give or take one. */
static void
test_two_nodes_share_one_bucket(void **state)
{
	struct fx *f = *state;
	f->rd2 = sg_redis_new(f->base, &f->cfg);
	assert_non_null(f->rd2);
	sg_redis_on_state(f->rd2, on_state, f);
	assert_true(run_until(f, &f->ups, 2, 5000));
	struct shared *sh = &f->shared;
	*sh = (struct shared){.w = {.key = 2, .emission_ns = 10 * MS, .burst = 20}, .span_ns = SEC};
	for (int i = 0; i < 2; i++) {
		sh->node[i] = (struct node){sh, i == 0 ? f->rd : f->rd2};
		for (int k = 0; k < 8; k++)
			node_send(&sh->node[i]);
	}
	assert_true(run_until(f, &sh->done, 1, 60000));
	assert_int_equal(sh->failures, 0);
	double expect = 20.0 + (double)(sh->last_now - sh->first_now) / (double)sh->w.emission_ns;
	print_message("two nodes, %u decisions: %u admitted, expected %.1f\n", sh->answered,
	              sh->admitted, expect);
	assert_true((double)sh->admitted >= expect - 1.0 && (double)sh->admitted <= expect + 1.0);
}

/* Several windows, a reserve, a shadow and weighted costs: reply for reply equal to the model. */
static void
test_several_windows_weighted_match_model(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w[] = {
	    {.key = 10, .emission_ns = 2 * MS, .burst = 20},
	    {.key = 11, .emission_ns = 333333, .burst = 7, .reserve_ns = 2 * 333333},
	    {.key = 12, .emission_ns = 100000, .burst = 4},
	    {.key = 13, .emission_ns = MS, .burst = 2, .shadow = true},
	};
	run_pipelined(f, w, 4, 500 * MS, 8);
	const struct run *r = &f->run;
	print_message("%u decisions, %u admitted\n", r->answered, r->admitted);
	assert_true(r->admitted > 0 && r->admitted < r->answered);
}

/* When the second window refuses, the first is not charged. */
static void
test_refusal_charges_nothing(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w[] = {
	    {.key = 20, .emission_ns = SEC, .burst = 10},
	    {.key = 21, .emission_ns = SEC, .burst = 1},
	};
	struct sg_redis_reply r = decide(f, w, 2, 1);
	assert_true(r.allowed);
	uint64_t first = stored_tat(f, 20), second = stored_tat(f, 21);
	assert_true(first != 0 && second != 0);
	r = decide(f, w, 2, 1);
	assert_false(r.allowed);
	assert_true(r.res[0].allowed); /* would have fitted alone */
	assert_false(r.res[1].allowed);
	assert_true(r.res[1].retry_after_ns > 0 && r.res[1].retry_after_ns <= SEC);
	assert_int_equal(stored_tat(f, 20), first);
	assert_int_equal(stored_tat(f, 21), second);
	r = decide(f, w, 1, 1); /* only one unit was ever taken from the first window */
	assert_true(r.allowed);
	assert_int_equal(r.res[0].remaining, 8);
}

/* Shadow windows count admitted calls only and never refuse. */
static void
test_shadow_counts_but_never_refuses(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w[] = {
	    {.key = 30, .emission_ns = SEC, .burst = 100},
	    {.key = 31, .emission_ns = SEC, .burst = 3, .shadow = true},
	    {.key = 32, .emission_ns = SEC, .burst = 1},
	};
	const struct sg_redis_window es[] = {w[0], w[1]};
	struct sg_redis_reply r = decide(f, w, 3, 1);
	assert_true(r.allowed);
	assert_int_equal(r.res[1].remaining, 2);
	uint64_t shadow_tat = stored_tat(f, 31), enforced_tat = stored_tat(f, 30);

	r = decide(f, w, 3, 1); /* the third window refuses: the shadow is not counted */
	assert_false(r.allowed);
	assert_true(r.res[1].allowed);
	assert_int_equal(r.res[1].remaining, 2);
	assert_int_equal(stored_tat(f, 31), shadow_tat);
	assert_int_equal(stored_tat(f, 30), enforced_tat);

	assert_int_equal(decide(f, es, 2, 1).res[1].remaining, 1);
	assert_int_equal(decide(f, es, 2, 1).res[1].remaining, 0);
	shadow_tat = stored_tat(f, 31);
	r = decide(f, es, 2, 1); /* over the shadow limit: admitted, reported, not charged */
	assert_true(r.allowed);
	assert_false(r.res[1].allowed);
	assert_true(r.res[1].retry_after_ns > 0);
	assert_int_equal(stored_tat(f, 31), shadow_tat);
	assert_int_equal(r.res[0].remaining, 96);
}

/* A refund gives a take back exactly; a charge puts the bucket in debt. */
static void
test_refund_and_charge(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w = {.key = 40, .emission_ns = SEC, .burst = 2};
	assert_true(decide(f, &w, 1, 1).allowed);
	uint64_t after_one = stored_tat(f, 40);
	assert_true(decide(f, &w, 1, 1).allowed);
	assert_false(decide(f, &w, 1, 1).allowed);
	assert_int_equal(sg_redis_refund(f->rd, &w, 1, 1), 0);
	/* Same connection, so the refund runs before the next decision. */
	assert_true(decide(f, &w, 1, 0).res[0].remaining == 1);
	assert_int_equal(stored_tat(f, 40), after_one);
	assert_int_equal(sg_redis_charge(f->rd, &w, 1, 5), 0);
	struct sg_redis_reply r = decide(f, &w, 1, 1);
	assert_false(r.allowed);
	assert_int_equal(stored_tat(f, 40), after_one + 5 * SEC);
	assert_true(r.res[0].retry_after_ns > 4 * SEC);
	struct sg_redis_stats st;
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.adjust_dropped, 0);
}

static void
test_unusable_arguments_are_refused_at_once(void **state)
{
	struct fx *f = *state;
	struct sg_redis_window w[SG_REDIS_WINDOWS_MAX + 1];
	for (size_t i = 0; i <= SG_REDIS_WINDOWS_MAX; i++)
		w[i] = (struct sg_redis_window){.key = 50 + i, .emission_ns = SEC, .burst = 1};
	struct outcome *o = slot(f, 0);
	assert_int_equal(sg_redis_decide(f->rd, w, 0, 1, on_outcome, o), -1);
	assert_int_equal(sg_redis_decide(f->rd, w, SG_REDIS_WINDOWS_MAX + 1, 1, on_outcome, o), -1);
	w[3].burst = SG_REDIS_BURST_MAX + 1;
	assert_int_equal(sg_redis_decide(f->rd, w, 4, 1, on_outcome, o), -1);
	w[3].burst = SG_REDIS_BURST_MAX;
	struct sg_redis_reply r =
	    decide(f, w, SG_REDIS_WINDOWS_MAX, 1); /* the most, at the limit */
	assert_true(r.allowed);
	assert_int_equal(r.res[3].remaining, SG_REDIS_BURST_MAX - 1);
	run_for(f, 20);
	assert_int_equal(o->calls, 0);
}

/* SCRIPT FLUSH between decisions: reloaded once, retried, never seen by callers. */
static void
test_noscript_reloads_and_retries(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w = {.key = 60, .emission_ns = MS, .burst = 1000};
	assert_true(decide(f, &w, 1, 1).allowed);
	admin_cmd(f, "SCRIPT FLUSH", NULL);
	assert_true(decide(f, &w, 1, 1).allowed);
	struct sg_redis_stats st;
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.script_loads, 2);

	admin_cmd(f, "SCRIPT FLUSH", NULL); /* many in flight: one reload serves them all */
	f->done = 0;
	for (int i = 0; i < 20; i++)
		assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, i)), 0);
	assert_true(run_until(f, &f->done, 20, 5000));
	for (int i = 0; i < 20; i++)
		assert_int_equal(f->o[i].reply.status, 0);
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.script_loads, 3);
	assert_int_equal(st.failed, 0);
}

/* The link is back within LATE_MS of `expect_ms` after `since`, and it works. */
static void
expect_back_up(struct fx *f, int ups, uint64_t since, unsigned expect_ms)
{
	if (!run_until(f, &f->ups, ups, LATE_MS(expect_ms) + 5000))
		fail_msg("link not back 5 s after the server returned");
	uint64_t took = (now_ns() - since) / MS;
	print_message("link back %" PRIu64 " ms after the server answered\n", took);
	assert_true(took <= LATE_MS(expect_ms));
	assert_true(sg_redis_up(f->rd));
	const struct sg_redis_window w = {.key = 70, .emission_ns = MS, .burst = 10};
	assert_true(decide(f, &w, 1, 1).allowed);
}

/* SIGKILL with decisions in flight: all fail at once, the link reports down, then recovers. */
static void
test_killed_server_fails_all_then_recovers(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w = {.key = 70, .emission_ns = MS, .burst = 10};
	/*
	 * A deadline a minute off: however long this machine stalls between
	 * sending and killing, only the close can fail the decisions, and the
	 * counters show it did (it once was "under 300 ms", which a stall broke).
	 */
	sg_redis_free(f->rd);
	f->cfg.timeout_ms = 60000;
	open_backend(f);
	assert_true(run_until(f, &f->ups, 2, 5000));
	server_signal(f, SIGSTOP); /* so the decisions are sent but unanswered */
	f->done = 0;
	for (int i = 0; i < 50; i++)
		assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, i)), 0);
	assert_true(run_until_server_has(f, 1)); /* written: in flight */
	assert_int_equal(f->done, 0);
	server_signal(f, SIGKILL);
	assert_true(run_until(f, &f->done, 50, 5000));
	struct sg_redis_stats st;
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.timeouts, 0); /* the close, not the timeout */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(f->o[i].calls, 1);
		assert_int_equal(f->o[i].reply.status, -1);
		assert_non_null(strstr(f->o[i].reply.error, "redis: "));
		assert_null(strstr(f->o[i].reply.error, "no reply"));
	}
	print_message("error: %s\n", f->o[0].reply.error);
	assert_false(sg_redis_up(f->rd));
	assert_int_equal(f->downs, 1);
	assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, 60)), -1);
	assert_int_equal(sg_redis_refund(f->rd, &w, 1, 1), -1);

	run_for(f, 3 * RECONNECT_MS); /* attempts against a closed port stay down quietly */
	assert_int_equal(f->downs, 1);
	server_start(f);
	expect_back_up(f, 3, now_ns(), RECONNECT_MS);
	assert_int_equal(f->o[60].calls, 0);
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.links_lost, 1);
	assert_int_equal(st.failed, 50);
}

/* SIGSTOP: the decision fails after about timeout_ms, then the link recovers on SIGCONT. */
static void
test_stopped_server_times_out_then_recovers(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w = {.key = 80, .emission_ns = MS, .burst = 10};
	server_signal(f, SIGSTOP);
	f->done = 0;
	struct outcome *o = slot(f, 0);
	uint64_t t0 = now_ns();
	assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, o), 0);
	assert_true(run_until(f, &f->done, 1, 5000));
	uint64_t took = (o->at - t0) / MS;
	print_message("timed out after %" PRIu64 " ms: %s\n", took, o->reply.error);
	/* Never early (the deadline is on the same clock); late only by scheduling. */
	assert_true(took >= TIMEOUT_MS - 1 && took <= LATE_MS(TIMEOUT_MS));
	assert_int_equal(o->reply.status, -1);
	assert_string_equal(o->reply.error, "redis: no reply in 300 ms");
	struct sg_redis_stats st;
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.timeouts, 1); /* the timeout, not a close */
	assert_false(sg_redis_up(f->rd));
	assert_int_equal(f->downs, 1);

	/* Reconnects reach the stopped server, and time out too. */
	assert_true(run_until_stats(f, timed_out_twice));
	assert_false(sg_redis_up(f->rd));
	server_signal(f, SIGCONT);
	expect_back_up(f, 2, now_ns(), RECONNECT_MS + TIMEOUT_MS);
	sg_redis_stats(f->rd, &st);
	assert_int_equal(st.links_lost, 1);
}

/* Free with requests queued and with requests sent: every callback fails, nothing leaks. */
static void
test_free_fails_pending(void **state)
{
	struct fx *f = *state;
	const struct sg_redis_window w = {.key = 90, .emission_ns = MS, .burst = 10};
	f->done = 0;
	for (int i = 0; i < 10; i++) /* queued, not yet written */
		assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, i)), 0);
	sg_redis_free(f->rd);
	f->rd = NULL;
	assert_int_equal(f->done, 10);

	int fds = open_fds();
	open_backend(f);
	assert_true(run_until(f, &f->ups, 2, 5000));
	server_signal(f, SIGSTOP);
	for (int i = 10; i < 20; i++) /* written, unanswered */
		assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, i)), 0);
	assert_true(run_until_server_has(f, 1));
	assert_int_equal(f->done, 10);
	sg_redis_free(f->rd);
	f->rd = NULL;
	assert_int_equal(f->done, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(f->o[i].calls, 1);
		assert_int_equal(f->o[i].reply.status, -1);
		assert_string_equal(f->o[i].reply.error, "redis: shutting down");
	}
	assert_int_equal(f->downs, 0); /* free reports nothing */
	assert_int_equal(open_fds(), fds);
	server_signal(f, SIGCONT);
}

/* No server at start: down without a report, then up once one listens. */
static void
test_absent_server_comes_up_later(void **state)
{
	struct fx *f = *state;
	sg_redis_free(f->rd);
	f->rd = NULL;
	server_signal(f, SIGKILL);
	f->port = f->cfg.port = free_port();
	open_backend(f);
	assert_false(sg_redis_up(f->rd));
	const struct sg_redis_window w = {.key = 70, .emission_ns = MS, .burst = 10};
	struct outcome *o = slot(f, 0);
	assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, o), -1);
	run_for(f, 3 * RECONNECT_MS);
	assert_int_equal(f->downs, 0);
	server_start(f);
	expect_back_up(f, 2, now_ns(), RECONNECT_MS);
	assert_int_equal(o->calls, 0);
}

/* A server refusing SCRIPT LOAD: the link never counts as up, then recovers on a sane one. */
static void
test_refused_script_load_keeps_link_down(void **state)
{
	struct fx *f = *state;
	sg_redis_free(f->rd);
	f->rd = NULL;
	server_signal(f, SIGKILL);
	server_start_with(f, true);
	open_backend(f);
	assert_true(run_until_stats(f, loaded_twice)); /* the link was retried, not given up */
	assert_false(sg_redis_up(f->rd));
	assert_int_equal(f->ups, 1); /* setup's only */
	assert_int_equal(f->downs, 0);
	const struct sg_redis_window w = {.key = 70, .emission_ns = MS, .burst = 10};
	assert_int_equal(sg_redis_decide(f->rd, &w, 1, 1, on_outcome, slot(f, 0)), -1);
	server_signal(f, SIGKILL);
	server_start(f);
	expect_back_up(f, 2, now_ns(), RECONNECT_MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_crafted_states_match_local_gcra, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_window_admits_burst_plus_rate, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_two_nodes_share_one_bucket, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_several_windows_weighted_match_model, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_refusal_charges_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shadow_counts_but_never_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refund_and_charge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unusable_arguments_are_refused_at_once, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_noscript_reloads_and_retries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_server_fails_all_then_recovers, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_stopped_server_times_out_then_recovers, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_free_fails_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_absent_server_comes_up_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_script_load_keeps_link_down, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
