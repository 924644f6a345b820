/*
 * GCRA on a 64-bit theoretical arrival time (TAT).
 *
 * The textbook test "new_tat - now > tau + T" is evaluated in the equivalent
 * form "used > (burst - cost) * T", where used = tat - now.  Both sides then
 * stay below the real values, so a saturated product only ever errs towards
 * "there is room", which is the true answer whenever it saturates.  The one
 * quantity that must be exact is the TAT we store: when tat + cost*T does not
 * fit in 64 bits the request is denied for good (retry_after UINT64_MAX)
 * rather than stored as a wrapped, far-past value that would read as a fresh
 * bucket.  That edge needs a clock or a tolerance of centuries.
 */
#include "throttle/sg_gcra.h"

#include <stdatomic.h>

static bool
mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a != 0 && b > UINT64_MAX / a)
		return true;
	*out = a * b;
	return false;
}

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	uint64_t p;
	return mul_overflows(a, b, &p) ? UINT64_MAX : p;
}

/*
 * Whole units left when `used` ns of the window are committed and `k` units
 * would fit in an empty one: floor((k*T - used) / T) = k - ceil(used / T),
 * computed without forming k*T, which may not fit.
 */
static uint32_t
units_left(uint32_t k, uint64_t used, uint64_t t)
{
	uint64_t spent = used / t + (used % t != 0);
	return spent >= k ? 0 : (uint32_t)(k - spent);
}

static struct sg_gcra_result
deny(struct sg_gcra_result res, uint32_t burst, uint64_t used, uint64_t t, uint64_t retry)
{
	res.allowed = false;
	res.remaining = units_left(burst, used, t);
	res.retry_after_ns = retry;
	return res;
}

struct sg_gcra_result
sg_gcra_decide(const struct sg_gcra_limit *l, uint64_t stored_tat, uint64_t now, uint32_t cost,
               uint64_t *new_tat)
{
	return sg_gcra_decide_reserved(l, stored_tat, now, cost, 0, new_tat);
}

struct sg_gcra_result
sg_gcra_decide_reserved(const struct sg_gcra_limit *l, uint64_t stored_tat, uint64_t now,
                        uint32_t cost, uint64_t reserve_ns, uint64_t *new_tat)
{
	/* Defensive: the policy loader rejects both; never divide by zero here. */
	uint64_t t = l->emission_ns ? l->emission_ns : 1;
	uint32_t burst = l->burst ? l->burst : 1;
	/* A stored TAT behind now (including 0, "never seen") is a full bucket. */
	uint64_t tat = stored_tat > now ? stored_tat : now;
	uint64_t used = tat - now;
	struct sg_gcra_result res = {.limit = burst, .reset_ns = used};

	*new_tat = stored_tat;
	if (cost == 0) {
		res.allowed = true;
		res.remaining = units_left(burst, used, t);
		return res;
	}
	if (cost > burst)
		return deny(res, burst, used, t, UINT64_MAX);
	uint64_t room = sat_mul(burst - cost, t);
	room = room > reserve_ns ? room - reserve_ns : 0;
	if (used > room)
		return deny(res, burst, used, t, used - room);
	uint64_t step;
	if (mul_overflows(cost, t, &step) || tat > UINT64_MAX - step)
		return deny(res, burst, used, t, UINT64_MAX);
	*new_tat = tat + step;
	res.allowed = true;
	res.remaining = units_left(burst - cost, used, t);
	res.reset_ns = used + step;
	return res;
}

struct sg_gcra_result
sg_gcra_take(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now, uint32_t cost)
{
	return sg_gcra_take_reserved(l, cell, now, cost, 0);
}

struct sg_gcra_result
sg_gcra_take_reserved(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now,
                      uint32_t cost, uint64_t reserve_ns)
{
	/*
	 * Relaxed ordering throughout: the cell's value is the bucket's whole
	 * state and publishes no other memory.  No update can be lost anyway,
	 * because a compare-and-swap only succeeds against the latest value in
	 * the cell's single modification order; on failure `seen` is refreshed
	 * and the decision is made again on the newer TAT.
	 */
	uint64_t seen = atomic_load_explicit(cell, memory_order_relaxed);
	for (;;) {
		uint64_t next;
		struct sg_gcra_result res =
		    sg_gcra_decide_reserved(l, seen, now, cost, reserve_ns, &next);
		if (!res.allowed || cost == 0)
			return res;
		if (atomic_compare_exchange_weak_explicit(cell, &seen, next, memory_order_relaxed,
		                                          memory_order_relaxed))
			return res;
	}
}

void
sg_gcra_refund(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint32_t cost)
{
	/*
	 * Taking stored max(tat, now) + cost*T, so subtracting cost*T leaves a
	 * TAT at or before the one the take started from, and anything at or
	 * before now reads as the same full bucket.  Later takes by others only
	 * added to the TAT, so their charges survive the subtraction.
	 */
	uint64_t step = sat_mul(cost, l->emission_ns);
	uint64_t seen = atomic_load_explicit(cell, memory_order_relaxed);
	for (;;) {
		uint64_t next = seen > step ? seen - step : 0;
		if (atomic_compare_exchange_weak_explicit(cell, &seen, next, memory_order_relaxed,
		                                          memory_order_relaxed))
			return;
	}
}

void
sg_gcra_charge(const struct sg_gcra_limit *l, _Atomic uint64_t *cell, uint64_t now, uint32_t cost)
{
	/* Spending that already happened is never refused, only owed. */
	uint64_t step = sat_mul(cost, l->emission_ns);
	uint64_t seen = atomic_load_explicit(cell, memory_order_relaxed);
	for (;;) {
		uint64_t tat = seen > now ? seen : now;
		uint64_t next = tat > UINT64_MAX - step ? UINT64_MAX : tat + step;
		if (atomic_compare_exchange_weak_explicit(cell, &seen, next, memory_order_relaxed,
		                                          memory_order_relaxed))
			return;
	}
}
