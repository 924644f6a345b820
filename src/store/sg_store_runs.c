/*
 * Finished template runs.  Written by the writer thread in batches, read
 * back by GET /v1/runs/{id} once a run has left the in-memory registry.
 * Statements are prepared per call: runs are few next to decisions.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sg_store_db.h"

static int
put_one(sqlite3_stmt *st, const struct sg_run_row *r)
{
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->template_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->trace_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->started_us);
	sqlite3_bind_int64(st, 8, r->ended_us);
	sqlite3_bind_text(st, 9, r->doc, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
sg_store_put_runs(struct sg_store *s, const struct sg_run_row *rows, size_t n)
{
	static const char sql[] =
	    "INSERT OR REPLACE INTO runs (id, tenant, user, template, status, trace_id, "
	    "started_us, ended_us, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3 *db = sg_store_db(s);
	sqlite3_stmt *st = NULL;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		sg_store_remember_error(s);
		return -1;
	}
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = put_one(st, &rows[i]);
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		sqlite3_finalize(st);
		return 0;
	}
	sg_store_remember_error(s);
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
sg_store_get_run(struct sg_store *s, const char *id, const char *tenant, char **doc)
{
	static const char sql[] = "SELECT doc FROM runs WHERE id = ? AND tenant = ?";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
	if (out == 0) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		*doc = text ? strdup(text) : NULL;
		if (*doc == NULL)
			out = -1;
	}
	sqlite3_finalize(st);
	return out;
}
