#include "sg_fixture.h"
#include "sg_testdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/sg_apply.h"
#include "throttle/sg_ratetable.h"

#include <sodium.h>

#ifndef SG_EXAMPLES_DIR
#define SG_EXAMPLES_DIR "examples"
#endif

static const char *const roles[] = {"explorer", "maker", "admin"};

static int
make_keys(struct sg_fixture *f)
{
	f->keys = calloc(f->n_keys ? f->n_keys : 1, sizeof(*f->keys));
	if (f->keys == NULL)
		return -1;
	for (size_t i = 0; i < f->n_keys; i++) {
		struct sg_key_record rec = {0};
		if (sg_key_generate(f->keys[i], sizeof(f->keys[i]), rec.id) != 0)
			return -1;
		sg_key_hash(f->gw.server_secret, f->keys[i], strlen(f->keys[i]), rec.hash);
		snprintf(rec.tenant, sizeof(rec.tenant), "tenant%zu", i % 16);
		snprintf(rec.user, sizeof(rec.user), "user%zu", i);
		snprintf(rec.role, sizeof(rec.role), "%s", roles[i % 3]);
		snprintf(rec.mode, sizeof(rec.mode), "sandbox");
		rec.created_at = (int64_t)time(NULL);
		if (sg_store_key_insert(f->store, &rec) != 0)
			return -1;
	}
	return 0;
}

int
sg_fixture_init(struct sg_fixture *f, size_t n_keys)
{
	char err[256];
	struct sg_diags d = {0};
	const char *paths[] = {SG_EXAMPLES_DIR};

	memset(f, 0, sizeof(*f));
	f->n_keys = n_keys;
	if (sg_testdir_make(f->dir, sizeof(f->dir), "fixture") != 0 || sg_keys_init() != 0)
		return -1;
	sg_config_defaults(&f->cfg);
	f->gw.config = &f->cfg;
	randombytes_buf(f->gw.server_secret, sizeof(f->gw.server_secret));
	f->store = sg_store_open(f->dir, err, sizeof(err));
	if (f->store == NULL || sg_apply(f->store, paths, 1, 0, false, &d, NULL) != 0 ||
	    make_keys(f) != 0) {
		sg_diags_print(&d, stderr);
		sg_diags_free(&d);
		return -1;
	}
	f->snap = sg_snapshot_build(f->store, NULL, f->cfg.simulator_seed, &d);
	sg_diags_print(&d, stderr);
	sg_diags_free(&d);
	return (f->snap && sg_limiter_init(&f->gw.limiter, f->cfg.throttle_cells) == 0) ? 0 : -1;
}

void
sg_fixture_free(struct sg_fixture *f)
{
	sg_snapshot_unref(f->snap);
	sg_limiter_fini(&f->gw.limiter);
	sg_store_close(f->store);
	sg_config_free(&f->cfg);
	free(f->keys);
	if (f->dir[0] && sg_testdir_remove(f->dir) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}

/* The keys as the store has them now, over the same definitions. */
static int
reload_keys(struct sg_fixture *f)
{
	struct sg_diags d = {0};
	struct sg_snapshot *snap =
	    sg_snapshot_build(f->store, f->snap->defs, f->cfg.simulator_seed, &d);
	sg_diags_print(&d, stderr);
	sg_diags_free(&d);
	if (snap == NULL)
		return -1;
	sg_snapshot_unref(f->snap);
	f->snap = snap;
	return 0;
}

int
sg_fixture_add_key(struct sg_fixture *f, const char *role, const char *mode, int64_t expires_at,
                   char key[SG_KEY_MAX_LEN + 1])
{
	struct sg_key_record rec = {0};
	if (sg_key_generate(key, SG_KEY_MAX_LEN + 1, rec.id) != 0)
		return -1;
	sg_key_hash(f->gw.server_secret, key, strlen(key), rec.hash);
	snprintf(rec.tenant, sizeof(rec.tenant), "tenant-extra");
	snprintf(rec.user, sizeof(rec.user), "user-%s", rec.id);
	snprintf(rec.role, sizeof(rec.role), "%s", role);
	snprintf(rec.mode, sizeof(rec.mode), "%s", mode);
	rec.created_at = (int64_t)time(NULL);
	rec.expires_at = expires_at;
	if (sg_store_key_insert(f->store, &rec) != 0)
		return -1;
	return reload_keys(f);
}

int
sg_fixture_revoke(struct sg_fixture *f, const char *key)
{
	char id[SG_KEY_ID_LEN + 1];
	if (sg_key_parse(key, strlen(key), id) != 0 ||
	    sg_store_key_revoke(f->store, id, (int64_t)time(NULL)) != 0)
		return -1;
	return reload_keys(f);
}
