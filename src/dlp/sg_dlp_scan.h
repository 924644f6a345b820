/*
 * sg_dlp_scan: one Vectorscan database per policy snapshot, and the scan
 * of a JSON document against it.
 *
 * Compiling is slow (milliseconds to seconds) and happens when a snapshot
 * is built, at apply and reload, never on the request path.  A database is
 * immutable once built and shared by every thread.
 *
 * A scan gathers every string value of the document (and the text of every
 * number, since a card number may arrive as one) into one buffer, joined by
 * NUL bytes, which no rule matches and no sg_json string holds, and runs
 * the database over it in one hs_scan call.  Each confirmed match is then
 * attributed to its value, and so to the value's RFC 6901 pointer.
 * Field-name hints (x-data-class in a connector's schema) flag a value by
 * where it is, with no pattern at all.
 *
 * Each thread keeps one scanner: Vectorscan scratch and the buffers, reused,
 * so a scan allocates nothing once they have grown.
 */
#ifndef SG_DLP_SCAN_H
#define SG_DLP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlp/sg_dlp_rules.h"
#include "json/sg_json.h"

struct sg_dlp_db;

/*
 * Compiles the built-in rules and `custom` (may be NULL when n_custom is 0)
 * into one database.  NULL with `err` saying which rule failed and why
 * ("rule \"acme_id\": pattern: ...").  The database keeps its own copies of
 * every string.
 */
struct sg_dlp_db *sg_dlp_db_compile(const struct sg_dlp_rule_def *custom, size_t n_custom,
                                    char *err, size_t errlen);
void sg_dlp_db_free(struct sg_dlp_db *db);
/* The number of rules (built-in + custom) in the database. */
size_t sg_dlp_db_rules(const struct sg_dlp_db *db);

/*
 * A field-name hint: every string (or number) at `pointer` is of class
 * `data_class`.  The pointer is RFC 6901 with "*" for any array index or
 * member name: "/contacts/" "*" "/email" (one pointer, written so for this
 * comment's sake) flags every contact's email.  Borrowed for the scan.
 */
struct sg_dlp_hint {
	const char *pointer;
	const char *data_class;
};

/* One confirmed finding.  Strings are owned by the database (or the hint). */
struct sg_dlp_hit {
	const char *rule;       /* the rule's id; "x-data-class" for a hint */
	const char *data_class; /* "financial.card" */
	uint32_t value;         /* index into the result's values */
	uint32_t start, end;    /* byte span inside that value's text */
	uint8_t confidence;
};

/* A string (or number) value the scan looked at. */
struct sg_dlp_value {
	struct sg_json_val v;
	const char *text; /* the string's bytes, or the number's text; NUL-terminated */
	uint32_t len;
	bool is_number;
	uint32_t pointer_off; /* its RFC 6901 pointer, at sg_dlp_pointer() */
};

/* What one scan found; lives until the same scanner scans again. */
struct sg_dlp_result {
	const struct sg_dlp_hit *hits; /* in document order, then by start */
	size_t n_hits;
	const struct sg_dlp_value *values;
	size_t n_values;
	bool truncated;       /* more than SG_DLP_MAX_HITS hits: the rest were not kept */
	const char *pointers; /* the pointers' storage; see sg_dlp_pointer */
};

#define SG_DLP_MAX_HITS 256

/* The RFC 6901 pointer of value `i` ("" is the root itself). */
static inline const char *
sg_dlp_pointer(const struct sg_dlp_result *r, uint32_t i)
{
	return r->pointers + r->values[i].pointer_off;
}

struct sg_dlp_scanner;

/* The calling thread's scanner, made on first use and freed at thread exit. */
struct sg_dlp_scanner *sg_dlp_scanner_thread(void);
/* A scanner of one's own (benchmarks, fuzzers); free with sg_dlp_scanner_free. */
struct sg_dlp_scanner *sg_dlp_scanner_new(void);
void sg_dlp_scanner_free(struct sg_dlp_scanner *sc);

/*
 * Scans every string and number under `root` (a live document).  0, or -1
 * out of memory (the caller fails closed).  `hints` may be NULL.
 */
int sg_dlp_scan_json(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db, struct sg_json_val root,
                     const struct sg_dlp_hint *hints, size_t n_hints, struct sg_dlp_result *out);
/* Scans one piece of plain text (a template's log line) as a single value with pointer "". */
int sg_dlp_scan_text(struct sg_dlp_scanner *sc, const struct sg_dlp_db *db, const char *text,
                     size_t len, struct sg_dlp_result *out);

#endif
