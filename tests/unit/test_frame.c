/*
 * Frames: every message type round-trips; any chunking of the byte stream
 * decodes the same; every member is checked by name, type, size and order;
 * caps hold at N-1, N and N+1; the blocking helpers survive EINTR, short
 * reads and writes, and tell EOF from a cut frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sg_frame.h"

/* ---- helpers ---- */

struct bytes {
	uint8_t *p;
	size_t n;
};

static void
append(struct bytes *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n);
	assert_non_null(b->p);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
append_msg(struct bytes *b, const struct sg_frame_msg *m)
{
	uint8_t *f;
	size_t n;
	char err[256] = "";
	if (sg_frame_encode(m, 0, &f, &n, err, sizeof(err)) != 0)
		fail_msg("encode: %s", err);
	append(b, f, n);
	free(f);
}

/* A frame around any payload text, valid or not. */
static void
append_raw(struct bytes *b, const char *payload)
{
	size_t n = strlen(payload);
	uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	append(b, h, 4);
	append(b, payload, n);
}

/* Feeds `b` in chunks of `chunk` bytes; collects up to `max` messages. */
static size_t
feed_all(struct sg_frame_decoder *d, const struct bytes *b, size_t chunk, struct sg_frame_msg *out,
         size_t max, enum sg_frame_rc *last)
{
	size_t got = 0;
	*last = SG_FRAME_MORE;
	for (size_t off = 0; off < b->n;) {
		size_t len = b->n - off < chunk ? b->n - off : chunk;
		size_t end = off + len;
		while (off < end) {
			size_t used;
			struct sg_frame_msg m;
			*last = sg_frame_decoder_feed(d, b->p + off, end - off, &used, &m);
			off += used;
			if (*last == SG_FRAME_ERROR)
				return got;
			if (*last == SG_FRAME_MESSAGE) {
				assert_true(got < max);
				out[got++] = m;
			}
			if (*last == SG_FRAME_MORE)
				assert_int_equal(off, end);
		}
	}
	return got;
}

/* Decodes one raw payload from `peer` and returns the reason it was refused. */
static const char *
refusal(enum sg_frame_peer peer, const char *payload)
{
	static char err[256];
	struct sg_frame_msg m;
	int rc = peer == SG_FRAME_PEER_WORKER
	             ? sg_frame_decode_from_worker(payload, strlen(payload), &m, err, sizeof(err))
	             : sg_frame_decode_from_gateway(payload, strlen(payload), &m, err, sizeof(err));
	if (rc == 0) {
		sg_frame_msg_clear(&m);
		fail_msg("accepted: %s", payload);
	}
	assert_null(m.root);
	return err;
}

static void
accepts(enum sg_frame_peer peer, const char *payload)
{
	char err[256] = "";
	struct sg_frame_msg m;
	int rc = peer == SG_FRAME_PEER_WORKER
	             ? sg_frame_decode_from_worker(payload, strlen(payload), &m, err, sizeof(err))
	             : sg_frame_decode_from_gateway(payload, strlen(payload), &m, err, sizeof(err));
	if (rc != 0)
		fail_msg("refused %s: %s", payload, err);
	sg_frame_msg_clear(&m);
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A conversation from a worker, and one from the gateway. */
static struct bytes
worker_stream(void)
{
	struct bytes b = {0};
	json_t *args = json_pack("{s:s}", "q", "x");
	json_t *out = json_pack("{s:i}", "n", 3);
	json_t *logs = json_pack("[s,s]", "one", "two");
	struct sg_frame_msg m = {.type = SG_FRAME_READY, .ready = {.pid = 1}};
	append_msg(&b, &m);
	m = (struct sg_frame_msg){
	    .type = SG_FRAME_CALL,
	    .call = {.seq = 1, .capability = "crm.get_contact", .args = args}};
	append_msg(&b, &m);
	m.call.seq = 2;
	append_msg(&b, &m);
	m = (struct sg_frame_msg){.type = SG_FRAME_DONE,
	                          .done = {.run_id = "r-1",
	                                   .stop = SG_STOP_OK,
	                                   .output = out,
	                                   .logs = logs,
	                                   .instructions = 12345,
	                                   .peak_memory = 1 << 20,
	                                   .calls = 2}};
	append_msg(&b, &m);
	json_decref(args);
	json_decref(out);
	json_decref(logs);
	return b;
}

static struct bytes
gateway_stream(void)
{
	struct bytes b = {0};
	json_t *input = json_pack("{s:[i,i]}", "ids", 1, 2);
	json_t *result = json_pack("{s:s}", "name", "Ada");
	struct sg_frame_msg m = {.type = SG_FRAME_RUN,
	                         .run = {.run_id = "r-1",
	                                 .template_name = "greet@1.0.0",
	                                 .source = "function run(input, ctx) return input end",
	                                 .input = input,
	                                 .limits = {.instructions = 1000000,
	                                            .memory_bytes = 64 << 20,
	                                            .calls = 10,
	                                            .log_bytes = 4096}}};
	append_msg(&b, &m);
	m = (struct sg_frame_msg){.type = SG_FRAME_CALL_RESULT,
	                          .call_result = {.seq = 1, .result = result}};
	append_msg(&b, &m);
	m = (struct sg_frame_msg){
	    .type = SG_FRAME_CALL_RESULT,
	    .call_result = {.seq = 2, .error_code = "rate_limited", .error_detail = "wait 2 s"}};
	append_msg(&b, &m);
	json_decref(input);
	json_decref(result);
	return b;
}

static void
check_worker_msgs(struct sg_frame_msg *m, size_t n)
{
	assert_int_equal(n, 4);
	assert_int_equal(m[0].type, SG_FRAME_READY);
	assert_int_equal(m[0].ready.pid, 1);
	assert_int_equal(m[1].type, SG_FRAME_CALL);
	assert_int_equal(m[1].call.seq, 1);
	assert_string_equal(m[1].call.capability, "crm.get_contact");
	assert_string_equal(json_string_value(json_object_get(m[1].call.args, "q")), "x");
	assert_int_equal(m[2].call.seq, 2);
	assert_int_equal(m[3].type, SG_FRAME_DONE);
	const struct sg_frame_done *d = &m[3].done;
	assert_string_equal(d->run_id, "r-1");
	assert_int_equal(d->stop, SG_STOP_OK);
	assert_int_equal(json_integer_value(json_object_get(d->output, "n")), 3);
	assert_int_equal(json_array_size(d->logs), 2);
	assert_string_equal(json_string_value(json_array_get(d->logs, 1)), "two");
	assert_null(d->message);
	assert_int_equal(d->instructions, 12345);
	assert_int_equal(d->peak_memory, 1 << 20);
	assert_int_equal(d->calls, 2);
	for (size_t i = 0; i < n; i++)
		sg_frame_msg_clear(&m[i]);
}

static void
check_gateway_msgs(struct sg_frame_msg *m, size_t n)
{
	assert_int_equal(n, 3);
	const struct sg_frame_run *r = &m[0].run;
	assert_int_equal(m[0].type, SG_FRAME_RUN);
	assert_string_equal(r->run_id, "r-1");
	assert_string_equal(r->template_name, "greet@1.0.0");
	assert_string_equal(r->source, "function run(input, ctx) return input end");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(r->input, "ids"), 1)),
	                 2);
	assert_int_equal(r->limits.instructions, 1000000);
	assert_int_equal(r->limits.memory_bytes, 64 << 20);
	assert_int_equal(r->limits.calls, 10);
	assert_int_equal(r->limits.log_bytes, 4096);
	assert_int_equal(m[1].call_result.seq, 1);
	assert_string_equal(json_string_value(json_object_get(m[1].call_result.result, "name")),
	                    "Ada");
	assert_null(m[1].call_result.error_code);
	assert_int_equal(m[2].call_result.seq, 2);
	assert_null(m[2].call_result.result);
	assert_string_equal(m[2].call_result.error_code, "rate_limited");
	assert_string_equal(m[2].call_result.error_detail, "wait 2 s");
	for (size_t i = 0; i < n; i++)
		sg_frame_msg_clear(&m[i]);
}

/* ---- round trips and chunking ---- */

static void
test_round_trip_every_type_in_any_chunking(void **state)
{
	(void)state;
	struct bytes w = worker_stream(), g = gateway_stream();
	/* 1: byte by byte; 3 and 7: splits land inside headers; huge: all frames in one feed. */
	const size_t chunks[] = {1, 2, 3, 7, 64, (size_t)-1};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct sg_frame_msg m[8];
		enum sg_frame_rc last;
		struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
		check_worker_msgs(m, feed_all(d, &w, chunks[i], m, 8, &last));
		assert_int_equal(last, SG_FRAME_MESSAGE);
		assert_int_equal(sg_frame_decoder_finish(d), 0);
		sg_frame_decoder_free(d);
		d = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, 0);
		check_gateway_msgs(m, feed_all(d, &g, chunks[i], m, 8, &last));
		assert_int_equal(sg_frame_decoder_finish(d), 0);
		sg_frame_decoder_free(d);
	}
	free(w.p);
	free(g.p);
}

static void
test_two_frames_in_one_feed_stop_after_the_first(void **state)
{
	(void)state;
	struct bytes b = {0};
	append_raw(&b, "{\"type\":\"ready\"}");
	size_t first = b.n;
	append_raw(&b, "{\"type\":\"call\",\"seq\":1,\"capability\":\"a.b\",\"args\":{}}");
	struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
	struct sg_frame_msg m;
	size_t used;
	assert_int_equal(sg_frame_decoder_feed(d, b.p, b.n, &used, &m), SG_FRAME_MESSAGE);
	assert_int_equal(used, first);
	assert_int_equal(m.type, SG_FRAME_READY);
	assert_int_equal(m.ready.pid, 0); /* pid is optional */
	sg_frame_msg_clear(&m);
	assert_int_equal(sg_frame_decoder_feed(d, b.p + used, b.n - used, &used, &m),
	                 SG_FRAME_MESSAGE);
	assert_int_equal(used, b.n - first);
	assert_int_equal(m.type, SG_FRAME_CALL);
	sg_frame_msg_clear(&m);
	assert_int_equal(sg_frame_decoder_feed(d, b.p, 0, &used, &m), SG_FRAME_MORE);
	sg_frame_decoder_free(d);
	free(b.p);
}

/* ---- the length header ---- */

/* A valid READY payload padded with JSON whitespace to exactly n bytes. */
static char *
ready_of_size(size_t n)
{
	const char *core = "{\"type\":\"ready\"}";
	char *s = repeat(' ', n);
	memcpy(s, core, strlen(core));
	return s;
}

static enum sg_frame_rc
feed_payload(struct sg_frame_decoder *d, const char *payload, struct sg_frame_msg *m)
{
	struct bytes b = {0};
	size_t used;
	append_raw(&b, payload);
	enum sg_frame_rc rc = sg_frame_decoder_feed(d, b.p, b.n, &used, m);
	free(b.p);
	return rc;
}

static void
test_cap_at_n_minus_one_n_and_n_plus_one(void **state)
{
	(void)state;
	const size_t cap = 100;
	for (size_t n = cap - 1; n <= cap + 1; n++) {
		char *p = ready_of_size(n);
		struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, cap);
		struct sg_frame_msg m;
		enum sg_frame_rc rc = feed_payload(d, p, &m);
		assert_int_equal(rc, n <= cap ? SG_FRAME_MESSAGE : SG_FRAME_ERROR);
		if (n > cap)
			assert_string_equal(sg_frame_decoder_error(d),
			                    "frame announces 101 bytes, over the 100-byte cap");
		sg_frame_msg_clear(&m);
		sg_frame_decoder_free(d);
		free(p);
	}
}

static void
test_over_cap_is_refused_from_the_header_alone(void **state)
{
	(void)state;
	/* Only the 4 header bytes: the refusal must not wait for (or buffer) a payload. */
	const uint8_t h[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */
	struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, 0);
	struct sg_frame_msg m;
	size_t used;
	assert_int_equal(sg_frame_decoder_feed(d, h, 3, &used, &m), SG_FRAME_MORE);
	assert_int_equal(sg_frame_decoder_feed(d, h + 3, 1, &used, &m), SG_FRAME_ERROR);
	assert_int_equal(used, 1);
	assert_string_equal(sg_frame_decoder_error(d),
	                    "frame announces 1048577 bytes, over the 1048576-byte cap");
	/* Terminal: a valid frame afterwards is still refused. */
	struct bytes b = {0};
	append_raw(&b, "{\"type\":\"ready\"}");
	assert_int_equal(sg_frame_decoder_feed(d, b.p, b.n, &used, &m), SG_FRAME_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(sg_frame_decoder_finish(d), -1);
	sg_frame_decoder_free(d);
	free(b.p);

	d = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, 0);
	const uint8_t zero[4] = {0};
	assert_int_equal(sg_frame_decoder_feed(d, zero, 4, &used, &m), SG_FRAME_ERROR);
	assert_string_equal(sg_frame_decoder_error(d),
	                    "empty frame (a payload is one JSON object)");
	sg_frame_decoder_free(d);
}

static void
test_encode_respects_the_cap(void **state)
{
	(void)state;
	struct sg_frame_msg m = {.type = SG_FRAME_READY};
	uint8_t *f;
	size_t n;
	char err[256];
	/* {"type":"ready"} is 16 bytes. */
	assert_int_equal(sg_frame_encode(&m, 16, &f, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 20);
	assert_memory_equal(f, "\x00\x00\x00\x10{\"type\":\"ready\"}", 20);
	free(f);
	assert_int_equal(sg_frame_encode(&m, 15, &f, &n, err, sizeof(err)), -1);
	assert_null(f);
	assert_string_equal(err, "ready: payload of 16 bytes is over the 15-byte frame cap");
}

static void
test_cut_frames_at_eof(void **state)
{
	(void)state;
	struct bytes b = {0};
	append_raw(&b, "{\"type\":\"ready\"}");
	struct sg_frame_msg m;
	size_t used;
	struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
	assert_int_equal(sg_frame_decoder_feed(d, b.p, 2, &used, &m), SG_FRAME_MORE);
	assert_int_equal(sg_frame_decoder_finish(d), -1);
	assert_string_equal(sg_frame_decoder_error(d),
	                    "peer closed inside a frame header (2 of 4 bytes)");
	sg_frame_decoder_free(d);

	d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
	assert_int_equal(sg_frame_decoder_feed(d, b.p, 7, &used, &m), SG_FRAME_MORE);
	assert_int_equal(sg_frame_decoder_finish(d), -1);
	assert_string_equal(sg_frame_decoder_error(d),
	                    "peer closed inside a frame (3 of 16 payload bytes)");
	sg_frame_decoder_free(d);
	free(b.p);
}

/* ---- payload checks ---- */

static void
test_bad_json_and_bad_types(void **state)
{
	(void)state;
	const enum sg_frame_peer w = SG_FRAME_PEER_WORKER, g = SG_FRAME_PEER_GATEWAY;
	assert_true(strncmp(refusal(w, "{\"type\":"), "payload is not JSON: ", 21) == 0);
	assert_true(strncmp(refusal(w, "\"ready\""), "payload is not JSON: ", 21) == 0);
	assert_true(strncmp(refusal(w, "{\"type\":\"ready\"} x"), "payload is not JSON: ", 21) ==
	            0);
	/* Duplicate keys could mean one thing to us and another to a later reader. */
	assert_true(strncmp(refusal(w, "{\"type\":\"ready\",\"type\":\"done\"}"),
	                    "payload is not JSON: ", 21) == 0);
	assert_true(strncmp(refusal(w, "{\"type\":\"ready\",\"pid\":\"\\u0000\"}"),
	                    "payload is not JSON: ", 21) == 0);
	assert_string_equal(refusal(w, "[{\"type\":\"ready\"}]"), "payload is not a JSON object");
	assert_string_equal(refusal(w, "{}"), "payload has no string \"type\"");
	assert_string_equal(refusal(w, "{\"type\":7}"), "payload has no string \"type\"");
	assert_string_equal(refusal(w, "{\"type\":\"hello\"}"), "unknown message type \"hello\"");
	/* Each side accepts only what its peer may send. */
	assert_string_equal(refusal(w, "{\"type\":\"run\"}"), "a worker may not send \"run\"");
	assert_string_equal(refusal(w, "{\"type\":\"call_result\"}"),
	                    "a worker may not send \"call_result\"");
	assert_string_equal(refusal(g, "{\"type\":\"ready\"}"),
	                    "the gateway may not send \"ready\"");
	assert_string_equal(refusal(g, "{\"type\":\"call\"}"), "the gateway may not send \"call\"");
	assert_string_equal(refusal(g, "{\"type\":\"done\"}"), "the gateway may not send \"done\"");
	/* Peer text in reasons is reduced to printable ASCII. */
	assert_string_equal(refusal(w, "{\"type\":\"ready\",\"a\\nb\\u00e9\":1}"),
	                    "ready: unknown member \"a?b??\"");
}

static void
test_ready_and_call_members(void **state)
{
	(void)state;
	const enum sg_frame_peer w = SG_FRAME_PEER_WORKER;
	assert_string_equal(refusal(w, "{\"type\":\"ready\",\"pid\":0}"),
	                    "ready: \"pid\" must be an integer from 1 to 2147483647");
	assert_string_equal(refusal(w, "{\"type\":\"ready\",\"pid\":1.0}"),
	                    "ready: \"pid\" must be an integer from 1 to 2147483647");
	accepts(w, "{\"type\":\"ready\",\"pid\":2147483647}");
	assert_string_equal(refusal(w, "{\"type\":\"ready\",\"pid\":2147483648}"),
	                    "ready: \"pid\" must be an integer from 1 to 2147483647");

	const char *ok =
	    "{\"type\":\"call\",\"seq\":4294967295,\"capability\":\"crm-x.get_1\",\"args\":{}}";
	accepts(w, ok);
	assert_string_equal(refusal(w, "{\"type\":\"call\",\"capability\":\"a.b\",\"args\":{}}"),
	                    "call: missing \"seq\"");
	assert_string_equal(refusal(w,
	                            "{\"type\":\"call\",\"seq\":4294967296,\"capability\":\"a.b\","
	                            "\"args\":{}}"),
	                    "call: \"seq\" must be an integer from 1 to 4294967295");
	assert_string_equal(
	    refusal(w, "{\"type\":\"call\",\"seq\":-1,\"capability\":\"a.b\",\"args\":{}}"),
	    "call: \"seq\" must be an integer from 1 to 4294967295");
	assert_string_equal(
	    refusal(w, "{\"type\":\"call\",\"seq\":1,\"capability\":\"a.b\",\"args\":[]}"),
	    "call: \"args\" must be an object");
	assert_string_equal(
	    refusal(w, "{\"type\":\"call\",\"seq\":1,\"capability\":\"a.b\",\"args\":{},"
	               "\"extra\":1}"),
	    "call: unknown member \"extra\"");
	const char *bad_caps[] = {"ab", "a.", ".b", "a.b.c", "A.b", "a.B", "1a.b", "a.b c", "a..b"};
	for (size_t i = 0; i < sizeof(bad_caps) / sizeof(bad_caps[0]); i++) {
		char p[160];
		snprintf(p, sizeof(p),
		         "{\"type\":\"call\",\"seq\":1,\"capability\":\"%s\",\"args\":{}}",
		         bad_caps[i]);
		assert_string_equal(refusal(w, p),
		                    "call: \"capability\" must be \"connector.operation\" "
		                    "of lowercase letters, digits, '_' and '-'");
	}
}

/* The capability cap at N-1, N, N+1 (N = 160), with a valid shape at every length. */
static void
test_capability_length_cap(void **state)
{
	(void)state;
	for (size_t n = SG_FRAME_CAPABILITY_MAX - 1; n <= SG_FRAME_CAPABILITY_MAX + 1; n++) {
		char *cap = repeat('a', n);
		cap[80] = '.';
		char *p;
		assert_true(
		    asprintf(&p, "{\"type\":\"call\",\"seq\":1,\"capability\":\"%s\",\"args\":{}}",
		             cap) > 0);
		if (n <= SG_FRAME_CAPABILITY_MAX)
			accepts(SG_FRAME_PEER_WORKER, p);
		else
			assert_string_equal(
			    refusal(SG_FRAME_PEER_WORKER, p),
			    "call: \"capability\" is 161 bytes, over the 160-byte cap");
		free(p);
		free(cap);
	}
}

static char *
run_payload(const char *run_id, const char *source, const char *limits)
{
	char *p;
	assert_true(asprintf(&p,
	                     "{\"type\":\"run\",\"run_id\":\"%s\",\"template\":\"t\",\"source\":"
	                     "\"%s\",\"input\":null,\"limits\":%s}",
	                     run_id, source, limits) > 0);
	return p;
}

#define LIMITS "{\"instructions\":1,\"memory_bytes\":2,\"calls\":3,\"log_bytes\":4}"

static void
test_run_members_and_caps(void **state)
{
	(void)state;
	const enum sg_frame_peer g = SG_FRAME_PEER_GATEWAY;
	struct {
		const char *run_id, *source, *limits, *reason;
	} cases[] = {
	    {"r", "", LIMITS, NULL},
	    {"", "", LIMITS, "run: \"run_id\" must be printable ASCII without spaces, not empty"},
	    {"a b", "", LIMITS,
	     "run: \"run_id\" must be printable ASCII without spaces, not empty"},
	    {"r", "", "[]", "run: \"limits\" must be an object"},
	    {"r", "", "{\"instructions\":1,\"memory_bytes\":2,\"calls\":3}",
	     "run.limits: missing \"log_bytes\""},
	    {"r", "", "{\"instructions\":1,\"memory_bytes\":2,\"calls\":3,\"log_bytes\":4,\"x\":0}",
	     "run.limits: unknown member \"x\""},
	    {"r", "",
	     "{\"instructions\":9223372036854775807,\"memory_bytes\":0,\"calls\":4294967295,"
	     "\"log_bytes\":0}",
	     NULL},
	    {"r", "",
	     "{\"instructions\":1,\"memory_bytes\":2,\"calls\":4294967296,\"log_bytes\":4}",
	     "run.limits: \"calls\" must be an integer from 0 to 4294967295"},
	    {"r", "", "{\"instructions\":-1,\"memory_bytes\":2,\"calls\":3,\"log_bytes\":4}",
	     "run.limits: \"instructions\" must be an integer from 0 to 9223372036854775807"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = run_payload(cases[i].run_id, cases[i].source, cases[i].limits);
		if (cases[i].reason == NULL)
			accepts(g, p);
		else
			assert_string_equal(refusal(g, p), cases[i].reason);
		free(p);
	}
	assert_string_equal(refusal(g, "{\"type\":\"run\",\"run_id\":\"r\",\"template\":\"t\","
	                               "\"source\":\"\",\"limits\":" LIMITS "}"),
	                    "run: missing \"input\"");
	/* run_id at 63, 64, 65 and source at 256 KiB - 1, 256 KiB, 256 KiB + 1. */
	for (size_t n = SG_FRAME_RUN_ID_MAX - 1; n <= SG_FRAME_RUN_ID_MAX + 1; n++) {
		char *id = repeat('r', n), *p = run_payload(id, "", LIMITS);
		if (n <= SG_FRAME_RUN_ID_MAX)
			accepts(g, p);
		else
			assert_string_equal(refusal(g, p),
			                    "run: \"run_id\" is 65 bytes, over the 64-byte cap");
		free(id);
		free(p);
	}
	for (size_t n = SG_FRAME_SOURCE_MAX - 1; n <= SG_FRAME_SOURCE_MAX + 1; n++) {
		char *src = repeat('x', n), *p = run_payload("r", src, LIMITS);
		if (n <= SG_FRAME_SOURCE_MAX)
			accepts(g, p);
		else
			assert_string_equal(
			    refusal(g, p),
			    "run: \"source\" is 262145 bytes, over the 262144-byte cap");
		free(src);
		free(p);
	}
}

static void
test_call_result_needs_exactly_one_outcome(void **state)
{
	(void)state;
	const enum sg_frame_peer g = SG_FRAME_PEER_GATEWAY;
	accepts(g, "{\"type\":\"call_result\",\"seq\":1,\"result\":null}");
	accepts(
	    g,
	    "{\"type\":\"call_result\",\"seq\":1,\"error\":{\"code\":\"denied\",\"detail\":\"\"}}");
	assert_string_equal(refusal(g, "{\"type\":\"call_result\",\"seq\":1}"),
	                    "call_result: needs exactly one of \"result\" and \"error\"");
	assert_string_equal(refusal(g, "{\"type\":\"call_result\",\"seq\":1,\"result\":1,"
	                               "\"error\":{\"code\":\"x\",\"detail\":\"\"}}"),
	                    "call_result: needs exactly one of \"result\" and \"error\"");
	assert_string_equal(refusal(g, "{\"type\":\"call_result\",\"seq\":1,\"error\":\"boom\"}"),
	                    "call_result: \"error\" must be an object");
	assert_string_equal(
	    refusal(g, "{\"type\":\"call_result\",\"seq\":1,\"error\":{\"code\":\"x\"}}"),
	    "call_result.error: missing \"detail\"");
	assert_string_equal(
	    refusal(g, "{\"type\":\"call_result\",\"seq\":1,\"error\":{\"code\":\"Bad\","
	               "\"detail\":\"\"}}"),
	    "call_result.error: \"code\" must be lowercase letters, digits and '_'");
	assert_string_equal(refusal(g,
	                            "{\"type\":\"call_result\",\"seq\":1,\"error\":{\"code\":\"x\","
	                            "\"detail\":\"\",\"why\":1}}"),
	                    "call_result.error: unknown member \"why\"");
}

static char *
done_payload(const char *stop, const char *extra)
{
	char *p;
	assert_true(asprintf(&p,
	                     "{\"type\":\"done\",\"run_id\":\"r\",\"stop\":\"%s\",\"logs\":[],"
	                     "\"instructions\":1,\"peak_memory\":2,\"calls\":3%s}",
	                     stop, extra) > 0);
	return p;
}

static void
test_done_members(void **state)
{
	(void)state;
	const enum sg_frame_peer w = SG_FRAME_PEER_WORKER;
	struct {
		const char *stop, *extra, *reason;
	} cases[] = {
	    {"ok", ",\"output\":{}", NULL},
	    {"ok", ",\"output\":null", NULL},
	    {"ok", "", "done: \"output\" must be sent when stop is \"ok\""},
	    {"ok", ",\"output\":1,\"message\":\"\",\"line\":0",
	     "done: \"message\" and \"line\" are only sent when the run failed"},
	    {"script_error", ",\"message\":\"boom\",\"line\":3", NULL},
	    {"memory", ",\"message\":\"\",\"line\":0", NULL},
	    {"script_error", ",\"output\":1,\"message\":\"x\",\"line\":3",
	     "done: \"output\" must be sent only when stop is \"ok\""},
	    {"guard", ",\"line\":3", "done: missing \"message\""},
	    {"guard", ",\"message\":\"x\"", "done: missing \"line\""},
	    {"guard", ",\"message\":\"x\",\"line\":-1",
	     "done: \"line\" must be an integer from 0 to 2147483647"},
	    {"crashed", "", "done: unknown stop \"crashed\""},
	    {"ok", ",\"output\":1,\"shell\":\"rm\"", "done: unknown member \"shell\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = done_payload(cases[i].stop, cases[i].extra);
		if (cases[i].reason == NULL)
			accepts(w, p);
		else
			assert_string_equal(refusal(w, p), cases[i].reason);
		free(p);
	}
	const char *stops[] = {"ok",    "compile_error", "script_error", "instructions", "memory",
	                       "calls", "guard",         "bad_result",   "no_run"};
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		assert_string_equal(sg_frame_stop_name((enum sg_frame_stop)i), stops[i]);
	assert_string_equal(
	    refusal(w, "{\"type\":\"done\",\"run_id\":\"r\",\"stop\":\"ok\",\"output\":1,"
	               "\"logs\":[1],\"instructions\":1,\"peak_memory\":2,\"calls\":3}"),
	    "done: \"logs[]\" must be a string");
}

/* Encodes a failed DONE with these logs; on success decodes it back as the gateway would. */
static int
done_with_logs(json_t *logs, char *err, size_t errlen, size_t *lines_back)
{
	struct sg_frame_msg m = {.type = SG_FRAME_DONE,
	                         .done = {.run_id = "r",
	                                  .stop = SG_STOP_CALLS,
	                                  .logs = logs,
	                                  .message = "too many calls",
	                                  .line = 7}};
	uint8_t *f;
	size_t n;
	if (sg_frame_encode(&m, 0, &f, &n, err, errlen) == -1)
		return -1;
	struct sg_frame_msg back;
	assert_int_equal(sg_frame_decode_from_worker(f + 4, n - 4, &back, err, errlen), 0);
	assert_int_equal(back.done.stop, SG_STOP_CALLS);
	assert_string_equal(back.done.message, "too many calls");
	assert_int_equal(back.done.line, 7);
	*lines_back = json_array_size(back.done.logs);
	sg_frame_msg_clear(&back);
	free(f);
	return 0;
}

/* Message at 511/512/513 bytes, logs at 255/256/257 lines and 4095/4096/4097 bytes a line. */
static void
test_done_caps(void **state)
{
	(void)state;
	char err[256];
	size_t back;
	for (int d = -1; d <= 1; d++) {
		char *msg = repeat('m', (size_t)(SG_FRAME_MESSAGE_MAX + d)), *extra, *p;
		assert_true(asprintf(&extra, ",\"message\":\"%s\",\"line\":1", msg) > 0);
		p = done_payload("guard", extra);
		if (d <= 0)
			accepts(SG_FRAME_PEER_WORKER, p);
		else
			assert_string_equal(
			    refusal(SG_FRAME_PEER_WORKER, p),
			    "done: \"message\" is 513 bytes, over the 512-byte cap");
		free(msg);
		free(extra);
		free(p);
	}
	for (int d = -1; d <= 1; d++) {
		json_t *logs = json_array();
		for (int i = 0; i < SG_FRAME_LOGS_MAX + d; i++)
			json_array_append_new(logs, json_string("l"));
		int rc = done_with_logs(logs, err, sizeof(err), &back);
		if (d <= 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(back, SG_FRAME_LOGS_MAX + d);
		} else {
			assert_int_equal(rc, -1);
			assert_string_equal(err,
			                    "done: \"logs\" has 257 lines, over the cap of 256");
		}
		json_decref(logs);
	}
	for (int d = -1; d <= 1; d++) {
		char *line = repeat('l', (size_t)(SG_FRAME_LOG_LINE_MAX + d));
		json_t *logs = json_pack("[s]", line);
		int rc = done_with_logs(logs, err, sizeof(err), &back);
		assert_int_equal(rc, d <= 0 ? 0 : -1);
		if (d > 0)
			assert_string_equal(
			    err, "done: \"logs[]\" is 4097 bytes, over the 4096-byte cap");
		json_decref(logs);
		free(line);
	}
}

/* ---- the order of the conversation ---- */

static enum sg_frame_rc
feed_text(struct sg_frame_decoder *d, const char *payload)
{
	struct sg_frame_msg m;
	enum sg_frame_rc rc = feed_payload(d, payload, &m);
	sg_frame_msg_clear(&m);
	return rc;
}

#define READY "{\"type\":\"ready\"}"
#define CALL(seq) "{\"type\":\"call\",\"seq\":" #seq ",\"capability\":\"a.b\",\"args\":{}}"
#define DONE                                                                                       \
	"{\"type\":\"done\",\"run_id\":\"r\",\"stop\":\"ok\",\"output\":1,\"logs\":[],"            \
	"\"instructions\":1,\"peak_memory\":2,\"calls\":3}"
#define RUN                                                                                        \
	"{\"type\":\"run\",\"run_id\":\"r\",\"template\":\"t\",\"source\":\"\",\"input\":1,"       \
	"\"limits\":" LIMITS "}"
#define RESULT(seq) "{\"type\":\"call_result\",\"seq\":" #seq ",\"result\":1}"

/* Feeds payloads in order; all but the last must pass, the last must fail with `reason`. */
static void
conversation_fails(enum sg_frame_peer peer, const char *const *payloads, size_t n,
                   const char *reason)
{
	struct sg_frame_decoder *d = sg_frame_decoder_new(peer, 0);
	for (size_t i = 0; i + 1 < n; i++)
		assert_int_equal(feed_text(d, payloads[i]), SG_FRAME_MESSAGE);
	assert_int_equal(feed_text(d, payloads[n - 1]), SG_FRAME_ERROR);
	assert_string_equal(sg_frame_decoder_error(d), reason);
	assert_int_equal(feed_text(d, READY), SG_FRAME_ERROR); /* terminal */
	sg_frame_decoder_free(d);
}

#define FAILS(peer, reason, ...)                                                                   \
	do {                                                                                       \
		const char *const p_[] = {__VA_ARGS__};                                            \
		conversation_fails(peer, p_, sizeof(p_) / sizeof(p_[0]), reason);                  \
	} while (0)

static void
test_conversation_order(void **state)
{
	(void)state;
	const enum sg_frame_peer w = SG_FRAME_PEER_WORKER, g = SG_FRAME_PEER_GATEWAY;
	FAILS(w, "\"call\" before \"ready\"", CALL(1));
	FAILS(w, "\"done\" before \"ready\"", DONE);
	FAILS(w, "a second \"ready\"", READY, READY);
	FAILS(w, "call seq 2, expected 1", READY, CALL(2));
	FAILS(w, "call seq 1, expected 2", READY, CALL(1), CALL(1));
	FAILS(w, "call seq 3, expected 2", READY, CALL(1), CALL(3));
	/* DONE ends the run: the next run's calls count from 1 again. */
	FAILS(w, "call seq 3, expected 1", READY, CALL(1), CALL(2), DONE, CALL(1), DONE, CALL(3));
	FAILS(g, "\"call_result\" before any \"run\"", RESULT(1));
	FAILS(g, "call_result seq 2, expected 1", RUN, RESULT(2));
	FAILS(g, "call_result seq 2, expected 1", RUN, RESULT(1), RUN, RESULT(2));
	/* Messages that fail their own checks kill the decoder too. */
	FAILS(w, "call: \"args\" must be an object", READY,
	      "{\"type\":\"call\",\"seq\":1,\"capability\":\"a.b\",\"args\":1}");
}

/* ---- the sending side checks what it sends ---- */

static void
encode_fails(const struct sg_frame_msg *m, const char *reason)
{
	uint8_t *f = (uint8_t *)"untouched";
	size_t n = 1;
	char err[256] = "";
	assert_int_equal(sg_frame_encode(m, 0, &f, &n, err, sizeof(err)), -1);
	assert_null(f);
	assert_int_equal(n, 0);
	assert_string_equal(err, reason);
}

static void
test_encode_refuses_what_the_peer_would(void **state)
{
	(void)state;
	json_t *one = json_integer(1);
	struct sg_frame_msg run = {
	    .type = SG_FRAME_RUN,
	    .run = {.run_id = "r", .template_name = "t", .source = "", .input = one}};
	struct sg_frame_msg m = run;
	m.run.run_id = "has space";
	encode_fails(&m, "run: \"run_id\" must be printable ASCII without spaces, not empty");
	m = run;
	m.run.input = NULL;
	encode_fails(&m, "run: missing \"input\"");
	m = run;
	m.run.source = NULL;
	encode_fails(&m, "run: missing \"source\"");
	m = run;
	m.run.limits.memory_bytes = (uint64_t)INT64_MAX + 1;
	encode_fails(&m, "run.limits: \"memory_bytes\" must be an integer from 0 to "
	                 "9223372036854775807");
	m = (struct sg_frame_msg){.type = SG_FRAME_CALL, .call = {.seq = 0, .capability = "a.b"}};
	encode_fails(&m, "call: \"seq\" must be an integer from 1 to 4294967295");
	m = (struct sg_frame_msg){
	    .type = SG_FRAME_CALL_RESULT,
	    .call_result = {.seq = 1, .result = one, .error_code = "x", .error_detail = ""}};
	encode_fails(&m, "call_result: needs exactly one of \"result\" and \"error\"");
	m = (struct sg_frame_msg){
	    .type = SG_FRAME_DONE,
	    .done = {.run_id = "r", .stop = SG_STOP_SCRIPT_ERROR, .message = "boom", .line = -2}};
	encode_fails(&m, "done: \"line\" must be an integer from 0 to 2147483647");
	m.done.stop = (enum sg_frame_stop)42;
	encode_fails(&m, "done: unknown stop \"?\"");
	m = (struct sg_frame_msg){.type = (enum sg_frame_type)99};
	encode_fails(&m, "?: cannot build the message: unknown message type 99");
	json_decref(one);
}

/* ---- blocking fd helpers ---- */

static int
open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void
test_fd_round_trip_and_eof(void **state)
{
	(void)state;
	int before = open_fds();
	int sv[2];
	char err[256];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	json_t *input = json_object();
	struct sg_frame_msg m = {
	    .type = SG_FRAME_RUN,
	    .run = {.run_id = "r", .template_name = "t", .source = "return 1", .input = input}};
	assert_int_equal(sg_frame_write_fd(sv[0], &m, 0, err, sizeof(err)), 0);
	m = (struct sg_frame_msg){.type = SG_FRAME_CALL_RESULT,
	                          .call_result = {.seq = 1, .result = input}};
	assert_int_equal(sg_frame_write_fd(sv[0], &m, 0, err, sizeof(err)), 0);
	close(sv[0]);
	struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, 0);
	struct sg_frame_msg got;
	assert_int_equal(sg_frame_read_fd(sv[1], d, &got), SG_FRAME_MESSAGE);
	assert_string_equal(got.run.source, "return 1");
	sg_frame_msg_clear(&got);
	assert_int_equal(sg_frame_read_fd(sv[1], d, &got), SG_FRAME_MESSAGE);
	assert_int_equal(got.type, SG_FRAME_CALL_RESULT);
	sg_frame_msg_clear(&got);
	assert_int_equal(sg_frame_read_fd(sv[1], d, &got), SG_FRAME_EOF);
	assert_null(got.root);
	sg_frame_decoder_free(d);
	close(sv[1]);

	/* A frame cut by the peer's exit is an error, not an EOF. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(write(sv[0], "\x00\x00\x00\x10{\"type\"", 11), 11);
	close(sv[0]);
	d = sg_frame_decoder_new(SG_FRAME_PEER_WORKER, 0);
	assert_int_equal(sg_frame_read_fd(sv[1], d, &got), SG_FRAME_ERROR);
	assert_string_equal(sg_frame_decoder_error(d),
	                    "peer closed inside a frame (7 of 16 payload bytes)");
	sg_frame_decoder_free(d);
	/* A closed peer is EPIPE from write, not a SIGPIPE that kills us. */
	m = (struct sg_frame_msg){.type = SG_FRAME_READY};
	assert_int_equal(sg_frame_write_fd(sv[1], &m, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "write failed: Broken pipe");
	close(sv[1]);
	json_decref(input);
	assert_int_equal(open_fds(), before);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

/* Interrupts every blocking call a few times a millisecond, without SA_RESTART. */
static void
start_interrupting(void)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	struct itimerval it = {{0, 300}, {0, 300}};
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void
stop_interrupting(void)
{
	struct itimerval it = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_DFL);
}

/*
 * A big RUN through a pipe (64 KiB buffer) to a slow reader, with signals
 * landing all the while: the writer sees EINTR and short writes, the
 * reader EINTR and short reads, and the frame still arrives whole.
 */
static void
test_fd_helpers_survive_eintr_and_short_io(void **state)
{
	(void)state;
	int p[2];
	char err[256];
	assert_int_equal(pipe(p), 0);
	char *src = repeat('s', SG_FRAME_SOURCE_MAX);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(p[1]);
		start_interrupting();
		struct sg_frame_decoder *d = sg_frame_decoder_new(SG_FRAME_PEER_GATEWAY, 0);
		struct sg_frame_msg got;
		usleep(20000); /* let the writer fill the pipe first */
		int ok = sg_frame_read_fd(p[0], d, &got) == SG_FRAME_MESSAGE &&
		         strcmp(got.run.source, src) == 0 &&
		         sg_frame_read_fd(p[0], d, &got) == SG_FRAME_EOF;
		_exit(ok ? 0 : 1);
	}
	close(p[0]);
	start_interrupting();
	json_t *input = json_null();
	struct sg_frame_msg m = {
	    .type = SG_FRAME_RUN,
	    .run = {.run_id = "r", .template_name = "t", .source = src, .input = input}};
	int rc = sg_frame_write_fd(p[1], &m, 0, err, sizeof(err));
	stop_interrupting();
	close(p[1]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(rc, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_every_type_in_any_chunking),
	    cmocka_unit_test(test_two_frames_in_one_feed_stop_after_the_first),
	    cmocka_unit_test(test_cap_at_n_minus_one_n_and_n_plus_one),
	    cmocka_unit_test(test_over_cap_is_refused_from_the_header_alone),
	    cmocka_unit_test(test_encode_respects_the_cap),
	    cmocka_unit_test(test_cut_frames_at_eof),
	    cmocka_unit_test(test_bad_json_and_bad_types),
	    cmocka_unit_test(test_ready_and_call_members),
	    cmocka_unit_test(test_capability_length_cap),
	    cmocka_unit_test(test_run_members_and_caps),
	    cmocka_unit_test(test_call_result_needs_exactly_one_outcome),
	    cmocka_unit_test(test_done_members),
	    cmocka_unit_test(test_done_caps),
	    cmocka_unit_test(test_conversation_order),
	    cmocka_unit_test(test_encode_refuses_what_the_peer_would),
	    cmocka_unit_test(test_fd_round_trip_and_eof),
	    cmocka_unit_test(test_fd_helpers_survive_eintr_and_short_io),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
