/*
 * sg_http: what the HTTP modules share.  One sg_io_thread per event loop;
 * each owns its event_base, evhttp, listener, pinned snapshot and metrics
 * shard, so request handling shares nothing mutable between threads.
 */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "catalog/sg_snapshot.h"
#include "http/sg_conn.h"
#include "obs/sg_log.h"
#include "obs/sg_metrics.h"
#include "obs/sg_trace.h"
#include "path/sg_req.h"

struct sg_server;

struct sg_io_thread {
	int index;
	pthread_t tid;
	struct sg_server *server;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *listener; /* NULL when there is no plain listener */
	/* listen_tls: its own evhttp, since evhttp makes every connection with one bevcb. */
	struct evhttp *tls_http;
	struct evhttp_bound_socket *tls_listener;
	struct sg_snapshot *snap; /* pinned; swapped when the generation moves */
	uint64_t snap_gen;
	struct sg_metrics_shard *metrics;
	struct sg_logbuf log; /* access-log lines waiting for the flush timer */
	struct event *log_timer;
	struct sg_http_ctx *suspended;       /* requests waiting in the path, doubly linked */
	struct sg_throttle_thread *throttle; /* the thread's fair queue and Redis link */
	struct sg_fetcher *fetcher;          /* upstream calls: curl multi on this base */
	_Atomic uint64_t last_done_ns; /* when this thread last finished a request */
	struct sg_http_ctx *spare;     /* finished contexts kept for reuse, linked by next */
	unsigned n_spare;
	struct sg_conns *conns; /* connection deadlines, caps, accept pauses (sg_conn.c) */
};

struct sg_server {
	struct sg_gateway *gw;
	const struct sg_config *cfg;
	struct sg_io_thread *threads;
	int n_threads;
	_Atomic bool draining;
	_Atomic bool store_ok;
	char redis_ip[64]; /* redis.host, resolved once before the loops start */
	struct sg_conn_shared *conn; /* caps and deadlines shared by the threads (sg_conn.c) */
	struct sg_tls *tls;          /* listen_tls's context; NULL: no TLS listener */
	/* The operators' listener (admin_listen), on the first I/O thread's loop. */
	struct evhttp *admin_http;
	struct evhttp_bound_socket *admin_listener;
	/* BLAKE2b of the admin token (admin_token_file), compared in constant time. */
	unsigned char admin_token_hash[32];
	bool has_admin_token;
	/* GET /admin/v1/audit's reader thread (sg_http_audit.c); NULL without a data dir. */
	struct sg_http_audit *audit;
};

/* Per-request scratch shared by the handlers. */
struct sg_http_ctx {
	struct sg_io_thread *t;
	struct evhttp_request *req;
	struct sg_trace trace;
	uint64_t start_ns;
	const char *path;
	/* Points at `req_state` once a handler identified or governed the call. */
	struct sg_req *gov;
	bool governed; /* a connector call: counts as a decision */
	/* While the path is suspended: a wake-up timer, a pinned snapshot and list links. */
	bool is_suspended;
	struct event *wake_ev;
	struct sg_snapshot *pinned;
	struct sg_http_ctx *prev, *next;
	/* The connection it came on, NULL if untracked; open until the reply (evhttp reads
	 * nothing while a handler holds the request, so it cannot see it close). */
	struct sg_conn *conn;
	bool admin; /* it came on the admin listener */
	char connector_name[96], operation_name[96];
	struct sg_req req_state;
};

uint64_t sg_now_ns(void);

/* Refreshes the thread's pinned snapshot if a reload happened; may return NULL. */
struct sg_snapshot *sg_http_snapshot(struct sg_io_thread *t);

/* Entry points registered with evhttp: the public listener and the admin listener. */
void sg_http_on_request(struct evhttp_request *req, void *arg);
void sg_http_on_admin_request(struct evhttp_request *req, void *arg);
/* Counts, logs and frees a request once its reply has been sent. */
void sg_http_done(struct sg_http_ctx *c);
/* Frees the contexts a thread kept for reuse; after its last request. */
void sg_http_spare_free(struct sg_io_thread *t);

/* The wake-ups steps use through sg_req.io (sg_http_async.c). */
extern const struct sg_req_io sg_http_req_io;
/* Parks a governed request whose path returned SG_STEP_AGAIN. */
void sg_http_suspend(struct sg_http_ctx *c);
/* Takes a parked request off its thread's list, before it is answered. */
void sg_http_unsuspend(struct sg_http_ctx *c);
/* Runs the path of a woken request on; defined with the governed call. */
void sg_http_governed_resume(struct sg_http_ctx *c);
/* At shutdown: frees requests still parked, without replying. */
void sg_http_abandon_suspended(struct sg_io_thread *t);

/* Response helpers: each sends exactly one reply. */
void sg_http_send_json(struct sg_http_ctx *c, int status, json_t *body /* stolen */,
                       const char *content_type);
void sg_http_send_text(struct sg_http_ctx *c, int status, const char *text, size_t len,
                       const char *content_type);
void sg_http_send_problem(struct sg_http_ctx *c, enum sg_problem_code code, const char *detail);
/* Sends `body` (JSON text from the writer); the caller still owns and releases it. */
void sg_http_send_jbuf(struct sg_http_ctx *c, int status, const struct sg_jbuf *body,
                       const char *content_type);
/* Sends the refusal of path request `r` as problem+json. */
void sg_http_send_refusal(struct sg_http_ctx *c, struct sg_req *r);

/* Handlers outside the governed path. */
void sg_http_healthz(struct sg_http_ctx *c);
/* The status, and with `detailed` every check's figures and the sandbox's layout. */
void sg_http_readyz(struct sg_http_ctx *c, bool detailed);
void sg_http_metrics(struct sg_http_ctx *c);
/* Whether the request carries the admin token (admin_token_file) as its bearer. */
bool sg_http_admin_token_ok(struct sg_http_ctx *c);
void sg_http_catalog(struct sg_http_ctx *c);
void sg_http_usage(struct sg_http_ctx *c);
void sg_http_session_start(struct sg_http_ctx *c);
void sg_http_session_show(struct sg_http_ctx *c, const char *id);
void sg_http_session_end(struct sg_http_ctx *c, const char *id);
/* A session's limits, usage and recent traces, as GET /v1/sessions/{id} shows them. */
json_t *sg_http_session_json(const struct sg_req *r, struct sg_session *ss);
/* Who the identified caller is: key id, tenant, user, role, mode, expiry. */
json_t *sg_http_principal_json(const struct sg_req *r);
void sg_http_governed(struct sg_http_ctx *c, const char *connector, const char *operation);
/* Template runs (sg_http_runs.c). */
void sg_http_run_start(struct sg_http_ctx *c, const char *template_name);
void sg_http_run_show(struct sg_http_ctx *c, const char *run_id);

/* Identifies the caller for the read-only API; replies and returns -1 on failure. */
int sg_http_identify_or_reply(struct sg_http_ctx *c, struct sg_req *r);

/* Adds RateLimit, RateLimit-Policy and (on 429) Retry-After for `r`. */
void sg_http_rate_headers(struct sg_http_ctx *c, const struct sg_req *r);

#endif
