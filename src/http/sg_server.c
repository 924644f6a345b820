/*
 * Listener threads: one event loop per thread, each with its own
 * SO_REUSEPORT socket, so the kernel spreads connections and no lock is
 * shared on accept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <netdb.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/sg_http.h"
#include "http/sg_http_audit.h"
#include "http/sg_server.h"
#include "http/sg_tls.h"
#include "obs/sg_log.h"
#include "path/step_throttle.h"
#include "throttle/sg_throttle_thread.h"
#include "throttle/sg_unauth.h"
#include "upstream/sg_fetch.h"

static int
resolve(const char *host, unsigned port_no, struct addrinfo **out, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char port[8];
	snprintf(port, sizeof(port), "%u", port_no);
	int rc = getaddrinfo(host, port, &hints, out);
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port_no,
		         gai_strerror(rc));
		return -1;
	}
	return 0;
}

static int
open_listener(const struct addrinfo *ai, int reuseport)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
		goto fail;
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * SO_REUSEPORT would let a second gateway silently share the port with a
 * first one.  A probe bind without it fails if anyone holds the port.
 * `hint` says where the address is set.
 */
static int
probe_port_free(const struct addrinfo *ai, const char *host, unsigned port, const char *hint,
                char *err, size_t errlen)
{
	int fd = open_listener(ai, 0);
	if (fd < 0) {
		snprintf(err, errlen,
		         "cannot listen on %s:%u: %s (is another sandgate or server using it? "
		         "pick another with %s)",
		         host, port, strerror(errno), hint);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * The plain and the TLS listener each bind with SO_REUSEPORT, so the same
 * address for both would not fail to bind: the kernel would share the
 * connections between them.  Refused before anything is bound.
 */
static int
check_distinct(const struct sg_config *cfg, char *err, size_t errlen)
{
	static const char *const any[] = {"0.0.0.0", "::", ""};
	bool wild = false;
	for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		wild = wild || strcmp(cfg->listen_host, any[i]) == 0 ||
		       strcmp(cfg->tls_host, any[i]) == 0;
	if (cfg->listen_port == 0 || cfg->tls_port != cfg->listen_port ||
	    (!wild && strcmp(cfg->listen_host, cfg->tls_host) != 0))
		return 0;
	snprintf(err, errlen,
	         "listen_tls.address %s:%u overlaps the plain listener %s:%u; give TLS a port of "
	         "its own",
	         cfg->tls_host, cfg->tls_port, cfg->listen_host, cfg->listen_port);
	return -1;
}

/* Where each public listener is, resolved once and probed before any thread binds. */
struct addrs {
	struct addrinfo *plain, *tls;
};

static void
addrs_free(struct addrs *a)
{
	if (a->plain)
		freeaddrinfo(a->plain);
	if (a->tls)
		freeaddrinfo(a->tls);
}

static int
resolve_public(const struct sg_config *cfg, struct addrs *a, char *err, size_t errlen)
{
	if (cfg->listen_port &&
	    (resolve(cfg->listen_host, cfg->listen_port, &a->plain, err, errlen) != 0 ||
	     probe_port_free(a->plain, cfg->listen_host, cfg->listen_port, "--listen HOST:PORT",
	                     err, errlen) != 0))
		return -1;
	if (cfg->tls_port &&
	    (check_distinct(cfg, err, errlen) != 0 ||
	     resolve(cfg->tls_host, cfg->tls_port, &a->tls, err, errlen) != 0 ||
	     probe_port_free(a->tls, cfg->tls_host, cfg->tls_port,
	                     "listen_tls.address in sandgate.yaml", err, errlen) != 0))
		return -1;
	return 0;
}

#define LOG_FLUSH_MS 100

static void
on_log_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_io_thread *t = arg;
	(void)fd;
	(void)what;
	sg_logbuf_flush(&t->log);
}

/*
 * Requests on the TLS listener.  A connection whose TLS bufferevent could
 * not be made (out of memory) fell back to evhttp's plain one: it is
 * refused, so that nobody is served in clear text, or without the client
 * certificate mutual TLS asks for, on the TLS port.
 */
static void
on_tls_request(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon != NULL &&
	    bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)) != NULL) {
		sg_http_on_request(req, arg);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	evhttp_send_reply(req, 503, "Service Unavailable", NULL);
}

/* An evhttp for a public listener, plain or TLS; NULL when out of memory. */
static struct evhttp *
public_http(struct sg_io_thread *t, void (*cb)(struct evhttp_request *, void *))
{
	const struct sg_config *cfg = t->server->cfg;
	struct timeval tmo = {cfg->read_timeout_ms / 1000, (cfg->read_timeout_ms % 1000) * 1000};
	struct evhttp *http = evhttp_new(t->base);
	if (http == NULL)
		return NULL;
	evhttp_set_max_headers_size(http, (ev_ssize_t)cfg->max_header_bytes);
	/*
	 * libevent 2.1 answers an over-limit body itself, with an HTML page.
	 * Its cap sits at twice ours, so ordinary oversized bodies reach the
	 * validate step and get a problem+json 413; only absurd ones do not.
	 */
	evhttp_set_max_body_size(http, (ev_ssize_t)cfg->max_body_bytes * 2);
	evhttp_set_timeout_tv(http, &tmo);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, cb, t);
	return http;
}

/* The thread's own socket on `ai` (SO_REUSEPORT), accepted by `http` and watched. */
static int
listen_public(struct sg_io_thread *t, struct evhttp *http, const struct addrinfo *ai,
              const char *host, unsigned port, struct evhttp_bound_socket **bound,
              enum sg_conn_listener which, char *err, size_t errlen)
{
	int fd = open_listener(ai, 1);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
		return -1;
	}
	*bound = evhttp_accept_socket_with_handle(http, fd); /* evhttp owns fd from here */
	if (*bound == NULL) {
		close(fd);
		snprintf(err, errlen, "cannot accept on %s:%u", host, port);
		return -1;
	}
	if (sg_conn_watch(t, http, bound, which, which == SG_CONN_TLS ? t->server->tls : NULL) !=
	    0) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	return 0;
}

static int
setup_thread(struct sg_server *s, struct sg_io_thread *t, const struct addrs *a, char *err,
             size_t errlen)
{
	const struct sg_config *cfg = s->cfg;

	t->server = s;
	/*
	 * evhttp toggles read and write interest several times per request;
	 * the changelist folds those into one epoll_ctl per fd per loop turn.
	 */
	struct event_config *ec = event_config_new();
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	t->base = ec ? event_base_new_with_config(ec) : NULL;
	event_config_free(ec);
	t->metrics = sg_metrics_shard_new();
	if (t->base == NULL || t->metrics == NULL ||
	    (a->plain && (t->http = public_http(t, sg_http_on_request)) == NULL) ||
	    (a->tls && (t->tls_http = public_http(t, on_tls_request)) == NULL)) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	struct timeval flush = {0, LOG_FLUSH_MS * 1000};
	t->log_timer = event_new(t->base, -1, EV_PERSIST, on_log_timer, t);
	t->throttle =
	    sg_throttle_thread_new(t->base, t->index, cfg, &sg_throttle_queue_ops, s->redis_ip);
	t->fetcher = sg_fetcher_new(t->base);
	if (t->log_timer == NULL || event_add(t->log_timer, &flush) != 0 || t->throttle == NULL ||
	    t->fetcher == NULL || sg_conn_thread_init(t, s->conn) != 0) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	if (t->http && listen_public(t, t->http, a->plain, cfg->listen_host, cfg->listen_port,
	                             &t->listener, SG_CONN_PUBLIC, err, errlen) != 0)
		return -1;
	if (t->tls_http && listen_public(t, t->tls_http, a->tls, cfg->tls_host, cfg->tls_port,
	                                 &t->tls_listener, SG_CONN_TLS, err, errlen) != 0)
		return -1;
	return 0;
}

/*
 * The operators' listener: /metrics and the detailed /readyz, kept off the
 * public port.  It runs on the first I/O thread's loop, under its own
 * small connection cap; one socket, so a second gateway's bind fails here.
 */
static int
setup_admin(struct sg_server *s, char *err, size_t errlen)
{
	const struct sg_config *cfg = s->cfg;
	struct sg_io_thread *t = &s->threads[0];
	struct addrinfo *ai = NULL;
	struct timeval tmo = {cfg->read_timeout_ms / 1000, (cfg->read_timeout_ms % 1000) * 1000};
	if (cfg->admin_port == 0)
		return 0;
	if (resolve(cfg->admin_host, cfg->admin_port, &ai, err, errlen) != 0)
		return -1;
	int fd = open_listener(ai, 0);
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen,
		         "cannot listen on %s:%u for the admin listener: %s (is another sandgate "
		         "using it? pick another with admin_listen in sandgate.yaml or "
		         "--admin-listen HOST:PORT, or turn it off with admin_listen: off)",
		         cfg->admin_host, cfg->admin_port, strerror(errno));
		return -1;
	}
	s->admin_http = evhttp_new(t->base);
	if (s->admin_http == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory setting up the admin listener");
		return -1;
	}
	evhttp_set_max_headers_size(s->admin_http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_max_body_size(s->admin_http, 1024);
	evhttp_set_timeout_tv(s->admin_http, &tmo);
	evhttp_set_allowed_methods(s->admin_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(s->admin_http, sg_http_on_admin_request, t);
	s->admin_listener = evhttp_accept_socket_with_handle(s->admin_http, fd);
	if (s->admin_listener == NULL) {
		snprintf(err, errlen, "cannot accept on %s:%u", cfg->admin_host, cfg->admin_port);
		return -1;
	}
	if (sg_conn_watch(t, s->admin_http, &s->admin_listener, SG_CONN_ADMIN, NULL) != 0) {
		snprintf(err, errlen, "out of memory setting up the admin listener");
		return -1;
	}
	return 0;
}

#define ADMIN_TOKEN_MIN 32
#define ADMIN_TOKEN_MAX 1024

/*
 * The admin token lets /metrics and the detailed /readyz through on the
 * public listener.  Like the server key, its file must be the gateway
 * user's alone; only a hash of it is kept.
 */
static int
load_admin_token(struct sg_server *s, char *err, size_t errlen)
{
	const char *path = s->cfg->admin_token_file;
	char buf[ADMIN_TOKEN_MAX + 2];
	struct stat st;
	if (path == NULL)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "admin_token_file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ssize_t n =
	    S_ISREG(st.st_mode) && !(st.st_mode & 077) ? read(fd, buf, sizeof(buf) - 1) : -1;
	close(fd);
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(
		    err, errlen,
		    "admin_token_file %s: must be a file only its owner can read (chmod 600 %s)",
		    path, path);
		return -1;
	}
	if (n < 0) {
		snprintf(err, errlen, "admin_token_file %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	size_t len = strcspn(buf, "\r\n");
	bool printable = len > 0;
	for (size_t i = 0; i < len; i++)
		printable = printable && buf[i] > ' ' && buf[i] < 0x7f;
	if (len < ADMIN_TOKEN_MIN || len > ADMIN_TOKEN_MAX || !printable) {
		snprintf(
		    err, errlen,
		    "admin_token_file %s: the first line must be a token of %d to %d printable "
		    "characters without spaces (e.g. head -c 32 /dev/urandom | base64 > %s)",
		    path, ADMIN_TOKEN_MIN, ADMIN_TOKEN_MAX, path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	crypto_generichash(s->admin_token_hash, sizeof(s->admin_token_hash), (unsigned char *)buf,
	                   len, NULL, 0);
	explicit_bzero(buf, sizeof(buf));
	s->has_admin_token = true;
	return 0;
}

static void
log_listeners(const struct sg_server *s)
{
	const struct sg_config *cfg = s->cfg;
	sg_log(SG_LOG_INFO,
	       json_pack("{s:I, s:i, s:i, s:i}", "max_connections",
	                 (json_int_t)sg_conn_max_open(s->conn), "max_connections_per_address",
	                 cfg->max_conns_per_addr, "header_timeout_ms", (int)cfg->header_timeout_ms,
	                 "body_timeout_ms", (int)cfg->body_timeout_ms),
	       "accepting at most %lld connections (%d per client address)",
	       (long long)sg_conn_max_open(s->conn), cfg->max_conns_per_addr);
	if (s->tls) {
		char serial[128];
		sg_tls_serial(s->tls, serial, sizeof(serial));
		sg_log(SG_LOG_INFO,
		       json_pack("{s:s, s:i, s:s, s:b}", "host", cfg->tls_host, "port",
		                 cfg->tls_port, "serial", serial, "client_certificates",
		                 cfg->tls_client_ca != NULL),
		       "listening for TLS on %s:%u (certificate serial %s%s)", cfg->tls_host,
		       cfg->tls_port, serial,
		       cfg->tls_client_ca ? "; clients must present a certificate" : "");
	}
	if (cfg->admin_port)
		sg_log(SG_LOG_INFO,
		       json_pack("{s:s, s:i, s:b}", "host", cfg->admin_host, "port",
		                 cfg->admin_port, "admin_token", s->has_admin_token),
		       "admin listener on %s:%u (/metrics, /readyz)", cfg->admin_host,
		       cfg->admin_port);
}

struct sg_server *
sg_server_new(struct sg_gateway *gw, char *err, size_t errlen)
{
	struct addrs a = {0};
	struct sg_server *s = calloc(1, sizeof(*s));
	if (s == NULL || evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "cannot initialise threads");
		free(s);
		return NULL;
	}
	s->gw = gw;
	s->cfg = gw->config;
	s->n_threads = gw->config->threads;
	s->threads = calloc((size_t)s->n_threads, sizeof(*s->threads));
	atomic_init(&s->store_ok, true);
	if (s->threads == NULL || resolve_public(s->cfg, &a, err, errlen) != 0)
		goto fail;
	if (sg_throttle_redis_resolve(s->cfg, s->redis_ip, sizeof(s->redis_ip), err, errlen) != 0)
		goto fail;
	if (s->cfg->tls_port && (s->tls = sg_tls_new(s->cfg, err, errlen)) == NULL)
		goto fail;
	if ((s->conn = sg_conn_shared_new(s->cfg, err, errlen)) == NULL)
		goto fail;
	if ((gw->unauth = sg_unauth_new(s->cfg)) == NULL) {
		snprintf(err, errlen, "out of memory for the unauthenticated refusals table");
		goto fail;
	}
	for (int i = 0; i < s->n_threads; i++) {
		s->threads[i].index = i;
		if (setup_thread(s, &s->threads[i], &a, err, errlen) != 0)
			goto fail;
	}
	if (setup_admin(s, err, errlen) != 0 || load_admin_token(s, err, errlen) != 0)
		goto fail;
	if (s->cfg->data_dir &&
	    (s->audit = sg_http_audit_new(s->cfg->data_dir, gw->server_secret)) == NULL) {
		snprintf(err, errlen, "cannot start the audit reader thread");
		goto fail;
	}
	addrs_free(&a);
	log_listeners(s);
	return s;
fail:
	addrs_free(&a);
	sg_server_free(s);
	return NULL;
}

void
sg_server_free(struct sg_server *s)
{
	if (s == NULL)
		return;
	/* A query finishing now would wake an event on a base freed below. */
	sg_http_audit_stop(s->audit);
	for (int i = 0; s->threads && i < s->n_threads; i++) {
		struct sg_io_thread *t = &s->threads[i];
		if (t->log_timer)
			event_free(t->log_timer);
		/* Fails each Redis decision still waiting; parked calls are freed below. */
		sg_throttle_thread_free(t->throttle);
		t->throttle = NULL;
		/* Calls in flight complete as cancelled while their requests live. */
		sg_fetcher_free(t->fetcher);
		t->fetcher = NULL;
		sg_http_abandon_suspended(t); /* before the log buffer their lines go to */
		sg_logbuf_free(&t->log);
		if (i == 0 && s->admin_http)
			evhttp_free(s->admin_http); /* on this thread's loop */
		if (t->http)
			evhttp_free(t->http); /* closes the listener and open connections */
		if (t->tls_http)
			evhttp_free(t->tls_http);
		sg_conn_thread_free(t); /* after the connections' close callbacks */
		if (t->base)
			event_base_free(t->base);
		sg_http_spare_free(t); /* after the last request could finish */
		sg_snapshot_unref(t->snap);
	}
	free(s->threads);
	sg_tls_free(s->tls); /* connections closed above held their own references */
	sg_conn_shared_free(s->conn);
	sg_http_audit_free(s->audit); /* after the requests it may still hold */
	sg_unauth_free(s->gw->unauth); /* after the last request */
	s->gw->unauth = NULL;
	free(s);
}
