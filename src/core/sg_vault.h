/*
 * sg_vault: connector credentials sealed with the master key.  A record is
 * XChaCha20-Poly1305 (libsodium) over the credential, bound to the name it
 * is stored under (the associated data), and names the key that sealed it,
 * so a record under a rotated-away key is told apart from a forged one.
 *
 * Record: "sgv1" | key id (16 hex) | nonce (24 bytes) | ciphertext + tag.
 *
 * The master key comes from SANDGATE_MASTER_KEY (base64url, 32 bytes), else
 * from the file SANDGATE_MASTER_KEY_FILE, else DATA_DIR/master.key, which
 * is created (mode 0600, a random key) when it does not exist yet.  It is
 * never read from, or written to, the store.
 */
#ifndef SG_VAULT_H
#define SG_VAULT_H

#include <stddef.h>

#define SG_VAULT_KEY_LEN 32
#define SG_VAULT_KEY_ID_LEN 16 /* hex characters */

struct sg_vault_key {
	unsigned char key[SG_VAULT_KEY_LEN];
	char id[SG_VAULT_KEY_ID_LEN + 1]; /* hex of a hash of the key: names it, reveals nothing */
};

/* Loads (or, the first time, creates) the master key; -1 with `err` for a person. */
int sg_vault_key_load(struct sg_vault_key *k, const char *data_dir, char *err, size_t errlen);
/* A key from raw bytes (tests, rotation). */
void sg_vault_key_from(struct sg_vault_key *k, const unsigned char raw[SG_VAULT_KEY_LEN]);
void sg_vault_key_wipe(struct sg_vault_key *k);

/* Seals `n` bytes under `name`; *rec (malloc'd) and *rec_len.  -1: out of memory. */
int sg_vault_seal(const struct sg_vault_key *k, const char *name, const void *plain, size_t n,
                  unsigned char **rec, size_t *rec_len);
/*
 * Opens a record stored under `name`: *plain (NUL-terminated, to be given
 * back with sg_vault_free) and *plain_len.  -1 with `err` when the record is
 * not one, was sealed by another key (both ids named) or was altered.
 */
int sg_vault_open(const struct sg_vault_key *k, const char *name, const unsigned char *rec,
                  size_t rec_len, char **plain, size_t *plain_len, char *err, size_t errlen);
/* Wipes and frees what sg_vault_open returned. */
void sg_vault_free(char *plain, size_t plain_len);

/* The id of the key that sealed `rec` (17 bytes with the NUL); -1 when it is not a record. */
int sg_vault_record_key_id(const unsigned char *rec, size_t rec_len,
                           char id[SG_VAULT_KEY_ID_LEN + 1]);
/*
 * The master key file's path (SANDGATE_MASTER_KEY_FILE, else
 * DATA_DIR/master.key); -1 with `err` when the key comes from
 * SANDGATE_MASTER_KEY, which has no file.
 */
int sg_vault_key_path(const char *data_dir, char *path, size_t len, char *err, size_t errlen);
/*
 * Finds the key named `id` in the key file or, during a master key
 * rotation, in its ".new" or ".old-ID" neighbour (sg_vault_key_commit_new).
 * -1 with `err` when none of them holds it.
 */
int sg_vault_key_find(struct sg_vault_key *k, const char *data_dir, const char *id, char *err,
                      size_t errlen);
/*
 * The new key for a rotation: PATH.new, made (0600, synced) when it does not
 * exist yet, else the one a rotation cut short left there.
 */
int sg_vault_key_prepare_new(struct sg_vault_key *k, const char *path, char *err, size_t errlen);
/*
 * Puts PATH.new in place of PATH, keeping the old key (id `old_id`) as
 * PATH.old-ID, directory synced after each step.  Named by id, an old key
 * file is never overwritten by a later rotation, so every key a record may
 * name stays in some file until sg_vault_key_drop_old.
 */
int sg_vault_key_commit_new(const char *path, const char *old_id, char *err, size_t errlen);
/* Removes PATH.old-ID once no record names that key. */
int sg_vault_key_drop_old(const char *path, const char *old_id, char *err, size_t errlen);

#endif
