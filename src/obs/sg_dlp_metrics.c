#include "obs/sg_dlp_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

struct series {
	_Atomic uint64_t hash; /* 0: free; published after the labels are written */
	char data_class[64];
	char action[16];
	char direction[16];
	char connector[64];
	_Atomic uint64_t count;
};

/* Twice the cap, so probes stay short while the cap is what bounds the labels. */
static struct series table[SG_DLP_METRICS_MAX * 2];
static struct series overflow = {
    .data_class = "other", .action = "other", .direction = "other", .connector = "other"};
static _Atomic size_t n_series;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

#define TABLE_CAP (sizeof(table) / sizeof(table[0]))

static uint64_t
mix(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull; /* a separator: ("ab","c") differs from ("a","bc") */
}

static bool
same(const struct series *s, const char *c, const char *a, const char *d, const char *k)
{
	return strcmp(s->data_class, c) == 0 && strcmp(s->action, a) == 0 &&
	       strcmp(s->direction, d) == 0 && strcmp(s->connector, k) == 0;
}

/*
 * A label as it is kept: anything that would need escaping (or is not
 * printable) becomes '_'.  False when it does not fit.
 */
static bool
label(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	for (src = src ? src : ""; *src; src++) {
		if (i + 1 >= n)
			return false;
		unsigned char ch = (unsigned char)*src;
		dst[i++] = (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) ? '_' : (char)ch;
	}
	dst[i] = '\0';
	return true;
}

struct labels {
	char c[64], a[16], d[16], k[64];
};

static bool
labels_make(struct labels *l, const char *c, const char *a, const char *d, const char *k)
{
	return label(l->c, sizeof(l->c), c) && label(l->a, sizeof(l->a), a) &&
	       label(l->d, sizeof(l->d), d) && label(l->k, sizeof(l->k), k);
}

/* The series for these labels, made on first use; NULL when the table is full. */
static struct series *
find(const char *c, const char *a, const char *d, const char *k, bool make)
{
	uint64_t h = mix(mix(mix(mix(0xcbf29ce484222325ull, c), a), d), k);
	h = h ? h : 1;
	for (size_t i = 0, at = h % TABLE_CAP; i < TABLE_CAP; i++, at = (at + 1) % TABLE_CAP) {
		struct series *s = &table[at];
		uint64_t seen = atomic_load_explicit(&s->hash, memory_order_acquire);
		if (seen == h && same(s, c, a, d, k))
			return s;
		if (seen != 0)
			continue;
		if (!make)
			return NULL;
		pthread_mutex_lock(&table_lock);
		if (atomic_load_explicit(&s->hash, memory_order_relaxed) == 0 &&
		    atomic_load(&n_series) < SG_DLP_METRICS_MAX) {
			memcpy(s->data_class, c, strlen(c) + 1);
			memcpy(s->action, a, strlen(a) + 1);
			memcpy(s->direction, d, strlen(d) + 1);
			memcpy(s->connector, k, strlen(k) + 1);
			atomic_fetch_add(&n_series, 1);
			atomic_store_explicit(&s->hash, h, memory_order_release);
		}
		pthread_mutex_unlock(&table_lock);
		seen = atomic_load_explicit(&s->hash, memory_order_acquire);
		if (seen == 0)
			return NULL; /* the cap is reached */
		if (seen == h && same(s, c, a, d, k))
			return s;
		/* Another thread took the slot for other labels: probe on. */
	}
	return NULL;
}

void
sg_dlp_metrics_count(const char *data_class, const char *action, const char *direction,
                     const char *connector)
{
	struct labels l;
	struct series *s = labels_make(&l, data_class, action, direction, connector)
	                       ? find(l.c, l.a, l.d, l.k, true)
	                       : NULL;
	atomic_fetch_add_explicit(s ? &s->count : &overflow.count, 1, memory_order_relaxed);
}

uint64_t
sg_dlp_metrics_get(const char *data_class, const char *action, const char *direction,
                   const char *connector)
{
	struct labels l;
	if (!labels_make(&l, data_class, action, direction, connector))
		return 0;
	if (same(&overflow, l.c, l.a, l.d, l.k))
		return atomic_load_explicit(&overflow.count, memory_order_relaxed);
	struct series *s = find(l.c, l.a, l.d, l.k, false);
	return s ? atomic_load_explicit(&s->count, memory_order_relaxed) : 0;
}

void
sg_dlp_metrics_render(FILE *f)
{
	fputs("# HELP sandgate_dlp_events_total Findings of the data screen that were not simply "
	      "allowed, by data class, action, direction and connector.\n"
	      "# TYPE sandgate_dlp_events_total counter\n",
	      f);
	for (size_t i = 0; i <= TABLE_CAP; i++) {
		struct series *s = i < TABLE_CAP ? &table[i] : &overflow;
		if (i < TABLE_CAP && atomic_load_explicit(&s->hash, memory_order_acquire) == 0)
			continue;
		uint64_t v = atomic_load_explicit(&s->count, memory_order_relaxed);
		if (i == TABLE_CAP && v == 0)
			continue;
		fprintf(f,
		        "sandgate_dlp_events_total{class=\"%s\",action=\"%s\",direction=\"%s\","
		        "connector=\"%s\"} %llu\n",
		        s->data_class, s->action, s->direction, s->connector,
		        (unsigned long long)v);
	}
}
