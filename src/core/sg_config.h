/*
 * sg_config: server settings from sandgate.yaml.  Every key is optional;
 * defaults are safe for a single machine.  Command-line flags override the
 * file.
 *
 *   listen: 127.0.0.1:8080        # plain HTTP; "off": none (needs listen_tls)
 *   listen_tls:                   # HTTPS, besides listen or instead of it (docs/tls.md)
 *     address: 127.0.0.1:8443
 *     cert: /etc/sandgate/tls/cert.pem  # the certificate, then its intermediates (PEM)
 *     key: /etc/sandgate/tls/key.pem    # its private key (PEM); both re-read on SIGHUP
 *     client_ca: /etc/sandgate/tls/clients.pem  # optional: mutual TLS, clients need a cert
 *   admin_listen: 127.0.0.1:8091  # /metrics and the detailed /readyz; "off": none
 *   admin_token_file: /etc/sandgate/admin.token  # or those two with this bearer token
 *   threads: 2
 *   data_dir: ./data
 *   limits:
 *     max_header_bytes: 8192
 *     max_body_bytes: 1048576
 *     max_json_depth: 32
 *     read_timeout: 10s      # longest silence while reading a first request
 *     idle_timeout: 60s      # an idle keep-alive connection, and silence after it
 *     header_timeout: 10s    # a request's head, whatever the pace: then 408
 *     body_timeout: 30s      # its body, after the header deadline: then 408
 *     max_connections: 0     # open at once; 0: from RLIMIT_NOFILE
 *     max_connections_per_address: 256  # 0: no cap per client address
 *     unauthenticated_rate: 10/s  # refusals for want of a key, per client address,
 *     unauthenticated_burst: 100  # beyond which the address gets 429 before identify
 *     unauthenticated_audit_every: 10s  # one audit record per address per interval
 *     drain_timeout: 10s     # in-flight work allowed to finish on SIGTERM
 *   simulator:
 *     seed: 42
 *   log:
 *     requests: true         # one JSON line per request on stderr
 *   record:
 *     queue: 8192            # decisions waiting for the writer thread
 *   sessions:
 *     max_per_key: 10        # sessions alive at once per API key
 *   audit:                   # while decisions cannot be written (docs/architecture.md)
 *     on_failure:            # fail_closed or fail_open, per mode or one word for both
 *       live: fail_closed    # refuse calls (503 audit_unavailable) rather than go unaudited
 *       sandbox: fail_open   # go on; a full queue drops records, counted
 *     backlog_deadline: 5s   # how old the oldest unwritten decision may grow
 *     retention: off         # or e.g. 90d: older records are pruned behind a
 *                            # checkpoint that `audit verify` follows (docs/audit.md)
 *   upstream:
 *     deadline: 30s          # a call's whole time with a real upstream, retries included
 *   throttle:
 *     cells: 1048576         # GCRA cells in the local table
 *     queue_wait: 2s         # longest a call over its limit waits its turn; 0s: never
 *     queue_depth: 64        # waiting calls per tenant per I/O thread
 *     backend: local         # local, or redis to share limits between gateways
 *   redis:                   # only with throttle.backend: redis
 *     host: 127.0.0.1
 *     port: 6379
 *     timeout: 50ms          # a decision not answered in this long counts as Redis down
 *     failure_mode: local    # local (1/nodes of each quota), deny or allow
 *     nodes: 1               # gateways sharing this Redis
 *   shedding:
 *     max_in_flight: 4096    # governed calls at once, waiting ones included
 *     background_percent: 50 # background work is shed above this share
 *     normal_percent: 85     # normal work above this; critical keeps the rest
 *   secrets:                 # connector credentials (docs/secrets.md)
 *     warn_before: 14d       # expiry dates this close are warned about; at most 45d
 *   sandbox:                 # template runs (docs/sandbox.md)
 *     enabled: true
 *     max_workers: 64        # worker processes alive at once, all tenants
 *     prefork: 1             # idle workers kept ready per tenant that runs templates
 *     runs_per_worker: 100   # a worker is replaced after this many runs
 *     tenant_runs: 8         # runs in progress per tenant; more get 429
 *     cgroups: strict        # strict, best_effort or off
 *     tenant_cpu_percent: 100  # per tenant, all its workers together; 0: none
 *     tenant_memory: 512MiB
 *     tenant_pids: 64
 *     tenant_io_device: "8:0"  # with tenant_io_read_bps / tenant_io_write_bps
 *     worker_memory: 256MiB  # address space a worker may add (RLIMIT_AS)
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sg_diag.h"

enum sg_throttle_backend { SG_BACKEND_LOCAL, SG_BACKEND_REDIS };
/* What decides while Redis is unreachable. */
enum sg_redis_failure { SG_REDIS_FAIL_LOCAL, SG_REDIS_FAIL_DENY, SG_REDIS_FAIL_ALLOW };
/* What a call does while the audit cannot be written: refuse, or go on unrecorded. */
enum sg_audit_failure { SG_AUDIT_FAIL_CLOSED, SG_AUDIT_FAIL_OPEN };
/* What a tenant ceiling that cannot be applied does: stop the start, or be reported. */
enum sg_cgroups_setting { SG_CGROUPS_STRICT, SG_CGROUPS_BEST_EFFORT, SG_CGROUPS_OFF };

struct sg_config {
	char listen_host[256];
	uint16_t listen_port; /* 0: no plain listener ("off", or listen_tls alone) */
	/* listen_tls: a TLS listener when tls_port is not 0; its paths are owned. */
	char tls_host[256];
	uint16_t tls_port;
	char *tls_cert, *tls_key, *tls_client_ca; /* tls_client_ca NULL: no client certs */
	char admin_host[256];
	uint16_t admin_port;     /* 0: no admin listener */
	char *admin_token_file;  /* owned; NULL: no admin token */
	int threads;             /* 1..64 */
	char *data_dir;          /* owned */
	size_t max_header_bytes; /* 1 KiB .. 1 MiB */
	size_t max_body_bytes;   /* 1 KiB .. 64 MiB */
	int max_json_depth;      /* 2 .. SG_SCHEMA_MAX_DEPTH */
	uint32_t read_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t drain_timeout_ms;
	uint32_t header_timeout_ms;
	uint32_t body_timeout_ms;
	int max_connections;      /* 0: derived from RLIMIT_NOFILE at start */
	int max_conns_per_addr;   /* 0: no cap per client address */
	char unauth_rate[24];     /* "1/s": a rate sg_limit_parse accepts */
	int unauth_burst;         /* 1 .. 100000 */
	uint32_t unauth_audit_ms; /* 0: every refusal is recorded */
	uint64_t simulator_seed;
	bool log_requests;
	/* Sessions alive at once per API key: 1 .. 100000. */
	int sessions_max_per_key;

	/* audit.on_failure (enum sg_audit_failure) per mode, and audit.backlog_deadline */
	int audit_live, audit_sandbox;
	uint32_t audit_deadline_ms;
	uint64_t audit_retention_ms; /* audit.retention; 0: keep every record */
	uint32_t upstream_deadline_ms; /* upstream.deadline */
	uint32_t secrets_warn_before_ms; /* secrets.warn_before */

	size_t record_queue;     /* 16 .. 16M */
	size_t throttle_cells;   /* 1024 .. 64M */
	uint32_t queue_wait_ms;  /* 0 .. 60 s */
	int queue_depth;         /* 1 .. 100000 */
	int shed_max_in_flight;  /* 1 .. 1000000 */
	int shed_background_pct; /* 1 .. 100, <= shed_normal_pct */
	int shed_normal_pct;     /* 1 .. 100 */
	int throttle_backend;    /* enum sg_throttle_backend */
	char redis_host[256];
	int redis_port;
	uint32_t redis_timeout_ms;
	int redis_failure; /* enum sg_redis_failure */
	int redis_nodes;   /* gateways sharing Redis: a fallback's share is 1/nodes */
	bool sandbox_enabled;
	int sandbox_max_workers;
	int sandbox_prefork;
	int sandbox_runs_per_worker;
	int sandbox_tenant_runs;
	int sandbox_cgroups; /* enum sg_cgroups_setting */
	int sandbox_tenant_cpu_pct;
	uint64_t sandbox_tenant_memory;
	int sandbox_tenant_pids;
	uint64_t sandbox_worker_memory;
	char sandbox_io_device[24]; /* "MAJOR:MINOR", "" for none */
	uint64_t sandbox_io_read_bps, sandbox_io_write_bps;
};

void sg_config_defaults(struct sg_config *c);
/*
 * Reads `path` over the defaults already in *c.  Unknown keys, wrong types and
 * out-of-range values are reported to `d` with line and column; returns -1
 * when any was found.
 */
int sg_config_load(struct sg_config *c, const char *path, struct sg_diags *d);
/* Same, from memory; `file` names the text in messages. */
int sg_config_parse(struct sg_config *c, const char *file, const char *text, size_t len,
                    struct sg_diags *d);
void sg_config_free(struct sg_config *c);

/* "512MiB", "64KiB", "2GiB" or plain bytes → bytes; -1 when malformed. */
int sg_bytes_parse(const char *s, uint64_t *out);
/* "local", "deny" or "allow". */
const char *sg_config_failure_name(int failure_mode);
/* Whether a call in this mode is refused while the audit is behind (audit.on_failure). */
bool sg_config_audit_fail_closed(const struct sg_config *c, bool live);

/*
 * "host:port", or "off" for no plain listener; -1 when malformed.  Shared
 * with --listen.  "off" is accepted here; sg_config_parse refuses it
 * without listen_tls, and so does serve for the command line.
 */
int sg_config_set_listen(struct sg_config *c, const char *hostport);
/* "host:port", or "off" for no admin listener; -1 when malformed.  Shared with --admin-listen. */
int sg_config_set_admin_listen(struct sg_config *c, const char *hostport);
/* "250ms", "10s", "5m", "1h", "2d" → milliseconds; -1 when malformed. */
int sg_duration_parse_ms(const char *s, uint64_t *ms);

#endif
