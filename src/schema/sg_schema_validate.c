/*
 * sg_schema_validate: the one validator.  It walks an instance in an sg_json
 * document (the request path builds no jansson tree) along the compiled
 * tree.  A scalar without a document (the simulator's draws) is checked by
 * the same code: an instance is a scalar's value, or a container to be
 * iterated.  jansson instances (cold paths) are written out and parsed.
 */
#include <math.h>
#include <stdlib.h>

#include "schema/sg_pattern.h"
#include "schema/sg_schema_node.h"

/* An instance: the value of a scalar, or an array or object of a live document. */
struct inst {
	struct sg_schema_scalar sc; /* sc.type is the instance's type, containers included */
	struct sg_json_val v;       /* arrays and objects only */
};

static struct inst
inst_of(struct sg_json_val v)
{
	struct inst x = {.v = v};

	switch ((x.sc.type = sg_json_type(v))) {
	case SG_JSON_BOOL:
		x.sc.b = sg_json_bool(v);
		break;
	case SG_JSON_INT:
		x.sc.i = sg_json_int(v);
		break;
	case SG_JSON_UINT:
		x.sc.u = sg_json_uint(v);
		break;
	case SG_JSON_DOUBLE:
		x.sc.d = sg_json_double(v);
		break;
	case SG_JSON_STRING:
		x.sc.s = sg_json_string(v, &x.sc.len);
		break;
	default:
		break;
	}
	return x;
}

/* Any number as a double, as bounds are compared (an integer past 2^53 may round). */
static double
number_of(const struct sg_schema_scalar *sc)
{
	return sc->type == SG_JSON_INT    ? (double)sc->i
	       : sc->type == SG_JSON_UINT ? (double)sc->u
	                                  : sc->d;
}

/* Shortest text that reads back as `d`: 100 prints as "100", not "1e+02". */
static const char *
fmt_num(double d, char *buf, size_t n)
{
	snprintf(buf, n, "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, n, "%.17g", d);
	return buf;
}

struct vctx {
	struct sg_schema_ptr at;
	struct sg_schema_error *errs;
	size_t max, n;
	bool failed;
};

static bool
full(const struct vctx *v)
{
	return v->failed && v->n >= v->max;
}

static void report(struct vctx *v, const char *fmt, ...) SG_SCHEMA_PRINTF(2, 3);

static void
report(struct vctx *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (v->n < v->max)
		sg_schema_fill(&v->errs[v->n++], &v->at, fmt, ap);
	va_end(ap);
	v->failed = true;
}

/* A real with no fraction is also an integer, as JSON Schema counts 3.0. */
static unsigned
types_of(const struct sg_schema_scalar *sc)
{
	switch (sc->type) {
	case SG_JSON_NULL:
		return T_NULL;
	case SG_JSON_BOOL:
		return T_BOOLEAN;
	case SG_JSON_INT:
	case SG_JSON_UINT:
		return T_NUMBER | T_INTEGER;
	case SG_JSON_DOUBLE:
		return T_NUMBER | (sg_schema_is_integral(sc->d) ? T_INTEGER : 0u);
	case SG_JSON_STRING:
		return T_STRING;
	case SG_JSON_ARRAY:
		return T_ARRAY;
	case SG_JSON_OBJECT:
		return T_OBJECT;
	}
	return 0; /* defensive: every type has a case above */
}

/* "must be a string, not a number"; "must be a string, a number or null, not ..." */
static bool
check_type(struct vctx *v, const struct node *n, const struct inst *x)
{
	unsigned have = types_of(&x->sc), want = n->types;
	char list[128] = "";
	size_t len = 0;
	const char *got = NULL;

	if (want == 0 || (want & have))
		return true;
	if (want & T_NUMBER)
		want &= ~(unsigned)T_INTEGER; /* "a number" already says it */
	int left = __builtin_popcount(want);
	for (size_t i = 0; i < sg_schema_n_types; i++) {
		const struct sg_schema_type_name *t = &sg_schema_type_names[i];
		if (got == NULL && (have & t->bit))
			got = t->phrase;
		if (!(want & t->bit))
			continue;
		left--;
		const char *sep = left > 1 ? ", " : left == 1 ? " or " : "";
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", t->phrase, sep);
	}
	if ((n->types & T_INTEGER) && (have & T_NUMBER))
		got = "a number with a fractional part";
	report(v, "must be %s, not %s", list, got);
	return false;
}

static void
check_string(struct vctx *v, const struct node *n, const struct sg_schema_scalar *sc)
{
	const char *s = sc->s;
	size_t bytes = sc->len, len = 0;
	size_t lo = n->count[C_MIN_LEN], hi = n->count[C_MAX_LEN];
	char msg[SG_SCHEMA_MSG_MAX];

	/*
	 * Strings are valid UTF-8, so a character is 1 to 4 bytes: only a string
	 * whose byte length leaves its character count in doubt is counted (a
	 * 1 KiB text field far from its bounds costs nothing here).
	 */
	if (bytes <= hi && (bytes + 3) / 4 >= lo)
		len = lo;
	else
		for (size_t i = 0; i < bytes; i++)
			len += ((unsigned char)s[i] & 0xC0) != 0x80;
	if (len < lo)
		report(v, "must be at least %zu character%s long", lo, lo == 1 ? "" : "s");
	if (len > hi)
		report(v, "must be at most %zu character%s long", hi, hi == 1 ? "" : "s");
	if (n->re && !sg_pattern_match(n->re, s, bytes))
		report(v, "must match the pattern %s", n->pattern);
	if (n->format != SG_FORMAT_NONE &&
	    !sg_schema_format_check(n->format, s, bytes, msg, sizeof(msg)))
		report(v, "%s", msg);
}

static void
check_number(struct vctx *v, const struct node *n, const struct sg_schema_scalar *sc)
{
	static const char *const what[N_BOUNDS] = {"at least", "at most", "greater than",
	                                           "less than"};
	double x = number_of(sc);
	char num[32];

	for (int i = 0; i < N_BOUNDS; i++) {
		double b = n->bound[i];
		if (!(n->has_bound & (1u << i)))
			continue;
		if (i == B_MIN ? x < b : i == B_MAX ? x > b : i == B_XMIN ? x <= b : x >= b)
			report(v, "must be %s %s", what[i], fmt_num(b, num, sizeof(num)));
	}
}

static void validate_node(struct vctx *v, const struct node *n, const struct inst *x);

static const struct node *
find_prop(const struct node *n, const char *key, size_t len)
{
	struct prop want = {.name = key, .len = len};
	const struct prop *p = n->n_props == 0 ? NULL
	                                       : bsearch(&want, n->props, n->n_props,
	                                                 sizeof(*n->props), sg_schema_prop_cmp);
	return p ? p->schema : NULL;
}

static void
check_required(struct vctx *v, const struct node *n, struct sg_json_val obj)
{
	struct sg_json_val found;

	for (size_t i = 0; i < json_array_size(n->required) && !full(v); i++) {
		const json_t *name = json_array_get(n->required, i);
		size_t len = json_string_length(name);
		if (sg_json_get(obj, json_string_value(name), len, &found))
			continue;
		size_t saved = sg_schema_ptr_push(&v->at, json_string_value(name), len);
		report(v, "is required");
		sg_schema_ptr_pop(&v->at, saved);
	}
}

static void
check_object(struct vctx *v, const struct node *n, struct sg_json_val obj)
{
	struct sg_json_iter it;
	struct sg_json_val member;
	const char *key;
	size_t len;

	check_required(v, n, obj);
	if (n->n_props == 0 && n->additional == NULL)
		return;
	sg_json_iter_init(&it, obj);
	while (!full(v) && sg_json_iter_next(&it, &key, &len, &member)) {
		const struct node *child = find_prop(n, key, len);
		bool extra = child == NULL;
		if (extra && (child = n->additional) == NULL)
			continue;
		size_t saved = sg_schema_ptr_push(&v->at, key, len);
		if (extra && child->never) {
			report(v, "is not allowed here (no additional properties)");
		} else {
			struct inst x = inst_of(member);
			validate_node(v, child, &x);
		}
		sg_schema_ptr_pop(&v->at, saved);
	}
}

static void
check_array(struct vctx *v, const struct node *n, struct sg_json_val arr)
{
	size_t len = sg_json_size(arr);
	size_t lo = n->count[C_MIN_ITEMS], hi = n->count[C_MAX_ITEMS];
	struct sg_json_iter it;
	struct sg_json_val item;

	if (len < lo)
		report(v, "must have at least %zu item%s", lo, lo == 1 ? "" : "s");
	if (len > hi)
		report(v, "must have at most %zu item%s", hi, hi == 1 ? "" : "s");
	if (n->items == NULL)
		return;
	sg_json_iter_init(&it, arr);
	for (size_t i = 0; !full(v) && sg_json_iter_next(&it, NULL, NULL, &item); i++) {
		size_t saved = sg_schema_ptr_push_index(&v->at, i);
		struct inst x = inst_of(item);
		validate_node(v, n->items, &x);
		sg_schema_ptr_pop(&v->at, saved);
	}
}

/*
 * Whether an instance equals a schema value (enum, const), with jansson's
 * json_equal() semantics, which this validator has always had: an integer
 * and a real never match, even 1 and 1.0, since jansson keeps them as
 * different types; integers compare exactly, reals as doubles (so 0.0
 * equals -0.0); object members match whatever their order.  An integer
 * above INT64_MAX matches nothing, as jansson cannot hold one.  Recursion
 * follows the schema value, whose depth is capped when it is compiled.
 */
static bool
equal(const json_t *want, const struct inst *x)
{
	const struct sg_schema_scalar *sc = &x->sc;

	switch (json_typeof(want)) {
	case JSON_NULL:
		return sc->type == SG_JSON_NULL;
	case JSON_TRUE:
	case JSON_FALSE:
		return sc->type == SG_JSON_BOOL && sc->b == json_is_true(want);
	case JSON_INTEGER:
		return sc->type == SG_JSON_INT && sc->i == json_integer_value(want);
	case JSON_REAL:
		return sc->type == SG_JSON_DOUBLE && sc->d == json_real_value(want);
	case JSON_STRING:
		return sc->type == SG_JSON_STRING && sc->len == json_string_length(want) &&
		       memcmp(sc->s, json_string_value(want), sc->len) == 0;
	case JSON_ARRAY:
	case JSON_OBJECT:
		break;
	}
	bool is_array = json_is_array(want);
	if (sc->type != (is_array ? SG_JSON_ARRAY : SG_JSON_OBJECT) ||
	    sg_json_size(x->v) != (is_array ? json_array_size(want) : json_object_size(want)))
		return false;
	struct sg_json_iter it;
	struct sg_json_val child;
	const char *key;
	size_t len;
	sg_json_iter_init(&it, x->v);
	/* Keys are unique on both sides, so equal sizes and every key found is equality. */
	for (size_t i = 0; sg_json_iter_next(&it, &key, &len, &child); i++) {
		const json_t *w =
		    is_array ? json_array_get(want, i) : json_object_getn(want, key, len);
		struct inst c = inst_of(child);
		if (w == NULL || !equal(w, &c))
			return false;
	}
	return true;
}

static bool
in_enum(const json_t *enums, const struct inst *x)
{
	for (size_t i = 0; i < json_array_size(enums); i++)
		if (equal(json_array_get(enums, i), x))
			return true;
	return false;
}

/*
 * Recursion follows the compiled tree, so it is bounded by the schema's
 * depth cap whatever the instance looks like.  A wrong type stops here:
 * the keywords below would only repeat the same complaint.
 */
static void
validate_node(struct vctx *v, const struct node *n, const struct inst *x)
{
	if (full(v))
		return;
	if (n->never) {
		report(v, "is not allowed here");
		return;
	}
	if (!check_type(v, n, x))
		return;
	if (n->enums != NULL && !in_enum(n->enums, x))
		report(v, "%s", n->enum_msg);
	if (n->konst != NULL && !equal(n->konst, x))
		report(v, "%s", n->const_msg);
	switch (x->sc.type) {
	case SG_JSON_STRING:
		check_string(v, n, &x->sc);
		break;
	case SG_JSON_INT:
	case SG_JSON_UINT:
	case SG_JSON_DOUBLE:
		check_number(v, n, &x->sc);
		break;
	case SG_JSON_OBJECT:
		check_object(v, n, x->v);
		break;
	case SG_JSON_ARRAY:
		check_array(v, n, x->v);
		break;
	default:
		break;
	}
}

static struct vctx
start(struct sg_schema_error *errs, size_t max_errs)
{
	struct vctx v = {.errs = errs, .max = errs ? max_errs : 0};
	/* A yes/no check (the simulator's) needs no pointers. */
	v.at.off = v.max == 0;
	return v;
}

static int
finish(const struct vctx *v, size_t *n_errs)
{
	if (n_errs != NULL)
		*n_errs = v->n;
	return v->failed ? -1 : 0;
}

int
sg_schema_validate(const struct sg_schema *s, struct sg_json_val instance,
                   struct sg_schema_error *errs, size_t max_errs, size_t *n_errs)
{
	struct vctx v = start(errs, max_errs);
	struct inst x = inst_of(instance);
	validate_node(&v, s->root, &x);
	return finish(&v, n_errs);
}

int
sg_schema_validate_sub(const struct sg_schema *s, const json_t *sub, struct sg_json_val instance)
{
	const struct node *n = sg_schema_find_node(s->root, sub);
	if (n == NULL)
		return 1;
	struct vctx v = start(NULL, 0);
	struct inst x = inst_of(instance);
	validate_node(&v, n, &x);
	return finish(&v, NULL);
}

/* What a JSON text can hold: a scalar type, and a finite number. */
static bool
is_json_scalar(const struct sg_schema_scalar *sc)
{
	switch (sc->type) {
	case SG_JSON_NULL:
	case SG_JSON_BOOL:
	case SG_JSON_INT:
	case SG_JSON_UINT:
		return true;
	case SG_JSON_DOUBLE:
		return isfinite(sc->d);
	case SG_JSON_STRING:
		return sc->s != NULL;
	default:
		return false;
	}
}

int
sg_schema_accepts_scalar(const struct sg_schema *s, const json_t *sub,
                         const struct sg_schema_scalar *v)
{
	const struct node *n = sg_schema_find_node(s->root, sub);
	if (n == NULL)
		return 1;
	if (!is_json_scalar(v))
		return -1;
	struct vctx c = start(NULL, 0);
	struct inst x = {.sc = *v};
	validate_node(&c, n, &x);
	return finish(&c, NULL);
}

/* ---- jansson instances (cold) ----------------------------------------- */

/*
 * The first string or key in `j` with a NUL in it, which no body can carry
 * (sg_json_parse refuses "\u0000"): the pointer is left at the string, or at
 * the object for a key, since a NUL cannot be written into a pointer.
 * Recursion is bounded: the caller has checked the depth.
 */
static const char *
find_nul(const json_t *j, struct sg_schema_ptr *at)
{
	const char *why = NULL;

	if (json_is_string(j) && memchr(json_string_value(j), '\0', json_string_length(j)))
		return "contains \\u0000, which the gateway does not accept; remove it";
	for (size_t i = 0; json_is_array(j) && why == NULL && i < json_array_size(j); i++) {
		size_t saved = sg_schema_ptr_push_index(at, i);
		if ((why = find_nul(json_array_get(j, i), at)) == NULL)
			sg_schema_ptr_pop(at, saved);
	}
	for (void *it = json_object_iter((json_t *)j); it != NULL && why == NULL;
	     it = json_object_iter_next((json_t *)j, it)) {
		const char *key = json_object_iter_key(it);
		size_t len = json_object_iter_key_len(it);
		if (memchr(key, '\0', len))
			return "has a key that contains \\u0000, which the gateway does not "
			       "accept; "
			       "remove it";
		size_t saved = sg_schema_ptr_push(at, key, len);
		if ((why = find_nul(json_object_iter_value(it), at)) == NULL)
			sg_schema_ptr_pop(at, saved);
	}
	return why;
}

/*
 * Written with jansson and read back with sg_json_parse, so that jansson
 * values meet exactly the validator (and the refusals) that bodies meet.
 * jansson writes reals with a '.' or an exponent and 17 digits, so each
 * number comes back with its type and value.
 */
static void
validate_jansson(struct vctx *v, const struct node *n, const json_t *instance)
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	struct sg_json_doc doc;
	struct sg_json_error err;

	/* Checked first: dumping a deep value recurses, and this walk does not. */
	if (sg_json_depth(instance, SG_SCHEMA_MAX_DEPTH + 1) > SG_SCHEMA_MAX_DEPTH) {
		report(v, "is nested too deeply (more than %d levels)", SG_SCHEMA_MAX_DEPTH);
		return;
	}
	const char *why = find_nul(instance, &v->at);
	if (why != NULL) {
		report(v, "%s", why);
		return;
	}
	/* Small values (the simulator's candidates) take no allocation that could fail. */
	char small[2048];
	size_t len = json_dumpb(instance, small, sizeof(small), flags);
	char *text = len <= sizeof(small) ? small : malloc(len);
	if (len == 0 || text == NULL ||
	    (text != small && json_dumpb(instance, text, len, flags) != len)) {
		if (text != small)
			free(text);
		report(v, "could not be checked (out of memory)");
		return;
	}
	enum sg_json_rc rc = sg_json_parse(text, len, SG_SCHEMA_MAX_DEPTH, &doc, &err);
	if (text != small)
		free(text);
	if (rc == SG_JSON_OK) {
		struct inst x = inst_of(doc.root);
		validate_node(v, n, &x);
	} else if (rc == SG_JSON_NO_MEMORY) {
		report(v, "could not be checked (out of memory)");
	} else { /* defensive: jansson holds nothing else that the parser refuses */
		report(v, "could not be checked: %s", err.message);
	}
}

int
sg_schema_validate_jansson(const struct sg_schema *s, const json_t *instance,
                           struct sg_schema_error *errs, size_t max_errs, size_t *n_errs)
{
	struct vctx v = start(errs, max_errs);
	validate_jansson(&v, s->root, instance);
	return finish(&v, n_errs);
}

int
sg_schema_validate_sub_jansson(const struct sg_schema *s, const json_t *sub, const json_t *instance)
{
	const struct node *n = sg_schema_find_node(s->root, sub);
	if (n == NULL)
		return 1;
	struct vctx v = start(NULL, 0);
	validate_jansson(&v, n, instance);
	return finish(&v, NULL);
}
