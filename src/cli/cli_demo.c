/*
 * The first-start demo: the bundled examples, one key per role, and a
 * quick start a person can paste.  Keys exist only as hashes afterwards, so
 * this is the one moment they can be shown.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/sg_apply.h"
#include "cli/cli.h"

/*
 * Where the examples are, relative to the executable's directory (meson.build
 * computes both): an installed copy's DATADIR/sandgate/examples, and for a
 * binary in a build directory inside the source tree, the tree's examples/.
 * Relative, so the binary names no directory of the machine it was built on.
 */
#ifndef SG_EXAMPLES_FROM_BIN
#define SG_EXAMPLES_FROM_BIN "../share/sandgate/examples"
#endif

static const struct {
	const char *role, *user, *mode;
} demo_keys[] = {
    {"explorer", "alex", "sandbox"},
    {"maker", "sam", "sandbox"},
    {"admin", "ada", "live"},
};

#define N_DEMO_KEYS (sizeof(demo_keys) / sizeof(demo_keys[0]))

static bool
is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Where this executable is, whatever the working directory. */
static int
exe_dir(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	char *slash;
	if (n <= 0 || (size_t)n >= len - 1)
		return n > 0 ? (errno = ENAMETOOLONG, -1) : -1;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (slash == NULL)
		return errno = ENOENT, -1;
	*slash = '\0';
	return 0;
}

/* The first candidate that is a directory, made canonical for the person reading it. */
static int
first_dir(const char *base, const char *const rel[], size_t n, char out[PATH_MAX])
{
	char path[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(path, sizeof(path), "%s/%s", base, rel[i]);
		if (len > 0 && (size_t)len < sizeof(path) && is_dir(path) &&
		    realpath(path, out) != NULL)
			return 0;
	}
	return -1;
}

/* An override that names no directory is a mistake to report, not to fall back from. */
static int
examples_from_env(const char *env, char out[PATH_MAX])
{
	if (is_dir(env) && realpath(env, out) != NULL)
		return 0;
	return sg_cli_fail("SANDGATE_EXAMPLES=%s is not a directory: point it at a copy of "
	                   "sandgate's examples/ or unset it",
	                   env),
	       -1;
}

/* $SANDGATE_EXAMPLES when set, else the examples found next to the executable. */
static int
find_examples(char out[PATH_MAX])
{
	static const char *const rel[] = {
	    SG_EXAMPLES_FROM_BIN,
#ifdef SG_EXAMPLES_FROM_BUILD
	    SG_EXAMPLES_FROM_BUILD,
#endif
	};
	const char *env = getenv("SANDGATE_EXAMPLES");
	char dir[PATH_MAX];
	if (env != NULL && *env != '\0')
		return examples_from_env(env, out);
	if (exe_dir(dir, sizeof(dir)) != 0)
		return sg_cli_fail("cannot find where this executable is (/proc/self/exe): %s",
		                   strerror(errno)),
		       -1;
	if (first_dir(dir, rel, sizeof(rel) / sizeof(rel[0]), out) == 0)
		return 0;
	return sg_cli_fail("the demo examples are not in %s/%s: install sandgate with 'meson "
	                   "install', or set SANDGATE_EXAMPLES to the source tree's examples/",
	                   dir, SG_EXAMPLES_FROM_BIN),
	       -1;
}

static int
apply_examples(struct sg_store *s, uint64_t seed, const char *dir)
{
	struct sg_diags d = {0};
	const char *paths[] = {dir};
	json_t *report = json_array();
	int rc = sg_apply(s, paths, 1, seed, false, &d, report);
	if (rc != 0) {
		sg_diags_print(&d, stderr);
		sg_cli_fail("the demo examples in %s do not apply", dir);
	}
	sg_diags_free(&d);
	json_decref(report);
	return rc;
}

static void
print_quick_start(char keys[][SG_KEY_MAX_LEN + 1], const char *host, unsigned port,
                  const char *examples)
{
	printf("\nsandgate demo is ready on http://%s:%u\n", host, port);
	printf("Its connectors, templates and policies: %s\n\n", examples);
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
	char examples[PATH_MAX];
	struct sg_key_record rec;
	if (find_examples(examples) != 0 || apply_examples(s, sim_seed, examples) != 0)
		return -1;
	for (size_t i = 0; i < N_DEMO_KEYS; i++) {
		struct sg_new_key nk = {"demo", demo_keys[i].user, demo_keys[i].role,
		                        demo_keys[i].mode, 0};
		if (sg_cli_create_key(s, secret, &nk, keys[i], &rec) != 0)
			return -1;
	}
	print_quick_start(keys, listen_host, listen_port, examples);
	explicit_bzero(keys, sizeof(keys));
	return 0;
}
