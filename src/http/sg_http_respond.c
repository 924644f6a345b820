/*
 * Response helpers.  Every reply carries the trace context and the same
 * safety headers; every error is problem+json from one function.
 */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sg_clock.h"
#include "core/sg_fmt.h"
#include "http/sg_http.h"
#include "path/step_throttle.h"

uint64_t
sg_now_ns(void)
{
	return sg_mono_ns();
}

/*
 * The Date header changes once a second, so each thread formats it once a
 * second.  Left to libevent, every reply paid for gmtime and a printf
 * (about 3,400 instructions).
 */
static const char *
http_date(void)
{
	static _Thread_local time_t cached_sec;
	static _Thread_local bool cached;
	static _Thread_local char text[40];
	time_t now = time(NULL);
	struct tm tm;
	if (now == (time_t)-1)
		return NULL;
	if (cached && now == cached_sec)
		return text;
	/* The C locale's day and month names: only the sandbox worker sets a locale. */
	cached = gmtime_r(&now, &tm) != NULL &&
	         strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0;
	cached_sec = now;
	return cached ? text : NULL;
}

static void
common_headers(struct sg_http_ctx *c, const char *content_type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	const char *date = http_date();
	char tp[64];
	sg_trace_format(&c->trace, tp, sizeof(tp));
	if (date != NULL) /* else libevent adds its own */
		evhttp_add_header(h, "Date", date);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "traceparent", tp);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	/* While draining, ask every client to reconnect (elsewhere) after this reply. */
	if (atomic_load_explicit(&c->t->server->draining, memory_order_relaxed))
		evhttp_add_header(h, "Connection", "close");
}

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

/* The body goes straight into the reply's own buffer: no second buffer to fill, move and free. */
void
sg_http_send_text(struct sg_http_ctx *c, int status, const char *text, size_t len,
                  const char *content_type)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(c->req);
	if (out)
		evbuffer_add(out, text, len);
	common_headers(c, content_type);
	sg_conn_replying(c->t, c->conn, c->req);
	evhttp_send_reply(c->req, status, reason_phrase(status), NULL);
}

/* Only allocation failure gets here; a fixed body cannot fail again. */
static void
send_out_of_memory(struct sg_http_ctx *c)
{
	static const char oom[] = "{\"status\":500,\"code\":\"internal\"}";
	sg_http_send_text(c, 500, oom, sizeof(oom) - 1, "application/problem+json");
}

void
sg_http_send_json(struct sg_http_ctx *c, int status, json_t *body, const char *content_type)
{
	/*
	 * Most bodies fit a stack buffer: one copy into the reply, no malloc.
	 * (jansson's callback dumper hands over one token at a time, and each
	 * evbuffer_add takes the buffer's lock, which costs more.)
	 */
	char small[4096];
	size_t n = body ? json_dumpb(body, small, sizeof(small), JSON_COMPACT) : 0;
	char *text = (n > sizeof(small) && body) ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (n == 0 || (n > sizeof(small) && text == NULL)) {
		send_out_of_memory(c);
		return;
	}
	sg_http_send_text(c, status, text ? text : small, text ? strlen(text) : n, content_type);
	free(text);
}

void
sg_http_send_jbuf(struct sg_http_ctx *c, int status, const struct sg_jbuf *body,
                  const char *content_type)
{
	sg_http_send_text(c, status, body->data ? body->data : "", body->len, content_type);
}

void
sg_http_send_problem(struct sg_http_ctx *c, enum sg_problem_code code, const char *detail)
{
	const struct sg_problem_def *def = sg_problem_def(code);
	struct sg_jbuf body = {0};
	if (sg_problem_write(&body, def, detail, c->trace.trace_id, c->path, NULL) == 0)
		sg_http_send_jbuf(c, def->status, &body, "application/problem+json");
	else
		send_out_of_memory(c);
	sg_jbuf_release(&body);
}

void
sg_http_send_refusal(struct sg_http_ctx *c, struct sg_req *r)
{
	struct sg_jbuf body = {0};
	if (sg_req_problem_write(r, &body) == 0)
		sg_http_send_jbuf(c, r->status, &body, "application/problem+json");
	else
		send_out_of_memory(c);
	sg_jbuf_release(&body);
}

static uint64_t
ceil_seconds(uint64_t ns)
{
	return ns / 1000000000ull + (ns % 1000000000ull != 0);
}

/* One structured-field item, `"name";key=n`, for the parameters after it. */
static void
item_start(struct sg_fmt *f, char *v, size_t n, const char *name, const char *key, uint64_t val)
{
	sg_fmt_init(f, v, n);
	sg_fmt_str(f, "\"");
	sg_fmt_str(f, name);
	sg_fmt_str(f, "\"");
	sg_fmt_str(f, key);
	sg_fmt_u64(f, val);
}

/*
 * draft-ietf-httpapi-ratelimit-headers-11, for the one limit nearest its
 * end (on a refusal, the one that refused).  w is the time an empty bucket
 * takes to refill completely, the GCRA window; a concurrency cap has no
 * window and says so with qu="concurrent-requests".
 */
void
sg_http_rate_headers(struct sg_http_ctx *c, const struct sg_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	const struct sg_verdict *vd = sg_throttle_verdict(r);
	char v[224];
	struct sg_fmt f;
	if (vd != NULL) {
		const struct sg_limit_hit *hit = &vd->closest;
		item_start(&f, v, sizeof(v), hit->rule->name, ";q=", hit->res.limit);
		if (hit->window != NULL) {
			sg_fmt_str(&f, ";w=");
			sg_fmt_u64(&f, sg_limit_window_s(hit->window));
		} else {
			sg_fmt_str(&f, ";qu=\"concurrent-requests\"");
		}
		evhttp_add_header(h, "RateLimit-Policy", v);
		item_start(&f, v, sizeof(v), hit->rule->name, ";r=", hit->res.remaining);
		if (hit->window != NULL) {
			sg_fmt_str(&f, ";t=");
			sg_fmt_u64(&f, ceil_seconds(hit->res.reset_ns));
		}
		evhttp_add_header(h, "RateLimit", v);
	}
	/* Only a refusal by a limit (not a peek at the standing) knows its wait. */
	if (r->status == 429 && vd != NULL && vd->n_violated > 0 &&
	    vd->retry_after_ns != UINT64_MAX) {
		uint64_t s = ceil_seconds(vd->retry_after_ns);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(s ? s : 1));
		evhttp_add_header(h, "Retry-After", v);
	} else if (r->status == 503) {
		snprintf(v, sizeof(v), "%u", r->retry_after_s ? r->retry_after_s : 1);
		evhttp_add_header(h, "Retry-After", v);
	}
	if (r->principal.role != NULL)
		evhttp_add_header(h, "Sandgate-Priority", sg_class_name(r->cls));
}
