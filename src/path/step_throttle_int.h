/*
 * The throttle step's own state, shared by its files only:
 *
 *   step_throttle.c        class, shedding, session and budget holds, limits
 *   step_throttle_queue.c  waiting for a turn in the tenant's fair queue
 *   step_throttle_redis.c  the windows decided in Redis
 *
 * No other module reads these fields: transports go through
 * step_throttle.h.
 */
#ifndef SG_STEP_THROTTLE_INT_H
#define SG_STEP_THROTTLE_INT_H

#include "path/sg_path.h"
#include "path/step_throttle.h"

/*
 * SG_Q_ASK_AGAIN: with the Redis backend the queue cannot decide itself; a
 * call's turn means asking Redis again, and a refusal puts it back.
 */
enum sg_queue_state { SG_Q_NONE, SG_Q_WAITING, SG_Q_ADMITTED, SG_Q_EXPIRED, SG_Q_ASK_AGAIN };

struct sg_remote;

struct sg_throttle_call {
	struct sg_req *r; /* the queue links only qitem; this finds the request again */
	struct sg_limiter_ids ids;
	bool has_verdict; /* verdict holds a decision or a peek at the standing */
	struct sg_verdict verdict;
	struct sg_adaptive *adaptive; /* a place held in the upstream's adaptive limit */
	uint64_t upstream_ns;         /* how long the upstream took, from route */
	struct sg_remote *remote;     /* while Redis decides (step_throttle_redis.c); owned */
	struct sg_spend_hold spend;   /* live calls: the cost held against budgets */
	struct {
		bool call, window; /* a call counted, a window unit taken */
		int64_t cost;      /* micro-units held against the session's budget */
	} session_hold;
	enum sg_queue_state queue_state;
	struct sg_fairq_item qitem; /* while waiting in a tenant queue */
};

/* The request's throttle state, made on first use; NULL only if the arena is too small. */
struct sg_throttle_call *sg_throttle_call(struct sg_req *r);

/* Refuses the call with tc->verdict's violations (429, violated-policies). */
enum sg_step_rc sg_throttle_refuse(struct sg_req *r, struct sg_throttle_call *tc);

/* step_throttle_queue.c: a refused call waits its turn when that can help; else refused. */
enum sg_step_rc sg_throttle_queue_or_refuse(struct sg_req *r, struct sg_throttle_call *tc);
/* The wait reached its deadline: the limit that held the call back is named. */
enum sg_step_rc sg_throttle_refuse_after_wait(struct sg_req *r, struct sg_throttle_call *tc);
/* The call's turn came at `now`: it leaves the queue admitted. */
void sg_throttle_note_admitted(struct sg_throttle_call *tc, uint64_t now);
/*
 * For the fair queue: tries a waiting call again at `now`.  True when
 * admitted (its queue state becomes ADMITTED); otherwise tc->qitem's
 * ready_at says when it may fit.
 */
bool sg_throttle_retry(struct sg_req *r, struct sg_throttle_call *tc, uint64_t now);

/* step_throttle_redis.c: the windows decided in Redis, caps here; may suspend. */
enum sg_step_rc sg_throttle_remote(struct sg_req *r, struct sg_throttle_call *tc,
                                   const struct sg_rule_list *rl);
/* The call has been (or is being) decided by the Redis half. */
bool sg_throttle_remote_pending(const struct sg_throttle_call *tc);
void sg_throttle_remote_charge(struct sg_req *r, struct sg_throttle_call *tc, uint32_t extra);
/* Gives back the Redis windows an admitted call was charged in. */
void sg_throttle_remote_refund(struct sg_req *r, struct sg_throttle_call *tc);
void sg_throttle_remote_free(struct sg_throttle_call *tc);
/* Forgets Redis's last answer so the call asks again (its turn in the queue came). */
void sg_throttle_remote_reset(struct sg_throttle_call *tc);

#endif
