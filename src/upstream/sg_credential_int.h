/* For sg_credential*.c only: the table behind a struct sg_credstore. */
#ifndef SG_CREDENTIAL_INT_H
#define SG_CREDENTIAL_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/sg_vault.h"
#include "upstream/sg_credential.h"

#define SG_CRED_KEYS_MAX 8

struct sg_cred {
	char connector[65];
	enum sg_cred_slot slot;
	char *value; /* sodium_malloc'd, NUL-terminated; wiped before it is freed */
	size_t len;
	int64_t expires_at; /* unix seconds; 0: no date */
	int64_t warned_day; /* UTC day + 1 of the last expiry warning; main thread only */
};

struct sg_cred_table {
	struct sg_cred *v;
	size_t n, cap;
};

struct sg_credstore {
	pthread_rwlock_t lock; /* guards t; I/O threads read, the main thread swaps */
	struct sg_cred_table t;
	int64_t warn_before_s;
	char *data_dir;
	/* Master keys met so far, by id (main thread only); sodium_malloc'd. */
	struct sg_vault_key *keys;
	size_t n_keys;
	/* The store's secrets generation read before the last table loaded; -1: none yet. */
	_Atomic int64_t loaded_gen; /* written by the main thread, read by I/O threads */
};

const char *sg_cred_slot_name(enum sg_cred_slot slot);
int sg_cred_table_put(struct sg_cred_table *t, const char *connector, enum sg_cred_slot slot,
                      const char *value, size_t n, int64_t expires_at);
void sg_cred_table_free(struct sg_cred_table *t);
/* Borrowed from the table; valid while the caller holds the lock (or owns the table). */
struct sg_cred *sg_cred_table_find(const struct sg_cred_table *t, const char *connector,
                                   enum sg_cred_slot slot);
/* Publishes `next` and frees the table it replaces (left in *next, then wiped). */
void sg_credstore_swap(struct sg_credstore *cs, struct sg_cred_table *next);
void sg_cred_keys_wipe(struct sg_credstore *cs);

#endif
