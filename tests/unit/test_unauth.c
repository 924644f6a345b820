/*
 * test_unauth: refusals without a key, per client address: the allowance
 * that gates identify, and the audit sample.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/sg_config.h"
#include "obs/sg_metrics.h"
#include "throttle/sg_unauth.h"

#define S 1000000000ull

static struct sg_unauth *
make(const char *rate, int burst, uint32_t audit_ms)
{
	struct sg_config c;
	sg_config_defaults(&c);
	strcpy(c.unauth_rate, rate);
	c.unauth_burst = burst;
	c.unauth_audit_ms = audit_ms;
	struct sg_unauth *u = sg_unauth_new(&c);
	sg_config_free(&c);
	assert_non_null(u);
	return u;
}

static void
test_allowance_gates_identify(void **state)
{
	(void)state;
	struct sg_unauth *u = make("1/m", 3, 10000);
	uint64_t now = 1000 * S, wait = 0;
	uint64_t limited = sg_gauges.unauth_limited;
	/* An address that never failed is checked, and gets no cell for it. */
	assert_true(sg_unauth_gate(u, 42, now, &wait));
	sg_unauth_enter(42, "192.0.2.7");
	for (int i = 0; i < 3; i++) {
		assert_true(sg_unauth_gate(u, 42, now, &wait)); /* N-1, N: still checked */
		sg_unauth_refused(u, now);
	}
	/* N+1: refused before identify, told to wait for one unit to refill. */
	assert_false(sg_unauth_gate(u, 42, now, &wait));
	assert_true(wait > 59 * S && wait <= 60 * S);
	assert_int_equal(sg_gauges.unauth_limited, limited + 1);
	/* Another address is not held to this one's failures. */
	assert_true(sg_unauth_gate(u, 43, now, &wait));
	/* One unit refills in a minute. */
	assert_true(sg_unauth_gate(u, 42, now + 60 * S, &wait));
	sg_unauth_leave();
	/* Without a client (a template's ctx.call) a refusal is counted and charges nothing. */
	uint64_t refused = sg_gauges.unauth_refused;
	sg_unauth_refused(u, now);
	assert_int_equal(sg_gauges.unauth_refused, refused + 1);
	assert_true(sg_unauth_gate(u, 43, now, &wait));
	sg_unauth_free(u);
	sg_unauth_free(NULL);
}

static void
test_audit_is_sampled_per_address(void **state)
{
	(void)state;
	struct sg_unauth *u = make("1/s", 20, 10000);
	uint64_t now = 5000 * S;
	char reason[256];
	sg_unauth_enter(7, "2001:db8:1:2::/64");
	strcpy(reason, "no Authorization header was sent");
	assert_true(sg_unauth_record(u, now, reason, sizeof(reason)));
	assert_string_equal(reason, "no Authorization header was sent (client 2001:db8:1:2::/64; "
	                            "such refusals are recorded once per 10 s per address, and "
	                            "all counted in /metrics)");
	assert_false(sg_unauth_record(u, now + 1 * S, reason, sizeof(reason)));
	assert_false(sg_unauth_record(u, now + 9 * S, reason, sizeof(reason)));
	assert_true(sg_unauth_record(u, now + 10 * S, reason, sizeof(reason)));
	sg_unauth_enter(8, "192.0.2.8");
	assert_true(sg_unauth_record(u, now + 1 * S, reason, sizeof(reason)));
	sg_unauth_leave();
	/* No client, or no table: every refusal is recorded, as it is. */
	strcpy(reason, "r");
	assert_true(sg_unauth_record(u, now, reason, sizeof(reason)));
	assert_true(sg_unauth_record(NULL, now, reason, sizeof(reason)));
	assert_string_equal(reason, "r");
	sg_unauth_free(u);
	/* 0 s: every refusal is recorded, still naming the client. */
	u = make("1/s", 20, 0);
	sg_unauth_enter(7, "192.0.2.7");
	for (int i = 0; i < 3; i++) {
		strcpy(reason, "r");
		assert_true(sg_unauth_record(u, now, reason, sizeof(reason)));
		assert_string_equal(reason, "r (client 192.0.2.7)");
	}
	sg_unauth_leave();
	sg_unauth_free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allowance_gates_identify),
	    cmocka_unit_test(test_audit_is_sampled_per_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
