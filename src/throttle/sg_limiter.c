/*
 * The limiter walks a call's rule list in order: enforced windows, then
 * enforced concurrency caps, then shadow rules.  Takes are individually
 * atomic (one CAS per cell); the set is made all-or-nothing by refunding
 * earlier takes when a later window refuses (sg_gcra_refund is exact when,
 * as here, it follows the take at once).  Two calls racing for the last
 * unit of two shared windows can therefore both be refused where one would
 * have fitted; neither is ever admitted beyond a limit.
 *
 * Concurrency slots are counters in their own table.  A counter at zero is
 * indistinguishable from an absent one, so that table is only allowed to
 * reuse slots whose counter is zero (its "now" is 0).
 */
#include "throttle/sg_limiter.h"

#include <stdatomic.h>
#include <string.h>

#include "obs/sg_throttle_metrics.h"
#include "throttle/sg_ratetable.h"

#define MIN_SLOTS 1024

int
sg_limiter_init(struct sg_limiter *lm, size_t cells)
{
	size_t slots = cells / 16 < MIN_SLOTS ? MIN_SLOTS : cells / 16;
	lm->cells = sg_ratetable_new(cells);
	lm->slots = lm->cells ? sg_ratetable_new(slots) : NULL;
	if (lm->slots != NULL)
		return 0;
	sg_limiter_fini(lm);
	return -1;
}

void
sg_limiter_fini(struct sg_limiter *lm)
{
	sg_ratetable_free(lm->cells);
	sg_ratetable_free(lm->slots);
	lm->cells = lm->slots = NULL;
}

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h;
}

void
sg_limiter_ids_set(struct sg_limiter_ids *ids, const char *key_id, const char *tenant,
                   const char *user, const char *connector, const char *operation, uint32_t mode)
{
	ids->who[SG_WHO_KEY] = sg_ratetable_key("k", key_id);
	ids->who[SG_WHO_USER] = sg_ratetable_key(tenant, user);
	ids->who[SG_WHO_TENANT] = sg_ratetable_key("t", tenant);
	ids->who[SG_WHO_EVERYONE] = 0;
	ids->what[SG_WHAT_ALL] = 0;
	ids->what[SG_WHAT_CONNECTOR] = sg_ratetable_key("c", connector);
	ids->what[SG_WHAT_OPERATION] = sg_ratetable_key(connector, operation);
	ids->mode = mode;
}

/* The bucket of window `w` (or the cap, w = 255) of `r` for this caller. */
static uint64_t
bucket_key(const struct sg_rule *r, unsigned w, const struct sg_limiter_ids *ids)
{
	uint64_t h = mix(r->seed, ((uint64_t)ids->mode << 8) | w);
	h = mix(h, ids->who[r->who]);
	h = mix(h, ids->what[r->what]);
	return h ? h : 1;
}

/* a is nearer its limit than b: a smaller fraction of it is left. */
static bool
nearer(const struct sg_gcra_result *a, const struct sg_gcra_result *b)
{
	return (uint64_t)a->remaining * b->limit < (uint64_t)b->remaining * a->limit;
}

static void
note_closest(struct sg_verdict *v, const struct sg_rule *r, const struct sg_limit *w,
             const struct sg_gcra_result *res)
{
	if (v->has_closest && !nearer(res, &v->closest.res))
		return;
	v->closest = (struct sg_limit_hit){r, w, *res};
	v->has_closest = true;
}

static void
note_violation(struct sg_verdict *v, const struct sg_rule *r, const struct sg_limit *w,
               const struct sg_gcra_result *res)
{
	if (v->n_violated == 0)
		v->closest = (struct sg_limit_hit){r, w, *res};
	v->has_closest = true;
	if (v->n_violated < SG_VERDICT_MAX)
		v->violated[v->n_violated++] = (struct sg_limit_hit){r, w, *res};
	if (res->retry_after_ns > v->retry_after_ns)
		v->retry_after_ns = res->retry_after_ns;
	sg_metrics_rule_count(&r->stats->over_limit);
}

static void
refund_all(struct sg_verdict *v, uint32_t cost)
{
	for (uint8_t i = 0; i < v->n_taken; i++)
		sg_gcra_refund(&v->taken[i].gcra, v->taken[i].cell, cost);
	v->n_taken = 0;
	sg_limiter_release(v);
}

/*
 * The GCRA parameters a window is decided with: the rule's own, or a
 * node's share of a window that `div` gateways split (rate and burst over
 * div).  `buf` holds the share; the rule's own are used in place.
 */
static const struct sg_gcra_limit *
share_of(const struct sg_limit *win, uint32_t div, struct sg_gcra_limit *buf)
{
	if (div <= 1)
		return &win->gcra;
	buf->emission_ns =
	    win->gcra.emission_ns > UINT64_MAX / div ? UINT64_MAX : win->gcra.emission_ns * div;
	buf->burst = win->gcra.burst / div ? win->gcra.burst / div : 1;
	return buf;
}

/* Once refused, the rest of the enforced windows are only looked at, to name them all. */
static void
peek_window(const struct sg_limiter *lm, const struct sg_rule *r, unsigned w, uint64_t key,
            enum sg_class cls, uint32_t cost, uint64_t now, uint32_t div, struct sg_verdict *v)
{
	uint64_t unused;
	const struct sg_limit *win = &r->windows[w];
	struct sg_gcra_limit buf;
	const struct sg_gcra_limit *g = share_of(win, div, &buf);
	_Atomic uint64_t *cell = sg_ratetable_peek(lm->cells, key);
	uint64_t tat = cell ? atomic_load_explicit(cell, memory_order_relaxed) : 0;
	struct sg_gcra_result res =
	    sg_gcra_decide_reserved(g, tat, now, cost, sg_rule_reserve_ns(r, g, cls), &unused);
	if (!res.allowed)
		note_violation(v, r, win, &res);
}

/* Takes one window; returns -1 when the table is full, else 0 (refusal in v). */
static int
take_window(const struct sg_limiter *lm, const struct sg_rule *r, unsigned w, uint64_t key,
            enum sg_class cls, uint32_t cost, uint64_t now, uint32_t div, struct sg_verdict *v)
{
	const struct sg_limit *win = &r->windows[w];
	struct sg_gcra_limit buf;
	const struct sg_gcra_limit *g = share_of(win, div, &buf);
	_Atomic uint64_t *cell = sg_ratetable_cell(lm->cells, key, now);
	if (cell == NULL)
		return -1;
	struct sg_gcra_result res =
	    sg_gcra_take_reserved(g, cell, now, cost, sg_rule_reserve_ns(r, g, cls));
	if (!res.allowed) {
		if (r->shadow)
			sg_metrics_rule_count(&r->stats->shadow);
		else
			note_violation(v, r, win, &res);
		return 0;
	}
	if (v->n_taken < SG_VERDICT_CELLS)
		v->taken[v->n_taken++] = (struct sg_verdict_cell){cell, *g};
	if ((uint64_t)res.remaining * 5 <= res.limit)
		sg_metrics_rule_count(&r->stats->near_limit);
	if (!r->shadow)
		note_closest(v, r, win, &res);
	return 0;
}

/* Occupies one slot of a concurrency cap; -1 when the slot table is full. */
static int
take_slot(const struct sg_limiter *lm, const struct sg_rule *r, uint64_t key, struct sg_verdict *v)
{
	_Atomic uint64_t *slot = sg_ratetable_cell(lm->slots, key, 0);
	if (slot == NULL)
		return -1;
	uint64_t before = atomic_fetch_add_explicit(slot, 1, memory_order_relaxed);
	struct sg_gcra_result res = {.limit = r->concurrency, .allowed = true};
	if (before >= r->concurrency && !r->shadow) {
		atomic_fetch_sub_explicit(slot, 1, memory_order_relaxed);
		res.allowed = false;
		res.retry_after_ns = 1000000000ull; /* unknown: calls in flight end when they end */
		note_violation(v, r, NULL, &res);
		return 0;
	}
	if (before >= r->concurrency)
		sg_metrics_rule_count(&r->stats->shadow);
	v->held[v->n_held++] = slot;
	res.remaining = before + 1 >= r->concurrency ? 0 : (uint32_t)(r->concurrency - before - 1);
	if (!r->shadow)
		note_closest(v, r, NULL, &res);
	return 0;
}

int
sg_limiter_take(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                const struct sg_limiter_ids *ids, enum sg_class cls, uint32_t cost, uint64_t now,
                struct sg_verdict *v)
{
	static const struct sg_take_scope all = {true, true, 1};
	return sg_limiter_take_scoped(lm, rl, ids, cls, cost, now, &all, v);
}

uint64_t
sg_limiter_bucket(const struct sg_rule *r, unsigned window, const struct sg_limiter_ids *ids)
{
	return bucket_key(r, window, ids);
}

/* The bucket keys of one take, in the order the take visits them. */
struct take_keys {
	uint64_t v[SG_VERDICT_CELLS];
	size_t n, next;
};

/* The next key of the take: computed by prefetch_cells, or now past its first ones. */
static uint64_t
next_key(struct take_keys *tk, const struct sg_rule *r, unsigned w,
         const struct sg_limiter_ids *ids)
{
	size_t i = tk->next++;
	return i < tk->n ? tk->v[i] : bucket_key(r, w, ids);
}

/*
 * Each caller's cells sit at random in a table of megabytes, so most
 * lookups miss the cache; asking for all of them first lets the misses
 * overlap.  The keys are kept for the take, which visits them in the
 * same order, slot first, whether or not it takes the slot.
 */
static void
prefetch_cells(const struct sg_limiter *lm, const struct sg_rule_list *rl,
               const struct sg_limiter_ids *ids, const struct sg_take_scope *scope,
               struct take_keys *tk)
{
	tk->n = tk->next = 0;
	for (uint8_t i = 0; rl != NULL && i < rl->n; i++) {
		const struct sg_rule *r = rl->v[i];
		if (scope->caps && r->concurrency != 0 && tk->n < SG_VERDICT_CELLS) {
			tk->v[tk->n] = bucket_key(r, 255, ids);
			sg_ratetable_prefetch(lm->slots, tk->v[tk->n++]);
		}
		for (unsigned w = 0; scope->windows && w < r->n_windows && tk->n < SG_VERDICT_CELLS;
		     w++) {
			tk->v[tk->n] = bucket_key(r, w, ids);
			sg_ratetable_prefetch(lm->cells, tk->v[tk->n++]);
		}
		if (tk->n == SG_VERDICT_CELLS)
			break;
	}
}

int
sg_limiter_take_scoped(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                       const struct sg_limiter_ids *ids, enum sg_class cls, uint32_t cost,
                       uint64_t now, const struct sg_take_scope *scope, struct sg_verdict *v)
{
	uint32_t div = scope->share_div ? scope->share_div : 1;
	struct take_keys tk;
	prefetch_cells(lm, rl, ids, scope, &tk);
	memset(v, 0, sizeof(*v));
	for (uint8_t i = 0; rl != NULL && i < rl->n; i++) {
		const struct sg_rule *r = rl->v[i];
		bool refused = v->n_violated > 0;
		if (refused && r->shadow)
			break; /* shadow rules only see calls that would have gone through */
		int rc = 0;
		if (scope->caps && r->concurrency != 0) {
			uint64_t key = next_key(&tk, r, 255, ids);
			if (!refused)
				rc = take_slot(lm, r, key, v);
		}
		for (unsigned w = 0; scope->windows && rc == 0 && w < r->n_windows; w++) {
			uint64_t key = next_key(&tk, r, w, ids);
			if (v->n_violated > 0 && !r->shadow)
				peek_window(lm, r, w, key, cls, cost, now, div, v);
			else
				rc = take_window(lm, r, w, key, cls, cost, now, div, v);
		}
		if (rc != 0) {
			refund_all(v, cost);
			return -1;
		}
	}
	v->allowed = v->n_violated == 0;
	if (!v->allowed)
		refund_all(v, cost);
	return 0;
}

void
sg_limiter_refund(struct sg_verdict *v, uint32_t cost)
{
	refund_all(v, cost);
}

void
sg_limiter_release(struct sg_verdict *v)
{
	for (uint8_t i = 0; i < v->n_held; i++)
		atomic_fetch_sub_explicit(v->held[i], 1, memory_order_relaxed);
	v->n_held = 0;
}

void
sg_limiter_charge(struct sg_verdict *v, uint64_t now, uint32_t extra)
{
	for (uint8_t i = 0; extra > 0 && i < v->n_taken; i++)
		sg_gcra_charge(&v->taken[i].gcra, v->taken[i].cell, now, extra);
}

struct sg_gcra_result
sg_limiter_standing(const struct sg_limiter *lm, const struct sg_rule *r,
                    const struct sg_limit *window, const struct sg_limiter_ids *ids,
                    enum sg_class cls, uint64_t now)
{
	if (window == NULL) {
		_Atomic uint64_t *slot = sg_ratetable_peek(lm->slots, bucket_key(r, 255, ids));
		uint64_t busy = slot ? atomic_load_explicit(slot, memory_order_relaxed) : 0;
		return (struct sg_gcra_result){
		    .allowed = busy < r->concurrency,
		    .limit = r->concurrency,
		    .remaining = busy >= r->concurrency ? 0 : (uint32_t)(r->concurrency - busy)};
	}
	unsigned w = (unsigned)(window - r->windows);
	_Atomic uint64_t *cell = sg_ratetable_peek(lm->cells, bucket_key(r, w, ids));
	uint64_t tat = cell ? atomic_load_explicit(cell, memory_order_relaxed) : 0, unused;
	return sg_gcra_decide_reserved(&window->gcra, tat, now, 0,
	                               sg_rule_reserve_ns(r, &window->gcra, cls), &unused);
}

void
sg_limiter_peek(const struct sg_limiter *lm, const struct sg_rule_list *rl,
                const struct sg_limiter_ids *ids, enum sg_class cls, uint64_t now,
                struct sg_verdict *v)
{
	memset(v, 0, sizeof(*v));
	for (uint8_t i = 0; rl != NULL && i < rl->n; i++) {
		const struct sg_rule *r = rl->v[i];
		if (r->shadow)
			break;
		struct sg_gcra_result res;
		if (r->concurrency != 0) {
			res = sg_limiter_standing(lm, r, NULL, ids, cls, now);
			note_closest(v, r, NULL, &res);
		}
		for (size_t w = 0; w < r->n_windows; w++) {
			res = sg_limiter_standing(lm, r, &r->windows[w], ids, cls, now);
			note_closest(v, r, &r->windows[w], &res);
		}
	}
	v->allowed = true;
}
