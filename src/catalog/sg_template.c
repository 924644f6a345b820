/*
 * Templates are checked as completely as a connector is: the manifest's
 * every field, the input schema compiled, the Lua compiled (as text only,
 * never run), and every capability resolved against the catalog, so a
 * template that applies is one that can run.
 */
#include "catalog/sg_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_config.h"
#include "core/sg_name.h"
#include "core/sg_yaml.h"
#include "sandbox/sg_lua_env.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const top_keys[] = {
    "kind", "name", "version", "description", "input", "capabilities", "limits",
};
static const char *const limit_keys[] = {
    "wall_time", "cpu_time", "memory", "instructions", "calls",
};

struct tload {
	struct sg_template *t;
	const struct sg_catalog *cat;
	struct sg_diags *d;
	const char *file;
};

static char *
dup_str(struct tload *l, struct fy_node *n, const char *what)
{
	const char *s = n ? sg_yaml_str(l->d, l->file, n, what) : NULL;
	char *copy = s ? strdup(s) : NULL;
	if (s && copy == NULL)
		sg_yaml_error(l->d, l->file, n, "%s: out of memory", what);
	return copy;
}

static void
duration_limit(struct tload *l, struct fy_node *lim, const char *key, uint32_t *out)
{
	struct fy_node *n = sg_yaml_get(lim, key);
	char what[48];
	uint64_t ms;
	snprintf(what, sizeof(what), "limits.%s", key);
	const char *s = n ? sg_yaml_str(l->d, l->file, n, what) : NULL;
	if (s == NULL)
		return;
	if (sg_duration_parse_ms(s, &ms) != 0 || ms < 1 || ms > 60000)
		sg_yaml_error(l->d, l->file, n,
		              "%s: expected a duration from 1ms to 60s such as "
		              "2s, got \"%.40s\"",
		              what, s);
	else
		*out = (uint32_t)ms;
}

static void
parse_limits(struct tload *l, struct fy_node *lim)
{
	struct sg_template_limits *t = &l->t->limits;
	*t = (struct sg_template_limits){2000, 1000, 32u << 20, 10000000, 20};
	if (lim == NULL ||
	    (sg_yaml_check_keys(l->d, l->file, lim, "limits", limit_keys, COUNT(limit_keys)) != 0 &&
	     !fy_node_is_mapping(lim)))
		return;
	duration_limit(l, lim, "wall_time", &t->wall_ms);
	duration_limit(l, lim, "cpu_time", &t->cpu_ms);
	struct fy_node *n = sg_yaml_get(lim, "memory");
	const char *s = n ? sg_yaml_str(l->d, l->file, n, "limits.memory") : NULL;
	if (s && (sg_bytes_parse(s, &t->memory_bytes) != 0 || t->memory_bytes < (1u << 20) ||
	          t->memory_bytes > (1ull << 30)))
		sg_yaml_error(l->d, l->file, n,
		              "limits.memory: expected a size from 1MiB to 1GiB "
		              "such as 32MiB, got \"%.40s\"",
		              s);
	long long v;
	if ((n = sg_yaml_get(lim, "instructions")) &&
	    sg_yaml_int(l->d, l->file, n, "limits.instructions", 1000, 1000000000000LL, &v) == 0)
		t->instructions = (uint64_t)v;
	if ((n = sg_yaml_get(lim, "calls")) &&
	    sg_yaml_int(l->d, l->file, n, "limits.calls", 0, 1000, &v) == 0)
		t->calls = (uint32_t)v;
}

/* "crm.create_contact" → the catalog's operation, or an error with a hint. */
static const struct sg_operation *
resolve_capability(struct tload *l, struct fy_node *at, const char *cap)
{
	char conn[72];
	const char *dot = strchr(cap, '.');
	if (dot == NULL || dot == cap || (size_t)(dot - cap) >= sizeof(conn)) {
		sg_yaml_error(l->d, l->file, at,
		              "capabilities: \"%.80s\": write connector.operation, "
		              "such as crm.create_contact",
		              cap);
		return NULL;
	}
	memcpy(conn, cap, (size_t)(dot - cap));
	conn[dot - cap] = '\0';
	const struct sg_connector *c = sg_catalog_find(l->cat, conn);
	const struct sg_operation *op = c ? sg_connector_op(c, dot + 1) : NULL;
	if (op != NULL)
		return op;
	const char *names[256];
	size_t n = 0;
	for (size_t i = 0; c == NULL && i < l->cat->n && n < COUNT(names); i++)
		names[n++] = l->cat->v[i]->name;
	for (size_t i = 0; c != NULL && i < c->n_ops && n < COUNT(names); i++)
		names[n++] = c->ops[i].name;
	const char *best = sg_did_you_mean(c ? dot + 1 : conn, names, n);
	char hint[96] = "";
	if (best)
		snprintf(hint, sizeof(hint), " (did you mean \"%s%s%s\"?)", c ? conn : best,
		         c ? "." : "", c ? best : "");
	sg_yaml_error(l->d, l->file, at, "capabilities: the catalog has no %s \"%.80s\"%s",
	              c ? "operation" : "connector", c ? cap : conn, hint);
	return NULL;
}

static void
parse_capabilities(struct tload *l, struct fy_node *n)
{
	int count = n && fy_node_is_sequence(n) ? fy_node_sequence_item_count(n) : -1;
	if (count < 0 || count > SG_TEMPLATE_MAX_CAPS) {
		sg_yaml_error(l->d, l->file, n,
		              "capabilities: expected a list of up to %d operations "
		              "such as [\"crm.create_contact\"] (the only calls the template may "
		              "make)",
		              SG_TEMPLATE_MAX_CAPS);
		return;
	}
	l->t->capabilities = calloc((size_t)count + 1, sizeof(char *));
	l->t->ops = calloc((size_t)count + 1, sizeof(*l->t->ops));
	if (l->t->capabilities == NULL || l->t->ops == NULL)
		sg_yaml_error(l->d, l->file, n, "capabilities: out of memory");
	for (int i = 0; l->t->capabilities && l->t->ops && i < count; i++) {
		struct fy_node *item = fy_node_sequence_get_by_index(n, i);
		const char *cap = sg_yaml_str(l->d, l->file, item, "capabilities");
		const struct sg_operation *op = cap ? resolve_capability(l, item, cap) : NULL;
		char *copy = op ? strdup(cap) : NULL;
		if (op && copy == NULL)
			sg_yaml_error(l->d, l->file, item, "capabilities: out of memory");
		if (copy == NULL)
			continue;
		l->t->ops[l->t->n_caps] = op;
		l->t->capabilities[l->t->n_caps++] = copy;
	}
}

static void
parse_input(struct tload *l, struct fy_node *n)
{
	struct sg_schema_error err;
	json_t *j = n ? sg_yaml_to_json(l->file, n, l->d) : json_pack("{s:s}", "type", "object");
	if (j == NULL)
		return;
	l->t->input = sg_schema_compile(j, &err);
	if (l->t->input == NULL)
		sg_yaml_error(l->d, l->file, n, "input schema%s%s: %s", err.pointer[0] ? " " : "",
		              err.pointer, err.message);
	json_decref(j);
}

/* The name is in every run's URL and row: the one naming rule (sg_name.h). */
static void
check_name(struct tload *l, struct fy_node *root)
{
	struct fy_node *n = sg_yaml_get(root, "name");
	char why[200];
	if (n == NULL)
		sg_yaml_error(l->d, l->file, root, "a template needs a name: " SG_NAME_RULE);
	else if (l->t->name == NULL)
		return; /* not a string: dup_str said so */
	else if (!sg_name_valid(l->t->name))
		sg_yaml_error(l->d, l->file, n, "name \"%.64s\": %s", l->t->name,
		              sg_name_why(l->t->name, why, sizeof(why)));
}

static void
check_source(struct tload *l, const char *lua_file, const char *lua, size_t len)
{
	char msg[512];
	int line = 0;
	if (len > SG_TEMPLATE_MAX_SOURCE) {
		sg_diags_add(l->d, lua_file, 0, 0, "main.lua is larger than %d bytes",
		             SG_TEMPLATE_MAX_SOURCE);
		return;
	}
	if (sg_lua_compile_check("main.lua", lua, len, msg, sizeof(msg), &line) != 0)
		sg_diags_add(l->d, lua_file, line, 0, "%s", msg);
	l->t->source = malloc(len + 1);
	if (l->t->source) {
		memcpy(l->t->source, lua, len);
		l->t->source[len] = '\0';
		l->t->source_len = len;
	} else {
		sg_diags_add(l->d, lua_file, 0, 0, "main.lua: out of memory");
	}
}

struct sg_template *
sg_template_parse(const char *file, const char *text, size_t len, const char *lua_file,
                  const char *lua, size_t lua_len, const struct sg_catalog *cat, struct sg_diags *d)
{
	size_t before = d->n;
	struct tload l = {.cat = cat, .d = d, .file = file};
	struct fy_document *doc = sg_yaml_parse(file, text, len, d);
	struct fy_node *root = doc ? fy_document_root(doc) : NULL;
	if ((l.t = calloc(1, sizeof(*l.t))) == NULL || doc == NULL ||
	    (sg_yaml_check_keys(d, file, root, "template", top_keys, COUNT(top_keys)) != 0 &&
	     !fy_node_is_mapping(root)))
		goto out;
	l.t->name = dup_str(&l, sg_yaml_get(root, "name"), "name");
	check_name(&l, root);
	l.t->version = dup_str(&l, sg_yaml_get(root, "version"), "version");
	l.t->description = dup_str(&l, sg_yaml_get(root, "description"), "description");
	if (l.t->version == NULL || l.t->description == NULL)
		sg_yaml_error(d, file, root,
		              "a template needs a version (such as 1.0.0) and a "
		              "description for the people who will run it");
	parse_input(&l, sg_yaml_get(root, "input"));
	parse_capabilities(&l, sg_yaml_get(root, "capabilities"));
	parse_limits(&l, sg_yaml_get(root, "limits"));
	if (lua == NULL)
		sg_diags_add(d, file, 0, 0, "main.lua is missing: put it next to template.yaml");
	else
		check_source(&l, lua_file, lua, lua_len);
out:
	fy_document_destroy(doc);
	sg_yaml_sort_diags(d, before);
	if (l.t == NULL && d->n == before)
		sg_diags_add(d, file, 0, 0, "out of memory");
	if (d->n != before || l.t == NULL) {
		sg_template_free(l.t);
		return NULL;
	}
	return l.t;
}

void
sg_template_free(struct sg_template *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; t->capabilities && i < t->n_caps; i++)
		free(t->capabilities[i]);
	free(t->capabilities);
	free(t->ops);
	free(t->name);
	free(t->version);
	free(t->description);
	sg_schema_free(t->input);
	free(t->source);
	free(t);
}

const struct sg_operation *
sg_template_capability(const struct sg_template *t, const char *capability)
{
	for (size_t i = 0; i < t->n_caps; i++)
		if (strcmp(t->capabilities[i], capability) == 0)
			return t->ops[i];
	return NULL;
}
