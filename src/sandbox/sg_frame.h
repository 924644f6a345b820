/*
 * sg_frame: the message protocol between the gateway and a sandbox worker.
 *
 * A frame is a 4-byte big-endian payload length, then the payload: one JSON
 * object (jansson, duplicate keys refused) whose "type" member names the
 * message.  Each message type has one struct below; every member is checked
 * exactly (no unknown members, no missing ones, lengths and counts capped).
 *
 *   gateway -> worker   RUN, CALL_RESULT
 *   worker  -> gateway  READY (once, first), CALL, DONE
 *
 * The gateway holds power and kills a worker on any protocol error, so the
 * decoder trusts nothing: the length is checked against the cap before a
 * payload byte is read, and once a decoder has failed it stays failed.
 *
 * Integers travel as JSON integers.  jansson's integers are signed 64-bit,
 * so a "u64" field carries 0 .. 2^63-1; larger values are refused.
 */
#ifndef SG_FRAME_H
#define SG_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SG_FRAME_HEADER 4u
#define SG_FRAME_MAX (1024u * 1024u) /* default payload cap */

/* Caps on members, in bytes of UTF-8 unless a count. */
#define SG_FRAME_RUN_ID_MAX 64
#define SG_FRAME_TEMPLATE_MAX 128
#define SG_FRAME_SOURCE_MAX (256u * 1024u)
#define SG_FRAME_CAPABILITY_MAX 160
#define SG_FRAME_ERROR_CODE_MAX 64
#define SG_FRAME_ERROR_DETAIL_MAX 1024
#define SG_FRAME_MESSAGE_MAX 512
#define SG_FRAME_LOGS_MAX 256      /* count of log lines in DONE */
#define SG_FRAME_LOG_LINE_MAX 4096 /* bytes per log line */

enum sg_frame_type {
	SG_FRAME_READY = 1,
	SG_FRAME_RUN,
	SG_FRAME_CALL,
	SG_FRAME_CALL_RESULT,
	SG_FRAME_DONE,
};

/* Why a run ended, as the worker reports it in DONE. */
enum sg_frame_stop {
	SG_STOP_OK,
	SG_STOP_COMPILE_ERROR,
	SG_STOP_SCRIPT_ERROR,
	SG_STOP_INSTRUCTIONS,
	SG_STOP_MEMORY,
	SG_STOP_CALLS,
	SG_STOP_GUARD,
	SG_STOP_BAD_RESULT,
	SG_STOP_NO_RUN,
};

/*
 * The structs below are used both ways.  To send, the caller fills them with
 * borrowed pointers (nothing is taken over).  A decoded message's pointers
 * are borrowed from sg_frame_msg.root and stay valid until
 * sg_frame_msg_clear().  Strings never contain NUL bytes.
 */
struct sg_frame_ready {
	int32_t pid; /* pid as the worker sees it (1..2^31-1); 0 = not sent */
};

struct sg_frame_limits {
	uint64_t instructions;
	uint64_t memory_bytes;
	uint32_t calls;
	uint32_t log_bytes;
};

struct sg_frame_run {
	const char *run_id;        /* 1..64 printable ASCII, no spaces */
	const char *template_name; /* "template" on the wire; 1..128 printable ASCII */
	const char *source;        /* Lua text, at most SG_FRAME_SOURCE_MAX bytes */
	json_t *input;             /* any JSON value (null included); required */
	struct sg_frame_limits limits;
};

struct sg_frame_call {
	uint32_t seq;           /* 1 for a run's first call, then 2, 3, ... */
	const char *capability; /* "connector.operation", [a-z][a-z0-9_-]* each side */
	json_t *args;           /* a JSON object */
};

struct sg_frame_call_result {
	uint32_t seq;             /* the seq of the CALL it answers */
	json_t *result;           /* exactly one of result and error_code is set */
	const char *error_code;   /* 1..64 of [a-z0-9_] */
	const char *error_detail; /* required with error_code, may be "" */
};

struct sg_frame_done {
	const char *run_id;
	enum sg_frame_stop stop;
	json_t *output;      /* present exactly when stop is SG_STOP_OK */
	json_t *logs;        /* array of strings; NULL sends [] */
	const char *message; /* present exactly when stop is not SG_STOP_OK */
	int32_t line;        /* with message: source line, 0 when unknown */
	uint64_t instructions;
	uint64_t peak_memory;
	uint32_t calls;
};

struct sg_frame_msg {
	enum sg_frame_type type;
	union {
		struct sg_frame_ready ready;
		struct sg_frame_run run;
		struct sg_frame_call call;
		struct sg_frame_call_result call_result;
		struct sg_frame_done done;
	};
	json_t *root; /* decoded messages own their JSON here; NULL when built by hand */
};

/* Releases a decoded message's JSON and zeroes it.  Safe on a zeroed msg. */
void sg_frame_msg_clear(struct sg_frame_msg *m);

const char *sg_frame_type_name(enum sg_frame_type t);
const char *sg_frame_stop_name(enum sg_frame_stop s);

/* ---- encoding ---- */

/*
 * The JSON object for `m`, checked by the same rules the receiver applies.
 * NULL with the reason in `err` when the message is not one a peer would
 * accept.  The caller owns the result (json_decref).
 */
json_t *sg_frame_msg_json(const struct sg_frame_msg *m, char *err, size_t errlen);

/*
 * Builds one whole frame (header and payload) for `m` in a malloc'd buffer:
 * *out and *out_len, freed by the caller.  The message is checked by the
 * same rules the receiver applies, so a frame that would be refused is never
 * sent: returns -1 with the reason in `err` instead, and also when the
 * payload would exceed `cap` (0 means SG_FRAME_MAX).
 */
int sg_frame_encode(const struct sg_frame_msg *m, size_t cap, uint8_t **out, size_t *out_len,
                    char *err, size_t errlen);

/* ---- decoding one payload (the per-peer dispatch) ---- */

/*
 * Decode one complete payload received from a worker: accepts READY, CALL
 * and DONE only.  Checks the message alone; sequence rules live in the
 * decoder below.  On success `m` owns its JSON (sg_frame_msg_clear); on
 * failure returns -1 with the reason in `err` and `m` is left zeroed.
 */
int sg_frame_decode_from_worker(const void *payload, size_t len, struct sg_frame_msg *m, char *err,
                                size_t errlen);
/* The same for a payload received from the gateway: RUN and CALL_RESULT only. */
int sg_frame_decode_from_gateway(const void *payload, size_t len, struct sg_frame_msg *m, char *err,
                                 size_t errlen);

/* ---- the incremental decoder ---- */

/* Whose frames a decoder reads. */
enum sg_frame_peer {
	SG_FRAME_PEER_WORKER,  /* used by the gateway */
	SG_FRAME_PEER_GATEWAY, /* used by the worker */
};

enum sg_frame_rc {
	SG_FRAME_ERROR = -1, /* protocol or I/O error; the decoder is now dead */
	SG_FRAME_MORE = 0,   /* every byte was taken; no message complete yet */
	SG_FRAME_MESSAGE = 1,
	SG_FRAME_EOF = 2, /* sg_frame_read_fd only: the peer closed between frames */
};

struct sg_frame_decoder;

/*
 * A decoder for one peer's byte stream.  `cap` bounds each payload (0 means
 * SG_FRAME_MAX; at most UINT32_MAX).  Besides each message's own checks it
 * enforces the order of the conversation:
 *  - from a worker: READY first and only once; CALL seq is 1 for the first
 *    call after READY or after a DONE, then one more each time;
 *  - from the gateway: CALL_RESULT only after a RUN, its seq 1 for the first
 *    result after each RUN, then one more each time.
 * Matching DONE's run_id to the RUN sent, counting calls against the RUN's
 * limits and the wall clock are the caller's: they need the RUN it sent.
 * Returns NULL when out of memory.
 */
struct sg_frame_decoder *sg_frame_decoder_new(enum sg_frame_peer peer, size_t cap);
void sg_frame_decoder_free(struct sg_frame_decoder *d);
/*
 * For a worker whose READY an earlier decoder read (the gateway reads it
 * when the worker is made, and takes a fresh decoder for each run): a
 * second READY is then refused like any other.
 */
void sg_frame_decoder_skip_ready(struct sg_frame_decoder *d);

/*
 * Feeds up to `len` bytes, stopping right after the first complete message.
 * *used says how many bytes were taken; feed the rest again (a read may hold
 * several frames).  SG_FRAME_MESSAGE fills `m` (clear it after use);
 * SG_FRAME_MORE means all `len` bytes were taken; SG_FRAME_ERROR is final
 * and every later call returns it again.  A payload that arrives whole in
 * one feed is parsed in place; only split payloads are buffered.
 */
enum sg_frame_rc sg_frame_decoder_feed(struct sg_frame_decoder *d, const void *buf, size_t len,
                                       size_t *used, struct sg_frame_msg *m);

/*
 * The peer closed its end: returns 0 when that happened between frames, -1
 * (and the decoder fails) when a frame was cut short.
 */
int sg_frame_decoder_finish(struct sg_frame_decoder *d);

/* Why the decoder failed, for the log line; "" while it has not.  Printable ASCII only. */
const char *sg_frame_decoder_error(const struct sg_frame_decoder *d);

/* ---- blocking helpers for the worker side ---- */

/*
 * Reads exactly one message from a blocking fd, never reading past its end
 * (so nothing is lost between calls).  Retries EINTR.  Returns
 * SG_FRAME_MESSAGE, SG_FRAME_EOF when the peer closed between frames, or
 * SG_FRAME_ERROR with the reason in sg_frame_decoder_error().
 */
enum sg_frame_rc sg_frame_read_fd(int fd, struct sg_frame_decoder *d, struct sg_frame_msg *m);

/*
 * Encodes `m` (as sg_frame_encode) and writes the whole frame, retrying
 * EINTR and short writes.  On a socket it sends with MSG_NOSIGNAL, so a
 * closed peer is EPIPE, not a signal.  Returns 0, or -1 with `err`.
 */
int sg_frame_write_fd(int fd, const struct sg_frame_msg *m, size_t cap, char *err, size_t errlen);

#endif
