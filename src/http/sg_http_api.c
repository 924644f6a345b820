/*
 * The caller's read-only view of what they may call (catalog).  Like usage
 * (sg_http_usage.c), it identifies the caller first and shows only what
 * the policy lets them use.
 */
#include "http/sg_http.h"
#include "path/sg_path.h"
#include "catalog/sg_template.h"
#include "schema/sg_schema.h"

json_t *
sg_http_principal_json(const struct sg_req *r)
{
	const struct sg_key_entry *k = r->principal.key;
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key_id", k->id, "tenant", k->tenant,
	                      "user", k->user, "role", k->role, "mode", sg_mode_name(k->mode));
	if (p && k->expires_at)
		json_object_set_new(p, "expires_at", json_integer(k->expires_at));
	return p;
}

static json_t *
operation_json(const struct sg_operation *op)
{
	return json_pack("{s:s, s:s?, s:s, s:s, s:f, s:i, s:b, s:O, s:O}", "name", op->name,
	                 "description", op->description, "method", op->method, "data_domain",
	                 op->data_domain, "cost", op->cost, "weight", (int)op->weight, "idempotent",
	                 op->idempotent, "input", sg_schema_json(op->input), "output",
	                 sg_schema_json(op->output));
}

/* The connector with only the operations this caller may use, or NULL if none. */
static json_t *
connector_json(const struct sg_req *r, const struct sg_connector *c)
{
	json_t *ops = json_array();
	for (size_t i = 0; i < c->n_ops; i++)
		if (sg_role_allows(r->principal.role, r->principal.mode, &c->ops[i]))
			json_array_append_new(ops, operation_json(&c->ops[i]));
	if (json_array_size(ops) == 0) {
		json_decref(ops);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s?, s:o}", "name", c->name, "version", c->version,
	                 "description", c->description, "operations", ops);
}

/* A template this caller may run: its role may call every operation it declares. */
static json_t *
template_json(const struct sg_req *r, const struct sg_template *t)
{
	json_t *caps = json_array();
	for (size_t i = 0; i < t->n_caps; i++) {
		if (!sg_role_allows(r->principal.role, r->principal.mode, t->ops[i])) {
			json_decref(caps);
			return NULL;
		}
		json_array_append_new(caps, json_string(t->capabilities[i]));
	}
	const struct sg_template_limits *l = &t->limits;
	return json_pack("{s:s, s:s, s:s?, s:O, s:o, s:{s:i, s:i, s:I, s:I, s:i}}", "name", t->name,
	                 "version", t->version, "description", t->description, "input",
	                 sg_schema_json(t->input), "capabilities", caps, "limits", "wall_time_ms",
	                 (int)l->wall_ms, "cpu_time_ms", (int)l->cpu_ms, "memory_bytes",
	                 (json_int_t)l->memory_bytes, "instructions", (json_int_t)l->instructions,
	                 "calls", (int)l->calls);
}

void
sg_http_catalog(struct sg_http_ctx *c)
{
	struct sg_req *r = &c->req_state;
	if (sg_http_identify_or_reply(c, r) != 0)
		return;
	const struct sg_catalog *cat = r->snap->defs->catalog;
	json_t *list = json_array();
	for (size_t i = 0; i < cat->n; i++) {
		json_t *cj = connector_json(r, cat->v[i]);
		if (cj)
			json_array_append_new(list, cj);
	}
	const struct sg_defs *defs = r->snap->defs;
	json_t *templates = json_array();
	for (size_t i = 0; i < defs->n_templates; i++) {
		json_t *tj = template_json(r, defs->templates[i]);
		if (tj)
			json_array_append_new(templates, tj);
	}
	json_t *body = json_pack("{s:o, s:o, s:o}", "principal", sg_http_principal_json(r),
	                         "connectors", list, "templates", templates);
	sg_http_send_json(c, 200, body, "application/json");
}
