/*
 * fuzz_dlp: the DLP scan and its path attribution.
 *
 * For any input that parses as JSON, sg_dlp_scan_json with the built-in
 * rules must attribute every hit to a value it lies inside, and each
 * value's pointer must lead back (sg_json_pointer) to a value whose text is
 * the one scanned: a string's bytes, or a number reading back as the same
 * number.  Hits are in document order and never more than the cap.  The
 * raw input, as plain text, is scanned too (sg_dlp_scan_text).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"

#define DEPTH 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sg_dlp_db *db;
static struct sg_dlp_scanner *sc;

static const struct sg_dlp_hint hints[] = {
    {"/*/email", "pii.email"},
    {"/contacts/*/phone", "pii.phone"},
    {"", "pii.root"},
};

static void
check_value(struct sg_json_val root, const struct sg_dlp_result *r, uint32_t i)
{
	const struct sg_dlp_value *v = &r->values[i];
	struct sg_json_val at;
	const char *s;
	size_t len;

	if (v->text[v->len] != '\0' || !sg_json_pointer(root, sg_dlp_pointer(r, i), &at))
		__builtin_trap();
	if (v->is_number) {
		if (!sg_json_is_number(at) || strtod(v->text, NULL) != sg_json_double(at))
			__builtin_trap();
		return;
	}
	s = sg_json_string(at, &len);
	if (sg_json_type(at) != SG_JSON_STRING || len != v->len || memcmp(s, v->text, len) != 0)
		__builtin_trap();
}

static void
check_hits(const struct sg_dlp_result *r)
{
	if (r->n_hits > SG_DLP_MAX_HITS || (r->truncated && r->n_hits != SG_DLP_MAX_HITS))
		__builtin_trap();
	for (size_t k = 0; k < r->n_hits; k++) {
		const struct sg_dlp_hit *h = &r->hits[k];
		if (h->value >= r->n_values || h->start >= h->end ||
		    h->end > r->values[h->value].len || h->rule == NULL || h->data_class == NULL)
			__builtin_trap();
		if (k > 0 &&
		    (h[-1].value > h->value || (h[-1].value == h->value && h[-1].start > h->start)))
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_json_doc doc;
	struct sg_dlp_result r;
	char err[256];

	if (db == NULL) {
		db = sg_dlp_db_compile(NULL, 0, err, sizeof(err));
		sc = sg_dlp_scanner_new();
		if (db == NULL || sc == NULL)
			__builtin_trap();
	}
	if (sg_dlp_scan_text(sc, db, (const char *)data, size, &r) != 0)
		__builtin_trap();
	check_hits(&r);
	if (r.n_values != 1 || r.values[0].len != size || sg_dlp_pointer(&r, 0)[0] != '\0' ||
	    (size > 0 && memcmp(r.values[0].text, data, size) != 0))
		__builtin_trap();

	if (sg_json_parse((const char *)data, size, DEPTH, &doc, NULL) != SG_JSON_OK)
		return 0;
	if (sg_dlp_scan_json(sc, db, doc.root, hints, sizeof(hints) / sizeof(hints[0]), &r) != 0)
		__builtin_trap();
	check_hits(&r);
	for (uint32_t i = 0; i < r.n_values; i++)
		check_value(doc.root, &r, i);
	return 0;
}
