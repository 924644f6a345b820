/*
 * sg_conn: what libevent 2.1's evhttp leaves undone for a server's
 * connections: an absolute deadline for each request's head and body
 * (evhttp's own timer restarts with every byte), caps on connections open
 * at once (in all and per client address), and a pause in accepting when
 * accept fails (out of descriptors) instead of a loop that spins and logs.
 * The design and what 2.1 cannot do: docs/architecture.md, "Transport
 * limits and libevent 2.1".
 *
 * Everything here runs on the I/O thread that accepted the connection;
 * only the caps are shared between threads (atomics).
 */
#ifndef SG_CONN_H
#define SG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct sg_config;
struct sg_io_thread;
struct sg_conn;
struct sg_conn_shared;
struct sg_tls;

/* Who is at the other end, as caps and rate limits see them. */
struct sg_client {
	uint64_t key;  /* keyed hash of the address (an IPv6 client's /64); never 0 */
	char text[56]; /* "192.0.2.7", "2001:db8:1:2::/64" */
};

/*
 * The caps, the per-address table and the deadlines, shared by every
 * thread.  NULL with a sentence in `err` when out of memory.
 */
struct sg_conn_shared *sg_conn_shared_new(const struct sg_config *cfg, char *err, size_t errlen);
void sg_conn_shared_free(struct sg_conn_shared *sh);
/* The cap on open public connections, as decided at start. */
int64_t sg_conn_max_open(const struct sg_conn_shared *sh);

/* A thread's connection index and timers; -1 when out of memory. */
int sg_conn_thread_init(struct sg_io_thread *t, struct sg_conn_shared *sh);
/* A thread's listeners; TLS connections count against the public caps. */
enum sg_conn_listener { SG_CONN_PUBLIC, SG_CONN_ADMIN, SG_CONN_TLS };

/*
 * Tracks every connection `http` accepts on `*bound` from now on (the
 * admin listener's under its own small cap).  `*bound` is where the caller
 * keeps the bound socket, and NULL once it has been closed.  With `tls`
 * (SG_CONN_TLS only) each connection begins with a TLS handshake, timed by
 * the head deadline like the request it precedes.
 */
int sg_conn_watch(struct sg_io_thread *t, struct evhttp *http, struct evhttp_bound_socket **bound,
                  enum sg_conn_listener which, struct sg_tls *tls);
/* On the thread itself, before its event loop runs (accept errors find it through this). */
void sg_conn_thread_enter(struct sg_io_thread *t);
/* After every evhttp of the thread has been freed. */
void sg_conn_thread_free(struct sg_io_thread *t);

/* The connection a request came on; NULL when it is not tracked (out of memory). */
struct sg_conn *sg_conn_of(struct sg_io_thread *t, struct evhttp_request *req);
/* Borrowed; valid while the connection is open. */
const struct sg_client *sg_conn_client(const struct sg_conn *cn);
/*
 * Called with every reply, before it is sent: the next request's head is
 * timed from the moment this one's reply has been written.  `cn` is the
 * request's connection from sg_conn_of, or NULL (untracked).
 */
void sg_conn_replying(struct sg_io_thread *t, struct sg_conn *cn, struct evhttp_request *req);

/*
 * The cap on open connections when max_connections is 0: three quarters
 * of what the open-files limit leaves after `reserve` descriptors (the
 * store, listeners, event loops, sandbox sockets), at least 16.  The
 * other quarter is room for upstream connections.
 */
int64_t sg_conn_auto_max(uint64_t nofile, uint64_t reserve);

/*
 * Whether the bytes evhttp has not consumed yet can only be a body begun:
 * while evhttp reads a head it consumes every complete line, so what is
 * left is a part line, which cannot contain LF, be longer than the head
 * limit or start with a byte that starts no request line or header line
 * (JSON's '{', '[' or '"').  `len` is 0 when nothing is left.
 */
bool sg_conn_body_begun(unsigned char first, size_t len, bool has_lf, size_t max_head);

#endif
