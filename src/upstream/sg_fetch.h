/*
 * sg_fetch: upstream HTTP exchanges through libcurl's multi interface,
 * driven by an I/O thread's libevent loop (CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION).  One sg_fetcher per thread; its connections are
 * kept alive and reused across calls, and HTTP/2 is used where the upstream
 * offers it over TLS.
 *
 * A fetch is one request and one response, never a redirect followed: a
 * 3xx comes back as it is, so the caller can put the next hop through the
 * egress guard.  TLS certificates are always verified.  Every address curl
 * is about to connect to is first shown to `admit` (CURLOPT_OPENSOCKETFUNCTION),
 * so nothing can rebind a name between the check and the connect.
 */
#ifndef SG_FETCH_H
#define SG_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct sg_fetcher;
struct sg_fetch;

/* Why a fetch produced no complete response. */
enum sg_fetch_error {
	SG_FETCH_OK,          /* a response: see status */
	SG_FETCH_REFUSED,     /* admit() refused every address: the egress guard said no */
	SG_FETCH_RESOLVE,     /* the name did not resolve */
	SG_FETCH_CONNECT,     /* no connection (refused, unreachable, connect timeout) */
	SG_FETCH_TLS,         /* handshake or certificate verification failed */
	SG_FETCH_TIMEOUT,     /* the whole exchange took longer than timeout_ms */
	SG_FETCH_TOO_LARGE,   /* the response body passed max_response */
	SG_FETCH_PROTOCOL,    /* a malformed response, or the connection closed mid-way */
	SG_FETCH_CANCELLED,   /* sg_fetch_cancel */
	SG_FETCH_INTERNAL,    /* out of memory or a curl misuse */
};

/*
 * Decides whether curl may connect to `sa` (the resolved address, port
 * included).  Returns true to allow; false to refuse, in which case the
 * fetch ends with SG_FETCH_REFUSED unless another address is allowed.
 */
typedef bool (*sg_fetch_admit_fn)(void *arg, const struct sockaddr *sa, socklen_t len);

struct sg_fetch_request {
	const char *method; /* "GET", "POST", ... */
	const char *url;    /* absolute, already encoded */
	/* "Name: value" lines, sent as given; no other header is added but Host and Content-Length. */
	const char *const *headers;
	size_t n_headers;
	const char *body; /* NULL: none */
	size_t body_len;
	uint32_t connect_timeout_ms; /* > 0 */
	uint32_t timeout_ms;         /* > 0: the whole exchange */
	size_t max_response;         /* body bytes; more ends the fetch with SG_FETCH_TOO_LARGE */
	const char *ca_bundle;       /* NULL: the system's trust store */
	const char *const *resolve;  /* "host:port:address" pins, or NULL */
	size_t n_resolve;
	sg_fetch_admit_fn admit; /* required */
	void *admit_arg;
};

/* The outcome, valid only during the completion callback. */
struct sg_fetch_result {
	enum sg_fetch_error error;
	char message[160]; /* curl's own words for a failure, for logs; never shown to callers */
	long status;       /* HTTP status when error == SG_FETCH_OK */
	const char *body;  /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
	/* A few response headers the gateway acts on, NULL when absent. */
	const char *content_type;
	const char *retry_after;
	const char *location;
	uint64_t connect_us; /* time to connected (0 when reused) */
	uint64_t total_us;   /* time of the whole exchange */
	bool reused;         /* the connection was kept alive from an earlier fetch */
	long http_version;   /* 1 or 2 */
};

typedef void (*sg_fetch_done_fn)(void *arg, const struct sg_fetch_result *res);

/* One per I/O thread, on its base.  NULL when out of memory. */
struct sg_fetcher *sg_fetcher_new(struct event_base *base);
/*
 * Cancels what is in flight (each callback runs with SG_FETCH_CANCELLED), then
 * frees.  Never from inside a `done` callback; a callback it runs may not start
 * a fetch on `f` (sg_fetch_start returns NULL then).
 */
void sg_fetcher_free(struct sg_fetcher *f);

/*
 * Starts one exchange.  `done` runs exactly once, from the event loop and
 * never from inside this call.  The request's strings need only live until
 * this returns.  NULL when out of memory (then `done` never runs).
 */
struct sg_fetch *sg_fetch_start(struct sg_fetcher *f, const struct sg_fetch_request *rq,
                                sg_fetch_done_fn done, void *arg);
/*
 * Ends a fetch early: its callback runs with SG_FETCH_CANCELLED before this
 * returns.  `x` is gone once its callback has run; cancel it only before then.
 */
void sg_fetch_cancel(struct sg_fetch *x);

/* Process-wide curl set-up, once, before any thread starts. */
int sg_fetch_global_init(void);

#endif
