/*
 * sg_config: sandgate.yaml.  A table of settings drives both the unknown-key
 * check and the range checks, so adding a setting is one line here plus its
 * line in examples/sandgate.yaml.
 */
#include "core/sg_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_yaml.h"
#include "policy/sg_limit.h"
#include "schema/sg_schema.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define DAY_MS 86400000LL

enum field_type {
	F_INT, F_SIZE, F_MS, F_U64, F_BOOL, F_ENUM, F_HOST, F_BYTES, F_DEVICE, F_AUDIT, F_RATE,
	F_RETENTION
};

struct field {
	const char *section; /* NULL: top level */
	const char *key;
	enum field_type type;
	long long min, max;
	size_t off;
	const char *const *choices; /* F_ENUM: the words, stored as their index (int) */
};

static const char *const backends[] = {"local", "redis", NULL};
static const char *const failure_modes[] = {"local", "deny", "allow", NULL};
static const char *const cgroup_modes[] = {"strict", "best_effort", "off", NULL};
static const char *const audit_failures[] = {"fail_closed", "fail_open", NULL};

#define GIB (1024LL * 1024 * 1024)

#define OFF(m) offsetof(struct sg_config, m), NULL
#define WORDS(m, w) offsetof(struct sg_config, m), w

static const struct field fields[] = {
    {NULL, "threads", F_INT, 1, 64, OFF(threads)},
    {"limits", "max_header_bytes", F_SIZE, 1024, 1024 * 1024, OFF(max_header_bytes)},
    {"limits", "max_body_bytes", F_SIZE, 1024, 64 * 1024 * 1024, OFF(max_body_bytes)},
    {"limits", "max_json_depth", F_INT, 2, SG_SCHEMA_MAX_DEPTH, OFF(max_json_depth)},
    {"limits", "read_timeout", F_MS, 1, DAY_MS, OFF(read_timeout_ms)},
    {"limits", "idle_timeout", F_MS, 1, DAY_MS, OFF(idle_timeout_ms)},
    /* 0 is allowed: stop at once, abandoning in-flight work. */
    {"limits", "drain_timeout", F_MS, 0, DAY_MS, OFF(drain_timeout_ms)},
    {"limits", "header_timeout", F_MS, 1, DAY_MS, OFF(header_timeout_ms)},
    {"limits", "body_timeout", F_MS, 1, DAY_MS, OFF(body_timeout_ms)},
    /* 0 derives the cap from RLIMIT_NOFILE at start (sg_conn_auto_max). */
    {"limits", "max_connections", F_INT, 0, 1000000, OFF(max_connections)},
    {"limits", "max_connections_per_address", F_INT, 0, 1000000, OFF(max_conns_per_addr)},
    {"limits", "unauthenticated_rate", F_RATE, 0, 0, OFF(unauth_rate)},
    {"limits", "unauthenticated_burst", F_INT, 1, 100000, OFF(unauth_burst)},
    /* 0 records every refusal. */
    {"limits", "unauthenticated_audit_every", F_MS, 0, DAY_MS, OFF(unauth_audit_ms)},
    {"simulator", "seed", F_U64, 0, INT64_MAX, OFF(simulator_seed)},
    {"log", "requests", F_BOOL, 0, 1, OFF(log_requests)},
    {"record", "queue", F_SIZE, 16, 16 * 1024 * 1024, OFF(record_queue)},
    /* Sessions alive at once per API key; expired and ended ones do not count. */
    {"sessions", "max_per_key", F_INT, 1, 100000, OFF(sessions_max_per_key)},
    /* One word for both modes, or a mapping with live and sandbox. */
    {"audit", "on_failure", F_AUDIT, 0, 1, WORDS(audit_live, audit_failures)},
    {"audit", "backlog_deadline", F_MS, 1, 3600 * 1000, OFF(audit_deadline_ms)},
    /* "off" (the default) or a duration: older audit records are pruned behind a checkpoint. */
    {"audit", "retention", F_RETENTION, 1000, 100 * 366 * DAY_MS, OFF(audit_retention_ms)},
    /* From the call's arrival at route to the upstream's answer, retries included. */
    {"upstream", "deadline", F_MS, 1, 300 * 1000, OFF(upstream_deadline_ms)},
    {"throttle", "cells", F_SIZE, 1024, 64 * 1024 * 1024, OFF(throttle_cells)},
    /* 0s turns queueing off: a call over its limit is refused at once. */
    {"throttle", "queue_wait", F_MS, 0, 60 * 1000, OFF(queue_wait_ms)},
    {"throttle", "queue_depth", F_INT, 1, 100000, OFF(queue_depth)},
    {"shedding", "max_in_flight", F_INT, 1, 1000000, OFF(shed_max_in_flight)},
    {"shedding", "background_percent", F_INT, 1, 100, OFF(shed_background_pct)},
    {"shedding", "normal_percent", F_INT, 1, 100, OFF(shed_normal_pct)},
    {"throttle", "backend", F_ENUM, 0, 1, WORDS(throttle_backend, backends)},
    {"redis", "host", F_HOST, 0, 0, OFF(redis_host)},
    {"redis", "port", F_INT, 1, 65535, OFF(redis_port)},
    {"redis", "timeout", F_MS, 1, 60 * 1000, OFF(redis_timeout_ms)},
    {"redis", "failure_mode", F_ENUM, 0, 2, WORDS(redis_failure, failure_modes)},
    {"redis", "nodes", F_INT, 1, 1024, OFF(redis_nodes)},
    /* How far ahead a credential's expiry date is warned about; a uint32 of ms. */
    {"secrets", "warn_before", F_MS, 0, 45 * DAY_MS, OFF(secrets_warn_before_ms)},
    {"sandbox", "enabled", F_BOOL, 0, 1, OFF(sandbox_enabled)},
    {"sandbox", "max_workers", F_INT, 1, 4096, OFF(sandbox_max_workers)},
    {"sandbox", "prefork", F_INT, 0, 64, OFF(sandbox_prefork)},
    {"sandbox", "runs_per_worker", F_INT, 1, 1000000, OFF(sandbox_runs_per_worker)},
    {"sandbox", "tenant_runs", F_INT, 1, 4096, OFF(sandbox_tenant_runs)},
    {"sandbox", "cgroups", F_ENUM, 0, 2, WORDS(sandbox_cgroups, cgroup_modes)},
    /* 0 sets no ceiling; 100 is one CPU's worth per period. */
    {"sandbox", "tenant_cpu_percent", F_INT, 0, 25600, OFF(sandbox_tenant_cpu_pct)},
    {"sandbox", "tenant_memory", F_BYTES, 0, 1024 * GIB, OFF(sandbox_tenant_memory)},
    {"sandbox", "tenant_pids", F_INT, 0, 1000000, OFF(sandbox_tenant_pids)},
    /* Block I/O per tenant on one device ("MAJOR:MINOR", as lsblk shows it); 0: none. */
    {"sandbox", "tenant_io_device", F_DEVICE, 0, 0, OFF(sandbox_io_device)},
    {"sandbox", "tenant_io_read_bps", F_BYTES, 4096, 1024 * GIB, OFF(sandbox_io_read_bps)},
    {"sandbox", "tenant_io_write_bps", F_BYTES, 4096, 1024 * GIB, OFF(sandbox_io_write_bps)},
    {"sandbox", "worker_memory", F_BYTES, 16 * 1024 * 1024, 64 * GIB, OFF(sandbox_worker_memory)},
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const top_keys[] = {
    "listen",  "listen_tls", "admin_listen", "admin_token_file",
    "threads", "data_dir",   "limits",       "simulator",
    "log",     "record",     "throttle",     "shedding",
    "redis",   "sandbox",    "sessions",     "audit",
    "upstream", "secrets",
};

void
sg_config_defaults(struct sg_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = 8080;
	strcpy(c->admin_host, "127.0.0.1");
	c->admin_port = 8091;
	c->threads = 2;
	c->data_dir = strdup("./data");
	c->max_header_bytes = 8192;
	c->max_body_bytes = 1024 * 1024;
	c->max_json_depth = 32;
	c->read_timeout_ms = 10 * 1000;
	c->idle_timeout_ms = 60 * 1000;
	c->drain_timeout_ms = 10 * 1000;
	c->header_timeout_ms = 10 * 1000;
	c->body_timeout_ms = 30 * 1000;
	c->max_connections = 0;
	c->max_conns_per_addr = 256;
	strcpy(c->unauth_rate, "10/s");
	c->unauth_burst = 100;
	c->unauth_audit_ms = 10 * 1000;
	c->simulator_seed = 42;
	c->log_requests = true;
	c->record_queue = 8192;
	c->sessions_max_per_key = 10;
	/* Live calls spend real money and reach real systems: never unaudited by default. */
	c->audit_live = SG_AUDIT_FAIL_CLOSED;
	c->audit_sandbox = SG_AUDIT_FAIL_OPEN;
	c->audit_deadline_ms = 5000;
	c->upstream_deadline_ms = 30 * 1000;
	c->secrets_warn_before_ms = 14u * 24 * 3600 * 1000;
	c->throttle_cells = 1048576;
	c->queue_wait_ms = 2000;
	c->queue_depth = 64;
	c->shed_max_in_flight = 4096;
	c->shed_background_pct = 50;
	c->shed_normal_pct = 85;
	c->throttle_backend = SG_BACKEND_LOCAL;
	strcpy(c->redis_host, "127.0.0.1");
	c->redis_port = 6379;
	c->redis_timeout_ms = 50;
	c->redis_failure = SG_REDIS_FAIL_LOCAL;
	c->redis_nodes = 1;
	c->sandbox_enabled = true;
	c->sandbox_max_workers = 64;
	c->sandbox_prefork = 1;
	c->sandbox_runs_per_worker = 100;
	c->sandbox_tenant_runs = 8;
	c->sandbox_cgroups = SG_CGROUPS_STRICT;
	c->sandbox_tenant_cpu_pct = 100;
	c->sandbox_tenant_memory = 512ull * 1024 * 1024;
	c->sandbox_tenant_pids = 64;
	c->sandbox_worker_memory = 256ull * 1024 * 1024;
}

void
sg_config_free(struct sg_config *c)
{
	if (c == NULL)
		return;
	free(c->data_dir);
	c->data_dir = NULL;
	free(c->admin_token_file);
	c->admin_token_file = NULL;
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_client_ca);
	c->tls_cert = c->tls_key = c->tls_client_ca = NULL;
}

int
sg_duration_parse_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	uint64_t v = 0;
	size_t i = 0;
	if (s == NULL)
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	/* A bare number is refused: "10" could mean seconds or milliseconds. */
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(s + i, units[u].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[u].ms)
			return -1;
		*ms = v * units[u].ms;
		return 0;
	}
	return -1;
}

static bool
valid_hostname(const char *h)
{
	if (h[0] == '\0' || h[0] == '-' || h[0] == '.')
		return false;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || *h == '-' || *h == '.'))
			return false;
	return true;
}

/* "host:port" or "[v6]:port" into host (size hn) and *port; -1 when malformed. */
static int
parse_hostport(const char *hostport, char *out_host, size_t hn, uint16_t *out_port)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host) ||
	    (size_t)(colon - hostport) >= hn)
		return -1;
	size_t hl = (size_t)(colon - hostport);
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct in6_addr a6;
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -1;
	} else if (!valid_hostname(host)) {
		/* An IPv6 address without brackets lands here too: its port is ambiguous. */
		return -1;
	}
	const char *p = colon + 1;
	unsigned long port = 0;
	size_t digits = 0;
	for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		port = port * 10 + (unsigned long)(*p - '0');
	if (*p != '\0' || digits == 0 || port < 1 || port > 65535)
		return -1;
	strcpy(out_host, host);
	*out_port = (uint16_t)port;
	return 0;
}

int
sg_config_set_listen(struct sg_config *c, const char *hostport)
{
	if (strcmp(hostport, "off") == 0) {
		c->listen_host[0] = '\0';
		c->listen_port = 0;
		return 0;
	}
	return parse_hostport(hostport, c->listen_host, sizeof(c->listen_host), &c->listen_port);
}

int
sg_config_set_admin_listen(struct sg_config *c, const char *hostport)
{
	if (strcmp(hostport, "off") == 0) {
		c->admin_host[0] = '\0';
		c->admin_port = 0;
		return 0;
	}
	return parse_hostport(hostport, c->admin_host, sizeof(c->admin_host), &c->admin_port);
}

static void
store_field(struct sg_config *c, const struct field *f, long long v)
{
	char *p = (char *)c + f->off;
	switch (f->type) {
	case F_INT:
		*(int *)(void *)p = (int)v;
		break;
	case F_SIZE:
		*(size_t *)(void *)p = (size_t)v;
		break;
	case F_MS:
		*(uint32_t *)(void *)p = (uint32_t)v;
		break;
	case F_U64:
		*(uint64_t *)(void *)p = (uint64_t)v;
		break;
	case F_BOOL:
		*(bool *)(void *)p = v != 0;
		break;
	case F_ENUM:
		*(int *)(void *)p = (int)v;
		break;
	case F_BYTES:
	case F_RETENTION:
		*(uint64_t *)(void *)p = (uint64_t)v;
		break;
	case F_HOST:
	case F_DEVICE:
	case F_AUDIT:
	case F_RATE:
		break; /* stored by their parsers */
	}
}

/* F_ENUM and F_HOST: a word from a list, or a host name or address. */
static int
parse_text_field(struct sg_config *c, const char *file, struct fy_node *n, const char *what,
                 const struct field *f, long long *out, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	if (s == NULL)
		return -1;
	if (f->type == F_HOST) {
		struct in6_addr a6;
		if (strlen(s) >= sizeof(c->redis_host) ||
		    (!valid_hostname(s) && inet_pton(AF_INET6, s, &a6) != 1)) {
			sg_yaml_error(d, file, n,
			              "%s: expected a host name or address such as "
			              "127.0.0.1 or redis.internal, got \"%.60s\"",
			              what, s);
			return -1;
		}
		memcpy((char *)c + f->off, s, strlen(s) + 1);
		return 0;
	}
	for (long long i = 0; f->choices[i] != NULL; i++)
		if (strcmp(s, f->choices[i]) == 0) {
			*out = i;
			return 0;
		}
	char h[96] = "", use[128] = "";
	const char *best = sg_did_you_mean(s, f->choices, (size_t)f->max + 1);
	if (best)
		snprintf(h, sizeof(h), " (did you mean \"%s\"?)", best);
	for (long long i = 0; i <= f->max; i++)
		snprintf(use + strlen(use), sizeof(use) - strlen(use), "%s%s",
		         i == 0        ? ""
		         : i == f->max ? " or "
		                       : ", ",
		         f->choices[i]);
	sg_yaml_error(d, file, n, "%s: unknown \"%.40s\"%s; use %s", what, s, h, use);
	return -1;
}

static int
parse_duration_field(const char *file, struct fy_node *n, const char *what, const struct field *f,
                     long long *out, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	uint64_t ms;
	if (s == NULL)
		return -1;
	if (sg_duration_parse_ms(s, &ms) != 0) {
		sg_yaml_error(
		    d, file, n,
		    "%s: expected a duration such as 250ms, 10s, 5m, 1h or 2d, got \"%.40s\"", what,
		    s);
		return -1;
	}
	if (ms < (uint64_t)f->min || ms > (uint64_t)f->max) {
		char top[32] = "1d";
		if (f->max != DAY_MS)
			snprintf(top, sizeof(top), "%llds", f->max / 1000);
		sg_yaml_error(d, file, n, "%s: must be from %lldms to %s, got \"%.40s\"", what,
		              f->min, top, s);
		return -1;
	}
	*out = (long long)ms;
	return 0;
}

/*
 * audit.retention: "off", or how long records are kept.  Days are the
 * natural unit here and outgrow F_MS's 32 bits, hence a type of its own.
 */
static int
parse_retention_field(const char *file, struct fy_node *n, const char *what,
                      const struct field *f, long long *out, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	uint64_t ms;
	if (s == NULL)
		return -1;
	if (strcmp(s, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (sg_duration_parse_ms(s, &ms) != 0 || ms < (uint64_t)f->min || ms > (uint64_t)f->max) {
		sg_yaml_error(d, file, n,
		              "%s: expected \"off\" or a duration from 1s to 36600d such as 90d or "
		              "12h, got \"%.40s\"",
		              what, s);
		return -1;
	}
	*out = (long long)ms;
	return 0;
}

/* "512MiB", "64KiB", "2GiB" or a plain number of bytes. */
static int
parse_bytes_field(const char *file, struct fy_node *n, const char *what, const struct field *f,
                  long long *out, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	uint64_t v;
	if (s == NULL)
		return -1;
	if (sg_bytes_parse(s, &v) != 0) {
		sg_yaml_error(d, file, n,
		              "%s: expected a size such as 512MiB, 64KiB or 2GiB, got \"%.40s\"",
		              what, s);
		return -1;
	}
	if (v != 0 && (v < (uint64_t)f->min || v > (uint64_t)f->max)) {
		sg_yaml_error(d, file, n,
		              "%s: must be 0 (no ceiling) or from %lld MiB to %lld GiB, "
		              "got \"%.40s\"",
		              what, f->min >> 20, f->max >> 30, s);
		return -1;
	}
	*out = (long long)v;
	return 0;
}

/* "8:0": a block device's major and minor numbers. */
static int
parse_device_field(struct sg_config *c, const char *file, struct fy_node *n, const char *what,
                   const struct field *f, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	unsigned major, minor;
	char end;
	if (s == NULL)
		return -1;
	if (strlen(s) >= sizeof(c->sandbox_io_device) ||
	    sscanf(s, "%u:%u%c", &major, &minor, &end) != 2 || s[0] < '0' || s[0] > '9') {
		sg_yaml_error(d, file, n,
		              "%s: expected a block device as MAJOR:MINOR such as 8:0 (lsblk shows "
		              "them), got \"%.40s\"",
		              what, s);
		return -1;
	}
	memcpy((char *)c + f->off, s, strlen(s) + 1);
	return 0;
}

/* audit.on_failure: a word for both modes, or {live: WORD, sandbox: WORD}. */
static int
parse_audit_field(struct sg_config *c, const char *file, struct fy_node *n, const char *what,
                  const struct field *f, struct sg_diags *d)
{
	static const char *const modes[] = {"live", "sandbox"};
	int *slot[] = {&c->audit_live, &c->audit_sandbox};
	long long v;
	char sub[80];
	if (!fy_node_is_mapping(n)) {
		if (parse_text_field(c, file, n, what, f, &v, d) != 0)
			return -1;
		c->audit_live = c->audit_sandbox = (int)v;
		return 0;
	}
	int rc = sg_yaml_check_keys(d, file, n, what, modes, 2);
	for (size_t i = 0; i < 2; i++) {
		struct fy_node *m = sg_yaml_get(n, modes[i]);
		snprintf(sub, sizeof(sub), "%s.%s", what, modes[i]);
		if (m == NULL)
			continue;
		if (parse_text_field(c, file, m, sub, f, &v, d) == 0)
			*slot[i] = (int)v;
		else
			rc = -1;
	}
	return rc;
}

/* "1/s", "30/m": a rate as policies write it, stored as its text. */
static int
parse_rate_field(struct sg_config *c, const char *file, struct fy_node *n, const char *what,
                 const struct field *f, struct sg_diags *d)
{
	const char *s = sg_yaml_str(d, file, n, what);
	struct sg_limit l;
	if (s == NULL)
		return -1;
	if (strlen(s) >= sizeof(c->unauth_rate) || sg_limit_parse(s, 1, &l) != 0) {
		sg_yaml_error(d, file, n,
		              "%s: expected a rate such as 1/s, 30/m or 500/h, got \"%.40s\"", what,
		              s);
		return -1;
	}
	memcpy((char *)c + f->off, s, strlen(s) + 1);
	return 0;
}

static void
parse_field(struct sg_config *c, const char *file, struct fy_node *n, const struct field *f,
            struct sg_diags *d)
{
	char what[64];
	long long v = 0;
	bool b = false;
	int rc;
	snprintf(what, sizeof(what), "%s%s%s", f->section ? f->section : "", f->section ? "." : "",
	         f->key);
	if (f->type == F_BOOL) {
		rc = sg_yaml_bool(d, file, n, what, &b);
		v = b;
	} else if (f->type == F_MS) {
		rc = parse_duration_field(file, n, what, f, &v, d);
	} else if (f->type == F_RETENTION) {
		rc = parse_retention_field(file, n, what, f, &v, d);
	} else if (f->type == F_ENUM || f->type == F_HOST) {
		rc = parse_text_field(c, file, n, what, f, &v, d);
	} else if (f->type == F_BYTES) {
		rc = parse_bytes_field(file, n, what, f, &v, d);
	} else if (f->type == F_DEVICE) {
		rc = parse_device_field(c, file, n, what, f, d);
	} else if (f->type == F_AUDIT) {
		rc = parse_audit_field(c, file, n, what, f, d);
	} else if (f->type == F_RATE) {
		rc = parse_rate_field(c, file, n, what, f, d);
	} else {
		rc = sg_yaml_int(d, file, n, what, f->min, f->max, &v);
	}
	if (rc == 0)
		store_field(c, f, v);
}

static void
parse_section(struct sg_config *c, const char *file, struct fy_node *root, const char *section,
              struct sg_diags *d)
{
	const char *known[N_FIELDS];
	const struct field *field[N_FIELDS];
	size_t n_known = 0;
	struct fy_node *map = section ? sg_yaml_get(root, section) : root;
	if (map == NULL)
		return;
	for (size_t i = 0; i < N_FIELDS; i++)
		if ((section == NULL) == (fields[i].section == NULL) &&
		    (section == NULL || strcmp(section, fields[i].section) == 0)) {
			field[n_known] = &fields[i];
			known[n_known++] = fields[i].key;
		}
	/* The top level has its own key list, checked by the caller. */
	if (section && sg_yaml_check_keys(d, file, map, section, known, n_known) != 0 &&
	    !fy_node_is_mapping(map))
		return;
	for (size_t i = 0; i < n_known; i++) {
		struct fy_node *v = sg_yaml_get(map, known[i]);
		if (v != NULL)
			parse_field(c, file, v, field[i], d);
	}
}

/* A path the config owns: data_dir, admin_token_file, listen_tls's files. */
static void
parse_path_as(const char *file, struct fy_node *map, const char *key, const char *what, char **dst,
              struct sg_diags *d)
{
	struct fy_node *n = sg_yaml_get(map, key);
	const char *s = n ? sg_yaml_str(d, file, n, what) : NULL;
	if (s == NULL)
		return;
	if (s[0] == '\0' || strlen(s) > 4000) {
		sg_yaml_error(d, file, n, "%s: expected a path of 1 to 4000 bytes", what);
		return;
	}
	char *dup = strdup(s);
	if (dup == NULL) {
		sg_yaml_error(d, file, n, "out of memory");
		return;
	}
	free(*dst);
	*dst = dup;
}

static void
parse_path(const char *file, struct fy_node *root, const char *key, char **dst, struct sg_diags *d)
{
	parse_path_as(file, root, key, key, dst, d);
}

/*
 * listen_tls: {address, cert, key, client_ca}.  Only the shape is checked
 * here; whether the files hold a matching certificate and key is found
 * when the server starts (and again on each SIGHUP), where OpenSSL reads
 * them.
 */
static void
parse_listen_tls(struct sg_config *c, const char *file, struct fy_node *root, struct sg_diags *d)
{
	static const char *const keys[] = {"address", "cert", "key", "client_ca"};
	static const char *const need[] = {
	    "address (host:port such as 127.0.0.1:8443)",
	    "cert (the server certificate, then its intermediates, in PEM)",
	    "key (the certificate's private key in PEM)"};
	struct fy_node *map = sg_yaml_get(root, "listen_tls");
	/* Unknown keys are reported and the rest still checked, as in the sections. */
	if (map == NULL || (sg_yaml_check_keys(d, file, map, "listen_tls", keys, 4) != 0 &&
	                    !fy_node_is_mapping(map)))
		return;
	for (size_t i = 0; i < 3; i++)
		if (sg_yaml_get(map, keys[i]) == NULL)
			sg_yaml_error(d, file, map, "listen_tls: %s is missing", need[i]);
	struct fy_node *n = sg_yaml_get(map, "address");
	const char *s = n ? sg_yaml_str(d, file, n, "listen_tls.address") : NULL;
	if (s && (strcmp(s, "off") == 0 ||
	          parse_hostport(s, c->tls_host, sizeof(c->tls_host), &c->tls_port) != 0))
		sg_yaml_error(d, file, n,
		              "listen_tls.address: expected host:port with a port from 1 to 65535, "
		              "such as 127.0.0.1:8443 or [::1]:8443, got \"%.60s\"",
		              s);
	parse_path_as(file, map, "cert", "listen_tls.cert", &c->tls_cert, d);
	parse_path_as(file, map, "key", "listen_tls.key", &c->tls_key, d);
	parse_path_as(file, map, "client_ca", "listen_tls.client_ca", &c->tls_client_ca, d);
	/* Configuring TLS without a word on plain HTTP means no plain HTTP. */
	if (sg_yaml_get(root, "listen") == NULL) {
		c->listen_host[0] = '\0';
		c->listen_port = 0;
	}
}

static void
parse_top_strings(struct sg_config *c, const char *file, struct fy_node *root, struct sg_diags *d)
{
	struct fy_node *n = sg_yaml_get(root, "listen");
	const char *s = n ? sg_yaml_str(d, file, n, "listen") : NULL;
	if (s && sg_config_set_listen(c, s) != 0)
		sg_yaml_error(d, file, n,
		              "listen: expected host:port with a port from 1 to 65535, such as "
		              "127.0.0.1:8080 or [::1]:8080, or off, got \"%.60s\"",
		              s);
	else if (s && c->listen_port == 0 && sg_yaml_get(root, "listen_tls") == NULL)
		sg_yaml_error(d, file, n,
		              "listen: off leaves the gateway without a listener; set listen_tls "
		              "too, or give listen an address");
	n = sg_yaml_get(root, "admin_listen");
	s = n ? sg_yaml_str(d, file, n, "admin_listen") : NULL;
	if (s && sg_config_set_admin_listen(c, s) != 0)
		sg_yaml_error(
		    d, file, n,
		    "admin_listen: expected host:port with a port from 1 to 65535, such as "
		    "127.0.0.1:8091, or off, got \"%.60s\"",
		    s);
	parse_path(file, root, "data_dir", &c->data_dir, d);
	parse_path(file, root, "admin_token_file", &c->admin_token_file, d);
	parse_listen_tls(c, file, root, d);
}

int
sg_config_parse(struct sg_config *c, const char *file, const char *text, size_t len,
                struct sg_diags *d)
{
	static const char *const sections[] = {"limits",   "simulator", "log",   "record",
	                                       "throttle", "shedding",  "redis", "sandbox",
	                                       "sessions", "audit",     "secrets"};
	size_t before = d->n;
	struct fy_document *doc = sg_yaml_parse(file, text, len, d);
	if (doc == NULL)
		return -1;
	struct fy_node *root = fy_document_root(doc);
	/* Work on a copy so that a file with errors changes nothing. */
	struct sg_config n = *c;
	n.data_dir = c->data_dir ? strdup(c->data_dir) : NULL;
	if (c->data_dir != NULL && n.data_dir == NULL)
		sg_diags_add(d, file, 0, 0, "out of memory");
	n.admin_token_file = c->admin_token_file ? strdup(c->admin_token_file) : NULL;
	n.tls_cert = c->tls_cert ? strdup(c->tls_cert) : NULL;
	n.tls_key = c->tls_key ? strdup(c->tls_key) : NULL;
	n.tls_client_ca = c->tls_client_ca ? strdup(c->tls_client_ca) : NULL;
	if (root != NULL &&
	    sg_yaml_check_keys(d, file, root, "sandgate.yaml", top_keys,
	                       sizeof(top_keys) / sizeof(top_keys[0])) != 0 &&
	    !fy_node_is_mapping(root))
		root = NULL;
	if (root != NULL) {
		parse_top_strings(&n, file, root, d);
		parse_section(&n, file, root, NULL, d);
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			parse_section(&n, file, root, sections[i], d);
	}
	struct fy_node *sb = root != NULL ? sg_yaml_get(root, "sandbox") : NULL;
	if (sb != NULL && (n.sandbox_io_read_bps || n.sandbox_io_write_bps) &&
	    fy_node_is_mapping(sb) && sg_yaml_get(sb, "tenant_io_device") == NULL)
		sg_yaml_error(d, file, sb,
		              "sandbox: tenant_io_read_bps and tenant_io_write_bps need "
		              "tenant_io_device, the disk they apply to (MAJOR:MINOR, e.g. 8:0)");
	if (root != NULL && n.shed_background_pct > n.shed_normal_pct)
		sg_yaml_error(d, file, sg_yaml_get(root, "shedding"),
		              "shedding: background_percent (%d) is above normal_percent (%d); "
		              "background work must be shed first",
		              n.shed_background_pct, n.shed_normal_pct);
	fy_document_destroy(doc);
	sg_yaml_sort_diags(d, before);
	if (d->n != before) {
		sg_config_free(&n);
		return -1;
	}
	sg_config_free(c);
	*c = n;
	return 0;
}

int
sg_config_load(struct sg_config *c, const char *path, struct sg_diags *d)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		sg_diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	/* Read one byte past the limit to tell "exactly 1 MiB" from "more". */
	char *buf = malloc(CONFIG_MAX_BYTES + 1);
	size_t len = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
	int err = ferror(f);
	fclose(f);
	if (buf == NULL || err || len > CONFIG_MAX_BYTES) {
		sg_diags_add(d, path, 0, 0, "cannot read: %s",
		             buf == NULL ? "out of memory"
		             : err       ? "I/O error"
		                         : "file is over the 1 MiB limit");
		free(buf);
		return -1;
	}
	int rc = sg_config_parse(c, path, buf, len, d);
	free(buf);
	return rc;
}

int
sg_bytes_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {{"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024ull * 1024 * 1024}};
	uint64_t v = 0;
	size_t i = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (strcmp(s + i, units[u].unit) == 0) {
			if (v > UINT64_MAX / units[u].mul)
				return -1;
			*out = v * units[u].mul;
			return 0;
		}
	return -1;
}

bool
sg_config_audit_fail_closed(const struct sg_config *c, bool live)
{
	return (live ? c->audit_live : c->audit_sandbox) == SG_AUDIT_FAIL_CLOSED;
}

const char *
sg_config_failure_name(int failure_mode)
{
	return failure_mode >= 0 && failure_mode <= SG_REDIS_FAIL_ALLOW
	           ? failure_modes[failure_mode]
	           : "unknown";
}
