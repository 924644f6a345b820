#include "catalog/sg_snapshot.h"
#include "dlp/sg_dlp_action.h"
#include "dlp/sg_dlp_scan.h"
#include "schema/sg_schema.h"
#include "throttle/sg_adaptive.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_snapshot *published;
static _Atomic uint64_t published_generation;

static struct sg_catalog *
build_catalog(const struct sg_store_doc *docs, size_t n, uint64_t seed, struct sg_diags *d)
{
	struct sg_connector **v = calloc(n ? n : 1, sizeof(*v));
	size_t nc = 0;
	size_t errors = d->n;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(docs[i].kind, "connector") != 0)
			continue;
		struct sg_connector *c =
		    sg_connector_parse(docs[i].file, docs[i].text, strlen(docs[i].text), seed, d);
		if (c)
			v[nc++] = c;
	}
	struct sg_catalog *cat = NULL;
	if (d->n == errors) {
		cat = sg_catalog_new(v, nc);
		if (cat == NULL)
			sg_diags_add(d, NULL, 0, 0, "two connectors share a name");
	}
	if (cat == NULL)
		for (size_t i = 0; i < nc; i++)
			sg_connector_free(v[i]);
	free(v);
	return cat;
}

static const struct sg_store_doc *
find_doc(const struct sg_store_doc *docs, size_t n, const char *kind, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(docs[i].kind, kind) == 0 && strcmp(docs[i].name, name) == 0)
			return &docs[i];
	return NULL;
}

static int
template_cmp(const void *a, const void *b)
{
	return strcmp((*(struct sg_template *const *)a)->name,
	              (*(struct sg_template *const *)b)->name);
}

/* Each template with its main.lua, checked against the catalog; -1 after an error. */
static int
build_templates(struct sg_defs *defs, const struct sg_store_doc *docs, size_t n, struct sg_diags *d)
{
	size_t before = d->n;
	defs->templates = calloc(n ? n : 1, sizeof(*defs->templates));
	if (defs->templates == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(docs[i].kind, "template") != 0)
			continue;
		const struct sg_store_doc *src = find_doc(docs, n, "template_source", docs[i].name);
		struct sg_template *t = sg_template_parse(
		    docs[i].file, docs[i].text, strlen(docs[i].text), src ? src->file : NULL,
		    src ? src->text : NULL, src ? strlen(src->text) : 0, defs->catalog, d);
		if (t != NULL)
			defs->templates[defs->n_templates++] = t;
	}
	qsort(defs->templates, defs->n_templates, sizeof(*defs->templates), template_cmp);
	return d->n == before ? 0 : -1;
}

const struct sg_template *
sg_defs_template(const struct sg_defs *defs, const char *name)
{
	for (size_t i = 0; name && i < defs->n_templates; i++)
		if (strcmp(defs->templates[i]->name, name) == 0)
			return defs->templates[i];
	return NULL;
}

/*
 * One database per set of definitions: the built-in rules and the
 * policy's own.  A rule that does not compile fails the build, so the
 * snapshot before it stays live, as for any other bad policy.
 */
static _Atomic bool dlp_compile = true;

void
sg_defs_set_dlp_compile(bool on)
{
	atomic_store(&dlp_compile, on);
}

/*
 * A compiled database, shared by every set of definitions built from the
 * same custom rules: a reload that changed a connector or a role (most of
 * them) takes the one it has instead of compiling for seconds again.
 */
struct sg_dlp_shared {
	_Atomic int refs;
	unsigned char fp[crypto_generichash_BYTES];
	struct sg_dlp_db *db;
};

static pthread_mutex_t dlp_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_dlp_shared *dlp_cache; /* the last compiled; the cache holds a reference */

static void
dlp_shared_unref(struct sg_dlp_shared *sh)
{
	if (sh == NULL || atomic_fetch_sub(&sh->refs, 1) != 1)
		return;
	sg_dlp_db_free(sh->db);
	free(sh);
}

static void
fp_str(crypto_generichash_state *st, const char *s)
{
	/* With its NUL, so ("ab","c") and ("a","bc") differ; NULL differs from "". */
	if (s == NULL)
		crypto_generichash_update(st, (const unsigned char *)"\1", 1);
	else
		crypto_generichash_update(st, (const unsigned char *)s, strlen(s) + 1);
}

/* What the database is compiled from, hashed: equal rules, equal fingerprint. */
static void
rules_fingerprint(const struct sg_dlp_rule_def *r, size_t n, unsigned char *fp)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
	for (size_t i = 0; i < n; i++) {
		unsigned char num[sizeof(double) + 2];
		fp_str(&st, r[i].id);
		fp_str(&st, r[i].data_class);
		fp_str(&st, r[i].pattern);
		fp_str(&st, r[i].field_hint);
		memcpy(num, &r[i].min_entropy, sizeof(double));
		num[sizeof(double)] = (unsigned char)r[i].check;
		num[sizeof(double) + 1] = r[i].confidence;
		crypto_generichash_update(&st, num, sizeof(num));
	}
	crypto_generichash_final(&st, fp, crypto_generichash_BYTES);
}

static struct sg_dlp_shared *
dlp_cache_take(const unsigned char *fp)
{
	struct sg_dlp_shared *sh = NULL;
	pthread_mutex_lock(&dlp_cache_lock);
	if (dlp_cache != NULL && memcmp(dlp_cache->fp, fp, sizeof(dlp_cache->fp)) == 0) {
		sh = dlp_cache;
		atomic_fetch_add(&sh->refs, 1);
	}
	pthread_mutex_unlock(&dlp_cache_lock);
	return sh;
}

static void
dlp_cache_put(struct sg_dlp_shared *sh)
{
	atomic_fetch_add(&sh->refs, 1);
	pthread_mutex_lock(&dlp_cache_lock);
	struct sg_dlp_shared *old = dlp_cache;
	dlp_cache = sh;
	pthread_mutex_unlock(&dlp_cache_lock);
	dlp_shared_unref(old);
}

/*
 * One database per set of definitions: the built-in rules and the
 * policy's own.  A rule that does not compile fails the build, so the
 * snapshot before it stays live, as for any other bad policy.
 */
static int
build_dlp(struct sg_defs *defs, struct sg_diags *d)
{
	char err[512];
	size_t n = 0;
	if (!atomic_load(&dlp_compile))
		return 0; /* never served: see sg_defs_set_dlp_compile */
	const struct sg_dlp_rule_def *custom = sg_dlp_policy_rules(sg_policy_dlp(defs->policy), &n);
	unsigned char fp[crypto_generichash_BYTES];
	rules_fingerprint(custom, n, fp);
	struct sg_dlp_shared *sh = dlp_cache_take(fp);
	if (sh == NULL) {
		struct sg_dlp_db *db = sg_dlp_db_compile(custom, n, err, sizeof(err));
		if (db == NULL) {
			sg_diags_add(d, NULL, 0, 0, "policy dlp: %s", err);
			return -1;
		}
		if ((sh = calloc(1, sizeof(*sh))) == NULL) {
			sg_dlp_db_free(db);
			return -1;
		}
		atomic_init(&sh->refs, 1);
		memcpy(sh->fp, fp, sizeof(fp));
		sh->db = db;
		dlp_cache_put(sh);
	}
	defs->dlp_shared = sh;
	defs->dlp_db = sh->db;
	return 0;
}

/* The (pointer, class) hints `schema` declares with x-data-class; the strings stay the schema's. */
static int
collect_hints(const struct sg_schema *schema, struct sg_dlp_hint **out, size_t *n)
{
	*out = NULL;
	*n = schema ? sg_schema_data_classes(schema, NULL, 0) : 0;
	if (*n == 0)
		return 0;
	*out = calloc(*n, sizeof(**out));
	if (*out == NULL)
		return -1;
	*n = sg_schema_data_classes(schema, *out, *n);
	return 0;
}

/* Each operation's x-data-class hints, so the screen steps can hand them to the scan. */
static int
build_hints(struct sg_defs *defs, struct sg_diags *d)
{
	const struct sg_catalog *cat = defs->catalog;
	defs->op_hints = calloc(cat->n_ops ? cat->n_ops : 1, sizeof(*defs->op_hints));
	if (defs->op_hints == NULL)
		return -1;
	for (size_t c = 0; c < cat->n; c++) {
		const struct sg_connector *conn = cat->v[c];
		for (size_t i = 0; i < conn->n_ops; i++) {
			const struct sg_operation *op = &conn->ops[i];
			struct sg_op_hints *h = &defs->op_hints[op->index];
			if (collect_hints(op->input, &h->in, &h->n_in) != 0 ||
			    collect_hints(op->output, &h->out, &h->n_out) != 0) {
				sg_diags_add(d, NULL, 0, 0,
				             "out of memory for the data class hints");
				return -1;
			}
		}
	}
	return 0;
}

struct sg_defs *
sg_defs_build(const struct sg_store_doc *docs, size_t n, uint64_t sim_seed, struct sg_diags *d)
{
	struct sg_catalog *cat = build_catalog(docs, n, sim_seed, d);
	if (cat == NULL)
		return NULL;
	struct sg_policy_source *src = calloc(n ? n : 1, sizeof(*src));
	size_t ns = 0;
	if (src == NULL) {
		sg_catalog_free(cat);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(docs[i].kind, "policy") != 0)
			continue;
		src[ns].file = docs[i].file;
		src[ns].text = docs[i].text;
		src[ns].len = strlen(docs[i].text);
		ns++;
	}
	struct sg_policy *pol = sg_policy_compile(src, ns, cat, d);
	free(src);
	struct sg_defs *defs = pol ? calloc(1, sizeof(*defs)) : NULL;
	if (defs == NULL) {
		sg_policy_free(pol);
		sg_catalog_free(cat);
		return NULL;
	}
	atomic_init(&defs->refs, 1);
	defs->catalog = cat;
	defs->policy = pol;
	defs->n_policy_docs = ns;
	if (build_templates(defs, docs, n, d) != 0 || build_dlp(defs, d) != 0 ||
	    build_hints(defs, d) != 0) {
		sg_defs_unref(defs);
		return NULL;
	}
	return defs;
}

void
sg_defs_unref(struct sg_defs *defs)
{
	if (defs == NULL || atomic_fetch_sub(&defs->refs, 1) != 1)
		return;
	/* The policy borrows nothing from the catalog after compiling, but free it first anyway. */
	for (size_t i = 0; i < defs->n_templates; i++)
		sg_template_free(defs->templates[i]);
	free(defs->templates);
	for (size_t i = 0; defs->op_hints && i < defs->catalog->n_ops; i++) {
		free(defs->op_hints[i].in);
		free(defs->op_hints[i].out);
	}
	free(defs->op_hints);
	dlp_shared_unref(defs->dlp_shared);
	sg_policy_free(defs->policy);
	sg_catalog_free(defs->catalog);
	free(defs);
}

#define NO_KEY UINT32_MAX

/* FNV-1a: key ids are random characters already, so any fair mix spreads them. */
static size_t
id_hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 32));
}

/*
 * An open-addressed index of the keys, at most half full, so every probe
 * run ends at an empty slot.  A binary search over 10,000 keys touched
 * fourteen entries of 270 bytes each, nearly all cache misses.
 */
static int
index_keys(struct sg_snapshot *snap)
{
	size_t n = 4;
	if (snap->n_keys >= NO_KEY / 2)
		return -1;
	while (n < 2 * snap->n_keys)
		n <<= 1;
	snap->key_slots = malloc(n * sizeof(*snap->key_slots));
	if (snap->key_slots == NULL)
		return -1;
	memset(snap->key_slots, 0xff, n * sizeof(*snap->key_slots));
	snap->key_mask = n - 1;
	for (size_t k = 0; k < snap->n_keys; k++) {
		size_t i = id_hash(snap->keys[k].id) & snap->key_mask;
		while (snap->key_slots[i] != NO_KEY)
			i = (i + 1) & snap->key_mask;
		snap->key_slots[i] = (uint32_t)k;
	}
	return 0;
}

static int
load_keys(struct sg_store *s, struct sg_snapshot *snap, struct sg_diags *d)
{
	struct sg_key_record *recs = NULL;
	size_t n = 0;
	if (sg_store_keys_list(s, &recs, &n) != 0) {
		sg_diags_add(d, NULL, 0, 0, "cannot read the key table");
		return -1;
	}
	snap->keys = calloc(n ? n : 1, sizeof(*snap->keys));
	if (snap->keys == NULL) {
		free(recs);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct sg_key_entry *k = &snap->keys[snap->n_keys];
		/* A key with an unknown mode could never be used safely; leave it out. */
		if (sg_mode_parse(recs[i].mode, &k->mode) != 0)
			continue;
		memcpy(k->id, recs[i].id, sizeof(k->id));
		memcpy(k->hash, recs[i].hash, sizeof(k->hash));
		memcpy(k->tenant, recs[i].tenant, sizeof(k->tenant));
		memcpy(k->user, recs[i].user, sizeof(k->user));
		memcpy(k->role, recs[i].role, sizeof(k->role));
		k->expires_at = recs[i].expires_at;
		k->revoked_at = recs[i].revoked_at;
		k->rotated = recs[i].replaced_by[0] != '\0';
		snap->n_keys++;
	}
	explicit_bzero(recs, n * sizeof(*recs));
	free(recs);
	if (index_keys(snap) != 0) {
		sg_diags_add(d, NULL, 0, 0, "cannot index %zu keys", snap->n_keys);
		return -1;
	}
	return 0;
}

struct sg_snapshot *
sg_snapshot_build(struct sg_store *s, struct sg_defs *reuse, uint64_t sim_seed, struct sg_diags *d)
{
	struct sg_snapshot *snap = calloc(1, sizeof(*snap));
	if (snap == NULL)
		return NULL;
	atomic_init(&snap->refs, 1);
	/* Read the revision first: a change racing this build triggers another reload. */
	if (sg_store_revision(s, &snap->revision) != 0) {
		sg_diags_add(d, NULL, 0, 0, "cannot read the store revision");
		goto fail;
	}
	if (reuse) {
		atomic_fetch_add(&reuse->refs, 1);
		snap->defs = reuse;
	} else {
		struct sg_store_doc *docs = NULL;
		size_t n = 0;
		if (sg_store_live_docs(s, &docs, &n) != 0) {
			sg_diags_add(d, NULL, 0, 0, "cannot read the stored definitions");
			goto fail;
		}
		snap->defs = sg_defs_build(docs, n, sim_seed, d);
		sg_store_docs_free(docs, n);
		if (snap->defs == NULL)
			goto fail;
	}
	if (load_keys(s, snap, d) != 0)
		goto fail;
	return snap;
fail:
	sg_snapshot_unref(snap);
	return NULL;
}

void
sg_snapshot_ref(struct sg_snapshot *snap)
{
	atomic_fetch_add(&snap->refs, 1);
}

void
sg_snapshot_unref(struct sg_snapshot *snap)
{
	if (snap == NULL || atomic_fetch_sub(&snap->refs, 1) != 1)
		return;
	sg_defs_unref(snap->defs);
	free(snap->keys);
	free(snap->key_slots);
	free(snap);
}

const struct sg_key_entry *
sg_snapshot_key(const struct sg_snapshot *snap, const char *id)
{
	for (size_t i = id_hash(id) & snap->key_mask;; i = (i + 1) & snap->key_mask) {
		uint32_t k = snap->key_slots[i];
		if (k == NO_KEY)
			return NULL;
		if (strcmp(snap->keys[k].id, id) == 0)
			return &snap->keys[k];
	}
}

/*
 * State that outlives snapshots (the adaptive upstream limits) takes the
 * definitions' settings only now: building a snapshot that then fails, or
 * is never published, leaves live limits as they were.
 */
static void
bind_lasting_state(const struct sg_snapshot *snap)
{
	const struct sg_catalog *cat = snap->defs ? snap->defs->catalog : NULL;
	for (size_t i = 0; cat != NULL && i < cat->n; i++) {
		const struct sg_connector *c = cat->v[i];
		if (c->adaptive != NULL)
			sg_adaptive_configure(c->adaptive, &c->upstream_concurrency);
	}
}

void
sg_snapshot_publish(struct sg_snapshot *snap)
{
	bind_lasting_state(snap);
	pthread_mutex_lock(&publish_lock);
	struct sg_snapshot *old = published;
	snap->generation = atomic_load(&published_generation) + 1;
	published = snap;
	atomic_store(&published_generation, snap->generation);
	pthread_mutex_unlock(&publish_lock);
	sg_snapshot_unref(old);
}

struct sg_snapshot *
sg_snapshot_current(void)
{
	/*
	 * The lock makes load-and-ref atomic with respect to publish, which is
	 * what a bare atomic pointer cannot do.  Readers come here only when the
	 * generation changed, so it is off the hot path.
	 */
	pthread_mutex_lock(&publish_lock);
	struct sg_snapshot *snap = published;
	if (snap)
		sg_snapshot_ref(snap);
	pthread_mutex_unlock(&publish_lock);
	return snap;
}

uint64_t
sg_snapshot_generation(void)
{
	return atomic_load_explicit(&published_generation, memory_order_acquire);
}

void
sg_snapshot_unpublish(void)
{
	pthread_mutex_lock(&publish_lock);
	struct sg_snapshot *old = published;
	published = NULL;
	pthread_mutex_unlock(&publish_lock);
	sg_snapshot_unref(old);
	/* At exit: the cached database goes with the last snapshot that used it. */
	pthread_mutex_lock(&dlp_cache_lock);
	struct sg_dlp_shared *sh = dlp_cache;
	dlp_cache = NULL;
	pthread_mutex_unlock(&dlp_cache_lock);
	dlp_shared_unref(sh);
}
