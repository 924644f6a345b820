/*
 * fuzz_oauth: a token endpoint's answer (sg_oauth_parse) and a stored
 * client credential (sg_oauth_basic), both from the same input.  A token
 * that is accepted must be visible ASCII and fit its buffer, so it can
 * never carry a line break into a header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/sg_oauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char token[256], err[160];
	int64_t expires;
	if (sg_oauth_parse((const char *)data, size, token, sizeof(token), &expires, err,
	                   sizeof(err)) == 0) {
		size_t n = strlen(token);
		if (n == 0 || n >= sizeof(token) || expires <= 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7e)
				abort();
	}
	char *secret = malloc(size + 1);
	if (secret == NULL)
		return 0;
	memcpy(secret, data, size);
	secret[size] = '\0';
	char *basic = sg_oauth_basic(secret);
	if (basic != NULL && (strncmp(basic, "Basic ", 6) != 0 || strpbrk(basic, "\r\n")))
		abort();
	sg_oauth_wipe_free(basic);
	free(secret);
	return 0;
}
