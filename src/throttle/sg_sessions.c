/*
 * The session registry: a chained hash table under one mutex.  Lookups
 * happen once per call made with a session token and hold the lock only to
 * find the entry and take a reference.
 */
#include "throttle/sg_sessions.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct sg_sessions {
	pthread_mutex_t lock;
	struct sg_session *bucket[BUCKETS]; /* by session id */
	struct sg_session *of_key[BUCKETS]; /* by the key that started it, for the cap */
};

static size_t
bucket_of(const char *id)
{
	size_t h = 5381;
	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h % BUCKETS;
}

struct sg_sessions *
sg_sessions_new(void)
{
	struct sg_sessions *s = calloc(1, sizeof(*s));
	if (s != NULL)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}

static void
destroy(struct sg_session *ss)
{
	pthread_mutex_destroy(&ss->trace_lock);
	free(ss);
}

void
sg_session_unref(struct sg_session *ss)
{
	if (ss != NULL && atomic_fetch_sub(&ss->refs, 1) == 1)
		destroy(ss);
}

void
sg_sessions_free(struct sg_sessions *s)
{
	if (s == NULL)
		return;
	for (size_t b = 0; b < BUCKETS; b++)
		while (s->bucket[b]) {
			struct sg_session *ss = s->bucket[b];
			s->bucket[b] = ss->next;
			sg_session_unref(ss);
		}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* With the lock held: the key's sessions alive at `now`. */
static struct sg_sessions_live
count_live(struct sg_sessions *s, const char *key_id, int64_t now)
{
	struct sg_sessions_live live = {0, 0};
	for (struct sg_session *ss = s->of_key[bucket_of(key_id)]; ss; ss = ss->next_of_key) {
		int64_t end = atomic_load(&ss->expires_at);
		if (end <= now || strcmp(ss->key_id, key_id) != 0)
			continue;
		if (live.n++ == 0 || end < live.soonest_end)
			live.soonest_end = end;
	}
	return live;
}

struct sg_session *
sg_sessions_start(struct sg_sessions *s, const uint8_t *server_secret,
                  const struct sg_session *proto, size_t max_live, int64_t now, char *token,
                  size_t len, struct sg_sessions_live *live)
{
	*live = (struct sg_sessions_live){0, 0};
	struct sg_session *ss = malloc(sizeof(*ss));
	if (ss == NULL)
		return NULL;
	memcpy(ss, proto, sizeof(*ss));
	atomic_init(&ss->refs, 2); /* the registry's and the caller's */
	atomic_init(&ss->expires_at, atomic_load(&proto->expires_at));
	atomic_init(&ss->tat, 0);
	atomic_init(&ss->calls, 0);
	atomic_init(&ss->refused, 0);
	atomic_init(&ss->spent_micros, 0);
	ss->n_traces = 0;
	pthread_mutex_init(&ss->trace_lock, NULL);
	/* The rule's name points into the session, which outlives every use of it. */
	memset(&ss->rule, 0, sizeof(ss->rule));
	ss->rule.name = ss->rule_name;
	memcpy(ss->rule_name, "session", sizeof("session"));
	ss->rule.who = SG_WHO_KEY;
	ss->rule.what = SG_WHAT_ALL;
	ss->rule.windows[0] = ss->window;
	ss->rule.n_windows = ss->window.gcra.emission_ns != 0;
	if (sg_token_generate(SG_SESSION_PREFIX, token, len, ss->id) != 0) {
		destroy(ss);
		return NULL;
	}
	sg_key_hash(server_secret, token, strlen(token), ss->hash);
	pthread_mutex_lock(&s->lock);
	*live = count_live(s, ss->key_id, now);
	if (max_live != 0 && live->n >= max_live) {
		pthread_mutex_unlock(&s->lock);
		sodium_memzero(token, len);
		destroy(ss);
		return NULL;
	}
	size_t b = bucket_of(ss->id), k = bucket_of(ss->key_id);
	ss->next = s->bucket[b];
	s->bucket[b] = ss;
	ss->next_of_key = s->of_key[k];
	s->of_key[k] = ss;
	if (live->n++ == 0 || ss->expires_at < live->soonest_end)
		live->soonest_end = ss->expires_at;
	pthread_mutex_unlock(&s->lock);
	return ss;
}

void
sg_session_end(struct sg_session *ss, int64_t now)
{
	int64_t end = atomic_load(&ss->expires_at);
	while (end > now && !atomic_compare_exchange_weak(&ss->expires_at, &end, now))
		;
}

struct sg_session *
sg_sessions_get(struct sg_sessions *s, const char *id)
{
	struct sg_session *found = NULL;
	pthread_mutex_lock(&s->lock);
	for (struct sg_session *ss = s->bucket[bucket_of(id)]; ss; ss = ss->next)
		if (strcmp(ss->id, id) == 0) {
			atomic_fetch_add(&ss->refs, 1);
			found = ss;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return found;
}

void
sg_session_note_trace(struct sg_session *ss, const char *trace_id)
{
	pthread_mutex_lock(&ss->trace_lock);
	memcpy(ss->traces[ss->n_traces % SG_SESSION_TRACES], trace_id, 33);
	ss->traces[ss->n_traces % SG_SESSION_TRACES][32] = '\0';
	ss->n_traces++;
	pthread_mutex_unlock(&ss->trace_lock);
}

/* With the lock held: takes `ss` out of its key's chain. */
static void
unlink_of_key(struct sg_sessions *s, struct sg_session *ss)
{
	struct sg_session **pp = &s->of_key[bucket_of(ss->key_id)];
	while (*pp != NULL && *pp != ss)
		pp = &(*pp)->next_of_key;
	if (*pp == ss) /* defensive: every registered session is on its key's chain */
		*pp = ss->next_of_key;
}

size_t
sg_sessions_purge(struct sg_sessions *s, int64_t now, int64_t grace_s)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		struct sg_session **pp = &s->bucket[b];
		while (*pp) {
			struct sg_session *ss = *pp;
			if (ss->expires_at + grace_s > now) {
				pp = &ss->next;
				continue;
			}
			*pp = ss->next;
			unlink_of_key(s, ss);
			sg_session_unref(ss);
			n++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
