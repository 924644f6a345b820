/*
 * Listener threads: one event loop per thread, each with its own
 * SO_REUSEPORT socket, so the kernel spreads connections and no lock is
 * shared on accept.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include "http/sg_server.h"
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
resolve_listen(const struct sg_config *cfg, struct addrinfo **out, char *err, size_t errlen)
{
	return resolve(cfg->listen_host, cfg->listen_port, out, err, errlen);
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
 */
static int
probe_port_free(const struct addrinfo *ai, const struct sg_config *cfg, char *err, size_t errlen)
{
	int fd = open_listener(ai, 0);
	if (fd < 0) {
		snprintf(err, errlen,
		         "cannot listen on %s:%u: %s (is another sandgate or server using it? "
		         "pick another with --listen HOST:PORT)",
		         cfg->listen_host, cfg->listen_port, strerror(errno));
		return -1;
	}
	close(fd);
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

static int
setup_thread(struct sg_server *s, struct sg_io_thread *t, const struct addrinfo *ai, char *err,
             size_t errlen)
{
	const struct sg_config *cfg = s->cfg;
	struct timeval tmo = {cfg->read_timeout_ms / 1000, (cfg->read_timeout_ms % 1000) * 1000};

	t->server = s;
	t->listen_fd = open_listener(ai, 1);
	if (t->listen_fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->listen_host,
		         cfg->listen_port, strerror(errno));
		return -1;
	}
	/*
	 * evhttp toggles read and write interest several times per request;
	 * the changelist folds those into one epoll_ctl per fd per loop turn.
	 */
	struct event_config *ec = event_config_new();
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	t->base = ec ? event_base_new_with_config(ec) : NULL;
	event_config_free(ec);
	t->http = t->base ? evhttp_new(t->base) : NULL;
	t->metrics = sg_metrics_shard_new();
	if (t->http == NULL || t->metrics == NULL) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	evhttp_set_max_headers_size(t->http, (ev_ssize_t)cfg->max_header_bytes);
	/*
	 * libevent 2.1 answers an over-limit body itself, with an HTML page.
	 * Its cap sits at twice ours, so ordinary oversized bodies reach the
	 * validate step and get a problem+json 413; only absurd ones do not.
	 */
	evhttp_set_max_body_size(t->http, (ev_ssize_t)cfg->max_body_bytes * 2);
	evhttp_set_timeout_tv(t->http, &tmo);
	evhttp_set_allowed_methods(t->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(t->http, sg_http_on_request, t);
	struct timeval flush = {0, LOG_FLUSH_MS * 1000};
	t->log_timer = event_new(t->base, -1, EV_PERSIST, on_log_timer, t);
	t->throttle =
	    sg_throttle_thread_new(t->base, t->index, cfg, &sg_throttle_queue_ops, s->redis_ip);
	t->fetcher = sg_fetcher_new(t->base);
	if (t->log_timer == NULL || event_add(t->log_timer, &flush) != 0 || t->throttle == NULL ||
	    t->fetcher == NULL) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	t->listener = evhttp_accept_socket_with_handle(t->http, t->listen_fd);
	if (t->listener == NULL) {
		snprintf(err, errlen, "cannot accept on %s:%u", cfg->listen_host, cfg->listen_port);
		return -1;
	}
	t->listen_fd = -1; /* evhttp owns it now */
	if (sg_conn_thread_init(t, s->conn) != 0 ||
	    sg_conn_watch(t, t->http, &t->listener, false) != 0) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
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
	if (sg_conn_watch(t, s->admin_http, &s->admin_listener, true) != 0) {
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
	struct addrinfo *ai = NULL;
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
	if (s->threads == NULL || resolve_listen(s->cfg, &ai, err, errlen) != 0)
		goto fail;
	if (probe_port_free(ai, s->cfg, err, errlen) != 0 ||
	    sg_throttle_redis_resolve(s->cfg, s->redis_ip, sizeof(s->redis_ip), err, errlen) != 0)
		goto fail;
	if ((s->conn = sg_conn_shared_new(s->cfg, err, errlen)) == NULL)
		goto fail;
	if ((gw->unauth = sg_unauth_new(s->cfg)) == NULL) {
		snprintf(err, errlen, "out of memory for the unauthenticated refusals table");
		goto fail;
	}
	for (int i = 0; i < s->n_threads; i++) {
		s->threads[i].index = i;
		s->threads[i].listen_fd = -1;
		if (setup_thread(s, &s->threads[i], ai, err, errlen) != 0)
			goto fail;
	}
	if (setup_admin(s, err, errlen) != 0 || load_admin_token(s, err, errlen) != 0)
		goto fail;
	freeaddrinfo(ai);
	log_listeners(s);
	return s;
fail:
	if (ai)
		freeaddrinfo(ai);
	sg_server_free(s);
	return NULL;
}

void
sg_server_free(struct sg_server *s)
{
	if (s == NULL)
		return;
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
		else if (t->listen_fd >= 0)
			close(t->listen_fd);
		sg_conn_thread_free(t); /* after the connections' close callbacks */
		if (t->base)
			event_base_free(t->base);
		sg_http_spare_free(t); /* after the last request could finish */
		sg_snapshot_unref(t->snap);
	}
	free(s->threads);
	sg_conn_shared_free(s->conn);
	sg_unauth_free(s->gw->unauth); /* after the last request */
	s->gw->unauth = NULL;
	free(s);
}
