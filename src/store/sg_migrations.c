#include "store/sg_migrations.h"

const char *const sg_migrations[] = {
    /* 1: keys, versioned definitions, the decision audit. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('revision', 0);"
    "CREATE TABLE keys ("
    "  id TEXT PRIMARY KEY, hash BLOB NOT NULL, tenant TEXT NOT NULL, user TEXT NOT NULL,"
    "  role TEXT NOT NULL, mode TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE applies (id INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL,"
    "  n_docs INTEGER NOT NULL);"
    "CREATE TABLE documents ("
    "  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,"
    "  version INTEGER NOT NULL, file TEXT NOT NULL, text TEXT NOT NULL,"
    "  apply_id INTEGER NOT NULL REFERENCES applies(id), applied_at INTEGER NOT NULL,"
    "  UNIQUE (kind, name, version));"
    "CREATE TABLE decisions ("
    "  id INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL, trace_id TEXT, key_id TEXT,"
    "  tenant TEXT, user TEXT, role TEXT, mode TEXT, connector TEXT, operation TEXT,"
    "  decision TEXT NOT NULL, status INTEGER NOT NULL, code TEXT, reason TEXT,"
    "  latency_us INTEGER, cost REAL);"
    "CREATE INDEX decisions_ts ON decisions (ts_us);",
    /* 2: calls made in a session are grouped by it in the audit. */
    "ALTER TABLE decisions ADD COLUMN session_id TEXT;",
    /* 3: finished template runs, with the document GET /v1/runs/{id} shows. */
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, user TEXT NOT NULL, template TEXT NOT NULL,"
    "  status TEXT NOT NULL, trace_id TEXT, started_us INTEGER NOT NULL,"
    "  ended_us INTEGER NOT NULL, doc TEXT NOT NULL);"
    "CREATE INDEX runs_started ON runs (started_us);",
    /*
     * 4: spending per (tenant, user, mode, UTC day), so that a start reads
     * one row per day instead of the month's decisions.  The writer adds its
     * tally every few seconds and moves `spend_through`, the newest decision
     * counted, in the same transaction; a start adds the few decisions
     * after that mark.  Filled here from the decisions already recorded,
     * rounding each call to micro-units as the gateway does.
     */
    "CREATE TABLE spend_daily ("
    "  tenant TEXT NOT NULL, user TEXT NOT NULL, mode TEXT NOT NULL, day INTEGER NOT NULL,"
    "  micros INTEGER NOT NULL, PRIMARY KEY (tenant, user, mode, day)) WITHOUT ROWID;"
    "INSERT INTO spend_daily (tenant, user, mode, day, micros)"
    "  SELECT tenant, user, mode, ts_us / 86400000000,"
    "    sum(CAST(round(cost * 1000000) AS INTEGER)) FROM decisions"
    "  WHERE decision = 'allowed' AND cost > 0"
    "    AND tenant IS NOT NULL AND user IS NOT NULL AND mode IS NOT NULL"
    "  GROUP BY tenant, user, mode, ts_us / 86400000000;"
    "INSERT INTO meta (key, value) SELECT 'spend_through', coalesce(max(id), 0) FROM decisions;",
    /*
     * 5: how long each call waited in its tenant's fair queue (0: never), so
     * that queueing can be told apart from other slowness.  Rows recorded
     * before this step keep NULL: not known, rather than a claimed 0.
     */
    "ALTER TABLE decisions ADD COLUMN queue_wait_us INTEGER;",
    /*
     * 6: a rotated key names its successor.  Its overlap's end is the
     * existing expires_at, so expiry stays one mechanism; the name is what
     * tells a rotation's end (announced in Sandgate-Key-Expires) from a TTL.
     */
    "ALTER TABLE keys ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';",
    /*
     * 7: connector credentials, sealed by the vault with "connector/slot" as
     * the associated data, so a record opens only where it was stored.  The
     * master key never lives here.  `secrets_generation` moves on every
     * change, for a running gateway to notice (as `revision` does for keys).
     */
    "CREATE TABLE secrets ("
    "  connector TEXT NOT NULL, slot TEXT NOT NULL CHECK (slot IN ('current', 'next')),"
    "  record BLOB NOT NULL, key_id TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  expires_at INTEGER, PRIMARY KEY (connector, slot)) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('secrets_generation', 0);",
    /*
     * 8: a live call's failover connector, when one answered, and its
     * upstream attempts (JSON: when each started, how long it took, the
     * backoff before it, the status or the error), so retries and
     * failovers can be read from the audit.
     */
    "ALTER TABLE decisions ADD COLUMN served_by TEXT; ALTER TABLE decisions ADD COLUMN upstream TEXT;",
    /*
     * 9: what the DLP screen found in a call and what it did (JSON events:
     * direction, pointer, rule, class, action; never the value).
     */
    "ALTER TABLE decisions ADD COLUMN dlp TEXT;",
    /*
     * 10: the tamper-evident audit (docs/audit.md).  Each row carries the
     * hash of the row before it on its chain and its own hash over that
     * and every column; the head (newest id and hash) lives in meta.  One
     * SQLite store is one chain, "main"; the column lets nodes sharing a
     * database keep one chain each.  sg_store.c chains the rows already
     * here, in id order from 32 zero bytes, in this step's transaction.
     */
    "ALTER TABLE decisions ADD COLUMN chain TEXT NOT NULL DEFAULT 'main';"
    "ALTER TABLE decisions ADD COLUMN prev_hash BLOB;"
    "ALTER TABLE decisions ADD COLUMN hash BLOB;"
    "INSERT INTO meta (key, value) VALUES ('audit_head_id:main', 0),"
    "  ('audit_head_hash:main', zeroblob(32));",
    /*
     * 11: the audit queries' indexes.  Each filter an admin asks by (who,
     * which team, which connector, which refusal code) gets an index that
     * ends in ts_us, so "newest first within a time window" reads the index
     * in order and stops after a page, without sorting, at any table size.
     * A trace has a handful of rows: its index needs no time.
     */
    "CREATE INDEX decisions_user_ts ON decisions (user, ts_us);"
    "CREATE INDEX decisions_tenant_ts ON decisions (tenant, ts_us);"
    "CREATE INDEX decisions_connector_ts ON decisions (connector, ts_us);"
    "CREATE INDEX decisions_code_ts ON decisions (code, ts_us);"
    "CREATE INDEX decisions_trace ON decisions (trace_id);",
};

const size_t sg_migrations_count = sizeof(sg_migrations) / sizeof(sg_migrations[0]);
