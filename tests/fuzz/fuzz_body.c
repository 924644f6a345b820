/*
 * The decision path with hostile request bodies and Authorization headers:
 * the first byte picks the key (or a garbled one), the second the
 * operation, the rest is the body.  Built once against the real examples.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/sg_fixture.h"
#include "path/sg_path.h"

static struct sg_fixture fixture;
static int ready;

static const char *const targets[][2] = {
	{"crm", "create_contact"}, {"crm", "get_contact"}, {"mail", "send"},
	{"calendar", "create_event"}, {"nope", "x"}, {"crm", "nope"},
};

static void
teardown(void)
{
	sg_fixture_free(&fixture);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char auth[160];
	struct sg_req r;
	if (!ready) {
		if (sg_fixture_init(&fixture, 6) != 0)
			abort();
		atexit(teardown);
		ready = 1;
	}
	if (size < 2)
		return 0;
	size_t k = data[0] % (fixture.n_keys + 2);
	if (k < fixture.n_keys)
		snprintf(auth, sizeof(auth), "Bearer %s", fixture.keys[k]);
	else
		snprintf(auth, sizeof(auth), "Bearer sgk_%02x", data[0]);
	const char *const *t = targets[data[1] % (sizeof(targets) / sizeof(targets[0]))];
	sg_req_init(&r, &fixture.gw, fixture.snap);
	r.authorization = auth;
	r.connector_name = t[0];
	r.operation_name = t[1];
	r.body = (const char *)data + 2;
	r.body_len = size - 2;
	r.now_ns = 1000000000ull * (1 + data[0]);
	sg_path_run(&r);
	sg_req_finish(&r);
	return 0;
}
