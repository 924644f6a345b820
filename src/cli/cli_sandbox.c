/* sandgate sandbox status: what a running gateway's template sandbox enforces. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"

/* /readyz answers from memory; a gateway this slow is as good as down. */
#define STATUS_TIMEOUT_S 10
/* The detailed /readyz is on the admin listener (admin_listen's default). */
#define DEFAULT_ADMIN_URL "http://127.0.0.1:8091"
#define TOKEN_MAX 1024

static const char sandbox_help[] =
    "usage: sandgate sandbox status [--url URL] [--cacert FILE] [--admin-token-file FILE]\n"
    "                               [--json]\n"
    "\n"
    "Prints what the running gateway's template sandbox enforces: whether it is\n"
    "ready, its workers, its isolation and each tenant cgroup ceiling (the\n"
    "\"sandbox\" member of the detailed /readyz).\n"
    "\n"
    "  --url URL  the gateway's admin listener (admin_listen), default " DEFAULT_ADMIN_URL "\n"
    "             (or its public one, plain or TLS, with --admin-token-file)\n" SG_CLI_CACERT_HELP
    "  --admin-token-file FILE\n"
    "             send the admin token (admin_token_file) as the bearer, to ask a\n"
    "             listener that shows the details only with it\n"
    "  --json     print the sandbox member as JSON\n"
    "\n"
    "Exit status: 0 when the sandbox is enabled and ready, 1 when it is not or the\n"
    "gateway cannot be reached, 2 on a usage error.\n";

struct sandbox_opts {
	const char *url, *token_file, *cacert;
	bool json, help;
};

static int
parse_sandbox_opts(int argc, char **argv, struct sandbox_opts *o)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"cacert", required_argument, NULL, 'C'},
	    {"admin-token-file", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			o->url = optarg;
			break;
		case 'C':
			o->cacert = optarg;
			break;
		case 't':
			o->token_file = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		default:
			return fputs(sandbox_help, stderr), -1;
		}
	}
	if (optind != argc)
		return sg_cli_fail("sandbox status takes no arguments, only options (see --help)"),
		       -1;
	if (o->url == NULL)
		o->url = DEFAULT_ADMIN_URL;
	return 0;
}

static json_int_t
int_of(const json_t *o, const char *name)
{
	return json_integer_value(json_object_get(o, name));
}

/* One line per controller: its ceiling, and whether the kernel enforces it. */
static void
print_ceiling(const char *ctrl, const json_t *c)
{
	printf("  %-7s ", ctrl);
	if (!json_is_true(json_object_get(c, "configured")))
		puts("not configured");
	else if (json_is_true(json_object_get(c, "enforced")))
		printf("%s, enforced via cgroup %s\n", sg_cli_str(c, "ceiling"),
		       sg_cli_str(c, "version"));
	else {
		printf("%s, ", sg_cli_str(c, "ceiling"));
		sg_cli_put_line(stdout, "not enforced: ", sg_cli_str(c, "reason"));
	}
}

static void
print_cgroups(const json_t *cg)
{
	const char *ctrl;
	const json_t *c;
	if (!json_is_object(cg)) {
		puts("cgroups: off (sandbox.cgroups: off); no tenant ceilings are enforced");
		return;
	}
	printf("cgroups: mode %s, tenant: %s\n", sg_cli_str(cg, "mode"), sg_cli_str(cg, "tenant"));
	json_object_foreach(json_object_get(cg, "ceilings"), ctrl, c) print_ceiling(ctrl, c);
}

static void
print_status(const json_t *sb)
{
	const json_t *w = json_object_get(sb, "workers");
	if (!json_is_true(json_object_get(sb, "enabled"))) {
		puts("sandbox: disabled (sandbox.enabled: false); template runs get 503");
		return;
	}
	if (json_is_true(json_object_get(sb, "ready")))
		puts("sandbox: enabled, ready");
	else
		sg_cli_put_line(stdout, "sandbox: enabled, NOT ready: ", sg_cli_str(sb, "reason"));
	printf("workers: %" JSON_INTEGER_FORMAT " idle, %" JSON_INTEGER_FORMAT
	       " busy, at most %" JSON_INTEGER_FORMAT "; %" JSON_INTEGER_FORMAT
	       " kept ready per tenant, each replaced after %" JSON_INTEGER_FORMAT " runs\n",
	       int_of(w, "idle"), int_of(w, "busy"), int_of(w, "max"), int_of(w, "prefork"),
	       int_of(w, "runs_per_worker"));
	sg_cli_put_line(stdout, "isolation: ", sg_cli_str(sb, "isolation"));
	print_cgroups(json_object_get(sb, "cgroups"));
}

/* "Bearer " and the first line of `path`, in `out`; -1 after saying why not. */
static int
read_token(const char *path, char *out, size_t n)
{
	char buf[TOKEN_MAX + 2];
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return sg_cli_fail("--admin-token-file %s: %s", path, strerror(errno)), -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0' || snprintf(out, n, "Bearer %s", buf) >= (int)n) {
		explicit_bzero(buf, sizeof(buf));
		return sg_cli_fail("--admin-token-file %s: the first line must hold the token",
		                   path),
		       -1;
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* The sandbox member of /readyz; -1 after saying why there is none. */
static int
fetch_sandbox(const struct sandbox_opts *o, json_t **readyz, const json_t **sb)
{
	struct sg_cli_http_resp rs;
	char err[1024], auth[TOKEN_MAX + 16];
	const char *url = o->url;
	const char *headers[] = {"Authorization", auth, NULL};
	if (o->token_file && read_token(o->token_file, auth, sizeof(auth)) != 0)
		return -1;
	const struct sg_cli_http_req rq = {.method = "GET",
	                                   .base_url = url,
	                                   .cacert = o->cacert,
	                                   .path = "/readyz",
	                                   .headers = o->token_file ? headers : NULL,
	                                   .timeout_s = STATUS_TIMEOUT_S};
	enum sg_cli_http_rc rc = sg_cli_http_do(&rq, &rs, err, sizeof(err));
	explicit_bzero(auth, sizeof(auth));
	if (rc != SG_CLI_HTTP_OK)
		return sg_cli_fail("%s", err), rc == SG_CLI_HTTP_BAD_URL ? -2 : -1;
	/* /readyz says 503 while draining; its body still describes the sandbox. */
	*readyz = json_loadb(rs.body, rs.body_len, 0, NULL);
	int status = rs.status;
	sg_cli_http_resp_free(&rs);
	*sb = json_object_get(*readyz, "sandbox");
	if (json_is_object(*sb))
		return 0;
	if (*readyz == NULL)
		return sg_cli_fail("%s/readyz answered %d with a body that is not JSON; is --url "
		                   "a sandgate gateway?",
		                   url, status),
		       -1;
	/* The public listener's /readyz has the status and the checks' verdicts only. */
	if (json_is_object(json_object_get(*readyz, "checks")))
		return sg_cli_fail(
		           "%s shows only the public readiness status; point --url at the "
		           "gateway's admin listener (admin_listen in sandgate.yaml, default "
		           "127.0.0.1:8091), or pass --admin-token-file",
		           url),
		       -1;
	return sg_cli_fail("the gateway at %s does not report a sandbox in /readyz; it may "
	                   "predate template runs",
	                   url),
	       -1;
}

static int
sandbox_status(int argc, char **argv)
{
	struct sandbox_opts o = {0};
	json_t *readyz = NULL;
	const json_t *sb = NULL;

	if (parse_sandbox_opts(argc, argv, &o) != 0)
		return 2;
	if (o.help)
		return fputs(sandbox_help, stdout), 0;
	int rc = fetch_sandbox(&o, &readyz, &sb);
	if (rc != 0) {
		json_decref(readyz);
		return rc == -2 ? 2 : 1;
	}
	if (o.json) {
		json_dumpf(sb, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else
		print_status(sb);
	bool ready = json_is_true(json_object_get(sb, "enabled")) &&
	             json_is_true(json_object_get(sb, "ready"));
	json_decref(readyz);
	return ready ? 0 : 1;
}

int
sg_cli_sandbox(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(sandbox_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "status") == 0)
		return sandbox_status(argc - 1, argv + 1);
	sg_cli_fail("unknown sandbox command \"%s\"", argv[1]);
	fputs(sandbox_help, stderr);
	return 2;
}
