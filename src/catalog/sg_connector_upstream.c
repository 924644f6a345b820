/*
 * sg_connector_upstream: what a live call needs from connectors/NAME.yaml
 * beyond the simulator's view.  Only syntax is checked here: a ca_bundle
 * path is not opened, because `sandgate apply` may run on another host
 * than the gateway that reads the file; a failover target's existence is
 * checked when the snapshot is built, where every connector is known.
 */
#include "catalog/sg_connector_upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/sg_config.h"
#include "core/sg_name.h"
#include "core/sg_yaml.h"
#include "upstream/sg_upreq.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define URL_MAX_LEN 2048
#define PATH_MAX_LEN 4096
#define HEADER_NAME_MAX 64
#define SCOPE_MAX 512
#define CONNECT_TIMEOUT_DEFAULT_MS 2000
#define TIMEOUT_DEFAULT_MS 10000
#define MAX_RESPONSE_DEFAULT (8u << 20)

static const char *const auth_names[] = {"none", "bearer", "api_key", "basic", "oauth2"};

static char *
dup_or_report(struct sg_diags *d, const char *file, const char *s)
{
	char *copy = strdup(s);
	if (copy == NULL)
		sg_diags_add(d, file, 0, 0, "out of memory");
	return copy;
}

char *
sg_cu_base_url(struct sg_diags *d, const char *file, struct fy_node *n, const char *env_name,
               const char *url)
{
	const char *host = strstr(url, "://") + 3;
	size_t hlen = strcspn(host, "/?#");
	const char *why = NULL;
	if (hlen == 0)
		why = "expected a host after the scheme, such as https://api.example.com/v1";
	else if (memchr(host, '@', hlen))
		why = "remove the user name and password (user:pass@): the connector's credential "
		      "is stored with `sandgate secrets set CONNECTOR` and sent as auth: says";
	else if (strchr(url, '?'))
		why = "remove the query ('?...'): a call's input becomes the query string; a fixed "
		      "value belongs in the path";
	else if (strchr(url, '#'))
		why = "remove the fragment ('#...'): it is never sent to a server";
	if (why) {
		sg_yaml_error(d, file, n, "environments.%s.base_url: %s", env_name, why);
		return NULL;
	}
	char *copy = dup_or_report(d, file, url);
	size_t len = copy ? strlen(copy) : 0;
	/* Operation paths start with '/'; one slash between the two is enough. */
	if (len > (size_t)(host - url) + hlen && copy[len - 1] == '/')
		copy[len - 1] = '\0';
	return copy;
}

/* A duration within [min_ms, max_ms] at `key` of `n`; 0 when absent, -1 after an error. */
static int
get_duration(struct sg_diags *d, const char *file, struct fy_node *n, const char *what,
             uint64_t max_ms, const char *example, uint32_t *out)
{
	struct fy_node *v = sg_yaml_get(n, strrchr(what, '.') + 1);
	uint64_t ms;
	if (v == NULL)
		return 0;
	const char *s = sg_yaml_str(d, file, v, what);
	if (s == NULL)
		return -1;
	if (sg_duration_parse_ms(s, &ms) != 0 || ms < 1 || ms > max_ms) {
		sg_yaml_error(d, file, v,
		              "%s: expected a duration from 1ms to %llus such as %s, got \"%.40s\"",
		              what, (unsigned long long)(max_ms / 1000), example, s);
		return -1;
	}
	*out = (uint32_t)ms;
	return 0;
}

static bool
valid_host(const char *h, size_t n)
{
	if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
			return false;
	return true;
}

/* curl's "host:port:address" with one IP literal, IPv6 in brackets. */
static bool
valid_resolve(const char *s)
{
	const char *c1 = strchr(s, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	unsigned char buf[16];
	char addr[64];
	if (c2 == NULL || !valid_host(s, (size_t)(c1 - s)))
		return false;
	size_t plen = (size_t)(c2 - c1 - 1);
	if (plen == 0 || plen > 5 || strspn(c1 + 1, "0123456789") != plen)
		return false;
	long port = strtol(c1 + 1, NULL, 10);
	const char *a = c2 + 1;
	size_t alen = strlen(a);
	if (port < 1 || port > 65535 || alen == 0 || alen >= sizeof(addr))
		return false;
	if (a[0] == '[') {
		if (alen < 3 || a[alen - 1] != ']')
			return false;
		memcpy(addr, a + 1, alen - 2);
		addr[alen - 2] = '\0';
		return inet_pton(AF_INET6, addr, buf) == 1;
	}
	return inet_pton(AF_INET, a, buf) == 1;
}

static void
parse_resolve(struct sg_diags *d, const char *file, struct fy_node *v, const char *what,
              struct sg_environment *env)
{
	int n = fy_node_is_sequence(v) ? fy_node_sequence_item_count(v) : -1;
	if (n < 1 || n > SG_CU_MAX_RESOLVE) {
		sg_yaml_error(d, file, v,
		              "%s: expected a list of 1 to %d pins such as "
		              "[\"api.example.test:443:127.0.0.1\"]",
		              what, SG_CU_MAX_RESOLVE);
		return;
	}
	env->resolve = calloc((size_t)n, sizeof(*env->resolve));
	if (env->resolve == NULL) {
		sg_diags_add(d, file, 0, 0, "out of memory");
		return;
	}
	for (int i = 0; i < n; i++) {
		struct fy_node *item = fy_node_sequence_get_by_index(v, i);
		const char *s = sg_yaml_str(d, file, item, what);
		if (s == NULL)
			continue;
		if (!valid_resolve(s)) {
			sg_yaml_error(
			    d, file, item,
			    "%s: expected HOST:PORT:ADDRESS with an IP address, such as "
			    "api.example.test:443:127.0.0.1 or api.example.test:443:[::1], "
			    "got \"%.80s\"",
			    what, s);
			continue;
		}
		if ((env->resolve[env->n_resolve] = dup_or_report(d, file, s)) != NULL)
			env->n_resolve++;
	}
}

static void
parse_ca_bundle(struct sg_diags *d, const char *file, struct fy_node *v, const char *what,
                struct sg_environment *env)
{
	const char *s = sg_yaml_str(d, file, v, what);
	if (s == NULL)
		return;
	/* Relative to what?  apply and serve may run in different directories. */
	if (s[0] != '/' || strlen(s) > PATH_MAX_LEN || strpbrk(s, "\r\n")) {
		sg_yaml_error(d, file, v,
		              "%s: expected an absolute path to a PEM file, such as "
		              "/etc/sandgate/ca/crm.pem, got \"%.60s\"",
		              what, s);
		return;
	}
	env->ca_bundle = dup_or_report(d, file, s);
}

static const char *const upstream_env_keys[] = {"ca_bundle", "connect_timeout", "timeout",
                                                "resolve"};

void
sg_cu_env(struct sg_diags *d, const char *file, struct fy_node *n, const char *env_name,
          struct sg_environment *env)
{
	char what[80];
	env->connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
	env->timeout_ms = TIMEOUT_DEFAULT_MS;
	if (env->base_url == NULL) {
		for (size_t i = 0; i < COUNT(upstream_env_keys); i++) {
			struct fy_node *v = sg_yaml_get(n, upstream_env_keys[i]);
			if (v != NULL && env->simulator)
				sg_yaml_error(
				    d, file, v,
				    "environments.%s.%s: only a real upstream (base_url) "
				    "takes %s; the simulator makes no connection: remove it",
				    env_name, upstream_env_keys[i], upstream_env_keys[i]);
		}
		return;
	}
	snprintf(what, sizeof(what), "environments.%s.connect_timeout", env_name);
	int rc = get_duration(d, file, n, what, 60000, "2s", &env->connect_timeout_ms);
	snprintf(what, sizeof(what), "environments.%s.timeout", env_name);
	if (get_duration(d, file, n, what, 300000, "10s", &env->timeout_ms) == 0 && rc == 0 &&
	    env->timeout_ms < env->connect_timeout_ms)
		sg_yaml_error(
		    d, file, sg_yaml_get(n, "timeout") ? sg_yaml_get(n, "timeout") : n,
		    "%s (%u ms) is shorter than connect_timeout (%u ms): the whole "
		    "exchange includes the connect; raise timeout or lower connect_timeout",
		    what, env->timeout_ms, env->connect_timeout_ms);
	struct fy_node *v;
	snprintf(what, sizeof(what), "environments.%s.ca_bundle", env_name);
	if ((v = sg_yaml_get(n, "ca_bundle")) != NULL)
		parse_ca_bundle(d, file, v, what, env);
	snprintf(what, sizeof(what), "environments.%s.resolve", env_name);
	if ((v = sg_yaml_get(n, "resolve")) != NULL)
		parse_resolve(d, file, v, what, env);
}

static bool
is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool
valid_header_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* A query parameter's name: RFC 3986 unreserved characters, so it needs no encoding. */
static bool
valid_param_name(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= HEADER_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") == n;
}

static bool
valid_token_url(const char *s)
{
	size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
	return skip != 0 && strlen(s) <= URL_MAX_LEN && strcspn(s + skip, "/?#") > 0 &&
	       !strpbrk(s, " \t\r\n#") && !memchr(s + skip, '@', strcspn(s + skip, "/?#"));
}

/* A token endpoint on this machine: the only place plain http may carry the client secret. */
static bool
loopback_url(const char *url)
{
	static const char *const hosts[] = {"127.0.0.1", "[::1]", "localhost"};
	const char *h = url + 7;
	size_t n = strcspn(h, ":/?");
	if (h[0] == '[')
		n = strcspn(h, "]") + 1;
	for (size_t i = 0; i < COUNT(hosts); i++)
		if (n == strlen(hosts[i]) && strncmp(h, hosts[i], n) == 0)
			return true;
	return false;
}

static enum sg_auth_scheme
scheme_of(const char *name)
{
	for (size_t i = 0; i < COUNT(auth_names); i++)
		if (strcmp(name, auth_names[i]) == 0)
			return (enum sg_auth_scheme)i;
	return (enum sg_auth_scheme) - 1;
}

/* A key of the auth mapping that belongs to one scheme only. */
static const char *
auth_key_str(struct sg_diags *d, const char *file, struct fy_node *n, const char *key,
             enum sg_auth_scheme want, enum sg_auth_scheme have)
{
	struct fy_node *v = sg_yaml_get(n, key);
	char what[32];
	if (v == NULL)
		return NULL;
	if (want != have) {
		sg_yaml_error(d, file, v, "auth.%s: applies only to scheme: %s; remove it", key,
		              auth_names[want]);
		return NULL;
	}
	snprintf(what, sizeof(what), "auth.%s", key);
	return sg_yaml_str(d, file, v, what);
}

static void
auth_api_key(struct sg_diags *d, const char *file, struct fy_node *n, struct sg_connector *c)
{
	struct sg_auth_def *a = &c->auth_def;
	const char *in = auth_key_str(d, file, n, "in", SG_AUTH_API_KEY, a->scheme);
	const char *name = auth_key_str(d, file, n, "name", SG_AUTH_API_KEY, a->scheme);
	if (in && strcmp(in, "header") != 0 && strcmp(in, "query") != 0) {
		sg_yaml_error(d, file, sg_yaml_get(n, "in"),
		              "auth.in: expected header or query, got \"%.40s\"", in);
		return;
	}
	a->in_query = in && strcmp(in, "query") == 0;
	if (a->in_query && name == NULL && sg_yaml_get(n, "name") == NULL) {
		sg_yaml_error(d, file, n,
		              "auth: in: query needs the parameter's name: add name: api_key "
		              "(or what the upstream expects)");
		return;
	}
	if (name && (a->in_query ? !valid_param_name(name) : !valid_header_name(name))) {
		sg_yaml_error(d, file, sg_yaml_get(n, "name"),
		              a->in_query
		                  ? "auth.name: expected a query parameter name of letters, "
		                    "digits, '-', '.', '_' or '~', got \"%.40s\""
		                  : "auth.name: expected a header name such as X-API-Key, "
		                    "got \"%.40s\"",
		              name);
		return;
	}
	if (name || !a->in_query)
		a->name = dup_or_report(d, file, name ? name : "X-API-Key");
}

static void
auth_oauth2(struct sg_diags *d, const char *file, struct fy_node *n, struct sg_connector *c)
{
	struct sg_auth_def *a = &c->auth_def;
	const char *url = auth_key_str(d, file, n, "token_url", SG_AUTH_OAUTH2, a->scheme);
	const char *scope = auth_key_str(d, file, n, "scope", SG_AUTH_OAUTH2, a->scheme);
	if (a->scheme != SG_AUTH_OAUTH2)
		return;
	if (url == NULL && sg_yaml_get(n, "token_url") == NULL)
		sg_yaml_error(d, file, n,
		              "auth: scheme oauth2 needs the token endpoint: add token_url: "
		              "\"https://...\"");
	else if (url && !valid_token_url(url))
		sg_yaml_error(d, file, sg_yaml_get(n, "token_url"),
		              "auth.token_url: expected an http:// or https:// URL with a host and "
		              "no user name, spaces or fragment, got \"%.60s\"",
		              url);
	else if (url && strncmp(url, "http://", 7) == 0 && !loopback_url(url))
		sg_yaml_error(d, file, sg_yaml_get(n, "token_url"),
		              "auth.token_url: the client secret is sent there, so it must be "
		              "https:// (plain http:// is allowed only to 127.0.0.1, [::1] or "
		              "localhost), got \"%.60s\"",
		              url);
	else if (url)
		a->token_url = dup_or_report(d, file, url);
	if (scope && (strlen(scope) > SCOPE_MAX || strpbrk(scope, "\r\n\t")))
		sg_yaml_error(d, file, sg_yaml_get(n, "scope"),
		              "auth.scope: expected scope names separated by spaces (up to %d "
		              "characters, one line)",
		              SCOPE_MAX);
	else if (scope)
		a->scope = dup_or_report(d, file, scope);
}

static void
auth_mapping(struct sg_diags *d, const char *file, struct fy_node *n, struct sg_connector *c)
{
	static const char *const keys[] = {"scheme", "in", "name", "token_url", "scope"};
	if (sg_yaml_check_keys(d, file, n, "auth", keys, COUNT(keys)) != 0)
		return;
	struct fy_node *s = sg_yaml_get(n, "scheme");
	const char *scheme = s ? sg_yaml_str(d, file, s, "auth.scheme") : NULL;
	if (s == NULL)
		sg_yaml_error(d, file, n,
		              "auth: missing key \"scheme\": add scheme: none, bearer, api_key, "
		              "basic or oauth2");
	if (scheme == NULL)
		return;
	if ((int)scheme_of(scheme) < 0) {
		sg_yaml_error(d, file, s,
		              "auth.scheme: expected none, bearer, api_key, basic or oauth2, got "
		              "\"%.40s\"",
		              scheme);
		return;
	}
	c->auth_def.scheme = scheme_of(scheme);
	c->auth = dup_or_report(d, file, scheme);
	auth_api_key(d, file, n, c);
	auth_oauth2(d, file, n, c);
}

void
sg_cu_auth(struct sg_diags *d, const char *file, struct fy_node *root, struct sg_connector *c)
{
	struct fy_node *n = sg_yaml_get(root, "auth");
	const char *auth = "none";
	if (n != NULL && fy_node_is_mapping(n)) {
		auth_mapping(d, file, n, c);
	} else if (n != NULL) {
		if ((auth = sg_yaml_str(d, file, n, "auth")) == NULL)
			return;
		if ((int)scheme_of(auth) < 0) {
			sg_yaml_error(d, file, n,
			              "auth: expected none, bearer, api_key, basic or oauth2, got "
			              "\"%.40s\"",
			              auth);
			return;
		}
		if (scheme_of(auth) == SG_AUTH_OAUTH2) {
			sg_yaml_error(
			    d, file, n,
			    "auth: oauth2 needs the token endpoint: write auth: { scheme: "
			    "oauth2, token_url: \"https://...\" }");
			return;
		}
	}
	if (c->auth != NULL)
		return;
	c->auth_def.scheme = scheme_of(auth);
	c->auth = dup_or_report(d, file, auth);
	if (c->auth_def.scheme == SG_AUTH_API_KEY)
		c->auth_def.name = dup_or_report(d, file, "X-API-Key");
}

/* "8MiB", "512KiB", "1048576B" or plain bytes. */
static void
parse_max_response(struct sg_diags *d, const char *file, struct fy_node *v, struct sg_connector *c)
{
	const char *s = sg_yaml_str(d, file, v, "max_response");
	char buf[32];
	uint64_t bytes = 0;
	if (s == NULL)
		return;
	size_t n = strlen(s);
	if (n > 1 && n < sizeof(buf) && s[n - 1] == 'B' && s[n - 2] >= '0' && s[n - 2] <= '9') {
		memcpy(buf, s, n - 1);
		buf[n - 1] = '\0';
	} else {
		snprintf(buf, sizeof(buf), "%s", n < sizeof(buf) ? s : "x");
	}
	if (sg_bytes_parse(buf, &bytes) != 0 || bytes < 1024 || bytes > (64u << 20)) {
		sg_yaml_error(d, file, v,
		              "max_response: expected a size from 1KiB to 64MiB such as 8MiB or "
		              "512KiB, got \"%.40s\"",
		              s);
		return;
	}
	c->max_response = (size_t)bytes;
}

static void
forward_one(struct sg_diags *d, const char *file, struct fy_node *item, struct sg_connector *c)
{
	const char *s = sg_yaml_str(d, file, item, "forward_headers");
	char lower[HEADER_NAME_MAX + 1];
	if (s == NULL)
		return;
	if (!valid_header_name(s)) {
		sg_yaml_error(d, file, item,
		              "forward_headers: expected a header name such as X-Request-Id, got "
		              "\"%.40s\"",
		              s);
		return;
	}
	size_t n = strlen(s);
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)s[i]);
	const char *why = sg_upreq_forward_refusal(lower);
	if (why == NULL && c->auth_def.scheme == SG_AUTH_API_KEY && !c->auth_def.in_query &&
	    c->auth_def.name && strcasecmp(c->auth_def.name, lower) == 0)
		why = "the connector's own credential goes in it (auth.name)";
	for (size_t i = 0; why == NULL && i < c->n_forward_headers; i++)
		if (strcmp(c->forward_headers[i], lower) == 0)
			why = "it is listed twice";
	if (why != NULL) {
		sg_yaml_error(d, file, item,
		              "forward_headers: \"%s\" cannot be forwarded: %s; remove it from the "
		              "list",
		              s, why);
		return;
	}
	if ((c->forward_headers[c->n_forward_headers] = dup_or_report(d, file, lower)) != NULL)
		c->n_forward_headers++;
}

static void
parse_forward(struct sg_diags *d, const char *file, struct fy_node *v, struct sg_connector *c)
{
	int n = fy_node_is_sequence(v) ? fy_node_sequence_item_count(v) : -1;
	if (n < 0 || n > SG_CU_MAX_FORWARD) {
		sg_yaml_error(d, file, v,
		              "forward_headers: expected a list of up to %d header names such as "
		              "[X-Request-Id]",
		              SG_CU_MAX_FORWARD);
		return;
	}
	if (n == 0 || (c->forward_headers = calloc((size_t)n, sizeof(char *))) == NULL) {
		if (n != 0)
			sg_diags_add(d, file, 0, 0, "out of memory");
		return;
	}
	for (int i = 0; i < n; i++)
		forward_one(d, file, fy_node_sequence_get_by_index(v, i), c);
}

/* simulator_only promises no real upstream, so a base_url in either environment breaks it. */
static void
check_simulator_only(struct sg_diags *d, const char *file, struct fy_node *root,
                     const struct sg_connector *c)
{
	static const char *const names[] = {"sandbox", "live"};
	const struct sg_environment *envs[] = {&c->sandbox, &c->live};
	struct fy_node *en = sg_yaml_get(root, "environments");
	for (int i = 0; i < 2; i++) {
		if (envs[i]->simulator || envs[i]->base_url == NULL)
			continue;
		struct fy_node *at = sg_yaml_get(sg_yaml_get(en, names[i]), "base_url");
		sg_yaml_error(
		    d, file, at ? at : root,
		    "environments.%s: simulator_only is true, so this environment must be "
		    "served by the simulator: write %s: { simulator: true }, or remove "
		    "simulator_only",
		    names[i], names[i]);
	}
}

void
sg_cu_top(struct sg_diags *d, const char *file, struct fy_node *root, struct sg_connector *c)
{
	struct fy_node *v;
	long long redirects = 0;
	c->max_response = MAX_RESPONSE_DEFAULT;
	if ((v = sg_yaml_get(root, "simulator_only")) != NULL &&
	    sg_yaml_bool(d, file, v, "simulator_only", &c->simulator_only) == 0 &&
	    c->simulator_only)
		check_simulator_only(d, file, root, c);
	if ((v = sg_yaml_get(root, "redirects")) != NULL &&
	    sg_yaml_int(d, file, v, "redirects", 0, 3, &redirects) == 0)
		c->max_redirects = (uint32_t)redirects;
	if ((v = sg_yaml_get(root, "max_response")) != NULL)
		parse_max_response(d, file, v, c);
	if ((v = sg_yaml_get(root, "forward_headers")) != NULL)
		parse_forward(d, file, v, c);
}

void
sg_cu_failover(struct sg_diags *d, const char *file, struct fy_node *op_node,
               const struct sg_connector *c, struct sg_operation *op)
{
	struct fy_node *v = sg_yaml_get(op_node, "failover");
	char what[128], why[200];
	if (v == NULL)
		return;
	snprintf(what, sizeof(what), "operation \"%.64s\": failover", op->name);
	const char *s = sg_yaml_str(d, file, v, what);
	if (s == NULL)
		return;
	if (!sg_name_valid(s))
		sg_yaml_error(d, file, v, "%s: \"%.64s\" is not a connector name: %s", what, s,
		              sg_name_why(s, why, sizeof(why)));
	else if (c->name && strcmp(s, c->name) == 0)
		sg_yaml_error(d, file, v,
		              "%s: a connector cannot fail over to itself; name another connector "
		              "that serves this operation with the same schemas",
		              what);
	else
		op->failover = dup_or_report(d, file, s);
}

static void
free_env(struct sg_environment *env)
{
	free(env->ca_bundle);
	for (size_t i = 0; i < env->n_resolve; i++)
		free(env->resolve[i]);
	free(env->resolve);
}

void
sg_cu_free(struct sg_connector *c)
{
	free_env(&c->sandbox);
	free_env(&c->live);
	free(c->auth_def.name);
	free(c->auth_def.token_url);
	free(c->auth_def.scope);
	for (size_t i = 0; i < c->n_forward_headers; i++)
		free(c->forward_headers[i]);
	free(c->forward_headers);
}
