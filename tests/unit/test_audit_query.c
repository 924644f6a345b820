/*
 * Audit queries: each filter, newest first, paging across pages with no
 * row twice and none missed (rows written meanwhile included), cursors
 * that were edited or belong to another query refused, parameters checked
 * with an example, and every filter served by its index (EXPLAIN QUERY
 * PLAN), so dropping or breaking an index fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/sg_testdir.h"
#include "store/sg_store.h"

#define T0 1764547200000000LL /* 2025-12-01T00:00:00Z */
#define HOUR 3600000000LL
#define DAY (24 * HOUR)

static const uint8_t key[SG_AUDIT_KEY_LEN] = {1, 2, 3};

struct fx {
	char dir[128];
	struct sg_store *s;
};

static struct sg_decision
decision(int64_t ts, const char *user, const char *code)
{
	struct sg_decision d;
	memset(&d, 0, sizeof(d));
	d.ts_us = ts;
	snprintf(d.tenant, sizeof(d.tenant), "%s", strcmp(user, "carol") == 0 ? "globex" : "acme");
	snprintf(d.user, sizeof(d.user), "%s", user);
	snprintf(d.role, sizeof(d.role), "explorer");
	snprintf(d.mode, sizeof(d.mode), "sandbox");
	snprintf(d.connector, sizeof(d.connector), "%s", strcmp(code, "") ? "crm" : "tickets");
	snprintf(d.operation, sizeof(d.operation), "get");
	snprintf(d.decision, sizeof(d.decision), "%s", code[0] ? "denied" : "allowed");
	d.status = code[0] ? 403 : 200;
	snprintf(d.code, sizeof(d.code), "%s", code);
	snprintf(d.trace_id, sizeof(d.trace_id), "%032llx", (unsigned long long)ts);
	return d;
}

/* 300 rows, one an hour: alice and bob take turns, every 10th is carol refused by DLP. */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	assert_int_equal(sg_testdir_make(f->dir, sizeof(f->dir), "auditq"), 0);
	f->s = sg_store_open(f->dir, err, sizeof(err));
	assert_non_null(f->s);
	struct sg_decision v[300];
	for (int i = 0; i < 300; i++)
		v[i] = i % 10 == 0 ? decision(T0 + i * HOUR, "carol", "dlp_blocked")
		                   : decision(T0 + i * HOUR, i % 2 ? "alice" : "bob", "");
	assert_int_equal(sg_store_record(f->s, v, 300), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sg_store_close(f->s);
	assert_int_equal(sg_testdir_remove(f->dir), 0);
	free(f);
	return 0;
}

struct seen {
	int n;
	int64_t ids[1200];
	int64_t ts[1200];
	char users[1200][16];
};

static int
collect(void *arg, const struct sg_audit_row *row)
{
	struct seen *s = arg;
	assert_true(s->n < 1200);
	s->ids[s->n] = row->id;
	s->ts[s->n] = row->d.ts_us;
	snprintf(s->users[s->n], sizeof(s->users[0]), "%s", row->d.user);
	s->n++;
	return 0;
}

static int
query(struct fx *f, const struct sg_audit_filter *flt, struct seen *out, char *next)
{
	char err[256];
	return sg_store_audit_query(f->s, flt, key, collect, out, next, err, sizeof(err));
}

static void
test_filters(void **state)
{
	struct fx *f = *state;
	struct sg_audit_filter flt;
	struct seen *s = calloc(1, sizeof(*s));
	char next[SG_AUDIT_CURSOR_LEN];

	memset(&flt, 0, sizeof(flt));
	strcpy(flt.user, "alice");
	flt.since_us = T0 + 100 * HOUR;
	flt.until_us = T0 + 200 * HOUR;
	flt.limit = 1000;
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 50); /* odd hours in [100, 200) */
	assert_string_equal(next, "");
	for (int i = 0; i < s->n; i++) {
		assert_string_equal(s->users[i], "alice");
		assert_true(s->ts[i] >= flt.since_us && s->ts[i] < flt.until_us);
		if (i)
			assert_true(s->ts[i] < s->ts[i - 1]); /* newest first */
	}
	assert_int_equal(s->ts[0], T0 + 199 * HOUR);

	/* "Who was refused by DLP" */
	memset(s, 0, sizeof(*s));
	memset(&flt, 0, sizeof(flt));
	strcpy(flt.code, "dlp_blocked");
	flt.limit = 1000;
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 30);
	for (int i = 0; i < s->n; i++)
		assert_string_equal(s->users[i], "carol");

	memset(s, 0, sizeof(*s));
	memset(&flt, 0, sizeof(flt));
	strcpy(flt.tenant, "globex");
	strcpy(flt.decision, "denied");
	strcpy(flt.connector, "crm");
	flt.limit = 1000;
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 30);

	memset(s, 0, sizeof(*s));
	memset(&flt, 0, sizeof(flt));
	snprintf(flt.trace_id, sizeof(flt.trace_id), "%032llx",
	         (unsigned long long)(T0 + 7 * HOUR));
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->ts[0], T0 + 7 * HOUR);
	free(s);
}

/* Pages of 7 over 300 rows while rows keep arriving: every old row once, in order. */
static void
test_paging_no_duplicates_or_gaps(void **state)
{
	struct fx *f = *state;
	struct sg_audit_filter flt;
	struct seen *all = calloc(1, sizeof(*all));
	char next[SG_AUDIT_CURSOR_LEN];
	memset(&flt, 0, sizeof(flt));
	flt.limit = 7;
	int pages = 0;
	do {
		assert_int_equal(query(f, &flt, all, next), 0);
		snprintf(flt.cursor, sizeof(flt.cursor), "%s", next);
		/* A newer row, and one in the same microsecond as a row already shown. */
		struct sg_decision d[2] = {decision(T0 + 1000 * HOUR + pages, "alice", ""),
		                           decision(all->ts[all->n - 1], "dave", "")};
		assert_int_equal(sg_store_record(f->s, d, pages == 3 ? 2 : 1), 0);
		pages++;
	} while (next[0] != '\0');
	assert_int_equal(pages, 43); /* 300 / 7 rounded up */
	assert_int_equal(all->n, 300);
	for (int i = 0; i < all->n; i++) {
		assert_int_equal(all->ts[i], T0 + (299 - i) * HOUR);
		assert_string_not_equal(all->users[i], "dave");
	}
	free(all);
}

/* Two rows in one microsecond straddling a page boundary: both shown, once. */
static void
test_paging_ties(void **state)
{
	struct fx *f = *state;
	struct sg_decision d[3] = {decision(T0 + 5000 * HOUR, "erin", ""),
	                           decision(T0 + 5000 * HOUR, "erin", ""),
	                           decision(T0 + 5000 * HOUR, "erin", "")};
	assert_int_equal(sg_store_record(f->s, d, 3), 0);
	struct sg_audit_filter flt;
	struct seen *s = calloc(1, sizeof(*s));
	char next[SG_AUDIT_CURSOR_LEN];
	memset(&flt, 0, sizeof(flt));
	strcpy(flt.user, "erin");
	flt.limit = 2;
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 2);
	assert_string_not_equal(next, "");
	strcpy(flt.cursor, next);
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(s->n, 3);
	assert_string_equal(next, "");
	assert_true(s->ids[0] > s->ids[1] && s->ids[1] > s->ids[2]);
	free(s);
}

static void
test_cursor_tampering_refused(void **state)
{
	struct fx *f = *state;
	struct sg_audit_filter flt;
	struct seen *s = calloc(1, sizeof(*s));
	char next[SG_AUDIT_CURSOR_LEN], other[SG_AUDIT_CURSOR_LEN], err[256];
	memset(&flt, 0, sizeof(flt));
	strcpy(flt.user, "alice");
	flt.limit = 5;
	assert_int_equal(query(f, &flt, s, next), 0);
	assert_int_equal(strlen(next), 44);

	/* Each character changed in turn. */
	for (size_t i = 0; i < strlen(next); i++) {
		memcpy(&flt.cursor, next, sizeof(next));
		flt.cursor[i] = flt.cursor[i] == 'A' ? 'B' : 'A';
		assert_int_equal(
		    sg_store_audit_query(f->s, &flt, key, collect, s, other, err, sizeof(err)), 1);
		assert_non_null(strstr(err, "start again without a cursor"));
	}
	/* The right cursor with another user, or signed with another key. */
	memcpy(&flt.cursor, next, sizeof(next));
	strcpy(flt.user, "bob");
	assert_int_equal(query(f, &flt, s, other), 1);
	strcpy(flt.user, "alice");
	const uint8_t key2[SG_AUDIT_KEY_LEN] = {9};
	assert_int_equal(
	    sg_store_audit_query(f->s, &flt, key2, collect, s, other, err, sizeof(err)), 1);
	strcpy(flt.cursor, "AAAA");
	assert_int_equal(query(f, &flt, s, other), 1);
	/* And the cursor as given still works. */
	memcpy(&flt.cursor, next, sizeof(next));
	assert_int_equal(query(f, &flt, s, other), 0);
	free(s);
}

static void
test_parameters(void **state)
{
	(void)state;
	struct sg_audit_filter flt;
	char err[300];
	const int64_t now = T0 + 30 * DAY;
	memset(&flt, 0, sizeof(flt));
	assert_int_equal(sg_audit_filter_set(&flt, "since", "7d", now, err, sizeof(err)), 0);
	assert_int_equal(flt.since_us, now - 7 * DAY);
	assert_int_equal(sg_audit_filter_set(&flt, "until", "24h", now, err, sizeof(err)), 0);
	assert_int_equal(flt.until_us, now - DAY);
	assert_int_equal(
	    sg_audit_filter_set(&flt, "since", "2025-12-01T00:00:00Z", now, err, sizeof(err)), 0);
	assert_int_equal(flt.since_us, T0);
	assert_int_equal(sg_audit_filter_set(&flt, "since", "2025-12-01T02:00:00.5+02:00", now, err,
	                                     sizeof(err)),
	                 0);
	assert_int_equal(flt.since_us, T0 + 500000);
	assert_int_equal(sg_audit_filter_set(&flt, "since", "2025-12-01", now, err, sizeof(err)),
	                 0);
	assert_int_equal(flt.since_us, T0);

	static const char *const bad[][2] = {
	    {"since", "yesterday"},
	    {"since", "2025-02-31T00:00:00Z"},
	    {"until", "2025-12-01T00:00:00"},
	    {"since", "7y"},
	    {"limit", "0"},
	    {"limit", "1001"},
	    {"limit", "5x"},
	    {"decision", "maybe"},
	    {"code", "DLP blocked"},
	    {"trace", "xyz"},
	    {"user", ""},
	    {"user", "a b"},
	    {"cursor", "not/base64"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(
		    sg_audit_filter_set(&flt, bad[i][0], bad[i][1], now, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i][0])); /* names the parameter */
	}
	assert_int_equal(sg_audit_filter_set(&flt, "limit", "1000", now, err, sizeof(err)), 0);
	assert_int_equal(sg_audit_filter_set(&flt, "limit", "1", now, err, sizeof(err)), 0);
	assert_int_equal(sg_audit_filter_set(&flt, "limit", "1001", now, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "limit=50"));
	assert_int_equal(sg_audit_filter_set(&flt, "colour", "red", now, err, sizeof(err)), -2);
}

static void
expect_index(struct fx *f, const struct sg_audit_filter *flt, const char *index, bool sorted)
{
	char plan[2048];
	assert_int_equal(sg_store_audit_plan(f->s, flt, plan, sizeof(plan)), 0);
	if (strstr(plan, index) == NULL || (sorted && strstr(plan, "TEMP B-TREE")))
		fail_msg("expected %s%s, the plan is:\n%s", index, sorted ? " without a sort" : "",
		         plan);
}

/* Each filter reads its own index, in order (no sort), also past a cursor. */
static void
test_plans_use_the_indexes(void **state)
{
	struct fx *f = *state;
	struct sg_audit_filter flt;
	const struct {
		size_t off;
		const char *value, *index;
		bool sorted;
	} cases[] = {
	    {offsetof(struct sg_audit_filter, user), "alice", "decisions_user_ts", true},
	    {offsetof(struct sg_audit_filter, tenant), "acme", "decisions_tenant_ts", true},
	    {offsetof(struct sg_audit_filter, connector), "crm", "decisions_connector_ts", true},
	    {offsetof(struct sg_audit_filter, code), "dlp_blocked", "decisions_code_ts", true},
	    {offsetof(struct sg_audit_filter, trace_id), "0123456789abcdef0123456789abcdef",
	     "decisions_trace", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int variant = 0; variant < 3; variant++) {
			memset(&flt, 0, sizeof(flt));
			strcpy((char *)&flt + cases[i].off, cases[i].value);
			if (variant >= 1) {
				flt.since_us = T0;
				flt.until_us = T0 + 7 * DAY;
			}
			if (variant == 2)
				strcpy(flt.cursor, "x");
			expect_index(f, &flt, cases[i].index, cases[i].sorted);
		}
	}
	memset(&flt, 0, sizeof(flt));
	flt.since_us = T0;
	expect_index(f, &flt, "decisions_ts", true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paging_no_duplicates_or_gaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paging_ties, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cursor_tampering_refused, setup, teardown),
	    cmocka_unit_test(test_parameters),
	    cmocka_unit_test_setup_teardown(test_plans_use_the_indexes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
