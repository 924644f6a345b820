/*
 * test_sessions: the session registry: tokens, lookups, references that
 * outlive a purge, and the trace ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "throttle/sg_sessions.h"

static const uint8_t secret[SG_SERVER_SECRET_LEN] = {7};

static struct sg_session *
start_for(struct sg_sessions *s, const char *key_id, int64_t now, int64_t expires_at,
          size_t max_live, struct sg_sessions_live *live)
{
	struct sg_session proto;
	char token[SG_KEY_MAX_LEN + 1];
	memset(&proto, 0, sizeof(proto));
	snprintf(proto.key_id, sizeof(proto.key_id), "%s", key_id);
	proto.created_at = now;
	proto.expires_at = expires_at;
	return sg_sessions_start(s, secret, &proto, max_live, now, token, sizeof(token), live);
}

static struct sg_session *
start(struct sg_sessions *s, int64_t expires_at, char *token)
{
	struct sg_session proto;
	struct sg_sessions_live live;
	memset(&proto, 0, sizeof(proto));
	memcpy(proto.key_id, "0123456789abcdef", 17);
	proto.created_at = 100;
	proto.expires_at = expires_at;
	return sg_sessions_start(s, secret, &proto, 0, 100, token, SG_KEY_MAX_LEN + 1, &live);
}

static void
test_token_and_lookup(void **state)
{
	(void)state;
	assert_int_equal(sg_keys_init(), 0);
	struct sg_sessions *s = sg_sessions_new();
	char token[SG_KEY_MAX_LEN + 1], id[SG_KEY_ID_LEN + 1];
	struct sg_session *ss = start(s, 1000, token);
	assert_non_null(ss);
	assert_memory_equal(token, "sgs_", 4);
	assert_int_equal(sg_token_parse(SG_SESSION_PREFIX, token, strlen(token), id), 0);
	assert_string_equal(id, ss->id);
	assert_int_equal(sg_key_parse(token, strlen(token), id), -1); /* not an API key */
	assert_true(sg_key_verify(secret, token, strlen(token), ss->hash));
	token[10] ^= 1;
	assert_false(sg_key_verify(secret, token, strlen(token), ss->hash));
	struct sg_session *again = sg_sessions_get(s, ss->id);
	assert_ptr_equal(again, ss);
	assert_null(sg_sessions_get(s, "ffffffffffffffff"));
	assert_string_equal(ss->rule.name, "session");
	assert_int_equal(ss->rule.n_windows, 0);
	sg_session_unref(again);
	sg_session_unref(ss);
	sg_sessions_free(s);
}

static void
test_purge_keeps_references_alive(void **state)
{
	(void)state;
	struct sg_sessions *s = sg_sessions_new();
	char token[SG_KEY_MAX_LEN + 1];
	struct sg_session *old = start(s, 1000, token);
	struct sg_session *young = start(s, 5000, token);
	char old_id[SG_KEY_ID_LEN + 1];
	memcpy(old_id, old->id, sizeof(old_id));
	sg_session_unref(young);
	assert_int_equal(sg_sessions_purge(s, 1000 + 3599, 3600), 0); /* N-1 */
	assert_int_equal(sg_sessions_purge(s, 1000 + 3600, 3600), 1); /* N */
	assert_null(sg_sessions_get(s, old_id));
	/* A call still using the purged session keeps it valid (ASan would see a use after free).
	 */
	sg_session_note_trace(old, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_int_equal(old->n_traces, 1);
	sg_session_unref(old);
	sg_sessions_free(s);
}

static void
test_trace_ring_keeps_the_newest(void **state)
{
	(void)state;
	struct sg_sessions *s = sg_sessions_new();
	char token[SG_KEY_MAX_LEN + 1], trace[33];
	struct sg_session *ss = start(s, 1000, token);
	for (int i = 0; i < SG_SESSION_TRACES + 5; i++) {
		snprintf(trace, sizeof(trace), "%032d", i);
		sg_session_note_trace(ss, trace);
	}
	assert_int_equal(ss->n_traces, SG_SESSION_TRACES + 5);
	snprintf(trace, sizeof(trace), "%032d", SG_SESSION_TRACES + 4);
	assert_string_equal(ss->traces[(SG_SESSION_TRACES + 4) % SG_SESSION_TRACES], trace);
	sg_session_unref(ss);
	sg_sessions_free(s);
}

#define KEY_A "aaaaaaaaaaaaaaaa"
#define KEY_B "bbbbbbbbbbbbbbbb"

/* The cap at N-1, N and N+1, per key, with the soonest expiry for Retry-After. */
static void
test_cap_per_key(void **state)
{
	(void)state;
	struct sg_sessions *s = sg_sessions_new();
	struct sg_sessions_live live;
	struct sg_session *held[3];
	for (int i = 0; i < 3; i++) { /* the 2nd is N-1, the 3rd N */
		held[i] = start_for(s, KEY_A, 100, 1000 - i, 3, &live);
		assert_non_null(held[i]);
		assert_int_equal(live.n, (size_t)i + 1);
		assert_int_equal(live.soonest_end, 1000 - i);
	}
	/* N+1: refused, saying how many run and when the first ends. */
	assert_null(start_for(s, KEY_A, 100, 2000, 3, &live));
	assert_int_equal(live.n, 3);
	assert_int_equal(live.soonest_end, 998);
	/* Another key has its own count; no cap (0) means none. */
	struct sg_session *b = start_for(s, KEY_B, 100, 2000, 3, &live);
	assert_non_null(b);
	assert_int_equal(live.n, 1);
	struct sg_session *nocap = start_for(s, KEY_A, 100, 2000, 0, &live);
	assert_non_null(nocap);
	assert_int_equal(live.n, 4);
	sg_session_end(nocap, 100);
	for (int i = 0; i < 3; i++)
		sg_session_unref(held[i]);
	sg_session_unref(b);
	sg_session_unref(nocap);
	sg_sessions_free(s);
}

/* Expired and ended sessions do not count, before and after the purge. */
static void
test_expired_and_ended_do_not_count(void **state)
{
	(void)state;
	struct sg_sessions *s = sg_sessions_new();
	struct sg_sessions_live live;
	struct sg_session *short_one = start_for(s, KEY_A, 100, 150, 2, &live);
	struct sg_session *long_one = start_for(s, KEY_A, 100, 5000, 2, &live);
	assert_null(start_for(s, KEY_A, 149, 5000, 2, &live)); /* one second before it expires */
	assert_int_equal(live.soonest_end, 150);
	struct sg_session *third = start_for(s, KEY_A, 150, 5000, 2, &live); /* at its expiry */
	assert_non_null(third);
	assert_int_equal(live.n, 2);
	/* Ending one frees its place at once; ending again keeps the first end. */
	sg_session_end(long_one, 200);
	sg_session_end(long_one, 300);
	assert_int_equal(long_one->expires_at, 200);
	sg_session_end(third, 9999); /* ending "later" than it expires changes nothing */
	assert_int_equal(third->expires_at, 5000);
	struct sg_session *fourth = start_for(s, KEY_A, 200, 5000, 2, &live);
	assert_non_null(fourth);
	assert_int_equal(live.n, 2);
	/* The purge takes them off both chains (ASan sees a stale link). */
	assert_int_equal(sg_sessions_purge(s, 200 + 3600, 3600), 2);
	sg_session_unref(short_one);
	sg_session_unref(long_one);
	assert_null(start_for(s, KEY_A, 201, 6000, 2, &live));
	assert_int_equal(live.n, 2);
	sg_session_unref(third);
	sg_session_unref(fourth);
	sg_sessions_free(s);
}

struct racer {
	struct sg_sessions *s;
	int started;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct sg_sessions_live live;
	for (int i = 0; i < 50; i++) {
		struct sg_session *ss = start_for(r->s, KEY_A, 100, 1000, 10, &live);
		r->started += ss != NULL;
		sg_session_unref(ss);
	}
	return NULL;
}

/* Counting and adding are one step: racing starts never pass the cap together. */
static void
test_racing_starts_keep_the_cap(void **state)
{
	(void)state;
	struct sg_sessions *s = sg_sessions_new();
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){s, 0};
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += r[i].started;
	}
	assert_int_equal(total, 10);
	sg_sessions_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_and_lookup),
	    cmocka_unit_test(test_purge_keeps_references_alive),
	    cmocka_unit_test(test_trace_ring_keeps_the_newest),
	    cmocka_unit_test(test_cap_per_key),
	    cmocka_unit_test(test_expired_and_ended_do_not_count),
	    cmocka_unit_test(test_racing_starts_keep_the_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
