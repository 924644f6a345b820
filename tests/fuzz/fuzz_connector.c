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
	sg_connector_free(c);
	sg_diags_free(&d);
	return 0;
}
