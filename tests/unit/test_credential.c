/*
 * sg_credential: how each auth scheme adds a credential to an upstream
 * request, slots, a missing credential, expiry warnings, and that every
 * buffer that held a value is wiped.  sg_upreq_add_header/add_query are
 * replaced here (linked with --wrap) by doubles that record the calls, and
 * sodium_memzero by one that checks what it wipes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "catalog/sg_connector.h"
#include "upstream/sg_credential.h"
#include "upstream/sg_upreq.h"

static const char planted[] = "tok_PLANTED_7777";
/* base64("user:PLANTED-pw") */
static const char basic_user_pw[] = "user:PLANTED-pw";
static const char basic_b64[] = "dXNlcjpQTEFOVEVELXB3";

/* ---- test doubles ---- */

struct call {
	char kind; /* 'h' header, 'q' query */
	char *name, *value;
};
static struct call calls[8];
static size_t n_calls;

static int
record(char kind, const char *name, const char *value)
{
	if (n_calls == sizeof(calls) / sizeof(calls[0]))
		return -1;
	calls[n_calls++] = (struct call){kind, strdup(name), strdup(value)};
	return 0;
}

int __wrap_sg_upreq_add_header(struct sg_upreq *rq, const char *name, const char *value);
int __wrap_sg_upreq_add_query(struct sg_upreq *rq, const char *name, const char *value);

int
__wrap_sg_upreq_add_header(struct sg_upreq *rq, const char *name, const char *value)
{
	(void)rq;
	return record('h', name, value);
}

int
__wrap_sg_upreq_add_query(struct sg_upreq *rq, const char *name, const char *value)
{
	(void)rq;
	return record('q', name, value);
}

/* Which of the planted strings passed through a wipe, and whether every wipe left zeros. */
static int wiped_planted, wiped_user_pw, wiped_b64;
static bool wipes_zeroed = true;

void
sodium_memzero(void *const p, const size_t n)
{
	if (memmem(p, n, planted, strlen(planted)))
		wiped_planted++;
	if (memmem(p, n, basic_user_pw, strlen(basic_user_pw)))
		wiped_user_pw++;
	if (memmem(p, n, basic_b64, strlen(basic_b64)))
		wiped_b64++;
	explicit_bzero(p, n);
	for (size_t i = 0; i < n; i++)
		if (((volatile unsigned char *)p)[i] != 0)
			wipes_zeroed = false;
}

static int
reset(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_calls; i++) {
		free(calls[i].name);
		free(calls[i].value);
	}
	n_calls = 0;
	wiped_planted = wiped_user_pw = wiped_b64 = 0;
	wipes_zeroed = true;
	return 0;
}

static struct sg_credstore *
store_with(const char *value, const char *next_value)
{
	struct sg_credstore *cs = sg_credstore_new(NULL, 14 * 86400);
	assert_non_null(cs);
	if (value)
		assert_int_equal(
		    sg_credstore_put(cs, "crm", SG_CRED_CURRENT, value, strlen(value), 0), 0);
	if (next_value)
		assert_int_equal(
		    sg_credstore_put(cs, "crm", SG_CRED_NEXT, next_value, strlen(next_value), 0),
		    0);
	return cs;
}

static void
test_bearer_and_slots(void **state)
{
	(void)state;
	struct sg_connector c = {.name = "crm", .auth_def = {.scheme = SG_AUTH_BEARER}};
	struct sg_upreq rq = {0};
	struct sg_credstore *cs = store_with(planted, "tok_next");
	assert_int_equal(sg_credential_apply(cs, &c, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(n_calls, 1);
	assert_int_equal(calls[0].kind, 'h');
	assert_string_equal(calls[0].name, "Authorization");
	assert_string_equal(calls[0].value, "Bearer tok_PLANTED_7777");
	assert_true(sg_credential_has_next(cs, "crm"));
	assert_int_equal(sg_credential_apply(cs, &c, SG_CRED_NEXT, &rq), 0);
	assert_string_equal(calls[1].value, "Bearer tok_next");
	assert_false(sg_credential_has_next(cs, "mail"));
	sg_credstore_free(cs);
}

static void
test_missing_credential_is_one(void **state)
{
	(void)state;
	struct sg_connector c = {.name = "crm", .auth_def = {.scheme = SG_AUTH_BEARER}};
	struct sg_connector other = {.name = "mail", .auth_def = {.scheme = SG_AUTH_API_KEY}};
	struct sg_connector none = {.name = "mail"};
	struct sg_upreq rq = {0};
	struct sg_credstore *cs = store_with(planted, NULL);
	assert_int_equal(sg_credential_apply(cs, &c, SG_CRED_NEXT, &rq), 1);
	assert_false(sg_credential_has_next(cs, "crm"));
	assert_int_equal(sg_credential_apply(cs, &other, SG_CRED_CURRENT, &rq), 1);
	/* No scheme: nothing added, and that is fine. */
	assert_int_equal(sg_credential_apply(cs, &none, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(n_calls, 0);
	sg_credstore_free(cs);
}

static void
test_api_key_in_header_and_query(void **state)
{
	(void)state;
	struct sg_connector hdr = {.name = "crm", .auth_def = {.scheme = SG_AUTH_API_KEY}};
	struct sg_connector named = {
	    .name = "crm", .auth_def = {.scheme = SG_AUTH_API_KEY, .name = "X-Crm-Token"}};
	struct sg_connector query = {.name = "crm",
	                             .auth_def = {.scheme = SG_AUTH_API_KEY, .in_query = true}};
	struct sg_connector query_named = {
	    .name = "crm",
	    .auth_def = {.scheme = SG_AUTH_API_KEY, .in_query = true, .name = "key"}};
	struct sg_upreq rq = {0};
	struct sg_credstore *cs = store_with(planted, NULL);
	assert_int_equal(sg_credential_apply(cs, &hdr, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(sg_credential_apply(cs, &named, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(sg_credential_apply(cs, &query, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(sg_credential_apply(cs, &query_named, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(n_calls, 4);
	assert_int_equal(calls[0].kind, 'h');
	assert_string_equal(calls[0].name, "X-API-Key");
	assert_string_equal(calls[0].value, planted);
	assert_string_equal(calls[1].name, "X-Crm-Token");
	assert_int_equal(calls[2].kind, 'q');
	assert_string_equal(calls[2].name, "api_key");
	assert_string_equal(calls[2].value, planted);
	assert_string_equal(calls[3].name, "key");
	sg_credstore_free(cs);
}

static void
test_basic_and_oauth2(void **state)
{
	(void)state;
	struct sg_connector basic = {.name = "crm", .auth_def = {.scheme = SG_AUTH_BASIC}};
	struct sg_connector oauth = {.name = "crm", .auth_def = {.scheme = SG_AUTH_OAUTH2}};
	struct sg_upreq rq = {0};
	struct sg_credstore *cs = store_with(basic_user_pw, NULL);
	assert_int_equal(sg_credential_apply(cs, &basic, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(n_calls, 1);
	assert_string_equal(calls[0].name, "Authorization");
	assert_string_equal(calls[0].value, "Basic dXNlcjpQTEFOVEVELXB3");
	/* OAuth2's stored value is exchanged for a token, never sent as it is. */
	assert_int_equal(sg_credential_apply(cs, &oauth, SG_CRED_CURRENT, &rq), -1);
	assert_int_equal(n_calls, 1);
	char out[64];
	assert_int_equal(sg_credential_secret(cs, "crm", SG_CRED_CURRENT, out, sizeof(out)), 0);
	assert_string_equal(out, basic_user_pw);
	assert_int_equal(sg_credential_secret(cs, "crm", SG_CRED_NEXT, out, sizeof(out)), 1);
	assert_int_equal(sg_credential_secret(cs, "crm", SG_CRED_CURRENT, out, 4), -1);
	assert_int_equal(sg_credential_secret(NULL, "crm", SG_CRED_CURRENT, out, sizeof(out)), 1);
	sg_credstore_free(cs);
}

static void
test_every_buffer_holding_a_value_is_wiped(void **state)
{
	(void)state;
	struct sg_connector bearer = {.name = "crm", .auth_def = {.scheme = SG_AUTH_BEARER}};
	struct sg_connector basic = {.name = "mail", .auth_def = {.scheme = SG_AUTH_BASIC}};
	struct sg_upreq rq = {0};
	struct sg_credstore *cs = store_with(planted, NULL);
	assert_int_equal(
	    sg_credstore_put(cs, "mail", SG_CRED_CURRENT, basic_user_pw, strlen(basic_user_pw), 0),
	    0);
	assert_int_equal(sg_credential_apply(cs, &bearer, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(wiped_planted, 1); /* the "Bearer ..." temporary */
	assert_int_equal(sg_credential_apply(cs, &basic, SG_CRED_CURRENT, &rq), 0);
	assert_int_equal(wiped_b64, 2); /* the encoding and the "Basic ..." line */
	/* Replacing a value wipes the old one. */
	assert_int_equal(sg_credstore_put(cs, "crm", SG_CRED_CURRENT, "tok_other", 9, 0), 0);
	assert_int_equal(wiped_planted, 2);
	/* Releasing the table wipes what it held. */
	sg_credstore_free(cs);
	assert_int_equal(wiped_user_pw, 1);
	assert_true(wipes_zeroed);
}

static void
test_expiry_warnings_and_metric(void **state)
{
	(void)state;
	int64_t now = 1800000000;
	struct sg_credstore *cs = sg_credstore_new(NULL, 14 * 86400);
	assert_int_equal(sg_credstore_put(cs, "crm", SG_CRED_CURRENT, "a", 1, now + 3 * 86400), 0);
	assert_int_equal(sg_credstore_put(cs, "crm", SG_CRED_NEXT, "b", 1, now + 30 * 86400), 0);
	assert_int_equal(sg_credstore_put(cs, "mail", SG_CRED_CURRENT, "c", 1, 0), 0);
	json_t *w = sg_credstore_warnings_json(cs, now);
	assert_non_null(w);
	assert_int_equal(json_array_size(w), 1);
	json_t *one = json_array_get(w, 0);
	assert_string_equal(json_string_value(json_object_get(one, "connector")), "crm");
	assert_string_equal(json_string_value(json_object_get(one, "slot")), "current");
	assert_string_equal(json_string_value(json_object_get(one, "expires")), "2027-01-18");
	json_decref(w);
	/* Nothing is near in a month's time but the next one, which has passed. */
	w = sg_credstore_warnings_json(cs, now + 31 * 86400);
	assert_int_equal(json_array_size(w), 2);
	json_decref(w);
	sg_credstore_warn_expiring(cs, now); /* logs once; the value is never in it */

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sg_credstore_render_metrics(cs, now, f);
	fclose(f);
	assert_non_null(
	    strstr(buf, "sandgate_credential_expiry_seconds{connector=\"crm\",slot=\"current\"} "
	                "259200\n"));
	assert_non_null(strstr(buf, "{connector=\"crm\",slot=\"next\"} 2592000\n"));
	assert_null(strstr(buf, "mail"));
	free(buf);
	sg_credstore_free(cs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_bearer_and_slots, reset),
	    cmocka_unit_test_teardown(test_missing_credential_is_one, reset),
	    cmocka_unit_test_teardown(test_api_key_in_header_and_query, reset),
	    cmocka_unit_test_teardown(test_basic_and_oauth2, reset),
	    cmocka_unit_test_teardown(test_every_buffer_holding_a_value_is_wiped, reset),
	    cmocka_unit_test_teardown(test_expiry_warnings_and_metric, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
