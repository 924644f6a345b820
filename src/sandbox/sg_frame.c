/*
 * Frames on the wire: a 4-byte big-endian length, then the payload.  The
 * incremental decoder judges each length before it buffers a byte, parses
 * payloads through the per-peer dispatch in sg_frame_msg.c, and then checks
 * the order of the conversation (READY first, call sequence numbers).
 */
#include "core/sg_io.h"
#include "sandbox/sg_frame.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t
effective_cap(size_t cap)
{
	if (cap == 0)
		return SG_FRAME_MAX;
	return cap > UINT32_MAX ? UINT32_MAX : cap;
}

static int say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Error text here quotes only numbers and strerror; peer text arrives pre-cleaned. */
static int
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
sg_frame_encode(const struct sg_frame_msg *m, size_t cap, uint8_t **out, size_t *out_len, char *err,
                size_t errlen)
{
	const char *what = sg_frame_type_name(m->type);
	*out = NULL;
	*out_len = 0;
	cap = effective_cap(cap);
	json_t *o = sg_frame_msg_json(m, err, errlen);
	if (o == NULL)
		return -1;
	int rc = 0;
	size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
	uint8_t *buf = NULL;
	if (n == 0)
		rc = say(err, errlen, "%s: cannot serialise the message", what);
	else if (n > cap)
		rc = say(err, errlen, "%s: payload of %zu bytes is over the %zu-byte frame cap",
		         what, n, cap);
	else if ((buf = malloc(SG_FRAME_HEADER + n)) == NULL)
		rc = say(err, errlen, "%s: out of memory for a %zu-byte frame", what, n);
	if (rc == 0) {
		buf[0] = (uint8_t)(n >> 24);
		buf[1] = (uint8_t)(n >> 16);
		buf[2] = (uint8_t)(n >> 8);
		buf[3] = (uint8_t)n;
		json_dumpb(o, (char *)buf + SG_FRAME_HEADER, n, JSON_COMPACT);
		*out = buf;
		*out_len = SG_FRAME_HEADER + n;
	}
	json_decref(o);
	return rc;
}

/* ---- the incremental decoder ---- */

struct sg_frame_decoder {
	enum sg_frame_peer peer;
	size_t cap;
	uint8_t header[SG_FRAME_HEADER];
	size_t header_have;
	size_t payload_len; /* known once the header is complete */
	size_t payload_have;
	uint8_t *payload; /* only while a payload split across feeds is collected */
	/* The conversation so far. */
	bool ready_seen;   /* from a worker */
	bool run_seen;     /* from the gateway */
	uint64_t next_seq; /* 64 bits so it never wraps back onto a valid seq */
	bool failed;
	char reason[192];
};

struct sg_frame_decoder *
sg_frame_decoder_new(enum sg_frame_peer peer, size_t cap)
{
	struct sg_frame_decoder *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->peer = peer;
	d->cap = effective_cap(cap);
	d->next_seq = 1;
	return d;
}

void
sg_frame_decoder_skip_ready(struct sg_frame_decoder *d)
{
	d->ready_seen = true;
}

void
sg_frame_decoder_free(struct sg_frame_decoder *d)
{
	if (d == NULL)
		return;
	free(d->payload);
	free(d);
}

const char *
sg_frame_decoder_error(const struct sg_frame_decoder *d)
{
	return d->reason;
}

static enum sg_frame_rc die(struct sg_frame_decoder *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum sg_frame_rc
die(struct sg_frame_decoder *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
	d->failed = true;
	free(d->payload);
	d->payload = NULL;
	return SG_FRAME_ERROR;
}

/* The length is judged before any payload byte is read or buffered. */
static enum sg_frame_rc
take_header(struct sg_frame_decoder *d)
{
	const uint8_t *h = d->header;
	uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (n == 0)
		return die(d, "empty frame (a payload is one JSON object)");
	if (n > d->cap)
		return die(d, "frame announces %" PRIu32 " bytes, over the %zu-byte cap", n,
		           d->cap);
	d->payload_len = n;
	d->payload_have = 0;
	return SG_FRAME_MORE;
}

/* Who may say what, and when: the rules in sg_frame_decoder_new's comment. */
static enum sg_frame_rc
check_order(struct sg_frame_decoder *d, const struct sg_frame_msg *m)
{
	const char *name = sg_frame_type_name(m->type);
	uint32_t seq = 0;
	switch (m->type) {
	case SG_FRAME_READY:
		if (d->ready_seen)
			return die(d, "a second \"ready\"");
		d->ready_seen = true;
		return SG_FRAME_MESSAGE;
	case SG_FRAME_RUN:
		d->run_seen = true;
		d->next_seq = 1;
		return SG_FRAME_MESSAGE;
	case SG_FRAME_DONE:
		if (!d->ready_seen)
			return die(d, "\"done\" before \"ready\"");
		d->next_seq = 1;
		return SG_FRAME_MESSAGE;
	case SG_FRAME_CALL:
		if (!d->ready_seen)
			return die(d, "\"call\" before \"ready\"");
		seq = m->call.seq;
		break;
	case SG_FRAME_CALL_RESULT:
		if (!d->run_seen)
			return die(d, "\"call_result\" before any \"run\"");
		seq = m->call_result.seq;
		break;
	}
	if (seq != d->next_seq)
		return die(d, "%s seq %" PRIu32 ", expected %" PRIu64, name, seq, d->next_seq);
	d->next_seq++;
	return SG_FRAME_MESSAGE;
}

static enum sg_frame_rc
deliver(struct sg_frame_decoder *d, const uint8_t *payload, size_t len, struct sg_frame_msg *m)
{
	char why[sizeof(d->reason)];
	int rc = d->peer == SG_FRAME_PEER_WORKER
	             ? sg_frame_decode_from_worker(payload, len, m, why, sizeof(why))
	             : sg_frame_decode_from_gateway(payload, len, m, why, sizeof(why));
	free(d->payload);
	d->payload = NULL;
	d->header_have = d->payload_len = d->payload_have = 0;
	if (rc == -1)
		return die(d, "%s", why);
	if (check_order(d, m) == SG_FRAME_ERROR) {
		sg_frame_msg_clear(m);
		return SG_FRAME_ERROR;
	}
	return SG_FRAME_MESSAGE;
}

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

enum sg_frame_rc
sg_frame_decoder_feed(struct sg_frame_decoder *d, const void *buf, size_t len, size_t *used,
                      struct sg_frame_msg *m)
{
	const uint8_t *p = buf;
	size_t off = 0;
	memset(m, 0, sizeof(*m));
	*used = 0;
	if (d->failed)
		return SG_FRAME_ERROR;
	while (off < len) {
		if (d->header_have < SG_FRAME_HEADER) {
			size_t n = min_size(SG_FRAME_HEADER - d->header_have, len - off);
			memcpy(d->header + d->header_have, p + off, n);
			d->header_have += n;
			off += n;
			*used = off;
			if (d->header_have == SG_FRAME_HEADER && take_header(d) == SG_FRAME_ERROR)
				return SG_FRAME_ERROR;
			continue;
		}
		size_t want = d->payload_len - d->payload_have;
		if (d->payload_have == 0 && len - off >= want) {
			*used = off + want; /* whole payload at hand: parse it in place */
			return deliver(d, p + off, want, m);
		}
		if (d->payload == NULL && (d->payload = malloc(d->payload_len)) == NULL)
			return die(d, "out of memory for a %zu-byte frame", d->payload_len);
		size_t n = min_size(want, len - off);
		memcpy(d->payload + d->payload_have, p + off, n);
		d->payload_have += n;
		off += n;
		*used = off;
		if (d->payload_have == d->payload_len)
			return deliver(d, d->payload, d->payload_len, m);
	}
	return SG_FRAME_MORE;
}

int
sg_frame_decoder_finish(struct sg_frame_decoder *d)
{
	if (d->failed)
		return -1;
	if (d->header_have == 0)
		return 0;
	if (d->header_have < SG_FRAME_HEADER)
		die(d, "peer closed inside a frame header (%zu of %u bytes)", d->header_have,
		    SG_FRAME_HEADER);
	else
		die(d, "peer closed inside a frame (%zu of %zu payload bytes)", d->payload_have,
		    d->payload_len);
	return -1;
}

/* ---- blocking helpers ---- */

enum sg_frame_rc
sg_frame_read_fd(int fd, struct sg_frame_decoder *d, struct sg_frame_msg *m)
{
	memset(m, 0, sizeof(*m));
	while (!d->failed) {
		bool in_header = d->header_have < SG_FRAME_HEADER;
		if (!in_header && d->payload == NULL &&
		    (d->payload = malloc(d->payload_len)) == NULL)
			return die(d, "out of memory for a %zu-byte frame", d->payload_len);
		/* Read only what completes the current part, never into the next frame. */
		uint8_t *dst =
		    in_header ? d->header + d->header_have : d->payload + d->payload_have;
		size_t want =
		    in_header ? SG_FRAME_HEADER - d->header_have : d->payload_len - d->payload_have;
		ssize_t n = read(fd, dst, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return die(d, "read failed: %s", strerror(errno));
		if (n == 0)
			return sg_frame_decoder_finish(d) == 0 ? SG_FRAME_EOF : SG_FRAME_ERROR;
		if (in_header) {
			d->header_have += (size_t)n;
			if (d->header_have == SG_FRAME_HEADER && take_header(d) == SG_FRAME_ERROR)
				return SG_FRAME_ERROR;
			continue;
		}
		d->payload_have += (size_t)n;
		if (d->payload_have == d->payload_len)
			return deliver(d, d->payload, d->payload_len, m);
	}
	return SG_FRAME_ERROR;
}

int
sg_frame_write_fd(int fd, const struct sg_frame_msg *m, size_t cap, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	if (sg_frame_encode(m, cap, &buf, &len, err, errlen) == -1)
		return -1;
	int rc = sg_write_all(fd, buf, len) == 0
	             ? 0
	             : say(err, errlen, "write failed: %s", strerror(errno));
	free(buf);
	return rc;
}
