/*
 * Deficit round robin over per-tenant FIFOs.
 *
 * A tenant with waiting calls sits on the active ring.  Each visit adds
 * `quantum` units to its deficit; its head call may go when its cost fits
 * in the deficit and the limiter admits it.  A visit ends at the first call
 * that cannot go, so one tenant never holds the turn while others wait, and
 * a tenant whose queue empties leaves the ring with its deficit reset (an
 * idle tenant saves no credit).  The next pass starts after the last tenant
 * served, so no tenant is always first.
 *
 * Deadlines are checked at each queue's head only: every call of a thread
 * waits with the same max_wait, so deadlines in one FIFO are in order.
 */
#include "throttle/sg_fairq.h"

#include <stdlib.h>

#define BUCKETS 256

struct tenant_queue {
	uint64_t tenant;
	struct sg_fairq_item *head, *tail;
	uint32_t len;
	uint64_t deficit;
	struct tenant_queue *hash_next;
	struct tenant_queue *ring_prev, *ring_next; /* on the active ring while len > 0 */
};

struct sg_fairq {
	uint32_t depth, quantum;
	size_t len;
	size_t n_active; /* tenants on the ring */
	struct tenant_queue *buckets[BUCKETS];
	struct tenant_queue *cursor; /* the next tenant to visit; NULL when the ring is empty */
};

struct sg_fairq *
sg_fairq_new(uint32_t depth, uint32_t quantum)
{
	struct sg_fairq *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->depth = depth ? depth : 1;
	q->quantum = quantum ? quantum : 1;
	return q;
}

void
sg_fairq_free(struct sg_fairq *q)
{
	if (q == NULL)
		return;
	for (size_t b = 0; b < BUCKETS; b++)
		while (q->buckets[b]) {
			struct tenant_queue *t = q->buckets[b];
			q->buckets[b] = t->hash_next;
			free(t);
		}
	free(q);
}

static struct tenant_queue **
slot_of(struct sg_fairq *q, uint64_t tenant)
{
	struct tenant_queue **p = &q->buckets[(tenant ^ (tenant >> 32)) % BUCKETS];
	while (*p && (*p)->tenant != tenant)
		p = &(*p)->hash_next;
	return p;
}

static void
ring_insert(struct sg_fairq *q, struct tenant_queue *t)
{
	q->n_active++;
	if (q->cursor == NULL) {
		t->ring_prev = t->ring_next = t;
		q->cursor = t;
		return;
	}
	/* Just before the cursor: a newcomer waits for one full turn of the ring. */
	t->ring_next = q->cursor;
	t->ring_prev = q->cursor->ring_prev;
	t->ring_prev->ring_next = t;
	q->cursor->ring_prev = t;
}

/* Takes an emptied tenant off the ring and out of the table. */
static void
retire(struct sg_fairq *q, struct tenant_queue *t)
{
	q->n_active--;
	if (t->ring_next == t) {
		q->cursor = NULL;
	} else {
		t->ring_prev->ring_next = t->ring_next;
		t->ring_next->ring_prev = t->ring_prev;
		if (q->cursor == t)
			q->cursor = t->ring_next;
	}
	struct tenant_queue **p = slot_of(q, t->tenant);
	*p = t->hash_next;
	free(t);
}

static int
push(struct sg_fairq *q, struct sg_fairq_item *it, bool front)
{
	struct tenant_queue **p = slot_of(q, it->tenant);
	struct tenant_queue *t = *p;
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return -1;
		t->tenant = it->tenant;
		*p = t;
		ring_insert(q, t);
	}
	if (t->len >= q->depth)
		return -1;
	it->next = NULL;
	if (front && t->head) {
		it->next = t->head;
		t->head = it;
	} else {
		if (t->tail)
			t->tail->next = it;
		else
			t->head = it;
		t->tail = it;
	}
	t->len++;
	q->len++;
	return 0;
}

int
sg_fairq_push(struct sg_fairq *q, struct sg_fairq_item *it)
{
	return push(q, it, false);
}

int
sg_fairq_push_front(struct sg_fairq *q, struct sg_fairq_item *it)
{
	return push(q, it, true);
}

static struct sg_fairq_item *
pop(struct sg_fairq *q, struct tenant_queue *t)
{
	struct sg_fairq_item *it = t->head;
	t->head = it->next;
	if (t->head == NULL)
		t->tail = NULL;
	it->next = NULL;
	t->len--;
	q->len--;
	return it;
}

static void
expire_heads(struct sg_fairq *q, struct tenant_queue *t, uint64_t now,
             const struct sg_fairq_ops *ops)
{
	while (t->head && t->head->deadline <= now)
		ops->expire(ops->ud, pop(q, t), now);
}

/*
 * One visit: returns true when the tenant made progress (a call went, or
 * a ready call earned deficit toward its cost) so another pass is worth it.
 */
static bool
visit(struct sg_fairq *q, struct tenant_queue *t, uint64_t now, const struct sg_fairq_ops *ops)
{
	bool progress = false;
	expire_heads(q, t, now, ops);
	if (t->head == NULL || t->head->ready_at > now)
		return false;
	t->deficit += q->quantum;
	while (t->head && t->head->ready_at <= now && t->head->cost <= t->deficit) {
		struct sg_fairq_item *it = t->head;
		if (!ops->try_admit(ops->ud, it, now)) {
			t->deficit =
			    0; /* refused by its limits, not short of turns: bank nothing */
			return progress;
		}
		pop(q, t);
		t->deficit -= it->cost;
		progress = true;
		expire_heads(q, t, now, ops);
	}
	/* Still short of the head's cost: the next pass adds another quantum. */
	return progress || (t->head && t->head->ready_at <= now);
}

static uint64_t
next_wake(const struct sg_fairq *q, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	const struct tenant_queue *t = q->cursor;
	if (t == NULL)
		return next;
	do {
		uint64_t at =
		    t->head->ready_at < t->head->deadline ? t->head->ready_at : t->head->deadline;
		if (at < next)
			next = at > now ? at : now + 1;
		t = t->ring_next;
	} while (t != q->cursor);
	return next;
}

uint64_t
sg_fairq_run(struct sg_fairq *q, uint64_t now, const struct sg_fairq_ops *ops)
{
	bool progress = true;
	while (progress && q->cursor != NULL) {
		progress = false;
		/* One pass: every tenant on the ring now is visited once. */
		for (size_t n = q->n_active; n > 0 && q->cursor != NULL; n--) {
			struct tenant_queue *t = q->cursor;
			q->cursor = t->ring_next;
			progress |= visit(q, t, now, ops);
			if (t->head == NULL)
				retire(q, t);
		}
	}
	return next_wake(q, now);
}

size_t
sg_fairq_len(const struct sg_fairq *q)
{
	return q->len;
}

size_t
sg_fairq_position(const struct sg_fairq *q, const struct sg_fairq_item *it)
{
	const struct tenant_queue *t = q->buckets[(it->tenant ^ (it->tenant >> 32)) % BUCKETS];
	while (t && t->tenant != it->tenant)
		t = t->hash_next;
	size_t pos = 1;
	for (const struct sg_fairq_item *x = t ? t->head : NULL; x; x = x->next, pos++)
		if (x == it)
			return pos;
	return 0;
}
