/*
 * The simulator: synthetic output that always satisfies the output schema.
 *
 * The generator is xoshiro256**, seeded from a BLAKE2b hash of
 * (seed, salt, canonical input), so the same call always gets the same
 * answer and different inputs get different answers.  Values come from
 * the definition's examples when it has them (varied in shape-preserving
 * ways so that ids differ per call), otherwise from the schema, with
 * realistic text for common property names.  Whatever is built is checked
 * against the schema before it is returned; a candidate that fails falls
 * back to a plainer one, and NULL means the schema cannot be served.
 */
#include "upstream/sg_simulator.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define MAX_NODES 10000

struct gen {
	uint64_t s[4];
	int nodes;
	bool vary;  /* vary example ids */
};

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
next(struct gen *g)
{
	uint64_t r = rotl(g->s[1] * 5, 7) * 9, t = g->s[1] << 17;
	g->s[2] ^= g->s[0];
	g->s[3] ^= g->s[1];
	g->s[1] ^= g->s[2];
	g->s[0] ^= g->s[3];
	g->s[2] ^= t;
	g->s[3] = rotl(g->s[3], 45);
	return r;
}

static uint64_t
below(struct gen *g, uint64_t n)
{
	return n ? next(g) % n : 0;
}

static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
seed_gen(struct gen *g, uint64_t seed, const char *salt, const json_t *input)
{
	crypto_generichash_state st;
	uint64_t h = 0;
	char *canon = input ? json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
			    : NULL;
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)&seed, sizeof(seed));
	crypto_generichash_update(&st, (const unsigned char *)salt, strlen(salt) + 1);
	if (canon)
		crypto_generichash_update(&st, (const unsigned char *)canon, strlen(canon));
	crypto_generichash_final(&st, (unsigned char *)&h, sizeof(h));
	free(canon);
	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix(&h);
	g->nodes = 0;
}

static const char *const first_names[] = {"Ada", "Grace", "Alan", "Katherine", "Linus", "Barbara",
    "Dennis", "Margaret", "Ken", "Frances", "Edsger", "Radia"};
static const char *const last_names[] = {"Lovelace", "Hopper", "Turing", "Johnson", "Torvalds",
    "Liskov", "Ritchie", "Hamilton", "Thompson", "Allen", "Dijkstra", "Perlman"};
static const char *const companies[] = {"Analytical Engines Ltd", "Northwind Traders",
    "Contoso Pharma", "Fabrikam Logistics", "Globex Retail", "Initech Finance"};
static const char *const words[] = {"quarterly", "review", "update", "plan", "meeting", "notes",
    "launch", "summary", "budget", "follow-up", "draft", "report"};

#define PICK(g, a) ((a)[below((g), sizeof(a) / sizeof((a)[0]))])

static bool
name_has(const char *name, const char *part)
{
	return name && strstr(name, part) != NULL;
}

static void
gen_datetime(struct gen *g, char *out, size_t n, bool date_only)
{
	/* Within 2024-2025: plausible, and fixed by the seed. */
	time_t t = (time_t)(1704067200 + below(g, 2 * 365 * 86400));
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
gen_uuid(struct gen *g, char *out, size_t n)
{
	uint64_t a = next(g), b = next(g);
	snprintf(out, n, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
	    (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
	    (unsigned)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffull));
}

/* Text shaped by the format or the property name. */
static void
string_for(struct gen *g, const char *format, const char *name, char *out, size_t n)
{
	const char *fn = PICK(g, first_names), *ln = PICK(g, last_names);
	if (format && strcmp(format, "email") == 0)
		snprintf(out, n, "%c%s.%u@example.com", fn[0] | 0x20, fn + 1, (unsigned)below(g, 1000));
	else if (format && strcmp(format, "date-time") == 0)
		gen_datetime(g, out, n, false);
	else if (format && strcmp(format, "date") == 0)
		gen_datetime(g, out, n, true);
	else if (format && strcmp(format, "uuid") == 0)
		gen_uuid(g, out, n);
	else if (format && (strcmp(format, "uri") == 0 || strcmp(format, "url") == 0))
		snprintf(out, n, "https://example.com/%s/%llx", PICK(g, words),
		    (unsigned long long)(next(g) & 0xffffff));
	else if (name_has(name, "email"))
		snprintf(out, n, "%c%s@example.com", fn[0] | 0x20, fn + 1);
	else if (name && (strcmp(name, "id") == 0 || name_has(name, "_id")))
		snprintf(out, n, "%llx", (unsigned long long)(next(g) & 0xffffffffffull));
	else if (name_has(name, "company") || name_has(name, "organization"))
		snprintf(out, n, "%s", PICK(g, companies));
	else if (name_has(name, "name"))
		snprintf(out, n, "%s %s", fn, ln);
	else
		snprintf(out, n, "%s %s", PICK(g, words), PICK(g, words));
}

static json_t *gen_value(struct gen *g, const json_t *schema, const char *name, int depth);

static json_t *
gen_string(struct gen *g, const json_t *schema, const char *name)
{
	char buf[512];
	json_int_t min = json_integer_value(json_object_get(schema, "minLength"));
	json_t *maxj = json_object_get(schema, "maxLength");
	json_int_t max = maxj ? json_integer_value(maxj) : (json_int_t)sizeof(buf) - 1;
	if (json_object_get(schema, "pattern"))
		return NULL; /* a regex cannot be run backwards; examples must supply these */
	if (max > (json_int_t)sizeof(buf) - 1)
		max = sizeof(buf) - 1;
	if (min > max)
		return NULL;
	string_for(g, json_string_value(json_object_get(schema, "format")), name, buf, sizeof(buf));
	size_t len = strlen(buf);
	if ((json_int_t)len > max)
		len = (size_t)max; /* a truncated format is caught by the final check */
	while ((json_int_t)len < min && len + 1 < sizeof(buf))
		buf[len++] = (char)('a' + below(g, 26));
	buf[len] = '\0';
	return json_string(buf);
}

static double
num_bound(const json_t *schema, const char *key, const char *xkey, double fallback, double step)
{
	json_t *v = json_object_get(schema, key), *x = json_object_get(schema, xkey);
	double b = fallback;
	if (json_is_number(v))
		b = json_number_value(v);
	if (json_is_number(x)) {
		double xb = json_number_value(x) + step;
		b = (step > 0) ? fmax(b, xb) : fmin(b, xb);
	}
	return b;
}

static json_t *
gen_number(struct gen *g, const json_t *schema, bool integer)
{
	double step = integer ? 1.0 : 0.01;
	double lo = num_bound(schema, "minimum", "exclusiveMinimum", 0, step);
	double hi = num_bound(schema, "maximum", "exclusiveMaximum", lo + 1000, -step);
	if (integer) {
		lo = ceil(lo);
		hi = floor(hi);
	}
	if (hi < lo || !isfinite(lo) || !isfinite(hi) || fabs(lo) > 9e15 || fabs(hi) > 9e15)
		return NULL;
	double span = hi - lo;
	if (integer)
		return json_integer((json_int_t)lo + (json_int_t)below(g, (uint64_t)span + 1));
	return json_real(round((lo + span * (double)below(g, 10001) / 10000.0) * 100) / 100);
}

static json_t *
gen_array(struct gen *g, const json_t *schema, const char *name, int depth)
{
	json_int_t min = json_integer_value(json_object_get(schema, "minItems"));
	json_t *maxj = json_object_get(schema, "maxItems");
	json_int_t max = maxj ? json_integer_value(maxj) : min + 3;
	json_int_t n = min + (json_int_t)below(g, 3);
	if (n > max)
		n = max;
	if (n < min || n > 100)
		return NULL;
	json_t *arr = json_array(), *items = json_object_get(schema, "items");
	for (json_int_t i = 0; arr && i < n; i++) {
		json_t *v = gen_value(g, items, name, depth + 1);
		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *
gen_object(struct gen *g, const json_t *schema, int depth)
{
	json_t *obj = json_object(), *props = json_object_get(schema, "properties"), *sub;
	const char *key;
	/* Every declared property, optional or not: outputs should look complete. */
	json_object_foreach(props, key, sub) {
		json_t *v = gen_value(g, sub, key, depth + 1);
		if (v == NULL) {
			json_decref(obj);
			return NULL;
		}
		json_object_set_new(obj, key, v);
	}
	return obj;
}

static const char *
pick_type(const json_t *schema)
{
	json_t *t = json_object_get(schema, "type");
	if (json_is_string(t))
		return json_string_value(t);
	if (!json_is_array(t))
		return json_object_get(schema, "properties") ? "object" : "string";
	size_t i;
	json_t *e;
	json_array_foreach(t, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), "null") != 0)
			return json_string_value(e);
	return "null";
}

static json_t *
gen_value(struct gen *g, const json_t *schema, const char *name, int depth)
{
	if (depth > SG_SCHEMA_MAX_DEPTH || ++g->nodes > MAX_NODES || json_is_false(schema))
		return NULL;
	if (!json_is_object(schema))
		return json_string("sample");
	json_t *c = json_object_get(schema, "const"), *en = json_object_get(schema, "enum");
	if (c)
		return json_deep_copy(c);
	if (json_is_array(en) && json_array_size(en) > 0)
		return json_deep_copy(json_array_get(en, below(g, json_array_size(en))));
	const char *type = pick_type(schema);
	if (strcmp(type, "string") == 0)
		return gen_string(g, schema, name);
	if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
		return gen_number(g, schema, type[0] == 'i');
	if (strcmp(type, "boolean") == 0)
		return json_boolean(below(g, 2));
	if (strcmp(type, "null") == 0)
		return json_null();
	if (strcmp(type, "array") == 0)
		return gen_array(g, schema, name, depth);
	if (strcmp(type, "object") == 0)
		return gen_object(g, schema, depth);
	return NULL;
}

/*
 * Same shape, new characters: letters stay letters, digits stay digits, and
 * a type prefix such as "ct_" stays as it is.
 */
static json_t *
vary_string(struct gen *g, const char *s)
{
	char buf[256];
	size_t n = strlen(s), start = strcspn(s, "_-:.") < n ? strcspn(s, "_-:.") + 1 : 0;
	if (n >= sizeof(buf))
		return json_string(s);
	memcpy(buf, s, start);
	for (size_t i = start; i < n; i++) {
		char ch = s[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)('a' + below(g, 26));
		else if (ch >= 'A' && ch <= 'Z')
			ch = (char)('A' + below(g, 26));
		else if (ch >= '0' && ch <= '9')
			ch = (char)('0' + below(g, 10));
		buf[i] = ch;
	}
	buf[n] = '\0';
	return json_string(buf);
}

static bool
is_id_name(const char *key)
{
	size_t n = strlen(key);
	return strcmp(key, "id") == 0 || (n > 3 && strcmp(key + n - 3, "_id") == 0);
}

/* An example as the base: ids varied, missing properties generated. */
static json_t *
from_example(struct gen *g, const json_t *schema, const json_t *example)
{
	json_t *out = json_deep_copy(example), *props = json_object_get(schema, "properties"), *sub;
	const char *key;
	if (!json_is_object(out) || !json_is_object(props))
		return out;
	json_object_foreach(props, key, sub) {
		json_t *have = json_object_get(out, key);
		if (have && g->vary && json_is_string(have) && is_id_name(key))
			json_object_set_new(out, key, vary_string(g, json_string_value(have)));
		else if (have == NULL) {
			json_t *v = gen_value(g, sub, key, 1);
			if (v == NULL) {
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, key, v);
		}
	}
	return out;
}

/* Output properties named like input properties take the input's value. */
static void
echo_input(json_t *out, const json_t *schema, const json_t *input)
{
	json_t *props = json_object_get(schema, "properties"), *v;
	const char *key;
	if (!json_is_object(out) || !json_is_object(input))
		return;
	json_object_foreach((json_t *)input, key, v)
		if (json_object_get(props, key))
			json_object_set(out, key, v);
}

static json_t *
build(const struct sg_schema *output, const json_t *examples, const json_t *input,
    uint64_t seed, const char *salt, bool vary, bool echo)
{
	struct gen g;
	const json_t *schema = sg_schema_json(output);
	seed_gen(&g, seed, salt ? salt : "", input);
	g.vary = vary;
	json_t *out;
	if (json_is_array(examples) && json_array_size(examples) > 0)
		out = from_example(&g, schema, json_array_get(examples,
		    below(&g, json_array_size(examples))));
	else
		out = gen_value(&g, schema, NULL, 1);
	if (out && echo)
		echo_input(out, schema, input);
	if (out && sg_schema_validate(output, out, NULL, 0, NULL) != 0) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

json_t *
sg_sim_generate(const struct sg_schema *output, const json_t *examples, const json_t *input,
    uint64_t seed, const char *salt)
{
	/* From the richest candidate to the plainest; the first valid one wins. */
	static const bool tries[][2] = {{true, true}, {false, true}, {true, false}, {false, false}};
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		json_t *out = build(output, examples, input, seed, salt, tries[i][0], tries[i][1]);
		if (out)
			return out;
	}
	return NULL;
}
