/*
 * Rows live in one array in arrival order; an open-addressing index of row
 * numbers finds them.  Both grow by doubling up to the bound, so an idle
 * gateway holds a few KiB and a busy one no more than it needs.
 */
#include "store/sg_spend_tally.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_ROWS 64
#define EMPTY UINT32_MAX

struct sg_spend_tally {
	struct sg_spend_row *rows;
	size_t n, cap, max;
	uint32_t *index; /* 2 * cap slots, so a probe run stays short */
};

struct sg_spend_tally *
sg_spend_tally_new(size_t max_rows)
{
	struct sg_spend_tally *t = calloc(1, sizeof(*t));
	if (t != NULL)
		t->max = max_rows < UINT32_MAX / 2 ? max_rows : UINT32_MAX / 2;
	return t;
}

void
sg_spend_tally_free(struct sg_spend_tally *t)
{
	if (t == NULL)
		return;
	free(t->rows);
	free(t->index);
	free(t);
}

/* FNV-1a over the names and the day; tenants and users are not chosen to collide here. */
static uint64_t
hash_key(const char *tenant, const char *user, const char *mode, int64_t day)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)day;
	const char *parts[] = {tenant, user, mode};
	for (size_t i = 0; i < 3; i++)
		for (const unsigned char *p = (const unsigned char *)parts[i];; p++) {
			h = (h ^ *p) * 0x100000001b3ull;
			if (*p == '\0')
				break;
		}
	return h;
}

static size_t
slot_of(const struct sg_spend_tally *t, const struct sg_spend_row *r)
{
	size_t mask = 2 * t->cap - 1;
	size_t i = hash_key(r->tenant, r->user, r->mode, r->day) & mask;
	while (t->index[i] != EMPTY) {
		const struct sg_spend_row *o = &t->rows[t->index[i]];
		if (o->day == r->day && strcmp(o->tenant, r->tenant) == 0 &&
		    strcmp(o->user, r->user) == 0 && strcmp(o->mode, r->mode) == 0)
			break;
		i = (i + 1) & mask;
	}
	return i;
}

static void
reindex(struct sg_spend_tally *t)
{
	memset(t->index, 0xff, 2 * t->cap * sizeof(*t->index));
	for (size_t r = 0; r < t->n; r++)
		t->index[slot_of(t, &t->rows[r])] = (uint32_t)r;
}

static int
grow(struct sg_spend_tally *t)
{
	size_t cap = t->cap ? t->cap * 2 : FIRST_ROWS;
	if (t->cap >= t->max)
		return -1;
	struct sg_spend_row *rows = realloc(t->rows, cap * sizeof(*rows));
	if (rows == NULL)
		return -1;
	t->rows = rows;
	uint32_t *index = realloc(t->index, 2 * cap * sizeof(*index));
	if (index == NULL)
		return -1; /* the old index still fits the old capacity */
	t->index = index;
	t->cap = cap;
	reindex(t);
	return 0;
}

/* Copies a possibly unterminated field of a decision. */
static void
copy_name(char *dst, size_t n, const char *src, size_t src_n)
{
	size_t len = strnlen(src, src_n < n - 1 ? src_n : n - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int
sg_spend_tally_add(struct sg_spend_tally *t, const struct sg_decision *d)
{
	if (!sg_decision_spends(d))
		return 0;
	struct sg_spend_row key = {.day = d->ts_us / 86400000000LL};
	copy_name(key.tenant, sizeof(key.tenant), d->tenant, sizeof(d->tenant));
	copy_name(key.user, sizeof(key.user), d->user, sizeof(d->user));
	copy_name(key.mode, sizeof(key.mode), d->mode, sizeof(d->mode));
	size_t i = t->cap > 0 ? slot_of(t, &key) : 0;
	if (t->cap == 0 || t->index[i] == EMPTY) {
		if (t->n == t->cap) {
			if (grow(t) != 0)
				return -1; /* a new caller, and no room: the writer counts from the
				              record */
			i = slot_of(t, &key);
		}
		t->rows[t->n] = key;
		t->index[i] = (uint32_t)t->n++;
	}
	t->rows[t->index[i]].micros += sg_decision_micros(d);
	return 0;
}

const struct sg_spend_row *
sg_spend_tally_rows(const struct sg_spend_tally *t, size_t *n)
{
	*n = t->n;
	return t->rows;
}

void
sg_spend_tally_clear(struct sg_spend_tally *t)
{
	t->n = 0;
	if (t->index != NULL)
		memset(t->index, 0xff, 2 * t->cap * sizeof(*t->index));
}
