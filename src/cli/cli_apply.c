/* sandgate apply: validate definitions and store them as new versions. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "catalog/sg_apply.h"
#include "catalog/sg_snapshot.h"
#include "cli/cli.h"

#define MAX_PATHS 64

static const char apply_help[] =
    "usage: sandgate apply -f DIR|FILE [-f ...] [--data-dir DIR] [--dry-run] [--json]\n"
    "                      [--no-reload]\n"
    "\n"
    "Checks every connector and policy file together with what is already live, and\n"
    "stores the changed ones as new versions.  All or nothing: on any error nothing\n"
    "is stored.  A running gateway on the same data directory is told to reload\n"
    "(SIGHUP) unless --no-reload is given.\n";

struct apply_opts {
	const char *paths[MAX_PATHS];
	size_t n_paths;
	const char *data_dir;
	bool dry_run, json, no_reload;
};

static int
parse_apply_opts(int argc, char **argv, struct apply_opts *o)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"data-dir", required_argument, NULL, 'd'},
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"no-reload", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (o->n_paths == MAX_PATHS)
				return sg_cli_fail("at most %d -f paths", MAX_PATHS), -1;
			o->paths[o->n_paths++] = optarg;
			break;
		case 'd': o->data_dir = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'R': o->no_reload = true; break;
		case 'h': fputs(apply_help, stdout); exit(0);
		default: fputs(apply_help, stderr); return -1;
		}
	}
	if (o->n_paths == 0 || optind != argc) {
		fputs(apply_help, stderr);
		return -1;
	}
	return 0;
}

/*
 * Tells a gateway serving this data directory to reload; returns its pid or
 * 0.  The pid file is trusted only while it is locked: a running gateway
 * holds the lock, so a file we can lock is stale, and its pid may by now
 * belong to an unrelated process that SIGHUP would kill.
 */
static long
signal_gateway(const char *data_dir)
{
	char path[4096], buf[32];
	long pid = 0;
	snprintf(path, sizeof(path), "%s/sandgate.pid", data_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd); /* nobody holds it: no gateway is running */
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	pid = strtol(buf, &end, 10);
	if (pid <= 1 || (*end != '\n' && *end != '\0') || kill((pid_t)pid, SIGHUP) != 0)
		return 0;
	return pid;
}

static size_t
count_changed(const json_t *report)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(report, i, e) {
		const char *r = json_string_value(json_object_get(e, "result"));
		if (r && (strcmp(r, "created") == 0 || strcmp(r, "updated") == 0))
			n++;
	}
	return n;
}

static void
print_report(const json_t *report, const struct apply_opts *o, long pid)
{
	size_t i;
	json_t *e;
	if (o->json) {
		json_t *out = json_pack("{s:O, s:b, s:I}", "documents", report, "dry_run", o->dry_run,
		    "reloaded_pid", (json_int_t)pid);
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(out);
		return;
	}
	json_array_foreach(report, i, e)
		printf("%s %s: %s (version %lld)\n", json_string_value(json_object_get(e, "kind")),
		    json_string_value(json_object_get(e, "name")),
		    json_string_value(json_object_get(e, "result")),
		    (long long)json_integer_value(json_object_get(e, "version")));
	if (o->dry_run)
		printf("dry run: everything is valid; nothing was stored\n");
	else if (pid)
		printf("the gateway (pid %ld) was told to reload\n", pid);
}

int
sg_cli_apply(int argc, char **argv)
{
	struct apply_opts o = {0};
	struct sg_diags d = {0};
	if (parse_apply_opts(argc, argv, &o) != 0)
		return 2;
	const char *dir = sg_cli_data_dir(o.data_dir);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	json_t *report = json_array();
	/*
	 * The policy's check compiles each custom pattern at its line; the
	 * whole database takes seconds and is compiled by the gateway when it
	 * loads what was applied (a failure there keeps the snapshot it has).
	 */
	sg_defs_set_dlp_compile(false);
	int rc = sg_apply(s, o.paths, o.n_paths, 0, o.dry_run, &d, report);
	sg_store_close(s);
	if (rc != 0) {
		sg_diags_print(&d, stderr);
		fprintf(stderr, "sandgate: %zu error%s; nothing was applied\n", d.n,
		    d.n == 1 ? "" : "s");
		sg_diags_free(&d);
		json_decref(report);
		return 1;
	}
	long pid = 0;
	if (!o.dry_run && !o.no_reload && count_changed(report) > 0)
		pid = signal_gateway(dir);
	print_report(report, &o, pid);
	json_decref(report);
	sg_diags_free(&d);
	return 0;
}
