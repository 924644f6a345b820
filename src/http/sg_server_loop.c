/*
 * The main thread: signals, reloads and the drain.  It holds the only store
 * connection outside the writer, and it is the only thread that publishes
 * snapshots.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/sg_http.h"
#include "http/sg_server.h"
#include "http/sg_tls.h"
#include "obs/sg_log.h"
#include "throttle/sg_ratetable.h"
#include "upstream/sg_credential.h"

#define POLL_MS 500
#define DRAIN_TICK_MS 50
#define SESSION_GRACE_S 3600

/* A drain ends early once no request has finished for this long. */
#define DRAIN_QUIET_MS 250

struct loop_state {
	struct sg_server *s;
	struct sg_store *store;
	struct event_base *base;
	struct event *poll_ev;
	struct event *drain_ev;
	int64_t revision;
	int64_t secrets_failed_gen; /* the generation whose failure was logged */
	uint64_t drain_deadline_ns;
};

int
sg_server_reload(struct sg_gateway *gw, struct sg_store *store, int keys_only)
{
	struct sg_diags d = {0};
	struct sg_snapshot *cur = keys_only ? sg_snapshot_current() : NULL;
	struct sg_snapshot *next =
	    sg_snapshot_build(store, cur ? cur->defs : NULL, gw->config->simulator_seed, &d);
	sg_snapshot_unref(cur);
	if (next == NULL) {
		/* Keep serving the old snapshot: a bad reload must not take the gateway down. */
		for (size_t i = 0; i < d.n; i++)
			sg_log(SG_LOG_ERROR,
			       json_pack("{s:s?, s:i}", "file", d.v[i].file, "line", d.v[i].line),
			       "reload refused: %s", d.v[i].msg);
		sg_diags_free(&d);
		atomic_fetch_add(&sg_gauges.reloads_failed, 1);
		return -1;
	}
	sg_diags_free(&d);
	sg_snapshot_publish(next);
	atomic_store(&sg_gauges.snapshot_generation, sg_snapshot_generation());
	atomic_fetch_add(&sg_gauges.reloads_ok, 1);
	return 0;
}

/*
 * Credentials follow the store within a poll, as keys do: `secrets set`,
 * `rotate` and `rotate-master` need no signal.  A table that does not load
 * keeps the old one serving and is tried again on the next poll.
 */
static void
poll_credentials(struct loop_state *ls)
{
	struct sg_credstore *cs = ls->s->gw->creds;
	char err[512];
	int64_t gen;
	if (cs == NULL)
		return;
	/* Against what the table holds, so a change made before the first poll is not missed. */
	if (sg_store_secrets_generation(ls->store, &gen) == 0 &&
	    gen != sg_credstore_loaded_generation(cs)) {
		if (sg_credstore_refresh(cs, ls->store, err, sizeof(err)) == 0) {
			sg_log(SG_LOG_INFO, NULL,
			       "connector credentials reloaded (secrets generation %lld)",
			       (long long)sg_credstore_loaded_generation(cs));
		} else if (gen != ls->secrets_failed_gen) {
			ls->secrets_failed_gen = gen;
			sg_log(
			    SG_LOG_ERROR, NULL,
			    "connector credentials not reloaded (the ones loaded before stay): %s",
			    err);
		}
	}
	sg_credstore_warn_expiring(cs, (int64_t)time(NULL));
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct loop_state *ls = arg;
	int64_t rev;
	(void)fd;
	(void)what;
	if (sg_store_revision(ls->store, &rev) != 0) {
		atomic_store(&ls->s->store_ok, false);
		return;
	}
	atomic_store(&ls->s->store_ok, true);
	atomic_store(&sg_gauges.throttle_cells, sg_ratetable_count(ls->s->gw->limiter.cells));
	/* An expired session stays readable for an hour, then it goes. */
	if (ls->s->gw->sessions)
		sg_sessions_purge(ls->s->gw->sessions, (int64_t)time(NULL), SESSION_GRACE_S);
	poll_credentials(ls);
	if (rev == ls->revision)
		return;
	/* Keys change outside SIGHUP so that a revoked key stops working at once. */
	if (sg_server_reload(ls->s->gw, ls->store, 1) == 0) {
		ls->revision = rev;
		sg_log(SG_LOG_INFO, NULL, "keys reloaded (store revision %lld)", (long long)rev);
	}
}

/* New connections get the new certificate; open ones keep the one they began with. */
static void
reload_tls(struct sg_server *s)
{
	char err[1024], serial[128];
	if (sg_tls_reload(s->tls, err, sizeof(err)) != 0) {
		sg_log(SG_LOG_ERROR, json_pack("{s:s}", "error", err),
		       "TLS certificate not reloaded: %s. New connections still get the previous "
		       "certificate",
		       err);
		return;
	}
	sg_tls_serial(s->tls, serial, sizeof(serial));
	sg_log(SG_LOG_INFO, json_pack("{s:s}", "serial", serial),
	       "TLS certificate and key reloaded (serial %s)", serial);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct loop_state *ls = arg;
	(void)sig;
	(void)what;
	if (sg_server_reload(ls->s->gw, ls->store, 0) == 0) {
		sg_store_revision(ls->store, &ls->revision);
		sg_log(SG_LOG_INFO,
		       json_pack("{s:I}", "generation", (json_int_t)sg_snapshot_generation()),
		       "catalog and policy reloaded");
	}
	if (ls->s->tls)
		reload_tls(ls->s);
}

static void
stop_listening(evutil_socket_t fd, short what, void *arg)
{
	struct sg_io_thread *t = arg;
	(void)fd;
	(void)what;
	if (t->listener) {
		evhttp_del_accept_socket(t->http, t->listener);
		t->listener = NULL;
	}
	if (t->tls_listener) {
		evhttp_del_accept_socket(t->tls_http, t->tls_listener);
		t->tls_listener = NULL;
	}
	/* The admin listener runs on the first thread's loop; it closes with the rest. */
	if (t->index == 0 && t->server->admin_listener) {
		evhttp_del_accept_socket(t->server->admin_http, t->server->admin_listener);
		t->server->admin_listener = NULL;
	}
}

static bool
drained(struct sg_server *s, uint64_t now)
{
	for (int i = 0; i < s->n_threads; i++) {
		struct sg_io_thread *t = &s->threads[i];
		if (atomic_load(&t->metrics->in_flight) > 0)
			return false;
		if (now - atomic_load(&t->last_done_ns) < DRAIN_QUIET_MS * 1000000ull)
			return false;
	}
	return true;
}

static void
on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loop_state *ls = arg;
	uint64_t now = sg_now_ns();
	(void)fd;
	(void)what;
	if (!drained(ls->s, now) && now < ls->drain_deadline_ns)
		return;
	if (now >= ls->drain_deadline_ns)
		sg_log(SG_LOG_WARN, NULL, "drain timeout reached; closing remaining connections");
	for (int i = 0; i < ls->s->n_threads; i++)
		event_base_loopexit(ls->s->threads[i].base, NULL);
	event_base_loopexit(ls->base, NULL);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct loop_state *ls = arg;
	struct timeval zero = {0, 0}, tick = {0, DRAIN_TICK_MS * 1000};
	(void)what;
	if (atomic_exchange(&ls->s->draining, true))
		return;
	sg_log(SG_LOG_INFO, json_pack("{s:i}", "signal", (int)sig),
	       "draining: no new connections; finishing in-flight requests");
	for (int i = 0; i < ls->s->n_threads; i++)
		event_base_once(ls->s->threads[i].base, -1, EV_TIMEOUT, stop_listening,
		                &ls->s->threads[i], &zero);
	ls->drain_deadline_ns = sg_now_ns() + ls->s->cfg->drain_timeout_ms * 1000000ull;
	ls->drain_ev = event_new(ls->base, -1, EV_PERSIST, on_drain_tick, ls);
	event_add(ls->drain_ev, &tick);
}

static void *
thread_main(void *arg)
{
	struct sg_io_thread *t = arg;
	sg_conn_thread_enter(t);
	event_base_dispatch(t->base);
	return NULL;
}

static int
start_threads(struct sg_server *s)
{
	char name[16];
	for (int i = 0; i < s->n_threads; i++) {
		if (pthread_create(&s->threads[i].tid, NULL, thread_main, &s->threads[i]) != 0)
			return -1;
		/* Named so that a profile or bench/run can tell each thread's CPU time apart. */
		snprintf(name, sizeof name, "sg-io-%hu", (unsigned short)i); /* fits 16 bytes */
		pthread_setname_np(s->threads[i].tid, name);
	}
	return 0;
}

static void
join_threads(struct sg_server *s)
{
	for (int i = 0; i < s->n_threads; i++)
		if (s->threads[i].tid)
			pthread_join(s->threads[i].tid, NULL);
}

int
sg_server_run(struct sg_server *s, struct sg_store *store)
{
	struct loop_state ls = {.s = s, .store = store, .secrets_failed_gen = -1};
	struct timeval poll_tv = {0, POLL_MS * 1000};
	struct event *sigs[3];

	signal(SIGPIPE, SIG_IGN);
	ls.base = event_base_new();
	if (ls.base == NULL)
		return -1;
	sg_store_revision(store, &ls.revision);
	sigs[0] = evsignal_new(ls.base, SIGHUP, on_hup, &ls);
	sigs[1] = evsignal_new(ls.base, SIGTERM, on_term, &ls);
	sigs[2] = evsignal_new(ls.base, SIGINT, on_term, &ls);
	for (int i = 0; i < 3; i++)
		event_add(sigs[i], NULL);
	ls.poll_ev = event_new(ls.base, -1, EV_PERSIST, on_poll, &ls);
	event_add(ls.poll_ev, &poll_tv);
	int rc = start_threads(s);
	if (rc == 0)
		event_base_dispatch(ls.base);
	else
		for (int i = 0; i < s->n_threads; i++)
			event_base_loopexit(s->threads[i].base, NULL);
	join_threads(s);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_free(ls.poll_ev);
	if (ls.drain_ev)
		event_free(ls.drain_ev);
	event_base_free(ls.base);
	return rc;
}
