/* sg_oauth: one refresher at a time, refresh at 80%, and the exchange's encodings. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "upstream/sg_oauth.h"

#define S 1000000000ull

static void
test_the_first_caller_refreshes_and_the_rest_wait_for_a_first_token(void **state)
{
	(void)state;
	struct sg_oauth *o = sg_oauth_new();
	struct sg_oauth_entry *e = sg_oauth_entry(o, "crm", 0);
	char tok[SG_OAUTH_TOKEN_MAX];
	assert_ptr_equal(sg_oauth_entry(o, "crm", 0), e);
	assert_ptr_not_equal(sg_oauth_entry(o, "crm", 1), e);
	assert_int_equal(sg_oauth_take(e, 10 * S, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	assert_int_equal(sg_oauth_take(e, 10 * S, tok, sizeof(tok)), SG_OAUTH_WAIT);
	/* Another thread's clock reading may be older than the refresher's. */
	assert_int_equal(sg_oauth_take(e, 9 * S, tok, sizeof(tok)), SG_OAUTH_WAIT);
	sg_oauth_store(e, 10 * S, "abc", 3, 100);
	assert_int_equal(sg_oauth_take(e, 11 * S, tok, sizeof(tok)), SG_OAUTH_READY);
	assert_string_equal(tok, "abc");
	sg_oauth_free(o);
}

static void
test_a_token_is_refreshed_at_80_percent_while_others_keep_using_it(void **state)
{
	(void)state;
	struct sg_oauth *o = sg_oauth_new();
	struct sg_oauth_entry *e = sg_oauth_entry(o, "crm", 0);
	char tok[SG_OAUTH_TOKEN_MAX];
	assert_int_equal(sg_oauth_take(e, 0, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	sg_oauth_store(e, 0, "old", 3, 100);
	assert_int_equal(sg_oauth_take(e, 79 * S, tok, sizeof(tok)), SG_OAUTH_READY);
	assert_int_equal(sg_oauth_take(e, 80 * S, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	/* The old token is still valid: the others use it meanwhile. */
	assert_int_equal(sg_oauth_take(e, 81 * S, tok, sizeof(tok)), SG_OAUTH_READY);
	assert_string_equal(tok, "old");
	sg_oauth_store(e, 82 * S, "new", 3, 100);
	assert_int_equal(sg_oauth_take(e, 83 * S, tok, sizeof(tok)), SG_OAUTH_READY);
	assert_string_equal(tok, "new");
	/* Expired and a refresh failed: the next caller tries again. */
	assert_int_equal(sg_oauth_take(e, 300 * S, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	assert_int_equal(sg_oauth_take(e, 300 * S, tok, sizeof(tok)), SG_OAUTH_WAIT);
	sg_oauth_failed(e);
	assert_int_equal(sg_oauth_take(e, 300 * S, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	assert_int_equal(sg_oauth_refreshes(e), 4);
	sg_oauth_free(o);
}

static void
test_a_refused_token_is_dropped_unless_already_replaced(void **state)
{
	(void)state;
	struct sg_oauth *o = sg_oauth_new();
	struct sg_oauth_entry *e = sg_oauth_entry(o, "crm", 0);
	char tok[SG_OAUTH_TOKEN_MAX];
	assert_int_equal(sg_oauth_take(e, 0, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	sg_oauth_store(e, 1 * S, "old", 3, 100);
	/* A call that used the token issued at 1 s finds it refused: it goes. */
	sg_oauth_invalidate(e, 1 * S);
	assert_int_equal(sg_oauth_take(e, 2 * S, tok, sizeof(tok)), SG_OAUTH_REFRESH);
	sg_oauth_store(e, 3 * S, "new", 3, 100);
	/* A late 401 for the old token leaves the new one alone. */
	sg_oauth_invalidate(e, 1 * S);
	assert_int_equal(sg_oauth_take(e, 4 * S, tok, sizeof(tok)), SG_OAUTH_READY);
	assert_string_equal(tok, "new");
	sg_oauth_free(o);
}

struct racer {
	struct sg_oauth_entry *e;
	_Atomic int *refreshers;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	char tok[SG_OAUTH_TOKEN_MAX];
	for (int i = 0; i < 100; i++)
		if (sg_oauth_take(r->e, 5 * S, tok, sizeof(tok)) == SG_OAUTH_REFRESH)
			atomic_fetch_add(r->refreshers, 1);
	return NULL;
}

static void
test_fifty_callers_at_once_make_one_refresh(void **state)
{
	(void)state;
	struct sg_oauth *o = sg_oauth_new();
	_Atomic int refreshers = 0;
	struct racer r = {sg_oauth_entry(o, "crm", 0), &refreshers};
	pthread_t th[50];
	for (int i = 0; i < 50; i++)
		pthread_create(&th[i], NULL, race, &r);
	for (int i = 0; i < 50; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&refreshers), 1);
	sg_oauth_free(o);
}

static void
test_the_token_request_is_form_encoded_with_basic_client_auth(void **state)
{
	(void)state;
	char *form = sg_oauth_form("read write:all");
	assert_string_equal(form, "grant_type=client_credentials&scope=read%20write%3Aall");
	free(form);
	form = sg_oauth_form(NULL);
	assert_string_equal(form, "grant_type=client_credentials");
	free(form);
	/* RFC 6749 2.3.1: id and secret are form-encoded before base64. */
	char *h = sg_oauth_basic("my id:s3cr:et");
	char want[128];
	const char *pair = "my%20id:s3cr%3Aet";
	memcpy(want, "Basic ", 6);
	sodium_bin2base64(want + 6, sizeof(want) - 6, (const unsigned char *)pair, strlen(pair),
	                  sodium_base64_VARIANT_ORIGINAL);
	assert_string_equal(h, want);
	sg_oauth_wipe_free(h);
	assert_null(sg_oauth_basic("no-colon"));
}

static void
test_a_token_answer_is_read_strictly(void **state)
{
	(void)state;
	char tok[64], err[160];
	int64_t exp;
	const char *ok = "{\"access_token\":\"tk_1\",\"token_type\":\"Bearer\",\"expires_in\":120}";
	assert_int_equal(sg_oauth_parse(ok, strlen(ok), tok, sizeof(tok), &exp, err, sizeof(err)),
	                 0);
	assert_string_equal(tok, "tk_1");
	assert_int_equal(exp, 120);
	const char *no_exp = "{\"access_token\":\"tk_2\"}";
	assert_int_equal(
	    sg_oauth_parse(no_exp, strlen(no_exp), tok, sizeof(tok), &exp, err, sizeof(err)), 0);
	assert_int_equal(exp, 3600);
	const char *bad[] = {
	    "not json",
	    "[]",
	    "{\"token\":\"x\"}",
	    "{\"access_token\":\"a\\r\\nX: y\"}",
	    "{\"access_token\":\"\"}",
	    "{\"access_token\":\"a\",\"expires_in\":0}",
	    "{\"access_token\":\"a\",\"expires_in\":\"60\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(sg_oauth_parse(bad[i], strlen(bad[i]), tok, sizeof(tok), &exp, err,
		                                sizeof(err)),
		                 -1);
		assert_true(strlen(err) > 10);
	}
	char big[200];
	snprintf(big, sizeof(big), "{\"access_token\":\"%0100d\"}", 0);
	assert_int_equal(sg_oauth_parse(big, strlen(big), tok, sizeof(tok), &exp, err, sizeof(err)),
	                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_first_caller_refreshes_and_the_rest_wait_for_a_first_token),
	    cmocka_unit_test(test_a_token_is_refreshed_at_80_percent_while_others_keep_using_it),
	    cmocka_unit_test(test_fifty_callers_at_once_make_one_refresh),
	    cmocka_unit_test(test_a_refused_token_is_dropped_unless_already_replaced),
	    cmocka_unit_test(test_the_token_request_is_form_encoded_with_basic_client_auth),
	    cmocka_unit_test(test_a_token_answer_is_read_strictly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
