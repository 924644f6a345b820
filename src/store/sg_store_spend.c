/*
 * Daily spending, kept beside the decision record so that budgets survive a
 * restart without a start reading the month's decisions.
 *
 * The writer thread tallies the costed calls it records and adds the tally
 * here every few seconds, moving `spend_through` (the newest decision
 * counted) in the same transaction.  So spend_daily plus the decisions
 * after the mark is always the whole of the recorded spending, whenever
 * the process stops.  Statements are prepared per call: these run every
 * few seconds and once at start, not per decision.
 */
#include <math.h>
#include <string.h>

#include "store/sg_store_db.h"

#define US_PER_DAY 86400000000LL

/* The same rule in SQL, for the decisions after the mark. */
#define SPENDS_SQL                                                                                 \
	"decision = 'allowed' AND cost > 0"                                                        \
	" AND tenant IS NOT NULL AND user IS NOT NULL AND mode IS NOT NULL"
#define MICROS_SQL "sum(CAST(round(cost * 1000000) AS INTEGER))"
#define MARK_SQL "(SELECT value FROM meta WHERE key = 'spend_through')"

bool
sg_decision_spends(const struct sg_decision *d)
{
	/* Empty names are recorded as NULL, which SPENDS_SQL leaves out too. */
	return d->cost > 0 && strncmp(d->decision, "allowed", sizeof(d->decision)) == 0 &&
	       d->tenant[0] && d->user[0] && d->mode[0];
}

int64_t
sg_decision_micros(const struct sg_decision *d)
{
	return llround(d->cost * 1e6);
}

int64_t
sg_store_last_decision_id(struct sg_store *s)
{
	return sqlite3_last_insert_rowid(sg_store_db(s));
}

static int
exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
finish(sqlite3 *db, int rc)
{
	if (rc == 0 && exec(db, "COMMIT") == 0)
		return 0;
	exec(db, "ROLLBACK");
	return -1;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
add_rows(sqlite3 *db, const struct sg_spend_row *rows, size_t n)
{
	static const char sql[] = "INSERT INTO spend_daily (tenant, user, mode, day, micros)"
	                          " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, user, mode, day)"
	                          " DO UPDATE SET micros = micros + excluded.micros";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_bind_text(st, 1, rows[i].tenant, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, rows[i].user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rows[i].mode, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, rows[i].day);
		sqlite3_bind_int64(st, 5, rows[i].micros);
		rc = step_done(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
set_mark(sqlite3 *db, int64_t through_id)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "UPDATE meta SET value = ? WHERE key = 'spend_through'", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, through_id);
	int rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

int
sg_store_spend_flush(struct sg_store *s, const struct sg_spend_row *rows, size_t n,
                     int64_t through_id)
{
	sqlite3 *db = sg_store_db(s);
	if (exec(db, "BEGIN IMMEDIATE") != 0)
		return -1;
	return finish(db, add_rows(db, rows, n) == 0 ? set_mark(db, through_id) : -1);
}

int
sg_store_spend_catch_up(struct sg_store *s)
{
	/* WHERE is needed anyway: it also keeps SQLite from reading ON CONFLICT as a join. */
	static const char add[] =
	    "INSERT INTO spend_daily (tenant, user, mode, day, micros)"
	    " SELECT tenant, user, mode, ts_us / 86400000000, " MICROS_SQL " FROM decisions"
	    " WHERE id > " MARK_SQL " AND " SPENDS_SQL
	    " GROUP BY tenant, user, mode, ts_us / 86400000000"
	    " ON CONFLICT (tenant, user, mode, day) DO UPDATE SET micros = micros + "
	    "excluded.micros";
	static const char mark[] = "UPDATE meta SET value = (SELECT coalesce(max(id), value)"
	                           " FROM decisions) WHERE key = 'spend_through'";
	sqlite3 *db = sg_store_db(s);
	if (exec(db, "BEGIN IMMEDIATE") != 0)
		return -1;
	return finish(db, exec(db, add) == 0 ? exec(db, mark) : -1);
}

static int
report(sqlite3_stmt *st, int64_t since_day,
       void (*fn)(void *, const char *, const char *, bool, int64_t, int64_t), void *arg)
{
	int rc;
	sqlite3_bind_int64(st, 1, since_day);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tenant = (const char *)sqlite3_column_text(st, 0);
		const char *user = (const char *)sqlite3_column_text(st, 1);
		const char *mode = (const char *)sqlite3_column_text(st, 2);
		if (tenant && user && mode)
			fn(arg, tenant, user, strcmp(mode, "sandbox") == 0,
			   sqlite3_column_int64(st, 3) * 86400, sqlite3_column_int64(st, 4));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
sg_store_spend_since(struct sg_store *s, int64_t since_us,
                     void (*fn)(void *arg, const char *tenant, const char *user, bool sandbox,
                                int64_t day_start_s, int64_t micros),
                     void *arg)
{
	static const char daily[] =
	    "SELECT tenant, user, mode, day, micros FROM spend_daily WHERE day >= ?";
	/* The id range comes first: only the decisions after the mark are read. */
	static const char tail[] =
	    "SELECT tenant, user, mode, ts_us / 86400000000, " MICROS_SQL " FROM decisions"
	    " WHERE id > " MARK_SQL " AND ts_us / 86400000000 >= ? AND " SPENDS_SQL
	    " GROUP BY tenant, user, mode, ts_us / 86400000000";
	sqlite3 *db = sg_store_db(s);
	int64_t since_day = since_us / US_PER_DAY;
	sqlite3_stmt *st;
	/* One read transaction, so the writer cannot move the mark between the two. */
	if (exec(db, "BEGIN") != 0)
		return -1;
	int rc = sqlite3_prepare_v2(db, daily, -1, &st, NULL) == SQLITE_OK
	             ? report(st, since_day, fn, arg)
	             : -1;
	if (rc == 0)
		rc = sqlite3_prepare_v2(db, tail, -1, &st, NULL) == SQLITE_OK
		         ? report(st, since_day, fn, arg)
		         : -1;
	exec(db, "COMMIT");
	return rc;
}
