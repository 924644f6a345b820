/*
 * GET /admin/v1/audit: the decision audit, filtered and paged, for keys
 * whose role is "admin".
 *
 * A query reads SQLite, which may wait on disk, and an I/O thread must
 * never do that.  GET /v1/runs/{id} has the same need, but its reader
 * (sg_runs.c) is built around one run id and tenant, so the audit has its
 * own reader of the same shape: one thread with its own read-only store
 * connection and a bounded queue.  The request is parked (sg_http_suspend)
 * with a wake-up event on its own loop; the reader answers by
 * event_active() on that event and touches nothing else of the request.
 * The reader also renders the reply's JSON, so the loop only sends it.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "http/sg_http.h"
#include "http/sg_http_audit.h"
#include "path/sg_path.h"
#include "store/sg_store.h"

/* Queries waiting beyond this are refused with 503: an admin can retry, a loop cannot wait. */
#define QUEUE_MAX 32

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_ANSWERED };

struct audit_job {
	struct sg_audit_filter f;
	struct sg_http_ctx *c; /* only the loop that owns it dereferences it */
	struct event *wake;    /* c->wake_ev: the reader only activates it */
	enum job_state state;  /* under mu */
	int rc;                /* 0, 1 a bad cursor, -1 a store error */
	char *body;            /* the reply, JSON text */
	char err[300];
	struct audit_job *prev, *next; /* every job not yet finished, oldest first */
};

struct sg_http_audit {
	char *data_dir;
	uint8_t key[SG_AUDIT_KEY_LEN];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct audit_job *jobs, *tail;
	size_t n_queued;
	bool running, stopping;
	pthread_t thread;
	struct sg_store *store; /* the reader's own; opened on its first query */
};

/* ---- the reader thread ---- */

/* With mu held. */
static void
unlink_job(struct sg_http_audit *a, struct audit_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		a->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		a->tail = j->prev;
	j->prev = j->next = NULL;
}

static struct audit_job *
next_queued(struct sg_http_audit *a)
{
	for (struct audit_job *j = a->jobs; j != NULL; j = j->next)
		if (j->state == JOB_QUEUED)
			return j;
	return NULL;
}

static int
add_item(void *arg, const struct sg_audit_row *row)
{
	json_t *o = sg_audit_row_json(row);
	return o != NULL && json_array_append_new(arg, o) == 0 ? 0 : -1;
}

static int
open_store(struct sg_http_audit *a)
{
	char err[256];
	if (a->store != NULL)
		return 0;
	if ((a->store = sg_store_open(a->data_dir, err, sizeof(err))) == NULL) {
		sg_log(SG_LOG_WARN, NULL, "%s: cannot open the store: %s", __func__, err);
		return -1;
	}
	if (sg_store_audit_read_only(a->store) != 0) {
		sg_store_close(a->store);
		a->store = NULL;
		return -1;
	}
	return 0;
}

/* On the reader thread, without a lock: the store and the filter are the thread's now. */
static void
run_job(struct sg_http_audit *a, struct audit_job *j)
{
	char next[SG_AUDIT_CURSOR_LEN];
	json_t *items = json_array();
	j->rc = -1;
	if (items == NULL || open_store(a) != 0) {
		json_decref(items);
		return;
	}
	j->rc = sg_store_audit_query(a->store, &j->f, a->key, add_item, items, next, j->err,
	                             sizeof(j->err));
	if (j->rc == -1)
		sg_log(SG_LOG_WARN, NULL, "%s: %s", __func__, sg_store_last_error(a->store));
	if (j->rc == 0) {
		json_t *body = json_pack("{s:o, s:o}", "items", items, "next_cursor",
		                         next[0] ? json_string(next) : json_null());
		j->body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(body);
		j->rc = j->body ? 0 : -1;
	} else {
		json_decref(items);
	}
}

static void *
reader_main(void *arg)
{
	struct sg_http_audit *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stopping) {
		struct audit_job *j = next_queued(a);
		if (j == NULL) {
			pthread_cond_wait(&a->cv, &a->mu);
			continue;
		}
		j->state = JOB_RUNNING; /* nobody frees it until it is answered */
		a->n_queued--;
		pthread_mutex_unlock(&a->mu);
		run_job(a, j);
		pthread_mutex_lock(&a->mu);
		j->state = JOB_ANSWERED;
		/* Under mu: a stop waits for this, so the event's base is still there. */
		event_active(j->wake, EV_TIMEOUT, 1);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

struct sg_http_audit *
sg_http_audit_new(const char *data_dir, const uint8_t key[SG_AUDIT_KEY_LEN])
{
	struct sg_http_audit *a = calloc(1, sizeof(*a));
	if (a == NULL || (a->data_dir = strdup(data_dir)) == NULL) {
		free(a);
		return NULL;
	}
	memcpy(a->key, key, SG_AUDIT_KEY_LEN);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->thread, NULL, reader_main, a) != 0) {
		sg_http_audit_free(a);
		return NULL;
	}
	a->running = true;
	return a;
}

void
sg_http_audit_stop(struct sg_http_audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	bool running = a->running;
	a->stopping = true;
	a->running = false;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (running)
		pthread_join(a->thread, NULL);
}

void
sg_http_audit_free(struct sg_http_audit *a)
{
	if (a == NULL)
		return;
	sg_http_audit_stop(a);
	/* Jobs left belong to requests already abandoned: their events are gone with them. */
	while (a->jobs != NULL) {
		struct audit_job *j = a->jobs;
		a->jobs = j->next;
		free(j->body);
		free(j);
	}
	sg_store_close(a->store);
	explicit_bzero(a->key, sizeof(a->key));
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->data_dir);
	free(a);
}

/* ---- the request, on its I/O thread ---- */

static void
on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct audit_job *j = arg;
	struct sg_http_ctx *c = j->c;
	struct sg_http_audit *a = c->t->server->audit;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&a->mu);
	unlink_job(a, j);
	pthread_mutex_unlock(&a->mu);
	sg_http_unsuspend(c);
	if (j->rc == 0)
		sg_http_send_text(c, 200, j->body, strlen(j->body), "application/json");
	else if (j->rc == 1)
		sg_http_send_problem(c, SG_P_REQUEST_INVALID, j->err);
	else
		sg_http_send_problem(c, SG_P_INTERNAL,
		                     "the audit could not be read from the store; try again");
	free(j->body);
	free(j);
	sg_http_done(c);
}

/* Queues the job; -1 (nothing queued) when the queue is full or the reader stopped. */
static int
submit(struct sg_http_audit *a, struct audit_job *j)
{
	int rc = -1;
	pthread_mutex_lock(&a->mu);
	if (a->running && a->n_queued < QUEUE_MAX) {
		j->state = JOB_QUEUED;
		j->prev = a->tail;
		if (a->tail)
			a->tail->next = j;
		else
			a->jobs = j;
		a->tail = j;
		a->n_queued++;
		pthread_cond_signal(&a->cv);
		rc = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static void
bad_parameter(struct sg_http_ctx *c, const char *why)
{
	sg_http_send_problem(c, SG_P_REQUEST_INVALID, why);
}

/*
 * The query string into `f`: every parameter known, none twice.  An empty
 * value ("tenant=") means no filter, as a form left blank sends it.
 */
static int
parse_query_or_reply(struct sg_http_ctx *c, struct sg_audit_filter *f, int64_t now_us)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq args;
	struct evkeyval *kv;
	char err[300];
	unsigned seen = 0;
	int rc = 0, i = 0;
	static const char *const names[] = {"tenant", "user",  "connector", "decision", "code",
	                                    "since",  "until", "trace",     "limit",    "cursor"};
	if (q == NULL)
		return 0;
	TAILQ_INIT(&args);
	if (evhttp_parse_query_str(q, &args) != 0) {
		bad_parameter(c, "the query string is not valid URL encoding; e.g. "
		                 "/admin/v1/audit?user=alice&since=7d");
		return -1;
	}
	TAILQ_FOREACH(kv, &args, next)
	{
		for (i = 0; i < 10 && strcmp(kv->key, names[i]) != 0; i++)
			;
		if (i < 10 && (seen & (1u << i))) {
			snprintf(err, sizeof(err), "%s is given twice; give each parameter once",
			         names[i]);
			rc = -1;
		} else if (i < 10 && kv->value[0] == '\0') {
			continue;
		} else {
			rc = sg_audit_filter_set(f, kv->key, kv->value, now_us, err, sizeof(err))
			         ? -1
			         : 0;
			seen |= i < 10 ? 1u << i : 0;
		}
		if (rc != 0)
			break;
	}
	evhttp_clear_headers(&args);
	if (rc != 0)
		bad_parameter(c, err);
	return rc;
}

/* Admins only: the audit holds every tenant's users and calls. */
static int
admin_or_reply(struct sg_http_ctx *c, struct sg_req *r)
{
	if (sg_http_identify_or_reply(c, r) != 0)
		return -1;
	const struct sg_key_entry *k = r->principal.key;
	if (strcmp(k->role, SG_AUDIT_ADMIN_ROLE) == 0)
		return 0;
	char detail[200];
	snprintf(detail, sizeof(detail),
	         "GET /admin/v1/audit is for keys with the role \"%s\"; yours has \"%.64s\"",
	         SG_AUDIT_ADMIN_ROLE, k->role);
	sg_http_send_problem(c, SG_P_ADMIN_ONLY, detail);
	return -1;
}

static int
park(struct sg_http_ctx *c, struct sg_http_audit *a, struct audit_job *j)
{
	c->wake_ev = event_new(c->t->base, -1, 0, on_answer, j); /* freed by sg_http_done */
	if (c->wake_ev == NULL)
		return -1;
	j->c = c;
	j->wake = c->wake_ev;
	sg_http_suspend(c);
	if (submit(a, j) == 0)
		return 0;
	sg_http_unsuspend(c);
	return -1;
}

void
sg_http_audit(struct sg_http_ctx *c)
{
	struct sg_req *r = &c->req_state;
	struct sg_http_audit *a = c->t->server->audit;
	if (admin_or_reply(c, r) != 0)
		return;
	struct audit_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		sg_http_send_problem(c, SG_P_INTERNAL, "out of memory");
		return;
	}
	if (parse_query_or_reply(c, &j->f, (int64_t)r->wall_s * 1000000) != 0) {
		free(j);
		return;
	}
	if (a == NULL || park(c, a, j) != 0) {
		free(j);
		evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
		sg_http_send_problem(c, SG_P_NOT_READY,
		                     "the audit reader is busy with other queries; try again in a "
		                     "second");
	}
}
