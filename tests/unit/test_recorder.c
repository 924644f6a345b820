/* The recorder: nothing lost between threads, bounded when the disk stalls, survives failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../support/sg_testdir.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sg_recorder.h"

#define PER_THREAD 5000

struct fx {
	char dir[64];
	char err[256];
	sqlite3 *raw; /* a second connection, playing another process */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	if (sg_testdir_make(f->dir, sizeof(f->dir), "recorder") != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sqlite3_close(f->raw);
	int rc = sg_testdir_remove(f->dir);
	free(f);
	return rc;
}

/* Opens the raw connection; the store must exist already (the recorder creates it). */
static void
raw_open(struct fx *f)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open_v2(path, &f->raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(f->raw, 5000);
}

static void
raw_exec(struct fx *f, const char *sql)
{
	assert_int_equal(sqlite3_exec(f->raw, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* Counts on a fresh connection, so only what was committed is seen. */
static int64_t
count(struct fx *f, const char *what)
{
	int64_t c = -1;
	struct sg_store *s = sg_store_open(f->dir, f->err, sizeof(f->err));
	assert_non_null(s);
	assert_int_equal(sg_store_count_decisions(s, what, &c), 0);
	sg_store_close(s);
	return c;
}

static struct sg_decision
decision(const char *what, int i)
{
	struct sg_decision d = {0};
	d.ts_us = 1700000000000000LL + i;
	snprintf(d.decision, sizeof(d.decision), "%s", what);
	snprintf(d.connector, sizeof(d.connector), "crm");
	d.status = 200;
	return d;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Polls for up to 10 s; the recorder works on its own thread and its own time. */
#define WAIT_FOR(cond)                                                                             \
	do {                                                                                       \
		for (int i_ = 0; i_ < 10000 && !(cond); i_++)                                      \
			nap_ms(1);                                                                 \
	} while (0)

static void
start(struct fx *f, struct sg_recorder **r, size_t capacity)
{
	*r = sg_recorder_start(f->dir, capacity, f->err, sizeof(f->err));
	if (*r == NULL)
		fail_msg("start failed: %s", f->err);
}

static void
test_stop_null(void **state)
{
	(void)state;
	sg_recorder_stop(NULL);
}

static void
test_start_errors(void **state)
{
	struct fx *f = *state;
	char file[128], dir[160];
	assert_null(sg_recorder_start(f->dir, 0, f->err, sizeof(f->err)));
	assert_non_null(strstr(f->err, "capacity"));
	snprintf(file, sizeof(file), "%s/plain", f->dir);
	int fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(dir, sizeof(dir), "%s/sub", file);
	assert_null(sg_recorder_start(dir, 8, f->err, sizeof(f->err)));
	assert_non_null(strstr(f->err, "cannot open the data directory"));
}

struct pusher {
	struct sg_recorder *r;
	const char *what;
	uint64_t refused;
};

static void *
push_many(void *arg)
{
	struct pusher *p = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct sg_decision d = decision(p->what, i);
		/* A full queue is allowed; the test retries so that every decision lands. */
		while (sg_recorder_push(p->r, &d) != 0) {
			p->refused++;
			nap_ms(1);
		}
	}
	return NULL;
}

static void
test_two_threads_lose_nothing(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	pthread_t t[2];
	struct pusher p[2] = {{.what = "allowed"}, {.what = "denied"}};
	start(f, &r, 1000); /* smaller than the total, so the ring wraps many times */
	for (int i = 0; i < 2; i++) {
		p[i].r = r;
		assert_int_equal(pthread_create(&t[i], NULL, push_many, &p[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Every refusal was counted, and nothing else was dropped. */
	assert_int_equal(sg_recorder_dropped(r), p[0].refused + p[1].refused);
	sg_recorder_stop(r); /* drains what is still queued */
	assert_int_equal(count(f, NULL), 2 * PER_THREAD);
	assert_int_equal(count(f, "allowed"), PER_THREAD);
	assert_int_equal(count(f, "denied"), PER_THREAD);
}

static void
test_full_queue_refuses_and_counts(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct sg_decision d = decision("allowed", 0);
	start(f, &r, 4);
	raw_open(f);
	raw_exec(f, "BEGIN EXCLUSIVE"); /* the writer stalls on the lock */
	assert_int_equal(sg_recorder_push(r, &d), 0);
	WAIT_FOR(sg_recorder_depth(r) == 0); /* taken by the writer, which now waits */
	assert_int_equal(sg_recorder_depth(r), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sg_recorder_push(r, &d), 0);
	assert_int_equal(sg_recorder_depth(r), 4);
	assert_int_equal(sg_recorder_dropped(r), 0);
	assert_int_equal(sg_recorder_push(r, &d), -1);
	assert_int_equal(sg_recorder_push(r, &d), -1);
	assert_int_equal(sg_recorder_dropped(r), 2);
	assert_int_equal(sg_recorder_written(r), 0);
	raw_exec(f, "COMMIT");
	WAIT_FOR(sg_recorder_written(r) == 5);
	assert_int_equal(sg_recorder_written(r), 5);
	assert_int_equal(sg_recorder_dropped(r), 2);
	assert_int_equal(sg_recorder_depth(r), 0);
	/* Room again once drained. */
	assert_int_equal(sg_recorder_push(r, &d), 0);
	sg_recorder_stop(r);
	assert_int_equal(count(f, NULL), 6); /* 8 pushed = 6 written + 2 dropped */
}

/* The brief's numbers: 10,000 from two threads into a queue that holds them all. */
enum { TOTAL = 10000 };

struct strict_pusher {
	struct sg_recorder *r;
	const char *what;
	int failed; /* pushes refused; must stay 0 */
};

static void *
push_no_retry(void *arg)
{
	struct strict_pusher *p = arg;
	for (int i = 0; i < TOTAL / 2; i++) {
		struct sg_decision d = decision(p->what, i);
		p->failed += sg_recorder_push(p->r, &d) != 0;
	}
	return NULL;
}

static void
test_ten_thousand_written_none_dropped(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	pthread_t t[2];
	struct strict_pusher p[2] = {{.what = "allowed"}, {.what = "throttled"}};
	start(f, &r, TOTAL); /* room for every push, whatever the writer's pace */
	for (int i = 0; i < 2; i++) {
		p[i].r = r;
		assert_int_equal(pthread_create(&t[i], NULL, push_no_retry, &p[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(p[0].failed + p[1].failed, 0);
	assert_int_equal(sg_recorder_dropped(r), 0);
	WAIT_FOR(sg_recorder_written(r) == TOTAL);
	assert_int_equal(sg_recorder_written(r), TOTAL);
	assert_int_equal(sg_recorder_depth(r), 0);
	assert_int_equal(sg_recorder_dropped(r), 0);
	sg_recorder_stop(r);
	assert_int_equal(count(f, NULL), TOTAL);
	assert_int_equal(count(f, "allowed"), TOTAL / 2);
	assert_int_equal(count(f, "throttled"), TOTAL / 2);
}

/*
 * Capacity 16 with the database locked by another connection: pushes are
 * refused once the ring is full, each refusal is counted, and once the lock
 * goes every accepted decision is written.  The lock is held for a few
 * milliseconds, far under the store's 5 s busy timeout, so the writer waits
 * rather than failing.
 */
static void
test_locked_db_fills_small_queue(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct sg_decision d = decision("denied", 0);
	uint64_t pushed = 0, accepted = 0, refused = 0;
	start(f, &r, 16);
	raw_open(f);
	raw_exec(f, "BEGIN EXCLUSIVE");
	/* At most 16 wait in the ring and one batch of at most 16 in the writer. */
	while (refused == 0 && pushed < 1000) {
		pushed++;
		if (sg_recorder_push(r, &d) == 0)
			accepted++;
		else
			refused++;
	}
	uint64_t depth = sg_recorder_depth(r);
	uint64_t written_while_locked = sg_recorder_written(r);
	raw_exec(f, "COMMIT");

	assert_int_equal(refused, 1);
	assert_in_range(accepted, 16, 32);
	assert_in_range(depth, 0, 16);
	assert_int_equal(written_while_locked, 0);
	assert_true(sg_recorder_dropped(r) > 0);
	assert_int_equal(sg_recorder_dropped(r), refused);
	WAIT_FOR(sg_recorder_written(r) == accepted);
	assert_int_equal(sg_recorder_written(r), accepted);
	assert_int_equal(sg_recorder_written(r) + sg_recorder_dropped(r), pushed);
	sg_recorder_stop(r);
	assert_int_equal(count(f, "denied"), (int64_t)accepted);
}

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * A queue smaller than the writer's batch (the config allows 16) is full
 * long before a batch is: the writer must take it at once, not linger its
 * 20 ms while request threads are refused.  Each round fills the ring and
 * waits for the writer to take it; lingering would cost at least 20 ms a
 * round, 1 s over 50 rounds.  Prompt draining takes a few ms in all.
 */
static void
test_full_small_queue_is_taken_without_lingering(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct sg_decision d = decision("allowed", 0);
	enum { CAP = 16 };
	start(f, &r, CAP);
	/*
	 * With a linger of a minute, a writer that waited for a full batch of
	 * 256 would sit on this full 16-slot queue for 60 s; one woken by the
	 * full queue takes it at once.  The 30 s deadline separates the two by
	 * orders of magnitude, so a busy machine cannot blur them.
	 */
	sg_recorder_set_linger(r, 60000);
	int refused = 0;
	for (int i = 0; i < CAP; i++)
		refused += sg_recorder_push(r, &d) != 0;
	double t0 = mono_ms();
	while (sg_recorder_depth(r) != 0 && mono_ms() - t0 < 30000)
		usleep(1000);
	size_t left = sg_recorder_depth(r);
	sg_recorder_stop(r);
	assert_int_equal(refused, 0);
	assert_int_equal(left, 0);
	assert_int_equal(count(f, NULL), CAP);
}

/*
 * A batch stops at the ring's end; what is left past the wrap is just as
 * due and must not wait a linger of its own.  A capacity of 20 gives a
 * ring of 276 slots, so the 14th round of 20 is split 16 + 4.
 */
static void
test_batch_split_at_the_ring_end_is_not_held(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct sg_decision d = decision("allowed", 0);
	enum { CAP = 20, ROUNDS = 20 };
	start(f, &r, CAP);
	sg_recorder_set_linger(r, 60000); /* as above: a minute against a 30 s deadline */
	uint64_t pushed = 0;
	double t0 = mono_ms();
	for (int round = 0; round < ROUNDS && mono_ms() - t0 < 30000; round++) {
		for (int i = 0; i < CAP; i++)
			pushed += sg_recorder_push(r, &d) == 0;
		while (sg_recorder_written(r) != pushed && mono_ms() - t0 < 30000)
			usleep(1000);
	}
	uint64_t written = sg_recorder_written(r);
	sg_recorder_stop(r);
	assert_int_equal(pushed, CAP * ROUNDS);
	assert_int_equal(written, CAP * ROUNDS);
	assert_int_equal(count(f, NULL), CAP * ROUNDS);
}

/* Redirects stderr into a file so the writer's log lines can be counted. */
static int
capture_stderr(FILE **tmp)
{
	fflush(stderr);
	int saved = dup(2);
	*tmp = tmpfile();
	assert_non_null(*tmp);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(*tmp), 2) >= 0);
	return saved;
}

static size_t
restore_stderr(FILE *tmp, int saved, const char *needle, bool *has_func)
{
	char line[512];
	size_t n = 0;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	*has_func = false;
	while (fgets(line, sizeof(line), tmp))
		if (strstr(line, needle)) {
			n++;
			*has_func = *has_func || strstr(line, "log_attempt") != NULL;
		}
	fclose(tmp);
	return n;
}

static int64_t
raw_int(struct fx *f, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->raw, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static struct sg_decision
costed(const char *user, int i, double cost)
{
	struct sg_decision d = decision("allowed", i);
	snprintf(d.tenant, sizeof(d.tenant), "acme");
	snprintf(d.user, sizeof(d.user), "%s", user);
	snprintf(d.mode, sizeof(d.mode), "live");
	d.cost = cost;
	return d;
}

/* The CREATE statement of `table`, to drop it and bring it back. */
static void
table_sql(struct fx *f, const char *table, char *out, size_t n)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->raw, "SELECT sql FROM sqlite_master WHERE name = ?",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* The decisions' ts_us in id order, which must be the order they were pushed. */
static void
assert_written_in_order(struct fx *f, int64_t n)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT ts_us FROM decisions ORDER BY id", -1, &st, NULL),
	    SQLITE_OK);
	int64_t i = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		assert_int_equal(sqlite3_column_int64(st, 0), 1700000000000000LL + i);
		i++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(i, n);
}

/*
 * A store error (here, the table gone) used to drop the batch.  Now the
 * batch waits at the head of the queue, later decisions wait behind it,
 * and all are written in order once the store takes them.  One error line
 * per burst, and one line when it ends.
 */
static void
test_write_failures_are_retried_in_order(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	char create[1024];
	bool has_func;
	int i = 0, refused = 0;
	start(f, &r, 16);
	raw_open(f);
	table_sql(f, "decisions", create, sizeof(create));

	/* Asserts wait until stderr is back, so a failure is still reported. */
	FILE *tmp;
	int saved = capture_stderr(&tmp);
	raw_exec(f, "DROP TABLE decisions"); /* every write now fails */
	struct sg_decision d = decision("allowed", i++);
	refused += sg_recorder_push(r, &d) != 0;
	WAIT_FOR(sg_recorder_retries(r) >= 2);
	d = decision("allowed", i++);
	refused += sg_recorder_push(r, &d) != 0;
	uint64_t written_while_failing = sg_recorder_written(r);
	raw_exec(f, create); /* recovered */
	WAIT_FOR(sg_recorder_written(r) == 2);
	uint64_t retries = sg_recorder_retries(r);
	int64_t first_ts = raw_int(f, "SELECT ts_us FROM decisions ORDER BY id LIMIT 1");
	int64_t rows = raw_int(f, "SELECT count(*) FROM decisions");
	raw_exec(f, "DROP TABLE decisions"); /* a second burst, and the first's rows go too */
	d = decision("allowed", i++);
	refused += sg_recorder_push(r, &d) != 0;
	WAIT_FOR(sg_recorder_retries(r) > retries);
	raw_exec(f, create);
	WAIT_FOR(sg_recorder_written(r) == 3);
	uint64_t dropped = sg_recorder_dropped(r), written = sg_recorder_written(r);
	size_t recovered = 0;
	fflush(stderr);
	rewind(tmp);
	for (char line[512]; fgets(line, sizeof(line), tmp);)
		recovered += strstr(line, "the store takes decisions again") != NULL;
	size_t logged = restore_stderr(tmp, saved, "cannot write decisions", &has_func);

	assert_int_equal(refused, 0);
	assert_int_equal(written_while_failing, 0);
	assert_true(retries >= 2);
	assert_int_equal(dropped, 0);
	assert_int_equal(written, 3);
	assert_int_equal(logged, 2); /* one line per burst, not per attempt */
	assert_int_equal(recovered, 2);
	assert_true(has_func);
	assert_int_equal(rows, 2);
	assert_int_equal(first_ts, 1700000000000000LL); /* the refused one first */
	sg_recorder_stop(r);
	assert_int_equal(count(f, NULL), 1);
}

/* A failing hook for the writer: fails `fail` attempts, noting when each came. */
struct fault {
	pthread_mutex_t mu;
	int fail, attempts;
	double at[16];
	bool stall; /* while true, attempts block instead */
};

static int
fault_fn(void *arg)
{
	struct fault *ft = arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&ft->mu);
	while (ft->stall) {
		pthread_mutex_unlock(&ft->mu);
		nap_ms(1);
		pthread_mutex_lock(&ft->mu);
	}
	if (ft->attempts < 16)
		ft->at[ft->attempts] = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
	int rc = ft->attempts++ < ft->fail ? -1 : 0;
	pthread_mutex_unlock(&ft->mu);
	return rc;
}

static void
test_backoff_doubles_to_one_second(void **state)
{
	(void)state;
	static const uint32_t want[][2] = {{0, 0},     {1, 10},           {2, 20},   {3, 40},
	                                   {6, 320},   {7, 640},          {8, 1000}, {9, 1000},
	                                   {33, 1000}, {UINT32_MAX, 1000}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(sg_recorder_backoff_ms(want[i][0]), want[i][1]);
}

/*
 * Four refused attempts: the batch and everything behind it are written
 * afterwards, in push order, nothing dropped, and the attempts were spaced
 * by at least the backoff (10, 20, 40, 80 ms).  Only lower bounds are
 * checked: a busy machine may stretch a wait, never shorten it.
 */
static void
test_refused_batches_are_retried_with_backoff(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct fault ft = {.fail = 4};
	enum { N = 300 }; /* more than a batch */
	pthread_mutex_init(&ft.mu, NULL);
	start(f, &r, 1000);
	sg_recorder_set_fault(r, fault_fn, &ft);
	for (int i = 0; i < N; i++) {
		struct sg_decision d = decision("allowed", i);
		assert_int_equal(sg_recorder_push(r, &d), 0);
	}
	WAIT_FOR(sg_recorder_written(r) == N);
	assert_int_equal(sg_recorder_written(r), N);
	assert_int_equal(sg_recorder_retries(r), 4);
	assert_int_equal(sg_recorder_dropped(r), 0);
	sg_recorder_stop(r);
	pthread_mutex_lock(&ft.mu);
	assert_true(ft.attempts >= 5);
	for (int k = 1; k <= 4; k++)
		assert_true(ft.at[k] - ft.at[k - 1] >= (double)sg_recorder_backoff_ms((uint32_t)k));
	pthread_mutex_unlock(&ft.mu);
	pthread_mutex_destroy(&ft.mu);
	assert_written_in_order(f, N);
}

/*
 * The case: the database locked by another process for longer
 * than the writer's busy wait.  The old writer dropped the batch; now the
 * locked-out decisions are written once the lock goes, with their
 * spending counted once.
 */
static void
test_lock_held_past_the_busy_wait_loses_nothing(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	int i = 0;
	start(f, &r, 1000);
	raw_open(f);
	raw_exec(f, "BEGIN EXCLUSIVE");
	for (; i < 3; i++) {
		struct sg_decision d = costed("ann", i, 0.25);
		assert_int_equal(sg_recorder_push(r, &d), 0);
	}
	WAIT_FOR(sg_recorder_retries(r) >= 1); /* the store refused at least once */
	uint64_t retries = sg_recorder_retries(r), written = sg_recorder_written(r);
	for (; i < 5; i++) {
		struct sg_decision d = costed("ann", i, 0.25);
		assert_int_equal(sg_recorder_push(r, &d), 0);
	}
	raw_exec(f, "COMMIT");
	/* Counted as written at the commit, freed from the queue just after. */
	WAIT_FOR(sg_recorder_written(r) == 5 && sg_recorder_backlog(r) == 0);
	assert_true(retries >= 1);
	assert_int_equal(written, 0);
	assert_int_equal(sg_recorder_written(r), 5);
	assert_int_equal(sg_recorder_dropped(r), 0);
	assert_int_equal(sg_recorder_backlog(r), 0);
	sg_recorder_stop(r);
	assert_written_in_order(f, 5);
	assert_int_equal(raw_int(f, "SELECT micros FROM spend_daily WHERE user = 'ann'"), 1250000);
}

/* Finished runs the store refused are kept and written later too. */
static void
test_refused_runs_are_retried(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	char create[1024];
	start(f, &r, 16);
	raw_open(f);
	table_sql(f, "runs", create, sizeof(create));
	raw_exec(f, "DROP TABLE runs");
	struct sg_run_row row = {.id = "run_1",
	                         .tenant = "acme",
	                         .user = "ann",
	                         .template_name = "t",
	                         .status = "succeeded"};
	row.doc = strdup("{\"id\":\"run_1\"}");
	assert_int_equal(sg_recorder_push_run(r, &row), 0);
	assert_null(row.doc);
	WAIT_FOR(sg_recorder_retries(r) >= 1);
	raw_exec(f, create);
	WAIT_FOR(raw_int(f, "SELECT count(*) FROM runs") == 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(sg_recorder_dropped(r), 0);
	sg_recorder_stop(r);
}

/*
 * fail_closed: refused once the oldest unwritten decision is past the
 * deadline, or the queue is full; fail_open is never refused.  Each
 * refusal is counted.  A stalled writer (blocked, not failing) is caught
 * by the age alone.
 */
static void
test_admit_fails_closed_when_the_audit_is_behind(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct fault ft = {.stall = true};
	struct sg_decision d = decision("allowed", 0);
	pthread_mutex_init(&ft.mu, NULL);
	start(f, &r, 4);
	sg_recorder_set_deadline(r, 50);
	sg_recorder_set_fault(r, fault_fn, &ft);
	assert_true(sg_recorder_admit(NULL, true, mono_ms() * 1e6));
	assert_true(sg_recorder_admit(r, true, (uint64_t)(mono_ms() * 1e6)));
	assert_int_equal(sg_recorder_push(r, &d), 0);
	assert_int_equal(sg_recorder_backlog(r), 1);
	/* The writer takes it and stalls; the decision ages past 50 ms. */
	double t0 = mono_ms();
	while (sg_recorder_oldest_age_ns(r, (uint64_t)(mono_ms() * 1e6)) <= 50000000ull &&
	       mono_ms() - t0 < 10000)
		nap_ms(1);
	uint64_t now = (uint64_t)(mono_ms() * 1e6);
	assert_true(sg_recorder_oldest_age_ns(r, now) > 50000000ull);
	assert_false(sg_recorder_admit(r, true, now));
	assert_true(sg_recorder_admit(r, false, now));
	assert_int_equal(sg_recorder_refused(r), 1);

	/* Full: with a deadline far away, only the full queue refuses. */
	sg_recorder_set_deadline(r, 600000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sg_recorder_push(r, &d), 0);
	assert_true(sg_recorder_admit(r, true, now));
	assert_int_equal(sg_recorder_push(r, &d), 0); /* the fourth fills the queue */
	assert_false(sg_recorder_admit(r, true, now));
	assert_true(sg_recorder_admit(r, false, now));
	assert_int_equal(sg_recorder_refused(r), 2);
	assert_int_equal(sg_recorder_backlog(r), 5);

	pthread_mutex_lock(&ft.mu);
	ft.stall = false;
	pthread_mutex_unlock(&ft.mu);
	WAIT_FOR(sg_recorder_backlog(r) == 0);
	now = (uint64_t)(mono_ms() * 1e6);
	assert_int_equal(sg_recorder_oldest_age_ns(r, now), 0);
	assert_true(sg_recorder_admit(r, true, now));
	assert_int_equal(sg_recorder_written(r), 5);
	assert_int_equal(sg_recorder_dropped(r), 0);
	sg_recorder_stop(r);
	pthread_mutex_destroy(&ft.mu);
}

/*
 * A store that never recovers must not hold the process forever: a stop
 * keeps trying for its grace (10 s), then counts and logs what it lost.
 */
static void
test_stop_gives_up_on_a_store_that_never_recovers(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	struct fault ft = {.fail = 1 << 30};
	struct sg_decision d = decision("allowed", 0);
	bool has_func;
	pthread_mutex_init(&ft.mu, NULL);
	start(f, &r, 16);
	sg_recorder_set_fault(r, fault_fn, &ft);
	FILE *tmp;
	int saved = capture_stderr(&tmp);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sg_recorder_push(r, &d), 0);
	WAIT_FOR(sg_recorder_retries(r) >= 1);
	double t0 = mono_ms();
	sg_recorder_stop(r);
	double took = mono_ms() - t0;
	size_t lost = restore_stderr(
	    tmp, saved, "3 decisions and 0 template runs were not recorded", &has_func);
	pthread_mutex_destroy(&ft.mu);
	assert_true(took >= 10000);
	assert_int_equal(lost, 1);
	assert_int_equal(count(f, NULL), 0);
}

/*
 * The writer adds its tally at stop and moves the mark to the newest
 * decision; the next writer first counts whatever the record holds after
 * the mark (here, rows written behind its back, as a crash would leave).
 */
static void
test_spending_reaches_the_daily_rows(void **state)
{
	struct fx *f = *state;
	struct sg_recorder *r;
	start(f, &r, 1000);
	for (int i = 0; i < 300; i++) {
		struct sg_decision d = costed(i % 3 ? "ann" : "bob", i, 0.002);
		assert_int_equal(sg_recorder_push(r, &d), 0);
	}
	WAIT_FOR(sg_recorder_written(r) == 300);
	/*
	 * A row written behind the writer's back while it runs is not in its
	 * tally, so a writer that adds its tally leaves it out, where one that
	 * recounted the record would not: this tells the two paths apart.
	 */
	raw_open(f);
	raw_exec(f, "INSERT INTO decisions (ts_us, tenant, user, mode, decision, status, cost)"
	            " VALUES (1700000000000500, 'acme', 'zed', 'live', 'allowed', 200, 0.5)");
	struct sg_decision last = costed("ann", 301, 0.002);
	assert_int_equal(sg_recorder_push(r, &last), 0);
	WAIT_FOR(sg_recorder_written(r) == 301);
	assert_int_equal(sg_recorder_spend_recounts(r), 1); /* the start's, only */
	sg_recorder_stop(r);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM spend_daily WHERE user = 'zed'"), 0);
	assert_int_equal(raw_int(f, "SELECT micros FROM spend_daily WHERE user = 'ann'"), 402000);
	assert_int_equal(raw_int(f, "SELECT micros FROM spend_daily WHERE user = 'bob'"), 200000);
	assert_int_equal(raw_int(f, "SELECT value FROM meta WHERE key = 'spend_through'"), 302);

	raw_exec(f, "INSERT INTO decisions (ts_us, tenant, user, mode, decision, status, cost)"
	            " VALUES (1700000000000999, 'acme', 'bob', 'live', 'allowed', 200, 0.5)");
	start(f, &r, 1000);
	sg_recorder_stop(r);
	assert_int_equal(raw_int(f, "SELECT micros FROM spend_daily WHERE user = 'bob'"), 700000);
	assert_int_equal(raw_int(f, "SELECT value FROM meta WHERE key = 'spend_through'"), 303);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stop_null),
	    T(test_start_errors),
	    T(test_two_threads_lose_nothing),
	    T(test_full_queue_refuses_and_counts),
	    T(test_ten_thousand_written_none_dropped),
	    T(test_locked_db_fills_small_queue),
	    T(test_full_small_queue_is_taken_without_lingering),
	    T(test_batch_split_at_the_ring_end_is_not_held),
	    T(test_write_failures_are_retried_in_order),
	    cmocka_unit_test(test_backoff_doubles_to_one_second),
	    T(test_refused_batches_are_retried_with_backoff),
	    T(test_lock_held_past_the_busy_wait_loses_nothing),
	    T(test_refused_runs_are_retried),
	    T(test_admit_fails_closed_when_the_audit_is_behind),
	    T(test_stop_gives_up_on_a_store_that_never_recovers),
	    T(test_spending_reaches_the_daily_rows),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
