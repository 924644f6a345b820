/*
 * sg_fetch: upstream exchanges through curl's multi interface on a libevent
 * loop.  The upstream is an evhttp server on the same event_base, bound to
 * 127.0.0.1 on a port the kernel picks, so a test runs one loop for both
 * ends and waits for states by turning it, with a deadline.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/sg_clock.h"
#include "upstream/sg_fetch.h"

/* The upstream: what it saw, and a request it holds unanswered. */
struct upstream {
	struct event_base *base;
	struct evhttp *http;
	uint16_t port;
	int requests;
	char method[16];
	char *body;
	size_t body_len;
	char headers[2048]; /* "name: value\n" lines, as received */
	struct evhttp_request *held;
	struct event *late; /* answers the held request, long after any fetch's timeout */
};

/* What the completion callback saw. */
struct outcome {
	int calls;
	enum sg_fetch_error error;
	char message[160];
	long status;
	char *body;
	size_t body_len;
	char content_type[64], retry_after[32], location[64];
	uint64_t connect_us, total_us;
	bool reused;
	long http_version;
};

struct admit_log {
	bool allow;
	int calls;
	struct sockaddr_in last;
};

struct fx {
	struct event_base *base;
	struct upstream up;
	struct sg_fetcher *fetcher;
	struct event *tick;
	struct admit_log admit;
	char url[128];
};

static bool in_start; /* set around sg_fetch_start: `done` must never run inside it */

#define BIG_BODY 65536

static void
on_held_gone(struct evhttp_connection *c, void *arg)
{
	struct upstream *up = arg;
	(void)c;
	up->held = NULL;
}

static void
on_late(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	(void)fd;
	(void)what;
	if (up->held)
		evhttp_send_reply(up->held, 200, "OK", NULL);
	up->held = NULL;
}

static void
record(struct upstream *up, struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t off = 0;
	up->headers[0] = '\0';
	for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
		off += (size_t)snprintf(up->headers + off, sizeof(up->headers) - off, "%s: %s\n",
		                        kv->key, kv->value);
	free(up->body);
	up->body_len = evbuffer_get_length(b);
	up->body = malloc(up->body_len + 1);
	assert_non_null(up->body);
	evbuffer_copyout(b, up->body, up->body_len);
}

static void
send_big(struct evhttp_request *req, bool chunked)
{
	struct evbuffer *b = evbuffer_new();
	char *fill = malloc(BIG_BODY);
	assert_non_null(fill);
	memset(fill, 'x', BIG_BODY);
	evbuffer_add(b, fill, BIG_BODY);
	free(fill);
	if (chunked) { /* no Content-Length: only the write callback can stop it */
		evhttp_send_reply_start(req, 200, "OK");
		evhttp_send_reply_chunk(req, b);
		evhttp_send_reply_end(req);
	} else {
		evhttp_send_reply(req, 200, "OK", b);
	}
	evbuffer_free(b);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct upstream *up = arg;
	const char *uri = evhttp_request_get_uri(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();
	static const char *const names[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
	                                    "OPTIONS", "TRACE", "CONNECT", "PATCH"};
	int m = __builtin_ctz((unsigned)evhttp_request_get_command(req));
	up->requests++;
	snprintf(up->method, sizeof(up->method), "%s", m < 9 ? names[m] : "?");
	record(up, req);
	if (strcmp(uri, "/hello") == 0) {
		evhttp_add_header(out, "Content-Type", "text/plain; charset=utf-8");
		evbuffer_add_printf(b, "hello");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/big") == 0 || strcmp(uri, "/bigchunked") == 0) {
		send_big(req, strcmp(uri, "/bigchunked") == 0);
	} else if (strcmp(uri, "/hang") == 0) {
		struct timeval later = {3, 0};
		up->held = req;
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_held_gone, up);
		evtimer_add(up->late, &later);
	} else if (strcmp(uri, "/redirect") == 0) {
		evhttp_add_header(out, "Location", "/hello");
		evhttp_send_reply(req, 302, "Found", NULL);
	} else if (strcmp(uri, "/busy") == 0) {
		evhttp_add_header(out, "retry-after", "7");
		evhttp_send_reply(req, 503, "Service Unavailable", NULL);
	} else {
		evhttp_send_reply(req, 200, "OK", NULL);
	}
	evbuffer_free(b);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	assert_non_null(fx);
	fx->base = event_base_new();
	fx->up.base = fx->base;
	fx->up.http = evhttp_new(fx->base);
	fx->up.late = evtimer_new(fx->base, on_late, &fx->up);
	evhttp_set_gencb(fx->up.http, on_request, &fx->up);
	evhttp_set_allowed_methods(fx->up.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
	bs = evhttp_bind_socket_with_handle(fx->up.http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len),
	                 0);
	fx->up.port = ntohs(sin.sin_port);
	fx->fetcher = sg_fetcher_new(fx->base);
	assert_non_null(fx->fetcher);
	/* A turn of the loop never blocks for long, so a deadline is always checked. */
	fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
	struct timeval ms10 = {0, 10000};
	event_add(fx->tick, &ms10);
	fx->admit.allow = true;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	sg_fetcher_free(fx->fetcher);
	event_free(fx->up.late);
	evhttp_free(fx->up.http);
	event_free(fx->tick);
	event_base_free(fx->base);
	free(fx->up.body);
	free(fx);
	return 0;
}

static bool
admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
	struct admit_log *a = arg;
	a->calls++;
	if (sa->sa_family == AF_INET && len >= sizeof(a->last))
		memcpy(&a->last, sa, sizeof(a->last));
	return a->allow;
}

static void
on_done(void *arg, const struct sg_fetch_result *r)
{
	struct outcome *o = arg;
	assert_false(in_start);
	o->calls++;
	o->error = r->error;
	snprintf(o->message, sizeof(o->message), "%s", r->message);
	o->status = r->status;
	assert_non_null(r->body);
	assert_int_equal(r->body[r->body_len], '\0');
	free(o->body);
	o->body = malloc(r->body_len + 1);
	assert_non_null(o->body);
	memcpy(o->body, r->body, r->body_len + 1);
	o->body_len = r->body_len;
	snprintf(o->content_type, sizeof(o->content_type), "%s",
	         r->content_type ? r->content_type : "");
	snprintf(o->retry_after, sizeof(o->retry_after), "%s",
	         r->retry_after ? r->retry_after : "");
	snprintf(o->location, sizeof(o->location), "%s", r->location ? r->location : "");
	o->connect_us = r->connect_us;
	o->total_us = r->total_us;
	o->reused = r->reused;
	o->http_version = r->http_version;
}

static struct sg_fetch_request
request(struct fx *fx, const char *method, const char *path)
{
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u%s", fx->up.port, path);
	return (struct sg_fetch_request){
	    .method = method,
	    .url = fx->url,
	    .connect_timeout_ms = 2000,
	    .timeout_ms = 5000,
	    .max_response = 1 << 20,
	    .admit = admit,
	    .admit_arg = &fx->admit,
	};
}

static struct sg_fetch *
start(struct fx *fx, const struct sg_fetch_request *rq, struct outcome *o)
{
	in_start = true;
	struct sg_fetch *x = sg_fetch_start(fx->fetcher, rq, on_done, o);
	in_start = false;
	assert_non_null(x);
	return x;
}

/* Turns the loop until *flag is nonzero or 10 s pass. */
static void
run_until(struct fx *fx, const int *flag)
{
	uint64_t deadline = sg_mono_ns() + 10ull * 1000000000ull;
	while (*flag == 0 && sg_mono_ns() < deadline)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_not_equal(*flag, 0);
}

/* Turns the loop until the upstream holds a request, or 10 s pass. */
static void
wait_held(struct fx *fx)
{
	uint64_t deadline = sg_mono_ns() + 10ull * 1000000000ull;
	while (fx->up.held == NULL && sg_mono_ns() < deadline)
		event_base_loop(fx->base, EVLOOP_ONCE);
	assert_non_null(fx->up.held);
}

static void
fetch(struct fx *fx, const struct sg_fetch_request *rq, struct outcome *o)
{
	o->calls = 0;
	start(fx, rq, o);
	run_until(fx, &o->calls);
	assert_int_equal(o->calls, 1);
}

static void
test_get_returns_status_body_and_content_type(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "hello");
	assert_int_equal(o.body_len, 5);
	assert_string_equal(o.content_type, "text/plain; charset=utf-8");
	assert_string_equal(fx->up.method, "GET");
	assert_int_equal(o.http_version, 1);
	assert_true(o.total_us > 0);
	assert_false(o.reused);
	/* The admitted address is the one connected to: checked at connect and before sending. */
	assert_int_equal(fx->admit.calls, 2);
	assert_int_equal(ntohs(fx->admit.last.sin_port), fx->up.port);
	free(o.body);
}

/* Counts how many of the upstream's recorded header lines start with `name:`. */
static int
seen(const struct upstream *up, const char *name)
{
	int n = 0;
	size_t nl = strlen(name);
	for (const char *p = up->headers; *p; p = strchr(p, '\n') + 1)
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			n++;
	return n;
}

static int
lines(const struct upstream *up)
{
	int n = 0;
	for (const char *p = up->headers; *p; p++)
		n += *p == '\n';
	return n;
}

static void
test_post_sends_the_body_and_only_the_headers_given(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	const char *hdrs[] = {"Content-Type: application/json", "X-Trace: abc",
	                      "Authorization: Bearer t0k", "X-Empty:"};
	/* Over 1 KiB, where curl would otherwise ask for 100-continue; a NUL inside. */
	char body[2000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	body[100] = '\0';
	struct sg_fetch_request rq = request(fx, "POST", "/echo");
	rq.headers = hdrs;
	rq.n_headers = 4;
	rq.body = body;
	rq.body_len = sizeof(body);
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(fx->up.method, "POST");
	assert_int_equal(fx->up.body_len, sizeof(body));
	assert_memory_equal(fx->up.body, body, sizeof(body));
	assert_int_equal(seen(&fx->up, "Content-Type"), 1);
	assert_non_null(strstr(fx->up.headers, "Content-Type: application/json\n"));
	assert_non_null(strstr(fx->up.headers, "X-Trace: abc\n"));
	assert_non_null(strstr(fx->up.headers, "Authorization: Bearer t0k\n"));
	assert_non_null(strstr(fx->up.headers, "X-Empty: \n"));
	assert_int_equal(seen(&fx->up, "Host"), 1);
	assert_int_equal(seen(&fx->up, "Content-Length"), 1);
	/* Nothing the caller did not list, but Host and Content-Length. */
	assert_int_equal(seen(&fx->up, "Accept"), 0);
	assert_int_equal(seen(&fx->up, "Expect"), 0);
	assert_int_equal(seen(&fx->up, "User-Agent"), 0);
	assert_int_equal(lines(&fx->up), 6);

	/* Another method with a body goes by its name; still no form Content-Type added. */
	rq = request(fx, "PUT", "/echo");
	rq.body = "{}";
	rq.body_len = 2;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_string_equal(fx->up.method, "PUT");
	assert_int_equal(fx->up.body_len, 2);
	assert_int_equal(seen(&fx->up, "Content-Type"), 0);
	assert_int_equal(lines(&fx->up), 2); /* Host, Content-Length */
	free(o.body);
}

static void
test_a_second_fetch_reuses_the_connection(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_false(o.reused);
	rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_true(o.reused);
	assert_int_equal(o.connect_us, 0);
	/* One connection checked once, and each request on it checked before it is sent. */
	assert_int_equal(fx->admit.calls, 3);
	assert_int_equal(fx->up.requests, 2);
	free(o.body);
}

static void
test_a_kept_connection_is_judged_again_for_each_request(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	/* The same kept connection, for a request its caller may not send there. */
	fx->admit.allow = false;
	rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_REFUSED);
	assert_int_equal(fx->up.requests, 1);
	free(o.body);
}

static void
test_a_body_over_the_cap_is_too_large(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	/* Under the cap, the whole body. */
	struct sg_fetch_request rq = request(fx, "GET", "/big");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.body_len, BIG_BODY);
	/* Over it, with a Content-Length and without one. */
	rq = request(fx, "GET", "/big");
	rq.max_response = 1000;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TOO_LARGE);
	assert_non_null(strstr(o.message, "1000 bytes"));
	rq = request(fx, "GET", "/bigchunked");
	rq.max_response = 1000;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TOO_LARGE);
	assert_true(o.body_len <= 1000);
	free(o.body);
}

static void
test_an_upstream_that_never_answers_times_out(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hang");
	rq.timeout_ms = 200;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TIMEOUT);
	/* curl's own clock: at the timeout, far from the 3 s answer. */
	assert_true(o.total_us >= 200000);
	assert_true(o.total_us < 1000000);
	free(o.body);
}

static void
test_a_refused_address_is_never_connected(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 8), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	struct sg_fetch_request rq = request(fx, "GET", "/");
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u/", ntohs(sin.sin_port));
	fx->admit.allow = false;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_REFUSED);
	assert_true(fx->admit.calls >= 1);
	/* A loopback connect completes in the kernel at once: none is waiting. */
	assert_int_equal(accept(l, NULL, NULL), -1);
	assert_int_equal(errno, EAGAIN);
	close(l);
	free(o.body);
}

static void
test_a_closed_port_is_a_connect_error(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	/* Bound but not listening: the port stays ours, and every connect is refused. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	struct sg_fetch_request rq = request(fx, "GET", "/");
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u/", ntohs(sin.sin_port));
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_CONNECT);
	assert_true(o.message[0] != '\0');
	close(s);
	free(o.body);
}

static void
test_a_stalled_handshake_is_a_connect_timeout(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	/* Listening but never accepting: the kernel completes TCP, nobody speaks TLS. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 8), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	struct sg_fetch_request rq = request(fx, "GET", "/");
	snprintf(fx->url, sizeof(fx->url), "https://127.0.0.1:%u/", ntohs(sin.sin_port));
	rq.connect_timeout_ms = 200;
	rq.timeout_ms = 10000;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_CONNECT);
	/*
	 * Ended by the connect timeout, far from the total one.  Loading the
	 * system's trust store for the first TLS connection happens inside
	 * curl's turn and takes a good part of a second under ASan, hence
	 * the room.
	 */
	assert_true(o.total_us >= 200000);
	assert_true(o.total_us < 5000000);
	/* Plain HTTP to the same socket: connected and sent, then no answer. */
	rq = request(fx, "GET", "/");
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u/", ntohs(sin.sin_port));
	rq.timeout_ms = 200;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TIMEOUT);
	close(l);
	free(o.body);
}

static void
test_a_redirect_comes_back_unfollowed(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/redirect");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.status, 302);
	assert_string_equal(o.location, "/hello");
	assert_int_equal(fx->up.requests, 1);
	free(o.body);
}

static void
test_retry_after_is_kept(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/busy");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.status, 503);
	assert_string_equal(o.retry_after, "7");
	assert_string_equal(o.location, "");
	free(o.body);
}

static void
test_cancel_runs_the_callback_once(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0}, early = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hang");
	/* In flight: the upstream holds the request. */
	struct sg_fetch *x = start(fx, &rq, &o);
	wait_held(fx);
	sg_fetch_cancel(x);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, SG_FETCH_CANCELLED);
	/* Before the loop ever ran it. */
	rq = request(fx, "GET", "/hello");
	x = start(fx, &rq, &early);
	sg_fetch_cancel(x);
	assert_int_equal(early.calls, 1);
	assert_int_equal(early.error, SG_FETCH_CANCELLED);
	for (int i = 0; i < 20; i++)
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(o.calls, 1);
	assert_int_equal(early.calls, 1);
	/* The fetcher still works. */
	rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	free(o.body);
	free(early.body);
}

static void
test_freeing_the_fetcher_completes_what_is_in_flight(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	struct sg_fetch_request rq = request(fx, "GET", "/hang");
	start(fx, &rq, &o);
	wait_held(fx);
	sg_fetcher_free(fx->fetcher);
	fx->fetcher = NULL;
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, SG_FETCH_CANCELLED);
	free(o.body);
}

static void
test_a_failure_in_start_completes_from_the_loop(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	const char *hdrs[] = {"X-Bad: a\r\nX-Injected: b"};
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	rq.headers = hdrs;
	rq.n_headers = 1;
	start(fx, &rq, &o);
	assert_int_equal(o.calls, 0); /* on_done also asserts it never runs inside start */
	run_until(fx, &o.calls);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.error, SG_FETCH_INTERNAL);
	assert_int_equal(fx->up.requests, 0);
	free(o.body);
}

static void
test_a_resolve_pin_is_what_admit_sees(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	char pin[64];
	const char *pins[] = {pin};
	snprintf(pin, sizeof(pin), "upstream.test:%u:127.0.0.1", fx->up.port);
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	snprintf(fx->url, sizeof(fx->url), "http://upstream.test:%u/hello", fx->up.port);
	rq.resolve = pins;
	rq.n_resolve = 1;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_string_equal(o.body, "hello");
	assert_int_equal(fx->admit.calls, 2); /* at connect, and before sending */
	assert_int_equal(fx->admit.last.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(ntohs(fx->admit.last.sin_port), fx->up.port);
	assert_non_null(strstr(fx->up.headers, "Host: upstream.test:"));
	free(o.body);
}

/*
 * TLS and HTTP/2 against a real server: nginx with `listen ... ssl http2`,
 * its certificate signed by a CA made here with the openssl CLI.  Skipped
 * when nginx or openssl is not installed.
 */
struct tls_upstream {
	char dir[64];
	pid_t pid;
	uint16_t port;
	char ca[96];
};

static struct tls_upstream tls;

static const char *
find_tool(const char *name, char *path, size_t len)
{
	const char *dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, len, "%s/%s", dirs[i], name);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

static int
make_certs(const char *dir)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "cd %s && exec >openssl.log 2>&1 && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout ca.key -out ca.pem -days 2 -subj /CN=sandgate-test-ca && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-keyout server.key -out server.csr -subj /CN=upstream.test && "
	         "printf 'subjectAltName=DNS:upstream.test\\n' >ext.cnf && "
	         "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
	         "-out server.pem -days 2 -extfile ext.cnf",
	         dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint16_t
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	close(s);
	return ntohs(sin.sin_port);
}

static int
write_nginx_conf(const char *dir, uint16_t port)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	FILE *fp = fopen(path, "w");
	if (fp == NULL)
		return -1;
	fprintf(fp,
	        "daemon off;\nmaster_process off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
	        "events { worker_connections 64; }\n"
	        "http {\n access_log off;\n client_body_temp_path %s;\n proxy_temp_path %s;\n"
	        " fastcgi_temp_path %s;\n uwsgi_temp_path %s;\n scgi_temp_path %s;\n"
	        " server {\n  listen 127.0.0.1:%u ssl http2;\n"
	        "  ssl_certificate %s/server.pem;\n  ssl_certificate_key %s/server.key;\n"
	        "  location / { return 200 \"tls-ok\"; }\n }\n}\n",
	        dir, dir, dir, dir, dir, dir, dir, port, dir, dir);
	return fclose(fp);
}

/* Polls a TCP connect to nginx's port, with a deadline. */
static bool
nginx_up(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint64_t deadline = sg_mono_ns() + 10ull * 1000000000ull;
	const struct timespec tick = {0, 10 * 1000000L};
	while (sg_mono_ns() < deadline) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		int rc = connect(s, (struct sockaddr *)&sin, sizeof(sin));
		close(s);
		if (rc == 0)
			return true;
		if (waitpid(tls.pid, NULL, WNOHANG) == tls.pid) {
			tls.pid = 0;
			return false; /* exited: the port was taken, say */
		}
		nanosleep(&tick, NULL);
	}
	return false;
}

static int
start_nginx(const char *nginx)
{
	char conf[128], errlog[128];
	for (int attempt = 0; attempt < 3; attempt++) {
		tls.port = free_port();
		if (write_nginx_conf(tls.dir, tls.port) != 0)
			return -1;
		snprintf(conf, sizeof(conf), "%s/nginx.conf", tls.dir);
		snprintf(errlog, sizeof(errlog), "%s/error.log", tls.dir);
		if ((tls.pid = fork()) == 0) {
			execl(nginx, "nginx", "-e", errlog, "-p", tls.dir, "-c", conf,
			      (char *)NULL);
			_exit(127);
		}
		if (tls.pid > 0 && nginx_up(tls.port))
			return 0;
	}
	return -1;
}

static int
tls_teardown(void **state)
{
	char cmd[128];
	if (tls.pid > 0) {
		kill(tls.pid, SIGTERM);
		waitpid(tls.pid, NULL, 0);
	}
	if (tls.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tls.dir);
		assert_int_equal(system(cmd), 0);
	}
	return teardown(state);
}

static int
tls_setup(void **state)
{
	char nginx_path[64], openssl_path[64];
	const char *nginx = find_tool("nginx", nginx_path, sizeof(nginx_path));
	tls = (struct tls_upstream){0};
	setup(state);
	if (nginx == NULL || find_tool("openssl", openssl_path, sizeof(openssl_path)) == NULL)
		return 0; /* the test skips */
	snprintf(tls.dir, sizeof(tls.dir), "/tmp/sg-fetch-tls-XXXXXX");
	assert_non_null(mkdtemp(tls.dir));
	snprintf(tls.ca, sizeof(tls.ca), "%s/ca.pem", tls.dir);
	if (make_certs(tls.dir) != 0 || start_nginx(nginx) != 0) {
		print_error("could not make a CA or start nginx; see %s\n", tls.dir);
		tls.dir[0] = '\0'; /* kept for a look */
		tls_teardown(state);
		return -1;
	}
	return 0;
}

static struct sg_fetch_request
tls_request(struct fx *fx, const char **pins, char *pin, size_t pin_len)
{
	struct sg_fetch_request rq = request(fx, "GET", "/");
	snprintf(pin, pin_len, "upstream.test:%u:127.0.0.1", tls.port);
	pins[0] = pin;
	snprintf(fx->url, sizeof(fx->url), "https://upstream.test:%u/", tls.port);
	rq.resolve = pins;
	rq.n_resolve = 1;
	return rq;
}

static void
test_tls_with_the_ca_speaks_http2_on_one_connection(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	char pin[64];
	const char *pins[1];
	if (tls.pid <= 0)
		skip();
	struct sg_fetch_request rq = tls_request(fx, pins, pin, sizeof(pin));
	rq.ca_bundle = tls.ca;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.body, "tls-ok");
	assert_int_equal(o.http_version, 2);
	assert_false(o.reused);
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_OK);
	assert_int_equal(o.http_version, 2);
	assert_true(o.reused);
	assert_int_equal(fx->admit.calls, 3); /* one connect, two requests */
	free(o.body);
}

static void
test_tls_without_the_ca_fails_verification(void **state)
{
	struct fx *fx = *state;
	struct outcome o = {0};
	char pin[64];
	const char *pins[1];
	if (tls.pid <= 0)
		skip();
	struct sg_fetch_request rq = tls_request(fx, pins, pin, sizeof(pin));
	fetch(fx, &rq, &o); /* the system's trust store does not know the test CA */
	assert_int_equal(o.error, SG_FETCH_TLS);
	assert_true(o.message[0] != '\0');
	/* Nor does a verified name stand in for another: 127.0.0.1 is not in the certificate. */
	rq.ca_bundle = tls.ca;
	snprintf(fx->url, sizeof(fx->url), "https://127.0.0.1:%u/", tls.port);
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TLS);
	free(o.body);
}

static int
count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* A whole life: connections made, kept, timed out, cancelled; then nothing left open. */
static void
one_life(void)
{
	void *state;
	struct outcome o = {0};
	setup(&state);
	struct fx *fx = state;
	struct sg_fetch_request rq = request(fx, "GET", "/hello");
	fetch(fx, &rq, &o);
	fetch(fx, &rq, &o);
	assert_true(o.reused);
	rq = request(fx, "GET", "/hang");
	rq.timeout_ms = 100;
	fetch(fx, &rq, &o);
	assert_int_equal(o.error, SG_FETCH_TIMEOUT);
	rq = request(fx, "GET", "/hang");
	start(fx, &rq, &o);
	teardown(&state); /* with one in flight */
	free(o.body);
}

static void
test_no_descriptor_outlives_the_fetcher(void **state)
{
	(void)state;
	one_life(); /* whatever a library opens once and keeps */
	int before = count_fds();
	one_life();
	assert_int_equal(count_fds(), before);
}

int
main(void)
{
	/* The upstream writes to connections the fetcher has dropped (as the gateway does). */
	signal(SIGPIPE, SIG_IGN);
	if (sg_fetch_global_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_returns_status_body_and_content_type, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_post_sends_the_body_and_only_the_headers_given,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_second_fetch_reuses_the_connection, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_body_over_the_cap_is_too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_an_upstream_that_never_answers_times_out, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_refused_address_is_never_connected, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_closed_port_is_a_connect_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_stalled_handshake_is_a_connect_timeout, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_redirect_comes_back_unfollowed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_after_is_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_runs_the_callback_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_freeing_the_fetcher_completes_what_is_in_flight,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_failure_in_start_completes_from_the_loop, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_a_resolve_pin_is_what_admit_sees, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_kept_connection_is_judged_again_for_each_request,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_with_the_ca_speaks_http2_on_one_connection,
	                                    tls_setup, tls_teardown),
	    cmocka_unit_test_setup_teardown(test_tls_without_the_ca_fails_verification, tls_setup,
	                                    tls_teardown),
	    cmocka_unit_test(test_no_descriptor_outlives_the_fetcher),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
