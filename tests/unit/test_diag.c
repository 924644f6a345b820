/* Diagnostics: one-pass collection, exact formatting, and "did you mean". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_diag.h"

static void
test_collects_and_prints_positions(void **state)
{
	(void)state;
	struct sg_diags d = {0};
	char *buf = NULL;
	size_t len = 0;
	for (int i = 0; i < 20; i++)
		sg_diags_add(&d, "roles.yaml", i + 1, 3, "error %d", i);
	sg_diags_add(&d, "x.yaml", 0, 0, "whole-file problem");
	sg_diags_add(&d, NULL, 0, 0, "no file at all");
	assert_int_equal(d.n, 22);
	FILE *f = open_memstream(&buf, &len);
	sg_diags_print(&d, f);
	fclose(f);
	assert_non_null(strstr(buf, "roles.yaml:1:3: error 0\n"));
	assert_non_null(strstr(buf, "roles.yaml:20:3: error 19\n"));
	assert_non_null(strstr(buf, "x.yaml: whole-file problem\n"));
	assert_non_null(strstr(buf, "\nno file at all\n"));
	free(buf);
	sg_diags_free(&d);
	assert_int_equal(d.n, 0);
	sg_diags_free(&d); /* twice is harmless */
}

static void
test_did_you_mean(void **state)
{
	(void)state;
	const char *const names[] = {"crm", "mail", "calendar"};
	assert_string_equal(sg_did_you_mean("crmm", names, 3), "crm");
	assert_string_equal(sg_did_you_mean("calender", names, 3), "calendar");
	assert_string_equal(sg_did_you_mean("mial", names, 3), "mail");
	assert_null(sg_did_you_mean("payments", names, 3));
	assert_null(sg_did_you_mean("x", names, 0));
	/* Words past the comparison limit never match rather than overflow. */
	char longw[200];
	memset(longw, 'a', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	assert_null(sg_did_you_mean(longw, names, 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collects_and_prints_positions),
		cmocka_unit_test(test_did_you_mean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
