/*
 * Throughput of the Redis throttle backend: decisions per second through
 * sg_redis over its one connection, DEPTH decisions in flight (hiredis
 * pipelines them), each figure the median of --runs runs (3):
 *   warm-key   every decision on the same bucket
 *   10k-keys   decisions spread over 10,000 distinct buckets
 *   depth-1    one at a time: the round trip, for reference
 * Each decision is one window (T = 1 us, burst 1000, cost 1), so nearly all
 * are admitted and the script both reads and writes its key.  bench/redis.sh
 * drives the same script with redis-benchmark for comparison.
 *
 *   build/bench/bench_redis [--port N] [--depth N] [--decisions N] [--runs N] [--no-latency]
 *   build/bench/bench_redis --print-script     the Lua text, for SCRIPT LOAD
 *
 * Without --port it starts its own redis-server on a free loopback port.
 */
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "throttle/sg_redis.h"

#define RUNS_MAX 15
#define N_KEYS 10000
#define REDIS_SERVER "/usr/bin/redis-server"

struct load {
	struct event_base *base;
	struct sg_redis *rd;
	uint64_t n_keys; /* 1: the warm key */
	uint64_t target, sent, answered, failed, admitted;
	char error[128];
	double cpu_ns_per; /* client CPU per decision in the last run */
};

static uint64_t
clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU this process used, user and system: what the client side costs. */
static uint64_t
cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_decided(void *arg, const struct sg_redis_reply *r);

static void
send_one(struct load *l)
{
	struct sg_redis_window w = {.emission_ns = 1000, .burst = 1000};
	w.key = l->n_keys == 1 ? 1 : 2 + l->sent % l->n_keys;
	if (sg_redis_decide(l->rd, &w, 1, 1, on_decided, l) == 0) {
		l->sent++;
		return;
	}
	l->target = l->sent; /* the link is down: stop here and report it */
	snprintf(l->error, sizeof(l->error), "redis link down");
}

static void
on_decided(void *arg, const struct sg_redis_reply *r)
{
	struct load *l = arg;
	l->answered++;
	if (r->status != 0) {
		l->failed++;
		snprintf(l->error, sizeof(l->error), "%s", r->error);
	} else {
		l->admitted += r->allowed;
	}
	if (l->sent < l->target)
		send_one(l);
	if (l->answered == l->sent)
		event_base_loopbreak(l->base);
}

/* Nanoseconds per decision over `decisions`, `depth` in flight. */
static double
run(struct load *l, uint64_t n_keys, uint64_t decisions, unsigned depth)
{
	l->n_keys = n_keys;
	l->target = decisions;
	l->sent = l->answered = l->failed = l->admitted = 0;
	uint64_t t0 = clock_ns(), c0 = cpu_ns();
	for (unsigned i = 0; i < depth && l->sent < l->target; i++)
		send_one(l);
	if (l->sent > 0)
		event_base_dispatch(l->base);
	uint64_t t1 = clock_ns();
	l->cpu_ns_per = (double)(cpu_ns() - c0) / (double)decisions;
	if (l->failed != 0 || l->answered != decisions) {
		fprintf(stderr, "bench_redis: %llu of %llu decisions failed: %s\n",
		        (unsigned long long)(l->failed + decisions - l->answered),
		        (unsigned long long)decisions, l->error);
		exit(1);
	}
	return (double)(t1 - t0) / (double)decisions;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void
report(struct load *l, const char *name, uint64_t n_keys, uint64_t decisions, unsigned depth,
       int runs)
{
	double v[RUNS_MAX], cpu[RUNS_MAX];
	for (int r = 0; r < runs; r++) {
		v[r] = run(l, n_keys, decisions, depth);
		cpu[r] = l->cpu_ns_per;
	}
	qsort(v, (size_t)runs, sizeof(*v), cmp_double);
	qsort(cpu, (size_t)runs, sizeof(*cpu), cmp_double);
	printf("%-9s %9.1f ns/decision %10.0f decisions/s  (depth %u, %llu decisions, "
	       "runs %.0f..%.0f/s, client cpu %.0f ns/decision)\n",
	       name, v[runs / 2], 1e9 / v[runs / 2], depth, (unsigned long long)decisions,
	       1e9 / v[runs - 1], 1e9 / v[0], cpu[runs / 2]);
}

static uint16_t
free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0) {
		fprintf(stderr, "bench_redis: cannot find a free port\n");
		exit(1);
	}
	close(s);
	return ntohs(a.sin_port);
}

/* Starts redis-server on `port`; it dies with this process. */
static pid_t
start_server(uint16_t port)
{
	char arg[8];
	snprintf(arg, sizeof(arg), "%u", (unsigned)port);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (freopen("/dev/null", "w", stdout) == NULL || chdir("/tmp") != 0)
			_exit(126);
		execl(REDIS_SERVER, REDIS_SERVER, "--port", arg, "--bind", "127.0.0.1", "--save",
		      "", "--appendonly", "no", "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		perror("bench_redis: fork");
		exit(1);
	}
	return pid;
}

static void
on_wait(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until the link is up (it retries by itself), for at most 5 s. */
static bool
wait_up(struct load *l)
{
	struct event *tick = event_new(l->base, -1, EV_PERSIST, on_wait, NULL);
	struct timeval ms10 = {0, 10000};
	event_add(tick, &ms10);
	uint64_t end = clock_ns() + 5000000000ull;
	while (!sg_redis_up(l->rd) && clock_ns() < end)
		event_base_loop(l->base, EVLOOP_ONCE);
	event_free(tick);
	return sg_redis_up(l->rd);
}

int
main(int argc, char **argv)
{
	uint16_t port = 0;
	unsigned depth = 128;
	uint64_t decisions = 200000;
	int runs = 3;
	bool quick = false; /* no depth-1 line */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--print-script") == 0) {
			fputs(sg_redis_script, stdout);
			return 0;
		} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = (uint16_t)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
			depth = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--no-latency") == 0) {
			quick = true;
		} else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--decisions") == 0 && i + 1 < argc) {
			decisions = strtoull(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_redis [--port N] [--depth N] [--decisions N] "
			                "[--runs N] [--no-latency] | --print-script\n");
			return 2;
		}
	}
	if (depth == 0 || decisions == 0 || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr,
		        "bench_redis: --depth and --decisions must be positive, --runs "
		        "1 to %d\n",
		        RUNS_MAX);
		return 2;
	}
	pid_t server = 0;
	if (port == 0) {
		port = free_port();
		server = start_server(port);
	}

	struct load l = {.base = event_base_new()};
	struct sg_redis_config cfg = {.port = port, .timeout_ms = 5000, .reconnect_ms = 50};
	snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
	snprintf(cfg.prefix, sizeof(cfg.prefix), "sgb:");
	l.rd = sg_redis_new(l.base, &cfg);
	if (l.rd == NULL || !wait_up(&l)) {
		fprintf(stderr, "bench_redis: no redis link to 127.0.0.1:%u after 5 s\n",
		        (unsigned)port);
		return 1;
	}

	printf("sg_redis against redis-server on 127.0.0.1:%u, one connection, 1 window a "
	       "decision, median of %d runs\n",
	       (unsigned)port, runs);
	run(&l, N_KEYS, decisions / 10, depth); /* warm-up: creates the 10k keys */
	report(&l, "warm-key", 1, decisions, depth, runs);
	report(&l, "10k-keys", N_KEYS, decisions, depth, runs);
	if (!quick)
		report(&l, "depth-1", N_KEYS, decisions / 20 > 0 ? decisions / 20 : 1, 1, runs);

	sg_redis_free(l.rd);
	event_base_free(l.base);
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	return 0;
}
