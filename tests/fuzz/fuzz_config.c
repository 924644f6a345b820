/*
 * fuzz_config: sandgate.yaml parsing, plus the listen and duration parsers
 * that the command line shares.  Any input must end in 0 or -1 with the
 * struct either untouched or fully valid, and nothing may leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_config c;
	struct sg_diags d = {0};
	sg_config_defaults(&c);
	int rc = sg_config_parse(&c, "fuzz.yaml", (const char *)data, size, &d);
	/* Success and errors must agree, and a valid result stays in range. */
	if ((rc == 0) != (d.n == 0))
		abort();
	if (c.threads < 1 || c.threads > 64 || c.data_dir == NULL || c.listen_port == 0)
		abort();
	sg_diags_free(&d);
	sg_config_free(&c);

	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	uint64_t ms;
	sg_config_defaults(&c);
	sg_config_set_listen(&c, s);
	sg_duration_parse_ms(s, &ms);
	sg_config_free(&c);
	free(s);
	return 0;
}
