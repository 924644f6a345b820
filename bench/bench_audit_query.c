/*
 * Audit queries at 10 million decisions: the first page (50 rows, newest
 * first) filtered by one user and a week, and by code=dlp_blocked and a
 * week, plus the 10th page of the first by cursor.  Median of several runs
 * on one connection; the target is < 200 ms a page.
 *
 * The table is built once and kept (default /tmp/sandgate-bench-audit): 90
 * days of calls from 1,000 users in 50 tenants over 12 connectors, in one
 * transaction through one prepared statement, with the indexes made after
 * the rows (sorting once is far faster than growing six b-trees row by
 * row).  The schema is the gateway's own (sg_store_open's migrations).
 *
 *   build/bench/bench_audit_query [DIR] [RUNS] [ROWS]
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sg_migrations.h"
#include "store/sg_store.h"

#define DAY_US (86400LL * 1000000)
#define SPAN_DAYS 90
#define END_US 1796083200000000LL /* 2026-12-01T00:00:00Z: fixed, so the cache stays valid */
#define USERS 1000
#define TENANTS 50

static const char *const connectors[] = {"crm",  "mail", "calendar", "tickets", "billing", "files",
                                         "chat", "hr",   "wiki",     "crm2",    "search",  "geo"};
static const char *const operations[] = {"get", "list", "create", "update"};

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Whether DIR holds a finished table of `rows` rows (the build marks it last). */
static int
cached_rows(sqlite3 *db, int64_t rows)
{
	sqlite3_stmt *st;
	int ok = 0;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'bench_rows'", -1, &st,
	                       NULL) == SQLITE_OK) {
		ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == rows;
		sqlite3_finalize(st);
	}
	return ok;
}

struct outcome {
	const char *decision, *code, *reason;
	int status;
};

/* 90% allowed; refusals spread over the codes an admin asks about (1% dlp_blocked). */
static struct outcome
outcome(unsigned r)
{
	if (r < 90)
		return (struct outcome){"allowed", NULL, NULL, 200};
	if (r < 92)
		return (struct outcome){"denied", "operation_not_allowed", "role may not call it",
		                        403};
	if (r < 93)
		return (struct outcome){"denied", "dlp_blocked", "request /card: card", 403};
	if (r < 94)
		return (struct outcome){"denied", "mode_not_allowed", "live not allowed", 403};
	if (r < 98)
		return (struct outcome){"throttled", "rate_limited", "rate 10/s", 429};
	if (r < 99)
		return (struct outcome){"invalid", "invalid_input", "/email: not an email", 400};
	return (struct outcome){"error", "upstream_error", "upstream answered 502", 502};
}

static int
insert_rows(sqlite3 *db, int64_t rows)
{
	static const char sql[] =
	    "INSERT INTO decisions (ts_us, trace_id, key_id, tenant, user, role, mode, connector,"
	    " operation, decision, status, code, reason, latency_us, cost, queue_wait_us)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)";
	sqlite3_stmt *st;
	char trace[33], key[24], tenant[16], user[16];
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	const int64_t start = END_US - SPAN_DAYS * DAY_US, step = SPAN_DAYS * DAY_US / rows;
	for (int64_t i = 0; i < rows; i++) {
		uint64_t r = rnd();
		unsigned u = (unsigned)(r % USERS);
		struct outcome o = outcome((unsigned)((r >> 20) % 100));
		snprintf(trace, sizeof(trace), "%016" PRIx64 "%016" PRIx64, rnd(), (uint64_t)i);
		snprintf(key, sizeof(key), "k%015u", u * 7919u);
		snprintf(tenant, sizeof(tenant), "tenant%02u", u % TENANTS);
		snprintf(user, sizeof(user), "user%04u", u);
		sqlite3_bind_int64(st, 1, start + i * step + (int64_t)((r >> 40) % (uint64_t)step));
		sqlite3_bind_text(st, 2, trace, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, tenant, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, u % 10 ? "explorer" : "maker", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, u % 4 ? "sandbox" : "live", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, connectors[(r >> 8) % 12], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, operations[(r >> 12) % 4], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 10, o.decision, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 11, o.status);
		sqlite3_bind_text(st, 12, o.code, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 13, o.reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 14, 200 + (int64_t)((r >> 30) % 5000));
		sqlite3_bind_double(st, 15, o.status == 200 ? 0.0001 : 0.0);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return -1;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

static int
exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	fprintf(stderr, "bench_audit_query: %s\n", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

/* Rows first, indexes after, one transaction; the journal is off while it is built. */
static int
build(const char *path, int64_t rows)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	double t0 = now_ms();
	int rc = exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
	                  " PRAGMA cache_size = -262144;"
	                  " DROP INDEX decisions_ts; DROP INDEX decisions_user_ts;"
	                  " DROP INDEX decisions_tenant_ts; DROP INDEX decisions_connector_ts;"
	                  " DROP INDEX decisions_code_ts; DROP INDEX decisions_trace; BEGIN");
	if (rc == 0)
		rc = insert_rows(db, rows);
	double t1 = now_ms();
	/* The gateway's own index statements: migration 11, and migration 1's time index. */
	if (rc == 0)
		rc = exec(db, sg_migrations[10]) ||
		     exec(db, "CREATE INDEX decisions_ts ON decisions (ts_us)");
	if (rc == 0) {
		char sql[128];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO meta (key, value) VALUES ('bench_rows', %lld); COMMIT",
		         (long long)rows);
		rc = exec(db, sql);
	}
	if (rc == 0)
		rc = exec(db, "PRAGMA journal_mode = WAL");
	printf("   built %lld rows in %.1f s (+ indexes %.1f s)\n", (long long)rows,
	       (t1 - t0) / 1e3, (now_ms() - t1) / 1e3);
	sqlite3_close(db);
	return rc;
}

/* Whether DIR already holds the finished table; read-only, before anything is changed. */
static int
is_cached(const char *path, int64_t rows)
{
	sqlite3 *db;
	int have = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
		have = cached_rows(db, rows);
	sqlite3_close(db);
	return have;
}

static int
prepare(const char *dir, int64_t rows)
{
	static const char *const files[] = {"sandgate.db", "sandgate.db-wal", "sandgate.db-shm"};
	char err[512], path[4200];
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	if (is_cached(path, rows)) {
		printf("   using the %lld rows cached in %s\n", (long long)rows, path);
		return 0;
	}
	/* A build cut short (its journal off) may have left anything: start from nothing. */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	struct sg_store *s = sg_store_open(dir, err, sizeof(err)); /* the gateway's schema */
	if (s == NULL) {
		fprintf(stderr, "bench_audit_query: %s\n", err);
		return -1;
	}
	sg_store_close(s);
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	printf("   building %lld rows in %s (kept for the next run)\n", (long long)rows, path);
	return build(path, rows);
}

static int
count_row(void *arg, const struct sg_audit_row *row)
{
	(void)row;
	++*(int *)arg;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const uint8_t key[SG_AUDIT_KEY_LEN] = {42};

/* Walks to page `page` (1: the first) by cursor; the time of that page alone. */
static double
one_page(struct sg_store *s, struct sg_audit_filter f, int page, int *n)
{
	char next[SG_AUDIT_CURSOR_LEN], err[256];
	double t = 0;
	for (int p = 1; p <= page; p++) {
		*n = 0;
		double t0 = now_ms();
		if (sg_store_audit_query(s, &f, key, count_row, n, next, err, sizeof(err)) != 0) {
			fprintf(stderr, "bench_audit_query: %s %s\n", err, sg_store_last_error(s));
			exit(1);
		}
		t = now_ms() - t0;
		if (next[0] == '\0' && p < page) {
			fprintf(stderr, "bench_audit_query: only %d pages match\n", p);
			exit(1);
		}
		snprintf(f.cursor, sizeof(f.cursor), "%s", next);
	}
	return t;
}

static int
scenario(struct sg_store *s, const char *name, const struct sg_audit_filter *f, int page, int runs)
{
	double t[64];
	int n = 0;
	for (int i = 0; i < runs; i++)
		t[i] = one_page(s, *f, page, &n);
	double first = t[0];
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	double median = t[runs / 2];
	printf("%-44s %4d rows  first %8.2f ms  median %8.2f ms  max %8.2f ms  %s\n", name, n,
	       first, median, t[runs - 1],
	       median < 200.0 ? "(< 200 ms: met)" : "(< 200 ms: MISSED)");
	return median < 200.0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/sandgate-bench-audit";
	int runs = argc > 2 ? atoi(argv[2]) : 9;
	int64_t rows = argc > 3 ? atoll(argv[3]) : 10000000;
	char err[512];
	if (runs < 1 || runs > 64 || rows < 1000) {
		fprintf(stderr, "usage: bench_audit_query [DIR] [RUNS 1-64] [ROWS >= 1000]\n");
		return 2;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench_audit_query: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	printf("== audit queries over %lld decisions (%d users, %d days)\n", (long long)rows, USERS,
	       SPAN_DAYS);
	if (prepare(dir, rows) != 0)
		return 1;
	struct sg_store *s = sg_store_open(dir, err, sizeof(err));
	if (s == NULL || sg_store_audit_read_only(s) != 0) {
		fprintf(stderr, "bench_audit_query: %s\n", s ? sg_store_last_error(s) : err);
		return 1;
	}
	struct sg_audit_filter by_user = {.since_us = END_US - 7 * DAY_US, .until_us = END_US};
	snprintf(by_user.user, sizeof(by_user.user), "user0042");
	struct sg_audit_filter by_code = {.since_us = END_US - 7 * DAY_US, .until_us = END_US};
	snprintf(by_code.code, sizeof(by_code.code), "dlp_blocked");
	/* A week in the middle of the span: the index is read from inside, not from its end. */
	struct sg_audit_filter by_user_mid = by_user;
	by_user_mid.since_us -= 40 * DAY_US;
	by_user_mid.until_us -= 40 * DAY_US;
	int missed = scenario(s, "user + last week, page 1", &by_user, 1, runs);
	missed += scenario(s, "user + a week 40 days back, page 1", &by_user_mid, 1, runs);
	missed += scenario(s, "code=dlp_blocked + last week, page 1", &by_code, 1, runs);
	missed += scenario(s, "user + last week, page 10 (by cursor)", &by_user, 10, runs);
	sg_store_close(s);
	return missed ? 3 : 0;
}
