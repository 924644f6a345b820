/*
 * Connector credentials, sealed by the vault.  Each record's associated
 * data is "connector/slot", so a record copied to another row does not
 * open.  Every change bumps meta.secrets_generation in its transaction.
 * Statements are prepared per call: these calls are rare (the CLI, and a
 * gateway's poll twice a second), next to the decisions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/sg_store_db.h"

#define AAD_MAX 96

void
sg_secret_aad(char *buf, size_t len, const char *connector, const char *slot)
{
	snprintf(buf, len, "%s/%s", connector, slot);
}

static void
say(char *err, size_t errlen, const char *msg, const char *detail)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

static int
exec(struct sg_store *s, const char *sql)
{
	if (sqlite3_exec(sg_store_db(s), sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sg_store_remember_error(s);
	return -1;
}

static int
begin(struct sg_store *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

static int
bump_and_commit(struct sg_store *s)
{
	if (exec(s, "UPDATE meta SET value = value + 1 WHERE key = 'secrets_generation'") == 0 &&
	    exec(s, "COMMIT") == 0)
		return 0;
	sqlite3_exec(sg_store_db(s), "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static void
rollback(struct sg_store *s)
{
	if (!sqlite3_get_autocommit(sg_store_db(s)))
		sqlite3_exec(sg_store_db(s), "ROLLBACK", NULL, NULL, NULL);
}

/* The upsert, inside the caller's transaction. */
static int
put_row(struct sg_store *s, const char *connector, const char *slot, const unsigned char *rec,
        size_t rec_len, int64_t expires_at, int64_t created_at)
{
	static const char sql[] =
	    "INSERT OR REPLACE INTO secrets (connector, slot, record, key_id, created_at, "
	    "expires_at) VALUES (?, ?, ?, ?, ?, ?)";
	char id[SG_VAULT_KEY_ID_LEN + 1];
	sqlite3_stmt *st;
	if (sg_vault_record_key_id(rec, rec_len, id) != 0)
		return -1;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, connector, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, slot, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, rec, (int)rec_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, created_at);
	if (expires_at > 0)
		sqlite3_bind_int64(st, 6, expires_at);
	else
		sqlite3_bind_null(st, 6);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc != 0)
		sg_store_remember_error(s);
	sqlite3_finalize(st);
	return rc;
}

int
sg_store_secret_put_sealed(struct sg_store *s, const char *connector, const char *slot,
                           const unsigned char *rec, size_t rec_len, int64_t expires_at)
{
	if (begin(s) != 0)
		return -1;
	if (put_row(s, connector, slot, rec, rec_len, expires_at, (int64_t)time(NULL)) != 0) {
		rollback(s);
		return -1;
	}
	return bump_and_commit(s);
}

/* Seals and stores inside the caller's transaction, with the key read there too. */
static int
seal_and_put(struct sg_store *s, const char *data_dir, const char *connector, const char *slot,
             const void *value, size_t n, int64_t expires_at, char *key_id, char *err,
             size_t errlen)
{
	char aad[AAD_MAX];
	unsigned char *rec = NULL;
	size_t rec_len = 0;
	struct sg_vault_key k;
	if (sg_vault_key_load(&k, data_dir, err, errlen) != 0)
		return -1;
	sg_secret_aad(aad, sizeof(aad), connector, slot);
	int rc = sg_vault_seal(&k, aad, value, n, &rec, &rec_len);
	if (rc != 0)
		say(err, errlen, "out of memory while sealing the secret", NULL);
	if (rc == 0 && key_id != NULL)
		memcpy(key_id, k.id, sizeof(k.id));
	sg_vault_key_wipe(&k);
	if (rc == 0 &&
	    (rc = put_row(s, connector, slot, rec, rec_len, expires_at, (int64_t)time(NULL))) != 0)
		say(err, errlen, "cannot store the secret", sg_store_last_error(s));
	free(rec);
	return rc;
}

int
sg_store_secret_set(struct sg_store *s, const char *data_dir, const char *connector,
                    const char *slot, const void *value, size_t n, int64_t expires_at, char *key_id,
                    char *err, size_t errlen)
{
	if (begin(s) != 0) {
		say(err, errlen, "cannot write the store", sg_store_last_error(s));
		return -1;
	}
	if (seal_and_put(s, data_dir, connector, slot, value, n, expires_at, key_id, err, errlen) !=
	    0) {
		rollback(s);
		return -1;
	}
	if (bump_and_commit(s) != 0) {
		say(err, errlen, "cannot write the store", sg_store_last_error(s));
		return -1;
	}
	return 0;
}

static void
fill_row(sqlite3_stmt *st, int col, struct sg_secret_row *r)
{
	memset(r, 0, sizeof(*r));
	const char *c = (const char *)sqlite3_column_text(st, col);
	const char *slot = (const char *)sqlite3_column_text(st, col + 1);
	const char *id = (const char *)sqlite3_column_text(st, col + 2);
	snprintf(r->connector, sizeof(r->connector), "%s", c ? c : "");
	snprintf(r->slot, sizeof(r->slot), "%s", slot ? slot : "");
	snprintf(r->key_id, sizeof(r->key_id), "%s", id ? id : "");
	r->created_at = sqlite3_column_int64(st, col + 3);
	r->expires_at = sqlite3_column_int64(st, col + 4); /* NULL reads as 0 */
}

int
sg_store_secrets_list(struct sg_store *s, struct sg_secret_row **out, size_t *n)
{
	static const char sql[] = "SELECT connector, slot, key_id, created_at, expires_at "
	                          "FROM secrets ORDER BY connector, slot = 'next', slot";
	sqlite3_stmt *st;
	struct sg_secret_row *v = NULL;
	size_t len = 0, cap = 0;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct sg_secret_row *nv = realloc(v, ncap * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
			cap = ncap;
		}
		fill_row(st, 0, &v[len++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
}

int
sg_store_secret_get_sealed(struct sg_store *s, const char *connector, const char *slot,
                           unsigned char **rec, size_t *rec_len, struct sg_secret_row *row)
{
	static const char sql[] = "SELECT connector, slot, key_id, created_at, expires_at, record "
	                          "FROM secrets WHERE connector = ? AND slot = ?";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, connector, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, slot, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : -1;
	if (out == 0) {
		const void *b = sqlite3_column_blob(st, 5);
		int len = sqlite3_column_bytes(st, 5);
		if (row != NULL)
			fill_row(st, 0, row);
		*rec = malloc(len > 0 ? (size_t)len : 1);
		if (*rec == NULL)
			out = -1;
		else {
			if (len > 0)
				memcpy(*rec, b, (size_t)len);
			*rec_len = (size_t)len;
		}
	}
	sqlite3_finalize(st);
	return out;
}

/* Runs one statement with (connector[, slot]) bound; returns rows changed or -1. */
static int
change(struct sg_store *s, const char *sql, const char *connector, const char *slot)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, connector, -1, SQLITE_STATIC);
	if (slot != NULL)
		sqlite3_bind_text(st, 2, slot, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(sg_store_db(s)) : -1;
	if (rc < 0)
		sg_store_remember_error(s);
	sqlite3_finalize(st);
	return rc;
}

int
sg_store_secret_delete(struct sg_store *s, const char *connector, const char *slot)
{
	if (begin(s) != 0)
		return -1;
	int n = change(s, "DELETE FROM secrets WHERE connector = ? AND slot = ?", connector, slot);
	if (n <= 0) {
		rollback(s);
		return n == 0 ? 1 : -1;
	}
	return bump_and_commit(s);
}

/* Opens `rec` (stored under `from_aad`) with the key it names, and seals it anew with `to`. */
static int
reseal_one(const char *data_dir, const struct sg_vault_key *to, const char *from_aad,
           const char *to_aad, const unsigned char *rec, size_t rec_len, unsigned char **out,
           size_t *out_len, char *err, size_t errlen)
{
	char id[SG_VAULT_KEY_ID_LEN + 1];
	struct sg_vault_key found;
	const struct sg_vault_key *key = to;
	if (sg_vault_record_key_id(rec, rec_len, id) != 0) {
		say(err, errlen, "the stored secret is not a sealed record", from_aad);
		return -1;
	}
	if (strcmp(to->id, id) != 0) {
		if (sg_vault_key_find(&found, data_dir, id, err, errlen) != 0)
			return -1;
		key = &found;
	}
	char *plain = NULL;
	size_t n = 0;
	int rc = sg_vault_open(key, from_aad, rec, rec_len, &plain, &n, err, errlen);
	if (key == &found)
		sg_vault_key_wipe(&found);
	if (rc != 0)
		return -1;
	rc = sg_vault_seal(to, to_aad, plain, n, out, out_len);
	sg_vault_free(plain, n);
	if (rc != 0)
		say(err, errlen, "out of memory while sealing a secret", NULL);
	return rc;
}

/* Re-seals (connector, from) into (connector, to) inside the caller's transaction. */
static int
move_slot(struct sg_store *s, const char *data_dir, const struct sg_vault_key *key,
          const char *connector, const char *from, const char *to, char *err, size_t errlen)
{
	char from_aad[AAD_MAX], to_aad[AAD_MAX];
	unsigned char *rec = NULL, *next = NULL;
	size_t rec_len = 0, next_len = 0;
	struct sg_secret_row row;
	int got = sg_store_secret_get_sealed(s, connector, from, &rec, &rec_len, &row);
	if (got != 0) {
		if (got < 0)
			say(err, errlen, "cannot read the secret", sg_store_last_error(s));
		return got;
	}
	sg_secret_aad(from_aad, sizeof(from_aad), connector, from);
	sg_secret_aad(to_aad, sizeof(to_aad), connector, to);
	int rc = reseal_one(data_dir, key, from_aad, to_aad, rec, rec_len, &next, &next_len, err,
	                    errlen);
	if (rc == 0 &&
	    put_row(s, connector, to, next, next_len, row.expires_at, row.created_at) != 0) {
		say(err, errlen, "cannot store the secret", sg_store_last_error(s));
		rc = -1;
	}
	free(rec);
	free(next);
	return rc;
}

static int
commit_or_say(struct sg_store *s, char *err, size_t errlen)
{
	if (bump_and_commit(s) == 0)
		return 0;
	say(err, errlen, "cannot write the store", sg_store_last_error(s));
	return -1;
}

int
sg_store_secret_promote(struct sg_store *s, const char *data_dir, const char *connector, char *err,
                        size_t errlen)
{
	struct sg_vault_key k;
	if (begin(s) != 0) {
		say(err, errlen, "cannot write the store", sg_store_last_error(s));
		return -1;
	}
	int rc = sg_vault_key_load(&k, data_dir, err, errlen);
	if (rc == 0)
		rc = move_slot(s, data_dir, &k, connector, "next", "current", err, errlen);
	sg_vault_key_wipe(&k);
	if (rc == 0 && change(s, "DELETE FROM secrets WHERE connector = ? AND slot = 'next'",
	                      connector, NULL) != 1) {
		say(err, errlen, "cannot write the store", sg_store_last_error(s));
		rc = -1;
	}
	if (rc != 0) {
		rollback(s);
		return rc;
	}
	return commit_or_say(s, err, errlen);
}

int
sg_store_secrets_reseal(struct sg_store *s, const char *data_dir, const struct sg_vault_key *to,
                        int (*before_commit)(void *arg, char *err, size_t errlen), void *arg,
                        size_t *n_done, char *err, size_t errlen)
{
	struct sg_secret_row *rows = NULL;
	size_t n = 0;
	*n_done = 0;
	if (begin(s) != 0) {
		say(err, errlen, "cannot write the store", sg_store_last_error(s));
		return -1;
	}
	/* Listed inside the transaction: a record added meanwhile cannot escape the re-seal. */
	int rc = sg_store_secrets_list(s, &rows, &n);
	if (rc != 0)
		say(err, errlen, "cannot read the secrets", sg_store_last_error(s));
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = move_slot(s, data_dir, to, rows[i].connector, rows[i].slot, rows[i].slot, err,
		               errlen);
	free(rows);
	if (rc == 0 && before_commit != NULL)
		rc = before_commit(arg, err, errlen);
	if (rc != 0) {
		rollback(s);
		return -1;
	}
	if (commit_or_say(s, err, errlen) != 0)
		return -1;
	*n_done = n;
	return 0;
}

int
sg_store_secrets_generation(struct sg_store *s, int64_t *gen)
{
	static const char sql[] = "SELECT value FROM meta WHERE key = 'secrets_generation'";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sg_store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*gen = rc == 0 ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc;
}
