/*
 * sg_fetch: libcurl's multi interface on an I/O thread's event loop, the
 * way curl's hiperfifo example does it.  curl says which sockets it wants
 * watched (CURLMOPT_SOCKETFUNCTION: one event per socket, hung on the socket
 * with curl_multi_assign) and when it next needs a call
 * (CURLMOPT_TIMERFUNCTION: one timer); the loop hands readiness back with
 * curl_multi_socket_action, and after every such call the finished
 * transfers are read off curl_multi_info_read and completed.
 *
 * The multi handle owns the connection cache, so a connection outlives the
 * transfer that made it and the next fetch to the same origin reuses it;
 * easy handles are reset and kept on a short free list.  A callback never
 * runs inside sg_fetch_start: a fetch that fails there is completed from a
 * zero-delay event instead.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/sg_log.h"
#include "upstream/sg_fetch_int.h"

/* Idle connections kept per thread; past this curl closes the oldest. */
#define MAX_IDLE_CONNECTIONS 64
/* Reset easy handles kept for reuse per thread. */
#define SPARE_EASY 16

/* A socket curl asked to watch, and its event; freed on CURL_POLL_REMOVE. */
struct sock_watch {
	struct event *ev;
	struct sock_watch *prev, *next;
};

struct sg_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct sg_fetch *live;    /* in flight, or failing early; doubly linked */
	struct sock_watch *watch; /* every socket watched, for the final sweep */
	bool closing;             /* sg_fetcher_free runs: no new fetch */
	CURL *spare[SPARE_EASY];
	unsigned n_spare;
};

static void on_socket_ready(evutil_socket_t fd, short what, void *arg);

static void
link_fetch(struct sg_fetcher *f, struct sg_fetch *x)
{
	x->next = f->live;
	if (f->live)
		f->live->prev = x;
	f->live = x;
}

static void
unlink_fetch(struct sg_fetcher *f, struct sg_fetch *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		f->live = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

static void
unwatch(struct sg_fetcher *f, struct sock_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		f->watch = w->next;
	if (w->next)
		w->next->prev = w->prev;
	event_free(w->ev);
	free(w);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int
on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sg_fetcher *f = userp;
	struct sock_watch *w = socketp;
	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			curl_multi_assign(f->multi, s, NULL);
			unwatch(f, w);
		}
		return 0;
	}
	short kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	                     ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (w == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		if ((w->ev = event_new(f->base, s, kind, on_socket_ready, f)) == NULL) {
			free(w);
			return -1;
		}
		w->next = f->watch;
		if (f->watch)
			f->watch->prev = w;
		f->watch = w;
		curl_multi_assign(f->multi, s, w);
	} else {
		event_del(w->ev);
		event_assign(w->ev, f->base, s, kind, on_socket_ready, f);
	}
	return event_add(w->ev, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: curl's one deadline, -1 for none. */
static int
on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct sg_fetcher *f = userp;
	(void)m;
	if (timeout_ms < 0)
		return event_del(f->timer) == 0 ? 0 : -1;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* Back to the free list, or away when it is full. */
static void
release(struct sg_fetcher *f, struct sg_fetch *x)
{
	sg_fetch_easy_clear(x);
	if (x->easy) {
		if (f->n_spare < SPARE_EASY) {
			curl_easy_reset(x->easy);
			f->spare[f->n_spare++] = x->easy;
		} else {
			curl_easy_cleanup(x->easy);
		}
	}
	if (x->early)
		event_free(x->early);
	free(x);
}

/* Out of the fetcher, then the callback, then the memory its result pointed into. */
static void
complete(struct sg_fetch *x, const struct sg_fetch_result *res)
{
	struct sg_fetcher *f = x->f;
	unlink_fetch(f, x);
	if (x->in_multi) {
		curl_multi_remove_handle(f->multi, x->easy);
		x->in_multi = false;
	}
	if (x->early)
		event_del(x->early);
	x->done(x->arg, res);
	release(f, x);
}

/* A result with no response: a fetch that failed in start, or was cancelled. */
static void
complete_empty(struct sg_fetch *x, enum sg_fetch_error err, const char *why)
{
	struct sg_fetch_result res;
	memset(&res, 0, sizeof(res));
	res.error = err;
	sg_fetch_message(res.message, sizeof(res.message), why);
	res.body = "";
	complete(x, &res);
}

/* Completes every transfer curl has finished. */
static void
drain(struct sg_fetcher *f)
{
	struct CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		/* The message dies with remove_handle: copy what is needed first. */
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct sg_fetch *x = NULL;
		struct sg_fetch_result res;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
		sg_fetch_easy_result(x, rc, &res);
		complete(x, &res);
	}
}

static void
on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetcher *f = arg;
	int running;
	int action =
	    ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(f->multi, fd, action, &running);
	drain(f);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetcher *f = arg;
	int running;
	(void)fd;
	(void)what;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(f);
}

struct sg_fetcher *
sg_fetcher_new(struct event_base *base)
{
	struct sg_fetcher *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->base = base;
	f->multi = curl_multi_init();
	f->timer = evtimer_new(base, on_timer, f);
	if (f->multi == NULL || f->timer == NULL ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, (void *)f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, (void *)f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)MAX_IDLE_CONNECTIONS) !=
	        CURLM_OK) {
		if (f->multi)
			curl_multi_cleanup(f->multi);
		if (f->timer)
			event_free(f->timer);
		free(f);
		return NULL;
	}
	return f;
}

void
sg_fetcher_free(struct sg_fetcher *f)
{
	if (f == NULL)
		return;
	f->closing = true;
	while (f->live)
		sg_fetch_cancel(f->live);
	for (unsigned i = 0; i < f->n_spare; i++)
		curl_easy_cleanup(f->spare[i]);
	/* Closes the kept connections; curl says CURL_POLL_REMOVE for each it watched. */
	curl_multi_cleanup(f->multi);
	while (f->watch)
		unwatch(f, f->watch);
	event_free(f->timer);
	free(f);
}

static void
on_early(evutil_socket_t fd, short what, void *arg)
{
	struct sg_fetch *x = arg;
	(void)fd;
	(void)what;
	complete_empty(x, x->early_error, x->errbuf);
}

static CURL *
take_easy(struct sg_fetcher *f)
{
	if (f->n_spare > 0)
		return f->spare[--f->n_spare];
	return curl_easy_init();
}

struct sg_fetch *
sg_fetch_start(struct sg_fetcher *f, const struct sg_fetch_request *rq, sg_fetch_done_fn done,
               void *arg)
{
	if (f->closing)
		return NULL;
	struct sg_fetch *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	x->f = f;
	x->done = done;
	x->arg = arg;
	x->admit = rq->admit;
	x->admit_arg = rq->admit_arg;
	if ((x->easy = take_easy(f)) == NULL) {
		free(x);
		return NULL;
	}
	if (sg_fetch_easy_setup(x, rq) == 0) {
		CURLMcode mc = curl_multi_add_handle(f->multi, x->easy);
		if (mc == CURLM_OK) {
			x->in_multi = true;
			link_fetch(f, x);
			return x; /* curl's timer callback has asked for the first turn */
		}
		snprintf(x->errbuf, sizeof(x->errbuf), "curl_multi_add_handle: %s",
		         curl_multi_strerror(mc));
		x->early_error = SG_FETCH_INTERNAL;
	}
	/* Fails from the loop, never from here: the caller may not be ready for it yet. */
	if ((x->early = event_new(f->base, -1, 0, on_early, x)) == NULL) {
		release(f, x);
		return NULL;
	}
	event_active(x->early, EV_TIMEOUT, 1);
	link_fetch(f, x);
	return x;
}

void
sg_fetch_cancel(struct sg_fetch *x)
{
	complete_empty(x, SG_FETCH_CANCELLED, "cancelled");
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void
global_init(void)
{
	const curl_version_info_data *v;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		sg_log(SG_LOG_ERROR, NULL,
		       "%s: libcurl did not initialise (its TLS library failed "
		       "to start); live upstream calls cannot run",
		       __func__);
		return;
	}
	v = curl_version_info(CURLVERSION_NOW);
	/*
	 * Without an asynchronous resolver curl resolves a name inside
	 * curl_multi_socket_action, which would stall the whole I/O thread.
	 */
	if (v == NULL || (v->features & CURL_VERSION_ASYNCHDNS) == 0) {
		sg_log(SG_LOG_ERROR, NULL,
		       "%s: libcurl %s resolves names synchronously, which would stall the event "
		       "loops; install a libcurl built with the threaded resolver or c-ares "
		       "(Debian's libcurl4 is)",
		       __func__, v ? v->version : "?");
		return;
	}
	global_rc = 0;
}

int
sg_fetch_global_init(void)
{
	pthread_once(&global_once, global_init);
	return global_rc;
}
