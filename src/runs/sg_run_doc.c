/*
 * How a run ended, in words a citizen developer can act on.  Codes and
 * limit names are API (docs/sandbox.md); the sentences may change.
 */
#include "runs/sg_run_doc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "sandbox/sg_worker.h"

int
sg_run_doc_init(struct sg_run_doc *d)
{
	d->logs = json_array();
	d->calls = json_array();
	d->status = SG_RUN_RUNNING;
	return d->logs && d->calls ? 0 : -1;
}

void
sg_run_doc_clear(struct sg_run_doc *d)
{
	json_decref(d->output);
	json_decref(d->logs);
	json_decref(d->calls);
	d->output = d->logs = d->calls = NULL;
}

static void
fail(struct sg_run_doc *d, enum sg_problem_code p, const char *code, int line, const char *msg)
{
	d->status = SG_RUN_FAILED;
	d->problem = p;
	d->line = line;
	snprintf(d->error_code, sizeof(d->error_code), "%s", code);
	snprintf(d->message, sizeof(d->message), "%s", msg);
}

void
sg_run_doc_limit(struct sg_run_doc *d, const char *limit, uint64_t value, const char *unit)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "the run went over its %s limit", limit);
	fail(d, SG_P_TEMPLATE_LIMIT, "limit_exceeded", 0, msg);
	snprintf(d->limit, sizeof(d->limit), "%s", limit);
	d->limit_value = value;
	d->limit_unit = unit;
}

/* The Lua layer's guards name themselves in the message; it is a size or complexity cap. */
static void
done_limit(struct sg_run_doc *d, const struct sg_frame_done *f,
           const struct sg_template_limits *lim)
{
	switch (f->stop) {
	case SG_STOP_INSTRUCTIONS:
		sg_run_doc_limit(d, "instructions", lim->instructions, "instructions");
		break;
	case SG_STOP_MEMORY:
		sg_run_doc_limit(d, "memory", lim->memory_bytes, "bytes");
		break;
	case SG_STOP_CALLS:
		sg_run_doc_limit(d, "calls", lim->calls, "calls");
		break;
	default: /* SG_STOP_GUARD */
		sg_run_doc_limit(d, "string_operation", 0, NULL);
		break;
	}
	d->line = f->line;
	if (f->message)
		snprintf(d->message, sizeof(d->message), "%s", f->message);
}

void
sg_run_doc_done(struct sg_run_doc *d, const struct sg_frame_done *f,
                const struct sg_template_limits *lim)
{
	d->instructions = f->instructions;
	d->peak_memory = f->peak_memory;
	if (f->logs != NULL) { /* a decoded DONE always has them; keep [] otherwise */
		json_decref(d->logs);
		d->logs = json_incref(f->logs);
	}
	switch (f->stop) {
	case SG_STOP_OK:
		d->status = SG_RUN_SUCCEEDED;
		d->output = json_incref(f->output);
		return;
	case SG_STOP_COMPILE_ERROR:
		fail(d, SG_P_TEMPLATE_FAILED, "compile_error", f->line, f->message);
		return;
	case SG_STOP_SCRIPT_ERROR:
		fail(d, SG_P_TEMPLATE_FAILED, "script_error", f->line, f->message);
		return;
	case SG_STOP_BAD_RESULT:
		fail(d, SG_P_TEMPLATE_FAILED, "bad_result", f->line, f->message);
		return;
	case SG_STOP_NO_RUN:
		fail(d, SG_P_TEMPLATE_FAILED, "no_run_function", f->line, f->message);
		return;
	default:
		done_limit(d, f, lim);
		return;
	}
}

static const char *
exit_reason(int code)
{
	switch (code) {
	case SG_WORKER_EXIT_SETUP:
		return "it could not confine itself";
	case SG_WORKER_EXIT_PROTOCOL:
		return "it received a message it did not expect";
	case SG_WORKER_EXIT_IO:
		return "its connection to the gateway failed";
	case SG_WORKER_EXIT_MEMORY:
		return "it ran out of memory outside the script";
	default:
		return "it stopped before the run ended";
	}
}

void
sg_run_doc_vanished(struct sg_run_doc *d, bool have_status, int status, bool oom_killed,
                    uint64_t tenant_memory)
{
	char msg[256];
	if (oom_killed) {
		sg_run_doc_limit(d, "tenant_memory", tenant_memory, "bytes");
		snprintf(d->message, sizeof(d->message),
		         "your team's runs together went over the sandbox memory ceiling");
	} else if (have_status && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		fail(d, SG_P_SANDBOX_VIOLATION, "forbidden_syscall", 0,
		     "the worker made a system call the sandbox forbids and was stopped (SIGSYS)");
	} else if (have_status && WIFSIGNALED(status)) {
		snprintf(msg, sizeof(msg),
		         "the worker running the template crashed (signal %d, %s)",
		         WTERMSIG(status), strsignal(WTERMSIG(status)));
		fail(d, SG_P_SANDBOX_VIOLATION, "worker_crashed", 0, msg);
	} else if (have_status && WIFEXITED(status)) {
		snprintf(msg, sizeof(msg), "the worker running the template exited: %s",
		         exit_reason(WEXITSTATUS(status)));
		fail(d, SG_P_SANDBOX_VIOLATION, "worker_crashed", 0, msg);
	} else {
		fail(d, SG_P_SANDBOX_VIOLATION, "worker_crashed", 0,
		     "the worker running the template stopped without a word");
	}
}

void
sg_run_doc_protocol(struct sg_run_doc *d, const char *why)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "the worker broke the sandbox protocol and was stopped: %s",
	         why);
	fail(d, SG_P_SANDBOX_VIOLATION, "worker_crashed", 0, msg);
}

/* ---- rendering ---- */

static const char *
remediation(const struct sg_run_doc *d, char *buf, size_t n)
{
	const char *c = d->error_code;
	if (strcmp(c, "compile_error") == 0)
		snprintf(buf, n,
		         "main.lua does not compile: fix line %d, then apply the template "
		         "again.",
		         d->line);
	else if (strcmp(c, "script_error") == 0)
		snprintf(buf, n,
		         "main.lua raised this error at line %d while running. Check that "
		         "line and the input you sent; a refused ctx.call raises an error "
		         "with its code, which pcall can catch.",
		         d->line);
	else if (strcmp(c, "no_run_function") == 0)
		snprintf(buf, n, "main.lua must define: function run(input, ctx) ... end");
	else if (strcmp(c, "bad_result") == 0)
		snprintf(buf, n,
		         "run() must return what JSON can hold (tables, strings, numbers, "
		         "booleans, nil), with no cycles, and small enough to send back.");
	else if (strcmp(c, "forbidden_syscall") == 0)
		snprintf(buf, n,
		         "Templates cannot reach files, the network or other programs: use "
		         "ctx.call for everything outside the script. Tell the template's "
		         "maker and your platform admin, with the run id.");
	else if (strcmp(c, "worker_crashed") == 0)
		snprintf(buf, n,
		         "Nothing outside the sandbox was affected. Run it again; if it keeps "
		         "happening, tell your platform admin, with the run id.");
	else
		buf[0] = '\0';
	return buf;
}

static const char *
limit_remedy(const struct sg_run_doc *d, char *buf, size_t n)
{
	if (strcmp(d->limit, "tenant_memory") == 0)
		snprintf(buf, n,
		         "Your team's template runs share a memory ceiling. Wait for other "
		         "runs to finish, or ask your platform admin to raise "
		         "sandbox.tenant_memory.");
	else if (strcmp(d->limit, "string_operation") == 0)
		snprintf(buf, n,
		         "One string or table operation was too large or its pattern too "
		         "complex (see the message). Work on smaller pieces.");
	else
		snprintf(buf, n,
		         "Make the template do less work per run, or ask its maker to raise "
		         "limits.%s in template.yaml.",
		         d->limit);
	return buf;
}

static json_t *
error_json(const struct sg_run_doc *d)
{
	char rem[400];
	if (d->status != SG_RUN_FAILED)
		return json_null();
	return json_pack("{s:s, s:s, s:o, s:s}", "code", d->error_code, "message", d->message,
	                 "line", d->line > 0 ? json_integer(d->line) : json_null(), "remediation",
	                 remediation(d, rem, sizeof(rem)));
}

static json_t *
stopped_by_json(const struct sg_run_doc *d)
{
	char rem[400];
	if (d->limit[0] == '\0')
		return json_null();
	return json_pack("{s:s, s:o, s:s?, s:s}", "limit", d->limit, "value",
	                 d->limit_unit ? json_integer((json_int_t)d->limit_value) : json_null(),
	                 "unit", d->limit_unit, "remediation", limit_remedy(d, rem, sizeof(rem)));
}

static void
iso_time(int64_t us, char *out, size_t n)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + len, n - len, ".%03dZ", (int)(us / 1000 % 1000));
}

json_t *
sg_run_doc_json(const struct sg_run_doc *d)
{
	static const char *const status[] = {"running", "succeeded", "failed"};
	char started[40], ended[40];
	iso_time(d->started_us, started, sizeof(started));
	iso_time(d->ended_us, ended, sizeof(ended));
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:O?, s:o, s:o, s:O, s:O, "
	    "s:{s:f, s:f, s:I, s:I, s:i}, s:i}",
	    "id", d->id, "template", d->template_name, "version", d->version, "status",
	    status[d->status], "tenant", d->tenant, "user", d->user, "mode", d->mode, "trace_id",
	    d->trace.trace_id, "started_at", started, "ended_at",
	    d->status == SG_RUN_RUNNING ? NULL : ended, "output",
	    d->status == SG_RUN_SUCCEEDED ? (d->output ? d->output : json_null()) : NULL, "error",
	    error_json(d), "stopped_by", stopped_by_json(d), "logs", d->logs, "calls", d->calls,
	    "usage", "wall_ms", d->wall_ms, "cpu_ms", d->cpu_ms, "peak_memory_bytes",
	    (json_int_t)d->peak_memory, "instructions", (json_int_t)d->instructions, "calls",
	    (int)d->n_calls, "worker_pid", (int)d->worker_pid);
}
