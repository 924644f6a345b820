/*
 * The key id is the first 8 bytes of BLAKE2b(key) in hex: enough to tell
 * keys apart in a rotation, and one-way.  The key file holds the key in
 * base64url with a newline, so an operator can back it up as text.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sg_io.h"
#include "core/sg_vault.h"

#define MAGIC "sgv1"
#define MAGIC_LEN 4
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define HEAD_LEN (MAGIC_LEN + SG_VAULT_KEY_ID_LEN + NONCE_LEN)
#define KEY_TEXT_MAX 128

void
sg_vault_key_from(struct sg_vault_key *k, const unsigned char raw[SG_VAULT_KEY_LEN])
{
	unsigned char h[8];
	memcpy(k->key, raw, SG_VAULT_KEY_LEN);
	crypto_generichash(h, sizeof(h), raw, SG_VAULT_KEY_LEN, NULL, 0);
	sodium_bin2hex(k->id, sizeof(k->id), h, sizeof(h));
}

void
sg_vault_key_wipe(struct sg_vault_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

static int
fail(char *err, size_t errlen, const char *msg, const char *detail)
{
	snprintf(err, errlen, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
	return -1;
}

static int
key_from_text(struct sg_vault_key *k, const char *text, size_t len, const char *where, char *err,
              size_t errlen)
{
	unsigned char raw[SG_VAULT_KEY_LEN];
	size_t n = 0;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		len--;
	if (sodium_base642bin(raw, sizeof(raw), text, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof(raw)) {
		snprintf(err, errlen,
		         "%s does not hold a master key (32 bytes in base64url, 43 characters); "
		         "restore it from your backup",
		         where);
		return -1;
	}
	sg_vault_key_from(k, raw);
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

/* A new key, written where nobody else may read it; O_EXCL: two gateways never both write one. */
static int
create_key_file(const char *path, char *err, size_t errlen)
{
	unsigned char raw[SG_VAULT_KEY_LEN];
	char text[KEY_TEXT_MAX];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : fail(err, errlen, "cannot create the master key file",
		                                  strerror(errno));
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(text, sizeof(text), raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	size_t n = strlen(text);
	text[n++] = '\n';
	int rc = sg_write_all(fd, text, n) == 0 && fsync(fd) == 0 ? 0 : -1;
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(text, sizeof(text));
	if (close(fd) != 0 || rc != 0) {
		unlink(path);
		return fail(err, errlen, "cannot write the master key file", strerror(errno));
	}
	return 0;
}

/* A rename or link is durable only once its directory is synced. */
static int
sync_dir_of(const char *path, char *err, size_t errlen)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "cannot open the master key's directory", strerror(errno));
	int rc = fsync(fd);
	close(fd);
	return rc == 0 ? 0 : fail(err, errlen, "cannot sync the master key's directory",
	                          strerror(errno));
}

static int
read_key_file(struct sg_vault_key *k, const char *path, char *err, size_t errlen)
{
	char text[KEY_TEXT_MAX];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(err, errlen, "cannot open the master key file", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		close(fd);
		snprintf(err, errlen,
		         "the master key file %s may be read by others (or is not a file); "
		         "run chmod 600 on it",
		         path);
		return -1;
	}
	ssize_t n = read(fd, text, sizeof(text));
	close(fd);
	int rc = n > 0 && (size_t)n < sizeof(text)
	             ? key_from_text(k, text, (size_t)n, path, err, errlen)
	             : fail(err, errlen, "the master key file is empty or too long", path);
	sodium_memzero(text, sizeof(text));
	return rc;
}

int
sg_vault_key_path(const char *data_dir, char *path, size_t len, char *err, size_t errlen)
{
	const char *env = getenv("SANDGATE_MASTER_KEY");
	if (env != NULL && *env != '\0')
		return fail(err, errlen, "the master key comes from SANDGATE_MASTER_KEY, not a file",
		            NULL);
	const char *file = getenv("SANDGATE_MASTER_KEY_FILE");
	int n;
	if (file != NULL && *file != '\0')
		n = snprintf(path, len, "%s", file);
	else if (data_dir != NULL)
		n = snprintf(path, len, "%s/master.key", data_dir);
	else
		return fail(err, errlen,
		            "no master key: set SANDGATE_MASTER_KEY_FILE or give a data directory",
		            NULL);
	if (n < 0 || (size_t)n + sizeof(".new") > len)
		return fail(err, errlen, "the master key file's path is too long", NULL);
	return 0;
}

int
sg_vault_key_load(struct sg_vault_key *k, const char *data_dir, char *err, size_t errlen)
{
	const char *env = getenv("SANDGATE_MASTER_KEY");
	if (env != NULL && *env != '\0')
		return key_from_text(k, env, strlen(env), "SANDGATE_MASTER_KEY", err, errlen);
	char path[4096];
	if (sg_vault_key_path(data_dir, path, sizeof(path), err, errlen) != 0)
		return -1;
	if (create_key_file(path, err, errlen) != 0)
		return -1;
	return read_key_file(k, path, err, errlen);
}

int
sg_vault_key_find(struct sg_vault_key *k, const char *data_dir, const char *id, char *err,
                  size_t errlen)
{
	char path[4096], file[4096 + 32], why[256], old_tail[8 + SG_VAULT_KEY_ID_LEN];
	const char *const tails[] = {"", ".new", old_tail};
	const char *env = getenv("SANDGATE_MASTER_KEY");
	if (env != NULL && *env != '\0') {
		if (key_from_text(k, env, strlen(env), "SANDGATE_MASTER_KEY", err, errlen) != 0)
			return -1;
		if (strcmp(k->id, id) == 0)
			return 0;
		sg_vault_key_wipe(k);
		snprintf(err, errlen,
		         "a secret was sealed with master key %s, but SANDGATE_MASTER_KEY holds "
		         "another; start the gateway with the key that sealed it",
		         id);
		return -1;
	}
	if (sg_vault_key_path(data_dir, path, sizeof(path), err, errlen) != 0)
		return -1;
	snprintf(old_tail, sizeof(old_tail), ".old-%.16s", id);
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		snprintf(file, sizeof(file), "%s%s", path, tails[i]);
		if (access(file, F_OK) != 0 || read_key_file(k, file, why, sizeof(why)) != 0)
			continue;
		if (strcmp(k->id, id) == 0)
			return 0;
		sg_vault_key_wipe(k);
	}
	snprintf(err, errlen,
	         "a secret was sealed with master key %s, which neither %s nor its .new or .old-%s "
	         "neighbour holds; restore that key file from your backup",
	         id, path, id);
	return -1;
}

int
sg_vault_key_prepare_new(struct sg_vault_key *k, const char *path, char *err, size_t errlen)
{
	char file[4096 + 8];
	snprintf(file, sizeof(file), "%s.new", path);
	if (create_key_file(file, err, errlen) != 0 || sync_dir_of(file, err, errlen) != 0)
		return -1;
	return read_key_file(k, file, err, errlen);
}

int
sg_vault_key_commit_new(const char *path, const char *old_id, char *err, size_t errlen)
{
	char next[4096 + 8], old[4096 + 32];
	snprintf(next, sizeof(next), "%s.new", path);
	snprintf(old, sizeof(old), "%s.old-%s", path, old_id);
	/* The old key keeps a second name until every record has left it (sg_vault_key_drop_old). */
	if (link(path, old) != 0 && errno != EEXIST)
		return fail(err, errlen, "cannot keep the old master key aside", strerror(errno));
	if (sync_dir_of(path, err, errlen) != 0)
		return -1;
	if (rename(next, path) != 0)
		return fail(err, errlen, "cannot put the new master key in place", strerror(errno));
	return sync_dir_of(path, err, errlen);
}

int
sg_vault_key_drop_old(const char *path, const char *old_id, char *err, size_t errlen)
{
	char old[4096 + 32];
	snprintf(old, sizeof(old), "%s.old-%s", path, old_id);
	if (unlink(old) != 0 && errno != ENOENT)
		return fail(err, errlen, "cannot remove the old master key file", strerror(errno));
	return sync_dir_of(path, err, errlen);
}

int
sg_vault_seal(const struct sg_vault_key *k, const char *name, const void *plain, size_t n,
              unsigned char **rec, size_t *rec_len)
{
	if (n > SIZE_MAX - HEAD_LEN - TAG_LEN)
		return -1;
	unsigned char *r = malloc(HEAD_LEN + n + TAG_LEN);
	if (r == NULL)
		return -1;
	memcpy(r, MAGIC, MAGIC_LEN);
	memcpy(r + MAGIC_LEN, k->id, SG_VAULT_KEY_ID_LEN);
	unsigned char *nonce = r + MAGIC_LEN + SG_VAULT_KEY_ID_LEN;
	randombytes_buf(nonce, NONCE_LEN);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(r + HEAD_LEN, &clen, plain, n,
	                                           (const unsigned char *)name, strlen(name),
	                                           NULL, nonce, k->key);
	*rec = r;
	*rec_len = HEAD_LEN + (size_t)clen;
	return 0;
}

int
sg_vault_open(const struct sg_vault_key *k, const char *name, const unsigned char *rec,
              size_t rec_len, char **plain, size_t *plain_len, char *err, size_t errlen)
{
	char id[SG_VAULT_KEY_ID_LEN + 1];
	if (rec_len < HEAD_LEN + TAG_LEN || memcmp(rec, MAGIC, MAGIC_LEN) != 0)
		return fail(err, errlen, "the stored secret is not a sealed record", name);
	memcpy(id, rec + MAGIC_LEN, SG_VAULT_KEY_ID_LEN);
	id[SG_VAULT_KEY_ID_LEN] = '\0';
	if (sodium_memcmp(id, k->id, SG_VAULT_KEY_ID_LEN) != 0) {
		snprintf(err, errlen,
		         "the secret for %s was sealed with master key %s, but this gateway has "
		         "key %s; start it with the key that sealed it",
		         name, id, k->id);
		return -1;
	}
	size_t n = rec_len - HEAD_LEN - TAG_LEN;
	char *p = malloc(n + 1);
	if (p == NULL)
		return fail(err, errlen, "out of memory while opening a secret", NULL);
	unsigned long long plen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        (unsigned char *)p, &plen, NULL, rec + HEAD_LEN, rec_len - HEAD_LEN,
	        (const unsigned char *)name, strlen(name), rec + MAGIC_LEN + SG_VAULT_KEY_ID_LEN,
	        k->key) != 0) {
		free(p);
		return fail(err, errlen,
		            "the stored secret was altered or belongs to another name; set it again",
		            name);
	}
	p[plen] = '\0';
	*plain = p;
	*plain_len = (size_t)plen;
	return 0;
}

void
sg_vault_free(char *plain, size_t plain_len)
{
	if (plain == NULL)
		return;
	sodium_memzero(plain, plain_len);
	free(plain);
}

int
sg_vault_record_key_id(const unsigned char *rec, size_t rec_len, char id[SG_VAULT_KEY_ID_LEN + 1])
{
	if (rec_len < HEAD_LEN + TAG_LEN || memcmp(rec, MAGIC, MAGIC_LEN) != 0)
		return -1;
	memcpy(id, rec + MAGIC_LEN, SG_VAULT_KEY_ID_LEN);
	id[SG_VAULT_KEY_ID_LEN] = '\0';
	return 0;
}
