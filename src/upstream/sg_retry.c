/*
 * sg_retry: which failures are worth another attempt, the backoff between
 * attempts, and the budget that caps how much load retries may add.
 */
#include "upstream/sg_retry.h"

#include <string.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

bool
sg_retry_retryable(enum sg_fetch_error error, long status)
{
	switch (error) {
	case SG_FETCH_CONNECT:
	case SG_FETCH_RESOLVE:
		return true; /* the request never reached the upstream */
	case SG_FETCH_OK:
		return status == 429 || status == 502 || status == 503 || status == 504;
	default:
		/* A timeout or a broken response may have done the work already. */
		return false;
	}
}

uint64_t
sg_retry_backoff_ns(unsigned attempt, uint64_t rand64)
{
	uint64_t ceiling = SG_RETRY_BASE_MS;
	for (unsigned i = 1; i < attempt && ceiling < SG_RETRY_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > SG_RETRY_CAP_MS)
		ceiling = SG_RETRY_CAP_MS;
	return rand64 % (ceiling * NS_PER_MS + 1);
}

void
sg_retry_budget_init(struct sg_retry_budget *b)
{
	memset(b->win, 0, sizeof(b->win));
	pthread_mutex_init(&b->mu, NULL);
}

void
sg_retry_budget_destroy(struct sg_retry_budget *b)
{
	pthread_mutex_destroy(&b->mu);
}

/* The current second's bucket, emptied when it last counted an older second. */
static size_t
bucket(struct sg_retry_budget *b, uint64_t now_ns)
{
	uint64_t sec = now_ns / NS_PER_S + 1; /* + 1: a zeroed bucket is never current */
	size_t i = sec % SG_RETRY_WINDOW_S;
	if (b->win[i].sec != sec) {
		b->win[i].sec = sec;
		b->win[i].attempts = b->win[i].retries = 0;
	}
	return i;
}

void
sg_retry_budget_deposit(struct sg_retry_budget *b, uint64_t now_ns)
{
	pthread_mutex_lock(&b->mu);
	b->win[bucket(b, now_ns)].attempts++;
	pthread_mutex_unlock(&b->mu);
}

bool
sg_retry_budget_withdraw(struct sg_retry_budget *b, uint64_t now_ns)
{
	pthread_mutex_lock(&b->mu);
	size_t cur = bucket(b, now_ns);
	uint64_t sec = b->win[cur].sec, attempts = 0, retries = 0;
	for (size_t i = 0; i < SG_RETRY_WINDOW_S; i++)
		if (b->win[i].sec != 0 && b->win[i].sec + SG_RETRY_WINDOW_S > sec) {
			attempts += b->win[i].attempts;
			retries += b->win[i].retries;
		}
	bool ok = (retries + 1) * 100 <= attempts * SG_RETRY_BUDGET_PCT + SG_RETRY_BUDGET_MIN * 100;
	b->win[cur].retries += ok;
	pthread_mutex_unlock(&b->mu);
	return ok;
}
