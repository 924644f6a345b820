/*
 * fuzz_upreq: upstream requests built from fuzzed input against a fixed
 * connector.  One run is: a byte choosing the operation, a forwarded
 * header's value up to the first '\n', then the call's input (JSON, valid
 * or not).  Beyond memory errors, the promises checked: a built request's
 * URL is the base URL, then the template's segments with no '/', "..",
 * %2F or raw byte outside printable ASCII added by a parameter; no header
 * line holds CR or LF or carries Authorization; a body is one JSON object;
 * a refusal leaves nothing behind and says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/sg_connector.h"
#include "json/sg_json.h"
#include "upstream/sg_upreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char yaml[] =
    "kind: connector\n"
    "name: fz\n"
    "version: 1.0.0\n"
    "description: Fuzzed.\n"
    "environments:\n"
    "  sandbox: { simulator: true }\n"
    "  live: { base_url: \"https://api.example.test/v1\" }\n"
    "forward_headers: [X-Request-Id]\n"
    "operations:\n"
    "  get:\n"
    "    method: GET\n"
    "    path: /a/{id}/b\n"
    "    data_domain: public\n"
    "    input: { type: object, required: [id], properties: { id: {} } }\n"
    "    output: { type: object }\n"
    "  post:\n"
    "    method: POST\n"
    "    path: /c/{x}/{y}\n"
    "    data_domain: public\n"
    "    input: { type: object, required: [x, y], properties: { x: {}, y: {} } }\n"
    "    output: { type: object }\n"
    "  del:\n"
    "    method: DELETE\n"
    "    path: /d\n"
    "    data_domain: public\n"
    "    input: { type: object }\n"
    "    output: { type: object }\n";

static const char base[] = "https://api.example.test/v1";

static void
check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static size_t
count(const char *s, size_t n, char ch)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == ch;
	return k;
}

static void
check_built(const struct sg_upreq *rq, const struct sg_operation *op)
{
	size_t blen = sizeof(base) - 1;
	check(strncmp(rq->url, base, blen) == 0);
	for (const char *p = rq->url; *p; p++)
		check(*p > 0x20 && *p < 0x7f);
	const char *path = rq->url + blen;
	size_t plen = strcspn(path, "?");
	check(count(path, plen, '/') == count(op->path, strlen(op->path), '/'));
	check(memmem(path, plen, "..", 2) == NULL);
	check(strncasecmp(path, "%2F", 3) != 0 && memmem(path, plen, "%2F", 3) == NULL &&
	      memmem(path, plen, "%2f", 3) == NULL);
	check(rq->n_headers <= SG_UPREQ_MAX_HEADERS);
	for (size_t i = 0; i < rq->n_headers; i++) {
		check(strpbrk(rq->headers[i], "\r\n") == NULL);
		check(strncasecmp(rq->headers[i], "authorization", 13) != 0);
	}
	if (rq->body != NULL) {
		struct sg_json_doc doc;
		check(sg_json_parse(rq->body, rq->body_len, 512, &doc, NULL) == SG_JSON_OK);
		check(sg_json_type(doc.root) == SG_JSON_OBJECT);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sg_connector *c;
	if (c == NULL) {
		struct sg_diags d = {0};
		c = sg_connector_parse("fz.yaml", yaml, sizeof(yaml) - 1, 1, &d);
		check(c != NULL);
		sg_diags_free(&d);
	}
	if (size < 1)
		return 0;
	const struct sg_operation *op = &c->ops[data[0] % c->n_ops];
	const char *rest = (const char *)data + 1;
	size_t n = size - 1;
	const char *nl = memchr(rest, '\n', n);
	size_t vlen = nl ? (size_t)(nl - rest) : 0;
	char *value = strndup(rest, vlen); /* stops at a NUL, as a C header value would */
	check(value != NULL);
	const char *input = nl ? nl + 1 : rest;
	size_t input_len = n - (size_t)(input - rest);
	const struct sg_upreq_caller_header h[] = {
	    {"X-Request-Id", value}, {"Authorization", value}, {"x-other", value}};
	struct sg_upreq rq;
	char err[256];
	const char *bad = NULL;
	int rc = sg_upreq_build(&rq, c, op, &c->live, input, input_len, NULL, h, 3, err,
	                        sizeof(err), &bad);
	if (rc == 0) {
		check_built(&rq, op);
		check(sg_upreq_add_query(&rq, "k", value) == 0);
		check(strpbrk(rq.url, " \r\n") == NULL);
	} else {
		check(rc == -1 && err[0] != '\0');
		check(rq.url == NULL && rq.n_headers == 0 && rq.body == NULL);
	}
	sg_upreq_release(&rq);
	(void)sg_upreq_retry_after(value, 1700000000);
	(void)sg_upreq_status_problem((long)(data[0]) * 3);
	free(value);
	return 0;
}
