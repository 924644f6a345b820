/*
 * Adding a credential to an upstream request, per auth scheme.  Kept apart
 * from the table so that only the route step's users link sg_upreq.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_connector.h"
#include "upstream/sg_credential.h"
#include "upstream/sg_credential_int.h"
#include "upstream/sg_upreq.h"

/* "<prefix><value>" in a temporary that is wiped before it goes. */
static int
add_prefixed(struct sg_upreq *rq, const char *header, const char *prefix, const char *value,
             size_t n)
{
	size_t plen = strlen(prefix);
	char *buf = malloc(plen + n + 1);
	if (buf == NULL)
		return -1;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, value, n + 1);
	int rc = sg_upreq_add_header(rq, header, buf);
	sodium_memzero(buf, plen + n + 1);
	free(buf);
	return rc;
}

static int
add_basic(struct sg_upreq *rq, const struct sg_cred *cr)
{
	size_t b64 = sodium_base64_ENCODED_LEN(cr->len, sodium_base64_VARIANT_ORIGINAL);
	char *enc = malloc(b64);
	if (enc == NULL)
		return -1;
	sodium_bin2base64(enc, b64, (const unsigned char *)cr->value, cr->len,
	                  sodium_base64_VARIANT_ORIGINAL);
	int rc = add_prefixed(rq, "Authorization", "Basic ", enc, strlen(enc));
	sodium_memzero(enc, b64);
	free(enc);
	return rc;
}

static int
add_scheme(const struct sg_auth_def *a, const struct sg_cred *cr, struct sg_upreq *rq)
{
	switch (a->scheme) {
	case SG_AUTH_BEARER:
		return add_prefixed(rq, "Authorization", "Bearer ", cr->value, cr->len);
	case SG_AUTH_API_KEY:
		if (a->in_query)
			return sg_upreq_add_query(rq, a->name ? a->name : "api_key", cr->value);
		return sg_upreq_add_header(rq, a->name ? a->name : "X-API-Key", cr->value);
	case SG_AUTH_BASIC:
		return add_basic(rq, cr);
	default:
		return -1;
	}
}

int
sg_credential_apply(struct sg_credstore *cs, const struct sg_connector *c, enum sg_cred_slot slot,
                    struct sg_upreq *rq)
{
	switch (c->auth_def.scheme) {
	case SG_AUTH_NONE:
		return 0;
	case SG_AUTH_OAUTH2:
		/* The route step exchanges the client credentials for a token (sg_oauth.h). */
		return -1;
	default:
		break;
	}
	if (cs == NULL)
		return 1;
	pthread_rwlock_rdlock(&cs->lock);
	const struct sg_cred *cr = sg_cred_table_find(&cs->t, c->name, slot);
	int rc = cr != NULL ? add_scheme(&c->auth_def, cr, rq) : 1;
	pthread_rwlock_unlock(&cs->lock);
	return rc;
}

int
sg_credential_secret(struct sg_credstore *cs, const char *connector, enum sg_cred_slot slot,
                     char *out, size_t n)
{
	if (cs == NULL)
		return 1;
	pthread_rwlock_rdlock(&cs->lock);
	const struct sg_cred *cr = sg_cred_table_find(&cs->t, connector, slot);
	int rc = cr == NULL ? 1 : cr->len >= n ? -1 : 0;
	if (rc == 0)
		memcpy(out, cr->value, cr->len + 1);
	pthread_rwlock_unlock(&cs->lock);
	return rc;
}
