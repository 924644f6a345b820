/*
 * sg_req: one governed request as it walks the path.  The transport fills
 * the inputs, the steps fill the rest, and the transport turns the outcome
 * into its reply.  Nothing here knows about libevent, so the decision path
 * can run (and be benchmarked) without a socket.
 *
 * A step that keeps state of its own (between suspensions, or for the
 * reply) keeps it in its slot, as an nginx module keeps its context: the
 * step allocates it from the request's arena, nobody else reads its
 * fields, and its release hook runs when the request ends.
 *
 * Ownership: the request owns `output`, `problem_ext` and its slots, and
 * sg_req_finish() releases them.  Every other pointer is
 * borrowed from the snapshot (which the transport keeps alive until the
 * request ends) or the transport.
 */
#ifndef SG_REQ_H
#define SG_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/sg_snapshot.h"
#include "core/sg_config.h"
#include "core/sg_problem.h"
#include "json/sg_json.h"
#include "throttle/sg_sessions.h"
#include "obs/sg_trace.h"
#include "throttle/sg_limiter.h"
#include "policy/sg_rules.h"

struct sg_recorder;
struct sg_ratetable;
struct sg_sandbox;
struct sg_runs;
struct sg_spend;
struct sg_template;
struct sg_throttle_thread;
struct sg_fetcher;
struct sg_unauth;
struct sg_breakers;
struct sg_credstore;
struct sg_oauth;
struct sg_dlp_token_key;

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
	struct sg_breakers *breakers; /* upstream hosts' health; NULL: calls go unguarded */
	struct sg_oauth *oauth;       /* OAuth2 tokens, shared by every thread */
	struct sg_unauth *unauth;   /* refusals for want of a key, per client; NULL: counted only */
	struct sg_credstore *creds; /* upstream credentials (main thread refreshes); NULL: none */
	/* The key tokenize actions use, derived from the vault at start; NULL: tokenize fails
	 * closed. */
	const struct sg_dlp_token_key *dlp_token_key;
	/*
	 * Both screen steps do nothing.  Only bench_screen sets it, to measure
	 * what screening costs; no configuration reaches it.
	 */
	bool dlp_screen_off_for_bench;
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
	/* The caller's request header `name`, or NULL; NULL itself: the call has no headers. */
	const char *(*header)(struct sg_req *r, const char *name);
};

/* The steps that keep state of their own, one slot each. */
enum sg_slot { SG_SLOT_THROTTLE, SG_SLOT_ROUTE, SG_SLOT_COUNT };

/* Called once when the request ends, with the slot's context. */
typedef void (*sg_slot_release_fn)(struct sg_req *r, void *ctx);

/* Room for every step's context: the throttle step's is the largest (about 1.8 KiB). */
#define SG_REQ_ARENA 2048

/* One upstream attempt of a live call: a span of the call, kept for the audit and runs. */
#define SG_REQ_MAX_ATTEMPTS 6
struct sg_attempt {
	uint32_t at_us;     /* when it started, from the call's arrival at route */
	uint32_t took_us;   /* 0 while in flight */
	uint32_t waited_us; /* backoff slept before it */
	int16_t status;     /* the upstream's HTTP status; 0: none */
	uint8_t error;      /* enum sg_fetch_error: why there was no answer */
	bool failover;      /* made to the operation's failover connector */
};

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
	const char *timeout;      /* Sandgate-Timeout header value or NULL */
	const char *body;
	size_t body_len;
	uint64_t now_ns;     /* monotonic: at arrival, then again each time the path resumes */
	uint64_t arrival_ns; /* monotonic: when the path began */
	int64_t wall_s;      /* unix seconds, for key expiry */
	struct sg_trace trace;
	const struct sg_req_io *io; /* NULL: steps may not suspend */
	/* The running thread's fair queue and Redis link; NULL: calls never wait. */
	struct sg_throttle_thread *throttle;
	/* The running thread's upstream HTTP engine; NULL: live calls are refused. */
	struct sg_fetcher *fetcher;
	/*
	 * A template's ctx.call: the template whose declared capabilities bind
	 * the call, and the "connector.operation" it asked for.  NULL otherwise.
	 */
	const struct sg_template *tpl;
	const char *capability;

	/* Filled by the steps. */
	struct sg_principal principal;
	const struct sg_connector *connector;
	const struct sg_operation *op;
	/* The upstream's answer as JSON text, in a buffer from the thread's slab. */
	struct sg_jbuf output;
	enum sg_class cls; /* the workload class the call runs in, once the role is known */
	size_t next_step;
	bool in_flight; /* counted in gw->in_flight (sg_path_begin) */

	/* Outcome. */
	int status;
	const struct sg_problem_def *problem; /* NULL when allowed */
	char detail[512];
	/* Members a refusal adds to its problem document, as one JSON object (sg_problem_write). */
	struct sg_jbuf problem_ext;
	enum sg_decision_kind decision;
	uint64_t queue_wait_us; /* time spent in the tenant's fair queue (throttle); 0: never */
	uint32_t
	    retry_after_s; /* route: when an unavailable upstream may be tried again; 0: unsaid */
	uint32_t caller_timeout_ms; /* validate: the caller's Sandgate-Timeout; 0: none given */
	const char
	    *served_by; /* route: the failover connector that answered; NULL: the asked one */
	struct sg_attempt attempts[SG_REQ_MAX_ATTEMPTS]; /* route: the upstream attempts made */
	uint8_t n_attempts;
	/*
	 * screen: the body forwarded once the request screen rewrote it (r->body
	 * then points into it), and what both screens found, as the decision's
	 * `dlp` events: a JSON array's members without the brackets, whole
	 * events only, with `dlp_more` counting the ones that did not fit.
	 */
	struct sg_jbuf screened_body;
	/*
	 * validate: the body's parsed document and the text it was parsed
	 * from, so the request screen right after it need not parse again.
	 * Read only while sg_json_doc_live() says the thread has not parsed since.
	 */
	struct sg_json_doc body_doc;
	const char *body_doc_text;
	char dlp[768];
	uint16_t dlp_len;
	uint32_t dlp_more;

	/* Step state: a context per slot, carved from the arena (never freed on its own). */
	struct {
		void *ctx;
		sg_slot_release_fn release;
	} slot[SG_SLOT_COUNT];
	size_t arena_used;
	_Alignas(16) unsigned char arena[SG_REQ_ARENA];
};

/* Prepares `r` for a new request; inputs are then set by the caller. */
void sg_req_init(struct sg_req *r, struct sg_gateway *gw, struct sg_snapshot *snap);
/*
 * Releases what the request owns: each slot's context through its hook (in
 * reverse slot order), the session reference, the JSON values.  Safe to
 * call twice.
 */
void sg_req_finish(struct sg_req *r);

/*
 * The step's context in slot `s`, zeroed, made on first use; later calls
 * return the same one.  NULL only when the arena is too small, which a
 * step's static assertion rules out.
 */
void *sg_req_slot_get(struct sg_req *r, enum sg_slot s, size_t size, sg_slot_release_fn release);
/* The context in slot `s`, or NULL when its step has made none. */
static inline void *
sg_req_slot(const struct sg_req *r, enum sg_slot s)
{
	return r->slot[s].ctx;
}

/*
 * The one way a step refuses a request: sets the status, the problem and a
 * detail for a person (control characters stripped when rendered).  Returns
 * SG_STEP_STOP so a step can `return sg_req_fail(...)`.
 */
enum sg_step_rc sg_req_fail(struct sg_req *r, enum sg_problem_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sg_req_fail with the problem's definition itself (NULL: upstream_error). */
enum sg_step_rc sg_req_fail_def(struct sg_req *r, const struct sg_problem_def *def, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

/*
 * The upstream attempts as a JSON array, [{"at_ms":0.0,"ms":12.5,"status":503},
 * {"at_ms":40.1,"ms":3.2,"wait_ms":27.4,"status":200}, ...], with "error"
 * and "failover" members when they apply.  0, or -1 out of memory.
 */
int sg_req_attempts_write(const struct sg_req *r, struct sg_jbuf *out);

/* Appends the problem+json body for a refused request to `out`: 0, or -1 out of memory. */
int sg_req_problem_write(struct sg_req *r, struct sg_jbuf *out);

#endif
