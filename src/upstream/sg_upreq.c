/*
 * sg_upreq: a governed call's upstream request, built from the connector
 * definition and the validated input only.
 *
 * A path parameter is the one place caller data reaches the upstream's
 * address, so it is judged before it is encoded: '/', '\', "..", an empty
 * value, a lone '.', CR, LF and NUL are refused, and so are values that
 * become one of these once %-decoded (up to three times: "%252F"), since
 * some upstreams and the proxies before them decode a path again before
 * routing it.  Everything else is percent-encoded (RFC 3986 unreserved
 * characters kept).
 *
 * The URL and header lines may come to hold a credential (an api_key in
 * the query, an Authorization line), so they never move by realloc, which
 * would leave a copy behind in freed memory: they grow by copy-and-wipe,
 * and are wiped before they are freed.
 */
#include "upstream/sg_upreq.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "catalog/sg_connector.h"
#include "core/sg_problem.h"
#include "json/sg_json.h"

/* The input has passed its schema; this only bounds the copy's recursion. */
#define UPREQ_MAX_DEPTH 256
#define MAX_PATH_PARAMS 16
#define PARAM_NAME_MAX 64
#define DECODE_ROUNDS 3
#define RETRY_AFTER_CAP 86400

/* Where the bad parameter's name is kept for the caller: valid until this thread builds again. */
static _Thread_local char bad_name[PARAM_NAME_MAX + 1];

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void
buf_reserve(struct buf *b, size_t more)
{
	if (b->failed || b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = malloc(cap);
	if (p == NULL) {
		b->failed = true;
		return;
	}
	if (b->p) {
		memcpy(p, b->p, b->len);
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
}

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static bool
unreserved(unsigned char ch)
{
	return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static void
buf_pct(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_reserve(b, 3 * n);
	for (size_t i = 0; i < n && !b->failed; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (unreserved(ch)) {
			b->p[b->len++] = (char)ch;
		} else {
			b->p[b->len++] = '%';
			b->p[b->len++] = hex[ch >> 4];
			b->p[b->len++] = hex[ch & 15];
		}
	}
	if (!b->failed)
		b->p[b->len] = '\0';
}

static void
buf_wipe(struct buf *b)
{
	if (b->p)
		sodium_memzero(b->p, b->cap);
	free(b->p);
	*b = (struct buf){0};
}

static int
hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (unsigned char)tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes %XX in place; returns the new length (malformed escapes stay as they are). */
static size_t
pct_decode(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hexval((unsigned char)s[i + 2])) >= 0) {
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	return o;
}

static const char *
plain_refusal(const char *s, size_t n)
{
	if (n == 0)
		return "it is empty";
	if (n == 1 && s[0] == '.')
		return "it is '.'";
	if (memchr(s, '/', n))
		return "it contains '/'";
	if (memchr(s, '\\', n))
		return "it contains '\\'";
	if (memmem(s, n, "..", 2))
		return "it contains '..'";
	if (memchr(s, '\r', n) || memchr(s, '\n', n))
		return "it contains a line break";
	if (memchr(s, '\0', n))
		return "it contains a NUL byte";
	return NULL;
}

/* What param_refusal says when it could not judge: the gateway's fault, not the caller's. */
static const char no_memory[] = "the gateway is out of memory";

/* Why a path parameter's value cannot go into the path, or NULL (or no_memory). */
static const char *
param_refusal(const char *s, size_t n, char *why, size_t whylen)
{
	const char *r = plain_refusal(s, n);
	if (r != NULL || memchr(s, '%', n) == NULL)
		return r;
	char *copy = malloc(n);
	if (copy == NULL)
		return no_memory;
	memcpy(copy, s, n);
	for (int round = 1; round <= DECODE_ROUNDS && r == NULL; round++) {
		size_t m = pct_decode(copy, n);
		if (m == n)
			break;
		n = m;
		if ((r = plain_refusal(copy, n)) != NULL) {
			snprintf(why, whylen,
			         "%s once %%-decoded (an encoded form is refused too, since some "
			         "upstreams decode it before routing)",
			         r);
			r = why;
		}
	}
	free(copy);
	return r;
}

/* Any value as its JSON text, in `tmp` (reused). */
static bool
json_text(struct sg_json_val v, struct sg_jbuf *tmp, const char **s, size_t *n)
{
	struct sg_jw w;
	tmp->len = 0;
	sg_jw_begin(&w, tmp);
	sg_jw_value(&w, v);
	if (sg_jw_end(&w) != 0)
		return false;
	*s = tmp->data;
	*n = tmp->len;
	return true;
}

/* A scalar's text: a string as it is, a number or boolean as its JSON text. */
static bool
scalar_text(struct sg_json_val v, struct sg_jbuf *tmp, const char **s, size_t *n)
{
	enum sg_json_type t = sg_json_type(v);
	if (t == SG_JSON_STRING) {
		*s = sg_json_string(v, n);
		return true;
	}
	if (t == SG_JSON_NULL || t == SG_JSON_ARRAY || t == SG_JSON_OBJECT)
		return false;
	return json_text(v, tmp, s, n);
}

struct build {
	struct sg_upreq *rq;
	struct sg_json_val root;
	struct sg_jbuf tmp;
	struct buf url;
	/* The path's parameter names, pointing into the template. */
	const char *pname[MAX_PATH_PARAMS];
	size_t plen[MAX_PATH_PARAMS];
	size_t n_params;
	char *err;
	size_t errlen;
	const char **bad_param;
};

static int
refuse(struct build *b, const char *name, size_t nlen, const char *fmt, const char *why)
{
	snprintf(bad_name, sizeof(bad_name), "%.*s",
	         (int)(nlen < PARAM_NAME_MAX ? nlen : PARAM_NAME_MAX), name);
	snprintf(b->err, b->errlen, fmt, bad_name, why);
	*b->bad_param = bad_name;
	return -1;
}

static int
fail(struct build *b, const char *msg)
{
	snprintf(b->err, b->errlen, "%s", msg);
	return -1;
}

static int
path_param(struct build *b, const char *name, size_t nlen)
{
	struct sg_json_val v;
	const char *s;
	size_t n;
	char why[200];
	if (b->n_params == MAX_PATH_PARAMS)
		return fail(b, "the operation's path has too many parameters");
	b->pname[b->n_params] = name;
	b->plen[b->n_params++] = nlen;
	if (!sg_json_get(b->root, name, nlen, &v) || sg_json_type(v) == SG_JSON_NULL)
		return refuse(b, name, nlen, "path parameter \"%s\" is missing%s", "");
	enum sg_json_type t = sg_json_type(v);
	if (t == SG_JSON_ARRAY || t == SG_JSON_OBJECT)
		return refuse(b, name, nlen,
		              "path parameter \"%s\" must be a string, number or boolean%s", "");
	if (!scalar_text(v, &b->tmp, &s, &n))
		return fail(b, no_memory);
	const char *r = param_refusal(s, n, why, sizeof(why));
	if (r == no_memory)
		return fail(b, no_memory);
	if (r != NULL)
		return refuse(b, name, nlen, "path parameter \"%s\" cannot be used: %s", r);
	buf_pct(&b->url, s, n);
	return 0;
}

/* The template with each {name} replaced by its encoded value. */
static int
build_path(struct build *b, const char *tmpl)
{
	const char *p = tmpl;
	for (const char *open; (open = strchr(p, '{')) != NULL;) {
		const char *close = strchr(open, '}');
		if (close == NULL)
			return fail(b, "the operation's path template is malformed");
		buf_add(&b->url, p, (size_t)(open - p));
		if (path_param(b, open + 1, (size_t)(close - open - 1)) != 0)
			return -1;
		p = close + 1;
	}
	buf_add(&b->url, p, strlen(p));
	return 0;
}

static bool
is_path_param(const struct build *b, const char *key, size_t len)
{
	for (size_t i = 0; i < b->n_params; i++)
		if (b->plen[i] == len && memcmp(b->pname[i], key, len) == 0)
			return true;
	return false;
}

static void
query_pair(struct buf *u, const char *k, size_t klen, const char *v, size_t vlen)
{
	buf_add(u, memchr(u->p ? u->p : "", '?', u->len) ? "&" : "?", 1);
	buf_pct(u, k, klen);
	buf_add(u, "=", 1);
	buf_pct(u, v, vlen);
}

/*
 * One member in the query: a scalar as its text, an array as the key
 * repeated per element, an object (or an array inside an array) as its
 * JSON text; null leaves the member (or element) out.
 */
static void
query_member(struct build *b, const char *k, size_t klen, struct sg_json_val v)
{
	const char *s;
	size_t n;
	enum sg_json_type t = sg_json_type(v);
	if (t == SG_JSON_ARRAY) {
		struct sg_json_iter it;
		struct sg_json_val e;
		const char *ek;
		size_t eklen;
		sg_json_iter_init(&it, v);
		while (sg_json_iter_next(&it, &ek, &eklen, &e)) {
			if (sg_json_type(e) == SG_JSON_NULL)
				continue;
			if (scalar_text(e, &b->tmp, &s, &n) || json_text(e, &b->tmp, &s, &n))
				query_pair(&b->url, k, klen, s, n);
			else
				b->url.failed = true;
		}
		return;
	}
	if (t == SG_JSON_NULL)
		return;
	if (scalar_text(v, &b->tmp, &s, &n) || json_text(v, &b->tmp, &s, &n))
		query_pair(&b->url, k, klen, s, n);
	else
		b->url.failed = true;
}

/* The members that are not path parameters, as a JSON object. */
static int
build_body(struct build *b)
{
	struct sg_jbuf out = {0};
	struct sg_jw w;
	struct sg_json_iter it;
	struct sg_json_val v;
	const char *k;
	size_t klen;
	sg_jw_begin(&w, &out);
	sg_jw_object(&w);
	sg_json_iter_init(&it, b->root);
	while (sg_json_iter_next(&it, &k, &klen, &v)) {
		if (is_path_param(b, k, klen))
			continue;
		sg_jw_key(&w, k, klen);
		sg_jw_value(&w, v);
	}
	sg_jw_object_end(&w);
	int rc = sg_jw_end(&w);
	if (rc == 0 && (b->rq->body = malloc(out.len + 1)) != NULL) {
		memcpy(b->rq->body, out.data, out.len + 1);
		b->rq->body_len = out.len;
	}
	sg_jbuf_release(&out);
	return rc == 0 && b->rq->body ? 0 : fail(b, no_memory);
}

static void
build_query(struct build *b)
{
	struct sg_json_iter it;
	struct sg_json_val v;
	const char *k;
	size_t klen;
	sg_json_iter_init(&it, b->root);
	while (sg_json_iter_next(&it, &k, &klen, &v))
		if (!is_path_param(b, k, klen))
			query_member(b, k, klen, v);
}

static bool
listed(const struct sg_connector *c, const char *name)
{
	if (sg_upreq_forward_refusal(name) != NULL) /* never, whatever the definition says */
		return false;
	for (size_t i = 0; i < c->n_forward_headers; i++)
		if (strcasecmp(c->forward_headers[i], name) == 0)
			return true;
	return false;
}

static int
build_headers(struct build *b, const struct sg_connector *c, const char *traceparent,
              const struct sg_upreq_caller_header *caller, size_t n_caller)
{
	struct sg_upreq *rq = b->rq;
	if (sg_upreq_add_header(rq, "User-Agent", SG_UPSTREAM_USER_AGENT) != 0 ||
	    sg_upreq_add_header(rq, "Accept", "application/json") != 0 ||
	    (rq->body && sg_upreq_add_header(rq, "Content-Type", "application/json") != 0) ||
	    (traceparent && traceparent[0] &&
	     sg_upreq_add_header(rq, "traceparent", traceparent) != 0))
		return fail(b, "the gateway could not build the upstream request's headers");
	for (size_t i = 0; i < n_caller; i++) {
		const struct sg_upreq_caller_header *h = &caller[i];
		if (h->name == NULL || h->value == NULL || !listed(c, h->name))
			continue;
		if (strpbrk(h->value, "\r\n"))
			return refuse(b, h->name, strlen(h->name),
			              "header %s cannot be forwarded: its value %s",
			              "contains a line break");
		if (sg_upreq_add_header(rq, h->name, h->value) != 0)
			return fail(b, "the upstream request has too many headers");
	}
	return 0;
}

static bool
has_body(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	       strcmp(method, "PATCH") == 0;
}

static int
build_all(struct build *b, const struct sg_operation *op, const struct sg_environment *env,
          const char *input, size_t input_len)
{
	struct sg_json_doc doc;
	if (env->base_url == NULL)
		return fail(b, "this environment has no base_url: it is served by the simulator");
	if (strlen(op->method) >= sizeof(b->rq->method))
		return fail(b, "the operation's method is not one the gateway sends");
	snprintf(b->rq->method, sizeof(b->rq->method), "%s", op->method);
	if (sg_json_parse(input, input_len, UPREQ_MAX_DEPTH, &doc, NULL) != SG_JSON_OK ||
	    sg_json_type(doc.root) != SG_JSON_OBJECT)
		return fail(b, "the call's input is not a JSON object");
	b->root = doc.root;
	buf_add(&b->url, env->base_url, strlen(env->base_url));
	if (build_path(b, op->path) != 0)
		return -1;
	if (has_body(op->method)) {
		if (build_body(b) != 0)
			return -1;
	} else {
		build_query(b);
	}
	if (b->url.failed)
		return fail(b, no_memory);
	b->rq->url = b->url.p;
	b->url = (struct buf){0};
	return 0;
}

int
sg_upreq_build(struct sg_upreq *rq, const struct sg_connector *c, const struct sg_operation *op,
               const struct sg_environment *env, const char *input, size_t input_len,
               const char *traceparent, const struct sg_upreq_caller_header *caller,
               size_t n_caller, char *err, size_t errlen, const char **bad_param)
{
	const char *ignored;
	struct build b = {
	    .rq = rq, .err = err, .errlen = errlen, .bad_param = bad_param ? bad_param : &ignored};
	memset(rq, 0, sizeof(*rq));
	*b.bad_param = NULL;
	if (errlen > 0)
		err[0] = '\0';
	int rc = build_all(&b, op, env, input, input_len);
	if (rc == 0)
		rc = build_headers(&b, c, traceparent, caller, n_caller);
	buf_wipe(&b.url);
	sg_jbuf_release(&b.tmp);
	if (rc != 0)
		sg_upreq_release(rq);
	return rc;
}

int
sg_upreq_add_header(struct sg_upreq *rq, const char *name, const char *value)
{
	if (rq->n_headers == SG_UPREQ_MAX_HEADERS || name[0] == '\0' || strpbrk(name, "\r\n: \t") ||
	    strpbrk(value, "\r\n"))
		return -1;
	size_t n = strlen(name) + 2 + strlen(value) + 1;
	char *line = malloc(n);
	if (line == NULL)
		return -1;
	snprintf(line, n, "%s: %s", name, value);
	rq->headers[rq->n_headers++] = line;
	return 0;
}

static void wipe_str(char *s);

int
sg_upreq_add_query(struct sg_upreq *rq, const char *name, const char *value)
{
	if (rq->url == NULL)
		return -1;
	/* Built in a buffer of its own: a failure half way leaves rq->url whole. */
	struct buf u = {0};
	buf_add(&u, rq->url, strlen(rq->url));
	query_pair(&u, name, strlen(name), value, strlen(value));
	if (u.failed) {
		buf_wipe(&u);
		return -1;
	}
	wipe_str(rq->url);
	rq->url = u.p;
	return 0;
}

static void
wipe_str(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

void
sg_upreq_release(struct sg_upreq *rq)
{
	for (size_t i = 0; i < rq->n_headers; i++)
		wipe_str(rq->headers[i]);
	wipe_str(rq->url);
	free(rq->body);
	memset(rq, 0, sizeof(*rq));
}

int64_t
sg_upreq_retry_after(const char *value, int64_t now_s)
{
	/* RFC 9110 §5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms. */
	static const char *const formats[] = {
	    "%a, %d %b %Y %H:%M:%S GMT",
	    "%A, %d-%b-%y %H:%M:%S GMT",
	    "%a %b %e %H:%M:%S %Y",
	};
	if (value == NULL)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || n > 64)
		return -1;
	char v[65];
	memcpy(v, value, n);
	v[n] = '\0';
	if (strspn(v, "0123456789") == n) {
		int64_t s = 0;
		for (size_t i = 0; i < n && s <= RETRY_AFTER_CAP; i++)
			s = s * 10 + (v[i] - '0');
		return s > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : s;
	}
	for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(v, formats[f], &tm);
		if (end == NULL || *end != '\0')
			continue;
		int64_t d = (int64_t)timegm(&tm) - now_s;
		return d < 0 ? 0 : d > RETRY_AFTER_CAP ? RETRY_AFTER_CAP : d;
	}
	return -1;
}

const struct sg_problem_def *
sg_upreq_status_problem(long status)
{
	enum sg_problem_code p;
	if (status >= 200 && status <= 299)
		return NULL;
	if (status == 401 || status == 403)
		p = SG_P_UPSTREAM_AUTH;
	else if (status == 404)
		p = SG_P_UPSTREAM_NOT_FOUND;
	else if (status == 408 || status == 504)
		p = SG_P_UPSTREAM_TIMEOUT;
	else if (status == 429 || status == 503)
		p = SG_P_UPSTREAM_UNAVAILABLE;
	else if (status >= 400 && status <= 499)
		p = SG_P_UPSTREAM_REJECTED;
	else if (status >= 300 && status <= 399)
		p = SG_P_REDIRECT_REFUSED;
	else
		p = SG_P_UPSTREAM_ERROR;
	return sg_problem_def(p);
}

const char *
sg_upreq_forward_refusal(const char *name)
{
	static const struct {
		const char *name;
		bool prefix;
		const char *why;
	} rules[] = {
	    {"authorization", false, "it carries the caller's own credentials"},
	    {"proxy-authorization", false, "it carries the caller's own credentials"},
	    {"cookie", false, "it carries the caller's own credentials"},
	    {"host", false, "the gateway sets it for the upstream"},
	    {"content-length", false, "the gateway frames the upstream request itself"},
	    {"transfer-encoding", false, "the gateway frames the upstream request itself"},
	    {"connection", false, "it is a hop-by-hop header"},
	    {"keep-alive", false, "it is a hop-by-hop header"},
	    {"te", false, "it is a hop-by-hop header"},
	    {"trailer", false, "it is a hop-by-hop header"},
	    {"upgrade", false, "it is a hop-by-hop header"},
	    {"proxy-", true, "it is a hop-by-hop header"},
	    {"sandgate-", true, "it is the gateway's own header"},
	    {"user-agent", false, "the gateway sets it itself"},
	    {"accept", false, "the gateway sets it itself"},
	    {"content-type", false, "the gateway sets it itself"},
	    {"traceparent", false, "the gateway sets it itself"},
	};
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t n = strlen(rules[i].name);
		if (rules[i].prefix ? strncasecmp(name, rules[i].name, n) == 0
		                    : strcasecmp(name, rules[i].name) == 0)
			return rules[i].why;
	}
	return NULL;
}
