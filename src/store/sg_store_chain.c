/*
 * The audit chain: each decisions row carries the hash of the row before it
 * on its chain, and its own hash covers that and every column, so an edit,
 * a deletion or a reordering shows as the first record whose hash or link
 * is wrong.  The encoding is written down in docs/audit.md; changing it, or
 * the columns it covers, needs a new tag, never an edit of this one.
 *
 * The writer's path (one head read per batch) lives in sg_store.c; here are
 * the encoding, the walk, and the cold paths: verify, export, retention and
 * the migration that chains rows recorded before the chain existed.
 * Statements are prepared per call: these run once per command or per hour.
 */
#include "store/sg_store.h"
#include "store/sg_store_db.h"

#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const sg_chain_columns[SG_CHAIN_NCOLS] = {
    "id",     "chain",      "ts_us",     "trace_id",   "key_id",        "tenant",    "user",
    "role",   "mode",       "connector", "operation",  "decision",      "status",    "code",
    "reason", "latency_us", "cost",      "session_id", "queue_wait_us", "served_by", "upstream",
    "dlp",
};

/* The encoding's tag: a new encoding gets a new tag, so old and new never collide. */
static const char chain_tag[8] = {'s', 'g', 'a', 'u', 'd', 'i', 't', '1'};

/* Bytes staged before a hash update: one update per row for every row the writer makes. */
struct enc {
	crypto_generichash_state st;
	uint8_t buf[1024];
	size_t len;
};

static void
enc_put(struct enc *e, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		if (e->len == sizeof(e->buf)) {
			crypto_generichash_update(&e->st, e->buf, e->len);
			e->len = 0;
		}
		size_t k = sizeof(e->buf) - e->len < n ? sizeof(e->buf) - e->len : n;
		memcpy(e->buf + e->len, b, k);
		e->len += k;
		b += k;
		n -= k;
	}
}

static void
enc_u64(struct enc *e, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	enc_put(e, b, 8);
}

static void
enc_u32(struct enc *e, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	enc_put(e, b, 4);
}

static void
enc_val(struct enc *e, const struct sg_chain_val *v)
{
	uint8_t tag = (uint8_t)v->type;
	enc_put(e, &tag, 1);
	switch (v->type) {
	case SG_CV_NULL:
		break;
	case SG_CV_INT:
		enc_u64(e, (uint64_t)v->i);
		break;
	case SG_CV_REAL: {
		uint64_t bits;
		memcpy(&bits, &v->r, sizeof(bits));
		enc_u64(e, bits);
		break;
	}
	case SG_CV_TEXT:
	case SG_CV_BLOB:
		/* SQLite caps a value below 2^31 bytes, so 32 bits always hold the length. */
		enc_u32(e, (uint32_t)v->len);
		enc_put(e, v->p, v->len);
		break;
	}
}

void
sg_chain_hash(const uint8_t prev[SG_CHAIN_HASH_LEN], const struct sg_chain_val *cols,
              uint8_t out[SG_CHAIN_HASH_LEN])
{
	struct enc e;
	crypto_generichash_init(&e.st, NULL, 0, SG_CHAIN_HASH_LEN);
	e.len = 0;
	enc_put(&e, prev, SG_CHAIN_HASH_LEN);
	enc_put(&e, chain_tag, sizeof(chain_tag));
	enc_u32(&e, SG_CHAIN_NCOLS);
	for (int i = 0; i < SG_CHAIN_NCOLS; i++)
		enc_val(&e, &cols[i]);
	crypto_generichash_update(&e.st, e.buf, e.len);
	crypto_generichash_final(&e.st, out, SG_CHAIN_HASH_LEN);
}

static struct sg_chain_val
cv_int(int64_t i)
{
	return (struct sg_chain_val){.type = SG_CV_INT, .i = i};
}

/* Text as sg_store.c binds it: bounded by the array, empty as NULL unless `keep_empty`. */
static struct sg_chain_val
cv_field(const char *v, size_t cap, bool keep_empty)
{
	size_t len = strnlen(v, cap);
	if (len == 0 && !keep_empty)
		return (struct sg_chain_val){.type = SG_CV_NULL};
	return (struct sg_chain_val){.type = SG_CV_TEXT, .p = v, .len = len};
}

#define CV(d, f) cv_field((d)->f, sizeof((d)->f), false)

void
sg_chain_from_decision(const struct sg_decision *d, int64_t id, const char *chain,
                       struct sg_chain_val c[SG_CHAIN_NCOLS])
{
	c[0] = cv_int(id);
	c[1] = (struct sg_chain_val){.type = SG_CV_TEXT, .p = chain, .len = strlen(chain)};
	c[2] = cv_int(d->ts_us);
	c[3] = CV(d, trace_id);
	c[4] = CV(d, key_id);
	c[5] = CV(d, tenant);
	c[6] = CV(d, user);
	c[7] = CV(d, role);
	c[8] = CV(d, mode);
	c[9] = CV(d, connector);
	c[10] = CV(d, operation);
	c[11] = cv_field(d->decision, sizeof(d->decision), true);
	c[12] = cv_int(d->status);
	c[13] = CV(d, code);
	c[14] = CV(d, reason);
	c[15] = cv_int(d->latency_us);
	/* SQLite stores NaN as NULL and -0.0 as 0: hash what will be read back. */
	if (isnan(d->cost))
		c[16] = (struct sg_chain_val){.type = SG_CV_NULL};
	else
		c[16] =
		    (struct sg_chain_val){.type = SG_CV_REAL, .r = d->cost == 0 ? 0.0 : d->cost};
	c[17] = CV(d, session_id);
	c[18] = cv_int(d->queue_wait_us);
	c[19] = CV(d, served_by);
	c[20] = CV(d, upstream);
	c[21] = CV(d, dlp);
}

/* ---- the walk ---- */

void
sg_chain_time(int64_t ts_us, char out[SG_CHAIN_TIME_LEN])
{
	time_t s = (time_t)(ts_us >= 0 ? ts_us / 1000000 : (ts_us - 999999) / 1000000);
	long us = (long)(ts_us - (int64_t)s * 1000000);
	struct tm tm;
	if (gmtime_r(&s, &tm) == NULL) {
		snprintf(out, 40, "time %lld", (long long)ts_us);
		return;
	}
	char day[24];
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%06ldZ", day, us);
}

void
sg_chain_walk_begin(struct sg_chain_walk *w, const uint8_t anchor[SG_CHAIN_HASH_LEN])
{
	memset(w, 0, sizeof(*w));
	memcpy(w->expect, anchor, SG_CHAIN_HASH_LEN);
}

void
sg_chain_walk_fail(struct sg_chain_walk *w, int64_t id, int64_t ts_us, const char *fmt, ...)
{
	va_list ap;
	if (w->bad)
		return; /* the first fault is the one to report */
	w->bad = true;
	w->bad_id = id;
	w->bad_ts_us = ts_us;
	va_start(ap, fmt);
	vsnprintf(w->what, sizeof(w->what), fmt, ap);
	va_end(ap);
}

static int64_t
col_int(const struct sg_chain_val *v)
{
	return v->type == SG_CV_INT ? v->i : 0;
}

/* Why a record's link is wrong, told from what is around it. */
static void
fail_link(struct sg_chain_walk *w, int64_t id, int64_t ts, const char *when)
{
	if (w->n == 0)
		sg_chain_walk_fail(
		    w, id, ts,
		    "record #%lld (%s) is the oldest here, but it does not follow the "
		    "start of the chain or the last retention checkpoint: older records "
		    "were deleted, or this one was moved",
		    (long long)id, when);
	else if (id == w->last_id + 2)
		sg_chain_walk_fail(
		    w, id, ts,
		    "record #%lld (%s) does not follow record #%lld: record #%lld is "
		    "missing (deleted), or records were moved",
		    (long long)id, when, (long long)w->last_id, (long long)(w->last_id + 1));
	else if (id > w->last_id + 2)
		sg_chain_walk_fail(
		    w, id, ts,
		    "record #%lld (%s) does not follow record #%lld: records #%lld to "
		    "#%lld are missing (deleted), or records were moved",
		    (long long)id, when, (long long)w->last_id, (long long)(w->last_id + 1),
		    (long long)(id - 1));
	else
		sg_chain_walk_fail(w, id, ts,
		                   "record #%lld (%s) does not follow record #%lld: records were "
		                   "swapped or moved, or one between them was deleted",
		                   (long long)id, when, (long long)w->last_id);
}

int
sg_chain_walk_next(struct sg_chain_walk *w, const struct sg_chain_val *cols, const uint8_t *prev,
                   const uint8_t *hash)
{
	int64_t id = col_int(&cols[SG_CHAIN_COL_ID]);
	int64_t ts = col_int(&cols[SG_CHAIN_COL_TS_US]);
	char when[40];
	uint8_t h[SG_CHAIN_HASH_LEN];
	if (w->bad)
		return -1;
	sg_chain_time(ts, when);
	if (prev == NULL || hash == NULL) {
		sg_chain_walk_fail(w, id, ts,
		                   "record #%lld (%s) carries no chain hash: it was written by "
		                   "something other than sandgate, or its hash was removed",
		                   (long long)id, when);
		return -1;
	}
	sg_chain_hash(prev, cols, h);
	if (sodium_memcmp(h, hash, SG_CHAIN_HASH_LEN) != 0) {
		sg_chain_walk_fail(
		    w, id, ts,
		    "record #%lld (%s) was changed after it was written: its contents "
		    "no longer match its hash",
		    (long long)id, when);
		return -1;
	}
	if (sodium_memcmp(prev, w->expect, SG_CHAIN_HASH_LEN) != 0) {
		fail_link(w, id, ts, when);
		return -1;
	}
	memcpy(w->expect, hash, SG_CHAIN_HASH_LEN);
	w->n++;
	w->last_id = id;
	w->last_ts_us = ts;
	return 0;
}

/* ---- reading rows ---- */

#define ROW_COLUMNS                                                                                \
	"id, chain, ts_us, trace_id, key_id, tenant, user, role, mode, connector, operation,"      \
	" decision, status, code, reason, latency_us, cost, session_id, queue_wait_us,"            \
	" served_by, upstream, dlp, prev_hash, hash"

static void
read_cols(sqlite3_stmt *st, struct sg_chain_val c[SG_CHAIN_NCOLS])
{
	for (int i = 0; i < SG_CHAIN_NCOLS; i++) {
		struct sg_chain_val *v = &c[i];
		memset(v, 0, sizeof(*v));
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v->type = SG_CV_INT;
			v->i = sqlite3_column_int64(st, i);
			break;
		case SQLITE_FLOAT:
			v->type = SG_CV_REAL;
			v->r = sqlite3_column_double(st, i);
			break;
		case SQLITE_TEXT:
			v->type = SG_CV_TEXT;
			v->p = sqlite3_column_text(st, i);
			v->len = (size_t)sqlite3_column_bytes(st, i);
			break;
		case SQLITE_BLOB:
			v->type = SG_CV_BLOB;
			v->p = sqlite3_column_blob(st, i);
			v->len = (size_t)sqlite3_column_bytes(st, i);
			break;
		default:
			v->type = SG_CV_NULL;
		}
	}
}

/* A stored hash, or NULL when the column holds anything but 32 bytes. */
static const uint8_t *
col_hash(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, i) != SG_CHAIN_HASH_LEN)
		return NULL;
	return sqlite3_column_blob(st, i);
}

static int
each_in_ids(sqlite3 *db, const char *chain, int64_t from, int64_t to,
            int (*fn)(void *, const struct sg_chain_val *, const uint8_t *, const uint8_t *),
            void *arg)
{
	sqlite3_stmt *st;
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	if (sqlite3_prepare_v2(db,
	                       "SELECT " ROW_COLUMNS " FROM decisions WHERE chain = ?1"
	                       " AND id BETWEEN ?2 AND ?3 ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	int rc, out = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_cols(st, cols);
		const uint8_t *prev = col_hash(st, SG_CHAIN_NCOLS);
		const uint8_t *hash = col_hash(st, SG_CHAIN_NCOLS + 1);
		if ((out = fn(arg, cols, prev, hash)) != 0)
			break;
	}
	if (out == 0 && rc != SQLITE_DONE)
		out = -1;
	sqlite3_finalize(st);
	return out;
}

/* One int64 from a query with up to three bindings; `*v` untouched when NULL. */
static int
query_i64(sqlite3 *db, const char *sql, const char *chain, int64_t a, int64_t *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
sg_store_chain_each(struct sg_store *s, const char *chain, int64_t since_us, int64_t until_us,
                    int (*fn)(void *arg, const struct sg_chain_val *cols, const uint8_t *prev,
                              const uint8_t *hash),
                    void *arg)
{
	sqlite3 *db = sg_store_db(s);
	int64_t from = INT64_MAX, to = INT64_MIN; /* none, unless both ends are found */
	/*
	 * A contiguous run of the chain, from the first record at or after
	 * `since` to the last at or before `until`: times can step back a
	 * little between threads, and a gap would break the export's links.
	 */
	if (query_i64(db, "SELECT min(id) FROM decisions WHERE chain = ?1 AND ts_us >= ?2", chain,
	              since_us, &from) != 0 ||
	    query_i64(db, "SELECT max(id) FROM decisions WHERE chain = ?1 AND ts_us <= ?2", chain,
	              until_us, &to) != 0)
		return -1;
	if (to < from)
		return 0;
	return each_in_ids(db, chain, from, to, fn, arg);
}

/* ---- the head, in meta ---- */

static void
head_keys(const char *chain, char id_key[96], char hash_key[96])
{
	snprintf(id_key, 96, "audit_head_id:%s", chain);
	snprintf(hash_key, 96, "audit_head_hash:%s", chain);
}

int
sg_store_chain_head(struct sg_store *s, const char *chain, int64_t *id,
                    uint8_t hash[SG_CHAIN_HASH_LEN])
{
	char ik[96], hk[96];
	sqlite3_stmt *st;
	head_keys(chain, ik, hk);
	*id = 0;
	memset(hash, 0, SG_CHAIN_HASH_LEN);
	if (sqlite3_prepare_v2(sg_store_db(s),
	                       "SELECT (SELECT value FROM meta WHERE key = ?1),"
	                       " (SELECT value FROM meta WHERE key = ?2)",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, ik, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hk, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	if (rc == 0) {
		*id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == SG_CHAIN_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(st, 1), SG_CHAIN_HASH_LEN);
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- verify ---- */

/*
 * The anchor: the hash the newest retention checkpoint says the last
 * pruned record had, or zeros (the chain's start) when none was pruned.
 * The checkpoint is itself a chained record, so the walk checks it later.
 */
static int
find_anchor(sqlite3 *db, const char *chain, uint8_t anchor[SG_CHAIN_HASH_LEN])
{
	sqlite3_stmt *st;
	memset(anchor, 0, SG_CHAIN_HASH_LEN);
	if (sqlite3_prepare_v2(
	        db,
	        "SELECT reason FROM decisions WHERE chain = ?1 AND decision = '" SG_CHAIN_CHECKPOINT
	        "' ORDER BY id DESC LIMIT 1",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, chain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *reason = (const char *)sqlite3_column_text(st, 0);
		json_t *j = reason ? json_loads(reason, 0, NULL) : NULL;
		const char *hex = json_string_value(json_object_get(j, "last_hash"));
		size_t n = 0;
		/* An unreadable checkpoint leaves zeros; the walk then names the fault. */
		if (hex == NULL ||
		    sodium_hex2bin(anchor, SG_CHAIN_HASH_LEN, hex, strlen(hex), NULL, &n, NULL) !=
		        0 ||
		    n != SG_CHAIN_HASH_LEN)
			memset(anchor, 0, SG_CHAIN_HASH_LEN);
		json_decref(j);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

struct verify_ctx {
	struct sg_chain_walk *w;
	int64_t head_id;
	uint8_t head_hash[SG_CHAIN_HASH_LEN];
};

static int
verify_row(void *arg, const struct sg_chain_val *cols, const uint8_t *prev, const uint8_t *hash)
{
	struct verify_ctx *v = arg;
	int64_t id = col_int(&cols[SG_CHAIN_COL_ID]);
	int64_t ts = col_int(&cols[SG_CHAIN_COL_TS_US]);
	char when[40];
	if (sg_chain_walk_next(v->w, cols, prev, hash) != 0)
		return 1;
	sg_chain_time(ts, when);
	if (id > v->head_id)
		sg_chain_walk_fail(v->w, id, ts,
		                   "record #%lld (%s) is newer than the chain head (#%lld): it was "
		                   "added behind sandgate's back, or the head was rolled back",
		                   (long long)id, when, (long long)v->head_id);
	else if (id == v->head_id && sodium_memcmp(hash, v->head_hash, SG_CHAIN_HASH_LEN) != 0)
		sg_chain_walk_fail(
		    v->w, id, ts,
		    "record #%lld (%s) is the chain head's id, but not the record the "
		    "head was written for: the newest records were replaced",
		    (long long)id, when);
	return v->w->bad ? 1 : 0;
}

static void
check_tail(struct verify_ctx *v)
{
	struct sg_chain_walk *w = v->w;
	char when[40];
	if (w->bad || w->last_id >= v->head_id)
		return;
	if (w->n == 0) {
		sg_chain_walk_fail(w, v->head_id, 0,
		                   "no records are left, but the chain head says the newest is "
		                   "#%lld: every record was deleted",
		                   (long long)v->head_id);
		return;
	}
	sg_chain_time(w->last_ts_us, when);
	sg_chain_walk_fail(w, w->last_id + 1, w->last_ts_us,
	                   "the newest records are missing, record #%lld on: the last one left is "
	                   "#%lld (%s), but the chain head says the newest is #%lld (the tail was "
	                   "cut off)",
	                   (long long)(w->last_id + 1), (long long)w->last_id, when,
	                   (long long)v->head_id);
}

int
sg_store_chain_verify(struct sg_store *s, const char *chain, struct sg_chain_walk *w)
{
	sqlite3 *db = sg_store_db(s);
	struct verify_ctx v = {.w = w};
	uint8_t anchor[SG_CHAIN_HASH_LEN];
	/* One read transaction: the head and the rows are of one moment while writers go on. */
	if (sqlite3_exec(db, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	int rc = sg_store_chain_head(s, chain, &v.head_id, v.head_hash);
	if (rc == 0)
		rc = find_anchor(db, chain, anchor);
	if (rc == 0) {
		sg_chain_walk_begin(w, anchor);
		rc = each_in_ids(db, chain, INT64_MIN, INT64_MAX, verify_row, &v);
		rc = rc < 0 ? -1 : 0;
	}
	if (rc == 0)
		check_tail(&v);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* ---- chaining rows recorded before migration 10 ---- */

#define MIGRATE_BATCH 512

struct link_row {
	int64_t id;
	uint8_t prev[SG_CHAIN_HASH_LEN], hash[SG_CHAIN_HASH_LEN];
};

static int
set_head(sqlite3 *db, const char *chain, int64_t id, const uint8_t hash[SG_CHAIN_HASH_LEN])
{
	char ik[96], hk[96];
	sqlite3_stmt *st;
	head_keys(chain, ik, hk);
	if (sqlite3_prepare_v2(db,
	                       "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?3), (?2, ?4)",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, ik, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	sqlite3_bind_blob(st, 4, hash, SG_CHAIN_HASH_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* Hashes up to MIGRATE_BATCH rows after `*after`; returns how many, -1 on error. */
static int
link_batch(sqlite3 *db, int64_t *after, uint8_t prev[SG_CHAIN_HASH_LEN], struct link_row *out)
{
	sqlite3_stmt *st;
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	int n = 0, rc;
	if (sqlite3_prepare_v2(db,
	                       "SELECT " ROW_COLUMNS " FROM decisions WHERE id > ?1 ORDER BY id"
	                       " LIMIT 512", /* MIGRATE_BATCH */
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, *after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_cols(st, cols);
		out[n].id = cols[SG_CHAIN_COL_ID].i;
		memcpy(out[n].prev, prev, SG_CHAIN_HASH_LEN);
		sg_chain_hash(prev, cols, out[n].hash);
		memcpy(prev, out[n].hash, SG_CHAIN_HASH_LEN);
		*after = out[n].id;
		n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : -1;
}

static int
store_links(sqlite3 *db, const struct link_row *rows, int n)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "UPDATE decisions SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_blob(st, 1, rows[i].prev, SG_CHAIN_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, rows[i].hash, SG_CHAIN_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, rows[i].id);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

int
sg_store_chain_link_existing(struct sg_store *s)
{
	sqlite3 *db = sg_store_db(s);
	uint8_t prev[SG_CHAIN_HASH_LEN] = {0};
	int64_t after = INT64_MIN;
	struct link_row *rows = malloc(MIGRATE_BATCH * sizeof(*rows));
	int n;
	if (rows == NULL)
		return -1;
	/* Keyset batches: the rows are read, then updated, never while a scan is open on them. */
	while ((n = link_batch(db, &after, prev, rows)) > 0)
		if (store_links(db, rows, n) != 0) {
			n = -1;
			break;
		}
	free(rows);
	if (n < 0)
		return -1;
	return after == INT64_MIN ? 0 : set_head(db, SG_CHAIN_MAIN, after, prev);
}

/* ---- retention ---- */

/*
 * The prefix of the chain to prune: rows in id order while older than
 * `before_us`, at most `max`.  Stops at the first newer one, so what is
 * left is always an unbroken suffix of the chain.
 */
static int
prune_span(sqlite3 *db, int64_t before_us, int max, int64_t *through,
           uint8_t last_hash[SG_CHAIN_HASH_LEN], int64_t *count)
{
	sqlite3_stmt *st;
	int rc;
	*count = 0;
	if (sqlite3_prepare_v2(db,
	                       "SELECT id, ts_us, hash FROM decisions WHERE chain = '" SG_CHAIN_MAIN
	                       "' ORDER BY id LIMIT ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 1) < before_us) {
		*through = sqlite3_column_int64(st, 0);
		memset(last_hash, 0, SG_CHAIN_HASH_LEN);
		if (sqlite3_column_bytes(st, 2) == SG_CHAIN_HASH_LEN)
			memcpy(last_hash, sqlite3_column_blob(st, 2), SG_CHAIN_HASH_LEN);
		(*count)++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
prune_delete(sqlite3 *db, int64_t through)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        db, "DELETE FROM decisions WHERE chain = '" SG_CHAIN_MAIN "' AND id <= ?1", -1, &st,
	        NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, through);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static void
checkpoint_decision(struct sg_decision *d, int64_t now_us, int64_t through, int64_t count,
                    const uint8_t last_hash[SG_CHAIN_HASH_LEN])
{
	char hex[2 * SG_CHAIN_HASH_LEN + 1];
	memset(d, 0, sizeof(*d));
	d->ts_us = now_us;
	snprintf(d->decision, sizeof(d->decision), "%s", SG_CHAIN_CHECKPOINT);
	snprintf(d->code, sizeof(d->code), "audit_retention");
	sodium_bin2hex(hex, sizeof(hex), last_hash, SG_CHAIN_HASH_LEN);
	/* JSON a person can read in the audit and verify can parse; fits reason[256]. */
	snprintf(d->reason, sizeof(d->reason),
	         "{\"pruned\":%lld,\"through_id\":%lld,\"last_hash\":\"%s\"}", (long long)count,
	         (long long)through, hex);
}

int
sg_store_chain_prune(struct sg_store *s, int64_t before_us, int64_t now_us, int max,
                     int64_t *pruned)
{
	sqlite3 *db = sg_store_db(s);
	uint8_t last[SG_CHAIN_HASH_LEN] = {0};
	int64_t through = 0, count = 0;
	struct sg_decision cp;
	*pruned = 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		sg_store_remember_error(s);
		return -1;
	}
	int rc = prune_span(db, before_us, max, &through, last, &count);
	if (rc == 0 && count > 0) {
		checkpoint_decision(&cp, now_us, through, count, last);
		rc = prune_delete(db, through) == 0 && sg_store_append(s, &cp, 1) == 0 ? 0 : -1;
	}
	if (rc != 0 || count == 0) {
		if (rc != 0)
			sg_store_remember_error(s);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sg_store_remember_error(s);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	*pruned = count;
	return 0;
}
