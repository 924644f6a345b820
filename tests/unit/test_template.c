/*
 * test_template: template manifests and their Lua checked against the
 * example catalog, and the errors a template author sees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/sg_testcatalog.h"
#include "../support/sg_testdiag.h"

#include "catalog/sg_template.h"

static int
setup(void **state)
{
	*state = sg_test_example_catalog();
	return *state ? 0 : -1;
}

static int
teardown(void **state)
{
	sg_catalog_free(*state);
	return 0;
}

#define MANIFEST                                                                                   \
	"kind: template\n"                         /* 1 */                                         \
	"name: t\n"                                /* 2 */                                         \
	"version: 1.0.0\n"                         /* 3 */                                         \
	"description: Test.\n"                     /* 4 */                                         \
	"capabilities: [\"crm.create_contact\"]\n" /* 5 */

static const char lua_ok[] = "function run(input, ctx)\n  return {ok = true}\nend\n";

static struct sg_template *
parse(const struct sg_catalog *cat, const char *manifest, const char *lua, struct sg_diags *d)
{
	return sg_template_parse("t.yaml", manifest, strlen(manifest), "main.lua", lua,
	                         lua ? strlen(lua) : 0, cat, d);
}

static void
test_example_template(void **state)
{
	struct sg_diags d = {0};
	char *manifest =
	    sg_test_slurp(SG_SOURCE_ROOT "/examples/templates/onboard-contact/template.yaml");
	char *lua = sg_test_slurp(SG_SOURCE_ROOT "/examples/templates/onboard-contact/main.lua");
	struct sg_template *t = parse(*state, manifest, lua, &d);
	sg_diags_print(&d, stderr);
	assert_non_null(t);
	assert_string_equal(t->name, "onboard-contact");
	assert_int_equal(t->n_caps, 2);
	assert_string_equal(sg_template_capability(t, "mail.send")->name, "send");
	assert_null(sg_template_capability(t, "crm.list_contacts"));
	assert_int_equal(t->limits.wall_ms, 2000);
	assert_int_equal(t->limits.memory_bytes, 16u << 20);
	assert_int_equal(t->limits.calls, 4);
	assert_int_equal(t->source_len, strlen(lua));
	sg_template_free(t);
	free(manifest);
	free(lua);
}

static void
test_defaults(void **state)
{
	struct sg_diags d = {0};
	struct sg_template *t = parse(*state, MANIFEST, lua_ok, &d);
	assert_non_null(t);
	assert_int_equal(t->limits.wall_ms, 2000);
	assert_int_equal(t->limits.cpu_ms, 1000);
	assert_int_equal(t->limits.memory_bytes, 32u << 20);
	assert_int_equal(t->limits.instructions, 10000000);
	assert_int_equal(t->limits.calls, 20);
	sg_template_free(t);
}

static void
test_lua_error_names_its_line(void **state)
{
	struct sg_diags d = {0};
	assert_null(
	    parse(*state, MANIFEST, "function run(input, ctx)\n  return {ok = }\nend\n", &d));
	assert_int_equal(d.n, 1);
	assert_true(strncmp(diag_at(&d, 0), "main.lua:2:0: main.lua:2:", 25) == 0);
	sg_diags_free(&d);
	assert_null(parse(*state, MANIFEST, NULL, &d));
	assert_string_equal(diag_at(&d, 0), "t.yaml:0:0: main.lua is missing: put it next to "
	                                    "template.yaml");
	sg_diags_free(&d);
}

static void
test_capability_errors(void **state)
{
	struct sg_diags d = {0};
	assert_null(
	    parse(*state,
	          "kind: template\nname: t\nversion: 1.0.0\ndescription: T.\n"
	          "capabilities: [\"crm.create_contcat\", \"crn.list_contacts\", \"mail\"]\n",
	          lua_ok, &d));
	assert_int_equal(d.n, 3);
	assert_string_equal(diag_at(&d, 0), "t.yaml:5:16: capabilities: the catalog has no "
	                                    "operation \"crm.create_contcat\" (did you mean "
	                                    "\"crm.create_contact\"?)");
	assert_string_equal(diag_at(&d, 1), "t.yaml:5:38: capabilities: the catalog has no "
	                                    "connector \"crn\" (did you mean \"crm\"?)");
	assert_string_equal(diag_at(&d, 2), "t.yaml:5:59: capabilities: \"mail\": write "
	                                    "connector.operation, such as crm.create_contact");
	sg_diags_free(&d);
}

static void
test_limit_errors(void **state)
{
	struct sg_diags d = {0};
	assert_null(parse(
	    *state, MANIFEST "limits: { wall_time: 2m, memory: 2GiB, calls: 5000, cpu: 1s }\n",
	    lua_ok, &d));
	assert_int_equal(d.n, 4);
	assert_true(strstr(diag_at(&d, 0),
	                   "limits.wall_time: expected a duration from 1ms to 60s") != NULL);
	assert_true(strstr(diag_at(&d, 1), "limits.memory: expected a size from 1MiB to 1GiB") !=
	            NULL);
	assert_true(strstr(diag_at(&d, 2), "limits.calls") != NULL);
	assert_true(strstr(diag_at(&d, 3), "unknown key \"cpu\"") != NULL);
	sg_diags_free(&d);
}

/* Template names follow the one naming rule (sg_name.h); they were not checked at all. */
static void
test_template_names(void **state)
{
	char manifest[512], name[80];
	const char *names[] = {"onboard-2", "acme.com", "../x", "Onboard", "_x", "", NULL};
	for (size_t i = 0; names[i] != NULL; i++) {
		struct sg_diags d = {0};
		snprintf(manifest, sizeof(manifest), "kind: template\nname: \"%s\"\n%s", names[i],
		         strstr(MANIFEST, "version:"));
		struct sg_template *t = parse(*state, manifest, lua_ok, &d);
		assert_int_equal(t != NULL, i == 0);
		if (i > 0) {
			assert_int_equal(d.n, 1);
			assert_memory_equal(diag_at(&d, 0), "t.yaml:2:7: name \"", 18);
			assert_non_null(strstr(diag_at(&d, 0), "use 1 to 63 lowercase letters"));
		}
		sg_template_free(t);
		sg_diags_free(&d);
	}
	for (size_t n = 62; n <= 64; n++) { /* N-1, N, N+1 */
		struct sg_diags d = {0};
		memset(name, 't', n);
		name[n] = '\0';
		snprintf(manifest, sizeof(manifest), "kind: template\nname: %s\n%s", name,
		         strstr(MANIFEST, "version:"));
		struct sg_template *t = parse(*state, manifest, lua_ok, &d);
		assert_int_equal(t != NULL, n <= 63);
		sg_template_free(t);
		sg_diags_free(&d);
	}
	struct sg_diags d = {0};
	assert_null(parse(*state, strstr(MANIFEST, "version:"), lua_ok, &d));
	assert_non_null(strstr(diag_at(&d, 0), "a template needs a name: 1 to 63 lowercase"));
	sg_diags_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_example_template, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lua_error_names_its_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capability_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_template_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
