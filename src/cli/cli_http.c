/*
 * cli_http: a blocking request over libevent's evhttp client.  Each attempt
 * gets its own event_base, connection and request, all freed before
 * returning, so nothing outlives one call.
 *
 * TLS stays inside libevent too (bufferevent_openssl under the same evhttp
 * client) rather than moving the CLI to libcurl: the request, its limits,
 * the per-address retries and every error sentence the tests assert stay
 * as they are, and only the socket underneath changes.
 */
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/cli_http.h"

/* Larger than any answer the gateway sends; stops a wrong URL from filling memory. */
#define MAX_ANSWER_BYTES (64u << 20)

/* Where --url points, split for connecting and for the request line. */
struct target {
	char host[256];        /* for getaddrinfo: brackets of an IPv6 literal removed */
	char host_header[300]; /* for Host: as written in the URL, with the port */
	char uri[4096];        /* the URL's path prefix, then rq->path */
	int port;
	bool https;
	SSL_CTX *tls; /* https://: verifies the gateway's certificate (use_cas); else NULL */
};

static enum sg_cli_http_rc
bad_url(const char *url, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         "--url must look like http://HOST:PORT or https://HOST:PORT, not \"%s\"", url);
	return SG_CLI_HTTP_BAD_URL;
}

static enum sg_cli_http_rc
parse_target(const char *url, const char *path, struct target *t, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	bool https = scheme != NULL && strcasecmp(scheme, "https") == 0;
	if (u == NULL || scheme == NULL || (strcasecmp(scheme, "http") != 0 && !https) ||
	    host == NULL || *host == '\0' || evhttp_uri_get_userinfo(u) ||
	    evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u) ||
	    strlen(host) >= sizeof(t->host)) {
		if (u != NULL) /* libevent's evhttp_uri_free(NULL) crashes */
			evhttp_uri_free(u);
		return bad_url(url, err, errlen);
	}
	t->port = evhttp_uri_get_port(u) >= 0 ? evhttp_uri_get_port(u) : https ? 443 : 80;
	t->https = https;
	snprintf(t->host_header, sizeof(t->host_header), "%s:%d", host, t->port);
	/* libevent keeps an IP literal's brackets; getaddrinfo wants it bare. */
	size_t n = strlen(host);
	if (host[0] == '[' && n > 2)
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(t->host, sizeof(t->host), "%s", host);
	const char *prefix = evhttp_uri_get_path(u) ? evhttp_uri_get_path(u) : "";
	size_t plen = strlen(prefix);
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	int w = snprintf(t->uri, sizeof(t->uri), "%.*s%s", (int)plen, prefix, path);
	evhttp_uri_free(u);
	if (w < 0 || (size_t)w >= sizeof(t->uri))
		return bad_url(url, err, errlen);
	return SG_CLI_HTTP_OK;
}

/* What one attempt came to; filled in by the callbacks. */
struct attempt {
	struct event_base *base;
	struct sg_cli_http_resp *out;
	bool answered;
	bool connect_failed;
	bool no_memory;
	bool had_error; /* then `error` says what went wrong */
	enum evhttp_request_error error;
	char tls_error[256]; /* why the handshake failed; "" when it did not */
};

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct attempt *a = arg;
	a->had_error = true;
	a->error = e;
}

static char *
header_copy(struct evhttp_request *req, const char *name)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	return v ? strdup(v) : NULL;
}

static void
copy_answer(struct attempt *a, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	struct sg_cli_http_resp *out = a->out;
	out->body = malloc(n + 1);
	if (out->body == NULL) {
		a->no_memory = true;
		return;
	}
	evbuffer_remove(in, out->body, n);
	out->body[n] = '\0';
	out->body_len = n;
	out->status = evhttp_request_get_response_code(req);
	out->content_type = header_copy(req, "Content-Type");
	out->location = header_copy(req, "Location");
	out->retry_after = header_copy(req, "Retry-After");
	a->answered = true;
}

/*
 * libevent 2.1 reports a failed connect by calling back with the request
 * and response code 0 (no error callback); a failure after connecting
 * comes with the error callback first and a NULL request.
 */
static void
on_done(struct evhttp_request *req, void *arg)
{
	struct attempt *a = arg;
	if (req != NULL && evhttp_request_get_response_code(req) == 0)
		a->connect_failed = true;
	else if (req != NULL)
		copy_answer(a, req);
	event_base_loopbreak(a->base);
}

static int
add_headers(struct evhttp_request *req, const struct sg_cli_http_req *rq, const struct target *t)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (evhttp_add_header(h, "Host", t->host_header) != 0 ||
	    evhttp_add_header(h, "User-Agent", "sandgate-cli") != 0 ||
	    evhttp_add_header(h, "Accept", "application/json") != 0)
		return -1;
	for (const char *const *p = rq->headers; p && p[0] && p[1]; p += 2)
		if (evhttp_add_header(h, p[0], p[1]) != 0)
			return -1; /* a value with a line break: refused, never sent */
	if (rq->body && evbuffer_add(evhttp_request_get_output_buffer(req), rq->body, rq->body_len))
		return -1;
	return 0;
}

/* One try at one address; 0 when the request was handed to libevent. */
static int
send_once(struct attempt *a, struct evhttp_connection *conn, const struct sg_cli_http_req *rq,
          const struct target *t)
{
	struct evhttp_request *req = evhttp_request_new(on_done, a);
	if (req == NULL)
		return -1;
	evhttp_request_set_error_cb(req, on_error);
	if (add_headers(req, rq, t) != 0) {
		evhttp_request_free(req);
		return -1;
	}
	enum evhttp_cmd_type cmd =
	    strcmp(rq->method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET;
	return evhttp_make_request(conn, req, cmd, t->uri); /* frees req on failure */
}

/*
 * The CAs a gateway's certificate must chain to: --cacert, else
 * $SANDGATE_CACERT, else the system's.  A usage error when the file named
 * cannot be used.
 */
static enum sg_cli_http_rc
use_cas(struct target *t, const char *cacert, char *err, size_t errlen)
{
	const char *env = getenv("SANDGATE_CACERT");
	const char *file = cacert ? cacert : env && *env ? env : NULL;
	if ((t->tls = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot set up TLS: out of memory");
		return SG_CLI_HTTP_FAILED;
	}
	SSL_CTX_set_min_proto_version(t->tls, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->tls, SSL_VERIFY_PEER, NULL);
	if (file == NULL ? SSL_CTX_set_default_verify_paths(t->tls) == 1
	                 : SSL_CTX_load_verify_locations(t->tls, file, NULL) == 1)
		return SG_CLI_HTTP_OK;
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	snprintf(err, errlen,
	         "%s %s holds no CA certificate the CLI can read (%s); it must be the PEM "
	         "certificate of the CA that issued the gateway's certificate",
	         cacert ? "--cacert" : "SANDGATE_CACERT", file ? file : "",
	         why ? why : "cannot be read");
	return SG_CLI_HTTP_BAD_URL;
}

/*
 * A connection that speaks TLS to `t->host`: SNI for a name, and the
 * certificate checked for that name or IP address (SSL_set1_host takes
 * both).  NULL when out of memory.
 */
static struct evhttp_connection *
tls_connection(struct attempt *a, const char *addr, const struct target *t)
{
	struct in6_addr ip;
	SSL *ssl = SSL_new(t->tls);
	if (ssl == NULL)
		return NULL;
	bool literal =
	    inet_pton(AF_INET, t->host, &ip) == 1 || inet_pton(AF_INET6, t->host, &ip) == 1;
	if ((!literal && SSL_set_tlsext_host_name(ssl, t->host) != 1) ||
	    SSL_set1_host(ssl, t->host) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev =
	    bufferevent_openssl_socket_new(a->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		return NULL; /* libevent freed ssl or not, depending on where it failed: a leak at
		                worst */
	/* The gateway closes without close_notify after a reply that says Connection: close. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	struct evhttp_connection *conn = evhttp_connection_base_bufferevent_new(
	    a->base, NULL, bev, addr, (unsigned short)t->port);
	if (conn == NULL)
		bufferevent_free(bev);
	return conn;
}

/* After a failed attempt: what the TLS layer says went wrong, if anything. */
static void
note_tls_error(struct attempt *a, struct evhttp_connection *conn)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK)
		snprintf(a->tls_error, sizeof(a->tls_error),
		         "the gateway's certificate is not trusted: %s",
		         X509_verify_cert_error_string(v));
	else if (e != 0)
		snprintf(a->tls_error, sizeof(a->tls_error), "the TLS handshake failed: %s",
		         ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error");
	while (bev && bufferevent_get_openssl_error(bev) != 0)
		; /* the rest of libevent's queue: the first one says it */
}

static void
attempt_at(struct attempt *a, const char *addr, const struct sg_cli_http_req *rq,
           const struct target *t)
{
	struct evhttp_connection *conn =
	    a->base == NULL ? NULL
	    : t->tls        ? tls_connection(a, addr, t)
	             : evhttp_connection_base_new(a->base, NULL, addr, (unsigned short)t->port);
	if (conn == NULL) {
		a->no_memory = true;
		return;
	}
	evhttp_connection_set_timeout(conn, rq->timeout_s);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, MAX_ANSWER_BYTES);
	if (send_once(a, conn, rq, t) == 0)
		event_base_dispatch(a->base);
	else
		a->no_memory = true;
	if (t->tls && !a->answered)
		note_tls_error(a, conn);
	/* A handshake refused is an answer of sorts: another address would say the same. */
	if (a->tls_error[0])
		a->connect_failed = false;
	evhttp_connection_free(conn);
}

static void
fail_text(const struct attempt *a, const struct sg_cli_http_req *rq, char *err, size_t errlen)
{
	if (a->tls_error[0])
		snprintf(
		    err, errlen,
		    "cannot talk to the gateway at %s over TLS: %s (is --cacert, or "
		    "SANDGATE_CACERT, the CA that issued its certificate, and is the URL's host "
		    "a name the certificate holds?)",
		    rq->base_url, a->tls_error);
	else if (a->no_memory)
		snprintf(err, errlen, "cannot send the request to %s", rq->base_url);
	else if (a->had_error && a->error == EVREQ_HTTP_TIMEOUT)
		snprintf(err, errlen, "the gateway at %s did not answer within %d s", rq->base_url,
		         rq->timeout_s);
	else if (a->had_error && a->error == EVREQ_HTTP_DATA_TOO_LONG)
		snprintf(err, errlen, "the answer from %s is larger than %u MiB", rq->base_url,
		         MAX_ANSWER_BYTES >> 20);
	else /* a gateway closes on a body over its limit without waiting to be read */
		snprintf(err, errlen, "the connection to %s closed before a complete answer%s",
		         rq->base_url,
		         rq->body_len > (1u << 20) ? " (is the input over the gateway's "
		                                     "limits.max_body_bytes?)"
		                                   : "");
}

static enum sg_cli_http_rc
unreachable(const char *url, const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         "cannot connect to the gateway at %s (%s); is it running? Start one with "
	         "'sandgate serve', or point --url at it",
	         url, why);
	return SG_CLI_HTTP_UNREACHABLE;
}

static enum sg_cli_http_rc request(const struct sg_cli_http_req *rq, const struct target *tp,
                                   struct sg_cli_http_resp *out, char *err, size_t errlen);

enum sg_cli_http_rc
sg_cli_http_do(const struct sg_cli_http_req *rq, struct sg_cli_http_resp *out, char *err,
               size_t errlen)
{
	struct target t = {0};

	memset(out, 0, sizeof(*out));
	/* A gateway that closes while the body is sent must give an error, not kill the CLI. */
	signal(SIGPIPE, SIG_IGN);
	enum sg_cli_http_rc rc = parse_target(rq->base_url, rq->path, &t, err, errlen);
	if (rc != SG_CLI_HTTP_OK)
		return rc;
	if (t.https && (rc = use_cas(&t, rq->cacert, err, errlen)) != SG_CLI_HTTP_OK) {
		SSL_CTX_free(t.tls);
		return rc;
	}
	rc = request(rq, &t, out, err, errlen);
	SSL_CTX_free(t.tls);
	return rc;
}

/* Resolves the target and tries its addresses in turn, while connecting fails. */
static enum sg_cli_http_rc
request(const struct sg_cli_http_req *rq, const struct target *tp, struct sg_cli_http_resp *out,
        char *err, size_t errlen)
{
	const struct target t = *tp;
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct evutil_addrinfo *ai = NULL;
	char port[8], addr[64];
	snprintf(port, sizeof(port), "%d", t.port);
	int gai = evutil_getaddrinfo(t.host, port, &hints, &ai);
	if (gai != 0) {
		char why[512];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", t.host,
		         evutil_gai_strerror(gai));
		return unreachable(rq->base_url, why, err, errlen);
	}
	struct attempt a = {.connect_failed = true}; /* stays so when no address is usable */
	for (struct evutil_addrinfo *p = ai; p != NULL; p = p->ai_next) {
		void *in = p->ai_family == AF_INET6
		               ? (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr
		               : (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr;
		if (evutil_inet_ntop(p->ai_family, in, addr, sizeof(addr)) == NULL)
			continue;
		a = (struct attempt){.base = event_base_new(), .out = out};
		attempt_at(&a, addr, rq, &t);
		if (a.base != NULL)
			event_base_free(a.base);
		if (!a.connect_failed)
			break;
	}
	evutil_freeaddrinfo(ai);
	if (a.answered)
		return SG_CLI_HTTP_OK;
	sg_cli_http_resp_free(out);
	if (a.connect_failed)
		return unreachable(rq->base_url, "the connection failed", err, errlen);
	fail_text(&a, rq, err, errlen);
	return SG_CLI_HTTP_FAILED;
}

void
sg_cli_http_resp_free(struct sg_cli_http_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	free(r->content_type);
	free(r->location);
	free(r->retry_after);
	memset(r, 0, sizeof(*r));
}

const char *
sg_cli_str(const json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));
	return s ? s : "-";
}

void
sg_cli_put_line(FILE *out, const char *label, const char *text)
{
	fputs(label, out);
	for (const char *s = text; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < ' ' || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('\n', out);
}
