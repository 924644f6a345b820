/*
 * sg_problem: every error a client can see, as RFC 9457 problem details.
 * Each code has a fixed status, title, type and a remediation written for a
 * citizen developer: what to do next, in plain words.  Codes are API: tests
 * and clients match on them, so never rename one.
 */
#ifndef SG_PROBLEM_H
#define SG_PROBLEM_H

#include <stddef.h>

#include "json/sg_json.h"

enum sg_problem_code {
	SG_P_KEY_MISSING,
	SG_P_KEY_MALFORMED,
	SG_P_KEY_UNKNOWN,
	SG_P_KEY_EXPIRED,
	SG_P_KEY_REVOKED,
	SG_P_SESSION_UNKNOWN,
	SG_P_SESSION_EXPIRED,
	SG_P_SESSION_SPENT,
	SG_P_SESSION_LIMIT,
	SG_P_ROLE_UNKNOWN,
	SG_P_MODE_NOT_ALLOWED,
	SG_P_OPERATION_NOT_ALLOWED,
	SG_P_CONNECTOR_NOT_FOUND,
	SG_P_OPERATION_NOT_FOUND,
	SG_P_ROUTE_NOT_FOUND,
	SG_P_METHOD_NOT_ALLOWED,
	SG_P_UNSUPPORTED_MEDIA_TYPE,
	SG_P_MALFORMED_JSON,
	SG_P_BODY_TOO_LARGE,
	SG_P_NESTED_TOO_DEEPLY,
	SG_P_INVALID_INPUT,
	SG_P_REQUEST_INVALID,
	SG_P_RATE_LIMITED,
	SG_P_CONCURRENCY_LIMITED,
	SG_P_BUDGET_EXCEEDED,
	SG_P_PRIORITY_INVALID,
	SG_P_CAPACITY,
	SG_P_LIVE_UNAVAILABLE,
	SG_P_SIMULATOR_FAILED,
	SG_P_NOT_READY,
	SG_P_TEMPLATE_NOT_FOUND,
	SG_P_CAPABILITY_FORBIDDEN,
	SG_P_CAPABILITY_NOT_DECLARED,
	SG_P_RUNS_LIMITED,
	SG_P_RUN_UNKNOWN,
	SG_P_TEMPLATE_FAILED,
	SG_P_TEMPLATE_LIMIT,
	SG_P_SANDBOX_VIOLATION,
	SG_P_SANDBOX_UNAVAILABLE,
	SG_P_AUDIT_UNAVAILABLE,
	SG_P_INTERNAL,
	SG_P_REQUEST_TIMEOUT,
	SG_P_UNAUTHENTICATED_LIMITED,
	/* Live calls to a real upstream. */
	SG_P_UPSTREAM_CONTRACT,
	SG_P_UPSTREAM_ERROR,
	SG_P_UPSTREAM_UNAVAILABLE,
	SG_P_UPSTREAM_TIMEOUT,
	SG_P_UPSTREAM_TOO_LARGE,
	SG_P_UPSTREAM_AUTH,
	SG_P_UPSTREAM_REJECTED,
	SG_P_UPSTREAM_NOT_FOUND,
	SG_P_EGRESS_DENIED,
	SG_P_CREDENTIAL_MISSING,
	SG_P_BAD_PARAMETER,
	SG_P_REDIRECT_REFUSED,
	/* The admin API (/admin/v1/...) asked with a key of another role. */
	SG_P_ADMIN_ONLY,
	/* The data boundary (DLP screen). */
	SG_P_DLP_BLOCKED,
	SG_P_COUNT
};

/* What kind of decision a problem records in the audit trail. */
enum sg_decision_kind {
	SG_DEC_ALLOWED,
	SG_DEC_UNAUTHENTICATED,
	SG_DEC_DENIED,
	SG_DEC_NOT_FOUND,
	SG_DEC_INVALID,
	SG_DEC_THROTTLED,
	SG_DEC_ERROR,
	SG_DEC_COUNT
};

struct sg_problem_def {
	const char *code; /* stable machine code, "key_expired" */
	int status;
	const char *title;
	const char *type;        /* URI */
	const char *remediation; /* what the person should do next */
	enum sg_decision_kind decision;
};

const struct sg_problem_def *sg_problem_def(enum sg_problem_code code);
const char *sg_decision_name(enum sg_decision_kind d);

/*
 * Appends the problem+json body to `out`.  `detail` and `instance` are
 * copied with CR, LF and other control characters replaced by spaces (and
 * bytes that are not UTF-8 by '?'), since they may echo client input.
 * `ext` (NULL or empty: none) holds one JSON object, written by sg_jw,
 * whose members are added after the standard ones (a standard member is
 * never replaced).  Returns 0, or -1 out of memory or when `ext` is not
 * one object (out->len is restored).
 */
int sg_problem_write(struct sg_jbuf *out, const struct sg_problem_def *def, const char *detail,
                     const char *trace_id, const char *instance, const struct sg_jbuf *ext);

/* Copies `in` into `out` (size n), replacing control characters with spaces. */
void sg_problem_sanitize(char *out, size_t n, const char *in);

#endif
