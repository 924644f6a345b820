/* sg_breaker: per-host breakers and pauses, judged on a clock the test moves. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/sg_breaker.h"

#define S 1000000000ull
#define MS 1000000ull

static struct sg_breaker_config
small_config(void)
{
	struct sg_breaker_config c;
	sg_breaker_config_default(&c);
	c.window_s = 10;
	c.min_calls = 10;
	c.failure_pct = 50;
	c.open_ms = 1000;
	c.max_open_ms = 4000;
	c.probes = 1;
	return c;
}

static enum sg_breaker_refusal
admit(struct sg_breaker *b, uint64_t now, bool *probe, uint64_t *after)
{
	return sg_breaker_admit(b, now, probe, after);
}

/* n calls at `now`, the last `failed` of them failed. */
static void
calls(struct sg_breaker *b, uint64_t now, int n, int failed)
{
	for (int i = 0; i < n; i++) {
		bool probe;
		uint64_t after;
		assert_int_equal(admit(b, now, &probe, &after), SG_BREAKER_ADMITTED);
		sg_breaker_record(b, now, i >= n - failed, probe);
	}
}

static void
test_one_host_one_breaker(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *a = sg_breaker_of(bs, "https://a.example:443", &c);
	assert_non_null(a);
	assert_ptr_equal(sg_breaker_of(bs, "https://a.example:443", &c), a);
	assert_ptr_not_equal(sg_breaker_of(bs, "https://b.example:443", &c), a);
	sg_breakers_free(bs);
}

static void
test_it_opens_only_past_min_calls_and_the_failure_share(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	uint64_t t = 100 * S;
	calls(b, t, 9, 9); /* all failed, but fewer than min_calls */
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_CLOSED);
	calls(b, t, 12, 1); /* 21 calls, 10 failed: under 50% */
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_CLOSED);
	calls(b, t, 1, 1); /* 22 calls, 11 failed: 50% */
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_OPEN);
	bool probe;
	uint64_t after;
	assert_int_equal(admit(b, t + 10 * MS, &probe, &after), SG_BREAKER_IS_OPEN);
	assert_true(after > 0 && after <= 1000 * MS);
	sg_breakers_free(bs);
}

static void
test_old_failures_leave_the_window(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	calls(b, 100 * S, 9, 9);
	calls(b, 111 * S, 1, 1); /* the 9 are older than the 10 s window */
	assert_int_equal(sg_breaker_state(b, 111 * S), SG_BREAKER_CLOSED);
	calls(b, 109 * S, 0, 0);
	sg_breakers_free(bs);
}

static void
open_it(struct sg_breaker *b, uint64_t t)
{
	calls(b, t, 10, 10);
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_OPEN);
}

static void
test_half_open_lets_one_probe_and_its_success_closes(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	uint64_t t = 100 * S, after;
	bool probe, probe2;
	open_it(b, t);
	t += 1000 * MS;
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_HALF_OPEN);
	assert_int_equal(admit(b, t, &probe, &after), SG_BREAKER_ADMITTED);
	assert_true(probe);
	/* A second caller while the probe is out is turned away. */
	assert_int_equal(admit(b, t, &probe2, &after), SG_BREAKER_IS_OPEN);
	sg_breaker_record(b, t, false, true);
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_CLOSED);
	/* A fresh window: one failure does not reopen it. */
	calls(b, t, 1, 1);
	assert_int_equal(sg_breaker_state(b, t), SG_BREAKER_CLOSED);
	sg_breakers_free(bs);
}

static void
test_a_failed_probe_reopens_for_twice_as_long_up_to_the_cap(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	uint64_t t = 100 * S, after, period = 1000 * MS;
	bool probe;
	open_it(b, t);
	for (int round = 0; round < 4; round++) {
		t += period;
		assert_int_equal(admit(b, t, &probe, &after), SG_BREAKER_ADMITTED);
		assert_true(probe);
		sg_breaker_record(b, t, true, true);
		period = period * 2 > 4000 * MS ? 4000 * MS : period * 2;
		assert_int_equal(admit(b, t + period - 1, &probe, &after), SG_BREAKER_IS_OPEN);
		assert_int_equal(after, 1);
	}
	sg_breakers_free(bs);
}

static void
test_a_forgotten_probe_gives_its_turn_back(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	uint64_t t = 100 * S, after;
	bool probe;
	open_it(b, t);
	t += 1000 * MS;
	assert_int_equal(admit(b, t, &probe, &after), SG_BREAKER_ADMITTED);
	sg_breaker_forget_probe(b);
	assert_int_equal(admit(b, t, &probe, &after), SG_BREAKER_ADMITTED);
	assert_true(probe);
	sg_breakers_free(bs);
}

static void
test_a_pause_holds_calls_until_it_ends(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "h", &c);
	uint64_t t = 100 * S, after;
	bool probe;
	sg_breaker_pause(b, t + 3 * S);
	sg_breaker_pause(b, t + 1 * S); /* an earlier end never shortens it */
	assert_int_equal(admit(b, t, &probe, &after), SG_BREAKER_IS_PAUSED);
	assert_int_equal(after, 3 * S);
	assert_int_equal(admit(b, t + 3 * S, &probe, &after), SG_BREAKER_ADMITTED);
	sg_breakers_free(bs);
}

struct seen {
	int n;
	char host[32];
	enum sg_breaker_state s;
	uint64_t opened;
};

static int
visit(void *arg, const char *host, enum sg_breaker_state s, uint64_t opened, bool paused)
{
	struct seen *v = arg;
	(void)paused;
	v->n++;
	snprintf(v->host, sizeof(v->host), "%s", host);
	v->s = s;
	v->opened = opened;
	return 0;
}

static void
test_each_reports_states_for_metrics(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct sg_breaker_config c = small_config();
	struct sg_breaker *b = sg_breaker_of(bs, "https://x:443", &c);
	open_it(b, 100 * S);
	struct seen v = {0};
	sg_breakers_each(bs, 100 * S, visit, &v);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.host, "https://x:443");
	assert_int_equal(v.s, SG_BREAKER_OPEN);
	assert_int_equal(v.opened, 1);
	sg_breakers_free(bs);
}

/* Many threads registering and recording at once: one breaker per host, counts intact. */
struct racer {
	struct sg_breakers *bs;
	struct sg_breaker *got;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct sg_breaker_config c = small_config();
	c.min_calls = 1000000; /* never opens: every record must land in the window */
	for (int i = 0; i < 1000; i++) {
		r->got = sg_breaker_of(r->bs, "https://shared:443", &c);
		sg_breaker_record(r->got, 100 * S, false, false);
	}
	return NULL;
}

static void
test_threads_share_one_breaker(void **state)
{
	(void)state;
	struct sg_breakers *bs = sg_breakers_new();
	struct racer r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){bs, NULL};
		pthread_create(&th[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < 4; i++)
		assert_ptr_equal(r[i].got, r[0].got);
	struct seen v = {0};
	sg_breakers_each(bs, 100 * S, visit, &v);
	assert_int_equal(v.n, 1);
	sg_breakers_free(bs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_host_one_breaker),
	    cmocka_unit_test(test_it_opens_only_past_min_calls_and_the_failure_share),
	    cmocka_unit_test(test_old_failures_leave_the_window),
	    cmocka_unit_test(test_half_open_lets_one_probe_and_its_success_closes),
	    cmocka_unit_test(test_a_failed_probe_reopens_for_twice_as_long_up_to_the_cap),
	    cmocka_unit_test(test_a_forgotten_probe_gives_its_turn_back),
	    cmocka_unit_test(test_a_pause_holds_calls_until_it_ends),
	    cmocka_unit_test(test_each_reports_states_for_metrics),
	    cmocka_unit_test(test_threads_share_one_breaker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
