/*
 * sg_fixture: a real gateway state without a socket, for benchmarks, fuzz
 * targets and tests of the decision path.  It builds a store in a temporary
 * directory, applies the examples through sg_apply and creates keys, exactly
 * as the CLI would.
 */
#ifndef SG_FIXTURE_H
#define SG_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/sg_snapshot.h"
#include "core/sg_config.h"
#include "path/sg_req.h"

struct sg_fixture {
	char dir[256];
	struct sg_config cfg;
	struct sg_gateway gw;
	struct sg_store *store;
	struct sg_snapshot *snap;
	size_t n_keys;
	char (*keys)[SG_KEY_MAX_LEN + 1]; /* keys[i] has role roles[i % 3] */
};

/* Creates `n_keys` keys cycling through explorer, maker, admin (sandbox). */
int sg_fixture_init(struct sg_fixture *f, size_t n_keys);
void sg_fixture_free(struct sg_fixture *f);

/*
 * Adds a key for `role` in `mode` ("sandbox" or "live") that expires at
 * `expires_at` (unix seconds, 0: never), writes it into `key`, and
 * rebuilds f->snap to see it: pointers into the old snapshot go stale.
 */
int sg_fixture_add_key(struct sg_fixture *f, const char *role, const char *mode, int64_t expires_at,
                       char key[SG_KEY_MAX_LEN + 1]);
/* Revokes `key` and rebuilds f->snap, as sg_fixture_add_key() does. */
int sg_fixture_revoke(struct sg_fixture *f, const char *key);

#endif
