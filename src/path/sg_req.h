/*
 * sg_req: one governed request as it walks the path.  The HTTP layer fills
 * the inputs, the steps fill the rest, and the HTTP layer turns the outcome
 * into a response.  Nothing here knows about libevent, so the decision path
 * can run (and be benchmarked) without a socket.
 *
 * Ownership: the request owns `input`, `output` and `problem_ext`, and
 * sg_req_finish() releases them.  Every other pointer is borrowed from the
 * pinned snapshot or the HTTP request and is valid until the request ends.
 */
#ifndef SG_REQ_H
#define SG_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog/sg_snapshot.h"
#include "core/sg_config.h"
#include "core/sg_problem.h"
#include "core/sg_sessions.h"
#include "obs/sg_trace.h"
#include "throttle/sg_fairq.h"
#include "throttle/sg_limiter.h"
#include "throttle/sg_spend.h"

struct sg_recorder;
struct sg_ratetable;
struct sg_redis;
struct sg_remote;
struct sg_sandbox;
struct sg_runs;

/* Process-wide state that steps may use; set up once by serve. */
struct sg_gateway {
	const struct sg_config *config;
	uint8_t server_secret[SG_SERVER_SECRET_LEN];
	struct sg_limiter limiter;
	struct sg_recorder *recorder; /* NULL: decisions are not recorded (benchmarks) */
	_Atomic int64_t in_flight;    /* governed calls between arrival and reply: load shedding */
	struct sg_spend *spend;       /* money spent against budgets; NULL: budgets are off */
	struct sg_sessions *sessions; /* NULL: sessions are off */
	struct sg_ratetable
	    *waiting;               /* calls in tenant queues, by tenant hash; NULL: not counted */
	struct sg_sandbox *sandbox; /* template runs; NULL: the sandbox is off */
	struct sg_runs *runs;       /* runs GET /v1/runs/{id} can show */
};

enum sg_step_rc {
	SG_STEP_NEXT,  /* go on to the next step */
	SG_STEP_AGAIN, /* suspended; an async completion resumes at this step */
	SG_STEP_STOP,  /* the response is set; skip to record */
	SG_STEP_ERROR, /* an internal failure; answer 500 */
};

struct sg_req;

/*
 * How a step that must wait (a simulated upstream's latency, a queue, a
 * remote store) suspends the request: it arranges a wake-up through these
 * and returns SG_STEP_AGAIN; the transport then runs the path again from
 * the same step.  NULL when the path runs synchronously (benchmarks and
 * fuzzers), where steps must not suspend.
 */
struct sg_req_io {
	/* Runs the path again after `delay_ns`; -1 (out of memory): do not suspend. */
	int (*wake_after)(struct sg_req *r, uint64_t delay_ns);
	/* Runs the path again soon, from the event loop, never from the caller's stack. */
	int (*wake)(struct sg_req *r);
	/*
	 * Parks the call in its tenant's fair queue (r->qitem is filled); the
	 * queue's owner later sets r->queue_state to ADMITTED or EXPIRED and
	 * wakes it.  -1 when the tenant's queue is full.
	 */
	int (*enqueue)(struct sg_req *r);
};

/*
 * SG_Q_ASK_AGAIN: with the Redis backend the queue cannot decide itself; a
 * call's turn means asking Redis again, and a refusal puts it back.
 */
enum sg_queue_state { SG_Q_NONE, SG_Q_WAITING, SG_Q_ADMITTED, SG_Q_EXPIRED, SG_Q_ASK_AGAIN };

struct sg_principal {
	const struct sg_key_entry *key; /* owned by the snapshot */
	const struct sg_role *role;     /* owned by the snapshot */
	enum sg_mode mode;
	struct sg_session *session; /* a reference, when the call came with an sgs_ token */
};

struct sg_req {
	/* Inputs, borrowed from the transport. */
	struct sg_gateway *gw;
	struct sg_snapshot *snap;
	const char *authorization; /* header value or NULL */
	const char *connector_name;
	const char *operation_name;
	const char *content_type; /* header value or NULL */
	const char *priority;     /* Sandgate-Priority header value or NULL */
	const char *body;
	size_t body_len;
	uint64_t now_ns; /* monotonic: at arrival, then again each time the path resumes */
	int64_t wall_s;  /* unix seconds, for key expiry */
	struct sg_trace trace;
	const struct sg_req_io *io; /* NULL: steps may not suspend */

	/* Filled by the steps. */
	struct sg_principal principal;
	const struct sg_connector *connector;
	const struct sg_operation *op;
	json_t *input;
	json_t *output;
	enum sg_class cls; /* the workload class the call runs in */
	struct sg_limiter_ids ids;
	bool has_verdict; /* verdict holds a decision or a peek at the standing */
	struct sg_verdict verdict;
	uint64_t route_start_ns, upstream_ns; /* when route began; how long the upstream took */
	struct sg_adaptive *adaptive;         /* a place held in the upstream's adaptive limit */
	struct sg_redis *redis;     /* the I/O thread's Redis client (backend redis), or NULL */
	struct sg_remote *remote;   /* while Redis decides (step_throttle_redis.c); owned */
	struct sg_spend_hold spend; /* live calls: the cost held against budgets */
	struct {
		bool call, window; /* a call counted, a window unit taken */
		int64_t cost;      /* micro-units held against the session's budget */
	} session_hold;
	enum sg_queue_state queue_state;
	struct sg_fairq_item qitem; /* while waiting in a tenant queue */
	uint64_t queue_wait_us;     /* how long it waited there (admitted or refused); 0: never */
	size_t next_step;

	/* Outcome. */
	int status;
	const struct sg_problem_def *problem; /* NULL when allowed */
	char detail[512];
	json_t *problem_ext;
	enum sg_decision_kind decision;
};

/* Prepares `r` for a new request; inputs are then set by the caller. */
void sg_req_init(struct sg_req *r, struct sg_gateway *gw, struct sg_snapshot *snap);
/* Releases what the request owns.  Safe to call twice. */
void sg_req_finish(struct sg_req *r);

/*
 * The one way a step refuses a request: sets the status, the problem and a
 * detail for a person (control characters stripped when rendered).  Returns
 * SG_STEP_STOP so a step can `return sg_req_fail(...)`.
 */
enum sg_step_rc sg_req_fail(struct sg_req *r, enum sg_problem_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The problem+json body for a refused request (new reference). */
json_t *sg_req_problem_body(struct sg_req *r);

#endif
