/*
 * worker: one confined process, one socket, one template run at a time.
 *
 * Everything that would need a system call the filter forbids happens
 * before sg_isolate_confine(): jansson seeds its hash from /dev/urandom on
 * the first object, tzset() reads /etc/localtime, and a locale other than
 * C would make strerror() open message catalogs.  After confinement the
 * worker only computes, allocates, reads the clock and reads or writes its
 * socket, with read/write/send (never sendmsg/recvmsg, never stdio: stdio's
 * first use calls fstat, which the filter kills).
 *
 * Errors are not reported to the gateway (the protocol has no frame for
 * them, and an untrusted side's complaints are worth little): the worker
 * leaves with a status from enum sg_worker_exit, which the zygote passes on.
 */
#include "core/sg_io.h"
#include "sandbox/sg_worker.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sandbox/sg_frame.h"
#include "sandbox/sg_lua_env.h"

struct worker {
	int fd;
	size_t cap;
	struct sg_frame_decoder *dec;
	uint32_t seq; /* the last CALL seq sent in this run */
};

void
sg_worker_opts_init(struct sg_worker_opts *o)
{
	memset(o, 0, sizeof(*o));
	sg_isolate_opts_init(&o->isolate);
	o->max_runs = 100;
	o->frame_cap = SG_FRAME_MAX;
}

/* One line on stderr, if the worker kept it; write(2) only, no stdio. */
static void
say(const char *what, const char *why)
{
	char line[400];
	int n = snprintf(line, sizeof(line), "sandgate worker: %s: %s\n", what, why);
	if (n > 0)
		(void)!write(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ---- the socket ---- */

/* Encodes m; -1 with err when the frame would be refused (too big, bad member). */
static int
send_frame(struct worker *w, const struct sg_frame_msg *m, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (sg_frame_encode(m, w->cap, &buf, &len, err, errlen) == -1)
		return -1;
	int rc = sg_write_all(w->fd, buf, len);
	free(buf);
	if (rc == -1)
		_exit(SG_WORKER_EXIT_IO); /* the gateway is gone or broke the socket */
	return 0;
}

/*
 * Reads the next frame, which must be of type `want`; leaves the process
 * on anything else.  EOF is a normal end only between runs.
 */
static void
read_frame(struct worker *w, enum sg_frame_type want, struct sg_frame_msg *m)
{
	enum sg_frame_rc rc = sg_frame_read_fd(w->fd, w->dec, m);
	if (rc == SG_FRAME_EOF)
		_exit(want == SG_FRAME_RUN ? SG_WORKER_EXIT_DONE : SG_WORKER_EXIT_IO);
	if (rc != SG_FRAME_MESSAGE)
		_exit(SG_WORKER_EXIT_PROTOCOL);
	if (m->type != want)
		_exit(SG_WORKER_EXIT_PROTOCOL); /* e.g. a CALL_RESULT nobody asked for */
}

/* ---- what the script may ask of the host ---- */

static json_t *
call_error(const char *code, const char *detail)
{
	return json_pack("{s:s, s:s}", "code", code, "detail", detail);
}

/*
 * ctx.call: one CALL out, one CALL_RESULT back with the same seq.  A call
 * that cannot become a valid frame (a malformed name, args that are not an
 * object, too big) fails here, without the gateway, as invalid_call.
 */
static int
host_call(void *ud, const char *capability, json_t *args, json_t **result, json_t **error)
{
	struct worker *w = ud;
	struct sg_frame_msg m = {.type = SG_FRAME_CALL};
	char err[256];
	m.call.seq = w->seq + 1;
	m.call.capability = capability;
	m.call.args = args;
	if (send_frame(w, &m, err, sizeof(err)) == -1) {
		*error = call_error("invalid_call", err);
		return -1;
	}
	w->seq++;
	read_frame(w, SG_FRAME_CALL_RESULT, &m);
	if (m.call_result.seq != w->seq)
		_exit(SG_WORKER_EXIT_PROTOCOL); /* defensive: the decoder checks the order */
	int rc = 0;
	if (m.call_result.result != NULL) {
		*result = json_incref(m.call_result.result);
	} else {
		*error = call_error(m.call_result.error_code, m.call_result.error_detail);
		rc = -1;
	}
	sg_frame_msg_clear(&m);
	return rc;
}

static int64_t
host_now_ms(void *ud)
{
	(void)ud;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* the vDSO; allowed by the filter either way */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- DONE ---- */

static enum sg_frame_stop
frame_stop(enum sg_lua_stop s)
{
	switch (s) {
	case SG_LUA_OK:
		return SG_STOP_OK;
	case SG_LUA_COMPILE_ERROR:
		return SG_STOP_COMPILE_ERROR;
	case SG_LUA_SCRIPT_ERROR:
		return SG_STOP_SCRIPT_ERROR;
	case SG_LUA_INSTRUCTIONS:
		return SG_STOP_INSTRUCTIONS;
	case SG_LUA_MEMORY:
		return SG_STOP_MEMORY;
	case SG_LUA_CALLS:
		return SG_STOP_CALLS;
	case SG_LUA_GUARD:
		return SG_STOP_GUARD;
	case SG_LUA_BAD_RESULT:
		return SG_STOP_BAD_RESULT;
	case SG_LUA_NO_RUN:
		return SG_STOP_NO_RUN;
	}
	return SG_STOP_SCRIPT_ERROR; /* defensive: every stop is listed above */
}

/* Bytes of s[0..n) that end on a UTF-8 character boundary. */
static size_t
utf8_cut(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/*
 * The Lua layer caps the log's bytes, not its lines: a DONE frame caps
 * both the count and each line's length, so the log is made to fit here
 * rather than have the whole frame refused.  NULL when out of memory.
 */
static json_t *
fit_logs(const json_t *logs)
{
	size_t n = json_array_size(logs), keep = n, i;
	json_t *out = json_array(), *line;
	if (n > SG_FRAME_LOGS_MAX)
		keep = SG_FRAME_LOGS_MAX - 1; /* room for the note */
	for (i = 0; out != NULL && i < keep; i++) {
		line = json_array_get(logs, i);
		size_t len = json_string_length(line);
		if (len > SG_FRAME_LOG_LINE_MAX)
			len = utf8_cut(json_string_value(line), SG_FRAME_LOG_LINE_MAX);
		if (json_array_append_new(out, json_stringn(json_string_value(line), len)) != 0)
			return json_decref(out), NULL;
	}
	if (out != NULL && keep < n) {
		char note[128];
		snprintf(note, sizeof(note),
		         "[sandgate] %zu more log lines were dropped: a run keeps %d", n - keep,
		         SG_FRAME_LOGS_MAX);
		if (json_array_append_new(out, json_string(note)) != 0)
			return json_decref(out), NULL;
	}
	return out;
}

static void
send_done(struct worker *w, const char *run_id, const struct sg_lua_outcome *o)
{
	struct sg_frame_msg m = {.type = SG_FRAME_DONE};
	struct sg_frame_done *d = &m.done;
	char err[256], message[SG_FRAME_MESSAGE_MAX];
	d->run_id = run_id;
	d->stop = frame_stop(o->stop);
	d->output = d->stop == SG_STOP_OK ? o->output : NULL;
	d->message = d->stop == SG_STOP_OK ? NULL : o->message;
	d->line = o->line;
	d->instructions = o->instructions;
	d->peak_memory = o->peak_memory;
	d->calls = o->calls;
	d->logs = fit_logs(o->logs);
	if (d->logs == NULL)
		_exit(SG_WORKER_EXIT_MEMORY);
	if (send_frame(w, &m, err, sizeof(err)) == 0) {
		json_decref(d->logs);
		return;
	}
	/* Most likely an output over the frame cap: say so instead. */
	json_decref(d->logs);
	snprintf(message, sizeof(message), "the run's result cannot be sent back: %s", err);
	d->stop = SG_STOP_BAD_RESULT;
	d->output = NULL;
	d->logs = NULL;
	d->message = message;
	d->line = 0;
	if (send_frame(w, &m, err, sizeof(err)) == -1)
		_exit(SG_WORKER_EXIT_PROTOCOL); /* defensive: that frame is always valid */
}

/* ---- the loop ---- */

/* The test faults of sg_worker_opts: what a worker broken into would do. */
static void
test_fault(const struct sg_worker_opts *o, int fd, const char *template_name)
{
	static const char garbage[] = "\x00\x00\x00\x10{\"type\": \"nope\"}";
	if (o->test_fault_garbage && strcmp(o->test_fault_garbage, template_name) == 0)
		(void)!send(fd, garbage, sizeof(garbage) - 1, MSG_NOSIGNAL); /* then runs on */
	if (o->test_fault_seccomp && strcmp(o->test_fault_seccomp, template_name) == 0)
		(void)!socket(AF_INET, SOCK_STREAM, 0); /* the filter kills the process here */
	if (o->test_fault_fork && strcmp(o->test_fault_fork, template_name) == 0)
		(void)!fork(); /* clone is not on the allowlist either */
	if (o->test_fault_crash && strcmp(o->test_fault_crash, template_name) == 0)
		__builtin_trap();
}

static void
serve_run(struct worker *w, const struct sg_worker_opts *o)
{
	struct sg_frame_msg m;
	read_frame(w, SG_FRAME_RUN, &m);
	const struct sg_frame_run *run = &m.run;
	test_fault(o, w->fd, run->template_name);
	const struct sg_lua_limits lim = {
	    .instructions = run->limits.instructions,
	    .memory_bytes = (size_t)run->limits.memory_bytes,
	    .calls = run->limits.calls,
	    .log_bytes = run->limits.log_bytes,
	};
	const struct sg_lua_host host = {.ud = w, .call = host_call, .now_ms = host_now_ms};
	struct sg_lua_outcome out;
	w->seq = 0;
	sg_lua_run("main.lua", run->source, strlen(run->source), run->input, &lim, &host, &out);
	send_done(w, run->run_id, &out);
	sg_lua_outcome_clear(&out);
	sg_frame_msg_clear(&m);
}

/* What would otherwise need open(), fstat() or getrandom() once confined. */
static void
prepare(void)
{
	setlocale(LC_ALL, "C"); /* the zygote's copy may name a locale with catalogs */
	json_object_seed(0);    /* a no-op when the process it was copied from seeded already */
	tzset();
}

int
sg_worker_main(int fd, const struct sg_worker_opts *o)
{
	struct worker w = {.fd = fd, .cap = o->frame_cap ? o->frame_cap : SG_FRAME_MAX};
	struct sg_isolate_report report;
	char err[256];
	prepare();
	if (sg_isolate_confine(&o->isolate, &report, err, sizeof(err)) < 0) {
		say("confine", err);
		return SG_WORKER_EXIT_SETUP;
	}
	if (o->test_after_confine != NULL)
		o->test_after_confine(fd, &report);
	w.dec = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, w.cap);
	if (w.dec == NULL)
		return SG_WORKER_EXIT_MEMORY;
	struct sg_frame_msg ready = {.type = SG_FRAME_READY};
	ready.ready.pid = (int32_t)getpid(); /* 1: pid 1 of its own namespace */
	if (send_frame(&w, &ready, err, sizeof(err)) == -1)
		return SG_WORKER_EXIT_PROTOCOL; /* defensive: READY is always valid */
	for (uint32_t runs = 0; runs < o->max_runs; runs++)
		serve_run(&w, o);
	/* Freed for tidiness only: the process ends here. */
	sg_frame_decoder_free(w.dec);
	return SG_WORKER_EXIT_DONE;
}
