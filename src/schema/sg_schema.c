/*
 * sg_schema: compiling.  The schema is walked once into a tree of nodes
 * (sg_schema_node.h), so a request pays for lookups and comparisons, never
 * for re-reading the schema; sg_schema_validate.c walks instances against
 * the tree.
 *
 * Thread safety is by construction: once sg_schema_compile() returns, nothing
 * in the tree is written again.  Validation keeps its state (the pointer
 * being built, the errors found) on the caller's stack, the schema's jansson
 * values are only read, and a compiled pattern is matched with per-thread
 * scratch memory.
 */
#include "schema/sg_schema.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_diag.h"
#include "dlp/sg_dlp_scan.h"
#include "schema/sg_pattern.h"
#include "schema/sg_schema_node.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

const struct sg_schema_type_name sg_schema_type_names[] = {
    {"string", "a string", T_STRING},
    {"number", "a number", T_NUMBER},
    {"integer", "an integer", T_INTEGER},
    {"boolean", "a boolean", T_BOOLEAN},
    {"object", "an object", T_OBJECT},
    {"array", "an array", T_ARRAY},
    {"null", "null", T_NULL},
};
#define N_TYPES (sizeof(sg_schema_type_names) / sizeof(sg_schema_type_names[0]))
const size_t sg_schema_n_types = N_TYPES;

struct walk {
	const json_t *c;
	size_t i; /* next index, for arrays */
	void *it; /* next member, for objects */
};

static const json_t *
walk_next(struct walk *w)
{
	if (json_is_array(w->c))
		return w->i < json_array_size(w->c) ? json_array_get(w->c, w->i++) : NULL;
	if (w->it == NULL)
		return NULL;
	const json_t *v = json_object_iter_value(w->it);
	w->it = json_object_iter_next((json_t *)w->c, w->it);
	return v;
}

static int
walk_push(struct walk **st, size_t *sp, size_t *alloc, const json_t *c, struct walk *fixed)
{
	if (*sp == *alloc) {
		size_t n = *alloc * 2;
		struct walk *grown = realloc(*st == fixed ? NULL : *st, n * sizeof(**st));
		if (grown == NULL)
			return -1;
		if (*st == fixed)
			memcpy(grown, fixed, *sp * sizeof(*fixed));
		*st = grown;
		*alloc = n;
	}
	(*st)[(*sp)++] = (struct walk){c, 0, json_object_iter((json_t *)c)};
	return 0;
}

/*
 * Iterative so that a value built in memory (and never through the parser's
 * own depth cap) cannot exhaust the stack.  Fails closed: without memory for
 * the walk it answers `cap`, which callers read as "too deep".  The depths
 * the gateway checks fit the fixed walk, so memory running out never makes
 * a shallow body look deep.
 */
int
sg_json_depth(const json_t *v, int cap)
{
	struct walk fixed[SG_SCHEMA_MAX_DEPTH + 2];
	struct walk *st = fixed;
	size_t sp = 0, alloc = sizeof(fixed) / sizeof(fixed[0]);
	int max = 1;
	const json_t *c = v;

	if (cap < 1)
		cap = 1;
	do {
		if (json_is_object(c) || json_is_array(c)) {
			if (walk_push(&st, &sp, &alloc, c, fixed) != 0) {
				max = cap;
				break;
			}
			if ((int)sp > max)
				max = (int)sp;
		}
		c = NULL;
		while (sp > 0 && (c = walk_next(&st[sp - 1])) == NULL)
			sp--;
	} while (c != NULL && max < cap);
	if (st != fixed)
		free(st);
	return max;
}

bool
sg_schema_is_integral(double d)
{
	/* Every double of magnitude 2^52 or more is whole; this avoids libm. */
	if (d >= 4503599627370496.0 || d <= -4503599627370496.0)
		return true;
	/* NaN is not whole, and must not reach the cast below. */
	return d == d && (double)(int64_t)d == d;
}

/* ---- compile ---------------------------------------------------------- */

struct cctx {
	struct sg_schema_ptr at;
	struct sg_schema_error *err;
	int depth;
};

static int cfail(struct cctx *c, const char *fmt, ...) SG_SCHEMA_PRINTF(2, 3);

static int
cfail(struct cctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (c->err != NULL)
		sg_schema_fill(c->err, &c->at, fmt, ap);
	va_end(ap);
	return -1;
}

static int compile_node(struct cctx *c, const json_t *j, struct node **out);

static int
type_one(struct cctx *c, struct node *n, const json_t *v)
{
	const char *names[N_TYPES];
	const char *s = json_string_value(v);

	if (s == NULL)
		return cfail(c, "type names must be strings");
	for (size_t i = 0; i < N_TYPES; i++) {
		names[i] = sg_schema_type_names[i].name;
		if (strlen(names[i]) == json_string_length(v) && strcmp(s, names[i]) == 0) {
			n->types |= sg_schema_type_names[i].bit;
			return 0;
		}
	}
	const char *hint = sg_did_you_mean(s, names, N_TYPES);
	if (hint != NULL)
		return cfail(c, "unknown type \"%s\" (did you mean \"%s\"?)", s, hint);
	return cfail(c,
	             "unknown type \"%s\"; use string, number, integer, boolean, "
	             "object, array or null",
	             s);
}

static int
kw_type(struct cctx *c, struct node *n, const json_t *v)
{
	if (json_is_string(v))
		return type_one(c, n, v);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return cfail(c, "type must be a type name or a non-empty list of them");
	for (size_t i = 0; i < json_array_size(v); i++) {
		size_t saved = sg_schema_ptr_push_index(&c->at, i);
		int rc = type_one(c, n, json_array_get(v, i));
		sg_schema_ptr_pop(&c->at, saved);
		if (rc != 0)
			return -1;
	}
	return 0;
}

int
sg_schema_prop_cmp(const void *a, const void *b)
{
	const struct prop *x = a, *y = b;
	int r = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
	return r != 0 ? r : (x->len > y->len) - (x->len < y->len);
}

static int
kw_properties(struct cctx *c, struct node *n, const json_t *v)
{
	if (!json_is_object(v))
		return cfail(c, "properties must be an object mapping names to schemas");
	n->props = calloc(json_object_size(v) + 1, sizeof(*n->props));
	if (n->props == NULL)
		return cfail(c, "out of memory");
	for (void *it = json_object_iter((json_t *)v); it != NULL;
	     it = json_object_iter_next((json_t *)v, it)) {
		struct prop *p = &n->props[n->n_props];
		p->name = json_object_iter_key(it);
		p->len = json_object_iter_key_len(it);
		size_t saved = sg_schema_ptr_push(&c->at, p->name, p->len);
		int rc = compile_node(c, json_object_iter_value(it), &p->schema);
		sg_schema_ptr_pop(&c->at, saved);
		if (rc != 0)
			return -1;
		n->n_props++;
	}
	qsort(n->props, n->n_props, sizeof(*n->props), sg_schema_prop_cmp);
	return 0;
}

static int
kw_required(struct cctx *c, struct node *n, const json_t *v)
{
	if (!json_is_array(v))
		return cfail(c, "required must be a list of property names");
	for (size_t i = 0; i < json_array_size(v); i++) {
		if (json_is_string(json_array_get(v, i)))
			continue;
		size_t saved = sg_schema_ptr_push_index(&c->at, i);
		cfail(c, "required must list property names as strings");
		sg_schema_ptr_pop(&c->at, saved);
		return -1;
	}
	n->required = v;
	return 0;
}

/*
 * Appends `sep` and `v` to a message, or "..." once they no longer fit, and
 * then returns -1.  Room for ", ..." and the NUL is always kept back.
 */
static int
append_value(char *buf, size_t *len, const json_t *v, const char *sep)
{
	size_t seplen = strlen(sep), room = SG_SCHEMA_MSG_MAX - *len - sizeof(", ..."), need = 0;

	if (room > seplen)
		need = json_dumpb(v, buf + *len + seplen, room - seplen, DUMP_FLAGS);
	memcpy(buf + *len, sep, seplen);
	if (need == 0 || need > room - seplen) {
		strcpy(buf + *len + seplen, "...");
		return -1;
	}
	*len += seplen + need;
	buf[*len] = '\0';
	return 0;
}

/*
 * enum and const share this; `one` is const's single value.  The values are
 * printed into messages here, once, and printing a deep value would recurse.
 */
static int
kw_values(struct cctx *c, const json_t *v, bool one, char *msg, const char *name)
{
	size_t n = one ? 1 : json_array_size(v);

	if (n == 0) /* also when enum is not an array */
		return cfail(c, "enum must be a non-empty list of the allowed values");
	if (sg_json_depth(v, SG_SCHEMA_MAX_DEPTH + 2) > SG_SCHEMA_MAX_DEPTH + !one)
		return cfail(c, "%s value is nested too deeply (more than %d levels)", name,
		             SG_SCHEMA_MAX_DEPTH);
	size_t len =
	    (size_t)snprintf(msg, SG_SCHEMA_MSG_MAX, one ? "must be exactly " : "must be one of: ");
	for (size_t i = 0; i < n; i++)
		if (append_value(msg, &len, one ? v : json_array_get(v, i), i ? ", " : "") != 0)
			break;
	return 0;
}

static int
kw_count(struct cctx *c, struct node *n, const json_t *v, const char *name, int slot)
{
	double d = json_number_value(v);

	/* 2^62 is exact as a double and far beyond any real document. */
	if (!json_is_number(v) || d < 0 || d > 4611686018427387904.0 || !sg_schema_is_integral(d))
		return cfail(c, "%s must be a whole number, 0 or more", name);
	n->count[slot] = json_is_integer(v) ? (size_t)json_integer_value(v) : (size_t)d;
	return 0;
}

static int
kw_pattern(struct cctx *c, struct node *n, const json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL)
		return cfail(c, "pattern must be a string");
	if (strlen(s) != json_string_length(v))
		return cfail(c, "pattern must not contain NUL characters");
	char why[256];
	if ((n->re = sg_pattern_compile(s, why, sizeof(why))) == NULL)
		return cfail(c, "pattern %s", why);
	n->pattern = s;
	return 0;
}

/* "pii.email": lowercase words of [a-z][a-z0-9_]*, two or more, joined by dots. */
static bool
data_class_valid(const char *s, size_t len)
{
	size_t words = 0;
	bool word_start = true;
	if (len == 0 || len > SG_SCHEMA_DATA_CLASS_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (word_start)
				return false;
			word_start = true;
			continue;
		}
		bool lower = ch >= 'a' && ch <= 'z';
		if (word_start && !lower)
			return false;
		if (!lower && !(ch >= '0' && ch <= '9') && ch != '_')
			return false;
		words += word_start;
		word_start = false;
	}
	return !word_start && words >= 2;
}

static int
kw_data_class(struct cctx *c, struct node *n, const json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL)
		return cfail(c, "x-data-class must be a string naming a data class, such as "
		                "\"pii.email\"");
	if (!data_class_valid(s, json_string_length(v)))
		return cfail(c,
		             "x-data-class \"%.*s\" is not a data class name: write lowercase "
		             "words joined by dots, such as \"pii.email\" or \"financial.card\" "
		             "(at most %d characters)",
		             80, s, SG_SCHEMA_DATA_CLASS_MAX);
	n->data_class = s;
	return 0;
}

enum kw_kind {
	K_TYPE,
	K_PROPERTIES,
	K_REQUIRED,
	K_ADDITIONAL,
	K_ENUM,
	K_CONST,
	K_COUNT,
	K_BOUND,
	K_PATTERN,
	K_ITEMS,
	K_FORMAT,
	K_ANNOTATION,
	K_DATA_CLASS,
};

static const struct keyword {
	const char *name;
	enum kw_kind kind;
	int slot; /* which bound[] or count[] entry */
} keywords[] = {
    {"type", K_TYPE, 0},
    {"properties", K_PROPERTIES, 0},
    {"required", K_REQUIRED, 0},
    {"additionalProperties", K_ADDITIONAL, 0},
    {"enum", K_ENUM, 0},
    {"const", K_CONST, 0},
    {"minLength", K_COUNT, C_MIN_LEN},
    {"maxLength", K_COUNT, C_MAX_LEN},
    {"minItems", K_COUNT, C_MIN_ITEMS},
    {"maxItems", K_COUNT, C_MAX_ITEMS},
    {"minimum", K_BOUND, B_MIN},
    {"maximum", K_BOUND, B_MAX},
    {"exclusiveMinimum", K_BOUND, B_XMIN},
    {"exclusiveMaximum", K_BOUND, B_XMAX},
    {"pattern", K_PATTERN, 0},
    {"items", K_ITEMS, 0},
    {"format", K_FORMAT, 0},
    {"description", K_ANNOTATION, 0},
    {"title", K_ANNOTATION, 0},
    {"examples", K_ANNOTATION, 0},
    {"default", K_ANNOTATION, 0},
    {"$comment", K_ANNOTATION, 0},
    {"x-data-class", K_DATA_CLASS, 0},
};
#define N_KEYWORDS (sizeof(keywords) / sizeof(keywords[0]))

static int
apply_keyword(struct cctx *c, struct node *n, const struct keyword *k, const json_t *v)
{
	switch (k->kind) {
	case K_TYPE:
		return kw_type(c, n, v);
	case K_PROPERTIES:
		return kw_properties(c, n, v);
	case K_REQUIRED:
		return kw_required(c, n, v);
	case K_ADDITIONAL: /* true is the default; leaving NULL skips the walk */
		return json_is_true(v) ? 0 : compile_node(c, v, &n->additional);
	case K_ENUM:
		n->enums = v;
		return kw_values(c, v, false, n->enum_msg, k->name);
	case K_CONST:
		n->konst = v;
		return kw_values(c, v, true, n->const_msg, k->name);
	case K_COUNT:
		return kw_count(c, n, v, k->name, k->slot);
	case K_BOUND:
		if (!json_is_number(v))
			return cfail(c, "%s must be a number", k->name);
		n->bound[k->slot] = json_number_value(v);
		n->has_bound |= 1u << k->slot;
		return 0;
	case K_PATTERN:
		return kw_pattern(c, n, v);
	case K_ITEMS:
		if (json_is_array(v))
			return cfail(
			    c, "items must be one schema; lists of schemas are not supported");
		return compile_node(c, v, &n->items);
	case K_FORMAT:
		if (!json_is_string(v))
			return cfail(c, "format must be a string");
		n->format = sg_schema_format_lookup(json_string_value(v));
		return 0;
	case K_ANNOTATION:
		return 0;
	case K_DATA_CLASS:
		return kw_data_class(c, n, v);
	}
	/* defensive: every kind has a case above */
	return cfail(c, "internal error: keyword \"%s\" has no handler", k->name);
}

static int
compile_keyword(struct cctx *c, struct node *n, const char *key, size_t keylen, const json_t *v)
{
	const char *names[N_KEYWORDS];

	for (size_t i = 0; i < N_KEYWORDS; i++) {
		names[i] = keywords[i].name;
		if (strlen(names[i]) == keylen && memcmp(names[i], key, keylen) == 0)
			return apply_keyword(c, n, &keywords[i], v);
	}
	const char *hint = sg_did_you_mean(key, names, N_KEYWORDS);
	if (hint != NULL)
		return cfail(c, "unknown keyword \"%s\" (did you mean \"%s\"?)", key, hint);
	return cfail(c, "unknown keyword \"%s\"", key);
}

static void
free_node(struct node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n_props; i++)
		free_node(n->props[i].schema);
	free(n->props);
	free_node(n->additional);
	free_node(n->items);
	sg_pattern_free(n->re);
	free(n);
}

/* Recursion is bounded by SG_SCHEMA_MAX_DEPTH, checked before descending. */
static int
compile_node(struct cctx *c, const json_t *j, struct node **out)
{
	if (!json_is_object(j) && !json_is_boolean(j))
		return cfail(c, "a schema must be an object, true or false");
	if (c->depth >= SG_SCHEMA_MAX_DEPTH)
		return cfail(c, "schemas are nested too deeply (more than %d levels)",
		             SG_SCHEMA_MAX_DEPTH);
	struct node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return cfail(c, "out of memory");
	n->count[C_MAX_LEN] = n->count[C_MAX_ITEMS] = SIZE_MAX;
	n->src = j;
	n->never = json_is_false(j);
	c->depth++;
	int rc = 0;
	for (void *it = json_object_iter((json_t *)j); it != NULL && rc == 0;
	     it = json_object_iter_next((json_t *)j, it)) {
		const char *key = json_object_iter_key(it);
		size_t keylen = json_object_iter_key_len(it);
		size_t saved = sg_schema_ptr_push(&c->at, key, keylen);
		rc = compile_keyword(c, n, key, keylen, json_object_iter_value(it));
		sg_schema_ptr_pop(&c->at, saved);
	}
	c->depth--;
	if (rc != 0) {
		free_node(n);
		return -1;
	}
	*out = n;
	return 0;
}

/* ---- x-data-class hints ------------------------------------------------ */

struct hint_walk {
	struct sg_schema *s;
	char *ptr; /* the pointer so far, NUL-terminated */
	size_t len, cap;
	size_t hints_cap;
};

/* Appends "/" and `seg` (RFC 6901-escaped) to the pointer; -1 out of memory. */
static int
hint_push(struct hint_walk *w, const char *seg, size_t n)
{
	size_t need = w->len + 2 + 2 * n;
	if (need > w->cap) {
		size_t cap = need * 2;
		char *grown = realloc(w->ptr, cap);
		if (grown == NULL)
			return -1;
		w->ptr = grown;
		w->cap = cap;
	}
	w->ptr[w->len++] = '/';
	for (size_t i = 0; i < n; i++) {
		if (seg[i] == '~' || seg[i] == '/') {
			w->ptr[w->len++] = '~';
			w->ptr[w->len++] = seg[i] == '~' ? '0' : '1';
		} else {
			w->ptr[w->len++] = seg[i];
		}
	}
	w->ptr[w->len] = '\0';
	return 0;
}

static int
hint_add(struct hint_walk *w, const char *data_class)
{
	struct sg_schema *s = w->s;
	if (s->n_hints == w->hints_cap) {
		size_t cap = w->hints_cap ? w->hints_cap * 2 : 4;
		struct sg_schema_hint *grown = realloc(s->hints, cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		s->hints = grown;
		w->hints_cap = cap;
	}
	char *p = strdup(w->ptr ? w->ptr : "");
	if (p == NULL)
		return -1;
	s->hints[s->n_hints++] = (struct sg_schema_hint){p, data_class};
	return 0;
}

static int collect_hints(struct hint_walk *w, const struct node *n);

static int
collect_under(struct hint_walk *w, const struct node *n, const char *seg, size_t len)
{
	size_t saved = w->len;
	if (n == NULL)
		return 0;
	if (hint_push(w, seg, len) != 0)
		return -1;
	int rc = collect_hints(w, n);
	w->len = saved;
	w->ptr[saved] = '\0';
	return rc;
}

/* Recursion is as deep as the compiled tree, which is capped at SG_SCHEMA_MAX_DEPTH. */
static int
collect_hints(struct hint_walk *w, const struct node *n)
{
	if (n->data_class != NULL && hint_add(w, n->data_class) != 0)
		return -1;
	for (size_t i = 0; i < n->n_props; i++)
		if (collect_under(w, n->props[i].schema, n->props[i].name, n->props[i].len) != 0)
			return -1;
	if (collect_under(w, n->additional, "*", 1) != 0)
		return -1;
	return collect_under(w, n->items, "*", 1);
}

static void
free_hints(struct sg_schema *s)
{
	for (size_t i = 0; i < s->n_hints; i++)
		free(s->hints[i].pointer);
	free(s->hints);
}

size_t
sg_schema_data_classes(const struct sg_schema *s, struct sg_dlp_hint *out, size_t cap)
{
	for (size_t i = 0; i < s->n_hints && i < cap; i++)
		out[i] = (struct sg_dlp_hint){s->hints[i].pointer, s->hints[i].data_class};
	return s->n_hints;
}

struct sg_schema *
sg_schema_compile(const json_t *schema, struct sg_schema_error *err)
{
	struct cctx c = {.err = err};
	struct sg_schema *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		cfail(&c, "out of memory");
		return NULL;
	}
	if (compile_node(&c, schema, &s->root) != 0) {
		free(s);
		return NULL;
	}
	struct hint_walk w = {.s = s};
	int rc = collect_hints(&w, s->root);
	free(w.ptr);
	if (rc != 0) {
		cfail(&c, "out of memory");
		free_hints(s);
		free_node(s->root);
		free(s);
		return NULL;
	}
	/* The reference count is atomic in jansson, so this write is safe. */
	s->doc = json_incref((json_t *)schema);
	return s;
}

void
sg_schema_free(struct sg_schema *s)
{
	if (s == NULL)
		return;
	free_hints(s);
	free_node(s->root);
	json_decref(s->doc);
	free(s);
}

const json_t *
sg_schema_json(const struct sg_schema *s)
{
	return s->doc;
}

/* The compiled node made from `src`; the tree's depth is capped at compile time. */
const struct node *
sg_schema_find_node(const struct node *n, const json_t *src)
{
	if (n == NULL || n->src == src)
		return n;
	for (size_t i = 0; i < n->n_props; i++) {
		const struct node *f = sg_schema_find_node(n->props[i].schema, src);
		if (f)
			return f;
	}
	const struct node *f = sg_schema_find_node(n->additional, src);
	return f ? f : sg_schema_find_node(n->items, src);
}
