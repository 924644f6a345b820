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

struct sg_egress_list;

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
	/* Another connector that serves this operation with the same schemas, or NULL. */
	char *failover;
	struct sg_schema *input;
	struct sg_schema *output;
	json_t *examples; /* array of example outputs, or NULL */
	size_t index;     /* position in the catalog's flat operation list */
};

struct sg_environment {
	bool simulator;      /* served by the built-in simulator */
	char *base_url;      /* upstream base URL without a trailing '/', or NULL */
	uint32_t latency_ms; /* simulator only: how long each answer takes */
	/* PEM bundle of private CAs this upstream's certificate chains to; NULL: the system's. */
	char *ca_bundle;
	uint32_t connect_timeout_ms; /* default 2000 */
	uint32_t timeout_ms;         /* the whole exchange, default 10000 */
	/*
	 * "host:port:address" pins (curl's CURLOPT_RESOLVE), so a test can
	 * give a name an address without outside DNS.  The egress guard still
	 * checks the pinned address.
	 */
	char **resolve;
	size_t n_resolve;
};

enum sg_auth_scheme {
	SG_AUTH_NONE,
	SG_AUTH_BEARER,  /* Authorization: Bearer SECRET */
	SG_AUTH_API_KEY, /* a header (default X-API-Key) or a query parameter */
	SG_AUTH_BASIC,   /* SECRET is "user:password" */
	SG_AUTH_OAUTH2,  /* client credentials; SECRET is "client_id:client_secret" */
};

struct sg_auth_def {
	enum sg_auth_scheme scheme;
	bool in_query;   /* api_key: sent as a query parameter instead of a header */
	char *name;      /* api_key: the header or parameter name */
	char *token_url; /* oauth2: the token endpoint */
	char *scope;     /* oauth2: optional */
};

struct sg_connector {
	char *name;    /* "crm": [a-z][a-z0-9_-]{0,63} */
	char *version; /* semantic version "1.2.0" */
	char *description;
	char *auth; /* none | bearer | api_key | basic | oauth2: the scheme's name */
	struct sg_auth_def auth_def;
	struct sg_environment sandbox;
	struct sg_environment live;
	bool simulator_only;   /* never reaches a real upstream, in any mode */
	uint32_t max_redirects; /* 0 (default): redirects are refused; at most 3 */
	size_t max_response;   /* bytes; default 8 MiB */
	/* Caller headers passed to the upstream (lower case); no other caller header ever is. */
	char **forward_headers;
	size_t n_forward_headers;
	/* Hosts and CIDRs this connector may reach although the egress guard denies them. */
	struct sg_egress_list *egress_allow; /* NULL: none */
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
