/* sandgate serve: set everything up in order, then hand over to the server. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/sg_evmem.h"
#include "core/sg_config.h"
#include "core/sg_vault.h"
#include "dlp/sg_dlp_action.h"
#include "http/sg_server.h"
#include "obs/sg_log.h"
#include "runs/sg_runs.h"
#include "sandbox/sg_sandbox.h"
#include "upstream/sg_credential.h"
#include "store/sg_recorder.h"
#include "throttle/sg_spend.h"
#include "throttle/sg_ratetable.h"
#include "upstream/sg_breaker.h"
#include "upstream/sg_oauth.h"
#include "upstream/sg_fetch.h"

static const char serve_help[] =
    "usage: sandgate serve [--config FILE] [--listen HOST:PORT|off] [--data-dir DIR]\n"
    "                      [--threads N] [--admin-listen HOST:PORT|off] [--demo]\n"
    "\n"
    "  --admin-listen  where /metrics and the detailed /readyz are served\n"
    "           (default 127.0.0.1:8091; off: only with the admin token)\n"
    "  --demo   on first start (no definitions stored yet) apply the bundled\n"
    "           examples, create one key per demo role and print a quick start\n"
    "\n"
    "Signals: SIGHUP reloads the catalog and policy, and listen_tls's certificate\n"
    "and key; SIGTERM drains and exits.\n";

struct serve_opts {
	const char *config, *listen, *admin_listen, *data_dir;
	int threads;
	bool demo;
};

static int
parse_serve_opts(int argc, char **argv, struct serve_opts *o)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"admin-listen", required_argument, NULL, 'a'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"threads", required_argument, NULL, 't'},
	    {"demo", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	char *end;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'a':
			o->admin_listen = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'D':
			o->demo = true;
			break;
		case 't':
			o->threads = (int)strtol(optarg, &end, 10);
			if (*end || o->threads < 1 || o->threads > 64)
				return sg_cli_fail("--threads must be a number from 1 to 64"), -1;
			break;
		case 'h':
			fputs(serve_help, stdout);
			exit(0);
		default:
			fputs(serve_help, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fputs(serve_help, stderr);
		return -1;
	}
	return 0;
}

static int
load_config(struct sg_config *cfg, const struct serve_opts *o)
{
	struct sg_diags d = {0};
	sg_config_defaults(cfg);
	if (o->config && sg_config_load(cfg, o->config, &d) != 0) {
		sg_diags_print(&d, stderr);
		sg_diags_free(&d);
		return sg_cli_fail("the configuration has errors; the gateway was not started"), -1;
	}
	sg_diags_free(&d);
	if (o->listen && sg_config_set_listen(cfg, o->listen) != 0)
		return sg_cli_fail(
		           "--listen must look like 127.0.0.1:8080 or [::1]:8080, or be off"),
		       -1;
	if (o->admin_listen && sg_config_set_admin_listen(cfg, o->admin_listen) != 0)
		return sg_cli_fail("--admin-listen must look like 127.0.0.1:8091 or [::1]:8091, or "
		                   "be off"),
		       -1;
	if (cfg->listen_port == 0 && cfg->tls_port == 0)
		return sg_cli_fail("--listen off leaves the gateway without a listener; set "
		                   "listen_tls in the configuration file too"),
		       -1;
	if (o->threads)
		cfg->threads = o->threads;
	if (o->data_dir || !o->config) {
		free(cfg->data_dir);
		cfg->data_dir = strdup(sg_cli_data_dir(o->data_dir));
	}
	return 0;
}

/* One gateway per data directory: the pid file doubles as a lock. */
static int
lock_pidfile(const char *data_dir, char *path, size_t n)
{
	snprintf(path, n, "%s/sandgate.pid", data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return sg_cli_fail("cannot create %s: %s", path, strerror(errno)), -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return sg_cli_fail("another sandgate is already serving %s", data_dir), -1;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)len) != len) {
		close(fd);
		return sg_cli_fail("cannot write %s", path), -1;
	}
	return fd;
}

static bool
store_is_empty(struct sg_store *s)
{
	struct sg_store_doc *docs = NULL;
	size_t n = 0;
	if (sg_store_live_docs(s, &docs, &n) != 0)
		return false;
	sg_store_docs_free(docs, n);
	return n == 0;
}

struct serve_state {
	struct sg_config cfg;
	struct sg_gateway gw;
	struct sg_store *store;
	struct sg_server *server;
	struct sg_sandbox *sandbox;
	int pid_fd;
	char pid_path[4096];
	char *writer_stall;              /* test builds: SANDGATE_TEST_WRITER_STALL */
	struct sg_dlp_token_key dlp_key; /* gw.dlp_token_key points here */
};

static int
prepare_store(struct serve_state *st, const struct serve_opts *o)
{
	struct sg_config *cfg = &st->cfg;
	st->store = sg_cli_open_store(cfg->data_dir);
	if (st->store == NULL || sg_cli_server_secret(cfg->data_dir, st->gw.server_secret) != 0)
		return -1;
	st->pid_fd = lock_pidfile(cfg->data_dir, st->pid_path, sizeof(st->pid_path));
	if (st->pid_fd < 0)
		return -1;
	if (o->demo && store_is_empty(st->store))
		return sg_cli_demo_bootstrap(st->store, st->gw.server_secret, cfg->listen_host,
		                             cfg->listen_port, cfg->simulator_seed);
	if (o->demo)
		fprintf(stderr,
		        "sandgate: %s already holds definitions; the demo content was not "
		        "applied again (create keys with 'sandgate keys create')\n",
		        cfg->data_dir);
	return 0;
}

/* Run documents kept in memory for GET /v1/runs/{id}; older ones are read from the store. */
#define RUNS_IN_MEMORY 2048

/* Tenants with calls waiting at once; a counter at zero frees its slot. */
#define WAITING_TENANTS 65536

static void
restore_one(void *arg, const char *tenant, const char *user, bool sandbox, int64_t day_start_s,
            int64_t micros)
{
	sg_spend_add(arg, tenant, user, day_start_s, micros, sandbox);
}

/*
 * Budgets survive a restart: this month's spending is read back from the
 * daily totals and the decisions recorded after them.  Decisions dropped
 * from a full record queue are not in either (they are counted in
 * /metrics), nor are those a crash caught before the writer took them (at
 * most audit.backlog_deadline's worth in a fail_closed mode), so the
 * restored figure is a floor.
 */
static int
restore_spend(struct serve_state *st)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	int64_t month_start_us = (int64_t)timegm(&tm) * 1000000;
	st->gw.spend = sg_spend_new();
	if (st->gw.spend == NULL)
		return sg_cli_fail("out of memory for budget counters"), -1;
	if (sg_store_spend_since(st->store, month_start_us, restore_one, st->gw.spend) != 0)
		return sg_cli_fail("cannot read this month's spending from the store"), -1;
	return 0;
}

/*
 * First of all: the zygote is forked while the process has one thread,
 * no secret and no jansson object yet (see sg_zygote.h for why).
 */
static int
start_sandbox(struct serve_state *st)
{
	char err[SG_CGROUP_WHY_MAX + 256];
	if (!st->cfg.sandbox_enabled)
		return 0;
	st->sandbox = sg_sandbox_start(&st->cfg, err, sizeof(err));
	if (st->sandbox == NULL)
		return sg_cli_fail("%s; the gateway was not started (sandbox.enabled: false turns "
		                   "template runs off)",
		                   err),
		       -1;
	return 0;
}

#ifdef SG_TEST_HOOKS
/*
 * Built with -Dtest_hooks=true only: SANDGATE_TEST_WRITER_STALL names a file;
 * while it exists the writer thread stalls before each write, as it would
 * on a hung disk, without any error to see.
 */
static int
stall_writer(void *arg)
{
	const struct timespec tick = {0, 10 * 1000000L};
	while (access(arg, F_OK) == 0)
		nanosleep(&tick, NULL);
	return 0;
}
#endif

static int
start_recorder(struct serve_state *st)
{
	char err[512];
	const struct sg_config *cfg = &st->cfg;
	st->gw.recorder = sg_recorder_start(cfg->data_dir, cfg->record_queue, err, sizeof(err));
	if (st->gw.recorder == NULL)
		return sg_cli_fail("%s", err), -1;
	sg_recorder_set_deadline(st->gw.recorder, cfg->audit_deadline_ms);
	uint64_t chain_every_ms = 0; /* an hour */
#ifdef SG_TEST_HOOKS
	/* How often the writer prunes and logs the chain head, instead of hourly. */
	const char *every = getenv("SANDGATE_TEST_AUDIT_EVERY_MS");
	if (every && *every)
		chain_every_ms = strtoull(every, NULL, 10);
#endif
	sg_recorder_set_retention(st->gw.recorder, cfg->audit_retention_ms, chain_every_ms);
#ifdef SG_TEST_HOOKS
	const char *stall = getenv("SANDGATE_TEST_WRITER_STALL");
	if (stall && *stall && (st->writer_stall = strdup(stall)) != NULL)
		sg_recorder_set_fault(st->gw.recorder, stall_writer, st->writer_stall);
#endif
	return 0;
}

/*
 * The master key is loaded (made, on first start) now, so that a broken
 * key stops the start rather than a call.  A record that does not open is
 * logged and retried on every poll: calls to its connector have no
 * credential meanwhile, and the rest of the gateway serves.
 */
static int
start_credentials(struct serve_state *st)
{
	char err[512];
	struct sg_vault_key k;
	const struct sg_config *cfg = &st->cfg;
	if (sg_vault_key_load(&k, cfg->data_dir, err, sizeof(err)) != 0)
		return sg_cli_fail("%s", err), -1;
	/* Tokens stay stable across restarts and differ between installations. */
	sg_dlp_token_key_derive(&st->dlp_key, &k);
	st->gw.dlp_token_key = &st->dlp_key;
	sg_vault_key_wipe(&k);
	st->gw.creds = sg_credstore_new(cfg->data_dir, (int64_t)cfg->secrets_warn_before_ms / 1000);
	if (st->gw.creds == NULL)
		return sg_cli_fail("out of memory for the connector credentials"), -1;
	if (sg_credstore_refresh(st->gw.creds, st->store, err, sizeof(err)) != 0)
		sg_log(SG_LOG_ERROR, NULL, "connector credentials not loaded: %s", err);
	return 0;
}

static int
start(struct serve_state *st)
{
	char err[512];
	struct sg_config *cfg = &st->cfg;
	st->gw.config = cfg;
	if (sg_server_reload(&st->gw, st->store, 0) != 0)
		return sg_cli_fail(
		           "the stored definitions do not load (see the log above); fix them "
		           "with 'sandgate apply'"),
		       -1;
	if (restore_spend(st) != 0 || start_credentials(st) != 0)
		return -1;
	if ((st->gw.sessions = sg_sessions_new()) == NULL ||
	    (st->gw.waiting = sg_ratetable_new(WAITING_TENANTS)) == NULL ||
	    (st->gw.breakers = sg_breakers_new()) == NULL || (st->gw.oauth = sg_oauth_new()) == NULL)
		return sg_cli_fail("out of memory for sessions, queues and breakers"), -1;
	if (sg_limiter_init(&st->gw.limiter, cfg->throttle_cells) != 0)
		return sg_cli_fail("cannot allocate %zu rate-limit cells", cfg->throttle_cells), -1;
	if (start_recorder(st) != 0)
		return -1;
	/* Room for every worker's run in progress, and recent ones besides. */
	size_t runs_kept = (size_t)cfg->sandbox_max_workers * 3; /* running, waiting, recent */
	if (runs_kept < RUNS_IN_MEMORY)
		runs_kept = RUNS_IN_MEMORY;
	if ((st->gw.runs = sg_runs_new(runs_kept, cfg->data_dir)) == NULL)
		return sg_cli_fail("out of memory for the run registry"), -1;
	st->gw.sandbox = st->sandbox;
	if (st->sandbox && sg_sandbox_run_keeper(st->sandbox, err, sizeof(err)) != 0)
		return sg_cli_fail("%s", err), -1;
	st->server = sg_server_new(&st->gw, err, sizeof(err));
	if (st->server == NULL)
		return sg_cli_fail("%s", err), -1;
	return 0;
}

static void
teardown(struct serve_state *st)
{
	/* A store read finishing now would wake an event on a base freed below. */
	if (st->gw.runs)
		sg_runs_stop_reader(st->gw.runs);
	/*
	 * The sandbox first: its keeper may still wake a run's event on an I/O
	 * thread's base, which sg_server_free frees.
	 */
	sg_sandbox_stop(st->sandbox); /* kills every worker with the zygote */
	sg_server_free(st->server);
	sg_recorder_stop(st->gw.recorder); /* flushes every queued decision */
	free(st->writer_stall);
	sg_runs_free(st->gw.runs);
	sg_limiter_fini(&st->gw.limiter);
	sg_spend_free(st->gw.spend);
	sg_sessions_free(st->gw.sessions);
	sg_ratetable_free(st->gw.waiting);
	sg_breakers_free(st->gw.breakers);
	sg_oauth_free(st->gw.oauth);
	sg_credstore_free(st->gw.creds);
	sg_snapshot_unpublish();
	sg_store_close(st->store);
	if (st->pid_fd >= 0) {
		unlink(st->pid_path);
		close(st->pid_fd);
	}
	explicit_bzero(st->gw.server_secret, sizeof(st->gw.server_secret));
	explicit_bzero(&st->dlp_key, sizeof(st->dlp_key));
	sg_config_free(&st->cfg);
}

int
sg_cli_serve(int argc, char **argv)
{
	struct serve_opts o = {0};
	struct serve_state st = {.pid_fd = -1};
	int rc = 1;

	sg_evmem_install(); /* before libevent allocates anything */
	if (parse_serve_opts(argc, argv, &o) != 0)
		return 2;
	if (load_config(&st.cfg, &o) != 0)
		return 1;
	if (start_sandbox(&st) != 0) {
		sg_config_free(&st.cfg);
		return 1;
	}
	/*
	 * Whatever this process creates from here on (the store, its WAL, the
	 * pid file) is its owner's alone.  Set after the zygote is forked: the
	 * tenant cgroups it makes keep their own modes.
	 */
	umask(077);
	if (sg_keys_init() != 0)
		return sg_cli_fail("cannot initialise libsodium");
	/* Before the I/O threads, each of which makes a curl multi handle. */
	if (sg_fetch_global_init() != 0)
		return sg_cli_fail("cannot set up libcurl for upstream calls (see the log above)");
	if (prepare_store(&st, &o) == 0 && start(&st) == 0) {
		if (st.cfg.listen_port)
			sg_log(SG_LOG_INFO,
			       json_pack("{s:s, s:i, s:i, s:s}", "host", st.cfg.listen_host, "port",
			                 st.cfg.listen_port, "threads", st.cfg.threads, "data_dir",
			                 st.cfg.data_dir),
			       "listening on %s:%u", st.cfg.listen_host, st.cfg.listen_port);
		rc = sg_server_run(st.server, st.store) == 0 ? 0 : 1;
		sg_log(SG_LOG_INFO, NULL, "stopped");
	}
	teardown(&st);
	return rc;
}
