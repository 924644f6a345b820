/*
 * The libraries' floor: what sandgate's HTTP and JSON libraries cost per
 * call before any governance.  bench/run drives it with the same wrk load as
 * the gateway and nginx, so the three ratios come from one run.
 *
 * Each call does what every governed call must do with these libraries and
 * nothing more: evhttp parses the request, the gateway's JSON layer
 * (src/json: simdjson, RapidJSON's writer) parses the body and writes a
 * reply of the same shape as the simulator's, and the reply carries the
 * same ten headers.  No key, policy, limit, schema or
 * audit: whatever the gateway adds is governance.
 *
 * usage: bench_floor PORT THREADS   (runs until killed)
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "json/sg_json.h"

static int
reply_for(struct sg_json_val in, struct sg_jbuf *out)
{
	struct sg_jw w;
	struct sg_json_iter it;
	struct sg_json_val v;
	const char *key;
	size_t len;
	sg_jw_begin(&w, out);
	sg_jw_object(&w);
	sg_jw_keyz(&w, "id");
	sg_jw_stringz(&w, "ct_9r1l4t4p");
	sg_json_iter_init(&it, in);
	while (sg_json_iter_next(&it, &key, &len, &v)) {
		sg_jw_key(&w, key, len);
		sg_jw_value(&w, v);
	}
	sg_jw_keyz(&w, "created_at");
	sg_jw_stringz(&w, "2024-03-01T09:30:00Z");
	sg_jw_object_end(&w);
	return sg_jw_end(&w);
}

/* As the gateway does: the Date header formatted once a second per thread. */
static void
add_date(struct evkeyvalq *h)
{
	static _Thread_local time_t sec = -1;
	static _Thread_local char text[40];
	time_t now = time(NULL);
	struct tm tm;
	if (now != sec && gmtime_r(&now, &tm) != NULL &&
	    strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
		sec = now;
	if (sec == now)
		evhttp_add_header(h, "Date", text);
}

static void
add_headers(struct evkeyvalq *h)
{
	add_date(h);
	evhttp_add_header(h, "RateLimit-Policy", "\"bench:sandbox\";q=100000;w=1");
	evhttp_add_header(h, "RateLimit", "\"bench:sandbox\";r=99999;t=1");
	evhttp_add_header(h, "Sandgate-Priority", "normal");
	evhttp_add_header(h, "Sandgate-Cost", "0.0020 units (sandbox, not charged)");
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "traceparent",
	                  "00-879f2e19ce7104412867176f87c85347-4b6610cb9bb3beaa-01");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	struct sg_json_doc in;
	struct sg_jbuf out = {0};
	if (sg_json_parse((const char *)evbuffer_pullup(body, -1), len, 64, &in, NULL) !=
	        SG_JSON_OK ||
	    sg_json_type(in.root) != SG_JSON_OBJECT || reply_for(in.root, &out) != 0) {
		sg_jbuf_release(&out);
		evhttp_send_error(req, 400, NULL);
		return;
	}
	/* As the gateway does: the body straight into the reply's own buffer. */
	evbuffer_add(evhttp_request_get_output_buffer(req), out.data, out.len);
	sg_jbuf_release(&out);
	add_headers(evhttp_request_get_output_headers(req));
	evhttp_send_reply(req, 200, "OK", NULL);
}

static int
listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0) {
		perror("bench_floor: listen");
		exit(1);
	}
	return fd;
}

/* One event base per thread on its own SO_REUSEPORT socket, as the gateway does. */
static void *
serve(void *arg)
{
	int fd = listen_on(*(int *)arg);
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	struct evhttp *http = evhttp_new(base);
	if (base == NULL || http == NULL || evhttp_accept_socket(http, fd) != 0) {
		fprintf(stderr, "bench_floor: cannot start a thread\n");
		exit(1);
	}
	evhttp_set_gencb(http, on_request, NULL);
	event_base_dispatch(base);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_floor PORT THREADS\n");
		return 2;
	}
	int port = atoi(argv[1]), threads = atoi(argv[2]);
	if (port <= 0 || port > 65535 || threads < 1 || threads > 64) {
		fprintf(stderr, "bench_floor: PORT must be 1-65535 and THREADS 1-64\n");
		return 2;
	}
	pthread_t tid[64];
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tid[i], NULL, serve, &port) != 0)
			return 1;
	pthread_join(tid[0], NULL);
	return 0;
}
