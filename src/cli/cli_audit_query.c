/*
 * sandgate audit query: the decision audit, filtered and paged, for an
 * admin at a terminal ("what did alice do this week", "who was refused by
 * DLP").  Reads the store directly, read-only; a running gateway answers
 * the same question at GET /admin/v1/audit.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli/cli.h"
#include "core/sg_fmt.h"

static const char query_help[] =
    "usage: sandgate audit query [--tenant T] [--user U] [--connector C] [--decision D]\n"
    "                            [--code CODE] [--since TIME] [--until TIME] [--trace ID]\n"
    "                            [--limit N] [--cursor C] [--json] [--data DIR]\n"
    "\n"
    "Shows recorded decisions, newest first, one page at a time (--limit, default 50,\n"
    "at most 1000).  TIME is RFC 3339 (2026-12-01T00:00:00Z) or an age: 7d, 24h, 30m.\n"
    "When there is more, the last line gives the --cursor for the next page; pass it\n"
    "with the same filters.  --json writes one JSON object per line and a last\n"
    "{\"next_cursor\": ...}.\n"
    "\n"
    "  what alice did this week:   sandgate audit query --user alice --since 7d\n"
    "  who was refused by DLP:     sandgate audit query --code dlp_blocked --since 7d\n";

struct query_opts {
	struct sg_audit_filter f;
	const char *data_dir;
	bool json;
};

static int64_t
now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int
parse_opts(int argc, char **argv, struct query_opts *o)
{
	static const struct option opts[] = {
	    {"tenant", required_argument, NULL, 0},
	    {"user", required_argument, NULL, 0},
	    {"connector", required_argument, NULL, 0},
	    {"decision", required_argument, NULL, 0},
	    {"code", required_argument, NULL, 0},
	    {"since", required_argument, NULL, 0},
	    {"until", required_argument, NULL, 0},
	    {"trace", required_argument, NULL, 0},
	    {"limit", required_argument, NULL, 0},
	    {"cursor", required_argument, NULL, 0},
	    {"data", required_argument, NULL, 'd'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch, idx;
	char err[300];
	int64_t now = now_us();
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		switch (ch) {
		case 0:
			if (sg_audit_filter_set(&o->f, opts[idx].name, optarg, now, err,
			                        sizeof(err)) != 0)
				return sg_cli_fail("--%s", err), 2;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			fputs(query_help, stdout);
			return 1;
		default:
			fputs(query_help, stderr);
			return 2;
		}
	}
	if (optind < argc)
		return sg_cli_fail("unexpected argument \"%s\"; see --help", argv[optind]), 2;
	return 0;
}

static void
utc_us(int64_t ts_us, char out[SG_UTC_LEN])
{
	sg_fmt_utc(ts_us / 1000000, out);
}

struct printer {
	bool json;
	int n;
};

static int
print_json(const struct sg_audit_row *row)
{
	json_t *o = sg_audit_row_json(row);
	if (o == NULL)
		return -1;
	int rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	fputc('\n', stdout);
	return rc;
}

static const char table_head[] = "%-20s  %-12s  %-14s  %-28s  %-15s  %6s  %-20s  %s\n";

static void
print_line(const struct sg_audit_row *row)
{
	const struct sg_decision *d = &row->d;
	char when[SG_UTC_LEN], call[160];
	utc_us(d->ts_us, when);
	if (d->connector[0])
		snprintf(call, sizeof(call), "%s.%s", d->connector,
		         d->operation[0] ? d->operation : "-");
	else
		snprintf(call, sizeof(call), "-");
	printf("%-20s  %-12s  %-14s  %-28s  %-15s  %6d  %-20s  %s\n", when,
	       d->tenant[0] ? d->tenant : "-", d->user[0] ? d->user : "-", call, d->decision,
	       d->status, d->code[0] ? d->code : "-", d->trace_id[0] ? d->trace_id : "-");
}

static int
print_row(void *arg, const struct sg_audit_row *row)
{
	struct printer *p = arg;
	if (p->json)
		return print_json(row) == 0 ? 0 : -1;
	if (p->n == 0)
		printf(table_head, "TIME", "TENANT", "USER", "CONNECTOR.OPERATION", "DECISION",
		       "STATUS", "CODE", "TRACE");
	print_line(row);
	p->n++;
	return 0;
}

static void
print_end(const struct printer *p, const char *next)
{
	if (p->json) {
		json_t *o =
		    json_pack("{s:o}", "next_cursor", next[0] ? json_string(next) : json_null());
		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(o);
	} else if (p->n == 0) {
		printf("no decisions match\n");
	} else if (next[0]) {
		printf("\nmore: add --cursor %s (with the same filters)\n", next);
	}
}

static int
run_query(struct sg_store *s, const struct query_opts *o, const uint8_t *key)
{
	char next[SG_AUDIT_CURSOR_LEN], err[300];
	struct printer p = {.json = o->json};
	int rc = sg_store_audit_query(s, &o->f, key, print_row, &p, next, err, sizeof(err));
	if (rc == 1)
		return sg_cli_fail("--%s", err), 2;
	if (rc != 0)
		return sg_cli_fail("cannot read the audit: %s", sg_store_last_error(s));
	print_end(&p, next);
	return fflush(stdout) == 0 ? 0 : sg_cli_fail("cannot write the output");
}

int
sg_cli_audit_query(int argc, char **argv)
{
	struct query_opts o;
	uint8_t key[SG_SERVER_SECRET_LEN];
	memset(&o, 0, sizeof(o));
	int rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	const char *dir = sg_cli_data_dir(o.data_dir);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 1;
	/* Cursors are signed with the server secret, so the CLI's and the API's are one kind. */
	if (sg_cli_server_secret(dir, key) != 0)
		rc = 1;
	else if (sg_store_audit_read_only(s) != 0)
		rc = sg_cli_fail("cannot open the audit read-only: %s", sg_store_last_error(s));
	else
		rc = run_query(s, &o, key);
	sg_store_close(s);
	explicit_bzero(key, sizeof(key));
	return rc;
}
