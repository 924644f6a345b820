/*
 * sg_connector_upstream: the parts of a connector definition that only a
 * real upstream call reads (TLS, timeouts, pinned addresses, redirects,
 * response cap, forwarded headers, the auth scheme's details, failover).
 * Internal to src/catalog: sg_connector.c calls these while it walks the
 * document, and each reports its own errors to `d` at the node.
 */
#ifndef SG_CONNECTOR_UPSTREAM_H
#define SG_CONNECTOR_UPSTREAM_H

#include <libfyaml.h>

#include "catalog/sg_connector.h"
#include "core/sg_diag.h"

#define SG_CU_MAX_FORWARD 16
#define SG_CU_MAX_RESOLVE 16

/*
 * Checks base_url (already known to start with http:// or https://) and
 * returns a copy without one trailing '/', or NULL after reporting at `n`
 * (userinfo, a query, a fragment or no host).  `env_name` is "sandbox" or
 * "live".
 */
char *sg_cu_base_url(struct sg_diags *d, const char *file, struct fy_node *n, const char *env_name,
                     const char *url);
/* ca_bundle, connect_timeout, timeout and resolve of one environment; defaults when absent. */
void sg_cu_env(struct sg_diags *d, const char *file, struct fy_node *n, const char *env_name,
               struct sg_environment *env);
/* `auth:` as a scheme name or a mapping; fills c->auth and c->auth_def. */
void sg_cu_auth(struct sg_diags *d, const char *file, struct fy_node *root, struct sg_connector *c);
/*
 * simulator_only, redirects, max_response and forward_headers.  Runs after
 * the environments and auth are parsed: simulator_only and forward_headers
 * are checked against them.
 */
void sg_cu_top(struct sg_diags *d, const char *file, struct fy_node *root, struct sg_connector *c);
/* An operation's failover: a connector's name (checked to exist later, at snapshot build). */
void sg_cu_failover(struct sg_diags *d, const char *file, struct fy_node *op_node,
                    const struct sg_connector *c, struct sg_operation *op);
/* Frees what the functions above stored in `c` (not the operations' failover). */
void sg_cu_free(struct sg_connector *c);

#endif
