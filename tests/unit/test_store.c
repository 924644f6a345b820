/* The SQLite store: migrations, keys, revision, versioned apply, decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../support/sg_testdir.h"
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/sg_migrations.h"
#include "store/sg_store.h"

struct fx {
	char dir[64];
	char err[256];
	struct sg_store *s;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	if (sg_testdir_make(f->dir, sizeof(f->dir), "store") != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sg_store_close(f->s);
	int rc = sg_testdir_remove(f->dir);
	free(f);
	return rc;
}

static struct sg_store *
open_ok(struct fx *f)
{
	struct sg_store *s = sg_store_open(f->dir, f->err, sizeof(f->err));
	if (s == NULL)
		fail_msg("open failed: %s", f->err);
	return s;
}

/* Runs one query on a separate raw connection and returns its first integer. */
static int64_t
raw_int(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
raw_exec(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* No message for a person may leak the SQL behind it. */
static void
assert_no_sql(const char *err)
{
	const char *words[] = {"SELECT", "INSERT", "UPDATE", "PRAGMA", "BEGIN", "CREATE"};
	assert_true(err[0] != '\0');
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(err, words[i]))
			fail_msg("SQL in message: %s", err);
}

static int64_t
revision(struct sg_store *s)
{
	int64_t rev = -1;
	assert_int_equal(sg_store_revision(s, &rev), 0);
	return rev;
}

static struct sg_key_record
key(const char *id, int64_t created_at)
{
	struct sg_key_record k = {0};
	snprintf(k.id, sizeof(k.id), "%s", id);
	memset(k.hash, id[0], sizeof(k.hash));
	snprintf(k.tenant, sizeof(k.tenant), "acme");
	snprintf(k.user, sizeof(k.user), "user-%s", id);
	snprintf(k.role, sizeof(k.role), "explorer");
	snprintf(k.mode, sizeof(k.mode), "sandbox");
	k.created_at = created_at;
	k.expires_at = created_at + 3600;
	return k;
}

static void
assert_key_equal(const struct sg_key_record *got, const struct sg_key_record *want)
{
	assert_string_equal(got->id, want->id);
	assert_memory_equal(got->hash, want->hash, SG_KEY_HASH_LEN);
	assert_string_equal(got->tenant, want->tenant);
	assert_string_equal(got->user, want->user);
	assert_string_equal(got->role, want->role);
	assert_string_equal(got->mode, want->mode);
	assert_int_equal(got->created_at, want->created_at);
	assert_int_equal(got->expires_at, want->expires_at);
	assert_int_equal(got->revoked_at, want->revoked_at);
}

/* ---- open and migrations ---- */

static void
test_open_creates_nested_dir(void **state)
{
	struct fx *f = *state;
	char nested[128], err[256];
	struct stat st;
	snprintf(nested, sizeof(nested), "%s/a/b/c", f->dir);
	struct sg_store *s = sg_store_open(nested, err, sizeof(err));
	assert_non_null(s);
	sg_store_close(s);
	assert_int_equal(stat(nested, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	strcat(nested, "/sandgate.db");
	assert_int_equal(stat(nested, &st), 0);
}

static void
test_migration_runs_once(void **state)
{
	struct fx *f = *state;
	struct sg_key_record k = key("00000000000000aa", 100), *v = NULL;
	size_t n = 0;
	char db[128];
	struct stat st;
	snprintf(db, sizeof(db), "%s/sandgate.db", f->dir);
	assert_int_equal(stat(db, &st), -1);
	f->s = open_ok(f);
	assert_int_equal(stat(db, &st), 0); /* created on the existing directory */
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(sg_store_key_insert(f->s, &k), 0);
	int64_t rev = revision(f->s);
	sg_store_close(f->s);
	f->s = NULL;
	assert_true(sg_migrations_count >= 1);
	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), sg_migrations_count);

	f->s = open_ok(f); /* a second run of step 1 would fail on CREATE TABLE */
	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), sg_migrations_count);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM meta WHERE key = 'revision'"), 1);
	assert_int_equal(revision(f->s), rev);
	assert_int_equal(sg_store_keys_list(f->s, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_key_equal(&v[0], &k);
	free(v);
}

static void
test_wal_mode(void **state)
{
	struct fx *f = *state;
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	f->s = open_ok(f);
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Schema N (this build's) opens; N + 1 and far beyond are refused untouched. */
static void
test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	const int64_t newer[] = {(int64_t)sg_migrations_count + 1, 1000};
	char sql[64], want[32];
	f->s = open_ok(f);
	sg_store_close(f->s);
	f->s = open_ok(f); /* at N exactly: nothing to do, nothing refused */
	sg_store_close(f->s);
	f->s = NULL;
	for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)newer[i]);
		raw_exec(f->dir, sql);
		f->err[0] = '\0';
		assert_null(sg_store_open(f->dir, f->err, sizeof(f->err)));
		assert_non_null(strstr(f->err, "newer"));
		assert_non_null(strstr(f->err, "created by a newer sandgate"));
		assert_non_null(strstr(f->err, "sandgate.db"));
		snprintf(want, sizeof(want), "schema %lld", (long long)newer[i]);
		assert_non_null(strstr(f->err, want));
		assert_no_sql(f->err);
		/* Refusing must not have touched it. */
		assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), newer[i]);
	}
}

static void
test_bad_data_dir(void **state)
{
	struct fx *f = *state;
	char file[128], dir[160];
	snprintf(file, sizeof(file), "%s/plain", f->dir);
	int fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(dir, sizeof(dir), "%s/sub", file);
	assert_null(sg_store_open(dir, f->err, sizeof(f->err)));
	char want[256];
	snprintf(want, sizeof(want), "cannot open the data directory %s: Not a directory", dir);
	assert_string_equal(f->err, want);
	/* A file where the directory should be is refused too, not mistaken for one. */
	assert_null(sg_store_open(file, f->err, sizeof(f->err)));
	snprintf(want, sizeof(want), "cannot open the data directory %s: Not a directory", file);
	assert_string_equal(f->err, want);
}

/* The mode of DIR/NAME, or -1 when it does not exist. */
static int
mode_of(const char *dir, const char *name)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/*
 * In a 0755 directory, under the common umask 022, SQLite made the
 * database and its WAL files 0644: anyone on the machine could read the
 * audit and the key hashes.
 */
static void
test_store_files_are_private(void **state)
{
	struct fx *f = *state;
	struct sg_decision d = {.ts_us = 1, .decision = "allowed", .status = 200};
	mode_t old = umask(022);
	assert_int_equal(chmod(f->dir, 0755), 0);
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, &d, 1), 0); /* the WAL holds a write */
	umask(old);
	assert_int_equal(mode_of(f->dir, "sandgate.db"), 0600);
	assert_int_equal(mode_of(f->dir, "sandgate.db-wal"), 0600);
	assert_int_equal(mode_of(f->dir, "sandgate.db-shm"), 0600);
}

/* Files an older sandgate left readable are made private when the store opens. */
static void
test_readable_store_files_are_made_private(void **state)
{
	struct fx *f = *state;
	char path[128];
	f->s = open_ok(f);
	sg_store_close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(chmod(path, 0644), 0);
	f->s = open_ok(f);
	assert_int_equal(mode_of(f->dir, "sandgate.db"), 0600);
	assert_int_equal(mode_of(f->dir, "sandgate.db-wal"), 0600);
}

/*
 * Whether another process would see this one holding a read lock on the
 * database: SQLite's shared lock is a read lock on bytes 0x40000002 to
 * +510 of the file, and a connection in WAL mode keeps it while it is open
 * (a closing connection that can take the whole file deletes the WAL).
 */
static bool
others_see_a_shared_lock(const char *path)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = {
		    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000002, .l_len = 510};
		int fd = open(path, O_RDWR);
		_exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_RDLCK ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Opening a second store must leave the first one's locks alone: closing
 * any descriptor of a file drops every POSIX lock the process holds on it.
 * A store that opened (and closed) the database itself to set its mode
 * dropped the gateway's shared lock, so another program's last close took
 * the file, checkpointed and deleted the WAL the gateway was still writing:
 * new rows vanished from every other reader until the gateway stopped.
 */
static void
test_second_open_keeps_the_first_ones_locks(void **state)
{
	struct fx *f = *state;
	struct sg_decision d = {.ts_us = 1, .decision = "allowed", .status = 200};
	char path[128];
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, &d, 1), 0);
	assert_true(others_see_a_shared_lock(path));
	struct sg_store *second = open_ok(f);
	assert_true(others_see_a_shared_lock(path));
	sg_store_close(second);
}

/* A directory others may write is refused, with the fix in the message. */
static void
test_writable_data_dir_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		mode_t mode;
		const char *who;
	} cases[] = {{0775, "its group"}, {0757, "every user"}, {01777, "every user"}};
	char want[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(chmod(f->dir, cases[i].mode), 0);
		f->err[0] = '\0';
		assert_null(sg_store_open(f->dir, f->err, sizeof(f->err)));
		snprintf(want, sizeof(want),
		         "the data directory %s can be written by %s (mode %04o)", f->dir,
		         cases[i].who, (unsigned)cases[i].mode);
		assert_non_null(strstr(f->err, want));
		snprintf(want, sizeof(want), "run 'chmod go-w %s'", f->dir);
		assert_non_null(strstr(f->err, want));
		assert_int_equal(mode_of(f->dir, "sandgate.db"), -1); /* nothing was created */
	}
	assert_int_equal(chmod(f->dir, 0755), 0); /* readable by others is allowed */
	f->s = open_ok(f);
}

static void
test_not_a_database(void **state)
{
	struct fx *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not a database file. ", fp);
	fclose(fp);
	assert_null(sg_store_open(f->dir, f->err, sizeof(f->err)));
	assert_non_null(strstr(f->err, path));
	assert_no_sql(f->err);
}

/* ---- keys and revision ---- */

static void
test_keys_insert_list_revoke(void **state)
{
	struct fx *f = *state;
	struct sg_key_record a = key("00000000000000aa", 100), b = key("00000000000000bb", 200);
	struct sg_key_record *v = NULL;
	size_t n = 0;
	f->s = open_ok(f);
	assert_int_equal(sg_store_keys_list(f->s, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(sg_store_key_insert(f->s, &a), 0);
	assert_int_equal(sg_store_key_insert(f->s, &b), 0);
	assert_int_equal(sg_store_key_insert(f->s, &a), -1); /* the id is unique */

	assert_int_equal(sg_store_keys_list(f->s, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, b.id); /* newest first */
	assert_string_equal(v[1].id, a.id);
	assert_key_equal(&v[1], &a);
	free(v);

	assert_int_equal(sg_store_key_revoke(f->s, a.id, 300), 0);
	assert_int_equal(sg_store_key_revoke(f->s, a.id, 400), 1);
	assert_int_equal(sg_store_key_revoke(f->s, "ffffffffffffffff", 400), 1);
	assert_int_equal(sg_store_keys_list(f->s, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[1].revoked_at, 300); /* the second revoke changed nothing */
	assert_int_equal(v[0].revoked_at, 0);
	free(v);
}

/* The old key's row after a rotation: (expires_at, revoked_at, replaced_by). */
static struct sg_key_record
find_key(struct sg_store *s, const char *id)
{
	struct sg_key_record *v = NULL, out = {0};
	size_t n = 0;
	assert_int_equal(sg_store_keys_list(s, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, id) == 0)
			out = v[i];
	free(v);
	assert_string_equal(out.id, id);
	return out;
}

static void
test_key_rotate(void **state)
{
	struct fx *f = *state;
	struct sg_key_record a = key("00000000000000aa", 100), b = key("00000000000000bb", 500);
	struct sg_key_record c = key("00000000000000cc", 600), d = key("00000000000000dd", 700);
	f->s = open_ok(f);
	a.expires_at = 0; /* never expires: the overlap gives it an end */
	assert_int_equal(sg_store_key_insert(f->s, &a), 0);
	int64_t r0 = revision(f->s);
	assert_int_equal(sg_store_key_rotate(f->s, a.id, &b, 500 + 86400, 500), 0);
	assert_true(revision(f->s) > r0);
	struct sg_key_record got = find_key(f->s, a.id);
	assert_int_equal(got.expires_at, 500 + 86400);
	assert_int_equal(got.revoked_at, 0);
	assert_string_equal(got.replaced_by, b.id);
	got = find_key(f->s, b.id);
	assert_key_equal(&got, &b);
	assert_string_equal(got.replaced_by, "");

	/* Rotated once already: a second successor is refused and nothing is stored. */
	int64_t r1 = revision(f->s);
	assert_int_equal(sg_store_key_rotate(f->s, a.id, &c, 600 + 60, 600), 1);
	assert_int_equal(revision(f->s), r1);
	assert_int_equal(sg_store_key_rotate(f->s, "ffffffffffffffff", &c, 660, 600), 1);
	/* An overlap never extends a key: b expires at 4100, before 600 + 86400. */
	assert_int_equal(sg_store_key_rotate(f->s, b.id, &c, 600 + 86400, 600), 0);
	assert_int_equal(find_key(f->s, b.id).expires_at, 500 + 3600);
	/* Overlap 0 revokes at once and keeps the expiry as it was. */
	assert_int_equal(sg_store_key_rotate(f->s, c.id, &d, 0, 700), 0);
	got = find_key(f->s, c.id);
	assert_int_equal(got.revoked_at, 700);
	assert_int_equal(got.expires_at, 600 + 3600);
	assert_string_equal(got.replaced_by, d.id);
	/* Expired or revoked keys are not rotated; a successor id already taken rolls back. */
	struct sg_key_record e = key("00000000000000ee", 800);
	assert_int_equal(sg_store_key_rotate(f->s, c.id, &e, 900, 800), 1);
	assert_int_equal(sg_store_key_rotate(f->s, b.id, &e, 9000, 5000), 1);
	int64_t r2 = revision(f->s);
	assert_int_equal(sg_store_key_rotate(f->s, d.id, &a, 900, 800), -1);
	assert_int_equal(revision(f->s), r2);
	assert_string_equal(find_key(f->s, d.id).replaced_by, "");
}

static void
test_revision_bumps(void **state)
{
	struct fx *f = *state;
	struct sg_key_record a = key("00000000000000aa", 100);
	struct sg_store_doc doc = {.kind = "policy", .name = "main", .file = "p.yaml", .text = "x"};
	char err[256];
	f->s = open_ok(f);
	struct sg_store *other = open_ok(f); /* another process, like the CLI */
	int64_t r0 = revision(f->s);
	assert_int_equal(r0, 0);
	assert_int_equal(sg_store_key_insert(f->s, &a), 0);
	int64_t r1 = revision(f->s);
	assert_true(r1 > r0);
	assert_int_equal(revision(other), r1);
	assert_int_equal(sg_store_key_insert(f->s, &a), -1);
	assert_int_equal(revision(f->s), r1); /* a failed insert is no change */
	assert_int_equal(sg_store_key_revoke(f->s, a.id, 5), 0);
	int64_t r2 = revision(f->s);
	assert_true(r2 > r1);
	assert_int_equal(sg_store_key_revoke(f->s, a.id, 6), 1);
	assert_int_equal(revision(f->s), r2); /* nothing revoked, nothing changed */
	assert_int_equal(sg_store_apply(other, &doc, 1, err, sizeof(err)), 0);
	int64_t r3 = revision(f->s);
	assert_true(r3 > r2);
	sg_store_close(other);
}

/* ---- definitions ---- */

static void
fill_docs(struct sg_store_doc d[3], const char *text)
{
	static const char *const kinds[] = {"policy", "connector", "connector"};
	static const char *const names[] = {"main", "mail", "crm"};
	for (int i = 0; i < 3; i++) {
		d[i].kind = (char *)kinds[i];
		d[i].name = (char *)names[i];
		d[i].file = (char *)"defs.yaml";
		d[i].text = (char *)text;
		d[i].version = -1;
	}
}

/* An apply checked against an older revision must not land. */
static void
test_apply_if_refuses_a_moved_revision(void **state)
{
	struct fx *f = *state;
	struct sg_store_doc d[3];
	int64_t rev, after;
	f->s = open_ok(f);
	assert_int_equal(sg_store_revision(f->s, &rev), 0);
	fill_docs(d, "one");
	assert_int_equal(sg_store_apply_if(f->s, d, 3, rev, f->err, sizeof(f->err)), 0);
	assert_int_equal(d[0].version, 1);
	/* `rev` is stale now: the first apply moved it. */
	fill_docs(d, "two");
	for (int i = 0; i < 3; i++)
		d[i].version = 0;
	assert_int_equal(sg_store_apply_if(f->s, d, 3, rev, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "run it again"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].version, 0);
	assert_int_equal(sg_store_revision(f->s, &after), 0);
	assert_int_equal(sg_store_apply_if(f->s, d, 3, after, f->err, sizeof(f->err)), 0);
	assert_int_equal(d[0].version, 2);
}

static void
test_apply_versions(void **state)
{
	struct fx *f = *state;
	struct sg_store_doc d[3], *live = NULL;
	size_t n = 0;
	f->s = open_ok(f);
	fill_docs(d, "one");
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].version, 1);
	fill_docs(d, "two");
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(d[i].version, 2);
	fill_docs(d, "three");
	assert_int_equal(sg_store_apply(f->s, &d[2], 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(d[2].version, 3);

	assert_int_equal(sg_store_live_docs(f->s, &live, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(live[0].kind, "connector");
	assert_string_equal(live[0].name, "crm");
	assert_int_equal(live[0].version, 3);
	assert_string_equal(live[0].text, "three");
	assert_string_equal(live[1].name, "mail");
	assert_int_equal(live[1].version, 2);
	assert_string_equal(live[1].text, "two");
	assert_string_equal(live[2].kind, "policy");
	assert_int_equal(live[2].version, 2);
	assert_string_equal(live[2].file, "defs.yaml");
	sg_store_docs_free(live, n);
	/* Old versions are kept, not replaced. */
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM documents"), 7);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM applies"), 3);
	sg_store_docs_free(NULL, 0);
}

/* After a refused apply: same revision, same live docs, no applies row, no versions given. */
static void
assert_nothing_applied(struct fx *f, const struct sg_store_doc *d, size_t n, int64_t rev)
{
	struct sg_store_doc *live = NULL;
	size_t n_live = 0;
	assert_no_sql(f->err);
	assert_non_null(strstr(f->err, "nothing was applied"));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(d[i].version, -1);
	assert_int_equal(revision(f->s), rev);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM applies"), 1);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM documents"), 1);
	assert_int_equal(sg_store_live_docs(f->s, &live, &n_live), 0);
	assert_int_equal(n_live, 1);
	assert_int_equal(live[0].version, 1);
	assert_string_equal(live[0].text, "one");
	sg_store_docs_free(live, n_live);
}

static void
test_failed_apply_stores_nothing(void **state)
{
	struct fx *f = *state;
	struct sg_store_doc d[3];
	f->s = open_ok(f);
	fill_docs(d, "one");
	assert_int_equal(sg_store_apply(f->s, d, 1, f->err, sizeof(f->err)), 0);
	int64_t rev = revision(f->s);

	/* The bad document comes last, after the others were already written. */
	fill_docs(d, "two");
	d[2].name = NULL;
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), -1);
	assert_nothing_applied(f, d, 3, rev);

	/* A document with no kind, in the middle of the batch. */
	fill_docs(d, "two");
	d[1].kind = NULL;
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "no kind or name"));
	assert_nothing_applied(f, d, 3, rev);

	/* The same, refused by the database itself (NOT NULL text). */
	fill_docs(d, "two");
	d[2].text = NULL;
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "connector \"crm\" from defs.yaml"));
	assert_nothing_applied(f, d, 3, rev);

	/* No transaction was left open: the next apply works and continues the numbering. */
	fill_docs(d, "two");
	assert_int_equal(sg_store_apply(f->s, d, 3, f->err, sizeof(f->err)), 0);
	assert_int_equal(d[0].version, 2);
	assert_int_equal(d[2].version, 1);
	assert_true(revision(f->s) > rev);
}

/* ---- decisions ---- */

static struct sg_decision
decision(const char *what, int status)
{
	struct sg_decision d = {0};
	d.ts_us = 1700000000000000LL;
	snprintf(d.trace_id, sizeof(d.trace_id), "0123456789abcdef0123456789abcdef");
	snprintf(d.tenant, sizeof(d.tenant), "acme");
	snprintf(d.connector, sizeof(d.connector), "crm");
	snprintf(d.operation, sizeof(d.operation), "list_contacts");
	snprintf(d.decision, sizeof(d.decision), "%s", what);
	d.status = status;
	d.latency_us = 1234;
	d.cost = 1.5;
	return d;
}

static void
test_record_and_count(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[3] = {decision("allowed", 200), decision("denied", 403),
	                           decision("allowed", 200)};
	int64_t c = -1;
	f->s = open_ok(f);
	assert_int_equal(sg_store_count_decisions(f->s, NULL, &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(sg_store_record(f->s, v, 3), 0);
	assert_int_equal(sg_store_record(f->s, v, 0), 0);
	assert_int_equal(sg_store_count_decisions(f->s, NULL, &c), 0);
	assert_int_equal(c, 3);
	assert_int_equal(sg_store_count_decisions(f->s, "allowed", &c), 0);
	assert_int_equal(c, 2);
	assert_int_equal(sg_store_count_decisions(f->s, "denied", &c), 0);
	assert_int_equal(c, 1);
	assert_int_equal(sg_store_count_decisions(f->s, "error", &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE status = 403"
	                                 " AND key_id IS NULL AND latency_us = 1234"),
	                 1);
}

static void
test_record_bounds_unterminated_fields(void **state)
{
	struct fx *f = *state;
	struct sg_decision d = decision("allowed", 200);
	int64_t c = -1;
	memset(d.tenant, 'x', sizeof(d.tenant)); /* no NUL anywhere */
	memset(d.reason, 'r', sizeof(d.reason));
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, &d, 1), 0);
	assert_int_equal(sg_store_count_decisions(f->s, "allowed", &c), 0);
	assert_int_equal(c, 1);
	assert_int_equal(raw_int(f->dir, "SELECT length(tenant) FROM decisions"), 64);
	assert_int_equal(raw_int(f->dir, "SELECT length(reason) FROM decisions"), 256);
}

/* 37 = two statements of 16 rows and five single rows: all land, in order, each with its own
 * fields. */
static void
test_record_many_keeps_rows_in_order(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[37];
	f->s = open_ok(f);
	for (int i = 0; i < 37; i++) {
		v[i] = decision(i % 3 ? "allowed" : "denied", i % 3 ? 200 : 403);
		v[i].ts_us += i;
		v[i].latency_us = 1000 + i;
		snprintf(v[i].user, sizeof(v[i].user), "u%d", i);
		if (i == 20 || i == 34)
			v[i].reason[0] = '\0'; /* empty reads back as NULL, in either statement */
		else
			snprintf(v[i].reason, sizeof(v[i].reason), "r%d", i);
	}
	assert_int_equal(sg_store_record(f->s, v, 37), 0);
	assert_int_equal(sg_store_last_decision_id(f->s), 37);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions"), 37);
	/* Row i has decision i's fields: the id, time, user and latency all agree. */
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE"
	                                 " ts_us - 1700000000000000 = id - 1 AND"
	                                 " latency_us = 999 + id AND user = 'u' || (id - 1)"),
	                 37);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE reason ="
	                                 " 'r' || (id - 1)"),
	                 35);
	assert_int_equal(raw_int(f->dir, "SELECT sum(id) FROM decisions WHERE reason IS NULL"),
	                 21 + 35);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE"
	                                 " (decision = 'denied') = ((id - 1) % 3 = 0)"),
	                 37);
	/* A batch that ends with a 16-row statement, as a full one of 256 does. */
	assert_int_equal(sg_store_record(f->s, v, 32), 0);
	assert_int_equal(sg_store_last_decision_id(f->s), 69);
	assert_int_equal(raw_int(f->dir, "SELECT latency_us FROM decisions WHERE id = 69"), 1031);
}

/*
 * The queue wait goes through both insert statements (16 rows, then one):
 * each row keeps its own, 0 stays 0 (never waited) rather than NULL, and
 * a wait far past any 32-bit value survives.
 */
static void
test_queue_wait_round_trips(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[17];
	f->s = open_ok(f);
	for (int i = 0; i < 17; i++) {
		v[i] = decision("allowed", 200);
		v[i].ts_us += i;
		v[i].queue_wait_us = i == 0 ? 0 : (int64_t)i * 250000 + 7;
	}
	v[16].queue_wait_us = 5000000000LL;
	assert_int_equal(sg_store_record(f->s, v, 17), 0);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE"
	                                 " typeof(queue_wait_us) = 'integer' AND queue_wait_us ="
	                                 " CASE id WHEN 1 THEN 0 WHEN 17 THEN 5000000000"
	                                 " ELSE (id - 1) * 250000 + 7 END"),
	                 17);
}

/* Calls recorded before migration 5 say nothing of their wait: NULL, not a claimed 0. */
static void
test_queue_wait_migration_leaves_older_rows_unknown(void **state)
{
	struct fx *f = *state;
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(sqlite3_exec(db, sg_migrations[i], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	raw_exec(f->dir, "INSERT INTO decisions (ts_us, decision, status)"
	                 " VALUES (1700000000000000, 'allowed', 200)");
	f->s = open_ok(f);
	struct sg_decision d = decision("throttled", 429);
	d.queue_wait_us = 812345;
	assert_int_equal(sg_store_record(f->s, &d, 1), 0);
	assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), (int)sg_migrations_count);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM decisions WHERE id = 1"
	                                 " AND queue_wait_us IS NULL"),
	                 1);
	assert_int_equal(raw_int(f->dir, "SELECT queue_wait_us FROM decisions WHERE id = 2"),
	                 812345);
}

/* Keys stored before migration 6 were never rotated, and can be now. */
static void
test_keys_migrate_unrotated(void **state)
{
	struct fx *f = *state;
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(sqlite3_exec(db, sg_migrations[i], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	raw_exec(f->dir, "INSERT INTO keys (id, hash, tenant, user, role, mode, created_at)"
	                 " VALUES ('00000000000000aa', x'00', 'acme', 'u', 'explorer', 'sandbox',"
	                 " 100)");
	f->s = open_ok(f);
	struct sg_key_record got = find_key(f->s, "00000000000000aa");
	assert_string_equal(got.replaced_by, "");
	struct sg_key_record b = key("00000000000000bb", 200);
	assert_int_equal(sg_store_key_rotate(f->s, got.id, &b, 300, 200), 0);
	assert_string_equal(find_key(f->s, got.id).replaced_by, b.id);
}

struct spend_seen {
	char line[8][96];
	size_t n;
};

/* Sums what sg_store_spend_since reports per key: it may report one key twice. */
static void
collect_spend(void *arg, const char *tenant, const char *user, bool sandbox, int64_t day_start_s,
              int64_t micros)
{
	struct spend_seen *seen = arg;
	char key[80];
	snprintf(key, sizeof(key), "%s/%s/%s/%lld=", tenant, user, sandbox ? "sandbox" : "live",
	         (long long)day_start_s);
	for (size_t i = 0; i < seen->n; i++) {
		size_t len = strlen(key);
		if (strncmp(seen->line[i], key, len) == 0) {
			long long was = atoll(seen->line[i] + len);
			snprintf(seen->line[i] + len, sizeof(seen->line[0]) - len, "%lld",
			         was + (long long)micros);
			return;
		}
	}
	assert_true(seen->n < 8);
	snprintf(seen->line[seen->n++], sizeof(seen->line[0]), "%s%lld", key, (long long)micros);
}

static int
by_text(const void *a, const void *b)
{
	return strcmp(a, b);
}

static struct spend_seen
spend_since(struct sg_store *s, int64_t since_us)
{
	struct spend_seen seen = {0};
	assert_int_equal(sg_store_spend_since(s, since_us, collect_spend, &seen), 0);
	qsort(seen.line, seen.n, sizeof(seen.line[0]), by_text);
	return seen;
}

/* A costed, allowed call by `user` in `mode`, `days` after the fixture's day. */
static struct sg_decision
spend(const char *user, const char *mode, int days, double cost)
{
	struct sg_decision d = decision("allowed", 200);
	snprintf(d.user, sizeof(d.user), "%s", user);
	snprintf(d.mode, sizeof(d.mode), "%s", mode);
	d.ts_us += days * 86400000000LL;
	d.cost = cost;
	return d;
}

#define DAY0 1699920000LL /* the UTC midnight before decision()'s ts_us */

static void
test_spend_is_counted_from_the_record_and_the_tally(void **state)
{
	struct fx *f = *state;
	struct sg_decision v[] = {
	    spend("ann", "live", 0, 0.0015),   spend("ann", "live", 0, 0.0025),
	    spend("ann", "sandbox", 0, 0.002), spend("bob", "live", 1, 1.25),
	    spend("ann", "live", -40, 9), /* a day before the month asked for */
	    spend("ann", "live", 0, 0),   /* free */
	    spend("", "live", 0, 5),      /* nobody's money */
	};
	struct sg_decision refused = spend("ann", "live", 0, 7);
	snprintf(refused.decision, sizeof(refused.decision), "throttled");
	f->s = open_ok(f);
	assert_int_equal(sg_store_record(f->s, v, 7), 0);
	assert_int_equal(sg_store_record(f->s, &refused, 1), 0);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(sg_decision_spends(&v[i]), i < 5);
	assert_false(sg_decision_spends(&refused));

	/* Nothing flushed yet: all of it comes from the decisions after the mark. */
	const char *want[] = {"acme/ann/live/1699920000=4000", "acme/ann/sandbox/1699920000=2000",
	                      "acme/bob/live/1700006400=1250000"};
	struct spend_seen seen = spend_since(f->s, DAY0 * 1000000 + 5);
	assert_int_equal(seen.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(seen.line[i], want[i]);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM spend_daily"), 0);

	/* Counted into the daily rows: the same answer, and the mark has moved. */
	assert_int_equal(sg_store_spend_catch_up(f->s), 0);
	assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM spend_daily"), 4);
	assert_int_equal(raw_int(f->dir, "SELECT value FROM meta WHERE key = 'spend_through'"), 8);
	seen = spend_since(f->s, DAY0 * 1000000 + 5);
	assert_int_equal(seen.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(seen.line[i], want[i]);
	assert_int_equal(spend_since(f->s, 0).n, 4);

	/* A writer's flush adds its tally and moves the mark past what it counted. */
	struct sg_decision more = spend("ann", "live", 0, 0.001);
	assert_int_equal(sg_store_record(f->s, &more, 1), 0);
	struct sg_spend_row row = {"acme", "ann", "live", DAY0 / 86400, 1000};
	assert_int_equal(sg_store_spend_flush(f->s, &row, 1, sg_store_last_decision_id(f->s)), 0);
	assert_int_equal(raw_int(f->dir, "SELECT value FROM meta WHERE key = 'spend_through'"), 9);
	seen = spend_since(f->s, DAY0 * 1000000);
	assert_string_equal(seen.line[0], "acme/ann/live/1699920000=5000");
}

/* A store from before migration 4 has its recorded spending summed into the new table. */
static void
test_spend_migration_fills_from_decisions(void **state)
{
	struct fx *f = *state;
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sandgate.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(sqlite3_exec(db, sg_migrations[i], NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	raw_exec(f->dir,
	         "INSERT INTO decisions (ts_us, tenant, user, mode, decision, status, cost)"
	         " VALUES (1700000000000000, 'acme', 'ann', 'live', 'allowed', 200, 0.0015),"
	         " (1700000000000001, 'acme', 'ann', 'live', 'allowed', 200, 0.0025),"
	         " (1700000000000002, 'acme', 'ann', 'live', 'denied', 403, 0.5),"
	         " (1700000000000003, NULL, NULL, NULL, 'allowed', 200, 0.5)");
	f->s = open_ok(f);
	struct spend_seen seen = spend_since(f->s, DAY0 * 1000000);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.line[0], "acme/ann/live/1699920000=4000");
	/* New calls add to the rows the migration made. */
	struct sg_decision more = spend("ann", "live", 0, 0.001);
	assert_int_equal(sg_store_record(f->s, &more, 1), 0);
	seen = spend_since(f->s, DAY0 * 1000000);
	assert_string_equal(seen.line[0], "acme/ann/live/1699920000=5000");
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_open_creates_nested_dir),
	    T(test_migration_runs_once),
	    T(test_wal_mode),
	    T(test_newer_schema_refused),
	    T(test_bad_data_dir),
	    T(test_not_a_database),
	    T(test_store_files_are_private),
	    T(test_readable_store_files_are_made_private),
	    T(test_second_open_keeps_the_first_ones_locks),
	    T(test_writable_data_dir_refused),
	    T(test_keys_insert_list_revoke),
	    T(test_key_rotate),
	    T(test_keys_migrate_unrotated),
	    T(test_revision_bumps),
	    T(test_apply_versions),
	    T(test_apply_if_refuses_a_moved_revision),
	    T(test_failed_apply_stores_nothing),
	    T(test_record_and_count),
	    T(test_record_bounds_unterminated_fields),
	    T(test_record_many_keeps_rows_in_order),
	    T(test_queue_wait_round_trips),
	    T(test_queue_wait_migration_leaves_older_rows_unknown),
	    T(test_spend_is_counted_from_the_record_and_the_tally),
	    T(test_spend_migration_fills_from_decisions),
	};
#undef T
	sg_store_close(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
