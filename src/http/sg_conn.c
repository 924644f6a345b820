/*
 * sg_conn: deadlines, caps and accept pauses on top of libevent 2.1's
 * evhttp, with nothing added to the path of a byte.
 *
 * How a connection is found: evhttp asks its bevcb for each new
 * connection's bufferevent before it reads a byte.  We make it, hold a
 * reference and queue it; an event activated there runs once the accept
 * batch is done, still before the connection's first read, and "adopts"
 * it: the bufferevent's callback argument is then evhttp's connection
 * (http.c sets it at creation and at every request), so we can set a
 * close callback, learn the peer, count it against the caps, and arm one
 * timer.  Requests find their connection through the thread's fd index.
 *
 * How the timer tells the phases apart: evhttp reads a request with its
 * read callback set and reading enabled; it disables reading before it
 * hands the request to us, and clears the read callback while the reply
 * is written.  So the timer, when it fires, knows whether a request is
 * still arriving.  If it is, and the head deadline passed, the request is
 * cut with 408 unless its body has visibly begun (sg_conn_body_begun), in
 * which case the body gets body_timeout more.  A reply, once written,
 * re-arms the timer for the next request.
 */
#include "http/sg_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "core/sg_clock.h"
#include "core/sg_config.h"
#include "core/sg_problem.h"
#include "http/sg_http.h"
#include "http/sg_tls.h"
#include "obs/sg_log.h"
#include "obs/sg_metrics.h"
#include "obs/sg_trace.h"
#include "throttle/sg_ratetable.h"

/* Operators' tools and scrapers on the admin listener. */
#define ADMIN_MAX_OPEN 64
/* Descriptors kept for everything but client connections (plus sandbox.max_workers). */
#define RESERVED_FDS 128
#define ACCEPT_PAUSE_MS 100
/* How long a cut connection may take to read its 408 before it is closed. */
#define LINGER_MS 2000
#define LOG_EVERY_NS (10ull * 1000000000ull)

/* Whose cap a connection counts against: TLS connections share the public one. */
enum { SITE_PUBLIC, SITE_ADMIN, N_CAPS };
/* The listeners, indexed by enum sg_conn_listener. */
#define N_SITES 3

struct sg_conn_shared {
	_Atomic int64_t open[N_CAPS];
	int64_t max_open[N_CAPS];
	int per_address;
	struct sg_ratetable *by_addr; /* open connections per client; NULL: no cap */
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	struct timeval head, next_head, body, linger, pause;
	uint64_t head_ns, next_head_ns, body_ns;
	size_t max_head;
};

enum conn_phase { PHASE_HEAD, PHASE_BODY, PHASE_CUT };

struct sg_conns;

struct sg_conn_site {
	struct sg_conns *cs;
	struct evhttp_bound_socket **bound; /* the owner's field; NULL once closed */
	int kind;                           /* the cap: SITE_PUBLIC or SITE_ADMIN */
	const char *name;                   /* "public", "tls" or "admin", for logs */
	struct sg_tls *tls;                 /* the TLS listener's context; NULL: plain */
};

struct sg_conn {
	struct sg_conn_site *site;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct event *timer;
	_Atomic uint64_t *addr_count; /* the client's count in by_addr, while it holds one */
	bool counted;                 /* holds one of its listener's places */
	bool answered;                /* has had a reply: evhttp's timer is idle_timeout since */
	enum conn_phase phase;
	uint64_t due_ns; /* when the phase's deadline passes (monotonic) */
	evutil_socket_t fd;
	struct sg_client client;
	struct sg_conn *next_new;
};

struct sg_conns {
	struct sg_io_thread *t;
	struct sg_conn_shared *sh;
	struct sg_conn_site site[N_SITES];
	struct sg_conn *fresh; /* made by the bevcb, waiting to be adopted */
	struct event *adopt_ev;
	struct event *resume_ev;
	struct sg_conn **by_fd;
	size_t n_by_fd;
	const struct timeval *head_tv, *next_head_tv, *body_tv, *linger_tv;
};

/* Accept errors reach us with evhttp's argument, not ours: the thread says whose they are. */
static _Thread_local struct sg_conns *tl_conns;

/* At most one log line per kind per LOG_EVERY_NS; the rest are counted into the next. */
struct note {
	_Atomic uint64_t next_ns;
	_Atomic uint64_t quiet;
};

static struct note note_accept, note_refused[SG_CONN_REFUSED_COUNT], note_cut;

static bool
note_due(struct note *n, uint64_t *quiet)
{
	uint64_t now = sg_mono_ns();
	uint64_t next = atomic_load(&n->next_ns);
	if (now < next || !atomic_compare_exchange_strong(&n->next_ns, &next, now + LOG_EVERY_NS)) {
		atomic_fetch_add(&n->quiet, 1);
		return false;
	}
	*quiet = atomic_exchange(&n->quiet, 0);
	return true;
}

static void
ms_tv(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

int64_t
sg_conn_auto_max(uint64_t nofile, uint64_t reserve)
{
	uint64_t left = nofile > reserve ? nofile - reserve : 0;
	uint64_t n = left / 4 * 3 + left % 4 * 3 / 4;
	if (n > 1000000)
		n = 1000000;
	return n < 16 ? 16 : (int64_t)n;
}

bool
sg_conn_body_begun(unsigned char first, size_t len, bool has_lf, size_t max_head)
{
	/* A request line starts with a method and a header line with a field name (both
	 * tchar, RFC 9110 section 5.6.2), an obsolete fold with SP or HT, the blank line with CR.
	 */
	static const char head_start[] = "!#$%&'*+-.^_`|~ \t\r";
	if (len == 0)
		return false;
	if (has_lf || len > max_head)
		return true;
	bool alnum =
	    (first >= '0' && first <= '9') || ((first | 0x20) >= 'a' && (first | 0x20) <= 'z');
	return !alnum && (first == '\0' || strchr(head_start, first) == NULL);
}

struct sg_conn_shared *
sg_conn_shared_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_conn_shared *sh = calloc(1, sizeof(*sh));
	struct rlimit rl;
	if (sh == NULL)
		goto oom;
	uint64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
	uint64_t reserve =
	    RESERVED_FDS + (cfg->sandbox_enabled ? (uint64_t)cfg->sandbox_max_workers : 0);
	sh->max_open[SITE_PUBLIC] =
	    cfg->max_connections ? cfg->max_connections : sg_conn_auto_max(nofile, reserve);
	sh->max_open[SITE_ADMIN] = ADMIN_MAX_OPEN;
	sh->per_address = cfg->max_conns_per_addr;
	if (sh->per_address > 0) {
		/* Twice the connections: a table of live counts refuses keys only past about half
		 * full. */
		size_t cells = (size_t)sh->max_open[SITE_PUBLIC] * 2;
		cells = cells < 1024 ? 1024 : cells > (1u << 20) ? (1u << 20) : cells;
		if ((sh->by_addr = sg_ratetable_new(cells)) == NULL)
			goto oom;
	}
	randombytes_buf(sh->hash_key, sizeof(sh->hash_key));
	ms_tv(&sh->head, cfg->header_timeout_ms);
	ms_tv(&sh->next_head, (uint64_t)cfg->idle_timeout_ms + cfg->header_timeout_ms);
	ms_tv(&sh->body, cfg->body_timeout_ms);
	ms_tv(&sh->linger, LINGER_MS);
	ms_tv(&sh->pause, ACCEPT_PAUSE_MS);
	sh->head_ns = (uint64_t)cfg->header_timeout_ms * 1000000ull;
	sh->next_head_ns = ((uint64_t)cfg->idle_timeout_ms + cfg->header_timeout_ms) * 1000000ull;
	sh->body_ns = (uint64_t)cfg->body_timeout_ms * 1000000ull;
	sh->max_head = cfg->max_header_bytes;
	if (cfg->max_connections && (uint64_t)cfg->max_connections + reserve > nofile)
		sg_log(
		    SG_LOG_WARN,
		    json_pack("{s:i, s:I}", "max_connections", cfg->max_connections, "nofile",
		              (json_int_t)nofile),
		    "limits.max_connections (%d) is more than the open-files limit (%llu) leaves; "
		    "when descriptors run out, accepting pauses. Raise ulimit -n (LimitNOFILE=) "
		    "or set max_connections: 0",
		    cfg->max_connections, (unsigned long long)nofile);
	return sh;
oom:
	sg_conn_shared_free(sh);
	snprintf(err, errlen, "out of memory for the connection table");
	return NULL;
}

void
sg_conn_shared_free(struct sg_conn_shared *sh)
{
	if (sh == NULL)
		return;
	sg_ratetable_free(sh->by_addr);
	free(sh);
}

int64_t
sg_conn_max_open(const struct sg_conn_shared *sh)
{
	return sh->max_open[SITE_PUBLIC];
}

/* The address as caps see it: IPv4 whole (also when mapped into IPv6), IPv6 by its /64. */
static void
client_of(const struct sg_conn_shared *sh, const struct sockaddr *sa, struct sg_client *out)
{
	unsigned char buf[9] = {0};
	size_t n = 1;
	struct in6_addr prefix;
	memset(out, 0, sizeof(*out));
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		buf[0] = 4;
		memcpy(buf + 1, &a->sin_addr, 4);
		n = 5;
		inet_ntop(AF_INET, &a->sin_addr, out->text, sizeof(out->text));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		const unsigned char *b = a->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			buf[0] = 4;
			memcpy(buf + 1, b + 12, 4);
			n = 5;
			inet_ntop(AF_INET, b + 12, out->text, sizeof(out->text));
		} else {
			buf[0] = 6;
			memcpy(buf + 1, b, 8);
			n = 9;
			memset(&prefix, 0, sizeof(prefix));
			memcpy(prefix.s6_addr, b, 8);
			inet_ntop(AF_INET6, &prefix, out->text, sizeof(out->text) - 4);
			strcat(out->text, "/64");
		}
	} else {
		strcpy(out->text, "unknown");
	}
	/* Keyed, so that a client cannot aim many addresses at one probe window of the table. */
	uint64_t h = 0;
	crypto_shorthash((unsigned char *)&h, buf, n, sh->hash_key);
	out->key = h ? h : 1;
}

static int
index_put(struct sg_conns *cs, evutil_socket_t fd, struct sg_conn *cn)
{
	if (fd < 0)
		return -1;
	if ((size_t)fd >= cs->n_by_fd) {
		size_t n = cs->n_by_fd ? cs->n_by_fd : 256;
		while (n <= (size_t)fd)
			n *= 2;
		struct sg_conn **v = realloc(cs->by_fd, n * sizeof(*v));
		if (v == NULL)
			return -1;
		memset(v + cs->n_by_fd, 0, (n - cs->n_by_fd) * sizeof(*v));
		cs->by_fd = v;
		cs->n_by_fd = n;
	}
	cs->by_fd[fd] = cn;
	return 0;
}

static void
refused(const struct sg_conn *cn, enum sg_conn_refused why)
{
	const struct sg_conn_shared *sh = cn->site->cs->sh;
	uint64_t quiet;
	atomic_fetch_add_explicit(&sg_gauges.conns_refused[why], 1, memory_order_relaxed);
	if (!note_due(&note_refused[why], &quiet))
		return;
	if (why == SG_CONN_REFUSED_TOTAL)
		sg_log(SG_LOG_WARN,
		       json_pack("{s:s, s:I, s:I}", "listener", cn->site->name, "cap",
		                 (json_int_t)sh->max_open[cn->site->kind], "suppressed",
		                 (json_int_t)quiet),
		       "closing new connections: %lld are open, the cap (limits.max_connections, "
		       "or 64 on the admin listener); raise it, and ulimit -n, if the load is real",
		       (long long)sh->max_open[cn->site->kind]);
	else
		sg_log(SG_LOG_WARN,
		       json_pack("{s:s, s:i, s:I}", "client", cn->client.text, "cap",
		                 sh->per_address, "suppressed", (json_int_t)quiet),
		       "closing new connections from %s: it has %d open, the cap "
		       "(limits.max_connections_per_address)",
		       cn->client.text, sh->per_address);
}

/* Counts the connection against its listener's cap and its client's; false when over. */
static bool
take_place(struct sg_conn *cn)
{
	struct sg_conn_shared *sh = cn->site->cs->sh;
	int k = cn->site->kind;
	if (atomic_fetch_add(&sh->open[k], 1) >= sh->max_open[k]) {
		atomic_fetch_sub(&sh->open[k], 1);
		refused(cn, SG_CONN_REFUSED_TOTAL);
		return false;
	}
	cn->counted = true;
	if (k == SITE_PUBLIC)
		atomic_fetch_add_explicit(&sg_gauges.conns_open, 1, memory_order_relaxed);
	if (k != SITE_PUBLIC || sh->by_addr == NULL)
		return true;
	/* A count at zero frees its slot for another client ("now" 0, as for concurrency caps). */
	_Atomic uint64_t *c = sg_ratetable_cell(sh->by_addr, cn->client.key, 0);
	if (c == NULL || atomic_fetch_add(c, 1) >= (uint64_t)sh->per_address) {
		if (c != NULL)
			atomic_fetch_sub(c, 1);
		refused(cn, SG_CONN_REFUSED_PER_ADDRESS);
		return false;
	}
	cn->addr_count = c;
	return true;
}

static void
give_back(struct sg_conn *cn)
{
	struct sg_conn_shared *sh = cn->site->cs->sh;
	if (cn->addr_count != NULL)
		atomic_fetch_sub(cn->addr_count, 1);
	if (!cn->counted)
		return;
	atomic_fetch_sub(&sh->open[cn->site->kind], 1);
	if (cn->site->kind == SITE_PUBLIC)
		atomic_fetch_sub_explicit(&sg_gauges.conns_open, 1, memory_order_relaxed);
}

/* evhttp's close callback: every tracked connection ends here, exactly once. */
static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct sg_conn *cn = arg;
	struct sg_conns *cs = cn->site->cs;
	(void)evcon;
	give_back(cn);
	if (cn->fd >= 0 && (size_t)cn->fd < cs->n_by_fd && cs->by_fd[cn->fd] == cn)
		cs->by_fd[cn->fd] = NULL;
	if (cn->timer != NULL)
		event_free(cn->timer);
	free(cn);
}

/* Whether evhttp is reading a request on it (not handing one to us, nor writing a reply). */
static bool
reading(const struct sg_conn *cn)
{
	bufferevent_data_cb readcb = NULL;
	bufferevent_getcb(cn->bev, &readcb, NULL, NULL, NULL);
	return readcb != NULL && (bufferevent_get_enabled(cn->bev) & EV_READ);
}

static bool
body_begun(const struct sg_conn *cn)
{
	struct evbuffer *in = bufferevent_get_input(cn->bev);
	size_t len = evbuffer_get_length(in);
	size_t max_head = cn->site->cs->sh->max_head;
	unsigned char first = 0;
	bool lf = false;
	if (len > 0 && len <= max_head) {
		evbuffer_copyout(in, &first, 1);
		lf = evbuffer_search(in, "\n", 1, NULL).pos >= 0;
	}
	return sg_conn_body_begun(first, len, lf, max_head);
}

/*
 * The 408 is written here, not by evhttp: evhttp has not handed the
 * request over (its head may not even be complete), and 2.1 has no call
 * that answers a request still being read.  Four fixed header lines.
 */
static int
write_408(struct evbuffer *out, bool body)
{
	struct sg_trace tr;
	char tp[64];
	sg_trace_begin(&tr, NULL);
	sg_trace_format(&tr, tp, sizeof(tp));
	struct sg_jbuf text = {0};
	if (sg_problem_write(&text, sg_problem_def(SG_P_REQUEST_TIMEOUT),
	                     body ? "the request body did not arrive in time "
	                            "(limits.body_timeout)"
	                          : "the request head did not arrive in time "
	                            "(limits.header_timeout)",
	                     tr.trace_id, NULL, NULL) != 0)
		return -1;
	int rc = evbuffer_add_printf(out,
	                             "HTTP/1.1 408 Request Timeout\r\n"
	                             "Content-Type: application/problem+json\r\n"
	                             "Content-Length: %zu\r\ntraceparent: %s\r\n"
	                             "Connection: close\r\n\r\n%s",
	                             text.len, tp, text.data);
	sg_jbuf_release(&text);
	return rc < 0 ? -1 : 0;
}

/*
 * A cut connection reads and drops whatever still comes, so that closing
 * it does not reset it (a reset may discard the 408 before the client
 * reads it).  The read callback ignores its argument: evhttp may still
 * run a deferred read with its own.
 */
static void
linger_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
linger_written(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
linger_event(struct bufferevent *bev, short what, void *arg)
{
	struct sg_conn *cn = arg;
	(void)bev;
	(void)what;
	evhttp_connection_free(cn->evcon); /* frees cn through on_close */
}

static void
note_cut_line(const struct sg_conn *cn, bool body)
{
	uint64_t quiet;
	if (!note_due(&note_cut, &quiet))
		return;
	sg_log(SG_LOG_WARN,
	       json_pack("{s:s, s:s, s:I}", "client", cn->client.text, "phase",
	                 body ? "body" : "head", "suppressed", (json_int_t)quiet),
	       "cut a request from %s with 408: its %s missed its deadline (limits.%s)",
	       cn->client.text, body ? "body" : "head", body ? "body_timeout" : "header_timeout");
}

/* Takes the connection from evhttp, answers 408 and closes after it. */
static void
cut(struct sg_conn *cn)
{
	struct sg_conns *cs = cn->site->cs;
	struct bufferevent *bev = cn->bev;
	bool body = cn->phase == PHASE_BODY;
	atomic_fetch_add_explicit(&sg_gauges.request_timeouts[body], 1, memory_order_relaxed);
	note_cut_line(cn, body);
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_setcb(bev, linger_read, linger_written, linger_event, cn);
	linger_read(bev, NULL);
	if (write_408(bufferevent_get_output(bev), body) != 0) {
		evhttp_connection_free(cn->evcon);
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	cn->phase = PHASE_CUT;
	event_add(cn->timer, cs->linger_tv);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sg_conn *cn = arg;
	(void)fd;
	(void)what;
	if (cn->phase == PHASE_CUT) {
		evhttp_connection_free(cn->evcon); /* it had its time to read the 408 */
		return;
	}
	/* A request handed to us, or a reply being written: the reply re-arms the timer. */
	if (!reading(cn))
		return;
	/* A reply moved the deadline on since the timer was set (sg_conn_replying). */
	uint64_t now = sg_mono_ns();
	if (now < cn->due_ns) {
		struct timeval left;
		ms_tv(&left, (cn->due_ns - now + 999999) / 1000000);
		event_add(cn->timer, &left);
		return;
	}
	if (cn->phase == PHASE_HEAD && body_begun(cn)) {
		cn->phase = PHASE_BODY;
		cn->due_ns = now + cn->site->cs->sh->body_ns;
		event_add(cn->timer, cn->site->cs->body_tv);
		return;
	}
	cut(cn);
}

static void
adopt(struct sg_conn *cn)
{
	struct sg_conns *cs = cn->site->cs;
	struct bufferevent *bev = cn->bev;
	bufferevent_data_cb readcb = NULL;
	void *evcon = NULL;
	bufferevent_getcb(bev, &readcb, NULL, NULL, &evcon);
	/* Let go before anything can free it: from here evhttp's close callback tells the end. */
	bufferevent_decref(bev);
	if (readcb == NULL || evcon == NULL) {
		free(cn); /* evhttp gave the connection up already (out of memory) */
		return;
	}
	cn->evcon = evcon;
	cn->fd = bufferevent_getfd(bev);
	evhttp_connection_set_closecb(cn->evcon, on_close, cn);
	client_of(cs->sh, evhttp_connection_get_addr(cn->evcon), &cn->client);
	cn->timer = event_new(bufferevent_get_base(bev), -1, 0, on_deadline, cn);
	/* Fail closed: a connection we cannot time or count is not served. */
	if (cn->timer == NULL || index_put(cs, cn->fd, cn) != 0 || !take_place(cn)) {
		evhttp_connection_free(cn->evcon); /* on_close gives back what was taken */
		return;
	}
	cn->due_ns = sg_mono_ns() + cs->sh->head_ns;
	event_add(cn->timer, cs->head_tv);
}

static void
on_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct sg_conns *cs = arg;
	(void)fd;
	(void)what;
	while (cs->fresh != NULL) {
		struct sg_conn *cn = cs->fresh;
		cs->fresh = cn->next_new;
		adopt(cn);
	}
}

/*
 * evhttp's bevcb: runs for every accepted connection, before evhttp has set
 * it up.  On the TLS listener the bufferevent runs the handshake; if it
 * cannot be made (out of memory), the plain one evhttp falls back to is
 * refused by on_tls_request (sg_server.c), never served.
 */
static struct bufferevent *
on_new_connection(struct event_base *base, void *arg)
{
	struct sg_conn_site *site = arg;
	struct bufferevent *bev =
	    site->tls ? sg_tls_bev_new(site->tls, base) : bufferevent_socket_new(base, -1, 0);
	struct sg_conn *cn = bev ? calloc(1, sizeof(*cn)) : NULL;
	/* Untracked only when memory has run out; the bevcb cannot refuse a connection. */
	if (cn == NULL)
		return bev;
	cn->site = site;
	cn->bev = bev;
	cn->fd = -1;
	bufferevent_incref(bev); /* until adopted: evhttp may still drop it */
	cn->next_new = site->cs->fresh;
	site->cs->fresh = cn;
	event_active(site->cs->adopt_ev, EV_TIMEOUT, 1);
	return bev;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct sg_conns *cs = arg;
	(void)fd;
	(void)what;
	for (int i = 0; i < N_SITES; i++)
		if (cs->site[i].bound != NULL && *cs->site[i].bound != NULL)
			evconnlistener_enable(evhttp_bound_socket_get_listener(*cs->site[i].bound));
}

/*
 * accept failed for a reason other than a retry (EMFILE, ENFILE, ENOBUFS):
 * the pending connection stays queued and the listener would fire again at
 * once, forever.  Stop accepting for a moment instead; connections queue
 * in the kernel's backlog meanwhile.
 */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct sg_conns *cs = tl_conns;
	uint64_t quiet;
	(void)arg;
	evconnlistener_disable(lev);
	atomic_fetch_add_explicit(&sg_gauges.accept_paused, 1, memory_order_relaxed);
	if (cs != NULL && !evtimer_pending(cs->resume_ev, NULL))
		evtimer_add(cs->resume_ev, &cs->sh->pause);
	if (!note_due(&note_accept, &quiet))
		return;
	sg_log(SG_LOG_ERROR,
	       json_pack("{s:s, s:I}", "error", strerror(err), "suppressed", (json_int_t)quiet),
	       "accept failed: %s; not accepting for %d ms at a time until it succeeds. Raise the "
	       "open-files limit (ulimit -n) or lower limits.max_connections",
	       strerror(err), ACCEPT_PAUSE_MS);
}

static const struct timeval *
common_tv(struct event_base *base, const struct timeval *tv)
{
	/* Timers of one duration share a queue: adding one is O(1), not a heap insert. */
	const struct timeval *c = event_base_init_common_timeout(base, tv);
	return c ? c : tv;
}

int
sg_conn_thread_init(struct sg_io_thread *t, struct sg_conn_shared *sh)
{
	struct sg_conns *cs = calloc(1, sizeof(*cs));
	if (cs == NULL)
		return -1;
	t->conns = cs;
	cs->t = t;
	cs->sh = sh;
	cs->adopt_ev = event_new(t->base, -1, 0, on_adopt, cs);
	cs->resume_ev = evtimer_new(t->base, on_resume, cs);
	if (cs->adopt_ev == NULL || cs->resume_ev == NULL)
		return -1;
	cs->head_tv = common_tv(t->base, &sh->head);
	cs->next_head_tv = common_tv(t->base, &sh->next_head);
	cs->body_tv = common_tv(t->base, &sh->body);
	cs->linger_tv = common_tv(t->base, &sh->linger);
	return 0;
}

int
sg_conn_watch(struct sg_io_thread *t, struct evhttp *http, struct evhttp_bound_socket **bound,
              enum sg_conn_listener which, struct sg_tls *tls)
{
	static const char *const names[N_SITES] = {"public", "admin", "tls"};
	struct sg_conns *cs = t->conns;
	bool admin = which == SG_CONN_ADMIN;
	struct sg_conn_site *site = &cs->site[which];
	struct evconnlistener *lev = *bound ? evhttp_bound_socket_get_listener(*bound) : NULL;
	if (lev == NULL)
		return -1;
	site->cs = cs;
	site->bound = bound;
	site->kind = admin ? SITE_ADMIN : SITE_PUBLIC;
	site->name = names[which];
	site->tls = tls;
	evhttp_set_bevcb(http, on_new_connection, site);
	evconnlistener_set_error_cb(lev, on_accept_error);
	return 0;
}

void
sg_conn_thread_enter(struct sg_io_thread *t)
{
	tl_conns = t->conns;
}

void
sg_conn_thread_free(struct sg_io_thread *t)
{
	struct sg_conns *cs = t->conns;
	if (cs == NULL)
		return;
	/* Only connections evhttp dropped before adoption can be left here. */
	while (cs->fresh != NULL) {
		struct sg_conn *cn = cs->fresh;
		cs->fresh = cn->next_new;
		bufferevent_decref(cn->bev);
		free(cn);
	}
	if (cs->adopt_ev)
		event_free(cs->adopt_ev);
	if (cs->resume_ev)
		event_free(cs->resume_ev);
	free(cs->by_fd);
	free(cs);
	t->conns = NULL;
}

struct sg_conn *
sg_conn_of(struct sg_io_thread *t, struct evhttp_request *req)
{
	struct sg_conns *cs = t->conns;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (cs == NULL || evcon == NULL)
		return NULL;
	evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0 || (size_t)fd >= cs->n_by_fd)
		return NULL;
	struct sg_conn *cn = cs->by_fd[fd];
	return cn != NULL && cn->evcon == evcon ? cn : NULL;
}

const struct sg_client *
sg_conn_client(const struct sg_conn *cn)
{
	return cn ? &cn->client : NULL;
}

/*
 * The reply has been written: the next request's head is timed from now.
 * A timer still pending is left alone, to fire at its earlier time and
 * re-arm for what is left, so that most replies cost a clock read, not a
 * timer operation.
 */
static void
on_reply_written(struct evhttp_request *req, void *arg)
{
	struct sg_conn *cn = arg;
	(void)req;
	cn->phase = PHASE_HEAD;
	cn->due_ns = sg_mono_ns() + cn->site->cs->sh->next_head_ns;
	if (!evtimer_pending(cn->timer, NULL))
		event_add(cn->timer, cn->site->cs->next_head_tv);
}

void
sg_conn_replying(struct sg_io_thread *t, struct sg_conn *cn, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL)
		return;
	if (cn != NULL && cn->evcon != evcon)
		cn = NULL; /* defensive: the context's connection is the request's own */
	/*
	 * evhttp keeps one timer per connection, restarted by every byte: it
	 * bounds silence, not time.  read_timeout until the first reply, then
	 * idle_timeout; setting it once is enough (it re-adds two events).
	 */
	if (cn == NULL || !cn->answered) {
		uint32_t ms = t->server->cfg->idle_timeout_ms;
		struct timeval tv;
		ms_tv(&tv, ms);
		evhttp_connection_set_timeout_tv(evcon, &tv);
	}
	if (cn == NULL)
		return;
	cn->answered = true;
	evhttp_request_set_on_complete_cb(req, on_reply_written, cn);
}
