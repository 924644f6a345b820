/*
 * sg_breaker: per-host circuit breakers and pauses.  The registry is an
 * open-addressed table that only grows, so a lookup takes no lock: a slot,
 * once published, never changes.  Each breaker has its own mutex; it is
 * held for a few arithmetic steps per call.
 */
#include "upstream/sg_breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS (SG_BREAKER_MAX_HOSTS * 2)
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull

struct bucket {
	uint64_t sec; /* which second this bucket counts; older is stale */
	uint32_t calls;
	uint32_t failures;
};

struct sg_breaker {
	pthread_mutex_t mu;
	uint64_t hash;
	char *host;
	struct sg_breaker_config cfg;
	enum sg_breaker_state state;
	uint64_t open_until_ns; /* while open: when half-open begins */
	uint32_t open_ms;       /* the current open period; doubles on a failed probe */
	uint32_t probes_out;    /* half-open: admitted probes not yet recorded */
	uint64_t paused_until_ns;
	uint64_t opened_total;
	struct bucket win[SG_BREAKER_WINDOW_BUCKETS];
	struct sg_retry_budget budget;
};

struct sg_breakers {
	pthread_mutex_t mu; /* insertions only */
	_Atomic size_t n;
	_Atomic(struct sg_breaker *) slot[SLOTS];
};

void
sg_breaker_config_default(struct sg_breaker_config *cfg)
{
	*cfg = (struct sg_breaker_config){.window_s = 10,
	                                  .min_calls = 20,
	                                  .failure_pct = 50,
	                                  .open_ms = 5000,
	                                  .max_open_ms = 60000,
	                                  .probes = 1};
}

const char *
sg_breaker_state_name(enum sg_breaker_state s)
{
	switch (s) {
	case SG_BREAKER_OPEN:
		return "open";
	case SG_BREAKER_HALF_OPEN:
		return "half_open";
	default:
		return "closed";
	}
}

struct sg_breakers *
sg_breakers_new(void)
{
	struct sg_breakers *bs = calloc(1, sizeof(*bs));
	if (bs != NULL)
		pthread_mutex_init(&bs->mu, NULL);
	return bs;
}

void
sg_breakers_free(struct sg_breakers *bs)
{
	if (bs == NULL)
		return;
	for (size_t i = 0; i < SLOTS; i++) {
		struct sg_breaker *b = atomic_load(&bs->slot[i]);
		if (b == NULL)
			continue;
		pthread_mutex_destroy(&b->mu);
		sg_retry_budget_destroy(&b->budget);
		free(b->host);
		free(b);
	}
	pthread_mutex_destroy(&bs->mu);
	free(bs);
}

/* FNV-1a: the keys are host names from the catalog, not attacker input. */
static uint64_t
host_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct sg_breaker *
find(struct sg_breakers *bs, const char *host, uint64_t h, size_t *free_slot)
{
	for (size_t i = 0; i < SLOTS; i++) {
		size_t at = (h + i) % SLOTS;
		struct sg_breaker *b = atomic_load_explicit(&bs->slot[at], memory_order_acquire);
		if (b == NULL) {
			*free_slot = at;
			return NULL;
		}
		if (b->hash == h && strcmp(b->host, host) == 0)
			return b;
	}
	*free_slot = SLOTS;
	return NULL;
}

static struct sg_breaker *
insert(struct sg_breakers *bs, const char *host, uint64_t h, const struct sg_breaker_config *cfg)
{
	pthread_mutex_lock(&bs->mu);
	size_t at;
	struct sg_breaker *b = find(bs, host, h, &at);
	if (b == NULL && at < SLOTS && bs->n < SG_BREAKER_MAX_HOSTS &&
	    (b = calloc(1, sizeof(*b))) != NULL) {
		b->host = strdup(host);
		if (b->host == NULL) {
			free(b);
			b = NULL;
		} else {
			pthread_mutex_init(&b->mu, NULL);
			sg_retry_budget_init(&b->budget);
			b->hash = h;
			b->cfg = *cfg;
			b->open_ms = cfg->open_ms;
			bs->n++;
			atomic_store_explicit(&bs->slot[at], b, memory_order_release);
		}
	}
	pthread_mutex_unlock(&bs->mu);
	return b;
}

struct sg_breaker *
sg_breaker_of(struct sg_breakers *bs, const char *host, const struct sg_breaker_config *cfg)
{
	uint64_t h = host_hash(host);
	size_t at;
	struct sg_breaker *b = find(bs, host, h, &at);
	if (b == NULL)
		return insert(bs, host, h, cfg);
	pthread_mutex_lock(&b->mu);
	b->cfg = *cfg;
	pthread_mutex_unlock(&b->mu);
	return b;
}

/* ---- the window ---- */

static void
window_clear(struct sg_breaker *b)
{
	memset(b->win, 0, sizeof(b->win));
}

static void
window_add(struct sg_breaker *b, uint64_t now_ns, bool failed)
{
	uint64_t sec = now_ns / NS_PER_S + 1; /* + 1: a zeroed bucket is never current */
	struct bucket *k = &b->win[sec % SG_BREAKER_WINDOW_BUCKETS];
	if (k->sec != sec)
		*k = (struct bucket){.sec = sec};
	k->calls++;
	k->failures += failed;
}

static bool
window_tripped(const struct sg_breaker *b, uint64_t now_ns)
{
	uint64_t sec = now_ns / NS_PER_S + 1, calls = 0, failures = 0;
	for (size_t i = 0; i < SG_BREAKER_WINDOW_BUCKETS; i++) {
		const struct bucket *k = &b->win[i];
		if (k->sec != 0 && k->sec + b->cfg.window_s > sec) {
			calls += k->calls;
			failures += k->failures;
		}
	}
	return calls >= b->cfg.min_calls && calls > 0 &&
	       failures * 100 >= (uint64_t)b->cfg.failure_pct * calls;
}

/* ---- states ---- */

static void
open_now(struct sg_breaker *b, uint64_t now_ns)
{
	b->state = SG_BREAKER_OPEN;
	b->open_until_ns = now_ns + (uint64_t)b->open_ms * NS_PER_MS;
	b->probes_out = 0;
	b->opened_total++;
}

/* An open breaker whose time is up becomes half-open when next looked at. */
static void
advance(struct sg_breaker *b, uint64_t now_ns)
{
	if (b->state == SG_BREAKER_OPEN && now_ns >= b->open_until_ns) {
		b->state = SG_BREAKER_HALF_OPEN;
		b->probes_out = 0;
	}
}

enum sg_breaker_refusal
sg_breaker_admit(struct sg_breaker *b, uint64_t now_ns, bool *probe, uint64_t *retry_after_ns)
{
	enum sg_breaker_refusal rc = SG_BREAKER_ADMITTED;
	*probe = false;
	*retry_after_ns = 0;
	pthread_mutex_lock(&b->mu);
	advance(b, now_ns);
	if (now_ns < b->paused_until_ns) {
		rc = SG_BREAKER_IS_PAUSED;
		*retry_after_ns = b->paused_until_ns - now_ns;
	} else if (b->state == SG_BREAKER_OPEN) {
		rc = SG_BREAKER_IS_OPEN;
		*retry_after_ns = b->open_until_ns - now_ns;
	} else if (b->state == SG_BREAKER_HALF_OPEN) {
		if (b->probes_out < b->cfg.probes) {
			b->probes_out++;
			*probe = true;
		} else {
			/* The probes decide soon; come back after about one of them. */
			rc = SG_BREAKER_IS_OPEN;
			*retry_after_ns = NS_PER_S;
		}
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void
sg_breaker_record(struct sg_breaker *b, uint64_t now_ns, bool failed, bool probe)
{
	pthread_mutex_lock(&b->mu);
	advance(b, now_ns);
	if (probe && b->state == SG_BREAKER_HALF_OPEN) {
		b->probes_out -= b->probes_out > 0;
		if (failed) {
			uint32_t next = b->open_ms * 2;
			b->open_ms = next > b->cfg.max_open_ms ? b->cfg.max_open_ms : next;
			open_now(b, now_ns);
		} else if (b->probes_out == 0) {
			b->state = SG_BREAKER_CLOSED;
			b->open_ms = b->cfg.open_ms;
			window_clear(b);
		}
	} else if (b->state == SG_BREAKER_CLOSED) {
		/* Calls that ended after the breaker opened say nothing new. */
		window_add(b, now_ns, failed);
		if (failed && window_tripped(b, now_ns))
			open_now(b, now_ns);
	}
	pthread_mutex_unlock(&b->mu);
}

void
sg_breaker_forget_probe(struct sg_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	b->probes_out -= b->probes_out > 0;
	pthread_mutex_unlock(&b->mu);
}

struct sg_retry_budget *
sg_breaker_budget(struct sg_breaker *b)
{
	return &b->budget;
}

void
sg_breaker_pause(struct sg_breaker *b, uint64_t until_ns)
{
	pthread_mutex_lock(&b->mu);
	if (until_ns > b->paused_until_ns)
		b->paused_until_ns = until_ns;
	pthread_mutex_unlock(&b->mu);
}

enum sg_breaker_state
sg_breaker_state(struct sg_breaker *b, uint64_t now_ns)
{
	pthread_mutex_lock(&b->mu);
	advance(b, now_ns);
	enum sg_breaker_state s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}

void
sg_breakers_each(struct sg_breakers *bs, uint64_t now_ns, sg_breaker_visit_fn fn, void *arg)
{
	for (size_t i = 0; i < SLOTS; i++) {
		struct sg_breaker *b = atomic_load_explicit(&bs->slot[i], memory_order_acquire);
		if (b == NULL)
			continue;
		pthread_mutex_lock(&b->mu);
		advance(b, now_ns);
		enum sg_breaker_state s = b->state;
		uint64_t opened = b->opened_total;
		bool paused = now_ns < b->paused_until_ns;
		pthread_mutex_unlock(&b->mu);
		if (fn(arg, b->host, s, opened, paused) != 0)
			return;
	}
}

/* ---- metrics ---- */

static const char *const families[][2] = {
    {"sandgate_upstream_breaker_state", "gauge"},
    {"sandgate_upstream_breaker_opened_total", "counter"},
    {"sandgate_upstream_paused", "gauge"},
};

struct render {
	FILE *f;
	int family;
};

static int
render_one(void *arg, const char *host, enum sg_breaker_state s, uint64_t opened, bool paused)
{
	struct render *rd = arg;
	uint64_t v = rd->family == 0   ? (s == SG_BREAKER_OPEN ? 2 : s == SG_BREAKER_HALF_OPEN)
	             : rd->family == 1 ? opened
	                               : paused;
	fprintf(rd->f, "%s{host=\"", families[rd->family][0]);
	for (const char *p = host; *p; p++) { /* the exposition format's label escapes */
		if (*p == '\\' || *p == '"')
			fputc('\\', rd->f);
		fputc(*p == '\n' ? ' ' : *p, rd->f);
	}
	fprintf(rd->f, "\"} %llu\n", (unsigned long long)v);
	return 0;
}

void
sg_breakers_render(struct sg_breakers *bs, uint64_t now_ns, FILE *f)
{
	if (bs == NULL || bs->n == 0)
		return;
	for (int i = 0; i < 3; i++) {
		struct render rd = {f, i};
		fprintf(f, "# TYPE %s %s\n", families[i][0], families[i][1]);
		sg_breakers_each(bs, now_ns, render_one, &rd);
	}
}
