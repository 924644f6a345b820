/*
 * sg_connector: connectors/NAME.yaml.  Everything a call will rely on is
 * proved at load: schemas compile, examples match, and the simulator can
 * answer every operation, so a bad definition fails at apply time, never
 * at the first sandbox call.
 */
#include "catalog/sg_connector.h"
#include "catalog/sg_connector_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_config.h"
#include "core/sg_name.h"
#include "core/sg_yaml.h"
#include "policy/sg_policy.h"
#include "upstream/sg_egress.h"
#include "upstream/sg_simulator.h"

#define NAME_MAX_LEN 64
#define PATH_MAX_LEN 1024
#define URL_MAX_LEN 2048

/* One file and its collected errors, passed down the loader. */
struct cload {
	const char *file;
	struct sg_diags *d;
	uint64_t seed;
	struct sg_connector *c;
	size_t before; /* d->n when this file started */
};

static const char *const top_keys[] = {
    "kind",         "name",           "version",    "description",          "auth",
    "environments", "upstream_limit", "operations", "upstream_concurrency",
    "simulator_only", "redirects", "max_response", "forward_headers", "egress",
};
static const char *const env_keys[] = {
    "simulator", "base_url", "latency", "ca_bundle", "connect_timeout", "timeout", "resolve",
};
static const char *const limit_keys[] = {"rate", "burst"};
static const char *const op_keys[] = {
    "description", "method", "path",     "data_domain",     "cost", "weight", "idempotent",
    "input",       "output", "examples", "reported_weight", "failover",
};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* An operation name: [a-z] then up to 63 of [a-z0-9_]. */
static bool
valid_op_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX_LEN || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* MAJOR.MINOR.PATCH, no leading zeros, each part up to 9 digits. */
static bool
valid_semver(const char *s)
{
	for (int part = 0; part < 3; part++) {
		size_t n = 0;
		while (s[n] >= '0' && s[n] <= '9')
			n++;
		if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
			return false;
		s += n;
		if (part < 2 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static bool
one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

/* A copy that the connector owns; "" for an absent optional value. */
static char *
keep(struct cload *l, const char *s)
{
	char *copy = strdup(s ? s : "");
	if (copy == NULL)
		sg_diags_add(l->d, l->file, 0, 0, "out of memory");
	return copy;
}

/* The string at `key`, or NULL; reports "missing key" with `hint` unless it is NULL. */
static const char *
get_str(struct cload *l, struct fy_node *map, const char *key, const char *what, const char *hint)
{
	struct fy_node *n = sg_yaml_get(map, key);
	if (n == NULL) {
		if (hint)
			sg_yaml_error(l->d, l->file, map, "%smissing key \"%s\": add %s: %s", what,
			              key, key, hint);
		return NULL;
	}
	char label[160];
	snprintf(label, sizeof(label), "%s%s", what, key);
	return sg_yaml_str(l->d, l->file, n, label);
}

/* How long the simulator takes to answer, so explorers meet realistic timing. */
static void
parse_latency(struct cload *l, struct fy_node *env_node, const char *name,
              struct sg_environment *env)
{
	struct fy_node *n = sg_yaml_get(env_node, "latency");
	char what[64];
	uint64_t ms;
	snprintf(what, sizeof(what), "environments.%s.latency", name);
	const char *s = n ? sg_yaml_str(l->d, l->file, n, what) : NULL;
	if (s == NULL)
		return;
	if (!env->simulator)
		sg_yaml_error(l->d, l->file, n,
		              "%s: only the simulator takes a latency; a real "
		              "upstream has its own",
		              what);
	else if (sg_duration_parse_ms(s, &ms) != 0 || ms > 60000)
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected a duration from 0ms to 60s such as "
		              "40ms, got \"%.40s\"",
		              what, s);
	else
		env->latency_ms = (uint32_t)ms;
}

static void
parse_env(struct cload *l, struct fy_node *envs, const char *name, struct sg_environment *env)
{
	struct fy_node *n = sg_yaml_get(envs, name);
	char what[64];
	snprintf(what, sizeof(what), "environments.%s", name);
	if (n == NULL) {
		sg_yaml_error(l->d, l->file, envs,
		              "environments: missing \"%s\": add %s: { simulator: true } or "
		              "%s: { base_url: \"https://...\" }",
		              name, name, name);
		return;
	}
	if (sg_yaml_check_keys(l->d, l->file, n, what, env_keys, COUNT(env_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	struct fy_node *sim = sg_yaml_get(n, "simulator");
	if (sim && sg_yaml_bool(l->d, l->file, sim, "simulator", &env->simulator) != 0)
		return;
	snprintf(what, sizeof(what), "environments.%s.", name);
	const char *url = get_str(l, n, "base_url", what, NULL);
	if (sg_yaml_get(n, "base_url") && url == NULL)
		return;
	if (env->simulator == (url != NULL)) {
		sg_yaml_error(l->d, l->file, n,
		              "environments.%s: set exactly one of "
		              "simulator: true or base_url",
		              name);
		return;
	}
	if (url && (strlen(url) > URL_MAX_LEN || strpbrk(url, " \t\r\n") ||
	            !((strncmp(url, "https://", 8) == 0 && url[8]) ||
	              (strncmp(url, "http://", 7) == 0 && url[7])))) {
		sg_yaml_error(l->d, l->file, sg_yaml_get(n, "base_url"),
		              "environments.%s.base_url: expected an http:// or https:// URL",
		              name);
		return;
	}
	if (url && (env->base_url = sg_cu_base_url(l->d, l->file, sg_yaml_get(n, "base_url"),
	                                           name, url)) == NULL)
		return;
	parse_latency(l, n, name, env);
	sg_cu_env(l->d, l->file, n, name, env);
}

static void
parse_upstream_limit(struct cload *l, struct fy_node *n)
{
	struct sg_limit lim;
	long long burst = 0;
	if (sg_yaml_check_keys(l->d, l->file, n, "upstream_limit", limit_keys, COUNT(limit_keys)) !=
	        0 &&
	    !fy_node_is_mapping(n))
		return;
	const char *rate = get_str(l, n, "rate", "upstream_limit: ", "50/s");
	struct fy_node *b = sg_yaml_get(n, "burst");
	if (b && sg_yaml_int(l->d, l->file, b, "upstream_limit.burst", 1, 100000, &burst) != 0)
		return;
	if (rate == NULL)
		return;
	if (sg_limit_parse(rate, (uint32_t)burst, &lim) != 0) {
		sg_yaml_error(
		    l->d, l->file, sg_yaml_get(n, "rate"),
		    "upstream_limit.rate: expected calls per period such as 50/s, 100/m, 10/h "
		    "or 5000/d (up to 1000000, 3 decimals), got \"%.40s\"",
		    rate);
		return;
	}
	l->c->upstream_limit = lim;
}

/* { initial, min, max }: the adaptive limit on calls at once to the live upstream. */
static void
parse_upstream_concurrency(struct cload *l, struct fy_node *n)
{
	static const char *const keys[] = {"initial", "min", "max"};
	long long v[3] = {0, 1, 0};
	if (sg_yaml_check_keys(l->d, l->file, n, "upstream_concurrency", keys, COUNT(keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	for (int i = 0; i < 3; i++) {
		struct fy_node *k = sg_yaml_get(n, keys[i]);
		char what[48];
		snprintf(what, sizeof(what), "upstream_concurrency.%s", keys[i]);
		if (k && sg_yaml_int(l->d, l->file, k, what, 1, 100000, &v[i]) != 0)
			return;
	}
	if (v[0] == 0 || v[2] == 0 || v[1] > v[0] || v[0] > v[2]) {
		sg_yaml_error(l->d, l->file, n,
		              "upstream_concurrency: give initial and max (and "
		              "optionally min), with min <= initial <= max, such as { initial: 20, "
		              "min: 2, max: 200 }");
		return;
	}
	l->c->upstream_concurrency =
	    (struct sg_adaptive_config){(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]};
}

static void
parse_header(struct cload *l, struct fy_node *root)
{
	struct sg_connector *c = l->c;
	const char *kind = get_str(l, root, "kind", "", "connector");
	if (kind && strcmp(kind, "connector") != 0)
		sg_yaml_error(l->d, l->file, sg_yaml_get(root, "kind"),
		              "kind: expected \"connector\", got \"%.40s\"", kind);
	const char *name = get_str(l, root, "name", "", "NAME");
	char why[200];
	if (name && !sg_name_valid(name))
		sg_yaml_error(l->d, l->file, sg_yaml_get(root, "name"), "name \"%.64s\": %s", name,
		              sg_name_why(name, why, sizeof(why)));
	const char *version = get_str(l, root, "version", "", "1.0.0");
	if (version && !valid_semver(version))
		sg_yaml_error(l->d, l->file, sg_yaml_get(root, "version"),
		              "version: expected MAJOR.MINOR.PATCH such as 1.0.0, got \"%.40s\"",
		              version);
	const char *desc = get_str(l, root, "description", "", "one line on what it is for");
	c->name = keep(l, name);
	c->version = keep(l, version);
	c->description = keep(l, desc);
	sg_cu_auth(l->d, l->file, root, c);
	struct fy_node *envs = sg_yaml_get(root, "environments");
	if (envs == NULL)
		sg_yaml_error(
		    l->d, l->file, root,
		    "missing key \"environments\": add sandbox: "
		    "{ simulator: true } and live: { base_url: \"https://...\" } under it");
	else if (sg_yaml_check_keys(l->d, l->file, envs, "environments",
	                            (const char *const[]){"sandbox", "live"}, 2) == 0) {
		parse_env(l, envs, "sandbox", &c->sandbox);
		parse_env(l, envs, "live", &c->live);
	}
	struct fy_node *ul = sg_yaml_get(root, "upstream_limit");
	if (ul != NULL)
		parse_upstream_limit(l, ul);
	if ((ul = sg_yaml_get(root, "upstream_concurrency")) != NULL)
		parse_upstream_concurrency(l, ul);
	sg_cu_top(l->d, l->file, root, c);
}

/* Finds the YAML node an RFC 6901 pointer names, or the deepest one that exists. */
static struct fy_node *
node_at_pointer(struct fy_node *n, const char *ptr)
{
	while (n != NULL && *ptr == '/') {
		char tok[256];
		size_t t = 0;
		for (ptr++; *ptr && *ptr != '/'; ptr++) {
			char ch = *ptr;
			if (ch == '~' && (ptr[1] == '0' || ptr[1] == '1'))
				ch = *++ptr == '0' ? '~' : '/';
			if (t + 1 < sizeof(tok))
				tok[t++] = ch;
		}
		tok[t] = '\0';
		struct fy_node *next = NULL;
		if (fy_node_is_mapping(n))
			next = sg_yaml_get(n, tok);
		else if (fy_node_is_sequence(n) && t > 0 && t < 9 && strspn(tok, "0123456789") == t)
			next = fy_node_sequence_get_by_index(n, atoi(tok));
		if (next == NULL)
			break;
		n = next;
	}
	return n;
}

static struct sg_schema *
compile_schema(struct cload *l, struct fy_node *n, const char *op, const char *which)
{
	struct sg_schema_error err = {{0}, {0}};
	json_t *j = sg_yaml_to_json(l->file, n, l->d);
	if (j == NULL)
		return NULL;
	struct sg_schema *s = sg_schema_compile(j, &err);
	if (s == NULL)
		sg_yaml_error(l->d, l->file, node_at_pointer(n, err.pointer),
		              "operation \"%s\": %s schema%s%s: %s", op, which,
		              err.pointer[0] ? " " : "", err.pointer, err.message);
	json_decref(j);
	return s;
}

/* Each {name} in the path must be a required input property, or routing would fail. */
static void
check_path(struct cload *l, struct fy_node *pn, const char *path, const struct sg_operation *op)
{
	const json_t *in = sg_schema_json(op->input);
	const json_t *props = json_object_get(in, "properties");
	const json_t *req = json_object_get(in, "required");
	for (const char *p = strchr(path, '{'); p != NULL; p = strchr(p, '{')) {
		const char *end = strchr(++p, '}');
		char name[NAME_MAX_LEN + 1];
		size_t n = end ? (size_t)(end - p) : 0;
		bool listed = false;
		if (n == 0 || n > NAME_MAX_LEN) {
			sg_yaml_error(l->d, l->file, pn,
			              "operation \"%s\": path: each '{' needs "
			              "a parameter name and a closing '}'",
			              op->name);
			return;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		for (size_t i = 0; i < json_array_size(req); i++)
			listed |= json_is_string(json_array_get(req, i)) &&
			          strcmp(json_string_value(json_array_get(req, i)), name) == 0;
		if (!listed || json_object_get(props, name) == NULL)
			sg_yaml_error(l->d, l->file, pn,
			              "operation \"%s\": path parameter {%s} "
			              "must be an input property listed in input.required",
			              op->name, name);
		p = end + 1;
	}
}

static void
parse_op_scalars(struct cload *l, struct fy_node *n, struct sg_operation *op)
{
	char what[128];
	snprintf(what, sizeof(what), "operation \"%.64s\": ", op->name);
	const char *desc = get_str(l, n, "description", what, NULL);
	const char *method = get_str(l, n, "method", what, "GET");
	const char *path = get_str(l, n, "path", what, "/resource");
	const char *domain = get_str(l, n, "data_domain", what, "pii");
	if (method && !one_of(method, methods, COUNT(methods)))
		sg_yaml_error(l->d, l->file, sg_yaml_get(n, "method"),
		              "%smethod: expected GET, "
		              "POST, PUT, PATCH or DELETE, got \"%.40s\"",
		              what, method);
	if (path && (path[0] != '/' || strlen(path) > PATH_MAX_LEN || strpbrk(path, " \t\r\n?#")))
		sg_yaml_error(l->d, l->file, sg_yaml_get(n, "path"),
		              "%spath: expected a path "
		              "starting with '/', without spaces, '?' or '#', got \"%.60s\"",
		              what, path);
	if (domain && (domain[0] == '\0' || strlen(domain) > NAME_MAX_LEN ||
	               strspn(domain, "abcdefghijklmnopqrstuvwxyz_") != strlen(domain)))
		sg_yaml_error(l->d, l->file, sg_yaml_get(n, "data_domain"),
		              "%sdata_domain: use "
		              "lowercase letters and '_', such as pii or public, got \"%.40s\"",
		              what, domain);
	op->description = keep(l, desc);
	op->method = keep(l, method);
	op->path = keep(l, path);
	op->data_domain = keep(l, domain);

	struct fy_node *v;
	long long w = 1;
	snprintf(what, sizeof(what), "operation \"%.64s\": cost", op->name);
	if ((v = sg_yaml_get(n, "cost")) && sg_yaml_num(l->d, l->file, v, what, &op->cost) == 0 &&
	    op->cost < 0)
		sg_yaml_error(l->d, l->file, v, "%s: must be 0 or more, got %g", what, op->cost);
	snprintf(what, sizeof(what), "operation \"%.64s\": weight", op->name);
	if ((v = sg_yaml_get(n, "weight")))
		sg_yaml_int(l->d, l->file, v, what, 1, 1000, &w);
	op->weight = (uint32_t)w;
	snprintf(what, sizeof(what), "operation \"%.64s\": reported_weight", op->name);
	const char *rw =
	    (v = sg_yaml_get(n, "reported_weight")) ? sg_yaml_str(l->d, l->file, v, what) : NULL;
	if (rw && (rw[0] != '/' || strlen(rw) > 200))
		sg_yaml_error(l->d, l->file, v,
		              "%s: expected a JSON Pointer into the output such as "
		              "/usage/units, got \"%.40s\"",
		              what, rw);
	else if (rw)
		op->reported_weight = keep(l, rw);
	/* GET, PUT and DELETE are idempotent in HTTP; anything else must say so. */
	op->idempotent = method && (strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
	                            strcmp(method, "DELETE") == 0);
	snprintf(what, sizeof(what), "operation \"%.64s\": idempotent", op->name);
	if ((v = sg_yaml_get(n, "idempotent")))
		sg_yaml_bool(l->d, l->file, v, what, &op->idempotent);
}

static void
check_input_is_object(struct cload *l, struct fy_node *n, const struct sg_operation *op)
{
	const json_t *type = json_object_get(sg_schema_json(op->input), "type");
	if (json_is_string(type) && strcmp(json_string_value(type), "object") == 0)
		return;
	sg_yaml_error(
	    l->d, l->file, sg_yaml_get(n, "type") ? sg_yaml_get(n, "type") : n,
	    "operation \"%s\": input schema must have type: object (a call's input is a JSON "
	    "object)",
	    op->name);
}

static void
check_examples(struct cload *l, struct fy_node *n, struct sg_operation *op)
{
	struct sg_schema_error err[4];
	size_t n_err = 0;
	if (!fy_node_is_sequence(n)) {
		sg_yaml_error(l->d, l->file, n,
		              "operation \"%s\": examples: expected a list of "
		              "example outputs",
		              op->name);
		return;
	}
	op->examples = sg_yaml_to_json(l->file, n, l->d);
	for (size_t i = 0; i < json_array_size(op->examples); i++) {
		if (sg_schema_validate_jansson(op->output, json_array_get(op->examples, i), err, 4,
		                       &n_err) == 0)
			continue;
		struct fy_node *ex = fy_node_sequence_get_by_index(n, (int)i);
		sg_yaml_error(
		    l->d, l->file, node_at_pointer(ex, err[0].pointer),
		    "operation \"%s\": example %zu does not match the output schema: %s%s%s",
		    op->name, i, err[0].pointer, err[0].pointer[0] ? ": " : "", err[0].message);
	}
}

/* Asks the simulator for one answer now, so that sandbox calls cannot fail later. */
static void
check_simulator(struct cload *l, struct fy_node *n, const struct sg_operation *op)
{
	char salt[2 * NAME_MAX_LEN + 2];
	struct sg_schema_error err;
	size_t n_err = 0;
	if (l->c->name == NULL || op->name == NULL)
		return; /* out of memory, already reported */
	snprintf(salt, sizeof(salt), "%s.%s", l->c->name, op->name);
	json_t *out = sg_sim_generate(op->output, op->examples, NULL, l->seed, salt);
	if (out == NULL)
		sg_yaml_error(
		    l->d, l->file, n,
		    "operation \"%s\": the simulator cannot produce "
		    "output for this schema (a pattern needs an example): add an example under "
		    "examples:",
		    op->name);
	else if (sg_schema_validate_jansson(op->output, out, &err, 1, &n_err) != 0)
		sg_yaml_error(l->d, l->file, n,
		              "operation \"%s\": the simulator's output does not "
		              "match the output schema (%s: %s): add an example under examples:",
		              op->name, err.pointer, err.message);
	json_decref(out);
}

static void
parse_op(struct cload *l, struct fy_node *key, struct fy_node *n, struct sg_operation *op)
{
	const char *name = sg_yaml_str(l->d, l->file, key, "operation name");
	op->name = keep(l, name);
	if (op->name == NULL)
		return;
	if (name && !valid_op_name(name))
		sg_yaml_error(l->d, l->file, key,
		              "operation name: use 1 to 64 lowercase letters, "
		              "digits or '_', starting with a letter, got \"%.64s\"",
		              name);
	char what[128];
	snprintf(what, sizeof(what), "operation \"%.64s\"", op->name);
	if (sg_yaml_check_keys(l->d, l->file, n, what, op_keys, COUNT(op_keys)) != 0 &&
	    !fy_node_is_mapping(n))
		return;
	parse_op_scalars(l, n, op);
	sg_cu_failover(l->d, l->file, n, l->c, op);
	struct fy_node *in = sg_yaml_get(n, "input"), *out = sg_yaml_get(n, "output");
	if (in == NULL || out == NULL)
		sg_yaml_error(l->d, l->file, key, "%s: missing key \"%s\": add a JSON Schema", what,
		              in == NULL ? "input" : "output");
	op->input = in ? compile_schema(l, in, op->name, "input") : NULL;
	op->output = out ? compile_schema(l, out, op->name, "output") : NULL;
	if (op->input) {
		check_input_is_object(l, in, op);
		if (op->path && op->path[0] == '/')
			check_path(l, sg_yaml_get(n, "path"), op->path, op);
	}
	struct fy_node *ex = sg_yaml_get(n, "examples");
	if (op->output == NULL)
		return;
	size_t before = l->d->n;
	if (ex != NULL)
		check_examples(l, ex, op);
	if (l->d->n == before)
		check_simulator(l, out, op);
}

static int
op_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sg_operation *)a)->name,
	              ((const struct sg_operation *)b)->name);
}

static void
parse_operations(struct cload *l, struct fy_node *root)
{
	struct fy_node *ops = sg_yaml_get(root, "operations");
	if (ops == NULL) {
		sg_yaml_error(
		    l->d, l->file, root,
		    "missing key \"operations\": a connector needs at least one operation");
		return;
	}
	if (!fy_node_is_mapping(ops) || fy_node_mapping_item_count(ops) < 1) {
		sg_yaml_error(l->d, l->file, ops,
		              "operations: expected a mapping of operation "
		              "names to definitions, with at least one operation");
		return;
	}
	size_t n = (size_t)fy_node_mapping_item_count(ops);
	l->c->ops = calloc(n, sizeof(*l->c->ops));
	if (l->c->ops == NULL) {
		sg_yaml_error(l->d, l->file, ops, "out of memory");
		return;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(ops, &it)) != NULL && l->c->n_ops < n)
		parse_op(l, fy_node_pair_key(p), fy_node_pair_value(p), &l->c->ops[l->c->n_ops++]);
	/* Only a clean connector is kept, and only then are all names non-NULL. */
	if (l->d->n == l->before)
		qsort(l->c->ops, l->c->n_ops, sizeof(*l->c->ops), op_cmp);
}

/*
 * `egress: { allow: [...] }`: hosts and CIDRs this connector may reach
 * although the built-in deny list names them (a mock upstream on
 * 127.0.0.1, an internal API).  Each entry is checked on its own first, so
 * every bad one is reported at its own line.
 */
static void
parse_egress(struct cload *l, struct fy_node *root)
{
	static const char *const keys[] = {"allow"};
	const char *v[256];
	char err[256];
	struct fy_node *n = sg_yaml_get(root, "egress");
	if (n == NULL)
		return;
	if (sg_yaml_check_keys(l->d, l->file, n, "egress", keys, COUNT(keys)) != 0)
		return;
	struct fy_node *allow = sg_yaml_get(n, "allow");
	if (allow == NULL) {
		/* At the key: libfyaml marks an empty flow mapping at no useful place. */
		sg_yaml_error(l->d, l->file, fy_node_mapping_lookup_key_by_string(root, "egress", 6),
		              "egress: missing allow; add allow: [\"127.0.0.1/32\"] or "
		              "allow: [\"api.example.com\"]");
		return;
	}
	if (!fy_node_is_sequence(allow) || fy_node_sequence_item_count(allow) > (int)COUNT(v)) {
		sg_yaml_error(l->d, l->file, allow,
		              "egress.allow: expected a list of at most %zu host names and CIDRs",
		              COUNT(v));
		return;
	}
	size_t count = 0;
	bool bad = false;
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(allow, &it)) != NULL) {
		const char *s = sg_yaml_str(l->d, l->file, item, "egress.allow");
		struct sg_egress_list *one = s ? sg_egress_list_new(&s, 1, err, sizeof(err)) : NULL;
		if (s != NULL && one == NULL)
			sg_yaml_error(l->d, l->file, item, "egress.allow: %s", err);
		bad |= one == NULL;
		sg_egress_list_free(one);
		v[count++] = s;
	}
	if (bad)
		return;
	l->c->egress_allow = sg_egress_list_new(v, count, err, sizeof(err));
	if (l->c->egress_allow == NULL)
		sg_yaml_error(l->d, l->file, allow, "egress.allow: %s", err);
}

struct sg_connector *
sg_connector_parse(const char *file, const char *text, size_t len, uint64_t sim_seed,
                   struct sg_diags *d)
{
	size_t before = d->n;
	struct fy_document *doc = sg_yaml_parse(file, text, len, d);
	if (doc == NULL)
		return NULL;
	struct sg_connector *c = calloc(1, sizeof(*c));
	struct cload l = {file, d, sim_seed, c, before};
	struct fy_node *root = fy_document_root(doc);
	if (c == NULL) {
		sg_diags_add(d, file, 0, 0, "out of memory");
	} else if (sg_yaml_check_keys(d, file, root, "connector", top_keys, COUNT(top_keys)) == 0 ||
	           fy_node_is_mapping(root)) {
		parse_header(&l, root);
		parse_operations(&l, root);
		parse_egress(&l, root);
	}
	fy_document_destroy(doc);
	sg_yaml_sort_diags(d, before);
	if (c && d->n == before && (c->source = malloc(len + 1)) != NULL) {
		memcpy(c->source, text, len);
		c->source[len] = '\0';
	}
	if (c == NULL || c->source == NULL) {
		if (d->n == before)
			sg_diags_add(d, file, 0, 0, "out of memory");
		sg_connector_free(c);
		return NULL;
	}
	/* Past the registry's size the upstream simply has no adaptive limit. */
	if (c->upstream_concurrency.initial != 0)
		c->adaptive = sg_adaptive_for(c->name, &c->upstream_concurrency);
	return c;
}

static void
free_op(struct sg_operation *op)
{
	free(op->name);
	free(op->description);
	free(op->method);
	free(op->path);
	free(op->data_domain);
	free(op->reported_weight);
	free(op->failover);
	sg_schema_free(op->input);
	sg_schema_free(op->output);
	json_decref(op->examples);
}

void
sg_connector_free(struct sg_connector *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_ops; i++)
		free_op(&c->ops[i]);
	free(c->ops);
	free(c->name);
	free(c->version);
	free(c->description);
	free(c->auth);
	free(c->sandbox.base_url);
	free(c->live.base_url);
	sg_cu_free(c);
	sg_egress_list_free(c->egress_allow);
	free(c->source);
	free(c);
}

static int
op_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sg_operation *)elem)->name);
}

const struct sg_operation *
sg_connector_op(const struct sg_connector *c, const char *name)
{
	if (c == NULL || name == NULL || c->n_ops == 0)
		return NULL;
	return bsearch(name, c->ops, c->n_ops, sizeof(*c->ops), op_key_cmp);
}
