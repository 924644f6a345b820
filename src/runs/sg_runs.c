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

struct sg_runs {
	pthread_mutex_t mu;
	struct slot *slots;
	size_t cap;
	uint64_t seq;
	char *data_dir;
	pthread_mutex_t store_mu; /* the store is read outside mu: a slow read blocks no publish */
	struct sg_store *store;   /* opened on the first read of an old run */
};

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
	pthread_mutex_init(&rs->store_mu, NULL);
	return rs;
}

void
sg_runs_free(struct sg_runs *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; rs->slots && i < rs->cap; i++)
		free(rs->slots[i].doc);
	free(rs->slots);
	free(rs->data_dir);
	sg_store_close(rs->store);
	if (rs->cap) {
		pthread_mutex_destroy(&rs->mu);
		pthread_mutex_destroy(&rs->store_mu);
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

static char *
from_store(struct sg_runs *rs, const char *id, const char *tenant)
{
	char err[256], *doc = NULL;
	if (rs->data_dir == NULL)
		return NULL;
	if (rs->store == NULL &&
	    (rs->store = sg_store_open(rs->data_dir, err, sizeof(err))) == NULL)
		return NULL;
	return sg_store_get_run(rs->store, id, tenant, &doc) == 0 ? doc : NULL;
}

char *
sg_runs_get(struct sg_runs *rs, const char *id, const char *tenant)
{
	char *out = NULL;
	pthread_mutex_lock(&rs->mu);
	struct slot *s = find(rs, id);
	if (s != NULL && strcmp(s->tenant, tenant) == 0)
		out = strdup(s->doc);
	else if (s == NULL)
		out = from_store(rs, id,
		                 tenant); /* rare: the lock keeps one reader on the connection */
	pthread_mutex_unlock(&rs->mu);
	return out;
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
