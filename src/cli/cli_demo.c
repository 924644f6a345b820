/*
 * The first-start demo: the bundled examples, one key per role, and a
 * quick start a person can paste.  Keys exist only as hashes afterwards, so
 * this is the one moment they can be shown.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "catalog/sg_apply.h"
#include "cli/cli.h"

#ifndef SG_EXAMPLES_DIR
#define SG_EXAMPLES_DIR "examples"
#endif

static const struct {
	const char *role, *user, *mode;
} demo_keys[] = {
    {"explorer", "alex", "sandbox"},
    {"maker", "sam", "sandbox"},
    {"admin", "ada", "live"},
};

#define N_DEMO_KEYS (sizeof(demo_keys) / sizeof(demo_keys[0]))

static int
apply_examples(struct sg_store *s, uint64_t seed)
{
	struct sg_diags d = {0};
	const char *paths[] = {SG_EXAMPLES_DIR};
	json_t *report = json_array();
	int rc = sg_apply(s, paths, 1, seed, false, &d, report);
	if (rc != 0) {
		sg_diags_print(&d, stderr);
		sg_cli_fail("the demo examples in %s do not apply", SG_EXAMPLES_DIR);
	}
	sg_diags_free(&d);
	json_decref(report);
	return rc;
}

static void
print_quick_start(char keys[][SG_KEY_MAX_LEN + 1], const char *host, unsigned port)
{
	printf("\nsandgate demo is ready on http://%s:%u\n\n", host, port);
	printf("Demo keys (tenant \"demo\"; shown once, copy them now):\n");
	for (size_t i = 0; i < N_DEMO_KEYS; i++)
		printf("  %-8s (%s)  %s\n", demo_keys[i].role, demo_keys[i].mode, keys[i]);
	printf("\nTry it:\n"
	       "  curl -s -X POST http://%s:%u/v1/connectors/crm/create_contact \\\n"
	       "    -H 'Authorization: Bearer %s' \\\n"
	       "    -H 'Content-Type: application/json' \\\n"
	       "    -d '{\"email\": \"ada@example.com\", \"name\": \"Ada Lovelace\"}'\n\n"
	       "  Run it a few times quickly: past the explorer's burst of 3, calls wait\n"
	       "  their turn (up to 2 s). Add -H 'Sandgate-Priority: background' to be\n"
	       "  refused at once instead (429 with Retry-After).\n\n"
	       "Run a template (Lua in the sandbox; each of its calls is governed too):\n"
	       "  curl -s -X POST http://%s:%u/v1/templates/onboard-contact/runs \\\n"
	       "    -H 'Authorization: Bearer %s' \\\n"
	       "    -H 'Content-Type: application/json' \\\n"
	       "    -d '{\"email\": \"ada@example.com\", \"name\": \"Ada Lovelace\"}'\n\n"
	       "  GET /v1/catalog shows what a key may call; GET /v1/me/usage its limits.\n\n",
	       host, port, keys[0], host, port, keys[0]);
	fflush(stdout);
}

int
sg_cli_demo_bootstrap(struct sg_store *s, const uint8_t secret[SG_SERVER_SECRET_LEN],
                      const char *listen_host, unsigned listen_port, uint64_t sim_seed)
{
	char keys[N_DEMO_KEYS][SG_KEY_MAX_LEN + 1];
	struct sg_key_record rec;
	if (apply_examples(s, sim_seed) != 0)
		return -1;
	for (size_t i = 0; i < N_DEMO_KEYS; i++) {
		struct sg_new_key nk = {"demo", demo_keys[i].user, demo_keys[i].role,
		                        demo_keys[i].mode, 0};
		if (sg_cli_create_key(s, secret, &nk, keys[i], &rec) != 0)
			return -1;
	}
	print_quick_start(keys, listen_host, listen_port);
	explicit_bzero(keys, sizeof(keys));
	return 0;
}
