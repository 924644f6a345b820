/*
 * The run registry: a fixed array of slots, searched newest first (a GET
 * almost always asks for a run that just started).  Old finished runs make
 * room; running ones are never dropped, and there are at most as many of
 * them as sandbox workers.
 */
#include "runs/sg_runs.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sg_store.h"

struct slot {
	char id[40];
	char tenant[65];
	char *doc; /* NULL: free */
	bool finished;
	uint64_t seq; /* publish order of first publication */
};

enum read_state { READ_NEW, READ_QUEUED, READ_READING, READ_ANSWERED };

struct sg_runs_read {
	char id[40];
	char tenant[65];
	void *user;
	void (*done)(void *arg);
	void *done_arg;
	enum read_state state; /* under read_mu */
	int rc;                /* the answer, once READ_ANSWERED */
	char *doc;
	struct sg_runs_read *prev, *next; /* every read not yet finished, oldest first */
};

struct sg_runs {
	pthread_mutex_t mu; /* the slots */
	struct slot *slots;
	size_t cap;
	uint64_t seq;
	char *data_dir;
	/* The reader thread and its reads, under read_mu; the store is the thread's own. */
	pthread_mutex_t read_mu;
	pthread_cond_t read_cv;
	struct sg_runs_read *reads, *reads_tail;
	bool reader_running, reader_stopping;
	pthread_t reader;
	struct sg_store *store; /* opened by the reader on its first read */
	bool locks_made;
};

static void *reader_main(void *arg);

static int
start_reader(struct sg_runs *rs)
{
	if (rs->data_dir == NULL)
		return 0;
	if (pthread_create(&rs->reader, NULL, reader_main, rs) != 0)
		return -1;
	rs->reader_running = true;
	return 0;
}

struct sg_runs *
sg_runs_new(size_t cap, const char *data_dir)
{
	struct sg_runs *rs = calloc(1, sizeof(*rs));
	if (rs == NULL || (rs->slots = calloc(cap, sizeof(*rs->slots))) == NULL ||
	    (data_dir && (rs->data_dir = strdup(data_dir)) == NULL)) {
		sg_runs_free(rs);
		return NULL;
	}
	rs->cap = cap;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_mutex_init(&rs->read_mu, NULL);
	pthread_cond_init(&rs->read_cv, NULL);
	rs->locks_made = true;
	if (start_reader(rs) != 0) {
		sg_runs_free(rs);
		return NULL;
	}
	return rs;
}

void
sg_runs_free(struct sg_runs *rs)
{
	if (rs == NULL)
		return;
	if (rs->locks_made)
		sg_runs_stop_reader(rs);
	/* Reads never finished: their callers were abandoned at shutdown. */
	while (rs->reads != NULL) {
		struct sg_runs_read *rd = rs->reads;
		rs->reads = rd->next;
		free(rd->doc);
		free(rd);
	}
	for (size_t i = 0; rs->slots && i < rs->cap; i++)
		free(rs->slots[i].doc);
	free(rs->slots);
	free(rs->data_dir);
	sg_store_close(rs->store);
	if (rs->locks_made) {
		pthread_mutex_destroy(&rs->mu);
		pthread_mutex_destroy(&rs->read_mu);
		pthread_cond_destroy(&rs->read_cv);
	}
	free(rs);
}

/* With mu held: the run's slot, or NULL. */
static struct slot *
find(struct sg_runs *rs, const char *id)
{
	for (size_t i = 0; i < rs->cap; i++)
		if (rs->slots[i].doc != NULL && strcmp(rs->slots[i].id, id) == 0)
			return &rs->slots[i];
	return NULL;
}

/* With mu held: a free slot, else the oldest finished run's. */
static struct slot *
make_room(struct sg_runs *rs)
{
	struct slot *oldest = NULL;
	for (size_t i = 0; i < rs->cap; i++) {
		struct slot *s = &rs->slots[i];
		if (s->doc == NULL)
			return s;
		if (s->finished && (oldest == NULL || s->seq < oldest->seq))
			oldest = s;
	}
	if (oldest != NULL) {
		free(oldest->doc);
		oldest->doc = NULL;
	}
	return oldest;
}

int
sg_runs_publish(struct sg_runs *rs, const char *id, const char *tenant, char *doc, bool finished)
{
	pthread_mutex_lock(&rs->mu);
	struct slot *s = find(rs, id);
	if (s == NULL && (s = make_room(rs)) != NULL) {
		snprintf(s->id, sizeof(s->id), "%s", id);
		snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
		s->seq = ++rs->seq;
	}
	if (s == NULL) {
		pthread_mutex_unlock(&rs->mu);
		free(doc);
		return -1;
	}
	char *old = s->doc;
	s->doc = doc;
	s->finished = finished;
	pthread_mutex_unlock(&rs->mu);
	free(old);
	return 0;
}

int
sg_runs_lookup(struct sg_runs *rs, const char *id, const char *tenant, char **doc)
{
	int rc = 1;
	*doc = NULL;
	pthread_mutex_lock(&rs->mu);
	struct slot *s = find(rs, id);
	if (s != NULL)
		rc = strcmp(s->tenant, tenant) == 0 && (*doc = strdup(s->doc)) != NULL ? 0 : -1;
	pthread_mutex_unlock(&rs->mu);
	return rc;
}

char *
sg_runs_get(struct sg_runs *rs, const char *id, const char *tenant)
{
	char *doc;
	return sg_runs_lookup(rs, id, tenant, &doc) == 0 ? doc : NULL;
}

/* ---- reads from the store, on the reader thread ---- */

/* With read_mu held. */
static void
unlink_read(struct sg_runs *rs, struct sg_runs_read *rd)
{
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		rs->reads = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	else
		rs->reads_tail = rd->prev;
	rd->prev = rd->next = NULL;
}

/* With read_mu held: the oldest read waiting, or NULL.  Reads are rare; a scan is enough. */
static struct sg_runs_read *
next_queued(struct sg_runs *rs)
{
	for (struct sg_runs_read *rd = rs->reads; rd != NULL; rd = rd->next)
		if (rd->state == READ_QUEUED)
			return rd;
	return NULL;
}

/* On the reader thread, without any lock: its connection is its own. */
static int
read_store(struct sg_runs *rs, const struct sg_runs_read *rd, char **doc)
{
	char err[256];
	if (rs->store == NULL &&
	    (rs->store = sg_store_open(rs->data_dir, err, sizeof(err))) == NULL)
		return -1;
	return sg_store_get_run(rs->store, rd->id, rd->tenant, doc);
}

static void *
reader_main(void *arg)
{
	struct sg_runs *rs = arg;
	pthread_mutex_lock(&rs->read_mu);
	while (!rs->reader_stopping) {
		struct sg_runs_read *rd = next_queued(rs);
		if (rd == NULL) {
			pthread_cond_wait(&rs->read_cv, &rs->read_mu);
			continue;
		}
		/* READING: nobody frees it until `done` has been called. */
		rd->state = READ_READING;
		pthread_mutex_unlock(&rs->read_mu);
		char *doc = NULL;
		int rc = read_store(rs, rd, &doc);
		pthread_mutex_lock(&rs->read_mu);
		rd->rc = rc;
		rd->doc = doc;
		rd->state = READ_ANSWERED;
		void (*done)(void *) = rd->done;
		void *done_arg = rd->done_arg;
		/* From here the caller may finish `rd` at any moment: only the copies are used. */
		pthread_mutex_unlock(&rs->read_mu);
		done(done_arg);
		pthread_mutex_lock(&rs->read_mu);
	}
	pthread_mutex_unlock(&rs->read_mu);
	return NULL;
}

struct sg_runs_read *
sg_runs_read_new(struct sg_runs *rs, const char *id, const char *tenant, void *user)
{
	struct sg_runs_read *rd;
	if (rs->data_dir == NULL || (rd = calloc(1, sizeof(*rd))) == NULL)
		return NULL;
	snprintf(rd->id, sizeof(rd->id), "%s", id);
	snprintf(rd->tenant, sizeof(rd->tenant), "%s", tenant);
	rd->user = user;
	rd->rc = -1;
	pthread_mutex_lock(&rs->read_mu);
	rd->prev = rs->reads_tail;
	if (rs->reads_tail)
		rs->reads_tail->next = rd;
	else
		rs->reads = rd;
	rs->reads_tail = rd;
	pthread_mutex_unlock(&rs->read_mu);
	return rd;
}

void
sg_runs_read_submit(struct sg_runs *rs, struct sg_runs_read *rd, void (*done)(void *arg),
                    void *done_arg)
{
	pthread_mutex_lock(&rs->read_mu);
	rd->done = done;
	rd->done_arg = done_arg;
	rd->state = READ_QUEUED;
	pthread_cond_signal(&rs->read_cv);
	pthread_mutex_unlock(&rs->read_mu);
}

void *
sg_runs_read_user(const struct sg_runs_read *rd)
{
	return rd->user;
}

int
sg_runs_read_finish(struct sg_runs *rs, struct sg_runs_read *rd, char **doc)
{
	pthread_mutex_lock(&rs->read_mu);
	unlink_read(rs, rd);
	int rc = rd->state == READ_ANSWERED ? rd->rc : -1;
	pthread_mutex_unlock(&rs->read_mu);
	if (rc == 0 && doc != NULL)
		*doc = rd->doc;
	else
		free(rd->doc);
	free(rd);
	return rc;
}

void
sg_runs_stop_reader(struct sg_runs *rs)
{
	pthread_mutex_lock(&rs->read_mu);
	bool running = rs->reader_running;
	rs->reader_stopping = true;
	rs->reader_running = false;
	pthread_cond_broadcast(&rs->read_cv);
	pthread_mutex_unlock(&rs->read_mu);
	if (running)
		pthread_join(rs->reader, NULL);
}

size_t
sg_runs_running(struct sg_runs *rs)
{
	size_t n = 0;
	pthread_mutex_lock(&rs->mu);
	for (size_t i = 0; i < rs->cap; i++)
		n += rs->slots[i].doc != NULL && !rs->slots[i].finished;
	pthread_mutex_unlock(&rs->mu);
	return n;
}
