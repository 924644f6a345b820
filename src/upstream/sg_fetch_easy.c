/*
 * sg_fetch_easy: one upstream transfer's curl options, its callbacks (the
 * admit check at connect, the capped body, the few headers kept) and the
 * mapping of curl's result to enum sg_fetch_error.
 */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "upstream/sg_fetch_int.h"

/*
 * Every address curl is about to connect to passes here, after resolution
 * (or a CURLOPT_RESOLVE pin), so the egress guard checks exactly what is
 * connected to.  The socket is close-on-exec: the gateway forks sandbox
 * workers, which must never inherit an upstream connection.
 */
static curl_socket_t
on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct sg_fetch *x = arg;
	(void)purpose;
	if (!x->admit(x->admit_arg, &a->addr, (socklen_t)a->addrlen)) {
		x->refused = true;
		return CURL_SOCKET_BAD;
	}
	x->admitted = true;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/*
 * Every request passes here before it is sent, on a new connection or on
 * one kept alive: a kept connection was judged for whoever opened it (another
 * connector, before a policy reload), and this request is judged for itself,
 * a redirect hop included.  An address that does not parse is refused.
 */
static int
on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct sg_fetch *x = arg;
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;
	(void)local_ip;
	(void)local_port;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		len = sizeof(*v6);
	}
	if (len == 0 || !x->admit(x->admit_arg, (const struct sockaddr *)&ss, len)) {
		x->refused_at_send = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* Appends body bytes; past max_response the transfer stops (CURLE_WRITE_ERROR). */
static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct sg_fetch *x = arg;
	size_t len = size * n;
	if (len > x->max_response - x->body_len) {
		x->too_large = true;
		return 0;
	}
	if (x->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		while (cap < x->body_len + len + 1)
			cap *= 2;
		char *nb = realloc(x->body, cap);
		if (nb == NULL)
			return 0;
		x->body = nb;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, p, len);
	x->body_len += len;
	x->body[x->body_len] = '\0';
	return len;
}

static void
clear_headers(struct sg_fetch *x)
{
	free(x->content_type);
	free(x->retry_after);
	free(x->location);
	x->content_type = x->retry_after = x->location = NULL;
}

/* Keeps `value` of a header line "Name: value\r\n" when its name is `name`. */
static int
keep_header(const char *p, size_t len, const char *name, char **slot)
{
	size_t nl = strlen(name);
	if (len <= nl || p[nl] != ':' || strncasecmp(p, name, nl) != 0)
		return 0;
	const char *v = p + nl + 1, *end = p + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	free(*slot);
	*slot = strndup(v, (size_t)(end - v));
	return *slot == NULL ? -1 : 1;
}

/*
 * Header lines of every response curl reads, interim ones (100 Continue)
 * included: a status line starts afresh, so only the final response's
 * headers are kept.
 */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct sg_fetch *x = arg;
	size_t len = size * n;
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		clear_headers(x);
		return len;
	}
	if (keep_header(p, len, "Content-Type", &x->content_type) < 0 ||
	    keep_header(p, len, "Retry-After", &x->retry_after) < 0 ||
	    keep_header(p, len, "Location", &x->location) < 0)
		return 0; /* out of memory: ends the transfer */
	return len;
}

static bool
listed(const char *const *lines, size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (strncasecmp(lines[i], name, nl) == 0 &&
		    (lines[i][nl] == ':' || lines[i][nl] == ';'))
			return true;
	return false;
}

/*
 * The caller's header lines, and nothing curl would add on its own: a
 * blank "Name:" tells curl to drop its default, so an upstream sees no
 * "Accept: * / *", no "Expect: 100-continue" (which would cost a round trip
 * on larger bodies) and no form Content-Type on a POST.  curl reads
 * "Name:" as "remove", so a caller's empty value is sent as "Name;",
 * curl's spelling of an empty header.
 */
static int
build_headers(struct sg_fetch *x, const struct sg_fetch_request *rq)
{
	static const char *const defaults[] = {"Accept", "Expect", "Content-Type"};
	struct curl_slist *l;
	char line[256];
	for (size_t i = 0; i < rq->n_headers; i++) {
		const char *h = rq->headers[i], *colon = strchr(h, ':');
		if (colon == NULL || colon == h || strpbrk(h, "\r\n") != NULL)
			return -1; /* a request builder's defect: fail closed, never inject */
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char *empty = NULL;
		if (*v == '\0' && asprintf(&empty, "%.*s;", (int)(colon - h), h) < 0)
			return -1;
		l = curl_slist_append(x->headers, empty ? empty : h);
		free(empty);
		if (l == NULL)
			return -1;
		x->headers = l;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (listed(rq->headers, rq->n_headers, defaults[i]))
			continue;
		snprintf(line, sizeof(line), "%s:", defaults[i]);
		if ((l = curl_slist_append(x->headers, line)) == NULL)
			return -1;
		x->headers = l;
	}
	return 0;
}

/*
 * A pin lands in the DNS cache the whole multi handle shares, where curl
 * keeps it for good unless it starts with '+'; with it, the pin ages out
 * like a resolved name (60 s), so one fetch's pin does not steer the
 * thread's later fetches to that host for ever.  admit() still judges
 * every address connected to, pinned or not.
 */
static int
build_resolve(struct sg_fetch *x, const struct sg_fetch_request *rq)
{
	for (size_t i = 0; i < rq->n_resolve; i++) {
		const char *pin = rq->resolve[i];
		char *aging = NULL;
		if (pin[0] != '+' && pin[0] != '-' && asprintf(&aging, "+%s", pin) < 0)
			return -1;
		struct curl_slist *l = curl_slist_append(x->resolve, aging ? aging : pin);
		free(aging);
		if (l == NULL)
			return -1;
		x->resolve = l;
	}
	return 0;
}

/* GET and HEAD by their own options; any other method by name, with the body copied. */
static CURLcode
set_method(CURL *e, const struct sg_fetch_request *rq)
{
	CURLcode rc = CURLE_OK;
	if (strcmp(rq->method, "HEAD") == 0)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (strcmp(rq->method, "GET") == 0 && rq->body == NULL)
		return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (rq->body != NULL || strcmp(rq->method, "POST") == 0) {
		/* The size first, so a body holding NUL bytes is copied whole. */
		rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                      (curl_off_t)(rq->body ? rq->body_len : 0));
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->body ? rq->body : "");
	}
	if (rc == CURLE_OK && strcmp(rq->method, "POST") != 0)
		rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
	return rc;
}

static bool
method_ok(const char *m)
{
	if (m == NULL || *m == '\0' || strlen(m) > 16)
		return false;
	for (; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return false;
	return true;
}

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e, opt, val);                                        \
	} while (0)

int
sg_fetch_easy_setup(struct sg_fetch *x, const struct sg_fetch_request *rq)
{
	CURL *e = x->easy;
	CURLcode rc = CURLE_OK;
	x->early_error = SG_FETCH_INTERNAL;
	x->max_response = rq->max_response;
	if (!method_ok(rq->method) || rq->url == NULL || rq->admit == NULL) {
		snprintf(x->errbuf, sizeof(x->errbuf), "a method, a URL and admit are required");
		return -1;
	}
	if (build_headers(x, rq) != 0 || build_resolve(x, rq) != 0) {
		snprintf(x->errbuf, sizeof(x->errbuf),
		         "a header line without a name or with CR or LF, or out of memory");
		return -1;
	}
	SET(CURLOPT_PRIVATE, (void *)x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PROXY, ""); /* never an http_proxy from the environment */
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_PIPEWAIT, 1L); /* wait to multiplex on an h2 connection being made */
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (rq->ca_bundle != NULL)
		SET(CURLOPT_CAINFO, rq->ca_bundle);
	/*
	 * No CA directory, only the bundle file: curl caches the parsed store in
	 * the multi handle only then (Debian's libcurl names both by default), and
	 * otherwise parses the whole system bundle inside this thread's loop for
	 * every new TLS connection.
	 */
	SET(CURLOPT_CAPATH, (char *)NULL);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)rq->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
	if (x->resolve != NULL)
		SET(CURLOPT_RESOLVE, x->resolve);
	SET(CURLOPT_HTTPHEADER, x->headers);
	SET(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	SET(CURLOPT_OPENSOCKETDATA, (void *)x);
	SET(CURLOPT_PREREQFUNCTION, on_prereq);
	SET(CURLOPT_PREREQDATA, (void *)x);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, (void *)x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, (void *)x);
	/* A declared Content-Length over the cap ends the fetch before any body is read. */
	if (rq->max_response > 0)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_response);
	if (rc == CURLE_OK)
		rc = set_method(e, rq);
	if (rc != CURLE_OK) {
		snprintf(x->errbuf, sizeof(x->errbuf), "curl refused an option: %s",
		         curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

#undef SET

static bool
is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
		return true;
	default:
		return false;
	}
}

static enum sg_fetch_error
map_error(const struct sg_fetch *x, CURLcode rc)
{
	curl_off_t ready = 0;
	if (rc == CURLE_OK)
		return SG_FETCH_OK;
	/* Every address was refused, or the connection about to carry the request was. */
	if ((x->refused && !x->admitted) || x->refused_at_send)
		return SG_FETCH_REFUSED;
	if ((rc == CURLE_WRITE_ERROR && x->too_large) || rc == CURLE_FILESIZE_EXCEEDED)
		return SG_FETCH_TOO_LARGE;
	if (is_tls_error(rc))
		return SG_FETCH_TLS;
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return SG_FETCH_RESOLVE;
	case CURLE_COULDNT_CONNECT:
		return SG_FETCH_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		/* Never ready to send (no TCP connection, or no TLS session): a connect timeout. */
		(void)curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &ready);
		return ready == 0 ? SG_FETCH_CONNECT : SG_FETCH_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return SG_FETCH_INTERNAL;
	default:
		return SG_FETCH_PROTOCOL;
	}
}

static void
describe(const struct sg_fetch *x, CURLcode rc, enum sg_fetch_error err, char *out, size_t len)
{
	if (err == SG_FETCH_REFUSED && x->refused_at_send)
		snprintf(out, len, "admit refused the connection the request was to be sent on");
	else if (err == SG_FETCH_REFUSED)
		snprintf(out, len, "admit refused every address the name resolved to");
	else if (err == SG_FETCH_TOO_LARGE)
		snprintf(out, len, "the response body passed %zu bytes", x->max_response);
	else
		sg_fetch_message(out, len,
		                 x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
}

void
sg_fetch_easy_result(struct sg_fetch *x, CURLcode rc, struct sg_fetch_result *res)
{
	curl_off_t connect = 0, total = 0;
	long connects = 0, version = 0;
	memset(res, 0, sizeof(*res));
	res->error = map_error(x, rc);
	if (res->error != SG_FETCH_OK)
		describe(x, rc, res->error, res->message, sizeof(res->message));
	else
		(void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res->status);
	(void)curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect);
	(void)curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total);
	(void)curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
	(void)curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
	res->reused = res->error == SG_FETCH_OK && connects == 0;
	res->connect_us = res->reused ? 0 : (uint64_t)connect;
	res->total_us = (uint64_t)total;
	res->http_version = version == CURL_HTTP_VERSION_2_0 ? 2
	                    : version == CURL_HTTP_VERSION_3 ? 3
	                    : version != 0                   ? 1
	                                                     : 0;
	res->body = x->body ? x->body : "";
	res->body_len = x->body_len;
	res->content_type = x->content_type;
	res->retry_after = x->retry_after;
	res->location = x->location;
}

/* Header lines may carry a credential, and a body a token: wiped before they are freed. */
static void
wipe_lines(struct curl_slist *l)
{
	for (; l != NULL; l = l->next)
		sodium_memzero(l->data, strlen(l->data));
}

void
sg_fetch_easy_clear(struct sg_fetch *x)
{
	wipe_lines(x->headers);
	if (x->body != NULL)
		sodium_memzero(x->body, x->body_len);
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->resolve);
	x->headers = x->resolve = NULL;
	free(x->body);
	x->body = NULL;
	x->body_len = x->body_cap = 0;
	clear_headers(x);
}
