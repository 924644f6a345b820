/*
 * Filling the credential table from the store (main thread).  A record
 * names the master key that sealed it; a key not met yet is looked up in
 * the key file and, during a rotation, its .new and .old neighbours, so a
 * gateway keeps serving while `secrets rotate-master` runs beside it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sg_store.h"
#include "upstream/sg_credential_int.h"

void
sg_cred_keys_wipe(struct sg_credstore *cs)
{
	if (cs->keys != NULL) {
		sodium_memzero(cs->keys, SG_CRED_KEYS_MAX * sizeof(*cs->keys));
		sodium_free(cs->keys);
	}
	cs->keys = NULL;
	cs->n_keys = 0;
}

static const struct sg_vault_key *
key_for(struct sg_credstore *cs, const char *id, char *err, size_t errlen)
{
	if (cs->keys == NULL) {
		cs->keys = sodium_malloc(SG_CRED_KEYS_MAX * sizeof(*cs->keys));
		if (cs->keys == NULL) {
			snprintf(err, errlen, "out of memory for the master keys");
			return NULL;
		}
	}
	for (size_t i = 0; i < cs->n_keys; i++)
		if (strcmp(cs->keys[i].id, id) == 0)
			return &cs->keys[i];
	/* Rotated-away keys are forgotten once the ring is full: every record names its key. */
	if (cs->n_keys == SG_CRED_KEYS_MAX) {
		sodium_memzero(cs->keys, SG_CRED_KEYS_MAX * sizeof(*cs->keys));
		cs->n_keys = 0;
	}
	struct sg_vault_key *k = &cs->keys[cs->n_keys];
	if (sg_vault_key_find(k, cs->data_dir, id, err, errlen) != 0)
		return NULL;
	cs->n_keys++;
	return k;
}

static int
slot_of(const char *name, enum sg_cred_slot *slot)
{
	if (strcmp(name, "current") == 0)
		*slot = SG_CRED_CURRENT;
	else if (strcmp(name, "next") == 0)
		*slot = SG_CRED_NEXT;
	else
		return -1;
	return 0;
}

static int
load_one(struct sg_credstore *cs, struct sg_store *s, const struct sg_secret_row *row,
         struct sg_cred_table *t, char *err, size_t errlen)
{
	unsigned char *rec = NULL;
	size_t rec_len = 0, n = 0;
	char id[SG_VAULT_KEY_ID_LEN + 1], aad[96], *plain = NULL;
	enum sg_cred_slot slot;
	if (slot_of(row->slot, &slot) != 0 ||
	    sg_store_secret_get_sealed(s, row->connector, row->slot, &rec, &rec_len, NULL) != 0) {
		snprintf(err, errlen, "cannot read the secret of %s/%s", row->connector, row->slot);
		free(rec);
		return -1;
	}
	const struct sg_vault_key *k = NULL;
	if (sg_vault_record_key_id(rec, rec_len, id) != 0)
		snprintf(err, errlen, "the secret of %s/%s is not a sealed record", row->connector,
		         row->slot);
	else
		k = key_for(cs, id, err, errlen);
	sg_secret_aad(aad, sizeof(aad), row->connector, row->slot);
	int rc = k != NULL ? sg_vault_open(k, aad, rec, rec_len, &plain, &n, err, errlen) : -1;
	free(rec);
	if (rc == 0 &&
	    (rc = sg_cred_table_put(t, row->connector, slot, plain, n, row->expires_at)) != 0)
		snprintf(err, errlen, "out of memory for the credentials");
	sg_vault_free(plain, n);
	return rc;
}

int
sg_credstore_refresh(struct sg_credstore *cs, struct sg_store *s, char *err, size_t errlen)
{
	struct sg_secret_row *rows = NULL;
	struct sg_cred_table next = {0};
	size_t n = 0;
	int64_t gen;
	/* Read first: a change landing during the load is seen again by the next poll. */
	if (sg_store_secrets_generation(s, &gen) != 0 || sg_store_secrets_list(s, &rows, &n) != 0) {
		snprintf(err, errlen, "cannot read the secrets: %s", sg_store_last_error(s));
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = load_one(cs, s, &rows[i], &next, err, errlen);
	free(rows);
	if (rc != 0) {
		sg_cred_table_free(&next);
		return -1;
	}
	sg_credstore_swap(cs, &next);
	atomic_store(&cs->loaded_gen, gen);
	return 0;
}

int64_t
sg_credstore_loaded_generation(const struct sg_credstore *cs)
{
	return cs == NULL ? -1 : atomic_load(&cs->loaded_gen);
}
