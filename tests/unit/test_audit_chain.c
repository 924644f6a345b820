/*
 * The audit chain: the canonical encoding (against the bytes docs/audit.md
 * writes down), chaining across batches and connections, the migration of
 * rows recorded before the chain, and retention's checkpoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../support/sg_testdir.h"
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sg_migrations.h"
#include "store/sg_store.h"

struct fx {
	char dir[64];
	char err[256];
	struct sg_store *s;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL || sodium_init() < 0)
		return -1;
	if (sg_testdir_make(f->dir, sizeof(f->dir), "chain") != 0) {
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
	sg_store_close(f->s);
	int rc = sg_testdir_remove(f->dir);
	free(f);
	return rc;
}

static struct sg_store *
open_ok(struct fx *f)
{
	struct sg_store *s = sg_store_open(f->dir, f->err, sizeof(f->err));
	if (s == NULL)
		fail_msg("open failed: %s", f->err);
	return s;
}

static void
raw_exec(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int64_t
raw_int(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static struct sg_decision
decision(int i)
{
	struct sg_decision d;
	memset(&d, 0, sizeof(d));
	d.ts_us = 1700000000000000 + i;
	snprintf(d.trace_id, sizeof(d.trace_id), "%032x", i);
	snprintf(d.tenant, sizeof(d.tenant), "acme");
	snprintf(d.user, sizeof(d.user), "u%d", i);
	snprintf(d.mode, sizeof(d.mode), "sandbox");
	snprintf(d.decision, sizeof(d.decision), "%s", i % 3 ? "allowed" : "denied");
	d.status = i % 3 ? 200 : 403;
	d.latency_us = 100 + i;
	d.cost = 0.25 * i;
	return d;
}

static void
verify_ok(struct sg_store *s, int64_t n)
{
	struct sg_chain_walk w;
	assert_int_equal(sg_store_chain_verify(s, SG_CHAIN_MAIN, &w), 0);
	if (w.bad)
		fail_msg("chain broken: %s", w.what);
	assert_int_equal(w.n, n);
}

/* ---- the encoding ---- */

static void
put64(uint8_t **p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static void
put_text(uint8_t **p, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	*(*p)++ = 3;
	for (int i = 0; i < 4; i++)
		*(*p)++ = (uint8_t)(n >> (8 * i));
	memcpy(*p, s, n);
	*p += n;
}

static void
put_int(uint8_t **p, int64_t v)
{
	*(*p)++ = 1;
	put64(p, (uint64_t)v);
}

/*
 * The bytes docs/audit.md specifies, built by hand: prev, the tag, the
 * column count, then per column a type byte and its payload.
 */
static void
test_encoding_is_the_documented_one(void **state)
{
	(void)state;
	struct sg_decision d = decision(1);
	snprintf(d.reason, sizeof(d.reason), "ok");
	d.cost = 1.5;
	d.queue_wait_us = -7;
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	uint8_t prev[32], got[32], want[32], buf[1024], *p = buf;
	for (int i = 0; i < 32; i++)
		prev[i] = (uint8_t)i;
	sg_chain_from_decision(&d, 42, "main", cols);
	sg_chain_hash(prev, cols, got);

	memcpy(p, prev, 32), p += 32;
	memcpy(p, "sgaudit1", 8), p += 8;
	*p++ = 22, *p++ = 0, *p++ = 0, *p++ = 0;
	put_int(&p, 42);                          /* id */
	put_text(&p, "main");                     /* chain */
	put_int(&p, d.ts_us);                     /* ts_us */
	put_text(&p, d.trace_id);                 /* trace_id */
	*p++ = 0;                                 /* key_id: empty is NULL */
	put_text(&p, "acme");                     /* tenant */
	put_text(&p, "u1");                       /* user */
	*p++ = 0;                                 /* role */
	put_text(&p, "sandbox");                  /* mode */
	*p++ = 0, *p++ = 0;                       /* connector, operation */
	put_text(&p, "allowed");                  /* decision */
	put_int(&p, 200);                         /* status */
	*p++ = 0;                                 /* code */
	put_text(&p, "ok");                       /* reason */
	put_int(&p, 101);                         /* latency_us */
	*p++ = 2, put64(&p, 0x3FF8000000000000u); /* cost 1.5, IEEE bits */
	*p++ = 0;                                 /* session_id */
	put_int(&p, -7);                          /* queue_wait_us */
	*p++ = 0, *p++ = 0, *p++ = 0;             /* served_by, upstream, dlp */
	crypto_generichash(want, 32, buf, (size_t)(p - buf), NULL, 0);
	assert_memory_equal(got, want, 32);
}

static void
hash_of(const struct sg_chain_val *cols, uint8_t out[32])
{
	static const uint8_t zero[32];
	sg_chain_hash(zero, cols, out);
}

/* NULL, "", 0 and 0.0 are four values; moving a byte between columns changes the hash. */
static void
test_encoding_tells_values_apart(void **state)
{
	(void)state;
	struct sg_decision d = decision(2);
	struct sg_chain_val c[SG_CHAIN_NCOLS];
	uint8_t h[6][32];
	sg_chain_from_decision(&d, 1, "main", c);
	c[13] = (struct sg_chain_val){.type = SG_CV_NULL};
	hash_of(c, h[0]);
	c[13] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = "", .len = 0};
	hash_of(c, h[1]);
	c[13] = (struct sg_chain_val){.type = SG_CV_INT, .i = 0};
	hash_of(c, h[2]);
	c[13] = (struct sg_chain_val){.type = SG_CV_REAL, .r = 0.0};
	hash_of(c, h[3]);
	c[13] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = "ab", .len = 2};
	c[14] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = "c", .len = 1};
	hash_of(c, h[4]);
	c[13] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = "a", .len = 1};
	c[14] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = "bc", .len = 2};
	hash_of(c, h[5]);
	for (int i = 0; i < 6; i++)
		for (int j = i + 1; j < 6; j++)
			assert_memory_not_equal(h[i], h[j], 32);
}

/* ---- the chain in the store ---- */

/* Every row's prev is the row before's hash: 1 row, then 16 + 3, then 40. */
static void
test_chain_across_batches(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[40];
	f->s = open_ok(f);
	verify_ok(f->s, 0);
	for (int i = 0; i < 40; i++)
		v[i] = decision(i);
	assert_int_equal(sg_store_record(f->s, v, 1), 0);
	assert_int_equal(sg_store_record(f->s, v, 19), 0);
	assert_int_equal(sg_store_record(f->s, v, 40), 0);
	assert_int_equal(sg_store_record(f->s, v, 0), 0);
	verify_ok(f->s, 60);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions d JOIN decisions p"
	                                 " ON p.id = d.id - 1 WHERE d.prev_hash = p.hash"),
	                 59);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE id = 1"
	                                 " AND prev_hash = zeroblob(32)"),
	                 1);
	int64_t id;
	uint8_t head[32];
	assert_int_equal(sg_store_chain_head(f->s, SG_CHAIN_MAIN, &id, head), 0);
	assert_int_equal(id, 60);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE id = 60 AND hash ="
	                                 " (SELECT value FROM meta"
	                                 "  WHERE key = 'audit_head_hash:main')"),
	                 1);
	assert_int_equal(sg_store_last_decision_id(f->s), 60);
}

/* What SQLite keeps of a cost is what is hashed: NaN reads back NULL, -0.0 as 0. */
static void
test_odd_costs_verify(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[4] = {decision(1), decision(2), decision(3), decision(4)};
	v[0].cost = NAN;
	v[1].cost = -0.0;
	v[2].cost = INFINITY;
	v[3].cost = 1e-300;
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 4), 0);
	verify_ok(f->s, 4);
}

struct writer_arg {
	const char *dir;
	int base;
	int rc;
};

static void *
writer(void *arg)
{
	struct writer_arg *a = arg;
	char err[256];
	struct sg_store *s = sg_store_open(a->dir, err, sizeof(err));
	struct sg_decision v[5];
	a->rc = s ? 0 : -1;
	for (int b = 0; s && b < 30; b++) {
		for (int i = 0; i < 5; i++)
			v[i] = decision(a->base + b * 5 + i);
		if (sg_store_record(s, v, (size_t)(b % 5) + 1) != 0)
			a->rc = -1;
	}
	sg_store_close(s);
	return NULL;
}

/*
 * Two connections (the gateway's writer and a CLI, say) writing at once
 * extend one chain: the head is read under the write lock.
 */
static void
test_two_connections_keep_one_chain(void **state)
{
	struct fx *f = *state;
	pthread_t t[2];
	struct writer_arg a[2] = {{f->dir, 0, 0}, {f->dir, 100000, 0}};
	f->s = open_ok(f);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer, &a[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].rc, 0);
	}
	/* 30 batches of 1..5 rows each, twice: 6 rounds of 15. */
	verify_ok(f->s, 180);
	/* Both wrote: the rows of the two interleave somewhere. */
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE ts_us >="
	                                 " 1700000000100000"),
	                 90);
}

/* Rows recorded before migration 10 are chained in id order, from zeros. */
static void
test_migration_chains_existing_rows(void **state)
{
	struct fx *f = *state;
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < 9; i++)
		assert_int_equal(sqlite3_exec(db, sg_migrations[i], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* More than one batch of the migration's 512, with a gap and a NULL cost. */
	raw_exec(f->dir, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
	                 " WHERE i < 1200) INSERT INTO decisions (id, ts_us, user, decision,"
	                 " status, cost) SELECT i * 2, 1700000000000000 + i, 'u' || i, 'allowed',"
	                 " 200, CASE WHEN i % 7 = 0 THEN NULL ELSE i / 4.0 END FROM n");
	f->s = open_ok(f);
	verify_ok(f->s, 1200);
	struct sg_decision d = decision(5000);
	assert_int_equal(sg_store_record(f->s, &d, 1), 0);
	verify_ok(f->s, 1201);
	assert_int_equal(sg_store_last_decision_id(f->s), 2401);
}

static void
test_verify_names_an_edit(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[8];
	struct sg_chain_walk w;
	for (int i = 0; i < 8; i++)
		v[i] = decision(i);
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 8), 0);
	raw_exec(f->dir, "UPDATE decisions SET cost = 0.5 WHERE id = 5");
	assert_int_equal(sg_store_chain_verify(f->s, SG_CHAIN_MAIN, &w), 0);
	assert_true(w.bad);
	assert_int_equal(w.bad_id, 5);
	assert_int_equal(w.n, 4);
	assert_non_null(strstr(w.what, "record #5 (2023-11-14T22:13:20.000004Z) was changed"));
}

/* ---- retention ---- */

static void
test_prune_leaves_a_checkpoint_verify_starts_from(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[20];
	int64_t pruned;
	for (int i = 0; i < 20; i++)
		v[i] = decision(i); /* ts 1700000000000000 + i */
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 20), 0);
	/* Nothing old enough: no checkpoint. */
	assert_int_equal(
	    sg_store_chain_prune(f->s, 1700000000000000, 1800000000000000, 100, &pruned), 0);
	assert_int_equal(pruned, 0);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions"), 20);
	/* Twelve are old; a batch takes at most five. */
	assert_int_equal(sg_store_chain_prune(f->s, 1700000000000012, 1800000000000000, 5, &pruned),
	                 0);
	assert_int_equal(pruned, 5);
	verify_ok(f->s, 16); /* 15 left + the checkpoint */
	assert_int_equal(sg_store_chain_prune(f->s, 1700000000000012, 1800000000000001, 5, &pruned),
	                 0);
	assert_int_equal(pruned, 5);
	assert_int_equal(sg_store_chain_prune(f->s, 1700000000000012, 1800000000000002, 5, &pruned),
	                 0);
	assert_int_equal(pruned, 2); /* stops at the first record still kept */
	verify_ok(f->s, 11);         /* 8 left + three checkpoints */
	assert_int_equal(raw_int(f->dir, "SELECT min(id) FROM decisions"), 13);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE decision ="
	                                 " 'checkpoint' AND code = 'audit_retention' AND"
	                                 " reason LIKE '{\"pruned\":2,\"through_id\":12,%'"),
	                 1);
	/* The checkpoint names the last pruned hash: deleting the oldest left is caught. */
	raw_exec(f->dir, "DELETE FROM decisions WHERE id = 13");
	struct sg_chain_walk w;
	assert_int_equal(sg_store_chain_verify(f->s, SG_CHAIN_MAIN, &w), 0);
	assert_true(w.bad);
	assert_int_equal(w.bad_id, 14);
}

/* Everything pruned: ids still go on from the head, never back to 1. */
static void
test_prune_of_everything_keeps_ids_rising(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[3] = {decision(1), decision(2), decision(3)};
	int64_t pruned;
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 3), 0);
	assert_int_equal(sg_store_chain_prune(f->s, INT64_MAX, 1800000000000000, 100, &pruned), 0);
	assert_int_equal(pruned, 3);
	assert_int_equal(sg_store_chain_prune(f->s, INT64_MAX, 1800000000000001, 100, &pruned), 0);
	assert_int_equal(pruned, 1); /* the first checkpoint */
	assert_int_equal(sg_store_record(f->s, v, 1), 0);
	assert_int_equal(raw_int(f->dir, "SELECT min(id) FROM decisions"), 5);
	assert_int_equal(raw_int(f->dir, "SELECT max(id) FROM decisions"), 6);
	verify_ok(f->s, 2);
}

/* The export's walk: a contiguous run from the first record at or after `since`. */
static int
count_row(void *arg, const struct sg_chain_val *cols, const uint8_t *prev, const uint8_t *hash)
{
	struct sg_chain_walk *w = arg;
	return sg_chain_walk_next(w, cols, prev, hash);
}

static void
test_each_walks_a_verifiable_range(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[10];
	struct sg_chain_walk w;
	uint8_t anchor[32];
	for (int i = 0; i < 10; i++)
		v[i] = decision(i);
	v[6].ts_us = v[2].ts_us; /* a clock that stepped back */
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 10), 0);
	/* Anchor on record #4's prev, i.e. record #3's hash. */
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT hash FROM decisions WHERE id = 3", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memcpy(anchor, sqlite3_column_blob(st, 0), 32);
	sqlite3_finalize(st);
	sqlite3_close(db);
	sg_chain_walk_begin(&w, anchor);
	assert_int_equal(
	    sg_store_chain_each(f->s, SG_CHAIN_MAIN, v[3].ts_us, v[8].ts_us, count_row, &w), 0);
	assert_false(w.bad);
	assert_int_equal(w.n, 6); /* #4..#9, #7 included though its time is earlier */
	/* A range after every record holds none, whatever its end. */
	sg_chain_walk_begin(&w, anchor);
	assert_int_equal(sg_store_chain_each(f->s, SG_CHAIN_MAIN, v[9].ts_us + 1, INT64_MAX,
	                                     count_row, &w),
	                 0);
	assert_int_equal(w.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_encoding_is_the_documented_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_encoding_tells_values_apart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_across_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_costs_verify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_connections_keep_one_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration_chains_existing_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_names_an_edit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prune_leaves_a_checkpoint_verify_starts_from,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prune_of_everything_keeps_ids_rising, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_each_walks_a_verifiable_range, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
