/*
 * fuzz_frame: arbitrary bytes as the stream from a worker and, separately,
 * from the gateway.  The first byte seeds how the stream is cut into feeds.
 *
 * Beyond "no crash", it checks what the gateway relies on:
 *  - the decoder's verdict does not depend on how reads split the stream:
 *    random chunks and one whole feed give the same messages and the same
 *    final reason;
 *  - once failed, a decoder stays failed and takes no more bytes;
 *  - reasons are printable ASCII (they go to logs);
 *  - whatever was accepted re-encodes (the sender's checks agree with the
 *    receiver's) into the same JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sg_frame.h"

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	size_t n;
	enum sg_frame_type types[MAX_MSGS];
	int finish_rc;
	char reason[256];
};

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Accepted means re-encodable, and the copy reads back as the same JSON. */
static void
check_round_trip(enum sg_frame_peer peer, const struct sg_frame_msg *m)
{
	uint8_t *f;
	size_t n;
	char err[256];
	check(sg_frame_encode(m, UINT32_MAX, &f, &n, err, sizeof(err)) == 0);
	struct sg_frame_msg back;
	int rc = peer == SG_FRAME_PEER_WORKER
	             ? sg_frame_decode_from_worker(f + 4, n - 4, &back, err, sizeof(err))
	             : sg_frame_decode_from_gateway(f + 4, n - 4, &back, err, sizeof(err));
	check(rc == 0 && back.type == m->type && json_equal(back.root, m->root));
	sg_frame_msg_clear(&back);
	free(f);
}

static void
check_reason(const char *r)
{
	for (; *r; r++)
		check(*r >= 0x20 && *r <= 0x7e);
}

static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Feeds the stream in chunks (rng NULL: all at once) and records what came out. */
static void
run(enum sg_frame_peer peer, const uint8_t *data, size_t size, uint32_t *rng, struct outcome *out,
    bool round_trip)
{
	struct sg_frame_decoder *d = sg_frame_decoder_new(peer, 4096);
	memset(out, 0, sizeof(*out));
	size_t off = 0;
	enum sg_frame_rc rc = SG_FRAME_MORE;
	while (off < size && rc != SG_FRAME_ERROR) {
		size_t chunk = size - off;
		if (rng != NULL && chunk > 1) {
			uint32_t r = next_rand(rng);
			chunk = 1 + (r & 0x40 ? r % chunk : r % 9) % chunk;
		}
		size_t end = off + chunk;
		while (off < end) {
			size_t used;
			struct sg_frame_msg m;
			rc = sg_frame_decoder_feed(d, data + off, end - off, &used, &m);
			check(used <= end - off);
			off += used;
			if (rc == SG_FRAME_ERROR)
				break;
			check(rc == SG_FRAME_MORE ? off == end : rc == SG_FRAME_MESSAGE);
			if (rc == SG_FRAME_MESSAGE) {
				if (round_trip)
					check_round_trip(peer, &m);
				if (out->n < MAX_MSGS)
					out->types[out->n] = m.type;
				out->n++;
				sg_frame_msg_clear(&m);
			}
		}
	}
	if (rc == SG_FRAME_ERROR) {
		size_t used = 1;
		struct sg_frame_msg m;
		check(sg_frame_decoder_feed(d, data, size, &used, &m) == SG_FRAME_ERROR &&
		      used == 0);
		check(sg_frame_decoder_error(d)[0] != '\0');
	}
	out->finish_rc = sg_frame_decoder_finish(d);
	check((rc == SG_FRAME_ERROR) <= (out->finish_rc == -1));
	strncpy(out->reason, sg_frame_decoder_error(d), sizeof(out->reason) - 1);
	check_reason(out->reason);
	sg_frame_decoder_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t rng = 0x9e3779b9u ^ data[0];
	data++;
	size--;
	const enum sg_frame_peer peers[] = {SG_FRAME_PEER_WORKER, SG_FRAME_PEER_GATEWAY};
	for (size_t i = 0; i < 2; i++) {
		struct outcome whole, split;
		run(peers[i], data, size, NULL, &whole, true);
		run(peers[i], data, size, &rng, &split, false);
		check(whole.n == split.n && whole.finish_rc == split.finish_rc);
		check(memcmp(whole.types, split.types, sizeof(whole.types)) == 0);
		check(strcmp(whole.reason, split.reason) == 0);
	}
	return 0;
}
