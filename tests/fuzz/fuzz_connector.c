/*
 * fuzz_connector: connector definitions end to end: YAML, schema compile,
 * example validation and the simulator's apply-time sample.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_diags d = {0};
	struct sg_connector *c = sg_connector_parse("fuzz.yaml", (const char *)data, size, 42, &d);
	if ((c != NULL) != (d.n == 0))
		abort();
	/* A loaded connector keeps its promises: sorted, findable operations. */
	for (size_t i = 0; c != NULL && i < c->n_ops; i++) {
		if (sg_connector_op(c, c->ops[i].name) != &c->ops[i])
			abort();
		if (c->ops[i].weight < 1 || c->ops[i].weight > 1000 || !(c->ops[i].cost >= 0))
			abort();
	}
	if (c != NULL && (c->source == NULL || memcmp(c->source, data, size) != 0))
		abort();
	/* The live-call settings stay within what the loader promises. */
	const struct sg_environment *envs[] = {c ? &c->sandbox : NULL, c ? &c->live : NULL};
	for (int i = 0; c != NULL && i < 2; i++) {
		const struct sg_environment *e = envs[i];
		if (e->timeout_ms < e->connect_timeout_ms || e->connect_timeout_ms < 1 ||
		    e->timeout_ms > 300000 || (e->base_url == NULL && e->n_resolve != 0) ||
		    (e->base_url && strpbrk(e->base_url, "?#")))
			abort();
		if (c->simulator_only && !e->simulator)
			abort();
	}
	if (c != NULL && (c->max_redirects > 3 || c->max_response < 1024 ||
	                  c->max_response > (64u << 20) || c->auth == NULL))
		abort();
	for (size_t i = 0; c != NULL && i < c->n_forward_headers; i++)
		for (const char *p = c->forward_headers[i]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
	sg_connector_free(c);
	sg_diags_free(&d);
	return 0;
}
