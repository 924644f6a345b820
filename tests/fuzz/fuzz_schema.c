/*
 * fuzz_schema: a schema and an instance from one input.  The first two bytes
 * (little-endian) say where the schema text ends, so the fuzzer can grow
 * either side without disturbing the other.
 */
#include <stddef.h>
#include <stdint.h>

#include "schema/sg_schema.h"

/* NUL bytes are allowed so the NUL-in-key and NUL-in-string paths are reached. */
#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t split = (size_t)data[0] | (size_t)data[1] << 8;
	data += 2;
	size -= 2;
	if (split > size)
		split = size;

	json_error_t jerr;
	json_t *schema = json_loadb((const char *)data, split, LOAD_FLAGS, &jerr);
	json_t *instance = json_loadb((const char *)data + split, size - split, LOAD_FLAGS, &jerr);
	struct sg_schema_error err, errs[4];
	struct sg_schema *s = schema ? sg_schema_compile(schema, &err) : NULL;
	if (s != NULL && instance != NULL) {
		size_t n = 0;
		int rc = sg_schema_validate(s, instance, errs, 4, &n);
		/* The validator always explains a refusal, and never claims errors on success. */
		if ((rc == 0) != (n == 0) || n > 4)
			__builtin_trap();
	}
	sg_schema_free(s);
	json_decref(schema);
	json_decref(instance);
	return 0;
}
