/*
 * sg_template: one workflow template (templates/NAME/template.yaml with
 * main.lua beside it), parsed and checked against the catalog.  Immutable
 * once loaded; owned by the definitions that hold it.
 *
 *   kind: template
 *   name: onboard-contact
 *   version: 1.0.0
 *   description: Create a contact, then send a welcome email.
 *   input: { type: object, required: [email], properties: { ... } }
 *   capabilities: ["crm.create_contact", "mail.send"]   # all it may call
 *   limits:                # each optional; the defaults are below
 *     wall_time: 2s        # 1ms .. 60s
 *     cpu_time: 1s         # 1ms .. 60s
 *     memory: 32MiB        # 1MiB .. 1GiB
 *     instructions: 10000000
 *     calls: 20            # ctx.call() per run
 */
#ifndef SG_TEMPLATE_H
#define SG_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/sg_catalog.h"
#include "core/sg_diag.h"
#include "schema/sg_schema.h"

#define SG_TEMPLATE_MAX_CAPS 64
#define SG_TEMPLATE_MAX_SOURCE (256 * 1024)

struct sg_template_limits {
	uint32_t wall_ms;
	uint32_t cpu_ms;
	uint64_t memory_bytes;
	uint64_t instructions;
	uint32_t calls;
};

struct sg_template {
	char *name;
	char *version;
	char *description;
	struct sg_schema *input;
	/* What the template may call; the operations belong to the catalog it was checked against.
	 */
	char **capabilities; /* "connector.operation" */
	const struct sg_operation **ops;
	size_t n_caps;
	struct sg_template_limits limits;
	char *source; /* main.lua */
	size_t source_len;
};

/*
 * Parses a manifest and its main.lua.  Every problem goes to `d` with file,
 * line and column: the manifest's fields, Lua that does not compile (at
 * its line in main.lua), capabilities the catalog does not have (with a
 * "did you mean").  Returns NULL when there was any.
 */
struct sg_template *sg_template_parse(const char *file, const char *text, size_t len,
                                      const char *lua_file, const char *lua, size_t lua_len,
                                      const struct sg_catalog *cat, struct sg_diags *d);
void sg_template_free(struct sg_template *t);

/* The operation `capability` names when the template declares it, else NULL. */
const struct sg_operation *sg_template_capability(const struct sg_template *t,
                                                  const char *capability);

#endif
