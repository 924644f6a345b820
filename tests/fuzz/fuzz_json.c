/*
 * fuzz_json: sg_json (simdjson) against jansson, and the writer against
 * the parser.
 *
 * 1. For any input, sg_json_parse and jansson's json_loadb (duplicates
 *    refused, any value at the top) agree on whether it is JSON, and when
 *    both accept it they read the same value: the same types (jansson's
 *    integer is SG_JSON_INT, its real SG_JSON_DOUBLE), numbers, strings and
 *    members.
 * 2. For any parsed document, sg_jw_value writes text that parses again
 *    and reads as the same value, and writing that again gives the same
 *    text.
 *
 * Deliberate differences, excluded below and nowhere else:
 *  - Integers above INT64_MAX up to UINT64_MAX: sg_json reads them as
 *    SG_JSON_UINT; jansson, whose integers are int64, refuses them
 *    ("too big integer").
 *  - Depth: both caps are 2048 levels (jansson's JSON_PARSER_MAX_DEPTH and
 *    the cap passed here), counted the same way, so depth is not a
 *    difference; a build of jansson with another cap would make it one.
 *  - A raw NUL byte: sg_json refuses every input holding one, whereas
 *    jansson's loader takes a NUL after a complete number as the end of
 *    its input, so it reads "[1\0]" (4 bytes) as [1], and "1\0" as 1.
 *    (Why step_validate looked for a NUL before calling jansson.)  Such an
 *    input must be refused by sg_json and is not compared further.
 *  - "\u0000" is not a difference: sg_json refuses it and so does jansson
 *    without JSON_ALLOW_NUL.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json/sg_json.h"

#define DEPTH 2048
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether jansson's `j` and sg_json's `v` are the same value. */
static bool
same(const json_t *j, struct sg_json_val v)
{
	enum sg_json_type t = sg_json_type(v);
	struct sg_json_iter it;
	struct sg_json_val child;
	const char *key, *s;
	size_t len, i = 0;

	switch (json_typeof(j)) {
	case JSON_NULL:
		return t == SG_JSON_NULL;
	case JSON_TRUE:
	case JSON_FALSE:
		return t == SG_JSON_BOOL && sg_json_bool(v) == json_is_true(j);
	case JSON_INTEGER:
		return t == SG_JSON_INT && sg_json_int(v) == json_integer_value(j);
	case JSON_REAL:
		return t == SG_JSON_DOUBLE && sg_json_double(v) == json_real_value(j) &&
		       signbit(sg_json_double(v)) == signbit(json_real_value(j));
	case JSON_STRING:
		s = sg_json_string(v, &len);
		return t == SG_JSON_STRING && len == json_string_length(j) &&
		       memcmp(s, json_string_value(j), len) == 0;
	case JSON_ARRAY:
		if (t != SG_JSON_ARRAY || sg_json_size(v) != json_array_size(j))
			return false;
		sg_json_iter_init(&it, v);
		while (sg_json_iter_next(&it, NULL, NULL, &child))
			if (!same(json_array_get(j, i++), child))
				return false;
		return true;
	case JSON_OBJECT:
		if (t != SG_JSON_OBJECT || sg_json_size(v) != json_object_size(j))
			return false;
		sg_json_iter_init(&it, v);
		while (sg_json_iter_next(&it, &key, &len, &child)) {
			const json_t *m = json_object_getn(j, key, len);
			if (m == NULL || !same(m, child))
				return false;
		}
		return true;
	}
	return false;
}

/* The one excluded difference: jansson refused an integer that fits uint64_t. */
static bool
is_uint_only(const json_error_t *jerr, const uint8_t *data, size_t size)
{
	if (json_error_code(jerr) != json_error_numeric_overflow)
		return false;
	/* jansson's position is just past the number: read it back and see if it fits. */
	size_t end = (size_t)jerr->position, start = end;
	while (start > 0 && data[start - 1] >= '0' && data[start - 1] <= '9')
		start--;
	if (start == end || end > size || end - start > 20 || (start > 0 && data[start - 1] == '-'))
		return false;
	char num[24];
	memcpy(num, data + start, end - start);
	num[end - start] = '\0';
	errno = 0;
	unsigned long long u = strtoull(num, NULL, 10);
	return errno == 0 && u > INT64_MAX;
}

/* Writes `v` into `out` (released by the caller); traps when the writer refuses. */
static void
write_value(struct sg_json_val v, struct sg_jbuf *out)
{
	struct sg_jw w;
	sg_jw_begin(&w, out);
	sg_jw_value(&w, v);
	if (sg_jw_end(&w) != 0)
		__builtin_trap();
}

/* A parsed value written out, read back and written again: nothing may change. */
static void
round_trip(struct sg_json_val root, const json_t *j)
{
	struct sg_jbuf first = {0}, second = {0};
	struct sg_json_doc doc;

	write_value(root, &first);
	if (sg_json_parse(first.data, first.len, DEPTH, &doc, NULL) != SG_JSON_OK)
		__builtin_trap();
	if (j != NULL && !same(j, doc.root))
		__builtin_trap();
	write_value(doc.root, &second);
	if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
		__builtin_trap();
	sg_jbuf_release(&first);
	sg_jbuf_release(&second);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_json_doc doc;
	json_error_t jerr;

	enum sg_json_rc rc = sg_json_parse((const char *)data, size, DEPTH, &doc, NULL);
	if (memchr(data, '\0', size) != NULL) {
		if (rc != SG_JSON_MALFORMED)
			__builtin_trap();
		return 0;
	}
	json_t *j = json_loadb((const char *)data, size, LOAD_FLAGS, &jerr);
	if (rc == SG_JSON_NO_MEMORY) {
		json_decref(j);
		return 0;
	}
	bool ours = rc == SG_JSON_OK, theirs = j != NULL;
	if (ours != theirs && !(ours && is_uint_only(&jerr, data, size)))
		__builtin_trap();
	if (ours && theirs && !same(j, doc.root))
		__builtin_trap();
	if (ours)
		round_trip(doc.root, j);
	json_decref(j);
	return 0;
}
