/*
 * Spend counters are cells of their own sg_ratetable.  A counter is a
 * 64-bit sum of micro-units, added to with fetch_add, so holds from many
 * threads never lose an update.  A hold that pushes a counter past its
 * limit takes its amount back at once, and the call is refused; two calls
 * racing for the last of a budget may thus both be refused, never both
 * admitted beyond it.
 *
 * Cells whose counter is 0 may be reused for other keys (the table's "now"
 * is 0).  Counters of past periods are never read again but are not
 * reclaimed either: each tenant and user leaves four cells per month, so
 * a table of SPEND_CELLS outlasts years of a few thousand active users.
 */
#include "throttle/sg_spend.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "throttle/sg_ratetable.h"

#define SPEND_CELLS (1u << 18)

struct sg_spend {
	struct sg_ratetable *cells;
};

struct sg_spend *
sg_spend_new(void)
{
	struct sg_spend *sp = calloc(1, sizeof(*sp));
	if (sp == NULL || (sp->cells = sg_ratetable_new(SPEND_CELLS)) == NULL) {
		free(sp);
		return NULL;
	}
	return sp;
}

void
sg_spend_free(struct sg_spend *sp)
{
	if (sp == NULL)
		return;
	sg_ratetable_free(sp->cells);
	free(sp);
}

/* Days since the epoch, or months since year 0, for `wall_s` in UTC. */
static int64_t
period_number(enum sg_budget_period p, int64_t wall_s)
{
	if (p == SG_BUDGET_DAILY)
		return wall_s >= 0 ? wall_s / 86400 : (wall_s - 86399) / 86400;
	time_t t = (time_t)wall_s;
	struct tm tm;
	gmtime_r(&t, &tm);
	return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int64_t
sg_spend_period_end(enum sg_budget_period p, int64_t wall_s)
{
	int64_t n = period_number(p, wall_s) + 1;
	if (p == SG_BUDGET_DAILY)
		return n * 86400;
	struct tm tm = {.tm_year = (int)(n / 12) - 1900, .tm_mon = (int)(n % 12), .tm_mday = 1};
	return (int64_t)timegm(&tm);
}

static uint64_t
cell_key(enum sg_budget_scope s, enum sg_budget_period p, const char *tenant, const char *user,
         int64_t wall_s, bool sandbox)
{
	uint64_t h = sg_ratetable_key(tenant, s == SG_BUDGET_USER ? user : "");
	uint64_t tag = (uint64_t)period_number(p, wall_s) << 3 | (uint64_t)p << 2 |
	               (uint64_t)s << 1 | (sandbox ? 1 : 0);
	h ^= tag * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h ? h : 1;
}

static _Atomic uint64_t *
cell(struct sg_spend *sp, enum sg_budget_scope s, enum sg_budget_period p, const char *tenant,
     const char *user, int64_t wall_s, bool sandbox, bool create)
{
	uint64_t k = cell_key(s, p, tenant, user, wall_s, sandbox);
	return create ? sg_ratetable_cell(sp->cells, k, 0) : sg_ratetable_peek(sp->cells, k);
}

/*
 * Lists the budgets that apply; each line's cell is found (or made) when
 * `create`.  All cells are prefetched before the first is read: a user's
 * cells are cache misses in a table of megabytes, and this way they overlap.
 */
static int
collect(struct sg_spend *sp, const struct sg_budgets *b, const char *tenant, const char *user,
        int64_t wall_s, bool create, struct sg_spend_hold *h)
{
	uint64_t keys[SG_BUDGET_SCOPES * SG_BUDGET_PERIODS];
	h->n = 0;
	h->held = 0;
	h->refused = h->warn = -1;
	h->crossed = false;
	for (int s = 0; b != NULL && s < SG_BUDGET_SCOPES; s++) {
		const struct sg_budget_limits *lim = sg_budgets_for(
		    b, (enum sg_budget_scope)s, s == SG_BUDGET_TENANT ? tenant : user);
		for (int p = 0; lim != NULL && p < SG_BUDGET_PERIODS; p++) {
			if (lim->micros[p] == 0)
				continue;
			struct sg_spend_line *ln = &h->line[h->n];
			ln->scope = (enum sg_budget_scope)s;
			ln->period = (enum sg_budget_period)p;
			ln->limit = lim->micros[p];
			keys[h->n] = cell_key(ln->scope, ln->period, tenant, user, wall_s, false);
			sg_ratetable_prefetch(sp->cells, keys[h->n++]);
		}
	}
	for (size_t i = 0; i < h->n; i++) {
		struct sg_spend_line *ln = &h->line[i];
		ln->resets_at = sg_spend_period_end(ln->period, wall_s);
		ln->cell = create ? sg_ratetable_cell(sp->cells, keys[i], 0)
		                  : sg_ratetable_peek(sp->cells, keys[i]);
		if (create && ln->cell == NULL) {
			h->n = (uint8_t)i; /* only lines with a cell are listed */
			return -1;
		}
		ln->spent = ln->cell ? (int64_t)atomic_load(ln->cell) : 0;
	}
	return 0;
}

static void
note_warning(const struct sg_budgets *b, struct sg_spend_hold *h, int i, int64_t before)
{
	const struct sg_spend_line *ln = &h->line[i];
	int64_t level = ln->limit / 100 * (int64_t)b->warn_pct;
	if (ln->spent < level)
		return;
	/* Compared as fractions; 128 bits since limits reach 1e15 micro-units. */
	if (h->warn < 0 || (__int128)ln->spent * h->line[h->warn].limit >
	                       (__int128)h->line[h->warn].spent * ln->limit)
		h->warn = i;
	if (before < level)
		h->crossed = true;
}

int
sg_spend_hold(struct sg_spend *sp, const struct sg_budgets *b, const char *tenant, const char *user,
              int64_t wall_s, int64_t cost, struct sg_spend_hold *h)
{
	if (collect(sp, b, tenant, user, wall_s, true, h) != 0)
		return -1;
	for (uint8_t i = 0; i < h->n; i++) {
		struct sg_spend_line *ln = &h->line[i];
		int64_t before = (int64_t)atomic_fetch_add(ln->cell, (uint64_t)cost);
		ln->spent = before + cost;
		if (ln->spent > ln->limit) {
			for (uint8_t j = 0; j <= i; j++)
				atomic_fetch_sub(h->line[j].cell, (uint64_t)cost);
			ln->spent = before;
			h->refused = i;
			return 0;
		}
		note_warning(b, h, i, before);
	}
	h->held = cost;
	return 0;
}

void
sg_spend_release(struct sg_spend_hold *h)
{
	for (uint8_t i = 0; h->held != 0 && i < h->n; i++)
		atomic_fetch_sub(h->line[i].cell, (uint64_t)h->held);
	h->held = 0;
}

void
sg_spend_standing(struct sg_spend *sp, const struct sg_budgets *b, const char *tenant,
                  const char *user, int64_t wall_s, struct sg_spend_hold *h)
{
	collect(sp, b, tenant, user, wall_s, false, h);
	for (uint8_t i = 0; i < h->n; i++)
		note_warning(b, h, i, h->line[i].spent);
}

void
sg_spend_add(struct sg_spend *sp, const char *tenant, const char *user, int64_t wall_s,
             int64_t cost, bool sandbox)
{
	uint64_t keys[SG_BUDGET_SCOPES * SG_BUDGET_PERIODS];
	size_t n = 0;
	for (int s = 0; s < SG_BUDGET_SCOPES; s++)
		for (int p = 0; p < SG_BUDGET_PERIODS; p++) {
			keys[n] = cell_key((enum sg_budget_scope)s, (enum sg_budget_period)p,
			                   tenant, user, wall_s, sandbox);
			sg_ratetable_prefetch(sp->cells, keys[n++]); /* see collect() */
		}
	for (size_t i = 0; i < n; i++) {
		_Atomic uint64_t *c = sg_ratetable_cell(sp->cells, keys[i], 0);
		if (c != NULL)
			atomic_fetch_add(c, (uint64_t)cost);
	}
}

int64_t
sg_spend_get(struct sg_spend *sp, enum sg_budget_scope scope, const char *tenant, const char *user,
             enum sg_budget_period period, int64_t wall_s, bool sandbox)
{
	_Atomic uint64_t *c = cell(sp, scope, period, tenant, user, wall_s, sandbox, false);
	return c ? (int64_t)atomic_load(c) : 0;
}
