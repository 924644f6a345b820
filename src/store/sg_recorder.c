/*
 * The writer thread.  A ring of decisions, copied in by request threads
 * under a short mutex and written out in batches by one thread that owns
 * its own store connection.  Only the writer ever waits on disk.
 */
#include "store/sg_recorder.h"
#include "core/sg_clock.h"
#include "store/sg_spend_tally.h"

#include <errno.h>
#include <pthread.h>
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
/*
 * How often the spending tally goes to the store, and how many callers it
 * may hold meanwhile.  A start adds the decisions after the last flush
 * from the record, so this bounds that work, not what a crash loses.
 */
#define SPEND_FLUSH_NS (5 * 1000000000ull)
#define SPEND_ROWS_MAX 65536

struct sg_recorder {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct sg_decision *ring;
	/*
	 * Items live at [head, head + len) modulo `slots`; the first `inflight`
	 * of them are the writer's batch.  `cap` bounds the rest, and the ring
	 * has a batch of slots more so the writer's batch never takes from it.
	 */
	size_t slots, cap, head, len, inflight;
	bool stopping;
	uint32_t linger_ms; /* under `lock` */
	pthread_t thread;
	struct sg_store *store; /* the writer's own connection */
	_Atomic uint64_t dropped;
	_Atomic uint64_t written;
	struct sg_run_row *runs; /* under `lock`: RUNS_MAX rows, n_runs in use */
	size_t n_runs;
	struct sg_run_row run_batch[RUNS_MAX]; /* the writer's copy */
	/* The writer's alone: spending of the decisions after the store's mark. */
	struct sg_spend_tally *spend;
	int64_t spend_through; /* the newest decision the tally counts */
	bool spend_lost;       /* no tally: count from the record at the next flush */
	uint64_t spend_flushed_ns;
	_Atomic uint64_t spend_recounts; /* flushes that counted from the record */
};

/*
 * The oldest queued decisions, up to a batch and up to the ring's end, to
 * be written in place; called with the lock held.  They stay counted in
 * `len` until release_batch(), so no push can land on them meanwhile.
 * Copying a batch out instead (200 KiB) held the lock long enough for
 * request threads to sleep on it.
 */
static size_t
peek_batch(struct sg_recorder *r, const struct sg_decision **batch)
{
	size_t n = r->len < BATCH ? r->len : BATCH;
	if (n > r->slots - r->head)
		n = r->slots - r->head;
	*batch = &r->ring[r->head];
	r->inflight = n;
	return n;
}

/* Frees the slots of a written batch; called with the lock held. */
static void
release_batch(struct sg_recorder *r, size_t n)
{
	r->head = (r->head + n) % r->slots;
	r->len -= n;
	r->inflight = 0;
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

static void
write_batch(struct sg_recorder *r, const struct sg_decision *batch, size_t n, bool *failing)
{
	if (sg_store_record(r->store, batch, n) == 0) {
		tally_batch(r, batch, n);
		atomic_fetch_add(&r->written, n);
		*failing = false;
		return;
	}
	/* Log once per run of failures: a sick disk must not also flood the log. */
	if (!*failing)
		fprintf(stderr,
		        "{\"level\":\"error\",\"msg\":\"%s: cannot write decisions to the "
		        "store; dropping them until it recovers\"}\n",
		        __func__);
	*failing = true;
	atomic_fetch_add(&r->dropped, n);
}

/* Takes every queued run; called with the lock held. */
static size_t
take_runs(struct sg_recorder *r)
{
	size_t n = r->n_runs;
	memcpy(r->run_batch, r->runs, n * sizeof(*r->runs));
	r->n_runs = 0;
	return n;
}

static void
write_runs(struct sg_recorder *r, size_t n)
{
	if (n > 0 && sg_store_put_runs(r->store, r->run_batch, n) != 0) {
		fprintf(stderr,
		        "{\"level\":\"error\",\"msg\":\"cannot write %zu template runs to "
		        "the store; they stay readable until the gateway restarts\"}\n",
		        n);
		atomic_fetch_add(&r->dropped, n);
	}
	for (size_t i = 0; i < n; i++)
		free(r->run_batch[i].doc);
}

/* Sleeps until woken or the linger time passes; called with the lock held. */
static int
idle_wait(struct sg_recorder *r)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += r->linger_ms / 1000;
	ts.tv_nsec += (long)(r->linger_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(&r->wake, &r->lock, &ts);
}

static void *
writer_main(void *arg)
{
	struct sg_recorder *r = arg;
	bool failing = false;
	bool cut = false; /* the last batch stopped at the ring's end; the rest is due */
	/* The decisions after the mark, from before this start, are counted first. */
	flush_spend(r, true);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		/*
		 * Linger for a full batch: a transaction per row would cost a
		 * lock and a WAL write each, and wake this thread per request.
		 * Queued rows wait at most the linger time (20 ms by default).
		 */
		while (!cut && r->len < BATCH && r->len < r->cap && !r->stopping)
			if (idle_wait(r) == ETIMEDOUT &&
			    (r->len > 0 || r->n_runs > 0 || spend_due(r)))
				break;
		/* Stop only once empty: everything pushed before stop is written. */
		if (r->len == 0 && r->n_runs == 0) {
			if (r->stopping)
				break;
			/* Idle, but the tally still reaches the store within its interval. */
			pthread_mutex_unlock(&r->lock);
			flush_spend(r, false);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		const struct sg_decision *batch;
		size_t n = peek_batch(r, &batch), runs = take_runs(r);
		cut = n < r->len && n < BATCH;
		pthread_mutex_unlock(&r->lock);
		if (n > 0)
			write_batch(r, batch, n, &failing);
		write_runs(r, runs);
		flush_spend(r, false);
		pthread_mutex_lock(&r->lock);
		release_batch(r, n);
	}
	pthread_mutex_unlock(&r->lock);
	flush_spend(r, true);
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
	    (r->runs = calloc(RUNS_MAX, sizeof(*r->runs))) == NULL ||
	    (r->spend = sg_spend_tally_new(SPEND_ROWS_MAX)) == NULL) {
		snprintf(err, errlen, "cannot allocate a record queue of %zu decisions", capacity);
		if (r) {
			free(r->runs);
			free(r->ring);
		}
		free(r);
		return NULL;
	}
	r->cap = capacity;
	r->slots = capacity + BATCH;
	r->spend_lost = true; /* until the first flush has counted from the record */
	r->linger_ms = DEFAULT_LINGER_MS;
	if ((r->store = sg_store_open(data_dir, err, errlen)) == NULL) {
		free_recorder(r);
		return NULL;
	}
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
	return r;
}

int
sg_recorder_push(struct sg_recorder *r, const struct sg_decision *d)
{
	pthread_mutex_lock(&r->lock);
	size_t queued = r->len - r->inflight;
	if (queued == r->cap || r->stopping) {
		pthread_mutex_unlock(&r->lock);
		atomic_fetch_add(&r->dropped, 1);
		return -1;
	}
	r->ring[(r->head + r->len) % r->slots] = *d;
	r->len++;
	queued++;
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
