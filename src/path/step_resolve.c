/*
 * resolve: which connector and operation the URL names, from the pinned
 * snapshot.  Names that do not exist get a "did you mean" from the names
 * the caller could have meant.
 */
#include <stdlib.h>

#include "path/sg_path.h"

static void
hint_connector(struct sg_req *r, char *out, size_t n)
{
	const struct sg_catalog *cat = r->snap->defs->catalog;
	const char **names = calloc(cat->n ? cat->n : 1, sizeof(*names));
	out[0] = '\0';
	if (names == NULL)
		return;
	for (size_t i = 0; i < cat->n; i++)
		names[i] = cat->v[i]->name;
	const char *best = sg_did_you_mean(r->connector_name, names, cat->n);
	if (best)
		snprintf(out, n, " (did you mean \"%s\"?)", best);
	free(names);
}

static void
hint_operation(struct sg_req *r, char *out, size_t n)
{
	const struct sg_connector *c = r->connector;
	const char **names = calloc(c->n_ops ? c->n_ops : 1, sizeof(*names));
	out[0] = '\0';
	if (names == NULL)
		return;
	for (size_t i = 0; i < c->n_ops; i++)
		names[i] = c->ops[i].name;
	const char *best = sg_did_you_mean(r->operation_name, names, c->n_ops);
	if (best)
		snprintf(out, n, " (did you mean \"%s\"?)", best);
	free(names);
}

enum sg_step_rc
sg_step_resolve(struct sg_req *r)
{
	char hint[96];
	r->connector = sg_catalog_find(r->snap->defs->catalog, r->connector_name);
	if (r->connector == NULL) {
		hint_connector(r, hint, sizeof(hint));
		return sg_req_fail(r, SG_P_CONNECTOR_NOT_FOUND, "there is no connector \"%.64s\"%s",
		    r->connector_name, hint);
	}
	r->op = sg_connector_op(r->connector, r->operation_name);
	if (r->op == NULL) {
		hint_operation(r, hint, sizeof(hint));
		return sg_req_fail(r, SG_P_OPERATION_NOT_FOUND,
		    "connector \"%s\" has no operation \"%.64s\"%s", r->connector->name,
		    r->operation_name, hint);
	}
	return SG_STEP_NEXT;
}
