/*
 * Audit queries for admins: "what did this user do this week", "who was
 * refused by DLP".  Newest first, paged by key (the last row's time and
 * id), never by OFFSET: a page deep in the past costs what the first one
 * does, and rows written meanwhile neither repeat nor go missing.
 *
 * The SQL is put together from fixed pieces for the filters present; every
 * value is bound, never spliced.  Migration 11 gives each filter an index
 * ending in ts_us, so a page reads about `limit` index entries.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/sg_fmt.h"
#include "store/sg_store_db.h"

#define CURSOR_VERSION 1
#define CURSOR_MAC_LEN 16
#define CURSOR_BIN_LEN (1 + 8 + 8 + CURSOR_MAC_LEN)

static const char select_sql[] =
    "SELECT id, ts_us, trace_id, key_id, tenant, user, role, mode, connector, operation,"
    " decision, status, code, reason, latency_us, cost, session_id, queue_wait_us,"
    " served_by, upstream, dlp FROM decisions WHERE 1";

/* ---- filter values from text (the CLI's flags, the HTTP query) ---- */

static int say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A name as the audit stores it: printable, no spaces, shorter than the field. */
static int
set_name(char *dst, size_t cap, const char *name, const char *v, const char *example, char *err,
         size_t errlen)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n < cap;
	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)v[i] > 0x20 && v[i] != 0x7f;
	if (!ok)
		return say(err, errlen,
		           "%s must be a name of 1 to %zu characters without spaces or control "
		           "characters, e.g. %s=%s",
		           name, cap - 1, name, example);
	memcpy(dst, v, n + 1);
	return 0;
}

static int
set_decision(struct sg_audit_filter *f, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"allowed",         "denied",    "throttled", "invalid",
	                                    "unauthenticated", "not_found", "error"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(v, names[i]) == 0) {
			snprintf(f->decision, sizeof(f->decision), "%s", v);
			return 0;
		}
	return say(err, errlen,
	           "decision must be one of allowed, denied, throttled, invalid, unauthenticated, "
	           "not_found, error, e.g. decision=denied");
}

static int
set_code(struct sg_audit_filter *f, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n == 0 || n >= sizeof(f->code) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return say(err, errlen,
		           "code must be a problem code (lower case letters, digits and '_'), e.g. "
		           "code=dlp_blocked");
	memcpy(f->code, v, n + 1);
	return 0;
}

static int
set_trace(struct sg_audit_filter *f, const char *v, char *err, size_t errlen)
{
	if (strlen(v) != 32 || strspn(v, "0123456789abcdef") != 32)
		return say(err, errlen,
		           "trace must be a trace id of 32 lower-case hex digits, e.g. "
		           "trace=4bf92f3577b34da6a3ce929d0e0e4736");
	memcpy(f->trace_id, v, 33);
	return 0;
}

static int
set_limit(struct sg_audit_filter *f, const char *v, char *err, size_t errlen)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || !isdigit((unsigned char)*v) || n < 1 ||
	    n > SG_AUDIT_LIMIT_MAX)
		return say(err, errlen, "limit must be a whole number from 1 to %d, e.g. limit=%d",
		           SG_AUDIT_LIMIT_MAX, SG_AUDIT_LIMIT_DEFAULT);
	f->limit = (int)n;
	return 0;
}

static int
set_cursor(struct sg_audit_filter *f, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n == 0 || n >= sizeof(f->cursor) ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != n)
		return say(
		    err, errlen,
		    "cursor must be a next_cursor value from an earlier page, as it was given");
	memcpy(f->cursor, v, n + 1);
	return 0;
}

/* "7d", "24h", "30m", "90s", "2w": that long before now. */
static int
parse_age(const char *v, int64_t now_us, int64_t *out)
{
	char *end;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	long long n = strtoll(v, &end, 10);
	int64_t unit;
	switch (end[0]) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	default:
		return -1;
	}
	/* A century is more than any audit holds, and keeps the product in range. */
	if (end[1] != '\0' || n < 0 || n > 100LL * 366 * 86400 / unit)
		return -1;
	*out = now_us - (int64_t)n * unit * 1000000;
	return 0;
}

static int
parse_offset(const char *p, int *off_s)
{
	int hh, mm;
	if (p[0] == 'Z' || p[0] == 'z') {
		*off_s = 0;
		return p[1] == '\0' ? 0 : -1;
	}
	if ((p[0] != '+' && p[0] != '-') || strlen(p) != 6 || p[3] != ':' ||
	    sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
		return -1;
	*off_s = (p[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	return 0;
}

/* RFC 3339 ("2026-12-01T08:00:00Z", "...+02:00", fractions kept to the µs) or a bare date. */
static int
parse_rfc3339(const char *v, int64_t *out)
{
	struct tm tm = {0};
	int n = 0, off_s = 0;
	int64_t frac_us = 0;
	if (sscanf(v, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return -1;
	const char *p = v + n;
	if (*p != '\0') {
		int m = 0;
		if ((*p != 'T' && *p != 't') ||
		    sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 ||
		    m != 8)
			return -1;
		p += 1 + m;
		if (*p == '.') {
			int digits = 0;
			for (p++; isdigit((unsigned char)*p); p++, digits++)
				if (digits < 6)
					frac_us = frac_us * 10 + (*p - '0');
			if (digits == 0)
				return -1;
			for (; digits < 6; digits++)
				frac_us *= 10;
		}
		if (parse_offset(p, &off_s) != 0)
			return -1;
	}
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
		return -1;
	int mday = tm.tm_mday;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != mday) /* timegm moved 31 February on: refuse it */
		return -1;
	*out = ((int64_t)t - off_s) * 1000000 + frac_us;
	return 0;
}

int
sg_audit_time_parse(const char *v, int64_t now_us, int64_t *out)
{
	return parse_age(v, now_us, out) == 0 || parse_rfc3339(v, out) == 0 ? 0 : -1;
}

static int
set_time(int64_t *dst, const char *name, const char *v, int64_t now_us, char *err, size_t errlen)
{
	if (sg_audit_time_parse(v, now_us, dst) == 0)
		return 0;
	return say(err, errlen,
	           "%s must be an RFC 3339 time or an age, e.g. %s=2026-12-01T00:00:00Z or "
	           "%s=7d (also 24h, 30m, 2w)",
	           name, name, name);
}

int
sg_audit_filter_set(struct sg_audit_filter *f, const char *name, const char *value, int64_t now_us,
                    char *err, size_t errlen)
{
	if (strcmp(name, "tenant") == 0)
		return set_name(f->tenant, sizeof(f->tenant), name, value, "acme", err, errlen);
	if (strcmp(name, "user") == 0)
		return set_name(f->user, sizeof(f->user), name, value, "alice", err, errlen);
	if (strcmp(name, "connector") == 0)
		return set_name(f->connector, sizeof(f->connector), name, value, "crm", err,
		                errlen);
	if (strcmp(name, "decision") == 0)
		return set_decision(f, value, err, errlen);
	if (strcmp(name, "code") == 0)
		return set_code(f, value, err, errlen);
	if (strcmp(name, "trace") == 0)
		return set_trace(f, value, err, errlen);
	if (strcmp(name, "since") == 0)
		return set_time(&f->since_us, name, value, now_us, err, errlen);
	if (strcmp(name, "until") == 0)
		return set_time(&f->until_us, name, value, now_us, err, errlen);
	if (strcmp(name, "limit") == 0)
		return set_limit(f, value, err, errlen);
	if (strcmp(name, "cursor") == 0)
		return set_cursor(f, value, err, errlen);
	say(err, errlen,
	    "unknown parameter \"%.40s\"; the filters are tenant, user, connector, decision, "
	    "code, since, until, trace, limit and cursor",
	    name);
	return -2;
}

/* ---- rows as JSON (the CLI's --json, GET /admin/v1/audit) ---- */

json_t *
sg_audit_row_json(const struct sg_audit_row *row)
{
	const struct sg_decision *d = &row->d;
	char when[SG_UTC_LEN];
	sg_fmt_utc(d->ts_us / 1000000, when);
	json_t *o = json_pack(
	    "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:f}",
	    "id", (json_int_t)row->id, "time", when, "ts_us", (json_int_t)d->ts_us, "trace_id",
	    d->trace_id, "key_id", d->key_id, "tenant", d->tenant, "user", d->user, "role", d->role,
	    "mode", d->mode, "connector", d->connector, "operation", d->operation, "status",
	    d->status, "decision", d->decision, "code", d->code, "latency_us",
	    (json_int_t)d->latency_us, "cost", d->cost);
	if (o && d->reason[0])
		json_object_set_new(o, "reason", json_string(d->reason));
	if (o && d->session_id[0])
		json_object_set_new(o, "session_id", json_string(d->session_id));
	/* Stored as JSON text by the recorder: shown as JSON, not as a string of it. */
	if (o && d->dlp[0])
		json_object_set_new(o, "dlp", json_loads(d->dlp, 0, NULL));
	if (o && d->upstream[0])
		json_object_set_new(o, "upstream", json_loads(d->upstream, 0, NULL));
	if (o && d->served_by[0])
		json_object_set_new(o, "served_by", json_string(d->served_by));
	return o;
}

/* ---- cursors ---- */

static void
put_i64(uint8_t *p, int64_t v)
{
	for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
		p[i] = (uint8_t)(v & 0xff);
}

static int64_t
get_i64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void
mac_name(crypto_generichash_state *h, const char *s)
{
	uint8_t n = (uint8_t)strlen(s); /* every name is shorter than 64 */
	crypto_generichash_update(h, &n, 1);
	crypto_generichash_update(h, (const uint8_t *)s, n);
}

/*
 * The cursor's MAC covers its position and the filter's names, so a cursor
 * works only with the query that made it.  Times are left out: "since=7d"
 * means a later instant on the next page, and must still page on.
 */
static void
cursor_mac(const struct sg_audit_filter *f, const uint8_t key[SG_AUDIT_KEY_LEN], const uint8_t *pos,
           uint8_t mac[CURSOR_MAC_LEN])
{
	static const char label[] = "sandgate audit cursor";
	crypto_generichash_state h;
	crypto_generichash_init(&h, key, SG_AUDIT_KEY_LEN, CURSOR_MAC_LEN);
	crypto_generichash_update(&h, (const uint8_t *)label, sizeof(label));
	crypto_generichash_update(&h, pos, 1 + 8 + 8);
	mac_name(&h, f->tenant);
	mac_name(&h, f->user);
	mac_name(&h, f->connector);
	mac_name(&h, f->decision);
	mac_name(&h, f->code);
	mac_name(&h, f->trace_id);
	crypto_generichash_final(&h, mac, CURSOR_MAC_LEN);
}

static void
cursor_make(const struct sg_audit_filter *f, const uint8_t key[SG_AUDIT_KEY_LEN], int64_t ts_us,
            int64_t id, char out[SG_AUDIT_CURSOR_LEN])
{
	uint8_t bin[CURSOR_BIN_LEN];
	bin[0] = CURSOR_VERSION;
	put_i64(bin + 1, ts_us);
	put_i64(bin + 9, id);
	cursor_mac(f, key, bin, bin + 17);
	sodium_bin2base64(out, SG_AUDIT_CURSOR_LEN, bin, sizeof(bin),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static int
cursor_read(const struct sg_audit_filter *f, const uint8_t key[SG_AUDIT_KEY_LEN], int64_t *ts_us,
            int64_t *id)
{
	uint8_t bin[CURSOR_BIN_LEN + 1], mac[CURSOR_MAC_LEN];
	size_t n = 0;
	if (sodium_base642bin(bin, sizeof(bin), f->cursor, strlen(f->cursor), NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != CURSOR_BIN_LEN || bin[0] != CURSOR_VERSION)
		return -1;
	cursor_mac(f, key, bin, mac);
	if (sodium_memcmp(mac, bin + 17, CURSOR_MAC_LEN) != 0)
		return -1;
	*ts_us = get_i64(bin + 1);
	*id = get_i64(bin + 9);
	return 0;
}

/* ---- the statement ---- */

struct query {
	char sql[1024];
	bool has_cursor;
	int64_t after_ts, after_id;
};

static void
add(char *sql, size_t cap, const char *piece)
{
	size_t n = strlen(sql);
	snprintf(sql + n, cap - n, "%s", piece);
}

/* The statement's text: fixed pieces only, each value a named parameter. */
static void
build_sql(const struct sg_audit_filter *f, struct query *q, const char *prefix)
{
	snprintf(q->sql, sizeof(q->sql), "%s%s", prefix, select_sql);
	if (f->tenant[0])
		add(q->sql, sizeof(q->sql), " AND tenant = :tenant");
	if (f->user[0])
		add(q->sql, sizeof(q->sql), " AND user = :user");
	if (f->connector[0])
		add(q->sql, sizeof(q->sql), " AND connector = :connector");
	if (f->decision[0])
		add(q->sql, sizeof(q->sql), " AND decision = :decision");
	if (f->code[0])
		add(q->sql, sizeof(q->sql), " AND code = :code");
	if (f->trace_id[0])
		add(q->sql, sizeof(q->sql), " AND trace_id = :trace");
	if (f->since_us)
		add(q->sql, sizeof(q->sql), " AND ts_us >= :since");
	if (f->until_us)
		add(q->sql, sizeof(q->sql), " AND ts_us < :until");
	/* The first half bounds the index range; the second breaks ties in one microsecond. */
	if (q->has_cursor)
		add(q->sql, sizeof(q->sql),
		    " AND ts_us <= :after_ts AND (ts_us < :after_ts OR id < :after_id)");
	add(q->sql, sizeof(q->sql), " ORDER BY ts_us DESC, id DESC LIMIT :limit");
}

static void
bind_name(sqlite3_stmt *st, const char *param, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, param);
	if (i > 0)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static void
bind_i64(sqlite3_stmt *st, const char *param, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, param);
	if (i > 0)
		sqlite3_bind_int64(st, i, v);
}

static int
page_size(const struct sg_audit_filter *f)
{
	return f->limit > 0 && f->limit <= SG_AUDIT_LIMIT_MAX ? f->limit : SG_AUDIT_LIMIT_DEFAULT;
}

static sqlite3_stmt *
prepare(struct sg_store *s, const struct sg_audit_filter *f, const struct query *q)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sg_store_db(s), q->sql, -1, &st, NULL) != SQLITE_OK) {
		sg_store_remember_error(s);
		return NULL;
	}
	bind_name(st, ":tenant", f->tenant);
	bind_name(st, ":user", f->user);
	bind_name(st, ":connector", f->connector);
	bind_name(st, ":decision", f->decision);
	bind_name(st, ":code", f->code);
	bind_name(st, ":trace", f->trace_id);
	bind_i64(st, ":since", f->since_us);
	bind_i64(st, ":until", f->until_us);
	bind_i64(st, ":after_ts", q->after_ts);
	bind_i64(st, ":after_id", q->after_id);
	/* One row more than the page: whether it exists says if there is a next page. */
	bind_i64(st, ":limit", page_size(f) + 1);
	return st;
}

static void
col(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	snprintf(dst, cap, "%s", v ? v : "");
}

#define COL(st, i, row, f) col((row)->d.f, sizeof((row)->d.f), st, i)

static void
read_row(sqlite3_stmt *st, struct sg_audit_row *row)
{
	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->d.ts_us = sqlite3_column_int64(st, 1);
	COL(st, 2, row, trace_id);
	COL(st, 3, row, key_id);
	COL(st, 4, row, tenant);
	COL(st, 5, row, user);
	COL(st, 6, row, role);
	COL(st, 7, row, mode);
	COL(st, 8, row, connector);
	COL(st, 9, row, operation);
	COL(st, 10, row, decision);
	row->d.status = sqlite3_column_int(st, 11);
	COL(st, 12, row, code);
	COL(st, 13, row, reason);
	row->d.latency_us = sqlite3_column_int64(st, 14);
	row->d.cost = sqlite3_column_double(st, 15);
	COL(st, 16, row, session_id);
	row->d.queue_wait_us = sqlite3_column_int64(st, 17);
	COL(st, 18, row, served_by);
	COL(st, 19, row, upstream);
	COL(st, 20, row, dlp);
}

/* Steps through the page; the row past it only makes the next cursor. */
static int
walk(sqlite3_stmt *st, const struct sg_audit_filter *f, const uint8_t *key,
     int (*fn)(void *, const struct sg_audit_row *), void *arg, char *next_cursor)
{
	struct sg_audit_row *row = malloc(sizeof(*row));
	int n = 0, rc, limit = page_size(f);
	int64_t last_ts = 0, last_id = 0;
	if (row == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			cursor_make(f, key, last_ts, last_id, next_cursor);
			break;
		}
		read_row(st, row);
		last_ts = row->d.ts_us;
		last_id = row->id;
		n++;
		int got = fn(arg, row);
		if (got != 0) {
			free(row);
			return got;
		}
	}
	free(row);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
sg_store_audit_query(struct sg_store *s, const struct sg_audit_filter *f,
                     const uint8_t key[SG_AUDIT_KEY_LEN],
                     int (*fn)(void *arg, const struct sg_audit_row *row), void *arg,
                     char next_cursor[SG_AUDIT_CURSOR_LEN], char *err, size_t errlen)
{
	struct query q = {.has_cursor = f->cursor[0] != '\0'};
	next_cursor[0] = '\0';
	if (q.has_cursor && cursor_read(f, key, &q.after_ts, &q.after_id) != 0) {
		say(err, errlen,
		    "cursor is not one this gateway gave for these filters (it was changed, or "
		    "the filters differ from the first page's); start again without a cursor");
		return 1;
	}
	build_sql(f, &q, "");
	sqlite3_stmt *st = prepare(s, f, &q);
	if (st == NULL)
		return -1;
	int rc = walk(st, f, key, fn, arg, next_cursor);
	if (rc == -1)
		sg_store_remember_error(s);
	sqlite3_finalize(st);
	return rc;
}

int
sg_store_audit_read_only(struct sg_store *s)
{
	return sqlite3_exec(sg_store_db(s), "PRAGMA query_only = ON", NULL, NULL, NULL) == SQLITE_OK
	           ? 0
	           : -1;
}

int
sg_store_audit_plan(struct sg_store *s, const struct sg_audit_filter *f, char *out, size_t outlen)
{
	struct query q = {.has_cursor = f->cursor[0] != '\0', .after_ts = 1, .after_id = 1};
	build_sql(f, &q, "EXPLAIN QUERY PLAN ");
	sqlite3_stmt *st = prepare(s, f, &q);
	if (st == NULL)
		return -1;
	out[0] = '\0';
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		add(out, outlen, d ? d : "");
		add(out, outlen, "\n");
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
