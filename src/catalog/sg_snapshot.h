/*
 * sg_snapshot: everything a request reads and never writes: the catalog,
 * the compiled policy and the key table.  A snapshot is immutable and
 * reference-counted.  A reload builds a new one beside the old and swaps
 * the published pointer; requests holding the old one finish with it, so
 * a reload never fails a request.
 */
#ifndef SG_SNAPSHOT_H
#define SG_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/sg_catalog.h"
#include "catalog/sg_template.h"
#include "core/sg_diag.h"
#include "core/sg_keys.h"
#include "policy/sg_policy.h"
#include "store/sg_store.h"

struct sg_key_entry {
	char id[SG_KEY_ID_LEN + 1];
	uint8_t hash[SG_KEY_HASH_LEN];
	char tenant[64];
	char user[64];
	char role[64];
	enum sg_mode mode;
	int64_t expires_at; /* unix seconds; 0 = never */
	int64_t revoked_at; /* unix seconds; 0 = active */
	bool rotated;       /* a successor exists: expires_at ends the overlap */
};

struct sg_dlp_db;
struct sg_dlp_hint;
struct sg_dlp_shared;

/* The x-data-class hints of one operation's schemas: arrays owned by the defs, strings by the
 * schemas. */
struct sg_op_hints {
	struct sg_dlp_hint *in, *out;
	size_t n_in, n_out;
};

/* Catalog and policy: rebuilt on SIGHUP only, shared by snapshots in between. */
struct sg_defs {
	_Atomic int refs;
	struct sg_catalog *catalog;
	struct sg_policy *policy;
	size_t n_policy_docs;
	struct sg_template **templates; /* sorted by name */
	size_t n_templates;
	/*
	 * The DLP screen's database: the built-in rules and the policy's custom
	 * ones, compiled here, never on the request path.  Never NULL in defs
	 * that were built: a rule that does not compile fails the build.
	 */
	struct sg_dlp_db *dlp_db;
	struct sg_dlp_shared *dlp_shared; /* holds dlp_db: defs with the same rules share one */
	struct sg_op_hints *op_hints; /* by operation->index, catalog->n_ops of them */
};

/* The template called `name`, or NULL. */
const struct sg_template *sg_defs_template(const struct sg_defs *defs, const char *name);

struct sg_snapshot {
	_Atomic int refs;
	uint64_t generation;
	int64_t revision; /* store revision it was built from */
	struct sg_defs *defs;
	struct sg_key_entry *keys;
	size_t n_keys;
	uint32_t *key_slots; /* index into keys by id hash; key_mask + 1 slots */
	size_t key_mask;
};

/*
 * Parses and compiles definitions.  Connectors come first, so policies
 * compile against them, and the DLP database last, from the policy's
 * rules.  Errors go to `d`; returns NULL when there were any.
 */
struct sg_defs *sg_defs_build(const struct sg_store_doc *docs, size_t n, uint64_t sim_seed,
                              struct sg_diags *d);
void sg_defs_unref(struct sg_defs *defs);
/*
 * Whether sg_defs_build compiles the DLP database (it does unless told
 * otherwise).  A command that only reads the definitions and serves no
 * request (a key's role check) turns it off: the compile takes seconds.
 */
void sg_defs_set_dlp_compile(bool on);

/*
 * Reads the store and builds a snapshot.  With `reuse` set, its definitions
 * are shared and only keys are re-read (the cheap reload after a key
 * change); otherwise definitions are rebuilt from the live documents.
 */
struct sg_snapshot *sg_snapshot_build(struct sg_store *s, struct sg_defs *reuse, uint64_t sim_seed,
                                      struct sg_diags *d);
void sg_snapshot_ref(struct sg_snapshot *snap);
void sg_snapshot_unref(struct sg_snapshot *snap);

/* The key with this id, or NULL.  Valid while `snap` is held. */
const struct sg_key_entry *sg_snapshot_key(const struct sg_snapshot *snap, const char *id);

/* Publishes `snap` (ownership passes to the publisher) with the next generation. */
void sg_snapshot_publish(struct sg_snapshot *snap);
/* A new reference to the published snapshot, or NULL before the first. */
struct sg_snapshot *sg_snapshot_current(void);
/* Cheap check for readers that cache a snapshot per thread. */
uint64_t sg_snapshot_generation(void);
/* Drops the published snapshot (at exit). */
void sg_snapshot_unpublish(void);

#endif
