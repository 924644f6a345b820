/*
 * sg_yaml: libfyaml with positions.  Definitions arrive from people and
 * from the admin API, so parsing is bounded: 1 MiB of UTF-8, one document,
 * 64 levels (libfyaml's own limit), 100 errors per file, and no anchors,
 * aliases, tags or merge keys.  Aliases are never expanded, so a "billion
 * laughs" document is refused rather than multiplied.
 */
#include "core/sg_yaml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YAML_MAX_TEXT   (1024 * 1024)
#define YAML_MAX_DEPTH  64
#define YAML_MAX_ERRORS 100

static const char too_many[] = "too many errors; fix these and try again";

/* SK_OTHER: not a scalar at all (mapping, list, alias or nothing). */
enum scalar_kind { SK_NULL, SK_BOOL, SK_INT, SK_FLOAT, SK_STRING, SK_BAD_NUMBER, SK_OTHER };

/* ---- positions and errors ---------------------------------------------- */

/* libfyaml token marks are 0-based; diagnostics print 1-based positions. */
static bool
pos_down(struct fy_node *n, int *line, int *col, int depth)
{
	if (n == NULL || depth > YAML_MAX_DEPTH + 1)
		return false;
	struct fy_token *t = fy_node_get_scalar_token(n);
	const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
	if (m) {
		enum fy_node_style st = fy_node_get_style(n);
		/* Quoted and alias marks start after the quote or '*'; point at it. */
		bool lead = st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED ||
		    st == FYNS_ALIAS;
		*line = m->line + 1;
		*col = m->column + (lead && m->column > 0 ? 0 : 1);
		return true;
	}
	/* 0.7.12 exposes no mark for collections: use their first scalar. */
	void *it = NULL;
	struct fy_node_pair *p;
	struct fy_node *item;
	if (fy_node_is_mapping(n))
		while ((p = fy_node_mapping_iterate(n, &it)) != NULL)
			if (pos_down(fy_node_pair_key(p), line, col, depth + 1) ||
			    pos_down(fy_node_pair_value(p), line, col, depth + 1))
				return true;
	if (fy_node_is_sequence(n))
		while ((item = fy_node_sequence_iterate(n, &it)) != NULL)
			if (pos_down(item, line, col, depth + 1))
				return true;
	return false;
}

void
sg_yaml_pos(struct fy_node *n, int *line, int *col)
{
	*line = *col = 0;
	/* An empty collection has no scalar; point at the key that holds it. */
	while (n != NULL) {
		if (pos_down(n, line, col, 0))
			return;
		struct fy_node *parent = fy_node_get_parent(n);
		void *it = NULL;
		struct fy_node_pair *p;
		while (parent && fy_node_is_mapping(parent) &&
		    (p = fy_node_mapping_iterate(parent, &it)) != NULL)
			if (fy_node_pair_value(p) == n && pos_down(fy_node_pair_key(p), line, col, 0))
				return;
		n = parent;
	}
}

static bool
same_file(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * True once `file` has YAML_MAX_ERRORS diagnostics in a row; the first time,
 * adds a final "too many errors" so that the file still fails.  This keeps a
 * hostile document from costing more than a bounded number of positions.
 */
static bool
over_error_limit(struct sg_diags *d, const char *file)
{
	if (d->n < YAML_MAX_ERRORS)
		return false;
	const struct sg_diag *last = &d->v[d->n - 1];
	if (same_file(last->file, file) && strcmp(last->msg, too_many) == 0)
		return true;
	for (size_t i = d->n - YAML_MAX_ERRORS; i < d->n; i++)
		if (!same_file(d->v[i].file, file))
			return false;
	sg_diags_add(d, file, 0, 0, "%s", too_many);
	return true;
}

void
sg_yaml_error(struct sg_diags *d, const char *file, struct fy_node *n, const char *fmt, ...)
{
	int line, col;
	if (over_error_limit(d, file))
		return;
	sg_yaml_pos(n, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	sg_diags_addv(d, file, line, col, fmt, ap);
	va_end(ap);
}

/* ---- parsing ----------------------------------------------------------- */

/*
 * Offset of the first character YAML does not allow (1.2 section 5.1: C0 and
 * C1 controls other than tab, LF, CR and NEL; surrogates; U+FFFE/FFFF), or
 * of invalid UTF-8; len when there is none.  *utf8 says which it was.
 */
static size_t
first_bad_char(const unsigned char *s, size_t len, bool *utf8)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 :
		    c >= 0xf0 && c <= 0xf4 ? 3 : SIZE_MAX;
		*utf8 = true;
		if (n == SIZE_MAX || len - i <= n)
			return i;
		/* Narrow the second byte to refuse overlongs, surrogates and > U+10FFFF. */
		lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : lo;
		hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : hi;
		uint32_t cp = n ? c & (0x3fu >> n) : c;
		for (size_t k = 1; k <= n; k++) {
			if (s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xbf))
				return i;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		*utf8 = false;
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
		    (cp >= 0x7f && cp < 0xa0 && cp != 0x85) || cp == 0xfffe || cp == 0xffff)
			return i;
		i += n + 1;
	}
	return len;
}

/* 1-based line and column (in characters) of byte `off`. */
static void
offset_pos(const char *text, size_t off, int *line, int *col)
{
	*line = *col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n')
			++*line, *col = 1;
		else if (((unsigned char)text[i] & 0xc0) != 0x80)
			++*col;
	}
}

/*
 * libfyaml 0.7.12 frees a simple key twice (a crash) when, after an explicit
 * "? " key, a ':' is followed by a tab and then a block indicator.  It
 * rejects such text anyway; this refuses it before libfyaml can crash.
 */
static int
check_colon_tab(const char *file, const char *text, size_t len, struct sg_diags *d)
{
	if (memchr(text, '?', len) == NULL)
		return 0;
	for (size_t i = 0; i < len; i++) {
		size_t j = i + 1, tab = 0;
		if (text[i] != ':')
			continue;
		for (; j < len && (text[j] == ' ' || text[j] == '\t'); j++)
			tab = tab ? tab : text[j] == '\t' ? j : 0;
		char c = j < len ? text[j] : '\0', next = j + 1 < len ? text[j + 1] : '\0';
		bool block = (c && strchr("?:|>", c)) ||
		    (c == '-' && (next == '\0' || strchr(" \t\r\n", next)));
		if (tab && block) {
			int line, col;
			offset_pos(text, tab, &line, &col);
			sg_diags_add(d, file, line, col, "tab after ':': use spaces here");
			return -1;
		}
	}
	return 0;
}

/*
 * libfyaml 0.7.12 loops forever on some invalid UTF-8 and crashes on a NUL
 * byte; YAML allows neither, so they are refused before parsing.
 */
static int
check_chars(const char *file, const char *text, size_t len, struct sg_diags *d)
{
	bool utf8 = false;
	size_t bad = first_bad_char((const unsigned char *)text, len, &utf8);
	int line, col;
	if (bad == len)
		return check_colon_tab(file, text, len, d);
	offset_pos(text, bad, &line, &col);
	if (utf8)
		sg_diags_add(d, file, line, col, "invalid UTF-8 (byte 0x%02x): save the file as "
		    "UTF-8", (unsigned char)text[bad]);
	else
		sg_diags_add(d, file, line, col, "control character (byte 0x%02x) is not allowed "
		    "in YAML: remove it", (unsigned char)text[bad]);
	return -1;
}

/* libfyaml reports through a diag object; errors are collected, never printed. */
static void
diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag, (void)user, (void)buf, (void)len;
}

/* The raw source text of a token (escapes and all), up to `cap - 1` printable bytes. */
static void
token_source(const char *text, size_t len, struct fy_token *t, char *out, size_t cap)
{
	const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL;
	const struct fy_mark *b = t ? fy_token_end_mark(t) : NULL;
	size_t o = 0;
	for (size_t i = a ? a->input_pos : 0; b && i < b->input_pos && i < len && o + 1 < cap; i++)
		out[o++] = text[i] >= 0x20 && text[i] < 0x7f && text[i] != '"' ? text[i] : '?';
	out[o] = '\0';
}

static void
collect_syntax_errors(struct fy_diag *diag, const char *file, const char *text, size_t len,
    struct sg_diags *d)
{
	void *it = NULL;
	struct fy_diag_error *e;
	while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
		char key[68];
		token_source(text, len, e->fyt, key, sizeof(key));
		if (e->type < FYET_ERROR)
			continue;
		if (e->msg && strcmp(e->msg, "duplicate key") == 0 && key[0])
			sg_diags_add(d, file, e->line, e->column,
			    "duplicate key \"%s\": each key may appear only once in a mapping", key);
		else
			sg_diags_add(d, file, e->line, e->column, "YAML syntax error: %s",
			    e->msg ? e->msg : "unknown error");
	}
}

static bool
is_merge_key(struct fy_node *k)
{
	size_t kl = 0;
	const char *ks = fy_node_get_style(k) == FYNS_PLAIN ? fy_node_get_scalar(k, &kl) : NULL;
	return ks && kl == 2 && memcmp(ks, "<<", 2) == 0;
}

/*
 * libfyaml 0.7.12 decodes two or more '' escapes in a row wrongly ('a''''b'
 * comes out as "a'''") and can leak the text.  Found from the source span,
 * before any text is asked for.
 */
static bool
quote_run(const char *text, size_t len, struct fy_node *n)
{
	struct fy_token *t = fy_node_get_scalar_token(n);
	const struct fy_mark *a = t ? fy_token_start_mark(t) : NULL;
	const struct fy_mark *b = t ? fy_token_end_mark(t) : NULL;
	size_t run = 0;
	if (fy_node_get_style(n) != FYNS_SINGLE_QUOTED)
		return false;
	for (size_t i = a ? a->input_pos : 0; b && i < b->input_pos && i < len; i++)
		if ((run = text[i] == '\'' ? run + 1 : 0) >= 4)
			return true;
	return false;
}

struct ycheck {
	const char *file;
	const char *text;
	size_t len;
	struct sg_diags *d;
};

/* Refuses the YAML features that make a document mean more than it shows. */
static void
check_features(const struct ycheck *y, struct fy_node *n, int depth)
{
	if (n == NULL || depth > YAML_MAX_DEPTH + 1)
		return; /* libfyaml already refused deeper documents */
	if (fy_node_is_alias(n)) {
		sg_yaml_error(y->d, y->file, n, "YAML aliases (*name) are not allowed: write the "
		    "value out");
		return;
	}
	if (fy_node_get_anchor(n) != NULL)
		sg_yaml_error(y->d, y->file, n, "YAML anchors (&name) are not allowed: remove the "
		    "anchor");
	if (fy_node_get_tag(n, NULL) != NULL)
		sg_yaml_error(y->d, y->file, n, "YAML tags (!tag) are not allowed: remove the tag, "
		    "and quote the value if it must be a string");
	if (quote_run(y->text, y->len, n))
		sg_yaml_error(y->d, y->file, n, "two or more '' escapes in a row in a "
		    "single-quoted string: use a double-quoted string instead");
	void *it = NULL;
	struct fy_node *item;
	struct fy_node_pair *p;
	while (fy_node_is_sequence(n) && (item = fy_node_sequence_iterate(n, &it)) != NULL)
		check_features(y, item, depth + 1);
	while (fy_node_is_mapping(n) && (p = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *k = fy_node_pair_key(p);
		if (k == NULL || !fy_node_is_scalar(k) || fy_node_is_alias(k))
			sg_yaml_error(y->d, y->file, k ? k : n, "mapping keys must be plain strings");
		else if (is_merge_key(k))
			sg_yaml_error(y->d, y->file, k, "YAML merge keys (<<) are not allowed: write "
			    "the keys out");
		else
			check_features(y, k, depth + 1);
		check_features(y, fy_node_pair_value(p), depth + 1);
	}
}

static struct fy_document *
load_one(const char *file, const char *text, size_t len, struct fy_diag *diag, struct sg_diags *d)
{
	struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET, .diag = diag};
	struct fy_parser *p = fy_parser_create(&cfg);
	char *copy = malloc(len + 1);
	struct fy_document *doc = NULL;
	if (p == NULL || copy == NULL)
		goto oom;
	memcpy(copy, text, len);
	copy[len] = '\0';
	/* The document keeps the input alive through libfyaml's own reference. */
	if (fy_parser_set_malloc_string(p, copy, len) != 0)
		goto oom;
	copy = NULL;
	doc = fy_parse_load_document(p);
	struct fy_document *extra = doc ? fy_parse_load_document(p) : NULL;
	if (extra != NULL)
		sg_yaml_error(d, file, fy_document_root(extra), "only one YAML document per file: "
		    "move the document after \"---\" into its own file");
	fy_document_destroy(extra);
	/* Error tokens belong to the parser: read them before it goes. */
	collect_syntax_errors(diag, file, text, len, d);
	goto out;
oom:
	/* Said here: the caller would take "no document" for an empty file. */
	sg_diags_add(d, file, 0, 0, "out of memory while parsing");
out:
	free(copy);
	fy_parser_destroy(p);
	return doc;
}

struct fy_document *
sg_yaml_parse(const char *file, const char *text, size_t len, struct sg_diags *d)
{
	if (len > YAML_MAX_TEXT) {
		sg_diags_add(d, file, 0, 0,
		    "file is %zu bytes, over the 1 MiB limit: split it into smaller files", len);
		return NULL;
	}
	if (check_chars(file, text, len, d) != 0)
		return NULL;
	struct fy_diag_cfg dcfg;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dcfg);
	size_t before = d->n;
	struct fy_document *doc = NULL;
	if (diag != NULL) {
		fy_diag_set_collect_errors(diag, true);
		doc = load_one(file, text, len, diag, d);
		fy_diag_destroy(diag); /* unref would leak collected errors in 0.7.12 */
	}
	if (doc == NULL && d->n == before && diag != NULL)
		doc = fy_document_create(NULL); /* an empty stream: no document, no error */
	if (doc == NULL && d->n == before)
		sg_diags_add(d, file, 0, 0, "out of memory while parsing");
	struct ycheck y = {file, text, len, d};
	if (doc != NULL && d->n == before)
		check_features(&y, fy_document_root(doc), 0);
	if (doc != NULL && d->n != before) {
		fy_document_destroy(doc);
		doc = NULL;
	}
	return doc;
}

/* ---- scalars ----------------------------------------------------------- */

static bool
is_one_of(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && memcmp(s, *words, len) == 0)
			return true;
	return false;
}

/* YAML 1.2 core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool
is_float_text(const char *s, size_t len)
{
	size_t i = (len > 0 && (s[0] == '+' || s[0] == '-')), digits = 0, exp = 1;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i += 1 + (i + 1 < len && (s[i + 1] == '+' || s[i + 1] == '-'));
		for (exp = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			exp++;
	}
	return digits > 0 && exp > 0 && i == len;
}

/* [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+, converted; SK_STRING when it is none of them. */
static enum scalar_kind
classify_int(const char *s, size_t len, long long *iv)
{
	int base = len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x') ? (s[1] == 'o' ? 8 : 16) :
	    10;
	size_t skip = base != 10 ? 2 : (s[0] == '+' || s[0] == '-');
	static const char digits[] = "0123456789abcdefABCDEF";
	size_t ndig = base == 16 ? 22 : (size_t)base;
	if (skip == len)
		return SK_STRING;
	for (size_t i = skip; i < len; i++)
		if (memchr(digits, s[i], ndig) == NULL)
			return SK_STRING;
	char buf[48];
	if (len >= sizeof(buf))
		return SK_BAD_NUMBER;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	unsigned long long u = base == 10 ? 0 : strtoull(buf + 2, NULL, base);
	*iv = base == 10 ? strtoll(buf, NULL, 10) : (long long)u;
	return errno || u > INT64_MAX ? SK_BAD_NUMBER : SK_INT;
}

/* The core schema's reading of a node; quoted and block scalars are strings. */
static enum scalar_kind
classify(struct fy_node *n, long long *iv, double *dv)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	static const char *const nonfinite[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
	    "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL};
	size_t len = 0;
	if (n == NULL || !fy_node_is_scalar(n) || fy_node_is_alias(n))
		return SK_OTHER;
	const char *s = fy_node_get_scalar(n, &len);
	if (s == NULL || fy_node_get_style(n) != FYNS_PLAIN)
		return SK_STRING;
	if (len == 0 || is_one_of(s, len, nulls))
		return SK_NULL;
	*iv = is_one_of(s, len, trues);
	if (*iv || is_one_of(s, len, falses))
		return SK_BOOL;
	if (is_one_of(s, len, nonfinite))
		return SK_BAD_NUMBER;
	enum scalar_kind k = classify_int(s, len, iv);
	if (k != SK_STRING || !is_float_text(s, len))
		return k;
	char buf[72];
	if (len >= sizeof(buf))
		return SK_BAD_NUMBER;
	memcpy(buf, s, len);
	buf[len] = '\0';
	*dv = strtod(buf, NULL);
	return isfinite(*dv) ? SK_FLOAT : SK_BAD_NUMBER;
}

/* "got ..." text for type errors: the kind, or the scalar itself, made printable. */
static const char *
describe(struct fy_node *n, char *buf, size_t cap)
{
	long long iv;
	double dv;
	enum scalar_kind k = classify(n, &iv, &dv);
	if (k == SK_NULL || k == SK_OTHER)
		return n == NULL ? "nothing" : fy_node_is_mapping(n) ? "a mapping" :
		    fy_node_is_sequence(n) ? "a list" : fy_node_is_alias(n) ? "an alias" : "null";
	size_t len = 0, o = 0, i = 0;
	const char *s = fy_node_get_scalar(n, &len);
	buf[o++] = '"';
	for (; s && i < len && o + 6 < cap; i++)
		buf[o++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
	if (s && i < len)
		o += (size_t)snprintf(buf + o, 4, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* ---- JSON -------------------------------------------------------------- */

static json_t *to_json(const char *file, struct fy_node *n, struct sg_diags *d, int depth);

static json_t *
scalar_to_json(const char *file, struct fy_node *n, struct sg_diags *d)
{
	long long iv = 0;
	double dv = 0;
	size_t len = 0;
	const char *s = NULL;
	json_t *j = NULL;
	switch (classify(n, &iv, &dv)) {
	case SK_NULL:
		return json_null();
	case SK_BOOL:
		return json_boolean(iv);
	case SK_INT:
		return json_integer(iv);
	case SK_FLOAT:
		return json_real(dv);
	case SK_BAD_NUMBER:
		sg_yaml_error(d, file, n, "number cannot be represented in JSON (out of range, "
		    "infinite or NaN): quote it if it is meant as text");
		return NULL;
	case SK_STRING:
	case SK_OTHER:
		s = fy_node_get_scalar(n, &len);
		j = s ? json_stringn(s, len) : NULL;
		break;
	}
	if (j == NULL)
		sg_yaml_error(d, file, n, "cannot convert this value to JSON");
	return j;
}

static json_t *
mapping_to_json(const char *file, struct fy_node *n, struct sg_diags *d, int depth)
{
	json_t *obj = json_object();
	bool ok = obj != NULL;
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
		struct fy_node *k = fy_node_pair_key(p);
		size_t kl = 0;
		const char *ks = classify(k, &(long long){0}, &(double){0}) != SK_OTHER ?
		    fy_node_get_scalar(k, &kl) : NULL;
		if (ks == NULL || memchr(ks, 0, kl) != NULL || is_merge_key(k)) {
			sg_yaml_error(d, file, k ? k : n,
			    "mapping keys must be plain strings (no merge keys or NUL bytes)");
			ok = false;
			continue;
		}
		json_t *v = to_json(file, fy_node_pair_value(p), d, depth + 1);
		char *key = v ? strndup(ks, kl) : NULL;
		/* json_object_set_new releases `v` even when it fails. */
		if (v == NULL || key == NULL || json_object_set_new(obj, key, v) != 0) {
			if (key == NULL)
				json_decref(v);
			ok = false;
		}
		free(key);
	}
	if (!ok)
		json_decref(obj);
	return ok ? obj : NULL;
}

static json_t *
to_json(const char *file, struct fy_node *n, struct sg_diags *d, int depth)
{
	if (n == NULL)
		return json_null();
	if (depth >= YAML_MAX_DEPTH) {
		sg_yaml_error(d, file, n, "nested more than %d levels deep", YAML_MAX_DEPTH);
		return NULL;
	}
	if (fy_node_is_alias(n) || fy_node_get_anchor(n) || fy_node_get_tag(n, NULL)) {
		sg_yaml_error(d, file, n, "YAML anchors, aliases and tags are not allowed here");
		return NULL;
	}
	if (fy_node_is_scalar(n))
		return scalar_to_json(file, n, d);
	if (fy_node_is_mapping(n))
		return mapping_to_json(file, n, d, depth);
	json_t *arr = json_array();
	bool ok = arr != NULL;
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
		json_t *v = to_json(file, item, d, depth + 1);
		if (v == NULL || json_array_append_new(arr, v) != 0)
			ok = false;
	}
	if (!ok)
		json_decref(arr);
	return ok ? arr : NULL;
}

json_t *
sg_yaml_to_json(const char *file, struct fy_node *n, struct sg_diags *d)
{
	size_t before = d->n;
	json_t *j = to_json(file, n, d, 0);
	/* Every refusal in to_json() is reported; a silent one means memory ran out. */
	if (j == NULL && d->n == before)
		sg_yaml_error(d, file, n, "out of memory");
	return j;
}

/* ---- helpers for loaders ----------------------------------------------- */

struct fy_node *
sg_yaml_get(struct fy_node *map, const char *key)
{
	if (map == NULL || !fy_node_is_mapping(map))
		return NULL;
	return fy_node_mapping_lookup_value_by_simple_key(map, key, strlen(key));
}

int
sg_yaml_check_keys(struct sg_diags *d, const char *file, struct fy_node *map, const char *what,
    const char *const *known, size_t n_known)
{
	char got[64];
	if (map == NULL || !fy_node_is_mapping(map)) {
		sg_yaml_error(d, file, map, "%s: expected a mapping, got %s", what,
		    describe(map, got, sizeof(got)));
		return -1;
	}
	int rc = 0;
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
		struct fy_node *k = fy_node_pair_key(p);
		const char *ks = k ? fy_node_get_scalar0(k) : NULL;
		size_t i = 0;
		while (ks && i < n_known && strcmp(ks, known[i]) != 0)
			i++;
		if (ks && i < n_known)
			continue;
		rc = -1;
		const char *hint = ks ? sg_did_you_mean(ks, known, n_known) : NULL;
		if (hint)
			sg_yaml_error(d, file, k, "unknown key %s (did you mean \"%s\"?)",
			    describe(k, got, sizeof(got)), hint);
		else
			sg_yaml_error(d, file, k, "unknown key %s in %s: remove it",
			    describe(k, got, sizeof(got)), what);
	}
	return rc;
}

const char *
sg_yaml_str(struct sg_diags *d, const char *file, struct fy_node *n, const char *what)
{
	long long iv;
	double dv;
	char got[64];
	size_t len = 0;
	enum scalar_kind k = classify(n, &iv, &dv);
	const char *s = k != SK_NULL && k != SK_OTHER ? fy_node_get_scalar0(n) : NULL;
	if (s && fy_node_get_scalar(n, &len) && strlen(s) == len)
		return s;
	sg_yaml_error(d, file, n, "%s: expected a string, got %s", what,
	    s ? "text with a NUL byte" : describe(n, got, sizeof(got)));
	return NULL;
}

int
sg_yaml_bool(struct sg_diags *d, const char *file, struct fy_node *n, const char *what, bool *out)
{
	long long iv = 0;
	double dv;
	char got[64];
	if (classify(n, &iv, &dv) == SK_BOOL) {
		*out = iv != 0;
		return 0;
	}
	sg_yaml_error(d, file, n, "%s: expected a boolean (true or false), got %s", what,
	    describe(n, got, sizeof(got)));
	return -1;
}

int
sg_yaml_int(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
    long long min, long long max, long long *out)
{
	long long iv = 0;
	double dv;
	char got[64];
	if (classify(n, &iv, &dv) == SK_INT && iv >= min && iv <= max) {
		*out = iv;
		return 0;
	}
	sg_yaml_error(d, file, n, "%s: expected an integer from %lld to %lld, got %s", what, min,
	    max, describe(n, got, sizeof(got)));
	return -1;
}

int
sg_yaml_num(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
    double *out)
{
	long long iv = 0;
	double dv = 0;
	char got[64];
	enum scalar_kind k = classify(n, &iv, &dv);
	if (k == SK_INT || k == SK_FLOAT) {
		*out = k == SK_INT ? (double)iv : dv;
		return 0;
	}
	sg_yaml_error(d, file, n, "%s: expected a number, got %s", what,
	    describe(n, got, sizeof(got)));
	return -1;
}

/* Unknown positions (line 0) sort last: they are file-wide remarks. */
static bool
diag_before(const struct sg_diag *a, const struct sg_diag *b)
{
	long la = a->line ? a->line : LONG_MAX, lb = b->line ? b->line : LONG_MAX;
	return la < lb || (la == lb && a->col < b->col);
}

/*
 * Loaders check a document section by section, but people read errors top
 * to bottom.  A merge sort keeps equal positions in the order found.
 */
void
sg_yaml_sort_diags(struct sg_diags *d, size_t from)
{
	size_t n = d->n > from ? d->n - from : 0;
	if (n < 2)
		return;
	struct sg_diag *v = d->v + from;
	struct sg_diag *tmp = malloc(n * sizeof(*tmp));
	if (tmp == NULL)
		return; /* unsorted is still correct */
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n - w; lo += 2 * w) {
			size_t mid = lo + w, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = 0;
			while (i < mid && j < hi)
				tmp[k++] = diag_before(&v[j], &v[i]) ? v[j++] : v[i++];
			while (i < mid)
				tmp[k++] = v[i++];
			while (j < hi)
				tmp[k++] = v[j++];
			memcpy(v + lo, tmp, k * sizeof(*tmp));
		}
	}
	free(tmp);
}
