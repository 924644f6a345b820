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

#include "core/sg_sessions.h"

static const uint8_t secret[SG_SERVER_SECRET_LEN] = {7};

static struct sg_session *
start(struct sg_sessions *s, int64_t expires_at, char *token)
{
	struct sg_session proto;
	memset(&proto, 0, sizeof(proto));
	memcpy(proto.key_id, "0123456789abcdef", 17);
	proto.created_at = 100;
	proto.expires_at = expires_at;
	return sg_sessions_start(s, secret, &proto, token, SG_KEY_MAX_LEN + 1);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_and_lookup),
	    cmocka_unit_test(test_purge_keeps_references_alive),
	    cmocka_unit_test(test_trace_ring_keeps_the_newest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
