/*
 * sandgate audit verify | export.  Verify recomputes the audit chain (in the
 * store, or in an export file offline) and names the first record that is
 * wrong; export writes a contiguous run of the chain as JSON lines that
 * verify can check without the store.  docs/audit.md is the admin's guide.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/sg_config.h"

#define EXPORT_FORMAT "sandgate-audit-1"

static const char audit_help[] =
    "usage: sandgate audit verify [--data DIR] [--chain ID]\n"
    "       sandgate audit verify --file EXPORT.jsonl [--chain ID]\n"
    "       sandgate audit export --since T [--until T] [--data DIR] [--chain ID] [--out FILE]\n"
    "       sandgate audit query [--user U] [--code C] [--since T] ... (audit query --help)\n"
    "\n"
    "verify recomputes the tamper-evident audit chain and reports the first record\n"
    "that was changed, deleted, moved, or cut off the end.  Exit status: 0 intact,\n"
    "1 tampered, 2 could not check.\n"
    "export writes the records from T to T (RFC 3339, such as 2026-12-01T00:00:00Z,\n"
    "or relative to now, such as 7d or 24h) as JSON lines with their chain hashes,\n"
    "so that 'audit verify --file' can check the export on another machine.\n"
    "query lists decisions by tenant, user, connector, decision, code, time or trace,\n"
    "newest first, a page at a time.\n"
    "DIR defaults to $SANDGATE_DATA_DIR, else ./data.  The chain is \"" SG_CHAIN_MAIN "\" unless\n"
    "--chain names another.  See docs/audit.md.\n";

struct audit_opts {
	const char *data;
	const char *file;
	const char *chain;
	const char *since, *until;
	const char *out;
};

static int
parse_opts(int argc, char **argv, struct audit_opts *o)
{
	static const struct option longs[] = {{"data", required_argument, NULL, 'd'},
	                                      {"data-dir", required_argument, NULL, 'd'},
	                                      {"file", required_argument, NULL, 'f'},
	                                      {"chain", required_argument, NULL, 'c'},
	                                      {"since", required_argument, NULL, 's'},
	                                      {"until", required_argument, NULL, 'u'},
	                                      {"out", required_argument, NULL, 'o'},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {NULL, 0, NULL, 0}};
	int ch;
	memset(o, 0, sizeof(*o));
	o->chain = SG_CHAIN_MAIN;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o->data = optarg;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'c':
			o->chain = optarg;
			break;
		case 's':
			o->since = optarg;
			break;
		case 'u':
			o->until = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'h':
			fputs(audit_help, stdout);
			return 1;
		default:
			fputs(audit_help, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		sg_cli_fail("unexpected argument \"%s\"; see 'sandgate audit --help'",
		            argv[optind]);
		return -1;
	}
	return 0;
}

static int64_t
now_us(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* RFC 3339, or an age back from now ("7d", "24h"): the same words as audit query. */
static int
parse_when(const char *flag, const char *s, int64_t *us)
{
	if (sg_audit_time_parse(s, now_us(), us) == 0)
		return 0;
	sg_cli_fail("%s \"%.64s\": expected a time such as 2026-12-01T00:00:00Z or a span back "
	            "from now such as 7d or 24h",
	            flag, s);
	return -1;
}

/* ---- verify, in the store ---- */

static int
report(const struct sg_chain_walk *w, const char *chain, const char *where)
{
	char when[SG_CHAIN_TIME_LEN];
	if (w->bad) {
		printf("TAMPERED: %s\n", w->what);
		printf("The audit chain \"%s\" in %s is broken at record #%lld; the %lld records "
		       "before it check out.\n",
		       chain, where, (long long)w->bad_id, (long long)w->n);
		return 1;
	}
	if (w->n == 0) {
		printf("intact: the audit chain \"%s\" in %s has no records yet\n", chain, where);
		return 0;
	}
	sg_chain_time(w->last_ts_us, when);
	printf("intact: %lld records of the audit chain \"%s\" in %s check out; the newest is "
	       "#%lld (%s)\n",
	       (long long)w->n, chain, where, (long long)w->last_id, when);
	return 0;
}

static int
verify_store(const struct audit_opts *o)
{
	const char *dir = sg_cli_data_dir(o->data);
	struct sg_chain_walk w;
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 2;
	int rc = sg_store_chain_verify(s, o->chain, &w);
	if (rc != 0) {
		sg_cli_fail("cannot read the audit in %s: %s; nothing was checked", dir,
		            sg_store_last_error(s));
		sg_store_close(s);
		return 2;
	}
	sg_store_close(s);
	return report(&w, o->chain, dir);
}

/* ---- export ---- */

static json_t *
hex_value(const void *p, size_t len, const char *type)
{
	char *hex = malloc(2 * len + 1);
	if (hex == NULL)
		return NULL;
	sodium_bin2hex(hex, 2 * len + 1, p, len);
	json_t *j = json_pack("{s:s, s:s}", "hex", hex, "type", type);
	free(hex);
	return j;
}

/* A stored value as JSON that reads back to the same type and bytes (docs/audit.md). */
static json_t *
value_json(const struct sg_chain_val *v)
{
	json_t *j;
	switch (v->type) {
	case SG_CV_INT:
		return json_integer(v->i);
	case SG_CV_REAL:
		/* jansson prints 17 digits, which reads back to the same bits; it refuses inf. */
		if ((j = json_real(v->r)) != NULL)
			return j;
		return hex_value(&v->r, sizeof(v->r), "real");
	case SG_CV_TEXT:
		/* Text that is not UTF-8, or holds a NUL, cannot be a JSON string as it is. */
		if (memchr(v->p, 0, v->len) == NULL && (j = json_stringn(v->p, v->len)) != NULL)
			return j;
		return hex_value(v->p, v->len, "text");
	case SG_CV_BLOB:
		return hex_value(v->p, v->len, "blob");
	default:
		return json_null();
	}
}

static json_t *
hash_json(const uint8_t *h)
{
	char hex[2 * SG_CHAIN_HASH_LEN + 1];
	if (h == NULL)
		return json_null();
	sodium_bin2hex(hex, sizeof(hex), h, SG_CHAIN_HASH_LEN);
	return json_string(hex);
}

struct export_ctx {
	FILE *tmp;
	int64_t n, first_id, last_id;
	uint8_t anchor[SG_CHAIN_HASH_LEN], last[SG_CHAIN_HASH_LEN];
	bool failed;
};

static int
export_row(void *arg, const struct sg_chain_val *cols, const uint8_t *prev, const uint8_t *hash)
{
	struct export_ctx *x = arg;
	json_t *o = json_pack("{s:s}", "type", "record");
	for (int i = 0; o && i < SG_CHAIN_NCOLS; i++)
		if (json_object_set_new(o, sg_chain_columns[i], value_json(&cols[i])) != 0)
			x->failed = true;
	if (o == NULL || json_object_set_new(o, "prev", hash_json(prev)) != 0 ||
	    json_object_set_new(o, "hash", hash_json(hash)) != 0 ||
	    json_dumpf(o, x->tmp, JSON_COMPACT) != 0 || fputc('\n', x->tmp) == EOF)
		x->failed = true;
	json_decref(o);
	if (x->n == 0) {
		x->first_id = cols[SG_CHAIN_COL_ID].i;
		memset(x->anchor, 0, sizeof(x->anchor));
		if (prev)
			memcpy(x->anchor, prev, SG_CHAIN_HASH_LEN);
	}
	memset(x->last, 0, sizeof(x->last));
	if (hash)
		memcpy(x->last, hash, SG_CHAIN_HASH_LEN);
	x->last_id = cols[SG_CHAIN_COL_ID].i;
	x->n++;
	return x->failed ? -1 : 0;
}

static int
put_line(FILE *out, json_t *o)
{
	int rc = o && json_dumpf(o, out, JSON_COMPACT) == 0 && fputc('\n', out) != EOF ? 0 : -1;
	json_decref(o);
	return rc;
}

static int
write_export(FILE *out, const struct audit_opts *o, int64_t since, int64_t until,
             struct export_ctx *x)
{
	char a[SG_CHAIN_TIME_LEN], b[SG_CHAIN_TIME_LEN], at[SG_CHAIN_TIME_LEN];
	char buf[65536];
	size_t n;
	sg_chain_time(since, a);
	sg_chain_time(until, b);
	sg_chain_time(now_us(), at);
	/* The first line says what the export covers; its anchor is the first record's prev. */
	json_t *head = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "type", "export", "format",
	    EXPORT_FORMAT, "chain", o->chain, "since", a, "until", b, "exported_at", at, "count",
	    (json_int_t)x->n, "first_id", (json_int_t)x->first_id, "last_id",
	    (json_int_t)x->last_id, "anchor", x->n ? hash_json(x->anchor) : json_null());
	if (put_line(out, head) != 0)
		return -1;
	rewind(x->tmp);
	while ((n = fread(buf, 1, sizeof(buf), x->tmp)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			return -1;
	/* The last line: a cut-off export lacks it, and its count and hash must agree. */
	json_t *end =
	    json_pack("{s:s, s:I, s:I, s:o}", "type", "end", "count", (json_int_t)x->n, "last_id",
	              (json_int_t)x->last_id, "last_hash", x->n ? hash_json(x->last) : json_null());
	return put_line(out, end);
}

static FILE *
open_out(const char *path)
{
	if (path == NULL || strcmp(path, "-") == 0)
		return stdout;
	/* Owner-only: the audit names users and what they did. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL && fd >= 0)
		close(fd);
	return f;
}

static int
export_to(const struct audit_opts *o, struct export_ctx *x, int64_t since, int64_t until)
{
	FILE *out = open_out(o->out);
	if (out == NULL)
		return sg_cli_fail("cannot write %s: %s", o->out, strerror(errno)), 2;
	int rc = write_export(out, o, since, until, x);
	if (out != stdout)
		rc = fclose(out) != 0 ? -1 : rc;
	else if (fflush(out) != 0)
		rc = -1;
	if (rc != 0)
		return sg_cli_fail("cannot write the export to %s: %s", o->out ? o->out : "stdout",
		                   strerror(errno)),
		       2;
	if (o->out && strcmp(o->out, "-") != 0)
		fprintf(stderr, "sandgate: exported %lld records (#%lld to #%lld) to %s\n",
		        (long long)x->n, (long long)x->first_id, (long long)x->last_id, o->out);
	return 0;
}

static int
export_cmd(const struct audit_opts *o)
{
	int64_t since, until = INT64_MAX;
	struct export_ctx x = {0};
	if (o->since == NULL)
		return sg_cli_fail("audit export needs --since T (such as 7d or "
		                   "2026-12-01T00:00:00Z)"),
		       2;
	if (parse_when("--since", o->since, &since) != 0 ||
	    (o->until && parse_when("--until", o->until, &until) != 0))
		return 2;
	if (until == INT64_MAX)
		until = now_us();
	const char *dir = sg_cli_data_dir(o->data);
	struct sg_store *s = sg_cli_open_store(dir);
	if (s == NULL)
		return 2;
	if ((x.tmp = tmpfile()) == NULL) {
		sg_store_close(s);
		return sg_cli_fail("cannot make a temporary file: %s", strerror(errno)), 2;
	}
	int rc = sg_store_chain_each(s, o->chain, since, until, export_row, &x);
	if (rc != 0 || x.failed) {
		sg_cli_fail("cannot read the audit in %s: %s; nothing was exported", dir,
		            x.failed ? "out of memory or disk" : sg_store_last_error(s));
		rc = 2;
	} else {
		rc = export_to(o, &x, since, until);
	}
	fclose(x.tmp);
	sg_store_close(s);
	return rc;
}

/* ---- verify, offline ---- */

/* Values taken from one JSON line; the bytes live in `keep` until the next line. */
struct line_vals {
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	uint8_t prev[SG_CHAIN_HASH_LEN], hash[SG_CHAIN_HASH_LEN];
	bool has_prev, has_hash;
	void *keep[SG_CHAIN_NCOLS];
};

static int
unhex(const char *hex, void *out, size_t cap, size_t *len)
{
	return hex && sodium_hex2bin(out, cap, hex, strlen(hex), NULL, len, NULL) == 0 &&
	               (hex[2 * *len] == '\0')
	           ? 0
	           : -1;
}

static int
value_from(json_t *j, struct sg_chain_val *v, void **keep)
{
	memset(v, 0, sizeof(*v));
	if (json_is_null(j))
		return 0;
	if (json_is_integer(j)) {
		*v = (struct sg_chain_val){.type = SG_CV_INT, .i = json_integer_value(j)};
		return 0;
	}
	if (json_is_real(j)) {
		*v = (struct sg_chain_val){.type = SG_CV_REAL, .r = json_real_value(j)};
		return 0;
	}
	if (json_is_string(j)) {
		*v = (struct sg_chain_val){
		    .type = SG_CV_TEXT, .p = json_string_value(j), .len = json_string_length(j)};
		return 0;
	}
	const char *hex = json_string_value(json_object_get(j, "hex"));
	const char *type = json_string_value(json_object_get(j, "type"));
	if (hex == NULL || type == NULL || (*keep = malloc(strlen(hex) / 2 + 1)) == NULL)
		return -1;
	if (unhex(hex, *keep, strlen(hex) / 2 + 1, &v->len) != 0)
		return -1;
	v->p = *keep;
	if (strcmp(type, "text") == 0)
		v->type = SG_CV_TEXT;
	else if (strcmp(type, "blob") == 0)
		v->type = SG_CV_BLOB;
	else if (strcmp(type, "real") == 0 && v->len == sizeof(double)) {
		v->type = SG_CV_REAL;
		memcpy(&v->r, *keep, sizeof(v->r));
	} else
		return -1;
	return 0;
}

static void
line_free(struct line_vals *l)
{
	for (int i = 0; i < SG_CHAIN_NCOLS; i++) {
		free(l->keep[i]);
		l->keep[i] = NULL;
	}
}

static int
line_vals(json_t *rec, struct line_vals *l)
{
	size_t n;
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < SG_CHAIN_NCOLS; i++) {
		json_t *j = json_object_get(rec, sg_chain_columns[i]);
		if (j == NULL || value_from(j, &l->cols[i], &l->keep[i]) != 0)
			return -1;
	}
	l->has_prev = unhex(json_string_value(json_object_get(rec, "prev")), l->prev,
	                    sizeof(l->prev), &n) == 0 &&
	              n == SG_CHAIN_HASH_LEN;
	l->has_hash = unhex(json_string_value(json_object_get(rec, "hash")), l->hash,
	                    sizeof(l->hash), &n) == 0 &&
	              n == SG_CHAIN_HASH_LEN;
	return 0;
}

struct file_walk {
	const char *path;
	struct sg_chain_walk w;
	bool started, ended;
	int64_t line;
	int64_t want_count;
	char chain[128];
};

static void
fail_line(struct file_walk *f, const char *what)
{
	sg_chain_walk_fail(&f->w, f->w.last_id + 1, f->w.last_ts_us,
	                   "line %lld of %s %s (after record #%lld)", (long long)f->line, f->path,
	                   what, (long long)f->w.last_id);
}

static void
take_header(struct file_walk *f, json_t *o, const struct audit_opts *opt)
{
	const char *format = json_string_value(json_object_get(o, "format"));
	const char *chain = json_string_value(json_object_get(o, "chain"));
	if (format == NULL || strcmp(format, EXPORT_FORMAT) != 0 || chain == NULL) {
		fail_line(f, "is not the header of a sandgate audit export (" EXPORT_FORMAT ")");
		return;
	}
	snprintf(f->chain, sizeof(f->chain), "%s", chain);
	if (strcmp(chain, opt->chain) != 0 && strcmp(opt->chain, SG_CHAIN_MAIN) != 0)
		fail_line(f, "holds another chain than the one asked for");
	f->want_count = json_integer_value(json_object_get(o, "count"));
	f->started = true;
}

static void
take_record(struct file_walk *f, json_t *o)
{
	struct line_vals l;
	char msg[160];
	if (line_vals(o, &l) != 0) {
		line_free(&l);
		fail_line(f, "is a record with a missing or malformed column: it was edited");
		return;
	}
	/* The anchor is the first record's own prev: the export proves its run, not the past. */
	if (f->w.n == 0 && l.has_prev)
		memcpy(f->w.expect, l.prev, SG_CHAIN_HASH_LEN);
	const char *chain =
	    l.cols[SG_CHAIN_COL_CHAIN].type == SG_CV_TEXT ? l.cols[SG_CHAIN_COL_CHAIN].p : "";
	if (strlen(f->chain) != l.cols[SG_CHAIN_COL_CHAIN].len ||
	    strncmp(chain, f->chain, l.cols[SG_CHAIN_COL_CHAIN].len) != 0) {
		snprintf(msg, sizeof(msg), "is a record of another chain than the header's");
		fail_line(f, msg);
	} else {
		sg_chain_walk_next(&f->w, l.cols, l.has_prev ? l.prev : NULL,
		                   l.has_hash ? l.hash : NULL);
	}
	line_free(&l);
}

static void
take_end(struct file_walk *f, json_t *o)
{
	uint8_t h[SG_CHAIN_HASH_LEN];
	size_t n;
	f->ended = true;
	if (json_integer_value(json_object_get(o, "count")) != f->w.n || f->want_count != f->w.n) {
		fail_line(f, "says a different number of records than the export holds: records "
		             "were added or removed");
		return;
	}
	const char *last = json_string_value(json_object_get(o, "last_hash"));
	if (f->w.n > 0 && (unhex(last, h, sizeof(h), &n) != 0 || n != SG_CHAIN_HASH_LEN ||
	                   sodium_memcmp(h, f->w.expect, SG_CHAIN_HASH_LEN) != 0))
		fail_line(f, "names a different last record than the export ends with");
}

static void
take_line(struct file_walk *f, const char *text, const struct audit_opts *opt)
{
	json_error_t e;
	json_t *o = json_loads(text, JSON_ALLOW_NUL, &e);
	const char *type = json_string_value(json_object_get(o, "type"));
	if (type == NULL)
		fail_line(f, "is not a JSON line of an audit export");
	else if (f->ended)
		fail_line(f, "follows the export's last line");
	else if (!f->started && strcmp(type, "export") != 0)
		fail_line(f, "should be the export's header: the start of the file was cut off");
	else if (!f->started)
		take_header(f, o, opt);
	else if (strcmp(type, "record") == 0)
		take_record(f, o);
	else if (strcmp(type, "end") == 0)
		take_end(f, o);
	else
		fail_line(f, "is of an unknown type");
	json_decref(o);
}

static int
verify_file(const struct audit_opts *o)
{
	static const uint8_t zero[SG_CHAIN_HASH_LEN];
	struct file_walk f = {.path = o->file};
	FILE *in = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
	char *text = NULL;
	size_t cap = 0;
	ssize_t len;
	if (in == NULL)
		return sg_cli_fail("cannot read %s: %s", o->file, strerror(errno)), 2;
	sg_chain_walk_begin(&f.w, zero);
	while (!f.w.bad && (len = getline(&text, &cap, in)) >= 0) {
		f.line++;
		if (len > 0 && text[len - 1] == '\n')
			text[len - 1] = '\0';
		take_line(&f, text, o);
	}
	free(text);
	if (in != stdin)
		fclose(in);
	if (!f.w.bad && !f.ended) {
		f.line++;
		fail_line(&f, f.started
		                  ? "is missing: the export's last line is gone, so it was cut "
		                    "off"
		                  : "is missing: the file is empty");
	}
	return report(&f.w, f.chain[0] ? f.chain : o->chain, o->file);
}

int
sg_cli_audit(int argc, char **argv)
{
	struct audit_opts o;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(audit_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "query") == 0)
		return sg_cli_audit_query(argc - 1, argv + 1);
	if (strcmp(sub, "verify") != 0 && strcmp(sub, "export") != 0) {
		sg_cli_fail("unknown audit command \"%s\"; see 'sandgate audit --help'", sub);
		return 2;
	}
	int rc = parse_opts(argc - 1, argv + 1, &o);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (strcmp(sub, "export") == 0)
		return export_cmd(&o);
	return o.file ? verify_file(&o) : verify_store(&o);
}
