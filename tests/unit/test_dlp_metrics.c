/* DLP event counters: one series per label set, labels kept safe, a bounded label set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/sg_dlp_metrics.h"

static char *
render(void)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	assert_non_null(f);
	sg_dlp_metrics_render(f);
	fclose(f);
	return buf;
}

static void
test_counts_one_series_per_label_set(void **state)
{
	(void)state;
	sg_dlp_metrics_count("financial.card", "mask", "response", "crm");
	sg_dlp_metrics_count("financial.card", "mask", "response", "crm");
	sg_dlp_metrics_count("financial.card", "mask", "request", "crm");
	assert_int_equal(sg_dlp_metrics_get("financial.card", "mask", "response", "crm"), 2);
	assert_int_equal(sg_dlp_metrics_get("financial.card", "mask", "request", "crm"), 1);
	assert_int_equal(sg_dlp_metrics_get("financial.card", "block", "request", "crm"), 0);
	char *text = render();
	assert_non_null(strstr(text,
	                       "sandgate_dlp_events_total{class=\"financial.card\","
	                       "action=\"mask\",direction=\"response\",connector=\"crm\"} 2\n"));
	free(text);
}

static void
test_a_label_cannot_break_the_exposition_format(void **state)
{
	(void)state;
	sg_dlp_metrics_count("acme\"}\nx{", "alert", "request", "c\\");
	char *text = render();
	assert_non_null(strstr(text, "class=\"acme_}_x{\",action=\"alert\",direction=\"request\","
	                             "connector=\"c_\"} 1\n"));
	/* Counted again under the same kept labels, not as a new series. */
	sg_dlp_metrics_count("acme\"}\nx{", "alert", "request", "c\\");
	assert_int_equal(sg_dlp_metrics_get("acme\"}\nx{", "alert", "request", "c\\"), 2);
	free(text);
}

static void
test_past_the_cap_every_new_series_counts_as_other(void **state)
{
	(void)state;
	char cls[32];
	for (int i = 0; i < SG_DLP_METRICS_MAX + 10; i++) {
		snprintf(cls, sizeof(cls), "custom.c%d", i);
		sg_dlp_metrics_count(cls, "alert", "request", "crm");
	}
	/* Two series exist from the tests before; the rest of the cap went to new classes. */
	assert_int_equal(sg_dlp_metrics_get("other", "other", "other", "other"), 10 + 3);
	/* A series made before the cap was reached still counts on its own. */
	sg_dlp_metrics_count("financial.card", "mask", "response", "crm");
	assert_int_equal(sg_dlp_metrics_get("financial.card", "mask", "response", "crm"), 3);
	char *text = render();
	assert_non_null(strstr(text, "class=\"other\",action=\"other\",direction=\"other\","
	                             "connector=\"other\"} 13\n"));
	free(text);
}

int
main(void)
{
	/* In order: the cap test counts the series the others made. */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_one_series_per_label_set),
	    cmocka_unit_test(test_a_label_cannot_break_the_exposition_format),
	    cmocka_unit_test(test_past_the_cap_every_new_series_counts_as_other),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
