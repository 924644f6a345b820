/*
 * The writer thread.  A ring of decisions, copied in by request threads
 * under a short mutex and written out in batches by one thread that owns
 * its own store connection.  Only the writer ever waits on disk.
 *
 * A batch the store refuses (locked, full, failing) stays at the head of
 * the ring and is tried again after 10 ms, 20 ms, ... up to 1 s between
 * attempts; what is pushed meanwhile queues behind it, so the record keeps
 * push order and the spending tally counts each decision once, when it is
 * committed.  Only a full ring drops (counted), and callers that must not
 * act unaudited ask sg_recorder_admit first.
 */
#include "store/sg_recorder.h"
#include "core/sg_clock.h"
#include "store/sg_spend_tally.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 256
/* Finished runs waiting to be written; each holds its document. */
#define RUNS_MAX 1024
/* How long queued decisions may wait for a fuller batch. */
#define DEFAULT_LINGER_MS 20
/* How old the oldest unwritten decision may be before fail-closed calls are refused. */
#define DEFAULT_DEADLINE_MS 5000
/*
 * The writer's connection waits this long for another's lock, then fails
 * and backs off: SQLite's busy wait rides out a short apply, but a lock
 * held longer is an outage the retry counts and the metrics show.
 */
#define WRITER_BUSY_MS 1000
#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000
/* How long a stop keeps trying a store that refuses writes before giving up. */
#define STOP_GRACE_NS (10 * 1000000000ull)
/*
 * How often the spending tally goes to the store, and how many callers it
 * may hold meanwhile.  A start adds the decisions after the last flush
 * from the record, so this bounds that work, not what a crash loses.
 */
#define SPEND_FLUSH_NS (5 * 1000000000ull)
#define SPEND_ROWS_MAX 65536
/*
 * The audit chain's housekeeping: how often the writer logs the chain's
 * head (an anchor kept outside the store) and, with a retention, prunes.
 * A prune takes at most PRUNE_BATCH rows per transaction, so writes wait
 * for one short transaction, never for the whole backlog of old rows.
 */
#define CHAIN_EVERY_NS (3600 * 1000000000ull)
#define PRUNE_BATCH 5000
/* After a full prune batch, the next one comes this soon. */
#define PRUNE_AGAIN_NS (1000000000ull)

struct sg_recorder {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct sg_decision *ring;
	uint64_t *born; /* sg_mono_ns() at each slot's push: the backlog's age */
	/*
	 * Items live at [head, head + len) modulo `slots`; the first `inflight`
	 * of them are the writer's batch.  `cap` bounds the rest, and the ring
	 * has a batch of slots more so the writer's batch never takes from it.
	 * A batch the store refused stays where it is until it is written.
	 */
	size_t slots, cap, head, len, inflight;
	bool stopping;
	uint64_t stop_ns;        /* under `lock`: when the stop was asked */
	uint32_t linger_ms;      /* under `lock` */
	int (*fault)(void *arg); /* under `lock`: a test's failure injection */
	void *fault_arg;
	pthread_t thread;
	struct sg_store *store; /* the writer's own connection */
	/* Stored under `lock`, read without it by sg_recorder_admit and /metrics. */
	_Atomic size_t backlog;     /* len */
	_Atomic bool full;          /* len - inflight == cap */
	_Atomic uint64_t oldest_ns; /* born[head], 0 when empty */
	_Atomic uint64_t deadline_ns;
	_Atomic uint64_t dropped;
	_Atomic uint64_t written;
	_Atomic uint64_t retries;
	_Atomic uint64_t refused;
	struct sg_run_row *runs; /* under `lock`: RUNS_MAX rows, n_runs in use */
	size_t n_runs;
	/* The writer's alone from here on. */
	struct sg_run_row run_batch[RUNS_MAX]; /* runs taken, not yet written */
	size_t n_run_batch;
	uint32_t failures; /* attempts failed in a row */
	/* Spending of the decisions after the store's mark. */
	struct sg_spend_tally *spend;
	int64_t spend_through; /* the newest decision the tally counts */
	bool spend_lost;       /* no tally: count from the record at the next flush */
	uint64_t spend_flushed_ns;
	_Atomic uint64_t spend_recounts; /* flushes that counted from the record */
	_Atomic uint64_t retention_us;   /* audit.retention; 0: keep every record */
	_Atomic uint64_t chain_every_ns;
	uint64_t chain_last_ns; /* the chain's last housekeeping (or the start) */
};

/* Mirrors the ring for the lock-free readers; called with the lock held after every change. */
static void
publish(struct sg_recorder *r)
{
	atomic_store_explicit(&r->backlog, r->len, memory_order_relaxed);
	atomic_store_explicit(&r->full, r->len - r->inflight >= r->cap, memory_order_relaxed);
	atomic_store_explicit(&r->oldest_ns, r->len ? r->born[r->head] : 0, memory_order_relaxed);
}

/*
 * The oldest queued decisions, up to a batch and up to the ring's end, to
 * be written in place; called with the lock held.  They stay counted in
 * `len` until release_batch(), so no push can land on them meanwhile.
 * Copying a batch out instead (200 KiB) held the lock long enough for
 * request threads to sleep on it.
 */
static size_t
peek_batch(struct sg_recorder *r)
{
	size_t n = r->len < BATCH ? r->len : BATCH;
	if (n > r->slots - r->head)
		n = r->slots - r->head;
	r->inflight = n;
	publish(r);
	return n;
}

/* Frees the slots of a written batch; called with the lock held. */
static void
release_batch(struct sg_recorder *r, size_t n)
{
	r->head = (r->head + n) % r->slots;
	r->len -= n;
	r->inflight = 0;
	publish(r);
}

/* Called right after a batch is committed, while the connection's last id is its last row. */
static void
tally_batch(struct sg_recorder *r, const struct sg_decision *batch, size_t n)
{
	for (size_t i = 0; i < n && !r->spend_lost; i++)
		if (sg_spend_tally_add(r->spend, &batch[i]) != 0)
			r->spend_lost = true;
	if (!r->spend_lost)
		r->spend_through = sg_store_last_decision_id(r->store);
}

/* Whether the tally has something to add and its interval has passed. */
static bool
spend_due(const struct sg_recorder *r)
{
	size_t n;
	sg_spend_tally_rows(r->spend, &n);
	return (n > 0 || r->spend_lost) && sg_mono_ns() - r->spend_flushed_ns >= SPEND_FLUSH_NS;
}

/*
 * A failed flush leaves the store's mark where it was, so counting from
 * the record next time repeats nothing and misses nothing.
 */
static void
flush_spend(struct sg_recorder *r, bool force)
{
	size_t n;
	const struct sg_spend_row *rows = sg_spend_tally_rows(r->spend, &n);
	if (!force && !spend_due(r))
		return;
	r->spend_flushed_ns = sg_mono_ns();
	if (!r->spend_lost && n == 0)
		return;
	if (r->spend_lost)
		atomic_fetch_add(&r->spend_recounts, 1);
	int rc = r->spend_lost ? sg_store_spend_catch_up(r->store)
	                       : sg_store_spend_flush(r->store, rows, n, r->spend_through);
	sg_spend_tally_clear(r->spend);
	if (rc != 0 && !r->spend_lost)
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"cannot add spending to the "
		                "store; the next start counts it from the decisions\"}\n");
	r->spend_lost = rc != 0;
}

/* The chain's head in the log: a copy outside the store that a rewrite cannot reach. */
static void
log_head(struct sg_recorder *r, const char *when)
{
	int64_t id;
	uint8_t h[SG_CHAIN_HASH_LEN];
	char hex[2 * SG_CHAIN_HASH_LEN + 1];
	if (sg_store_chain_head(r->store, SG_CHAIN_MAIN, &id, h) != 0 || id == 0)
		return;
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	fprintf(stderr,
	        "{\"level\":\"info\",\"msg\":\"audit chain head%s\",\"chain\":\"" SG_CHAIN_MAIN
	        "\",\"id\":%lld,\"hash\":\"%s\"}\n",
	        when, (long long)id, hex);
}

static int64_t
wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
chain_due(const struct sg_recorder *r)
{
	return sg_mono_ns() - r->chain_last_ns >= atomic_load(&r->chain_every_ns);
}

/* Once an hour: one bounded prune when a retention is set, then the head in the log. */
static void
chain_tick(struct sg_recorder *r)
{
	uint64_t keep_us = atomic_load(&r->retention_us);
	int64_t pruned = 0;
	if (!chain_due(r))
		return;
	r->chain_last_ns = sg_mono_ns();
	if (keep_us > 0) {
		int64_t now = wall_us();
		if (sg_store_chain_prune(r->store, now - (int64_t)keep_us, now, PRUNE_BATCH, &pruned) != 0)
			fprintf(stderr,
			        "{\"level\":\"error\",\"msg\":\"%s: cannot prune audit records past "
			        "audit.retention (%s); trying again in an hour\"}\n",
			        __func__, sg_store_last_error(r->store));
		else if (pruned > 0)
			fprintf(stderr,
			        "{\"level\":\"info\",\"msg\":\"pruned audit records past "
			        "audit.retention behind a checkpoint\",\"pruned\":%lld}\n",
			        (long long)pruned);
		/* More are due: the rest go a batch at a time, between the writes. */
		if (pruned == PRUNE_BATCH) {
			uint64_t every = atomic_load(&r->chain_every_ns);
			uint64_t again = every < PRUNE_AGAIN_NS ? every : PRUNE_AGAIN_NS;
			/* Differences of the clock only: exact modulo 2^64, even early after boot. */
			r->chain_last_ns = sg_mono_ns() - (every - again);
		}
	}
	log_head(r, "");
}

uint32_t
sg_recorder_backoff_ms(uint32_t failures)
{
	if (failures == 0)
		return 0;
	/* 10 << 7 is past the cap already; larger shifts would only overflow. */
	if (failures > 7)
		return BACKOFF_MAX_MS;
	uint32_t ms = BACKOFF_FIRST_MS << (failures - 1);
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Takes every queued run, unless the last ones are still unwritten; called with the lock held. */
static void
take_runs(struct sg_recorder *r)
{
	if (r->n_run_batch > 0)
		return;
	memcpy(r->run_batch, r->runs, r->n_runs * sizeof(*r->runs));
	r->n_run_batch = r->n_runs;
	r->n_runs = 0;
}

/* What one attempt wrote, and why it failed when it did. */
struct attempt {
	bool decisions_ok, runs_ok;
	const char *why;
};

/*
 * Writes what the writer holds: the batch of `n` decisions (in place in
 * the ring) and the runs taken.  Called without the lock.  What fails is
 * kept for the next attempt; nothing is dropped here.
 */
static struct attempt
write_all(struct sg_recorder *r, const struct sg_decision *batch, size_t n, int (*fault)(void *),
          void *fault_arg)
{
	struct attempt a = {n == 0, r->n_run_batch == 0, NULL};
	if (fault != NULL && fault(fault_arg) != 0) {
		a.why = "a test fault refused the write";
		return a;
	}
	if (n > 0 && sg_store_record(r->store, batch, n) == 0) {
		tally_batch(r, batch, n);
		atomic_fetch_add(&r->written, n);
		a.decisions_ok = true;
	}
	if (!a.decisions_ok)
		a.why = sg_store_last_error(r->store);
	if (r->n_run_batch > 0 && sg_store_put_runs(r->store, r->run_batch, r->n_run_batch) == 0) {
		for (size_t i = 0; i < r->n_run_batch; i++)
			free(r->run_batch[i].doc);
		r->n_run_batch = 0;
		a.runs_ok = true;
	}
	if (!a.runs_ok && a.why == NULL)
		a.why = sg_store_last_error(r->store);
	return a;
}

/* Log once per run of failures, and once when it ends: a sick disk must not also flood the log. */
static void
log_attempt(struct sg_recorder *r, const struct attempt *a, size_t n)
{
	bool ok = a->decisions_ok && a->runs_ok;
	if (!ok && r->failures == 0)
		fprintf(stderr,
		        "{\"level\":\"error\",\"msg\":\"%s: cannot write decisions to the "
		        "store (%s); keeping %zu decisions and %zu template runs in order and "
		        "retrying until it takes them\"}\n",
		        __func__, a->why, n, r->n_run_batch);
	else if (ok && r->failures > 0)
		fprintf(stderr,
		        "{\"level\":\"info\",\"msg\":\"%s: the store takes decisions again "
		        "(%u attempts failed)\"}\n",
		        __func__, r->failures);
}

/* Sleeps until `until_ns` (sg_mono_ns) or a signal; called with the lock held. */
static int
wait_until(struct sg_recorder *r, uint64_t until_ns)
{
	struct timespec ts = {(time_t)(until_ns / 1000000000ull), (long)(until_ns % 1000000000ull)};
	return pthread_cond_timedwait(&r->wake, &r->lock, &ts);
}

/* Sleeps until woken or the linger time passes; called with the lock held. */
static int
idle_wait(struct sg_recorder *r)
{
	return wait_until(r, sg_mono_ns() + r->linger_ms * 1000000ull);
}

/*
 * Waits out the backoff before the next attempt; called with the lock
 * held.  Pushes do not cut it short.  -1 once a stop has waited its grace
 * out with the store still refusing: the process must be let go.
 */
static int
backoff_wait(struct sg_recorder *r)
{
	uint64_t until = sg_mono_ns() + sg_recorder_backoff_ms(r->failures) * 1000000ull;
	while (sg_mono_ns() < until)
		wait_until(r, until);
	return r->stopping && sg_mono_ns() - r->stop_ns >= STOP_GRACE_NS ? -1 : 0;
}

/* At a stop the store never allowed: what is still held is lost, and counted. */
static void
abandon(struct sg_recorder *r)
{
	size_t runs = r->n_runs + r->n_run_batch;
	fprintf(stderr,
	        "{\"level\":\"error\",\"msg\":\"%s: the store refused writes until the "
	        "gateway stopped; %zu decisions and %zu template runs were not recorded\"}\n",
	        __func__, r->len, runs);
	atomic_fetch_add(&r->dropped, r->len + runs);
	for (size_t i = 0; i < r->n_runs; i++)
		free(r->runs[i].doc);
	for (size_t i = 0; i < r->n_run_batch; i++)
		free(r->run_batch[i].doc);
	r->n_runs = r->n_run_batch = 0;
	release_batch(r, r->len);
}

/*
 * Waits for work and takes a batch; called with the lock held.  false
 * when the writer should stop: asked to, and nothing is left.
 */
static bool
take_work(struct sg_recorder *r, bool *cut)
{
	for (;;) {
		/*
		 * Linger for a full batch: a transaction per row would cost a
		 * lock and a WAL write each, and wake this thread per request.
		 * Queued rows wait at most the linger time (20 ms by default).
		 */
		while (!*cut && r->len < BATCH && r->len < r->cap && !r->stopping)
			if (idle_wait(r) == ETIMEDOUT &&
			    (r->len > 0 || r->n_runs > 0 || spend_due(r) || chain_due(r)))
				break;
		if (r->len > 0 || r->n_runs > 0)
			break;
		/* Stop only once empty: everything pushed before stop is written. */
		if (r->stopping)
			return false;
		/* Idle, but the tally still reaches the store within its interval. */
		pthread_mutex_unlock(&r->lock);
		flush_spend(r, false);
		chain_tick(r);
		pthread_mutex_lock(&r->lock);
	}
	size_t n = peek_batch(r);
	*cut = n < r->len && n < BATCH; /* the rest, past the ring's end, is due too */
	take_runs(r);
	return true;
}

static void *
writer_main(void *arg)
{
	struct sg_recorder *r = arg;
	bool cut = false;
	/* The decisions after the mark, from before this start, are counted first. */
	flush_spend(r, true);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		/* A refused batch is tried again, and nothing behind it goes first. */
		if (r->failures > 0 ? backoff_wait(r) != 0 : !take_work(r, &cut)) {
			if (r->failures > 0)
				abandon(r);
			break;
		}
		const struct sg_decision *batch = &r->ring[r->head];
		size_t n = r->inflight;
		int (*fault)(void *) = r->fault;
		void *fault_arg = r->fault_arg;
		pthread_mutex_unlock(&r->lock);
		struct attempt a = write_all(r, batch, n, fault, fault_arg);
		log_attempt(r, &a, n);
		bool ok = a.decisions_ok && a.runs_ok;
		if (ok) {
			flush_spend(r, false);
			chain_tick(r);
		} else
			atomic_fetch_add(&r->retries, 1);
		pthread_mutex_lock(&r->lock);
		if (a.decisions_ok)
			release_batch(r, n);
		r->failures = ok ? 0 : r->failures + 1;
	}
	pthread_mutex_unlock(&r->lock);
	flush_spend(r, true);
	log_head(r, " at stop");
	return NULL;
}

/* The condvar runs on the monotonic clock so a wall-clock jump cannot stall the writer. */
static int
init_sync(struct sg_recorder *r)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	                 pthread_cond_init(&r->wake, &ca) == 0
	             ? 0
	             : -1;
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -1;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		pthread_cond_destroy(&r->wake);
		return -1;
	}
	return 0;
}

static void
free_recorder(struct sg_recorder *r)
{
	sg_store_close(r->store);
	sg_spend_tally_free(r->spend);
	free(r->runs);
	free(r->born);
	free(r->ring);
	free(r);
}

struct sg_recorder *
sg_recorder_start(const char *data_dir, size_t capacity, char *err, size_t errlen)
{
	struct sg_recorder *r;
	if (capacity == 0) {
		snprintf(err, errlen, "the record queue needs a capacity of at least 1");
		return NULL;
	}
	if (capacity > SIZE_MAX / sizeof(*r->ring) - BATCH) {
		snprintf(err, errlen, "a record queue of %zu decisions is too large", capacity);
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->ring = calloc(capacity + BATCH, sizeof(*r->ring))) == NULL ||
	    (r->born = calloc(capacity + BATCH, sizeof(*r->born))) == NULL ||
	    (r->runs = calloc(RUNS_MAX, sizeof(*r->runs))) == NULL ||
	    (r->spend = sg_spend_tally_new(SPEND_ROWS_MAX)) == NULL) {
		snprintf(err, errlen, "cannot allocate a record queue of %zu decisions", capacity);
		if (r) {
			free(r->runs);
			free(r->born);
			free(r->ring);
		}
		free(r);
		return NULL;
	}
	r->cap = capacity;
	r->slots = capacity + BATCH;
	r->spend_lost = true; /* until the first flush has counted from the record */
	r->linger_ms = DEFAULT_LINGER_MS;
	atomic_init(&r->chain_every_ns, CHAIN_EVERY_NS);
	r->chain_last_ns = sg_mono_ns();
	atomic_init(&r->deadline_ns, DEFAULT_DEADLINE_MS * 1000000ull);
	if ((r->store = sg_store_open(data_dir, err, errlen)) == NULL) {
		free_recorder(r);
		return NULL;
	}
	sg_store_set_busy_timeout(r->store, WRITER_BUSY_MS);
	if (init_sync(r) != 0) {
		snprintf(err, errlen, "cannot set up the record queue");
		free_recorder(r);
		return NULL;
	}
	if (pthread_create(&r->thread, NULL, writer_main, r) != 0) {
		snprintf(err, errlen, "cannot start the writer thread");
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		free_recorder(r);
		return NULL;
	}
	pthread_setname_np(r->thread, "sg-audit"); /* for profiles and bench/run's CPU figures */
	return r;
}

int
sg_recorder_push(struct sg_recorder *r, const struct sg_decision *d)
{
	uint64_t now = sg_mono_ns(); /* read before the lock: the lock is held for a copy only */
	pthread_mutex_lock(&r->lock);
	size_t queued = r->len - r->inflight;
	if (queued == r->cap || r->stopping) {
		pthread_mutex_unlock(&r->lock);
		atomic_fetch_add(&r->dropped, 1);
		return -1;
	}
	size_t at = (r->head + r->len) % r->slots;
	r->ring[at] = *d;
	r->born[at] = now;
	r->len++;
	queued++;
	publish(r);
	/*
	 * The writer lingers for a full batch; only a full one needs to wake it
	 * early.  A ring smaller than a batch is full first, and must not wait.
	 * Signalled after unlocking: the woken writer often runs at once, and
	 * would only block on a lock this thread still held.
	 */
	bool wake = queued == BATCH || queued == r->cap;
	pthread_mutex_unlock(&r->lock);
	if (wake)
		pthread_cond_signal(&r->wake);
	return 0;
}

int
sg_recorder_push_run(struct sg_recorder *r, struct sg_run_row *row)
{
	pthread_mutex_lock(&r->lock);
	if (r->n_runs == RUNS_MAX || r->stopping) {
		pthread_mutex_unlock(&r->lock);
		atomic_fetch_add(&r->dropped, 1);
		return -1;
	}
	r->runs[r->n_runs++] = *row;
	row->doc = NULL;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void
sg_recorder_stop(struct sg_recorder *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	r->stop_ns = sg_mono_ns();
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free_recorder(r);
}

void
sg_recorder_set_linger(struct sg_recorder *r, uint32_t ms)
{
	pthread_mutex_lock(&r->lock);
	r->linger_ms = ms;
	pthread_mutex_unlock(&r->lock);
}

void
sg_recorder_set_retention(struct sg_recorder *r, uint64_t retention_ms, uint64_t every_ms)
{
	atomic_store(&r->retention_us, retention_ms * 1000);
	if (every_ms > 0)
		atomic_store(&r->chain_every_ns, every_ms * 1000000ull);
}

void
sg_recorder_set_deadline(struct sg_recorder *r, uint32_t ms)
{
	atomic_store(&r->deadline_ns, ms * 1000000ull);
}

void
sg_recorder_set_fault(struct sg_recorder *r, int (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->fault = fn;
	r->fault_arg = arg;
	pthread_mutex_unlock(&r->lock);
}

uint64_t
sg_recorder_oldest_age_ns(const struct sg_recorder *r, uint64_t now_ns)
{
	uint64_t oldest = atomic_load_explicit(&r->oldest_ns, memory_order_relaxed);
	/* Pushed by another thread after this caller read its clock: no age yet. */
	return oldest != 0 && now_ns > oldest ? now_ns - oldest : 0;
}

bool
sg_recorder_admit(struct sg_recorder *r, bool fail_closed, uint64_t now_ns)
{
	if (r == NULL || !fail_closed)
		return true;
	if (!atomic_load_explicit(&r->full, memory_order_relaxed) &&
	    sg_recorder_oldest_age_ns(r, now_ns) <=
	        atomic_load_explicit(&r->deadline_ns, memory_order_relaxed))
		return true;
	atomic_fetch_add_explicit(&r->refused, 1, memory_order_relaxed);
	return false;
}

uint64_t
sg_recorder_retries(const struct sg_recorder *r)
{
	return atomic_load(&r->retries);
}

uint64_t
sg_recorder_refused(const struct sg_recorder *r)
{
	return atomic_load(&r->refused);
}

size_t
sg_recorder_backlog(const struct sg_recorder *r)
{
	return atomic_load_explicit(&r->backlog, memory_order_relaxed);
}

uint64_t
sg_recorder_dropped(const struct sg_recorder *r)
{
	return atomic_load(&r->dropped);
}

uint64_t
sg_recorder_spend_recounts(const struct sg_recorder *r)
{
	return atomic_load(&r->spend_recounts);
}

uint64_t
sg_recorder_written(const struct sg_recorder *r)
{
	return atomic_load(&r->written);
}

size_t
sg_recorder_depth(struct sg_recorder *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->len - r->inflight;
	pthread_mutex_unlock(&r->lock);
	return n;
}
