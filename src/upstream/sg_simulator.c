/*
 * sg_simulator: synthetic output for sandbox calls.
 *
 * Every draw comes from xoshiro256**, seeded by a hash of (seed, salt,
 * canonical input) (sg_sim_seed.c), so a call always gets the same answer
 * and a different call gets a different one.  The shape comes from the
 * definition's examples when it has them, otherwise from the output schema,
 * with realistic text for common property names (sg_sim_text.c).  Output
 * properties named like input properties echo the input.  Whatever is
 * written is parsed back and validated against the schema before it
 * leaves: the answer is none, never a wrong output.
 *
 * The output is written as it is drawn, straight into the caller's buffer:
 * no tree is built.  Where a value has fallbacks (an example that may not
 * fit, then the schema; one listed type, then the next; items, then an
 * empty list) each way is written in a slot (sg_jw_slot) by a writer of its
 * own and cut away again when it proves impossible, so a failed way costs
 * only the bytes it wrote.  Draws a failed way took stay taken, as they did
 * when the output was a jansson tree.
 *
 * Apply time calls this once (with no input) to prove that sandbox calls
 * cannot fail later, so whether generation succeeds must not depend on the
 * draws: a choice among candidates takes the first that the schema accepts,
 * and an array whose items cannot be made is left empty when that is
 * allowed, rather than only when the draw happened to say zero items.
 */
#include "upstream/sg_simulator.h"

#include <stdlib.h>
#include <string.h>

#include "core/sg_json_alloc.h"
#include "core/sg_rng.h"
#include "core/sg_slab.h"
#include "upstream/sg_sim_scalar.h"
#include "upstream/sg_sim_seed.h"
#include "upstream/sg_sim_text.h"

/* Generated values per call; a schema that needs more is refused. */
#define SIM_MAX_NODES 10000
/* Longest id that is re-rolled; a longer one is kept as the example has it. */
#define SIM_MAX_REROLL 256

struct gen {
	struct sg_rng rng;
	size_t nodes;
	bool vary;   /* re-roll ids taken from examples */
	bool varied; /* an id was re-rolled in this attempt */
	/*
	 * Memory ran out somewhere: a way that failed for it must not look
	 * impossible and hand over to the next, or the answer would depend on
	 * memory.  No answer then.
	 */
	bool broken;
	/*
	 * The call's input, parsed into `doc` when the call starts.  A check of
	 * a container from the definition (sg_schema_validate_sub_jansson)
	 * parses with the same per-thread parser and so ends that document;
	 * the echo then parses the input again.
	 */
	const char *input;
	size_t input_len;
	struct sg_json_doc doc;
	bool has_input; /* the input is an object */
	const char *salt;
	const struct sg_schema *root;
	const json_t *checked; /* examples known to match root: picked without a check */
	struct sg_jbuf *out;
};

static void
reseed(struct gen *g, uint64_t h)
{
	sg_rng_seed(&g->rng, h);
	g->nodes = 0;
	g->varied = false;
}

static uint64_t
below(struct gen *g, uint64_t n)
{
	return sg_sim_below(&g->rng, n);
}

/* ---- candidate checks --------------------------------------------------- */

/*
 * Only a schema of `true` that the compiler had no need to keep (an absent
 * or `true` additionalProperties, an absent items) is not a node of the
 * output schema; it takes anything the depth cap allows.
 */
static bool
anything(const json_t *node)
{
	return json_is_true(node);
}

/* Whether the sub-schema `node` accepts the input's value `v`. */
static bool
accepts_input(const struct gen *g, const json_t *node, struct sg_json_val v)
{
	int rc = sg_schema_validate_sub(g->root, node, v);
	/* The input was parsed within the cap, so its members fit one level below the output. */
	return rc == 0 || (rc == 1 && anything(node));
}

static bool
scalar_of(const json_t *v, struct sg_schema_scalar *sc)
{
	memset(sc, 0, sizeof(*sc));
	switch (json_typeof(v)) {
	case JSON_STRING:
		sc->type = SG_JSON_STRING;
		sc->s = json_string_value(v);
		sc->len = json_string_length(v);
		return true;
	case JSON_INTEGER:
		sc->type = SG_JSON_INT;
		sc->i = json_integer_value(v);
		return true;
	case JSON_REAL:
		sc->type = SG_JSON_DOUBLE;
		sc->d = json_real_value(v);
		return true;
	case JSON_TRUE:
	case JSON_FALSE:
		sc->type = SG_JSON_BOOL;
		sc->b = json_is_true(v);
		return true;
	case JSON_NULL:
		sc->type = SG_JSON_NULL;
		return true;
	default:
		return false;
	}
}

/* Whether `node` accepts `v`, a value of the definition (example, enum or const member). */
static bool
accepts_json(const struct gen *g, const json_t *node, const json_t *v)
{
	/* No body can carry a NUL, so no output may (the jansson entry point says the same). */
	if (json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return false;
	struct sg_schema_scalar sc;
	int rc = scalar_of(v, &sc) ? sg_schema_accepts_scalar(g->root, node, &sc)
	                           : sg_schema_validate_sub_jansson(g->root, node, v);
	return rc == 0 || (rc == 1 && anything(node) &&
	                   sg_json_depth(v, SG_SCHEMA_MAX_DEPTH + 1) <= SG_SCHEMA_MAX_DEPTH);
}

/* One value of `list` that `node` accepts, from a drawn start; NULL if none. */
static const json_t *
pick(struct gen *g, const json_t *node, const json_t *list)
{
	size_t n = json_array_size(list), start = (size_t)below(g, n);

	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(list, (start + i) % n);
		if (accepts_json(g, node, v))
			return v;
	}
	return NULL;
}

/* ---- writing -------------------------------------------------------------- */

/*
 * A value of the definition as it is.  `depth` is where it lands in the
 * output; past the cap the output could not be valid, and the recursion
 * stops there.
 */
static int
write_json(struct sg_jw *w, const json_t *v, int depth)
{
	const char *key;
	size_t klen, i;
	json_t *m;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth > SG_SCHEMA_MAX_DEPTH)
			return -1;
		sg_jw_object(w);
		json_object_keylen_foreach((json_t *)v, key, klen, m)
		{
			sg_jw_key(w, key, klen);
			if (write_json(w, m, depth + 1) != 0)
				return -1;
		}
		sg_jw_object_end(w);
		return 0;
	case JSON_ARRAY:
		if (depth > SG_SCHEMA_MAX_DEPTH)
			return -1;
		sg_jw_array(w);
		json_array_foreach((json_t *)v, i, m)
		{
			if (write_json(w, m, depth + 1) != 0)
				return -1;
		}
		sg_jw_array_end(w);
		return 0;
	case JSON_STRING:
		sg_jw_string(w, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		sg_jw_int(w, json_integer_value(v));
		return 0;
	case JSON_REAL:
		sg_jw_double(w, json_real_value(v));
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		sg_jw_bool(w, json_is_true(v));
		return 0;
	case JSON_NULL:
		sg_jw_null(w);
		return 0;
	}
	return -1; /* defensive: jansson has no other type */
}

/* A value with fallbacks: see the top of the file. */
struct slot {
	struct sg_jw w;
	size_t mark;
};

static void
slot_open(struct gen *g, struct sg_jw *parent, struct slot *s)
{
	sg_jw_slot(parent);
	s->mark = g->out->len;
}

/* The writer for the next way, at the start of the slot. */
static struct sg_jw *
slot_try(struct gen *g, struct slot *s)
{
	g->out->len = s->mark;
	sg_jw_begin(&s->w, g->out);
	return &s->w;
}

/* Ends the way just written, which returned `rc`: true when it stands. */
static bool
slot_done(struct gen *g, struct slot *s, int rc)
{
	bool lost = sg_jw_failed(&s->w);
	bool whole = sg_jw_end(&s->w) == 0;

	if (rc == 0 && whole)
		return true;
	/* An incomplete value said to be whole is a bug here: fail closed. */
	if (lost || rc == 0)
		g->broken = true;
	g->out->len = s->mark;
	return false;
}

/* ---- generation ------------------------------------------------------- */

static int gen_node(struct gen *g, struct sg_jw *w, const json_t *node, const char *name,
                    int depth);
static int complete(struct gen *g, struct sg_jw *w, const json_t *v, const json_t *node,
                    const struct sg_sim_kw *k, const char *name, int depth);

static int read_input(struct gen *g);

/* The input's value for a root property, when the property's schema takes it. */
static bool
echo_value(struct gen *g, const char *key, size_t klen, const json_t *sub, struct sg_json_val *v)
{
	if (!g->has_input)
		return false;
	/* It parsed before, so only memory can fail it now. */
	if (!sg_json_doc_live(&g->doc) && read_input(g) != 0) {
		g->broken = true;
		return false;
	}
	return sg_json_get(g->doc.root, key, klen, v) && accepts_input(g, sub, *v);
}

/*
 * Writes `key` and its value: the echo, else the example's value
 * (`have`, completed), else a new one.
 */
static int
fill_one(struct gen *g, struct sg_jw *w, const char *key, size_t klen, const json_t *sub,
         const json_t *have, int depth)
{
	struct sg_json_val in;

	sg_jw_key(w, key, klen);
	if (depth == 1 && echo_value(g, key, klen, sub, &in)) {
		sg_jw_value(w, in);
		return 0;
	}
	if (have != NULL)
		return complete(g, w, have, sub, NULL, key, depth + 1);
	return gen_node(g, w, sub, key, depth + 1);
}

/* Whether `req[i]` names a property that an earlier entry named too. */
static bool
required_before(const json_t *req, size_t i, const char *key, size_t klen)
{
	for (size_t j = 0; j < i; j++) {
		const json_t *e = json_array_get(req, j);
		if (json_string_length(e) == klen && memcmp(json_string_value(e), key, klen) == 0)
			return true;
	}
	return false;
}

/*
 * A walk over an object's keys that answers "is `key` one of yours?".
 * Examples and required lists are mostly written in the schema's order, so
 * the key after the last one found is compared before a hash lookup: most
 * objects are filled without any.
 */
struct cursor {
	const json_t *obj;
	void *next;
	size_t in_order; /* keys found in order from the first: the walk's prefix */
};

static void
cursor_start(struct cursor *c, const json_t *obj)
{
	c->obj = obj;
	c->next = json_object_iter((json_t *)obj);
	c->in_order = 0;
}

static const json_t *
cursor_find(struct cursor *c, const char *key, size_t klen)
{
	void *it = c->next;

	if (it != NULL && json_object_iter_key_len(it) == klen &&
	    memcmp(json_object_iter_key(it), key, klen) == 0) {
		c->next = json_object_iter_next((json_t *)c->obj, it);
		c->in_order++;
		return json_object_iter_value(it);
	}
	c->next = NULL; /* out of order: lookups from here on */
	return json_object_getn(c->obj, key, klen);
}

/* The example's members and then the declared properties it lacks. */
static int
fill_declared(struct gen *g, struct sg_jw *w, const json_t *ex, const json_t *props, int depth)
{
	struct cursor c;
	const char *key;
	size_t klen, n = 0;
	json_t *v;

	cursor_start(&c, props);
	json_object_keylen_foreach((json_t *)ex, key, klen, v)
	{
		const json_t *sub = cursor_find(&c, key, klen);
		if (sub != NULL && fill_one(g, w, key, klen, sub, v, depth) != 0)
			return -1;
		if (sub == NULL) { /* not declared: kept as the example has it */
			sg_jw_key(w, key, klen);
			if (write_json(w, v, depth + 1) != 0)
				return -1;
		}
	}
	/* The properties the example matched in order are there already. */
	for (void *it = json_object_iter((json_t *)props); it != NULL;
	     it = json_object_iter_next((json_t *)props, it)) {
		if (n++ < c.in_order)
			continue;
		key = json_object_iter_key(it);
		klen = json_object_iter_key_len(it);
		if (json_object_getn(ex, key, klen) == NULL &&
		    fill_one(g, w, key, klen, json_object_iter_value(it), NULL, depth) != 0)
			return -1;
	}
	return 0;
}

/*
 * An object: the example's members (`ex`, may be NULL) in its order, then
 * every declared property it lacks, optional or not, so that outputs look
 * complete; then each required name left to additionalProperties (absent:
 * anything).
 */
static int
fill_object(struct gen *g, struct sg_jw *w, const json_t *ex, const struct sg_sim_kw *k, int depth)
{
	const json_t *props = k->properties, *req = k->required, *name;
	const json_t *extra = k->additional ? k->additional : json_true();
	struct cursor c;
	size_t i;

	if (depth > SG_SCHEMA_MAX_DEPTH)
		return -1;
	sg_jw_object(w);
	if (fill_declared(g, w, ex, props, depth) != 0)
		return -1;
	cursor_start(&c, props);
	json_array_foreach(req, i, name)
	{
		const char *key = json_string_value(name);
		size_t klen = json_string_length(name);
		if (key == NULL || cursor_find(&c, key, klen) != NULL ||
		    json_object_getn(ex, key, klen) != NULL || required_before(req, i, key, klen))
			continue;
		if (fill_one(g, w, key, klen, extra, NULL, depth) != 0)
			return -1;
	}
	sg_jw_object_end(w);
	return 0;
}

static int
write_items(struct gen *g, struct sg_jw *w, const json_t *items, uint64_t n, const char *name,
            int depth)
{
	sg_jw_array(w);
	for (uint64_t i = 0; i < n; i++)
		if (gen_node(g, w, items ? items : json_true(), name, depth + 1) != 0)
			return -1;
	sg_jw_array_end(w);
	return 0;
}

/* Items that cannot be made: a valid empty list beats no answer. */
static __attribute__((noinline)) int
items_or_empty(struct gen *g, struct sg_jw *w, const json_t *items, uint64_t n, const char *name,
               int depth)
{
	struct slot s;

	slot_open(g, w, &s);
	if (slot_done(g, &s, write_items(g, slot_try(g, &s), items, n, name, depth)))
		return 0;
	if (g->broken || g->nodes > SIM_MAX_NODES)
		return -1;
	struct sg_jw *e = slot_try(g, &s);
	sg_jw_array(e);
	sg_jw_array_end(e);
	return slot_done(g, &s, 0) ? 0 : -1;
}

/*
 * minItems up to three more, within maxItems.  Items that cannot be made
 * leave the array empty when that is allowed, and the outcome must not
 * hang on the drawn length.
 */
static int
gen_array(struct gen *g, struct sg_jw *w, const struct sg_sim_kw *k, const char *name, int depth)
{
	const json_t *items = k->items;
	uint64_t lo = sg_sim_count(k->min_items, 0), hi = sg_sim_count(k->max_items, UINT64_MAX);

	if (lo > hi || lo > SIM_MAX_NODES || depth > SG_SCHEMA_MAX_DEPTH)
		return -1;
	hi = hi > lo + 3 ? lo + 3 : hi;
	uint64_t n = lo + below(g, hi - lo + 1);
	if (lo == 0 && n > 0)
		return items_or_empty(g, w, items, n, name, depth);
	return write_items(g, w, items, n, name, depth);
}

/* What a schema without `type` most plainly describes. */
static const char *
implied_type(const struct sg_sim_kw *k)
{
	if (k->properties || k->required || k->additional)
		return "object";
	if (k->items || k->min_items || k->max_items)
		return "array";
	if (k->minimum || k->maximum || k->xminimum || k->xmaximum)
		return "number";
	return "string"; /* anything goes, and text reads best */
}

/* The type that `type` (a string, or absent) names. */
static const char *
type_name(const struct sg_sim_kw *k)
{
	return json_is_string(k->type) ? json_string_value(k->type) : implied_type(k);
}

/* The types that are not scalars with bounds. */
static int
gen_other(struct gen *g, struct sg_jw *w, const struct sg_sim_kw *k, const char *type,
          const char *name, int depth)
{
	if (strcmp(type, "boolean") == 0) {
		sg_jw_bool(w, below(g, 2));
		return 0;
	}
	if (strcmp(type, "object") == 0)
		return fill_object(g, w, NULL, k, depth);
	if (strcmp(type, "array") == 0)
		return gen_array(g, w, k, name, depth);
	if (strcmp(type, "null") == 0) {
		sg_jw_null(w);
		return 0;
	}
	return -1; /* defensive: compiling refuses other type names */
}

static int
gen_type(struct gen *g, struct sg_jw *w, const struct sg_sim_kw *k, const char *type,
         const char *name, int depth)
{
	int rc = -1;

	if (strcmp(type, "string") == 0)
		rc = sg_sim_string(&g->rng, w, k, name, g->salt);
	else if (strcmp(type, "integer") == 0)
		rc = sg_sim_integer(&g->rng, w, k);
	else if (strcmp(type, "number") == 0)
		rc = sg_sim_number(&g->rng, w, k);
	else
		return gen_other(g, w, k, type, name, depth);
	if (rc == SG_SIM_NO_MEMORY)
		g->broken = true;
	return rc == 0 ? 0 : -1;
}

static int
from_examples(struct gen *g, struct sg_jw *w, const json_t *node, const struct sg_sim_kw *k,
              const json_t *list, const char *name, int depth)
{
	/* The same single draw pick() makes, whose first candidate always matches here. */
	const json_t *ex = list == g->checked
	                       ? json_array_get(list, (size_t)below(g, json_array_size(list)))
	                       : pick(g, node, list);
	return ex ? complete(g, w, ex, node, k, name, depth) : -1;
}

/*
 * The ways to a value with fallbacks: the schema's own examples, then each
 * listed type in order, and null (when listed) only when nothing else can
 * be made.
 */
static __attribute__((noinline)) int
gen_ways(struct gen *g, struct sg_jw *w, const json_t *node, const struct sg_sim_kw *k,
         const char *name, int depth)
{
	const json_t *ex = k->examples, *type = k->type, *t;
	bool null_ok = false;
	struct slot s;
	size_t i;

	slot_open(g, w, &s);
	if (json_array_size(ex) > 0 &&
	    slot_done(g, &s, from_examples(g, slot_try(g, &s), node, k, ex, name, depth)))
		return 0;
	if (!json_is_array(type))
		return !g->broken &&
		               slot_done(g, &s,
		                         gen_type(g, slot_try(g, &s), k, type_name(k), name, depth))
		           ? 0
		           : -1;
	json_array_foreach(type, i, t)
	{
		const char *tn = json_string_value(t);
		if (tn != NULL && strcmp(tn, "null") == 0)
			null_ok = true;
		else if (tn != NULL && !g->broken &&
		         slot_done(g, &s, gen_type(g, slot_try(g, &s), k, tn, name, depth)))
			return 0;
	}
	if (!null_ok || g->broken)
		return -1;
	sg_jw_null(slot_try(g, &s));
	return slot_done(g, &s, 0) ? 0 : -1;
}

/* const, then enum, then the schema's own examples, then the type. */
static int
gen_node(struct gen *g, struct sg_jw *w, const json_t *node, const char *name, int depth)
{
	struct sg_sim_kw k;
	const json_t *c;

	if (g->broken || json_is_false(node) || ++g->nodes > SIM_MAX_NODES)
		return -1;
	sg_sim_kw_read(node, &k);
	if (k.konst != NULL)
		return accepts_json(g, node, k.konst) ? write_json(w, k.konst, depth) : -1;
	if (k.enums != NULL)
		return (c = pick(g, node, k.enums)) ? write_json(w, c, depth) : -1;
	if (json_array_size(k.examples) > 0 || json_is_array(k.type))
		return gen_ways(g, w, node, &k, name, depth);
	return gen_type(g, w, &k, type_name(&k), name, depth);
}

/*
 * An example's id with new characters (sg_sim_reroll), so that calls do
 * not all share one id; when that breaks a pattern the caller retries
 * without re-rolling.
 */
static int
reroll(struct gen *g, struct sg_jw *w, const json_t *v)
{
	size_t n = json_string_length(v);
	char buf[SIM_MAX_REROLL];

	if (n > sizeof(buf))
		return write_json(w, v, 1);
	sg_jw_string(w, buf, sg_sim_reroll(&g->rng, json_string_value(v), n, buf));
	g->varied = true;
	return 0;
}

static int
complete_items(struct gen *g, struct sg_jw *w, const json_t *arr, const json_t *items,
               const char *name, int depth)
{
	const json_t *v;
	size_t i;

	if (depth > SG_SCHEMA_MAX_DEPTH)
		return -1;
	sg_jw_array(w);
	json_array_foreach(arr, i, v)
	{
		int rc = items ? complete(g, w, v, items, NULL, name, depth + 1)
		               : write_json(w, v, depth + 1);
		if (rc != 0)
			return -1;
	}
	sg_jw_array_end(w);
	return 0;
}

/*
 * Writes a value taken from an example, finished: objects gain what the
 * schema declares and the example lacks, and (when varying) id strings are
 * re-rolled.  The example itself, which every thread reads, is never
 * changed.  `k` holds `node`'s keywords when the caller has read them.
 */
static int
complete(struct gen *g, struct sg_jw *w, const json_t *v, const json_t *node,
         const struct sg_sim_kw *k, const char *name, int depth)
{
	struct sg_sim_kw own;

	if ((json_is_object(v) || json_is_array(v)) && k == NULL) {
		sg_sim_kw_read(node, &own);
		k = &own;
	}
	if (json_is_object(v))
		return fill_object(g, w, v, k, depth);
	if (json_is_array(v))
		return complete_items(g, w, v, k->items, name, depth);
	if (json_is_string(v) && g->vary && sg_sim_is_id_name(name))
		return reroll(g, w, v);
	return write_json(w, v, depth);
}

/* ---- one call ------------------------------------------------------------ */

/* Parses the call's input: before the first draw, and again when another parse ended it. */
static int
read_input(struct gen *g)
{
	g->has_input = false;
	if (g->input_len == 0)
		return 0;
	if (sg_json_parse(g->input, g->input_len, SG_SCHEMA_MAX_DEPTH, &g->doc, NULL) != SG_JSON_OK)
		return -1;
	g->has_input = sg_json_type(g->doc.root) == SG_JSON_OBJECT;
	return 0;
}

/* The root's ways: the definition's examples, then the schema. */
static int
build(struct gen *g, const json_t *examples, uint64_t h, size_t mark)
{
	const json_t *root = sg_schema_json(g->root);
	struct slot s = {.mark = mark};

	reseed(g, h);
	if (json_array_size(examples) > 0 &&
	    slot_done(g, &s, from_examples(g, slot_try(g, &s), root, NULL, examples, NULL, 1)))
		return 0;
	if (!g->broken && slot_done(g, &s, gen_node(g, slot_try(g, &s), root, NULL, 1)))
		return 0;
	return -1;
}

/* The output as a client will read it, against the schema. */
static int
check(struct gen *g, size_t mark)
{
	struct sg_json_doc doc;
	enum sg_json_rc rc =
	    sg_json_parse(g->out->data + mark, g->out->len - mark, SG_SCHEMA_MAX_DEPTH, &doc, NULL);

	if (rc == SG_JSON_NO_MEMORY)
		g->broken = true;
	return rc == SG_JSON_OK && sg_schema_validate(g->root, doc.root, NULL, 0, NULL) == 0 ? 0
	                                                                                     : -1;
}

int
sg_sim_write(struct sg_jbuf *out, const struct sg_schema *output, const json_t *examples,
             const char *input, size_t input_len, uint64_t seed, const char *salt, bool checked)
{
	struct gen g = {.vary = true,
	                .salt = salt ? salt : "",
	                .root = output,
	                .out = out,
	                .input = input,
	                .input_len = input ? input_len : 0};
	size_t mark = out->len;
	uint64_t h;
	int rc;

	if (checked)
		g.checked = examples;
	if (output == NULL || read_input(&g) != 0 ||
	    sg_sim_seed(seed, g.salt, g.input_len ? &g.doc.root : NULL, &h) != 0)
		return -1;
	rc = build(&g, examples, h, mark) == 0 ? check(&g, mark) : -1;
	/* A re-rolled id may break a pattern; the examples' own ids always fit. */
	if (rc != 0 && g.varied && !g.broken) {
		g.vary = false;
		rc = build(&g, examples, h, mark) == 0 ? check(&g, mark) : -1;
	}
	if (rc == 0 && !g.broken)
		return 0;
	out->len = mark;
	if (out->data != NULL)
		out->data[mark] = '\0';
	return -1;
}

static json_t *
generate(const struct sg_schema *output, const json_t *examples, bool checked, const json_t *input,
         uint64_t seed, const char *salt)
{
	char *text = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	struct sg_jbuf out = {0};
	json_t *v = NULL;

	if ((input == NULL || text != NULL) &&
	    sg_sim_write(&out, output, examples, text, text ? strlen(text) : 0, seed, salt,
	                 checked) == 0) {
		/* Out of memory, jansson's parser may change a value rather than fail. */
		sg_json_alloc_watch();
		v = json_loadb(out.data, out.len, JSON_DECODE_ANY, NULL);
		if (sg_json_alloc_unwatch()) {
			json_decref(v);
			v = NULL;
		}
	}
	free(text);
	sg_jbuf_release(&out);
	return v;
}

json_t *
sg_sim_generate(const struct sg_schema *output, const json_t *examples, const json_t *input,
                uint64_t seed, const char *salt)
{
	return generate(output, examples, false, input, seed, salt);
}

json_t *
sg_sim_generate_checked(const struct sg_schema *output, const json_t *examples, const json_t *input,
                        uint64_t seed, const char *salt)
{
	return generate(output, examples, true, input, seed, salt);
}
