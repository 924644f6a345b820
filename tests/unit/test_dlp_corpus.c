/*
 * test_dlp_corpus: detection quality of the built-in rules, measured on the
 * labelled corpus in tests/data/dlp/ (see make_corpus.py there).
 *
 * Each case is scanned as the document {"<field or 'text'>": "<text>"}
 * through the real database and scanner.  For the class a file is named
 * after, a case counts as found when any hit has that class; precision and
 * recall are counted over that file's cases.  The test fails when a class
 * falls below recall 0.98 or precision 0.95, and prints the table either
 * way.  The "elsewhere" column counts the other files' cases in which the
 * class fired too (a phone inside an IBAN, say): informative, not judged,
 * since another class's true positive may rightly hold this class as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dlp/sg_dlp_scan.h"
#include "json/sg_json.h"

#define CORPUS_DIR SG_SOURCE_ROOT "/tests/data/dlp"
#define MIN_RECALL 0.98
#define MIN_PRECISION 0.95
#define MIN_CASES 40

static const char *const classes[] = {
    "pii.email",      "pii.phone",      "pii.ip",     "pii.dob",       "pii.ssn",
    "financial.card", "financial.iban", "secret.aws", "secret.github", "secret.gitlab",
    "secret.slack",   "secret.stripe",  "secret.jwt", "secret.pem",    "secret.generic",
};
#define N_CLASSES (sizeof(classes) / sizeof(classes[0]))

struct tally {
	unsigned tp, fp, fn, tn, elsewhere;
};

/* Which classes the built-in rules find in {"field": "text"}; a bit per classes[] entry. */
static unsigned
classes_found(const struct sg_dlp_db *db, const char *field, const char *text)
{
	json_t *doc = json_pack("{s:s}", field[0] ? field : "text", text);
	assert_non_null(doc);
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	assert_non_null(body);
	struct sg_json_doc jd;
	struct sg_json_error jerr;
	if (sg_json_parse(body, strlen(body), 16, &jd, &jerr) != SG_JSON_OK)
		fail_msg("case %s does not parse: %s", body, jerr.message);
	struct sg_dlp_result res;
	assert_int_equal(sg_dlp_scan_json(sg_dlp_scanner_thread(), db, jd.root, NULL, 0, &res), 0);
	unsigned found = 0;
	for (size_t i = 0; i < res.n_hits; i++)
		for (size_t c = 0; c < N_CLASSES; c++)
			if (strcmp(res.hits[i].data_class, classes[c]) == 0)
				found |= 1u << c;
	free(body);
	return found;
}

static void
run_file(const struct sg_dlp_db *db, size_t cls, struct tally *t)
{
	char path[512], *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	snprintf(path, sizeof(path), "%s/%s.jsonl", CORPUS_DIR, classes[cls]);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		json_error_t jerr;
		json_t *c = json_loads(line, 0, &jerr);
		const char *text = NULL, *field = NULL, *note = "";
		int expect = -1;
		if (c == NULL || json_unpack(c, "{s:s, s:s, s:b, s?s}", "text", &text, "field",
		                             &field, "expect", &expect, "note", &note) != 0)
			fail_msg("%s:%u: not a case", path, lineno);
		unsigned found = classes_found(db, field, text);
		bool hit = found & (1u << cls);
		if (expect) {
			t[cls].tp += hit;
			t[cls].fn += !hit;
		} else {
			t[cls].fp += hit;
			t[cls].tn += !hit;
		}
		if (hit != (bool)expect)
			printf("  %s:%u %s (%s): %s\n", classes[cls], lineno,
			       expect ? "missed" : "false alarm", note, text);
		for (size_t o = 0; o < N_CLASSES; o++)
			if (o != cls && (found & (1u << o)))
				t[o].elsewhere++;
		json_decref(c);
	}
	free(line);
	fclose(f);
}

static double
ratio(unsigned a, unsigned b)
{
	return b == 0 ? 1.0 : (double)a / (double)b;
}

static void
test_corpus(void **state)
{
	(void)state;
	char err[512];
	struct sg_dlp_db *db = sg_dlp_db_compile(NULL, 0, err, sizeof(err));
	if (db == NULL)
		fail_msg("compile: %s", err);
	struct tally t[N_CLASSES] = {{0}};
	for (size_t c = 0; c < N_CLASSES; c++)
		run_file(db, c, t);
	sg_dlp_db_free(db);

	bool ok = true;
	printf("| class | true pos. | look-alikes | TP | FN | FP | precision | recall | "
	       "elsewhere |\n|---|---|---|---|---|---|---|---|---|\n");
	for (size_t c = 0; c < N_CLASSES; c++) {
		double p = ratio(t[c].tp, t[c].tp + t[c].fp), r = ratio(t[c].tp, t[c].tp + t[c].fn);
		unsigned pos = t[c].tp + t[c].fn, neg = t[c].fp + t[c].tn;
		bool pass =
		    p >= MIN_PRECISION && r >= MIN_RECALL && pos >= MIN_CASES && neg >= MIN_CASES;
		printf("| %s | %u | %u | %u | %u | %u | %.3f | %.3f | %u |%s\n", classes[c], pos,
		       neg, t[c].tp, t[c].fn, t[c].fp, p, r, t[c].elsewhere, pass ? "" : " FAIL");
		ok &= pass;
	}
	fflush(stdout);
	assert_true(ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
