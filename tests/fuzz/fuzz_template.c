/*
 * fuzz_template: template manifests and their Lua, checked against a
 * small fixed catalog.  An input holding "\n#--\n" is split into the
 * manifest and main.lua; otherwise the whole input is the manifest and
 * main.lua is a trivial script.  The Lua is compiled, never run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char connector[] =
    "kind: connector\nname: crm\nversion: 1.0.0\ndescription: Fuzz.\n"
    "environments: { sandbox: { simulator: true }, live: { simulator: true } }\n"
    "operations:\n"
    "  create_contact: { method: POST, path: /x, data_domain: pii, input: { type: object }, "
    "output: { type: object }, examples: [{}] }\n";

static struct sg_catalog *
catalog(void)
{
	static struct sg_catalog *cat;
	struct sg_diags d = {0};
	if (cat != NULL)
		return cat;
	struct sg_connector *c =
	    sg_connector_parse("crm.yaml", connector, strlen(connector), 1, &d);
	if (c == NULL || (cat = sg_catalog_new(&c, 1)) == NULL)
		abort();
	return cat; /* kept for the process's life */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char lua[] = "function run(input, ctx) return {} end\n";
	const char *text = (const char *)data;
	const char *split = memmem(text, size, "\n#--\n", 5);
	size_t mlen = split ? (size_t)(split - text) + 1 : size;
	const char *src = split ? split + 5 : lua;
	size_t slen = split ? size - mlen - 4 : strlen(lua);
	struct sg_diags d = {0};
	struct sg_template *t =
	    sg_template_parse("t.yaml", text, mlen, "main.lua", src, slen, catalog(), &d);
	if ((t != NULL) != (d.n == 0))
		abort();
	/* A loaded template can only reach operations the catalog has. */
	for (size_t i = 0; t != NULL && i < t->n_caps; i++)
		if (t->ops[i] == NULL || sg_template_capability(t, t->capabilities[i]) != t->ops[i])
			abort();
	sg_template_free(t);
	sg_diags_free(&d);
	return 0;
}
