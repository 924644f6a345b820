/* sandgate run: start a template run on a running gateway and show how it went. */
#include <getopt.h>
#include <jansson.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_http.h"

/* Above any template's wall_time; the gateway answers when the run ends. */
#define RUN_TIMEOUT_S 70
/* Far above any key or session token; the Authorization buffer is sized from it. */
#define MAX_KEY_LEN 512

static const char run_help[] =
    "usage: sandgate run TEMPLATE [--input FILE|-] [--key KEY] [--url URL]\n"
    "                    [--cacert FILE] [--no-wait] [--json]\n"
    "\n"
    "Runs TEMPLATE on a running gateway as the key's owner and prints the result\n"
    "and the trace of every call it made.\n"
    "\n"
    "  --input FILE  the run's input, a JSON value (- reads stdin; default {})\n"
    "  --key KEY     an API key (sgk_...) or session token; default $SANDGATE_KEY\n"
    "  --url URL     the gateway, http:// or https://, default " SG_CLI_DEFAULT_URL
    "\n" SG_CLI_CACERT_HELP
    "  --no-wait     return at once with the run's id (see GET /v1/runs/ID)\n"
    "  --json        print the gateway's answer as it came\n"
    "\n"
    "Exit status: 0 when the run succeeded (or, with --no-wait, started), 1 when it\n"
    "failed or the gateway refused it, 2 on a usage error.\n";

struct run_opts {
	const char *template, *input, *key, *url, *cacert;
	int no_wait, json, help; /* set by getopt_long itself */
};

/* A key is pasted into a header: refuse one that could not be a key rather than cut it. */
static bool
key_ok(const char *key)
{
	for (const char *p = key; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return strlen(key) <= MAX_KEY_LEN;
}

static int
parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	const struct option opts[] = {
	    {"input", required_argument, NULL, 'i'},  {"key", required_argument, NULL, 'k'},
	    {"url", required_argument, NULL, 'u'},    {"cacert", required_argument, NULL, 'C'},
	    {"no-wait", no_argument, &o->no_wait, 1}, {"json", no_argument, &o->json, 1},
	    {"help", no_argument, &o->help, 1},       {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h')
			o->help = 1;
		else if (ch == 'i')
			o->input = optarg;
		else if (ch == 'k')
			o->key = optarg;
		else if (ch == 'u')
			o->url = optarg;
		else if (ch == 'C')
			o->cacert = optarg;
		else if (ch != 0)
			return fputs(run_help, stderr), -1;
	}
	if (o->help)
		return 0;
	if (optind != argc - 1 || argv[optind][0] == '\0')
		return sg_cli_fail("run needs exactly one TEMPLATE name (see --help)"), -1;
	o->template = argv[optind];
	if (o->key == NULL || *o->key == '\0')
		o->key = getenv("SANDGATE_KEY");
	if (o->key == NULL || *o->key == '\0')
		return sg_cli_fail("run needs a key: pass --key KEY or set SANDGATE_KEY"), -1;
	if (!key_ok(o->key))
		return sg_cli_fail("that is not a key (too long, or it has spaces or control "
		                   "characters); copy it again from 'sandgate keys create'"),
		       -1;
	if (o->url == NULL)
		o->url = SG_CLI_DEFAULT_URL;
	return 0;
}

/*
 * The input, checked to be one JSON value and sent re-encoded compactly (the
 * gateway parses it the same way); NULL after saying why.
 */
static char *
read_input(const char *path)
{
	const size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES;
	bool is_stdin = path && strcmp(path, "-") == 0;
	json_error_t e = {.line = -1, .text = "out of memory"};
	json_t *v = path == NULL ? json_object()
	            : is_stdin   ? json_loadf(stdin, flags, &e)
	                         : json_load_file(path, flags, &e);
	if (v == NULL && e.line < 0) /* jansson's line is -1 when nothing could be read */
		return sg_cli_fail("cannot read --input: %s", e.text), NULL;
	if (v == NULL)
		return sg_cli_fail("%s:%d:%d: the input is not JSON: %s", is_stdin ? "stdin" : path,
		                   e.line, e.column, e.text),
		       NULL;
	char *body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (body == NULL)
		sg_cli_fail("out of memory");
	return body;
}

/* What to do about it, when the gateway said. */
static void
put_remediation(FILE *out, const json_t *o)
{
	const char *text = json_string_value(json_object_get(o, "remediation"));
	if (text && *text)
		sg_cli_put_line(out, "  remediation: ", text);
}

/* A number member, or "-" when null or absent; reals to `decimals` places (-1: %.15g). */
static const char *
nv(const json_t *o, const char *name, int decimals, char *buf, size_t n)
{
	const json_t *v = json_object_get(o, name);
	if (json_is_integer(v))
		snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v) && decimals >= 0)
		snprintf(buf, n, "%.*f", decimals, json_real_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%.15g", json_real_value(v));
	else
		snprintf(buf, n, "-");
	return buf;
}

/* One line per call: seq, capability, decision, status, latency, cost (and a refusal's code). */
static void
print_trace(const json_t *run)
{
	const json_t *calls = json_object_get(run, "calls"), *c;
	size_t i, width = 10;
	char a[32], b[32], d[32], e[32];
	printf("trace %s\n", sg_cli_str(run, "trace_id"));
	json_array_foreach(calls, i, c)
	{
		size_t w = strlen(sg_cli_str(c, "capability"));
		width = w > width ? w : width;
	}
	json_array_foreach(calls, i, c)
	{
		printf("  %3s  %-*s  %-8s  %3s  %8s ms  cost %s", nv(c, "seq", 0, a, sizeof(a)),
		       (int)width, sg_cli_str(c, "capability"), sg_cli_str(c, "decision"),
		       nv(c, "status", 0, b, sizeof(b)), nv(c, "latency_ms", 3, d, sizeof(d)),
		       nv(c, "cost", -1, e, sizeof(e)));
		sg_cli_put_line(stdout, json_is_string(json_object_get(c, "code")) ? "  " : "",
		                json_string_value(json_object_get(c, "code")));
	}
}

/* Why a failed run failed: its error, and the limit that stopped it if one did. */
static void
print_failure(const json_t *run)
{
	const json_t *err = json_object_get(run, "error");
	const json_t *stop = json_object_get(run, "stopped_by");
	char v[32];
	if (json_is_object(err)) {
		printf("error: %s: ", sg_cli_str(err, "code"));
		sg_cli_put_line(stdout, "", sg_cli_str(err, "message"));
		put_remediation(stdout, err);
	}
	if (json_is_object(stop)) {
		printf("stopped by: the %s limit (%s)\n", sg_cli_str(stop, "limit"),
		       nv(stop, "value", -1, v, sizeof(v)));
		put_remediation(stdout, stop);
	}
}

static void
print_run(const json_t *run)
{
	const json_t *logs = json_object_get(run, "logs"), *line;
	char ms[32];
	size_t i;
	printf("%s  %s %s  %s  (%s ms)\n", sg_cli_str(run, "id"), sg_cli_str(run, "template"),
	       sg_cli_str(run, "version"), sg_cli_str(run, "status"),
	       nv(json_object_get(run, "usage"), "wall_ms", 3, ms, sizeof(ms)));
	if (json_object_get(run, "output") && !json_is_null(json_object_get(run, "output"))) {
		puts("output:");
		json_dumpf(json_object_get(run, "output"), stdout,
		           JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
		putchar('\n');
	}
	if (json_array_size(logs) > 0)
		puts("logs:");
	json_array_foreach(logs, i, line) sg_cli_put_line(stdout, "  ", json_string_value(line));
	print_trace(run);
	print_failure(run);
}

/* A refusal or failure as problem+json: code, detail and what to do, on stderr. */
static void
print_problem(const json_t *p, int status, const char *retry_after)
{
	const json_t *e;
	size_t i;
	fprintf(stderr, "sandgate: the gateway answered %d %s: ", status, sg_cli_str(p, "code"));
	sg_cli_put_line(stderr, "",
	                json_object_get(p, "detail") ? sg_cli_str(p, "detail")
	                                             : sg_cli_str(p, "title"));
	json_array_foreach(json_object_get(p, "errors"), i, e)
	{
		const char *at = sg_cli_str(e, "pointer");
		fprintf(stderr, "  %s: ", *at ? at : "(the whole input)");
		sg_cli_put_line(stderr, "", sg_cli_str(e, "message"));
	}
	put_remediation(stderr, p);
	if (retry_after)
		sg_cli_put_line(stderr, "  retry after (s): ", retry_after);
}

/* Where to follow a run not waited for: the gateway's path, made a whole URL. */
static void
print_accepted(const char *url, const json_t *doc, const char *location)
{
	const char *self = location ? location : sg_cli_str(json_object_get(doc, "links"), "self");
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	printf("%s  %s\n", sg_cli_str(doc, "id"), sg_cli_str(doc, "status"));
	if (self[0] == '/')
		printf("follow it: GET %.*s%s\n", (int)n, url, self);
	else
		sg_cli_put_line(stdout, "follow it: GET ", self);
}

static int
show_answer(const struct run_opts *o, const struct sg_cli_http_resp *rs)
{
	json_t *doc = json_loadb(rs->body, rs->body_len, JSON_DECODE_ANY, NULL);
	const json_t *run = json_object_get(doc, "run");
	if (o->json) {
		fwrite(rs->body, 1, rs->body_len, stdout);
		if (rs->body_len == 0 || rs->body[rs->body_len - 1] != '\n')
			putchar('\n');
	} else if (!json_is_object(doc))
		sg_cli_fail("the gateway at %s answered %d with a body that is not JSON", o->url,
		            rs->status);
	else if (rs->status == 202)
		print_accepted(o->url, doc, rs->location);
	else if (rs->status == 200 || json_is_object(run))
		print_run(rs->status == 200 ? doc : run);
	if (!o->json && json_is_object(doc) && rs->status != 200 && rs->status != 202)
		print_problem(doc, rs->status, rs->retry_after);
	/* 0 when the run succeeded, or started when not waited for. */
	int rc = (rs->status == 202 && o->no_wait) ||
	                 (rs->status == 200 && strcmp(sg_cli_str(doc, "status"), "succeeded") == 0)
	             ? 0
	             : 1;
	json_decref(doc);
	return rc;
}

/* POSTs the input; the key's copy in `auth` is wiped before returning. */
static enum sg_cli_http_rc
post_run(const struct run_opts *o, const char *input, size_t len, struct sg_cli_http_resp *rs,
         char *err, size_t errlen)
{
	char auth[MAX_KEY_LEN + 16], *path = NULL;
	char *name = evhttp_uriencode(o->template, -1, 0);
	if (name == NULL ||
	    asprintf(&path, "/v1/templates/%s/runs%s", name, o->no_wait ? "?wait=false" : "") < 0) {
		free(name);
		snprintf(err, errlen, "out of memory");
		return SG_CLI_HTTP_FAILED;
	}
	snprintf(auth, sizeof(auth), "Bearer %s", o->key); /* fits: key_ok() checked its length */
	const char *headers[] = {"Authorization", auth, "Content-Type", "application/json", NULL};
	const struct sg_cli_http_req rq = {.method = "POST",
	                                   .base_url = o->url,
	                                   .cacert = o->cacert,
	                                   .path = path,
	                                   .headers = headers,
	                                   .body = input,
	                                   .body_len = len,
	                                   .timeout_s = RUN_TIMEOUT_S};
	enum sg_cli_http_rc rc = sg_cli_http_do(&rq, rs, err, errlen);
	explicit_bzero(auth, sizeof(auth));
	free(name);
	free(path);
	return rc;
}

int
sg_cli_run(int argc, char **argv)
{
	struct run_opts o = {0};
	struct sg_cli_http_resp rs;
	char *input = NULL, err[1024];

	if (parse_run_opts(argc, argv, &o) != 0)
		return 2;
	if (o.help)
		return fputs(run_help, stdout), 0;
	if ((input = read_input(o.input)) == NULL)
		return 2;
	enum sg_cli_http_rc hrc = post_run(&o, input, strlen(input), &rs, err, sizeof(err));
	free(input);
	if (hrc != SG_CLI_HTTP_OK) {
		sg_cli_fail("%s", err);
		return hrc == SG_CLI_HTTP_BAD_URL ? 2 : 1;
	}
	int rc = show_answer(&o, &rs);
	sg_cli_http_resp_free(&rs);
	return rc;
}
