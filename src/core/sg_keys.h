/*
 * sg_keys: API key material.  A key reads "sgk_<id>_<secret>": the id (16
 * hex characters) is public and names the key in lists and logs; the secret
 * (43 base64url characters, 256 bits) is shown once.  Only a keyed BLAKE2b
 * hash of the whole key, under the server secret, is ever stored, and it is
 * compared in constant time.
 */
#ifndef SG_KEYS_H
#define SG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define SG_KEY_ID_LEN 16
#define SG_KEY_HASH_LEN 32
#define SG_SERVER_SECRET_LEN 32
#define SG_KEY_MAX_LEN 80
#define SG_KEY_PREFIX "sgk_"
#define SG_SESSION_PREFIX "sgs_"

/* Call once per process before anything else here (wraps sodium_init). */
int sg_keys_init(void);

/* Writes a new key into out (at least SG_KEY_MAX_LEN + 1 bytes) and its id into id. */
int sg_key_generate(char *out, size_t outlen, char id[SG_KEY_ID_LEN + 1]);

/*
 * Splits a presented key.  Returns 0 and the id when `key` has the right
 * shape; -1 otherwise (without looking anything up).
 */
int sg_key_parse(const char *key, size_t len, char id[SG_KEY_ID_LEN + 1]);

/* The same shapes for any four-character prefix: "sgs_" session tokens use them. */
int sg_token_generate(const char *prefix, char *out, size_t outlen, char id[SG_KEY_ID_LEN + 1]);
int sg_token_parse(const char *prefix, const char *key, size_t len, char id[SG_KEY_ID_LEN + 1]);

void sg_key_hash(const uint8_t secret[SG_SERVER_SECRET_LEN], const char *key, size_t len,
                 uint8_t out[SG_KEY_HASH_LEN]);

/* Constant-time: returns 1 when `key` hashes to `stored`. */
int sg_key_verify(const uint8_t secret[SG_SERVER_SECRET_LEN], const char *key, size_t len,
                  const uint8_t stored[SG_KEY_HASH_LEN]);

/*
 * Loads the server secret from `path`, creating it (mode 0600, random) when
 * absent.  Refuses a file of the wrong size or one readable by others.
 */
int sg_server_secret_load(const char *path, uint8_t out[SG_SERVER_SECRET_LEN]);

#endif
