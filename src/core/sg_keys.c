/*
 * API key material, all through libsodium: random bytes, base64url,
 * keyed BLAKE2b, constant-time comparison and wiping.
 */
#include "core/sg_io.h"
#include "core/sg_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX_LEN 4 /* "sgk_" or "sgs_" */
#define SECRET_BYTES 32
#define SECRET_B64_LEN 43 /* 32 bytes, base64url, no padding */
#define KEY_LEN (PREFIX_LEN + SG_KEY_ID_LEN + 1 + SECRET_B64_LEN)

int
sg_keys_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int
sg_key_generate(char *out, size_t outlen, char id[SG_KEY_ID_LEN + 1])
{
	return sg_token_generate(SG_KEY_PREFIX, out, outlen, id);
}

int
sg_token_generate(const char *prefix, char *out, size_t outlen, char id[SG_KEY_ID_LEN + 1])
{
	unsigned char idb[SG_KEY_ID_LEN / 2], secret[SECRET_BYTES];
	char b64[SECRET_B64_LEN + 1];
	if (outlen < KEY_LEN + 1)
		return -1;
	randombytes_buf(idb, sizeof(idb));
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(id, SG_KEY_ID_LEN + 1, idb, sizeof(idb));
	sodium_bin2base64(b64, sizeof(b64), secret, sizeof(secret),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(out, prefix, PREFIX_LEN);
	memcpy(out + PREFIX_LEN, id, SG_KEY_ID_LEN);
	out[PREFIX_LEN + SG_KEY_ID_LEN] = '_';
	memcpy(out + PREFIX_LEN + SG_KEY_ID_LEN + 1, b64, SECRET_B64_LEN + 1);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(b64, sizeof(b64));
	return 0;
}

static int
is_b64url(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_';
}

int
sg_key_parse(const char *key, size_t len, char id[SG_KEY_ID_LEN + 1])
{
	return sg_token_parse(SG_KEY_PREFIX, key, len, id);
}

int
sg_token_parse(const char *prefix, const char *key, size_t len, char id[SG_KEY_ID_LEN + 1])
{
	if (len != KEY_LEN || memcmp(key, prefix, PREFIX_LEN) != 0 ||
	    key[PREFIX_LEN + SG_KEY_ID_LEN] != '_')
		return -1;
	for (size_t i = 0; i < SG_KEY_ID_LEN; i++) {
		char ch = key[PREFIX_LEN + i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return -1;
	}
	const char *secret = key + PREFIX_LEN + SG_KEY_ID_LEN + 1;
	for (size_t i = 0; i < SECRET_B64_LEN; i++)
		if (!is_b64url(secret[i]))
			return -1;
	memcpy(id, key + PREFIX_LEN, SG_KEY_ID_LEN);
	id[SG_KEY_ID_LEN] = '\0';
	return 0;
}

void
sg_key_hash(const uint8_t secret[SG_SERVER_SECRET_LEN], const char *key, size_t len,
            uint8_t out[SG_KEY_HASH_LEN])
{
	crypto_generichash(out, SG_KEY_HASH_LEN, (const unsigned char *)key, len, secret,
	                   SG_SERVER_SECRET_LEN);
}

int
sg_key_verify(const uint8_t secret[SG_SERVER_SECRET_LEN], const char *key, size_t len,
              const uint8_t stored[SG_KEY_HASH_LEN])
{
	uint8_t h[SG_KEY_HASH_LEN];
	sg_key_hash(secret, key, len, h);
	int same = sodium_memcmp(h, stored, SG_KEY_HASH_LEN) == 0;
	sodium_memzero(h, sizeof(h));
	return same;
}

static int
read_exact(int fd, uint8_t *out, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, out + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Makes the name durable too: a secret whose name a crash loses is as dead as its bytes. */
static void
sync_parent_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n == 0 || n >= sizeof(dir)) {
		snprintf(dir, sizeof(dir), "%s", slash == path ? "/" : ".");
	} else {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Written whole under a private name, then linked to its own: the name
 * appears only with all 32 bytes behind it.  Creating the file in place let
 * a second process (two `keys create` at once on a new data dir) read it
 * empty between the create and the write.  link() fails with EEXIST when
 * another process won; the caller then reads the winner's.
 */
static int
create_secret(const char *path, uint8_t out[SG_SERVER_SECRET_LEN])
{
	char tmp[4096 + 64];
	uint8_t tag[8];
	randombytes_buf(tag, sizeof(tag));
	snprintf(tmp, sizeof(tmp), "%s.%02x%02x%02x%02x%02x%02x%02x%02x.tmp", path, tag[0], tag[1],
	         tag[2], tag[3], tag[4], tag[5], tag[6], tag[7]);
	int fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	randombytes_buf(out, SG_SERVER_SECRET_LEN);
	/* fsync before use: keys hashed under a secret that a crash loses are dead keys. */
	int rc = sg_write_all(fd, out, SG_SERVER_SECRET_LEN) == 0 && fsync(fd) == 0 ? 0 : -1;
	close(fd);
	if (rc == 0)
		rc = link(tmp, path);
	int saved = errno;
	unlink(tmp); /* never leave a private copy, whole or short, behind */
	if (rc == 0)
		sync_parent_dir(path);
	errno = saved;
	return rc;
}

/* Accepts only a regular file of exactly the secret's size that nobody else can read. */
static int
read_secret(int fd, uint8_t out[SG_SERVER_SECRET_LEN])
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != SG_SERVER_SECRET_LEN ||
	    (st.st_mode & 077) != 0)
		return -1;
	return read_exact(fd, out, SG_SERVER_SECRET_LEN);
}

int
sg_server_secret_load(const char *path, uint8_t out[SG_SERVER_SECRET_LEN])
{
	int rc = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (create_secret(path, out) == 0)
			return 0;
		/* Lost a creation race: use the winner's secret, once its name is durable. */
		if (errno == EEXIST) {
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			sync_parent_dir(path);
		}
	}
	if (fd >= 0) {
		rc = read_secret(fd, out);
		close(fd);
	}
	/* A failed load must not leave half a secret for a careless caller to use. */
	if (rc != 0)
		sodium_memzero(out, SG_SERVER_SECRET_LEN);
	return rc;
}
