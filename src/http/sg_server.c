/*
 * Listener threads: one event loop per thread, each with its own
 * SO_REUSEPORT socket, so the kernel spreads connections and no lock is
 * shared on accept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/sg_http.h"
#include "http/sg_server.h"
#include "obs/sg_log.h"
#include "path/step_throttle.h"
#include "throttle/sg_throttle_thread.h"

static int
resolve_listen(const struct sg_config *cfg, struct addrinfo **out, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char port[8];
	snprintf(port, sizeof(port), "%u", cfg->listen_port);
	int rc = getaddrinfo(cfg->listen_host, port, &hints, out);
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->listen_host,
		         cfg->listen_port, gai_strerror(rc));
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
	if (t->log_timer == NULL || event_add(t->log_timer, &flush) != 0 || t->throttle == NULL) {
		snprintf(err, errlen, "out of memory setting up the event loops");
		return -1;
	}
	t->listener = evhttp_accept_socket_with_handle(t->http, t->listen_fd);
	if (t->listener == NULL) {
		snprintf(err, errlen, "cannot accept on %s:%u", cfg->listen_host, cfg->listen_port);
		return -1;
	}
	t->listen_fd = -1; /* evhttp owns it now */
	return 0;
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
	for (int i = 0; i < s->n_threads; i++) {
		s->threads[i].index = i;
		s->threads[i].listen_fd = -1;
		if (setup_thread(s, &s->threads[i], ai, err, errlen) != 0)
			goto fail;
	}
	freeaddrinfo(ai);
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
		sg_http_abandon_suspended(t); /* before the log buffer their lines go to */
		sg_logbuf_free(&t->log);
		if (t->http)
			evhttp_free(t->http); /* closes the listener and open connections */
		else if (t->listen_fd >= 0)
			close(t->listen_fd);
		if (t->base)
			event_base_free(t->base);
		sg_http_spare_free(t); /* after the last request could finish */
		sg_snapshot_unref(t->snap);
	}
	free(s->threads);
	free(s);
}
