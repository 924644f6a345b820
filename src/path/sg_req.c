#include "path/sg_req.h"
#include "path/sg_path.h"
#include "upstream/sg_fetch.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

void
sg_req_init(struct sg_req *r, struct sg_gateway *gw, struct sg_snapshot *snap)
{
	/* The arena is not cleared: each context is zeroed when a step makes it. */
	memset(r, 0, offsetof(struct sg_req, arena));
	r->gw = gw;
	r->snap = snap;
	r->status = 200;
	r->decision = SG_DEC_ALLOWED;
}

void *
sg_req_slot_get(struct sg_req *r, enum sg_slot s, size_t size, sg_slot_release_fn release)
{
	if (r->slot[s].ctx != NULL)
		return r->slot[s].ctx;
	size_t at = (r->arena_used + 15) & ~(size_t)15;
	if (size > sizeof(r->arena) || at > sizeof(r->arena) - size)
		return NULL;
	void *ctx = r->arena + at;
	memset(ctx, 0, size);
	r->arena_used = at + size;
	r->slot[s].ctx = ctx;
	r->slot[s].release = release;
	return ctx;
}

void
sg_req_finish(struct sg_req *r)
{
	for (int s = SG_SLOT_COUNT - 1; s >= 0; s--) {
		void *ctx = r->slot[s].ctx;
		r->slot[s].ctx = NULL;
		if (ctx != NULL && r->slot[s].release != NULL)
			r->slot[s].release(r, ctx);
	}
	if (r->in_flight)
		atomic_fetch_sub_explicit(&r->gw->in_flight, 1, memory_order_relaxed);
	r->in_flight = false;
	sg_session_unref(r->principal.session);
	r->principal.session = NULL;
	sg_jbuf_release(&r->output);
	sg_jbuf_release(&r->problem_ext);
	sg_jbuf_release(&r->screened_body);
}

static enum sg_step_rc
fail_v(struct sg_req *r, const struct sg_problem_def *def, const char *fmt, va_list ap)
{
	r->problem = def;
	r->status = def->status;
	r->decision = def->decision;
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	return SG_STEP_STOP;
}

enum sg_step_rc
sg_req_fail(struct sg_req *r, enum sg_problem_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum sg_step_rc rc = fail_v(r, sg_problem_def(code), fmt, ap);
	va_end(ap);
	return rc;
}

enum sg_step_rc
sg_req_fail_def(struct sg_req *r, const struct sg_problem_def *def, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum sg_step_rc rc = fail_v(r, def ? def : sg_problem_def(SG_P_UPSTREAM_ERROR), fmt, ap);
	va_end(ap);
	return rc;
}

int
sg_req_problem_write(struct sg_req *r, struct sg_jbuf *out)
{
	const struct sg_problem_def *def = r->problem ? r->problem : sg_problem_def(SG_P_INTERNAL);
	return sg_problem_write(out, def, r->detail[0] ? r->detail : NULL, r->trace.trace_id, NULL,
	                        &r->problem_ext);
}

static const char *const fetch_errors[] = {
    [SG_FETCH_OK] = "",
    [SG_FETCH_REFUSED] = "egress_refused",
    [SG_FETCH_RESOLVE] = "resolve",
    [SG_FETCH_CONNECT] = "connect",
    [SG_FETCH_TLS] = "tls",
    [SG_FETCH_TIMEOUT] = "timeout",
    [SG_FETCH_TOO_LARGE] = "too_large",
    [SG_FETCH_PROTOCOL] = "protocol",
    [SG_FETCH_CANCELLED] = "cancelled",
    [SG_FETCH_INTERNAL] = "internal",
};

static void
write_attempt(struct sg_jw *w, const struct sg_attempt *a)
{
	sg_jw_object(w);
	sg_jw_keyz(w, "at_ms");
	sg_jw_double(w, a->at_us / 1000.0);
	sg_jw_keyz(w, "ms");
	sg_jw_double(w, a->took_us / 1000.0);
	if (a->waited_us) {
		sg_jw_keyz(w, "wait_ms");
		sg_jw_double(w, a->waited_us / 1000.0);
	}
	if (a->status) {
		sg_jw_keyz(w, "status");
		sg_jw_int(w, a->status);
	}
	if (a->error && a->error < sizeof(fetch_errors) / sizeof(fetch_errors[0])) {
		sg_jw_keyz(w, "error");
		sg_jw_stringz(w, fetch_errors[a->error]);
	}
	if (a->failover) {
		sg_jw_keyz(w, "failover");
		sg_jw_bool(w, true);
	}
	sg_jw_object_end(w);
}

int
sg_req_attempts_write(const struct sg_req *r, struct sg_jbuf *out)
{
	struct sg_jw w;
	sg_jw_begin(&w, out);
	sg_jw_array(&w);
	for (size_t i = 0; i < r->n_attempts; i++)
		write_attempt(&w, &r->attempts[i]);
	sg_jw_array_end(&w);
	return sg_jw_end(&w);
}
