/*
 * Frame messages: the JSON object of each message type, checked member by
 * member.  One parse function per type serves both directions: the
 * receiver runs it on what arrived, and the sender runs it on what it
 * built, so the two sides can never disagree about what is valid.
 */
#include "sandbox/sg_frame.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define U32_MAX_ ((uint64_t)UINT32_MAX)
#define WIRE_INT_MAX ((uint64_t)INT64_MAX) /* jansson integers are signed */

static const char *const type_names[] = {
    [SG_FRAME_READY] = "ready", [SG_FRAME_RUN] = "run",
    [SG_FRAME_CALL] = "call",   [SG_FRAME_CALL_RESULT] = "call_result",
    [SG_FRAME_DONE] = "done",
};

static const char *const stop_names[] = {
    [SG_STOP_OK] = "ok",
    [SG_STOP_COMPILE_ERROR] = "compile_error",
    [SG_STOP_SCRIPT_ERROR] = "script_error",
    [SG_STOP_INSTRUCTIONS] = "instructions",
    [SG_STOP_MEMORY] = "memory",
    [SG_STOP_CALLS] = "calls",
    [SG_STOP_GUARD] = "guard",
    [SG_STOP_BAD_RESULT] = "bad_result",
    [SG_STOP_NO_RUN] = "no_run",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *
sg_frame_type_name(enum sg_frame_type t)
{
	return (size_t)t < COUNT(type_names) && type_names[t] ? type_names[t] : "?";
}

const char *
sg_frame_stop_name(enum sg_frame_stop s)
{
	return (size_t)s < COUNT(stop_names) ? stop_names[s] : "?";
}

void
sg_frame_msg_clear(struct sg_frame_msg *m)
{
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
}

/*
 * Error text quotes the peer (an unknown member, a type name), and it ends
 * up in log lines: keep only printable ASCII so a hostile worker cannot
 * forge lines or smuggle escapes.
 */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return -1;
}

/* ---- member checks ---- */

/* One JSON object being checked, and where to say what is wrong with it. */
struct fields {
	json_t *obj;
	const char *what; /* "run", "run.limits", ... */
	char *err;
	size_t errlen;
};

struct charset {
	bool (*ok)(const char *s, size_t n);
	const char *rule;
};

static bool
is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return n > 0;
}

static bool
is_lower_name(const char *s, size_t n)
{
	if (n == 0 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* "connector.operation": the names the catalog accepts, joined by one dot. */
static bool
is_capability(const char *s, size_t n)
{
	const char *dot = memchr(s, '.', n);
	if (dot == NULL)
		return false;
	size_t left = (size_t)(dot - s);
	return is_lower_name(s, left) && is_lower_name(dot + 1, n - left - 1);
}

static bool
is_error_code(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return n > 0;
}

static const struct charset token = {is_token, "printable ASCII without spaces, not empty"};
static const struct charset capability = {
    is_capability, "\"connector.operation\" of lowercase letters, digits, '_' and '-'"};
static const struct charset error_code = {is_error_code, "lowercase letters, digits and '_'"};

/* Refuses any member not in `allowed` (NULL-terminated). */
static int
only_members(const struct fields *f, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(f->obj, key, v)
	{
		size_t i = 0;
		while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
			i++;
		if (allowed[i] == NULL)
			return fail(f->err, f->errlen, "%s: unknown member \"%.32s\"", f->what,
			            key);
	}
	return 0;
}

static int
need(const struct fields *f, const char *key, json_t **out)
{
	*out = json_object_get(f->obj, key);
	if (*out == NULL)
		return fail(f->err, f->errlen, "%s: missing \"%s\"", f->what, key);
	return 0;
}

static int
string_value(const struct fields *f, const char *key, json_t *v, size_t max,
             const struct charset *cs, const char **out)
{
	if (!json_is_string(v))
		return fail(f->err, f->errlen, "%s: \"%s\" must be a string", f->what, key);
	size_t n = json_string_length(v);
	if (n > max)
		return fail(f->err, f->errlen, "%s: \"%s\" is %zu bytes, over the %zu-byte cap",
		            f->what, key, n, max);
	if (cs != NULL && !cs->ok(json_string_value(v), n))
		return fail(f->err, f->errlen, "%s: \"%s\" must be %s", f->what, key, cs->rule);
	*out = json_string_value(v);
	return 0;
}

static int
string_member(const struct fields *f, const char *key, size_t max, const struct charset *cs,
              const char **out)
{
	json_t *v;
	return need(f, key, &v) == -1 ? -1 : string_value(f, key, v, max, cs, out);
}

static int
uint_value(const struct fields *f, const char *key, json_t *v, uint64_t min, uint64_t max,
           uint64_t *out)
{
	json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
	if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return fail(f->err, f->errlen,
		            "%s: \"%s\" must be an integer from %" PRIu64 " to %" PRIu64, f->what,
		            key, min, max);
	*out = (uint64_t)x;
	return 0;
}

static int
uint_member(const struct fields *f, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *v;
	return need(f, key, &v) == -1 ? -1 : uint_value(f, key, v, min, max, out);
}

static int
u32_member(const struct fields *f, const char *key, uint64_t min, uint32_t *out)
{
	uint64_t x;
	if (uint_member(f, key, min, U32_MAX_, &x) == -1)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static int
object_member(const struct fields *f, const char *key, json_t **out)
{
	if (need(f, key, out) == -1)
		return -1;
	if (!json_is_object(*out))
		return fail(f->err, f->errlen, "%s: \"%s\" must be an object", f->what, key);
	return 0;
}

/* ---- one parse function per message type ---- */

static int
parse_ready(const struct fields *f, struct sg_frame_ready *r)
{
	static const char *const allowed[] = {"type", "pid", NULL};
	json_t *pid = json_object_get(f->obj, "pid");
	uint64_t x = 0;
	if (only_members(f, allowed) == -1)
		return -1;
	if (pid != NULL && uint_value(f, "pid", pid, 1, INT32_MAX, &x) == -1)
		return -1;
	r->pid = (int32_t)x;
	return 0;
}

static int
parse_limits(const struct fields *run, struct sg_frame_limits *l)
{
	static const char *const allowed[] = {"instructions", "memory_bytes", "calls", "log_bytes",
	                                      NULL};
	struct fields f = {NULL, "run.limits", run->err, run->errlen};
	if (object_member(run, "limits", &f.obj) == -1 || only_members(&f, allowed) == -1)
		return -1;
	if (uint_member(&f, "instructions", 0, WIRE_INT_MAX, &l->instructions) == -1 ||
	    uint_member(&f, "memory_bytes", 0, WIRE_INT_MAX, &l->memory_bytes) == -1 ||
	    u32_member(&f, "calls", 0, &l->calls) == -1 ||
	    u32_member(&f, "log_bytes", 0, &l->log_bytes) == -1)
		return -1;
	return 0;
}

static int
parse_run(const struct fields *f, struct sg_frame_run *r)
{
	static const char *const allowed[] = {"type",  "run_id", "template", "source",
	                                      "input", "limits", NULL};
	if (only_members(f, allowed) == -1 ||
	    string_member(f, "run_id", SG_FRAME_RUN_ID_MAX, &token, &r->run_id) == -1 ||
	    string_member(f, "template", SG_FRAME_TEMPLATE_MAX, &token, &r->template_name) == -1 ||
	    string_member(f, "source", SG_FRAME_SOURCE_MAX, NULL, &r->source) == -1 ||
	    need(f, "input", &r->input) == -1)
		return -1;
	return parse_limits(f, &r->limits);
}

static int
parse_call(const struct fields *f, struct sg_frame_call *c)
{
	static const char *const allowed[] = {"type", "seq", "capability", "args", NULL};
	if (only_members(f, allowed) == -1 || u32_member(f, "seq", 1, &c->seq) == -1 ||
	    string_member(f, "capability", SG_FRAME_CAPABILITY_MAX, &capability, &c->capability) ==
	        -1)
		return -1;
	return object_member(f, "args", &c->args);
}

static int
parse_call_result(const struct fields *f, struct sg_frame_call_result *c)
{
	static const char *const allowed[] = {"type", "seq", "result", "error", NULL};
	static const char *const error_allowed[] = {"code", "detail", NULL};
	if (only_members(f, allowed) == -1 || u32_member(f, "seq", 1, &c->seq) == -1)
		return -1;
	c->result = json_object_get(f->obj, "result");
	struct fields e = {json_object_get(f->obj, "error"), "call_result.error", f->err,
	                   f->errlen};
	if ((c->result == NULL) == (e.obj == NULL))
		return fail(f->err, f->errlen,
		            "call_result: needs exactly one of \"result\" and \"error\"");
	if (c->result != NULL)
		return 0;
	if (!json_is_object(e.obj))
		return fail(f->err, f->errlen, "call_result: \"error\" must be an object");
	if (only_members(&e, error_allowed) == -1 ||
	    string_member(&e, "code", SG_FRAME_ERROR_CODE_MAX, &error_code, &c->error_code) == -1)
		return -1;
	return string_member(&e, "detail", SG_FRAME_ERROR_DETAIL_MAX, NULL, &c->error_detail);
}

static int
parse_stop(const struct fields *f, enum sg_frame_stop *out)
{
	const char *name;
	if (string_member(f, "stop", 32, NULL, &name) == -1)
		return -1;
	for (size_t i = 0; i < COUNT(stop_names); i++)
		if (strcmp(name, stop_names[i]) == 0) {
			*out = (enum sg_frame_stop)i;
			return 0;
		}
	return fail(f->err, f->errlen, "done: unknown stop \"%.32s\"", name);
}

static int
parse_logs(const struct fields *f, json_t **out)
{
	json_t *line;
	size_t i;
	const char *s;
	if (need(f, "logs", out) == -1)
		return -1;
	if (!json_is_array(*out))
		return fail(f->err, f->errlen, "done: \"logs\" must be an array of strings");
	if (json_array_size(*out) > SG_FRAME_LOGS_MAX)
		return fail(f->err, f->errlen, "done: \"logs\" has %zu lines, over the cap of %d",
		            json_array_size(*out), SG_FRAME_LOGS_MAX);
	json_array_foreach(*out, i, line)
	{
		if (string_value(f, "logs[]", line, SG_FRAME_LOG_LINE_MAX, NULL, &s) == -1)
			return -1;
	}
	return 0;
}

/* Output when the run succeeded; message and line when it did not. */
static int
parse_outcome(const struct fields *f, struct sg_frame_done *d)
{
	uint64_t line = 0;
	d->output = json_object_get(f->obj, "output");
	bool ok = d->stop == SG_STOP_OK;
	if (ok != (d->output != NULL))
		return fail(f->err, f->errlen, "done: \"output\" must be sent %s",
		            ok ? "when stop is \"ok\"" : "only when stop is \"ok\"");
	if (ok) {
		if (json_object_get(f->obj, "message") || json_object_get(f->obj, "line"))
			return fail(
			    f->err, f->errlen,
			    "done: \"message\" and \"line\" are only sent when the run failed");
		return 0;
	}
	if (string_member(f, "message", SG_FRAME_MESSAGE_MAX, NULL, &d->message) == -1 ||
	    uint_member(f, "line", 0, INT32_MAX, &line) == -1)
		return -1;
	d->line = (int32_t)line;
	return 0;
}

static int
parse_done(const struct fields *f, struct sg_frame_done *d)
{
	static const char *const allowed[] = {"type",        "run_id",  "stop", "output",
	                                      "logs",        "message", "line", "instructions",
	                                      "peak_memory", "calls",   NULL};
	if (only_members(f, allowed) == -1 ||
	    string_member(f, "run_id", SG_FRAME_RUN_ID_MAX, &token, &d->run_id) == -1 ||
	    parse_stop(f, &d->stop) == -1 || parse_outcome(f, d) == -1 ||
	    parse_logs(f, &d->logs) == -1 ||
	    uint_member(f, "instructions", 0, WIRE_INT_MAX, &d->instructions) == -1 ||
	    uint_member(f, "peak_memory", 0, WIRE_INT_MAX, &d->peak_memory) == -1)
		return -1;
	return u32_member(f, "calls", 0, &d->calls);
}

/* ---- decoding: one dispatch per peer ---- */

/* Parses the payload and its "type"; on failure nothing is left allocated. */
static int
load_payload(const void *payload, size_t len, json_t **root, enum sg_frame_type *t, char *err,
             size_t errlen)
{
	json_error_t jerr;
	*root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*root == NULL)
		return fail(err, errlen, "payload is not JSON: %.80s (byte %d)", jerr.text,
		            jerr.position);
	json_t *type = json_object_get(*root, "type");
	const char *name = json_string_value(type);
	int rc = -1;
	if (!json_is_object(*root))
		fail(err, errlen, "payload is not a JSON object");
	else if (name == NULL)
		fail(err, errlen, "payload has no string \"type\"");
	else
		for (size_t i = 1; i < COUNT(type_names) && rc == -1; i++)
			if (strcmp(name, type_names[i]) == 0) {
				*t = (enum sg_frame_type)i;
				rc = 0;
			}
	if (rc == -1 && name != NULL)
		fail(err, errlen, "unknown message type \"%.32s\"", name);
	if (rc == -1) {
		json_decref(*root);
		*root = NULL;
	}
	return rc;
}

static int
finish_decode(int rc, json_t *root, enum sg_frame_type t, struct sg_frame_msg *m)
{
	if (rc == -1) {
		json_decref(root);
		memset(m, 0, sizeof(*m));
		return -1;
	}
	m->type = t;
	m->root = root;
	return 0;
}

int
sg_frame_decode_from_worker(const void *payload, size_t len, struct sg_frame_msg *m, char *err,
                            size_t errlen)
{
	json_t *root;
	enum sg_frame_type t;
	memset(m, 0, sizeof(*m));
	if (load_payload(payload, len, &root, &t, err, errlen) == -1)
		return -1;
	struct fields f = {root, sg_frame_type_name(t), err, errlen};
	int rc;
	switch (t) {
	case SG_FRAME_READY:
		rc = parse_ready(&f, &m->ready);
		break;
	case SG_FRAME_CALL:
		rc = parse_call(&f, &m->call);
		break;
	case SG_FRAME_DONE:
		rc = parse_done(&f, &m->done);
		break;
	default:
		rc = fail(err, errlen, "a worker may not send \"%s\"", sg_frame_type_name(t));
		break;
	}
	return finish_decode(rc, root, t, m);
}

int
sg_frame_decode_from_gateway(const void *payload, size_t len, struct sg_frame_msg *m, char *err,
                             size_t errlen)
{
	json_t *root;
	enum sg_frame_type t;
	memset(m, 0, sizeof(*m));
	if (load_payload(payload, len, &root, &t, err, errlen) == -1)
		return -1;
	struct fields f = {root, sg_frame_type_name(t), err, errlen};
	int rc;
	switch (t) {
	case SG_FRAME_RUN:
		rc = parse_run(&f, &m->run);
		break;
	case SG_FRAME_CALL_RESULT:
		rc = parse_call_result(&f, &m->call_result);
		break;
	default:
		rc = fail(err, errlen, "the gateway may not send \"%s\"", sg_frame_type_name(t));
		break;
	}
	return finish_decode(rc, root, t, m);
}

/* ---- encoding ---- */

/* Values jansson cannot carry become -1, which the checks then refuse by name. */
static json_int_t
wire_int(uint64_t v)
{
	return v > WIRE_INT_MAX ? -1 : (json_int_t)v;
}

static json_t *
build_done(const struct sg_frame_done *d, json_error_t *jerr)
{
	json_t *o =
	    json_pack_ex(jerr, 0, "{s:s, s:s*, s:s, s:O*, s:I, s:I, s:I}", "type", "done", "run_id",
	                 d->run_id, "stop", sg_frame_stop_name(d->stop), "output", d->output,
	                 "instructions", wire_int(d->instructions), "peak_memory",
	                 wire_int(d->peak_memory), "calls", (json_int_t)d->calls);
	if (o == NULL)
		return NULL;
	int rc = json_object_set_new(o, "logs", d->logs ? json_incref(d->logs) : json_array());
	if (d->message != NULL) {
		rc |= json_object_set_new(o, "message", json_string(d->message));
		rc |= json_object_set_new(o, "line", json_integer(d->line));
	}
	if (rc != 0)
		snprintf(jerr->text, sizeof(jerr->text), "out of memory or invalid UTF-8");
	return rc == 0 ? o : (json_decref(o), NULL);
}

static json_t *
build_call_result(const struct sg_frame_call_result *c, json_error_t *jerr)
{
	json_t *o = json_pack_ex(jerr, 0, "{s:s, s:I, s:O*}", "type", "call_result", "seq",
	                         (json_int_t)c->seq, "result", c->result);
	if (o == NULL || (c->error_code == NULL && c->error_detail == NULL))
		return o;
	json_t *e =
	    json_pack_ex(jerr, 0, "{s:s*, s:s*}", "code", c->error_code, "detail", c->error_detail);
	if (e == NULL || json_object_set_new(o, "error", e) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
build(const struct sg_frame_msg *m, json_error_t *jerr)
{
	const struct sg_frame_run *r = &m->run;
	switch (m->type) {
	case SG_FRAME_READY:
		return m->ready.pid == 0 ? json_pack_ex(jerr, 0, "{s:s}", "type", "ready")
		                         : json_pack_ex(jerr, 0, "{s:s, s:i}", "type", "ready",
		                                        "pid", (int)m->ready.pid);
	case SG_FRAME_RUN:
		return json_pack_ex(
		    jerr, 0, "{s:s, s:s*, s:s*, s:s*, s:O*, s:{s:I, s:I, s:I, s:I}}", "type", "run",
		    "run_id", r->run_id, "template", r->template_name, "source", r->source, "input",
		    r->input, "limits", "instructions", wire_int(r->limits.instructions),
		    "memory_bytes", wire_int(r->limits.memory_bytes), "calls",
		    (json_int_t)r->limits.calls, "log_bytes", (json_int_t)r->limits.log_bytes);
	case SG_FRAME_CALL:
		return json_pack_ex(jerr, 0, "{s:s, s:I, s:s*, s:O*}", "type", "call", "seq",
		                    (json_int_t)m->call.seq, "capability", m->call.capability,
		                    "args", m->call.args);
	case SG_FRAME_CALL_RESULT:
		return build_call_result(&m->call_result, jerr);
	case SG_FRAME_DONE:
		return build_done(&m->done, jerr);
	}
	snprintf(jerr->text, sizeof(jerr->text), "unknown message type %d", (int)m->type);
	return NULL;
}

/* The receiver's checks, run by the sender on what it built. */
static int
check_built(enum sg_frame_type t, json_t *o, char *err, size_t errlen)
{
	struct fields f = {o, sg_frame_type_name(t), err, errlen};
	struct sg_frame_msg scratch;
	switch (t) {
	case SG_FRAME_READY:
		return parse_ready(&f, &scratch.ready);
	case SG_FRAME_RUN:
		return parse_run(&f, &scratch.run);
	case SG_FRAME_CALL:
		return parse_call(&f, &scratch.call);
	case SG_FRAME_CALL_RESULT:
		return parse_call_result(&f, &scratch.call_result);
	case SG_FRAME_DONE:
		return parse_done(&f, &scratch.done);
	}
	return fail(err, errlen, "unknown message type %d", (int)t); /* build() refused it first */
}

json_t *
sg_frame_msg_json(const struct sg_frame_msg *m, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = build(m, &jerr);
	if (o == NULL) {
		fail(err, errlen, "%s: cannot build the message: %.80s",
		     sg_frame_type_name(m->type), jerr.text);
		return NULL;
	}
	if (check_built(m->type, o, err, errlen) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}
