/*
 * sg_connector: one connector definition (connectors/NAME.yaml), parsed and
 * checked.  Immutable once loaded; owned by the catalog that holds it.
 */
#ifndef SG_CONNECTOR_H
#define SG_CONNECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_diag.h"
#include "policy/sg_limit.h"
#include "throttle/sg_adaptive.h"
#include "schema/sg_schema.h"

struct sg_operation {
	char *name; /* "create_contact": [a-z][a-z0-9_]{0,63} */
	char *description;
	char *method;      /* GET, POST, PUT, PATCH, DELETE */
	char *path;        /* upstream path template, "/contacts/{id}" */
	char *data_domain; /* e.g. "pii", "public", "financial" */
	double cost;       /* price of one call in the catalog currency, >= 0 */
	uint32_t weight;   /* throttle units one call spends, >= 1 (default 1) */
	/* JSON Pointer to the units the upstream says a call used, or NULL. */
	char *reported_weight;
	bool idempotent;
	struct sg_schema *input;
	struct sg_schema *output;
	json_t *examples; /* array of example outputs, or NULL */
	size_t index;     /* position in the catalog's flat operation list */
};

struct sg_environment {
	bool simulator;      /* served by the built-in simulator */
	char *base_url;      /* upstream base URL, or NULL */
	uint32_t latency_ms; /* simulator only: how long each answer takes */
};

struct sg_connector {
	char *name;    /* "crm": [a-z][a-z0-9_-]{0,63} */
	char *version; /* semantic version "1.2.0" */
	char *description;
	char *auth; /* none | bearer | api_key | basic */
	struct sg_environment sandbox;
	struct sg_environment live;
	/* The upstream's own limit, shared by every live caller; emission_ns 0 = none. */
	struct sg_limit upstream_limit;
	/* The adaptive limit on live calls at once; initial 0 = none. */
	struct sg_adaptive_config upstream_concurrency;
	struct sg_adaptive *adaptive; /* process-wide controller, or NULL */
	struct sg_operation *ops;     /* sorted by name */
	size_t n_ops;
	size_t index; /* position in the catalog */
	char *source; /* YAML text as applied, for storage */
};

/*
 * Parses one connector document.  Every problem found is added to `d` with
 * `file`, line and column (1-based); returns NULL when there was any.
 * Operation schemas are compiled, and the simulator is asked for one sample
 * of each operation, which must satisfy the output schema.
 */
struct sg_connector *sg_connector_parse(const char *file, const char *text, size_t len,
                                        uint64_t sim_seed, struct sg_diags *d);
void sg_connector_free(struct sg_connector *c);

/* Binary search by name; NULL when absent. */
const struct sg_operation *sg_connector_op(const struct sg_connector *c, const char *name);

#endif
