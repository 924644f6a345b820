/*
 * sg_unauth: the allowance and the audit sample of each client address
 * live in one table of GCRA cells of their own, not in the limiter's: an
 * attacker with many addresses fills it with draining cells, and that must
 * not cost a tenant's rate limits their room (a full table refuses).  Here
 * a full table only means a new address is not charged or recorded, and
 * is still counted.
 */
#include "throttle/sg_unauth.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_config.h"
#include "obs/sg_metrics.h"
#include "policy/sg_limit.h"
#include "throttle/sg_gcra.h"
#include "throttle/sg_ratetable.h"

/* Two cells per address at most, reusable once refilled. */
#define UNAUTH_CELLS 65536

/* The two scopes of one address's cells. */
#define SCOPE_ALLOWANCE 0x9e3779b97f4a7c15ull
#define SCOPE_AUDIT 0xc2b2ae3d27d4eb4full

struct sg_unauth {
	struct sg_ratetable *cells;
	struct sg_gcra_limit rate;  /* the allowance */
	struct sg_gcra_limit audit; /* one record per interval */
	uint64_t audit_every_ns;    /* 0: record every refusal */
};

static _Thread_local struct {
	uint64_t key;
	const char *addr;
} current;

struct sg_unauth *
sg_unauth_new(const struct sg_config *cfg)
{
	struct sg_limit l;
	struct sg_unauth *u = calloc(1, sizeof(*u));
	if (u == NULL || sg_limit_parse(cfg->unauth_rate, (uint32_t)cfg->unauth_burst, &l) != 0 ||
	    (u->cells = sg_ratetable_new(UNAUTH_CELLS)) == NULL) {
		free(u);
		return NULL;
	}
	u->rate = l.gcra;
	u->audit_every_ns = (uint64_t)cfg->unauth_audit_ms * 1000000ull;
	u->audit.emission_ns = u->audit_every_ns ? u->audit_every_ns : 1;
	u->audit.burst = 1;
	return u;
}

void
sg_unauth_free(struct sg_unauth *u)
{
	if (u == NULL)
		return;
	sg_ratetable_free(u->cells);
	free(u);
}

void
sg_unauth_enter(uint64_t key, const char *addr)
{
	current.key = key;
	current.addr = addr;
}

void
sg_unauth_leave(void)
{
	current.key = 0;
	current.addr = NULL;
}

static uint64_t
scoped(uint64_t key, uint64_t scope)
{
	uint64_t k = key ^ scope;
	return k ? k : 1;
}

bool
sg_unauth_gate(struct sg_unauth *u, uint64_t key, uint64_t now, uint64_t *wait_ns)
{
	uint64_t tat;
	if (u == NULL || key == 0)
		return true;
	/* A peek: an address that never failed has no cell, and gets none here. */
	_Atomic uint64_t *cell = sg_ratetable_peek(u->cells, scoped(key, SCOPE_ALLOWANCE));
	if (cell == NULL)
		return true;
	struct sg_gcra_result res = sg_gcra_decide(&u->rate, atomic_load(cell), now, 1, &tat);
	if (res.allowed)
		return true;
	atomic_fetch_add_explicit(&sg_gauges.unauth_limited, 1, memory_order_relaxed);
	*wait_ns = res.retry_after_ns;
	return false;
}

void
sg_unauth_refused(struct sg_unauth *u, uint64_t now)
{
	atomic_fetch_add_explicit(&sg_gauges.unauth_refused, 1, memory_order_relaxed);
	if (u == NULL || current.key == 0)
		return;
	_Atomic uint64_t *cell =
	    sg_ratetable_cell(u->cells, scoped(current.key, SCOPE_ALLOWANCE), now);
	if (cell != NULL)
		sg_gcra_take(&u->rate, cell, now, 1);
}

bool
sg_unauth_record(struct sg_unauth *u, uint64_t now, char *reason, size_t n)
{
	if (u != NULL && current.key != 0) {
		bool due = u->audit_every_ns == 0;
		if (!due) {
			_Atomic uint64_t *cell =
			    sg_ratetable_cell(u->cells, scoped(current.key, SCOPE_AUDIT), now);
			due = cell != NULL && sg_gcra_take(&u->audit, cell, now, 1).allowed;
		}
		if (!due)
			return false;
		size_t len = strlen(reason);
		unsigned long long every_s = u->audit_every_ns / 1000000000ull;
		if (len < n && every_s > 0)
			snprintf(reason + len, n - len,
			         " (client %s; such refusals are recorded once per %llu s per "
			         "address, and all counted in /metrics)",
			         current.addr, every_s);
		else if (len < n)
			snprintf(reason + len, n - len, " (client %s)", current.addr);
	}
	atomic_fetch_add_explicit(&sg_gauges.unauth_recorded, 1, memory_order_relaxed);
	return true;
}
