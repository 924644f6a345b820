/*
 * sg_sessions: time-bound exploration sessions.  A caller with an API key
 * starts one (POST /v1/sessions) and gets a token "sgs_<id>_<secret>";
 * calls made with the token act as the key's principal, are grouped under
 * the session (calls, cost, traces) and are held to the session's own
 * limits: a rate window, a call count and a budget, each optional and each
 * only ever stricter than the role's limits.
 *
 * Sessions live in memory, in one registry per gateway process; a restart
 * ends them (their calls stay in the audit record, tagged with the session
 * id).  The registry holds a reference to each session and every request
 * using one holds another, so an expired session is only freed when the
 * last call that used it has finished.
 */
#ifndef SG_SESSIONS_H
#define SG_SESSIONS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/sg_keys.h"
#include "policy/sg_limit.h"
#include "policy/sg_rules.h"

#define SG_SESSION_TRACES 32
#define SG_SESSION_MAX_TTL_S (24 * 3600)

struct sg_session {
	_Atomic int refs;
	char id[SG_KEY_ID_LEN + 1];
	uint8_t hash[SG_KEY_HASH_LEN];
	char key_id[SG_KEY_ID_LEN + 1]; /* the key that started it; its principal is used */
	int64_t created_at;             /* unix seconds */
	_Atomic int64_t expires_at; /* unix seconds; brought forward when the session is ended */
	/* Limits; zero means none.  The window is reported like any limit rule. */
	struct sg_rule rule; /* name "session", one window when window.gcra is set */
	char rule_name[8];
	struct sg_limit window;
	uint64_t max_calls;
	int64_t budget_micros;
	/* Standing. */
	_Atomic uint64_t tat;   /* the window's GCRA cell */
	_Atomic uint64_t calls; /* admitted or in progress */
	_Atomic uint64_t refused;
	_Atomic int64_t spent_micros; /* catalog cost of its calls, sandbox included */
	pthread_mutex_t trace_lock;
	char traces[SG_SESSION_TRACES][33]; /* the most recent calls' trace ids */
	uint32_t n_traces;
	struct sg_session *next;        /* registry chain, by id */
	struct sg_session *next_of_key; /* registry chain, by the key that started it */
};

struct sg_sessions;

struct sg_sessions *sg_sessions_new(void);
void sg_sessions_free(struct sg_sessions *s);

/* A key's sessions alive at `now`, as sg_sessions_start counted them. */
struct sg_sessions_live {
	size_t n;
	int64_t soonest_end; /* when the first of them expires; 0 when n is 0 */
};

/*
 * Adds `proto` (limits, key id, times filled by the caller) as a new
 * session with a fresh token written to `token` (SG_KEY_MAX_LEN + 1),
 * unless proto->key_id already has `max_live` sessions alive at `now`
 * (0: no cap).  Counting and adding happen under one lock, so racing
 * starts cannot pass the cap together.  Returns the session with a
 * reference for the caller and *live counting it; or NULL, with
 * live->n >= max_live when the cap refused (else out of memory or
 * randomness).
 */
struct sg_session *sg_sessions_start(struct sg_sessions *s, const uint8_t *server_secret,
                                     const struct sg_session *proto, size_t max_live, int64_t now,
                                     char *token, size_t len, struct sg_sessions_live *live);

/*
 * Ends a session at `now`: its token is refused from then on (as expired)
 * and it stops counting against its key's cap.  Ending twice keeps the
 * first end.
 */
void sg_session_end(struct sg_session *ss, int64_t now);

/* A new reference to session `id`, or NULL. */
struct sg_session *sg_sessions_get(struct sg_sessions *s, const char *id);
void sg_session_unref(struct sg_session *ss);

/* Remembers the trace id of a call made in the session. */
void sg_session_note_trace(struct sg_session *ss, const char *trace_id);

/* Drops sessions that expired more than `grace_s` ago; returns how many. */
size_t sg_sessions_purge(struct sg_sessions *s, int64_t now, int64_t grace_s);

#endif
