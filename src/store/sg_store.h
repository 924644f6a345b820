/*
 * sg_store: the embedded SQLite store (WAL mode, one file under the data
 * directory).  Numbered migrations run at open.  One sg_store is one
 * connection and must be used by one thread at a time; open one per thread
 * that needs it.  Statements are prepared at open and finalized at close.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_keys.h"
#include "core/sg_vault.h"

struct sg_store;

/*
 * Opens (creating when needed) DATA_DIR/sandgate.db and migrates it.  On
 * failure returns NULL with a message for a person in `err` (no SQL).
 * A data directory its group or other users may write is refused; the
 * database and its -wal and -shm files are kept readable by their owner
 * only (0600), and missing directories are made 0700.
 */
struct sg_store *sg_store_open(const char *data_dir, char *err, size_t errlen);
void sg_store_close(struct sg_store *s);
/* Why the last call on `s` failed, in words for a log line (no SQL). */
const char *sg_store_last_error(struct sg_store *s);
/*
 * How long a write waits for another connection's lock before it fails
 * (5 s from open).  The writer thread waits less and retries instead.
 */
void sg_store_set_busy_timeout(struct sg_store *s, int ms);

/* ---- keys ---- */

struct sg_key_record {
	char id[SG_KEY_ID_LEN + 1];
	uint8_t hash[SG_KEY_HASH_LEN];
	char tenant[64];
	char user[64];
	char role[64];
	char mode[16];      /* "sandbox" | "live" */
	int64_t created_at; /* unix seconds */
	int64_t expires_at; /* unix seconds; 0 = never */
	int64_t revoked_at; /* unix seconds; 0 = active */
	/* The successor's id once rotated ("" before); expires_at is then the overlap's end. */
	char replaced_by[SG_KEY_ID_LEN + 1];
};

int sg_store_key_insert(struct sg_store *s, const struct sg_key_record *k);
/* Returns 0 when revoked now, 1 when no such key or already revoked, -1 on error. */
int sg_store_key_revoke(struct sg_store *s, const char *id, int64_t now);
/*
 * Retires key `old_id` in favour of `next` (inserted) in one transaction:
 * the old key keeps working until `overlap_end` (unix seconds; an earlier
 * expiry stands), or is revoked at `now` when `overlap_end` is 0.  Returns
 * 0 when rotated, 1 when no such key is active (unknown, revoked, expired,
 * or already rotated), -1 on error.
 */
int sg_store_key_rotate(struct sg_store *s, const char *old_id, const struct sg_key_record *next,
                        int64_t overlap_end, int64_t now);
/* All keys, newest first.  Free *out with free(). */
int sg_store_keys_list(struct sg_store *s, struct sg_key_record **out, size_t *n);

/*
 * A counter bumped by every key change and every apply, so that a running
 * server notices changes made by other processes (the CLI) cheaply.
 */
int sg_store_revision(struct sg_store *s, int64_t *rev);

/* ---- definitions (connectors and policies), versioned ---- */

struct sg_store_doc {
	char *kind; /* "connector" | "policy" */
	char *name;
	int64_t version; /* assigned by sg_store_apply; 1, 2, ... per (kind, name) */
	char *file;      /* path it was applied from */
	char *text;      /* YAML source */
};

/*
 * Stores every document as the next version of its (kind, name), in one
 * transaction: either all become live or none does.  Fills in each doc's
 * version and returns 0; -1 with `err` on failure.
 */
int sg_store_apply(struct sg_store *s, struct sg_store_doc *docs, size_t n, char *err,
                   size_t errlen);
/*
 * The same, but only if the store's revision is still `expect_rev` inside
 * the write transaction (optimistic concurrency: the caller validated
 * against what it read at that revision).  A negative `expect_rev` skips
 * the check.  A moved revision fails with nothing stored.
 */
int sg_store_apply_if(struct sg_store *s, struct sg_store_doc *docs, size_t n, int64_t expect_rev,
                      char *err, size_t errlen);
/* The newest version of every (kind, name).  Free with sg_store_docs_free. */
int sg_store_live_docs(struct sg_store *s, struct sg_store_doc **out, size_t *n);
void sg_store_docs_free(struct sg_store_doc *docs, size_t n);

/* ---- decisions (audit of every governed request) ---- */

struct sg_decision {
	int64_t ts_us; /* unix microseconds */
	char trace_id[33];
	char key_id[SG_KEY_ID_LEN + 1];
	char tenant[64];
	char user[64];
	char role[64];
	char mode[16];
	char connector[64];
	char operation[64];
	char decision[16]; /* allowed | denied | throttled | invalid | unauthenticated | not_found |
	                      error */
	int status;
	char code[48];
	char reason[256];
	int64_t latency_us;
	double cost;
	char session_id[SG_KEY_ID_LEN + 1]; /* empty: not made in a session */
	/*
	 * Time the call spent in its tenant's fair queue before it was admitted
	 * or refused; 0 when it never waited.  What a test or an operator needs
	 * to tell queueing from any other slowness.
	 */
	int64_t queue_wait_us;
	/* A live call: the failover connector that answered ("": the one asked), and its
	 * upstream attempts as JSON (sg_req_attempts_write; "": none were made). */
	char served_by[64];
	char upstream[512];
	/*
	 * What the DLP screen found and did, as JSON: [{"dir":"request",
	 * "path":"/card","rule":"card","class":"financial.card","action":"mask"}, ...],
	 * never the value; "": nothing found.  Cut at a whole event when full.
	 */
	char dlp[768];
};

/* Inserts a batch in one transaction. */
int sg_store_record(struct sg_store *s, const struct sg_decision *v, size_t n);
/* Counts decisions, optionally only those with `decision` (NULL = all). */
int sg_store_count_decisions(struct sg_store *s, const char *decision, int64_t *count);

/* ---- the audit chain (sg_store_chain.c; docs/audit.md) ---- */

#define SG_CHAIN_HASH_LEN 32
/* The chain every writer of one SQLite store extends. */
#define SG_CHAIN_MAIN "main"
/* The decision a retention checkpoint carries. */
#define SG_CHAIN_CHECKPOINT "checkpoint"

/*
 * The hashed columns of a decisions row, in the order the canonical
 * encoding takes them (docs/audit.md).  prev_hash and hash are not among
 * them: the hash covers the previous hash separately.
 */
enum {
	SG_CHAIN_COL_ID,
	SG_CHAIN_COL_CHAIN,
	SG_CHAIN_COL_TS_US,
	SG_CHAIN_COL_DECISION = 11,
	SG_CHAIN_COL_REASON = 14,
	SG_CHAIN_NCOLS = 22
};
extern const char *const sg_chain_columns[SG_CHAIN_NCOLS];

/* One stored value, typed as SQLite stores it. */
enum sg_chain_type { SG_CV_NULL, SG_CV_INT, SG_CV_REAL, SG_CV_TEXT, SG_CV_BLOB };
struct sg_chain_val {
	enum sg_chain_type type;
	int64_t i;
	double r;
	const void *p; /* TEXT and BLOB; borrowed for the duration of the hash */
	size_t len;
};

/* A record's time as RFC 3339 UTC with microseconds, the way verify names records. */
#define SG_CHAIN_TIME_LEN 40
void sg_chain_time(int64_t ts_us, char out[SG_CHAIN_TIME_LEN]);

/* hash = BLAKE2b-256(prev || canonical encoding of `cols`). */
void sg_chain_hash(const uint8_t prev[SG_CHAIN_HASH_LEN], const struct sg_chain_val *cols,
                   uint8_t out[SG_CHAIN_HASH_LEN]);
/*
 * The values a decision is stored as with id `id` on chain `chain`: empty
 * text is NULL (as it is bound), NaN cost is NULL and -0.0 is 0.0 (as SQLite
 * keeps them).  Borrows from `d` and `chain`.
 */
void sg_chain_from_decision(const struct sg_decision *d, int64_t id, const char *chain,
                            struct sg_chain_val cols[SG_CHAIN_NCOLS]);

/*
 * Walks records in chain order and says at the first one that is wrong.
 * Fed by sg_store_chain_verify from the store, or by an export file.
 */
struct sg_chain_walk {
	uint8_t expect[SG_CHAIN_HASH_LEN]; /* the previous record's hash, or the anchor */
	int64_t n;                         /* records that checked out */
	int64_t last_id, last_ts_us;
	bool bad;
	int64_t bad_id, bad_ts_us;
	char what[512]; /* for an admin: which record and what is wrong */
};
void sg_chain_walk_begin(struct sg_chain_walk *w, const uint8_t anchor[SG_CHAIN_HASH_LEN]);
/*
 * Checks one record: its stored hash against its contents, and its prev
 * against the record before.  `prev` or `hash` NULL: the row carries none.
 * Returns 0 while the chain holds, -1 once it is broken (w->what says why).
 */
int sg_chain_walk_next(struct sg_chain_walk *w, const struct sg_chain_val *cols,
                       const uint8_t *prev, const uint8_t *hash);
/* Marks the walk broken at the record (id, ts) with a sentence. */
void sg_chain_walk_fail(struct sg_chain_walk *w, int64_t id, int64_t ts_us, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Recomputes chain `chain` from its anchor (32 zero bytes, or the hash the
 * newest retention checkpoint names) to its head in meta.  0 with the walk
 * filled (w->bad says whether it holds), -1 on a store error.
 */
int sg_store_chain_verify(struct sg_store *s, const char *chain, struct sg_chain_walk *w);
/* The head of `chain`: its newest id and hash (0 and zeros when empty). */
int sg_store_chain_head(struct sg_store *s, const char *chain, int64_t *id,
                        uint8_t hash[SG_CHAIN_HASH_LEN]);
/*
 * Retention: deletes up to `max` of the oldest records of the main chain,
 * in chain order, while they are older than `before_us`, and appends a
 * checkpoint naming the last pruned record's hash and the count, in one
 * transaction.  *pruned gets the count (0: nothing was old enough, and no
 * checkpoint is written).
 */
int sg_store_chain_prune(struct sg_store *s, int64_t before_us, int64_t now_us, int max,
                         int64_t *pruned);
/*
 * Calls `fn` for every record of `chain` with ts_us in [since_us, until_us],
 * in chain order, with its columns, prev and hash.  A non-zero return from
 * `fn` stops the walk and is returned.
 */
int sg_store_chain_each(struct sg_store *s, const char *chain, int64_t since_us, int64_t until_us,
                        int (*fn)(void *arg, const struct sg_chain_val *cols, const uint8_t *prev,
                                  const uint8_t *hash),
                        void *arg);
/* ---- audit queries for admins (sg_store_audit.c) ---- */

#define SG_AUDIT_LIMIT_DEFAULT 50
#define SG_AUDIT_LIMIT_MAX 1000
/* Room for a cursor as sg_store_audit_query writes it, NUL included. */
#define SG_AUDIT_CURSOR_LEN 64
/* The key a cursor is signed with: the server secret (DATA_DIR/server.key). */
#define SG_AUDIT_KEY_LEN 32

/*
 * What to look for.  An empty string matches anything; since_us is
 * inclusive and until_us exclusive (0: open).  Fill it with
 * sg_audit_filter_set, which checks every value, or by hand.
 */
struct sg_audit_filter {
	char tenant[64];
	char user[64];
	char connector[64];
	char decision[16];
	char code[48];
	char trace_id[33];
	int64_t since_us, until_us;
	int limit;                        /* 1..SG_AUDIT_LIMIT_MAX; 0: the default */
	char cursor[SG_AUDIT_CURSOR_LEN]; /* "": the first (newest) page */
};

struct sg_audit_row {
	int64_t id;
	struct sg_decision d;
};

/*
 * An audit time: RFC 3339 ("2026-12-01T08:00:00Z", an offset, a fraction),
 * a bare date, or an age back from `now_us` ("90s", "30m", "24h", "7d",
 * "2w"), in unix microseconds.  0, or -1 when it is none of those.
 */
int sg_audit_time_parse(const char *v, int64_t now_us, int64_t *out);
/*
 * Sets the filter member called `name` (tenant, user, connector, decision,
 * code, since, until, trace, limit, cursor) from text.  Times are RFC 3339
 * ("2026-12-01T00:00:00Z") or an age before `now_us` ("7d", "24h", "30m").
 * -1 with a sentence in `err` that names the parameter and shows a valid
 * value; -2 when `name` is none of these.
 */
int sg_audit_filter_set(struct sg_audit_filter *f, const char *name, const char *value,
                        int64_t now_us, char *err, size_t errlen);

/*
 * Calls `fn` for each decision matching `f`, newest first (by ts_us, then
 * id), at most f->limit of them.  `next_cursor` receives the cursor of the
 * page after this one, or "" when this is the last.  A cursor is signed
 * with `key` and bound to the filter's names (not its times, which may be
 * relative): one edited or taken from another query is refused.  Returns 0;
 * 1 with `err` for a bad cursor; -1 on a store error; or what `fn`
 * returned when it was not 0 (stops the walk).
 */
int sg_store_audit_query(struct sg_store *s, const struct sg_audit_filter *f,
                         const uint8_t key[SG_AUDIT_KEY_LEN],
                         int (*fn)(void *arg, const struct sg_audit_row *row), void *arg,
                         char next_cursor[SG_AUDIT_CURSOR_LEN], char *err, size_t errlen);
/*
 * One row as the CLI's --json and GET /admin/v1/audit show it (jansson;
 * NULL out of memory).  The dlp and upstream columns, JSON text in the
 * store, become JSON values.
 */
struct json_t *sg_audit_row_json(const struct sg_audit_row *row);
/* Makes a connection refuse every write (PRAGMA query_only), for a reader thread. */
int sg_store_audit_read_only(struct sg_store *s);
/*
 * The query plan SQLite chooses for `f`, one detail per line, into `out`
 * (for tests that keep the indexes honest).  -1 on a store error.
 */
int sg_store_audit_plan(struct sg_store *s, const struct sg_audit_filter *f, char *out,
                        size_t outlen);

/* ---- daily spending (sg_store_spend.c) ---- */

/* Only allowed calls spend, and only when the call says whose money it was. */
bool sg_decision_spends(const struct sg_decision *d);
/* A call's cost in micro-units, rounded as the budgets round it. */
int64_t sg_decision_micros(const struct sg_decision *d);

/* One caller's spending in one mode on one UTC day (days since the epoch). */
struct sg_spend_row {
	char tenant[64];
	char user[64];
	char mode[16];
	int64_t day;
	int64_t micros;
};

/*
 * Adds the writer's tally to the daily spending and moves the mark of the
 * decisions counted to `through_id`, in one transaction.
 */
int sg_store_spend_flush(struct sg_store *s, const struct sg_spend_row *rows, size_t n,
                         int64_t through_id);
/*
 * Counts every decision recorded after the mark into the daily spending
 * and moves the mark to the newest: for a writer that has no tally of its
 * own (just started, or lost it to a full tally or a failed flush).
 */
int sg_store_spend_catch_up(struct sg_store *s);
/* The id of the newest decision recorded through this connection. */
int64_t sg_store_last_decision_id(struct sg_store *s);
/*
 * Calls `fn` for each (tenant, user, mode, UTC day) with the spending from
 * the UTC day holding `since_us` on, in micro-units: how budgets are
 * restored at start.  Reads the daily rows and the decisions after the
 * mark, never the whole month.  `fn` may see one key twice (a daily row
 * and the decisions after the mark) and must add.  -1 on a store error.
 */
int sg_store_spend_since(struct sg_store *s, int64_t since_us,
                         void (*fn)(void *arg, const char *tenant, const char *user, bool sandbox,
                                    int64_t day_start_s, int64_t micros),
                         void *arg);

/* ---- template runs (sg_store_runs.c) ---- */

struct sg_run_row {
	char id[40];
	char tenant[65];
	char user[65];
	char template_name[129];
	char status[16];
	char trace_id[33];
	int64_t started_us, ended_us;
	char *doc; /* the run document, JSON text; owned by whoever holds the row */
};

/* Inserts (or replaces) finished runs in one transaction. */
int sg_store_put_runs(struct sg_store *s, const struct sg_run_row *rows, size_t n);
/*
 * The document of run `id` when it belongs to `tenant`: 0 with *doc
 * (malloc'd), 1 when there is none, -1 on a store error.
 */
int sg_store_get_run(struct sg_store *s, const char *id, const char *tenant, char **doc);

/* ---- connector credentials, sealed (sg_store_secrets.c) ---- */

/* What `secrets list` shows: never the value. */
struct sg_secret_row {
	char connector[65];
	char slot[8]; /* "current" | "next" */
	char key_id[SG_VAULT_KEY_ID_LEN + 1];
	int64_t created_at; /* unix seconds */
	int64_t expires_at; /* unix seconds; 0 = no expiry date */
};

/* The associated data a record is sealed under: "connector/slot". */
void sg_secret_aad(char *buf, size_t len, const char *connector, const char *slot);
/*
 * Seals `value` for (connector, slot) with the master key (sg_vault_key_load
 * on `data_dir`) and stores it, replacing what the slot held; bumps the
 * secrets generation.  The key is read inside the write transaction, so a
 * master key rotation never misses the record.  Fills `key_id` (may be
 * NULL).  -1 with `err`.
 */
int sg_store_secret_set(struct sg_store *s, const char *data_dir, const char *connector,
                        const char *slot, const void *value, size_t n, int64_t expires_at,
                        char *key_id, char *err, size_t errlen);
/* Stores an already sealed record as it is (tests, and the re-seal itself). */
int sg_store_secret_put_sealed(struct sg_store *s, const char *connector, const char *slot,
                               const unsigned char *rec, size_t rec_len, int64_t expires_at);
/* Every credential's row, by connector then slot.  Free *out with free(). */
int sg_store_secrets_list(struct sg_store *s, struct sg_secret_row **out, size_t *n);
/* The sealed record of a slot (*rec malloc'd) and its row: 0, 1 when empty, -1 on error. */
int sg_store_secret_get_sealed(struct sg_store *s, const char *connector, const char *slot,
                               unsigned char **rec, size_t *rec_len, struct sg_secret_row *row);
/* Empties a slot: 0, 1 when it was empty, -1 on error. */
int sg_store_secret_delete(struct sg_store *s, const char *connector, const char *slot);
/*
 * Makes the next credential the current one (re-sealed under the current
 * slot's name with the master key), in one transaction: 0, 1 when there is
 * no next one, -1 with `err`.
 */
int sg_store_secret_promote(struct sg_store *s, const char *data_dir, const char *connector,
                            char *err, size_t errlen);
/*
 * Re-seals every record with `to` in one transaction: all or none.  Each
 * record is opened with the key it names (`to`, or sg_vault_key_find on
 * `data_dir`).  `before_commit` (may be NULL) runs last inside the
 * transaction, still holding the write lock: where rotate-master puts the
 * new key file in place, so no writer can seal under the old key after the
 * re-seal has passed.  A failure of it rolls everything back.
 */
int sg_store_secrets_reseal(struct sg_store *s, const char *data_dir, const struct sg_vault_key *to,
                            int (*before_commit)(void *arg, char *err, size_t errlen), void *arg,
                            size_t *n_done, char *err, size_t errlen);
/* A counter bumped by every change to the secrets, for a running gateway to poll. */
int sg_store_secrets_generation(struct sg_store *s, int64_t *gen);

#endif
