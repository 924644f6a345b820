/*
 * sg_pattern: a JSON Schema `pattern`, compiled once with Vectorscan and
 * matched from any thread.
 *
 * The syntax is PCRE's, which agrees with ECMA-262 (what JSON Schema
 * specifies) on everything people write in schemas: \d, \w, \s, classes,
 * counted repeats, anchors.  `$` is the end of the string and `.` stops at
 * \n and \r, as in ECMA-262.  Two differences remain: `.` matches U+2028
 * and U+2029, and \s is ASCII whitespace only (ECMA adds U+00A0, U+FEFF
 * and other Unicode spaces).  Back-references and lookaround are refused
 * when the schema is compiled, with the reason.
 *
 * Vectorscan scans in time linear in the string, whatever the pattern, so
 * no input can make validation slow.
 */
#ifndef SG_PATTERN_H
#define SG_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

struct sg_pattern;

/* NULL with the reason in `why` when the pattern is refused. */
struct sg_pattern *sg_pattern_compile(const char *source, char *why, size_t whylen);
void sg_pattern_free(struct sg_pattern *p);
/*
 * Whether `s` (`len` bytes of valid UTF-8; NULs allowed) contains a match.
 * False, failing closed, when the thread cannot get scratch memory.
 */
bool sg_pattern_match(const struct sg_pattern *p, const char *s, size_t len);

#endif
