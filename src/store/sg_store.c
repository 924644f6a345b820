/*
 * The SQLite store.  Every statement is prepared at open and finalized at
 * close; each public call resets what it used.  Errors returned to callers
 * are sentences for a person: SQL text stays in this file.
 */
#include "store/sg_store.h"
#include "store/sg_store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sg_migrations.h"

/* The transaction statements come first: migrations need them before the tables exist. */
enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_N_TX,
	ST_REVISION = ST_N_TX,
	ST_BUMP,
	ST_KEY_INSERT,
	ST_KEY_REVOKE,
	ST_KEY_RETIRE,
	ST_KEYS_LIST,
	ST_APPLY_INSERT,
	ST_DOC_NEXT,
	ST_DOC_INSERT,
	ST_LIVE_DOCS,
	ST_DECISION_INSERT,
	ST_DECISION_INSERT_MANY,
	ST_COUNT_ALL,
	ST_COUNT_BY,
	ST_CHAIN_HEAD,
	ST_CHAIN_SET,
	ST_COUNT
};

/* The columns in sg_chain_columns order, then the chain's links. */
#define DECISION_INSERT                                                                            \
	"INSERT INTO decisions (id, chain, ts_us, trace_id, key_id, tenant, user, role,"           \
	" mode, connector, operation, decision, status, code, reason,"                             \
	" latency_us, cost, session_id, queue_wait_us, served_by, upstream, dlp,"                  \
	" prev_hash, hash) VALUES "
#define DECISION_COLUMNS 24
#define DECISION_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
/* meta keys of the main chain's head (sg_store_chain.c names them per chain). */
#define HEAD_ID_KEY "audit_head_id:" SG_CHAIN_MAIN
#define HEAD_HASH_KEY "audit_head_hash:" SG_CHAIN_MAIN
#define DECISION_ROWS_4 DECISION_ROW "," DECISION_ROW "," DECISION_ROW "," DECISION_ROW
/*
 * Rows per statement of ST_DECISION_INSERT_MANY.  One statement for 16 rows
 * costs about 10,400 instructions a row against 14,300 for one row each.
 */
#define DECISIONS_PER_INSERT 16

static const char *const stmt_sql[ST_COUNT] = {
    /*
     * IMMEDIATE takes the write lock up front, so a busy database waits in
     * the busy handler instead of failing when a read upgrades to a write.
     */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_REVISION] = "SELECT value FROM meta WHERE key = 'revision'",
    [ST_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'revision'",
    [ST_KEY_INSERT] = "INSERT INTO keys (id, hash, tenant, user, role, mode, created_at,"
                      " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_KEY_REVOKE] = "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0",
    /*
     * ?1 the overlap's end (0: revoke now), ?2 the time now, ?3 the successor,
     * ?4 the key.  An earlier expiry stands: a rotation never extends a key.
     */
    [ST_KEY_RETIRE] = "UPDATE keys SET replaced_by = ?3,"
                      " revoked_at = CASE WHEN ?1 = 0 THEN ?2 ELSE 0 END,"
                      " expires_at = CASE WHEN ?1 != 0 AND (expires_at = 0 OR expires_at > ?1)"
                      "  THEN ?1 ELSE expires_at END"
                      " WHERE id = ?4 AND revoked_at = 0 AND replaced_by = ''"
                      " AND (expires_at = 0 OR expires_at > ?2)",
    [ST_KEYS_LIST] = "SELECT id, hash, tenant, user, role, mode, created_at, expires_at,"
                     " revoked_at, replaced_by FROM keys ORDER BY created_at DESC, rowid DESC",
    [ST_APPLY_INSERT] = "INSERT INTO applies (applied_at, n_docs) VALUES (?, ?)",
    [ST_DOC_NEXT] = "SELECT coalesce(max(version), 0) + 1 FROM documents"
                    " WHERE kind = ? AND name = ?",
    [ST_DOC_INSERT] = "INSERT INTO documents (kind, name, version, file, text, apply_id,"
                      " applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [ST_LIVE_DOCS] = "SELECT kind, name, version, file, text FROM documents d"
                     " WHERE version = (SELECT max(version) FROM documents"
                     " WHERE kind = d.kind AND name = d.name) ORDER BY kind, name",
    [ST_DECISION_INSERT] = DECISION_INSERT DECISION_ROW,
    [ST_DECISION_INSERT_MANY] =
        DECISION_INSERT DECISION_ROWS_4 "," DECISION_ROWS_4 "," DECISION_ROWS_4 "," DECISION_ROWS_4,
    [ST_COUNT_ALL] = "SELECT count(*) FROM decisions",
    [ST_COUNT_BY] = "SELECT count(*) FROM decisions WHERE decision = ?",
    /*
     * The chain's head and the newest id, read once per batch under the
     * write lock: ids are given explicitly (the hash covers them), and the
     * head is the chain's, even when rows were cut off behind it.  Ids
     * never go back: not after a prune took every row, nor after a cut.
     */
    [ST_CHAIN_HEAD] = "SELECT (SELECT value FROM meta WHERE key = '" HEAD_HASH_KEY "'),"
                      " max(coalesce((SELECT max(id) FROM decisions), 0),"
                      " (SELECT value FROM meta WHERE key = '" HEAD_ID_KEY "'))",
    /* An UPDATE: an INSERT would move last_insert_rowid off the newest decision. */
    [ST_CHAIN_SET] = "UPDATE meta SET value = CASE key WHEN '" HEAD_ID_KEY "' THEN ?1 ELSE ?2 END"
                     " WHERE key IN ('" HEAD_ID_KEY "', '" HEAD_HASH_KEY "')",
};

struct sg_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	/* Why the last write failed, kept across the ROLLBACK that follows it. */
	int fail_code, fail_sys;
};

sqlite3 *
sg_store_db(struct sg_store *s)
{
	return s->db;
}

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Why the last call failed, in words: the OS error when there is one, never SQL. */
static const char *
why(struct sg_store *s)
{
	if (s->db == NULL)
		return "out of memory";
	int sys = sqlite3_system_errno(s->db);
	int code = sqlite3_extended_errcode(s->db);
	if (sys != 0 && (code & 0xff) == SQLITE_CANTOPEN)
		return strerror(sys);
	return sqlite3_errstr(code);
}

/* Steps a statement that returns no rows, then resets it. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
tx_begin(struct sg_store *s)
{
	return run(s->st[ST_BEGIN]);
}

static int
tx_commit(struct sg_store *s)
{
	if (run(s->st[ST_COMMIT]) == 0)
		return 0;
	sg_store_remember_error(s);
	/* A failed COMMIT can leave the transaction open; end it so the next call starts clean. */
	run(s->st[ST_ROLLBACK]);
	return -1;
}

static void
tx_rollback(struct sg_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		run(s->st[ST_ROLLBACK]);
}

static int
exec(struct sg_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static int
prepare_range(struct sg_store *s, int from, int to)
{
	for (int i = from; i < to; i++)
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
		                       NULL) != SQLITE_OK)
			return -1;
	return 0;
}

static int
user_version(struct sg_store *s, int *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* The part of a migration SQL cannot do, in the same transaction. */
static int
migrate_in_c(struct sg_store *s, int version)
{
	/* 10: the rows recorded before the audit chain are chained in id order. */
	return version == 10 ? sg_store_chain_link_existing(s) : 0;
}

/*
 * Applies migration `target` (1-based) unless another process got there
 * first: the version is read again under the write lock, so a server and
 * a CLI opening a fresh store together never run a step twice.  Returns 1
 * when the store is already at the newest version.
 */
static int
migrate_step(struct sg_store *s, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int v;
	if (tx_begin(s) != 0 || user_version(s, &v) != 0) {
		say(err, errlen, "cannot read the schema version of %s: %s", path, why(s));
		goto fail;
	}
	if (v < 0 || (size_t)v > sg_migrations_count) {
		say(err, errlen,
		    "%s was created by a newer sandgate (schema %d; this build knows up "
		    "to %zu); upgrade sandgate to open it",
		    path, v, sg_migrations_count);
		goto fail;
	}
	if ((size_t)v == sg_migrations_count) {
		tx_rollback(s); /* nothing was written */
		return 1;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
	if (exec(s, sg_migrations[v]) != 0 || migrate_in_c(s, v + 1) != 0 || exec(s, sql) != 0 ||
	    tx_commit(s) != 0) {
		say(err, errlen, "cannot upgrade %s to schema %d: %s", path, v + 1, why(s));
		goto fail;
	}
	return 0;
fail:
	tx_rollback(s);
	return -1;
}

static int
migrate(struct sg_store *s, const char *path, char *err, size_t errlen)
{
	int rc;
	while ((rc = migrate_step(s, path, err, errlen)) == 0)
		;
	return rc < 0 ? -1 : 0;
}

static int
configure(struct sg_store *s)
{
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL lets the writer thread and readers proceed together. */
	return exec(s, "PRAGMA journal_mode = WAL") || exec(s, "PRAGMA synchronous = NORMAL") ||
	               exec(s, "PRAGMA foreign_keys = ON")
	           ? -1
	           : 0;
}

/* mkdir -p, creating missing parents 0700 too: they lead to the secret and the store. */
static int
mkdir_p(const char *dir)
{
	char buf[4096];
	if (dir[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	/* EEXIST says nothing about what exists; make sure it is a directory we can enter. */
	int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * Anyone who can write the data directory can rename a store or a server
 * secret of their own over ours, so such a directory is refused, not
 * trusted.  Only the directory itself is checked, as the modes of the
 * files in it are set here.
 */
static int
check_private_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		say(err, errlen, "cannot open the data directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0)
		return 0;
	say(err, errlen,
	    "the data directory %s can be written by %s (mode %04o), who could replace the "
	    "store or the server secret; run 'chmod go-w %s' (or chmod 700) and try again",
	    dir, (st.st_mode & S_IWOTH) ? "every user" : "its group",
	    (unsigned)(st.st_mode & 07777), dir);
	return -1;
}

/* Strips group and other bits from `path` when it exists; by name, never through a descriptor. */
static int
chmod_private(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0 || (st.st_mode & 077) == 0 || chmod(path, st.st_mode & 0700) == 0)
		return 0;
	say(err, errlen, "cannot make %s readable by its owner only: %s", path, strerror(errno));
	return -1;
}

/*
 * Every open takes this around creating the database and handing it to
 * SQLite: see make_private.
 */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * SQLite creates the database 0644 (less the umask) and gives its -wal and
 * -shm files the database's mode, so a new database is made 0600 before
 * SQLite opens it, and files left readable by an older sandgate are made
 * private again.  An existing database is never opened here: closing any
 * descriptor of a file drops every POSIX lock the process holds on it,
 * SQLite's included, and other connections of this process may hold them.
 * A new one is created and closed under open_mu, which every open holds
 * while SQLite opens the file, so no connection can have it open yet.
 */
static int
make_private(const char *path, char *err, size_t errlen)
{
	static const char *const sidecars[] = {"-wal", "-shm"};
	char side[4200];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST) {
		say(err, errlen, "cannot open the store %s: %s", path, strerror(errno));
		return -1;
	}
	if (chmod_private(path, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", path, sidecars[i]);
		if (chmod_private(side, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int
open_db(struct sg_store *s, const char *path, char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	pthread_mutex_lock(&open_mu);
	int rc = make_private(path, err, errlen);
	if (rc == 0 && sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK)
		rc = -2;
	pthread_mutex_unlock(&open_mu);
	if (rc == -1)
		return -1;
	if (rc != 0 || configure(s) != 0) {
		say(err, errlen, "cannot open the store %s: %s", path, why(s));
		return -1;
	}
	if (prepare_range(s, 0, ST_N_TX) != 0) {
		say(err, errlen, "cannot open the store %s: %s", path, why(s));
		return -1;
	}
	if (migrate(s, path, err, errlen) != 0)
		return -1;
	if (prepare_range(s, ST_N_TX, ST_COUNT) != 0) {
		say(err, errlen, "%s does not have the tables this sandgate expects (%s)", path,
		    why(s));
		return -1;
	}
	return 0;
}

struct sg_store *
sg_store_open(const char *data_dir, char *err, size_t errlen)
{
	char path[4096];
	struct sg_store *s;
	if (mkdir_p(data_dir) != 0) {
		say(err, errlen, "cannot open the data directory %s: %s", data_dir,
		    strerror(errno));
		return NULL;
	}
	if (snprintf(path, sizeof(path), "%s/sandgate.db", data_dir) >= (int)sizeof(path)) {
		say(err, errlen, "cannot open the data directory %s: %s", data_dir,
		    strerror(ENAMETOOLONG));
		return NULL;
	}
	if (check_private_dir(data_dir, err, errlen) != 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		say(err, errlen, "cannot open the store %s: out of memory", path);
		return NULL;
	}
	if (open_db(s, path, err, errlen) != 0) {
		sg_store_close(s);
		return NULL;
	}
	return s;
}

void
sg_store_close(struct sg_store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

void
sg_store_remember_error(struct sg_store *s)
{
	s->fail_code = sqlite3_extended_errcode(s->db);
	s->fail_sys = sqlite3_system_errno(s->db);
}

const char *
sg_store_last_error(struct sg_store *s)
{
	if (s->fail_code == SQLITE_OK)
		return why(s);
	if (s->fail_sys != 0 && (s->fail_code & 0xff) == SQLITE_CANTOPEN)
		return strerror(s->fail_sys);
	return sqlite3_errstr(s->fail_code);
}

void
sg_store_set_busy_timeout(struct sg_store *s, int ms)
{
	sqlite3_busy_timeout(s->db, ms);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int
sg_store_revision(struct sg_store *s, int64_t *rev)
{
	sqlite3_stmt *st = s->st[ST_REVISION];
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*rev = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc;
}

/*
 * Runs the bound statement `st` and, when it changed a row, bumps the
 * revision in the same transaction.  Returns the number of rows changed.
 */
static int
run_and_bump(struct sg_store *s, sqlite3_stmt *st)
{
	if (tx_begin(s) != 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -1;
	}
	if (run(st) != 0) {
		tx_rollback(s);
		return -1;
	}
	int changes = sqlite3_changes(s->db);
	if (changes > 0 && run(s->st[ST_BUMP]) != 0) {
		tx_rollback(s);
		return -1;
	}
	return tx_commit(s) == 0 ? changes : -1;
}

static sqlite3_stmt *
bind_key_insert(struct sg_store *s, const struct sg_key_record *k)
{
	sqlite3_stmt *st = s->st[ST_KEY_INSERT];
	bind_text(st, 1, k->id);
	sqlite3_bind_blob(st, 2, k->hash, SG_KEY_HASH_LEN, SQLITE_TRANSIENT);
	bind_text(st, 3, k->tenant);
	bind_text(st, 4, k->user);
	bind_text(st, 5, k->role);
	bind_text(st, 6, k->mode);
	sqlite3_bind_int64(st, 7, k->created_at);
	sqlite3_bind_int64(st, 8, k->expires_at);
	sqlite3_bind_int64(st, 9, k->revoked_at);
	return st;
}

int
sg_store_key_insert(struct sg_store *s, const struct sg_key_record *k)
{
	return run_and_bump(s, bind_key_insert(s, k)) == 1 ? 0 : -1;
}

int
sg_store_key_revoke(struct sg_store *s, const char *id, int64_t now)
{
	sqlite3_stmt *st = s->st[ST_KEY_REVOKE];
	/* 0 means "active", so a clock at the epoch must still record a revocation. */
	sqlite3_bind_int64(st, 1, now > 0 ? now : 1);
	bind_text(st, 2, id);
	int changes = run_and_bump(s, st);
	return changes < 0 ? -1 : (changes == 0 ? 1 : 0);
}

int
sg_store_key_rotate(struct sg_store *s, const char *old_id, const struct sg_key_record *next,
                    int64_t overlap_end, int64_t now)
{
	sqlite3_stmt *st = s->st[ST_KEY_RETIRE];
	if (tx_begin(s) != 0)
		return -1;
	/* 0 means "active", so a clock at the epoch must still record a revocation. */
	sqlite3_bind_int64(st, 1, overlap_end);
	sqlite3_bind_int64(st, 2, now > 0 ? now : 1);
	bind_text(st, 3, next->id);
	bind_text(st, 4, old_id);
	if (run(st) != 0) {
		tx_rollback(s);
		return -1;
	}
	if (sqlite3_changes(s->db) == 0) {
		tx_rollback(s);
		return 1;
	}
	if (run(bind_key_insert(s, next)) != 0 || run(s->st[ST_BUMP]) != 0) {
		tx_rollback(s);
		return -1;
	}
	return tx_commit(s) == 0 ? 0 : -1;
}

static void
copy_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static void
read_key(sqlite3_stmt *st, struct sg_key_record *k)
{
	memset(k, 0, sizeof(*k));
	copy_col(k->id, sizeof(k->id), st, 0);
	/* A hash of the wrong size stays all zeros, which no key hashes to in practice. */
	if (sqlite3_column_bytes(st, 1) == SG_KEY_HASH_LEN)
		memcpy(k->hash, sqlite3_column_blob(st, 1), SG_KEY_HASH_LEN);
	copy_col(k->tenant, sizeof(k->tenant), st, 2);
	copy_col(k->user, sizeof(k->user), st, 3);
	copy_col(k->role, sizeof(k->role), st, 4);
	copy_col(k->mode, sizeof(k->mode), st, 5);
	k->created_at = sqlite3_column_int64(st, 6);
	k->expires_at = sqlite3_column_int64(st, 7);
	k->revoked_at = sqlite3_column_int64(st, 8);
	copy_col(k->replaced_by, sizeof(k->replaced_by), st, 9);
}

int
sg_store_keys_list(struct sg_store *s, struct sg_key_record **out, size_t *n)
{
	sqlite3_stmt *st = s->st[ST_KEYS_LIST];
	size_t cap = 16, len = 0;
	struct sg_key_record *v = malloc(cap * sizeof(*v));
	int rc = SQLITE_NOMEM;
	while (v && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			struct sg_key_record *nv = realloc(v, 2 * cap * sizeof(*v));
			if (nv == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		read_key(st, &v[len++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
}

static int
next_version(struct sg_store *s, const struct sg_store_doc *doc, int64_t *version)
{
	sqlite3_stmt *st = s->st[ST_DOC_NEXT];
	bind_text(st, 1, doc->kind);
	bind_text(st, 2, doc->name);
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*version = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int
insert_doc(struct sg_store *s, const struct sg_store_doc *doc, int64_t version, int64_t apply_id,
           int64_t now)
{
	sqlite3_stmt *st = s->st[ST_DOC_INSERT];
	bind_text(st, 1, doc->kind);
	bind_text(st, 2, doc->name);
	sqlite3_bind_int64(st, 3, version);
	bind_text(st, 4, doc->file ? doc->file : "");
	bind_text(st, 5, doc->text);
	sqlite3_bind_int64(st, 6, apply_id);
	sqlite3_bind_int64(st, 7, now);
	return run(st);
}

/* Stores every doc; `versions` receives what each one got.  The caller owns the transaction. */
static int
apply_docs(struct sg_store *s, const struct sg_store_doc *docs, size_t n, int64_t *versions,
           char *err, size_t errlen)
{
	int64_t now = (int64_t)time(NULL);
	sqlite3_stmt *ap = s->st[ST_APPLY_INSERT];
	sqlite3_bind_int64(ap, 1, now);
	sqlite3_bind_int64(ap, 2, (int64_t)n);
	if (run(ap) != 0) {
		say(err, errlen, "cannot record the apply: %s; nothing was applied", why(s));
		return -1;
	}
	int64_t apply_id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < n; i++) {
		const struct sg_store_doc *d = &docs[i];
		const char *from = d->file ? d->file : "(no file)";
		if (d->kind == NULL || d->name == NULL) {
			say(err, errlen,
			    "a document from %s has no kind or name; nothing was applied", from);
			return -1;
		}
		if (next_version(s, d, &versions[i]) != 0 ||
		    insert_doc(s, d, versions[i], apply_id, now) != 0) {
			say(err, errlen, "cannot store %s \"%s\" from %s: %s; nothing was applied",
			    d->kind, d->name, from, why(s));
			return -1;
		}
	}
	if (run(s->st[ST_BUMP]) != 0) {
		say(err, errlen, "cannot update the store revision: %s; nothing was applied",
		    why(s));
		return -1;
	}
	return 0;
}

int
sg_store_apply(struct sg_store *s, struct sg_store_doc *docs, size_t n, char *err, size_t errlen)
{
	return sg_store_apply_if(s, docs, n, -1, err, errlen);
}

/* Inside the write transaction: has anything changed since the caller looked? */
static int
revision_moved(struct sg_store *s, int64_t expect, char *err, size_t errlen)
{
	int64_t now;
	if (expect < 0)
		return 0;
	if (sg_store_revision(s, &now) != 0) {
		say(err, errlen, "cannot read the store: %s; nothing was applied", why(s));
		return -1;
	}
	if (now == expect)
		return 0;
	say(err, errlen,
	    "the stored definitions or keys changed while this apply was being "
	    "checked; nothing was applied: run it again");
	return -1;
}

int
sg_store_apply_if(struct sg_store *s, struct sg_store_doc *docs, size_t n, int64_t expect_rev,
                  char *err, size_t errlen)
{
	int64_t *versions = calloc(n ? n : 1, sizeof(*versions));
	if (versions == NULL) {
		say(err, errlen, "out of memory; nothing was applied");
		return -1;
	}
	if (tx_begin(s) != 0) {
		say(err, errlen, "cannot write to the store: %s; nothing was applied", why(s));
		free(versions);
		return -1;
	}
	int rc = revision_moved(s, expect_rev, err, errlen);
	if (rc == 0)
		rc = apply_docs(s, docs, n, versions, err, errlen);
	if (rc == 0 && tx_commit(s) != 0) {
		say(err, errlen, "cannot save the definitions: %s; nothing was applied", why(s));
		rc = -1;
	}
	if (rc != 0)
		tx_rollback(s);
	/* Versions are handed out only once they are durable: a rolled-back doc has none. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		docs[i].version = versions[i];
	free(versions);
	return rc;
}

void
sg_store_docs_free(struct sg_store_doc *docs, size_t n)
{
	for (size_t i = 0; docs && i < n; i++) {
		free(docs[i].kind);
		free(docs[i].name);
		free(docs[i].file);
		free(docs[i].text);
	}
	free(docs);
}

static int
read_doc(sqlite3_stmt *st, struct sg_store_doc *d)
{
	char **cols[] = {&d->kind, &d->name, NULL, &d->file, &d->text};
	for (int i = 0; i < 5; i++) {
		if (cols[i] == NULL)
			continue;
		const unsigned char *v = sqlite3_column_text(st, i);
		if ((*cols[i] = strdup(v ? (const char *)v : "")) == NULL)
			return -1;
	}
	d->version = sqlite3_column_int64(st, 2);
	return 0;
}

int
sg_store_live_docs(struct sg_store *s, struct sg_store_doc **out, size_t *n)
{
	sqlite3_stmt *st = s->st[ST_LIVE_DOCS];
	size_t cap = 8, len = 0;
	struct sg_store_doc *v = calloc(cap, sizeof(*v));
	int rc = SQLITE_NOMEM;
	while (v && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			struct sg_store_doc *nv = realloc(v, 2 * cap * sizeof(*v));
			if (nv == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
			cap *= 2;
		}
		memset(&v[len], 0, sizeof(v[len]));
		if (read_doc(st, &v[len++]) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sg_store_docs_free(v, len);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
}

/*
 * Binds a fixed-size field from a decision.  Bounded by the array, because
 * a request thread filled it and a missing NUL must not read past it.
 * Empty becomes NULL unless the column needs a value.
 */
static void
bind_field(sqlite3_stmt *st, int i, const char *v, size_t cap, int empty_is_null)
{
	size_t len = strnlen(v, cap);
	if (len == 0 && empty_is_null)
		sqlite3_bind_null(st, i);
	else
		/* STATIC: the decision outlives the step that reads it; no copy needed. */
		sqlite3_bind_text(st, i, v, (int)len, SQLITE_STATIC);
}

#define BIND(st, i, d, f) bind_field(st, i, (d)->f, sizeof((d)->f), 1)

/*
 * Binds one decision as the row whose first parameter follows `base`, with
 * its id and links.  `prev` and `hash` must stay put until the step.
 */
static void
bind_decision(sqlite3_stmt *st, int base, const struct sg_decision *d, int64_t id,
              const uint8_t *prev, const uint8_t *hash)
{
	sqlite3_bind_int64(st, base + 1, id);
	sqlite3_bind_text(st, base + 2, SG_CHAIN_MAIN, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, base + 3, d->ts_us);
	BIND(st, base + 4, d, trace_id);
	BIND(st, base + 5, d, key_id);
	BIND(st, base + 6, d, tenant);
	BIND(st, base + 7, d, user);
	BIND(st, base + 8, d, role);
	BIND(st, base + 9, d, mode);
	BIND(st, base + 10, d, connector);
	BIND(st, base + 11, d, operation);
	/* NOT NULL: one odd decision must not lose the whole batch it travels in. */
	bind_field(st, base + 12, d->decision, sizeof(d->decision), 0);
	sqlite3_bind_int(st, base + 13, d->status);
	BIND(st, base + 14, d, code);
	BIND(st, base + 15, d, reason);
	sqlite3_bind_int64(st, base + 16, d->latency_us);
	sqlite3_bind_double(st, base + 17, d->cost);
	BIND(st, base + 18, d, session_id);
	sqlite3_bind_int64(st, base + 19, d->queue_wait_us);
	BIND(st, base + 20, d, served_by);
	BIND(st, base + 21, d, upstream);
	BIND(st, base + 22, d, dlp);
	sqlite3_bind_blob(st, base + 23, prev, SG_CHAIN_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, base + 24, hash, SG_CHAIN_HASH_LEN, SQLITE_STATIC);
}

/* Where the batch's chain starts: the head's hash and the next free id. */
static int
chain_head(struct sg_store *s, uint8_t prev[SG_CHAIN_HASH_LEN], int64_t *next_id)
{
	sqlite3_stmt *st = s->st[ST_CHAIN_HEAD];
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	memset(prev, 0, SG_CHAIN_HASH_LEN);
	if (rc == 0 && sqlite3_column_bytes(st, 0) == SG_CHAIN_HASH_LEN)
		memcpy(prev, sqlite3_column_blob(st, 0), SG_CHAIN_HASH_LEN);
	*next_id = sqlite3_column_int64(st, 1) + 1;
	sqlite3_reset(st);
	return rc;
}

/*
 * Hashes the decision that gets `id` after `link[0]` into `link[1]`: each
 * row's prev is the slot before its hash, so a group binds without copies.
 */
static void
chain_link(const struct sg_decision *d, int64_t id, uint8_t link[][SG_CHAIN_HASH_LEN])
{
	struct sg_chain_val cols[SG_CHAIN_NCOLS];
	sg_chain_from_decision(d, id, SG_CHAIN_MAIN, cols);
	sg_chain_hash(link[0], cols, link[1]);
}

/* Rows in order, so the last row's id is the newest decision's. */
static int
insert_decisions(struct sg_store *s, const struct sg_decision *v, size_t n)
{
	uint8_t link[DECISIONS_PER_INSERT + 1][SG_CHAIN_HASH_LEN];
	int64_t id;
	size_t i = 0;
	if (chain_head(s, link[0], &id) != 0)
		return -1;
	for (; n - i >= DECISIONS_PER_INSERT; i += DECISIONS_PER_INSERT) {
		sqlite3_stmt *st = s->st[ST_DECISION_INSERT_MANY];
		for (int k = 0; k < DECISIONS_PER_INSERT; k++, id++) {
			chain_link(&v[i + (size_t)k], id, &link[k]);
			bind_decision(st, k * DECISION_COLUMNS, &v[i + (size_t)k], id, link[k],
			              link[k + 1]);
		}
		if (run(st) != 0)
			return -1;
		memcpy(link[0], link[DECISIONS_PER_INSERT], SG_CHAIN_HASH_LEN);
	}
	for (; i < n; i++, id++) {
		chain_link(&v[i], id, &link[0]);
		bind_decision(s->st[ST_DECISION_INSERT], 0, &v[i], id, link[0], link[1]);
		if (run(s->st[ST_DECISION_INSERT]) != 0)
			return -1;
		memcpy(link[0], link[1], SG_CHAIN_HASH_LEN);
	}
	sqlite3_stmt *st = s->st[ST_CHAIN_SET];
	sqlite3_bind_int64(st, 1, id - 1);
	sqlite3_bind_blob(st, 2, link[0], SG_CHAIN_HASH_LEN, SQLITE_STATIC);
	return n == 0 ? 0 : run(st);
}

int
sg_store_append(struct sg_store *s, const struct sg_decision *v, size_t n)
{
	return insert_decisions(s, v, n);
}

int
sg_store_record(struct sg_store *s, const struct sg_decision *v, size_t n)
{
	s->fail_code = SQLITE_OK;
	if (tx_begin(s) != 0) {
		sg_store_remember_error(s);
		return -1;
	}
	if (insert_decisions(s, v, n) != 0) {
		sg_store_remember_error(s);
		tx_rollback(s);
		return -1;
	}
	return tx_commit(s);
}

int
sg_store_count_decisions(struct sg_store *s, const char *decision, int64_t *count)
{
	sqlite3_stmt *st = s->st[decision ? ST_COUNT_BY : ST_COUNT_ALL];
	if (decision)
		bind_text(st, 1, decision);
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	*count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}
