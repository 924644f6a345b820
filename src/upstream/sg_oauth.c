/*
 * sg_oauth: the client-credentials token cache and the token exchange's
 * encodings.  The exchange itself (a fetch) is the route step's: this file
 * does no I/O.
 */
#include "upstream/sg_oauth.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/sg_json.h"

#define MAX_ENTRIES 256
#define MAX_LIFETIME_S (365 * 86400)
#define NS_PER_S 1000000000ull
/* A refresher that has not reported in this long is presumed gone: another may start. */
#define REFRESH_STUCK_NS (60 * NS_PER_S)

struct sg_oauth_entry {
	pthread_mutex_t mu;
	char connector[72];
	int slot;
	char *token; /* sodium_malloc'd, SG_OAUTH_TOKEN_MAX bytes */
	size_t token_len;
	uint64_t expires_ns;          /* 0: no token */
	uint64_t refresh_ns;          /* 80% of the lifetime */
	uint64_t refreshing_since_ns; /* 0: no refresh in flight */
	uint64_t stored_ns;           /* when the token was stored */
	uint64_t refreshes;
};

struct sg_oauth {
	pthread_mutex_t mu;
	size_t n;
	struct sg_oauth_entry *e[MAX_ENTRIES];
};

struct sg_oauth *
sg_oauth_new(void)
{
	/* sodium_malloc needs the library set up; a second init is a no-op. */
	struct sg_oauth *o = sodium_init() < 0 ? NULL : calloc(1, sizeof(*o));
	if (o != NULL)
		pthread_mutex_init(&o->mu, NULL);
	return o;
}

void
sg_oauth_free(struct sg_oauth *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++) {
		sodium_free(o->e[i]->token);
		pthread_mutex_destroy(&o->e[i]->mu);
		free(o->e[i]);
	}
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static struct sg_oauth_entry *
entry_new(const char *connector, int slot)
{
	struct sg_oauth_entry *e = calloc(1, sizeof(*e));
	if (e == NULL || strlen(connector) >= sizeof(e->connector) ||
	    (e->token = sodium_malloc(SG_OAUTH_TOKEN_MAX)) == NULL) {
		free(e);
		return NULL;
	}
	pthread_mutex_init(&e->mu, NULL);
	snprintf(e->connector, sizeof(e->connector), "%s", connector);
	e->slot = slot;
	return e;
}

struct sg_oauth_entry *
sg_oauth_entry(struct sg_oauth *o, const char *connector, int slot)
{
	struct sg_oauth_entry *found = NULL;
	pthread_mutex_lock(&o->mu);
	for (size_t i = 0; i < o->n && found == NULL; i++)
		if (o->e[i]->slot == slot && strcmp(o->e[i]->connector, connector) == 0)
			found = o->e[i];
	if (found == NULL && o->n < MAX_ENTRIES && (found = entry_new(connector, slot)) != NULL)
		o->e[o->n++] = found;
	pthread_mutex_unlock(&o->mu);
	return found;
}

enum sg_oauth_state
sg_oauth_take(struct sg_oauth_entry *e, uint64_t now_ns, char *token, size_t n)
{
	enum sg_oauth_state st;
	pthread_mutex_lock(&e->mu);
	bool valid = e->expires_ns > now_ns && e->token_len < n;
	/* Threads read the clock at different moments: another's stamp may be later than ours. */
	bool in_flight =
	    e->refreshing_since_ns != 0 &&
	    (now_ns < e->refreshing_since_ns || now_ns - e->refreshing_since_ns < REFRESH_STUCK_NS);
	if (!in_flight && (!valid || now_ns >= e->refresh_ns)) {
		e->refreshing_since_ns = now_ns ? now_ns : 1;
		e->refreshes++;
		st = SG_OAUTH_REFRESH;
	} else {
		st = valid ? SG_OAUTH_READY : SG_OAUTH_WAIT;
	}
	if (st == SG_OAUTH_READY) {
		memcpy(token, e->token, e->token_len);
		token[e->token_len] = '\0';
	}
	pthread_mutex_unlock(&e->mu);
	return st;
}

void
sg_oauth_store(struct sg_oauth_entry *e, uint64_t now_ns, const char *token, size_t len,
               int64_t expires_in_s)
{
	pthread_mutex_lock(&e->mu);
	e->refreshing_since_ns = 0;
	if (len < SG_OAUTH_TOKEN_MAX && expires_in_s > 0) {
		sodium_memzero(e->token, SG_OAUTH_TOKEN_MAX);
		memcpy(e->token, token, len);
		e->token_len = len;
		uint64_t life = (uint64_t)expires_in_s * NS_PER_S;
		e->expires_ns = now_ns + life;
		e->refresh_ns = now_ns + life / 5 * 4;
		e->stored_ns = now_ns;
	}
	pthread_mutex_unlock(&e->mu);
}

void
sg_oauth_failed(struct sg_oauth_entry *e)
{
	pthread_mutex_lock(&e->mu);
	e->refreshing_since_ns = 0;
	pthread_mutex_unlock(&e->mu);
}

void
sg_oauth_invalidate(struct sg_oauth_entry *e, uint64_t issued_after_ns)
{
	pthread_mutex_lock(&e->mu);
	if (e->stored_ns <= issued_after_ns) {
		sodium_memzero(e->token, SG_OAUTH_TOKEN_MAX);
		e->token_len = 0;
		e->expires_ns = e->refresh_ns = 0;
	}
	pthread_mutex_unlock(&e->mu);
}

uint64_t
sg_oauth_refreshes(struct sg_oauth_entry *e)
{
	pthread_mutex_lock(&e->mu);
	uint64_t n = e->refreshes;
	pthread_mutex_unlock(&e->mu);
	return n;
}

/* ---- the exchange's encodings ---- */

char *
sg_oauth_form(const char *scope)
{
	char *esc = scope ? curl_easy_escape(NULL, scope, 0) : NULL;
	char *out = NULL;
	if ((scope == NULL || esc != NULL) && asprintf(&out, "grant_type=client_credentials%s%s",
	                                               esc ? "&scope=" : "", esc ? esc : "") < 0)
		out = NULL;
	curl_free(esc);
	return out;
}

void
sg_oauth_wipe_free(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

static void
curl_wipe_free(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		curl_free(s);
	}
}

char *
sg_oauth_basic(const char *secret)
{
	const char *colon = strchr(secret, ':');
	if (colon == NULL)
		return NULL;
	char *id = curl_easy_escape(NULL, secret, (int)(colon - secret));
	char *pw = curl_easy_escape(NULL, colon + 1, 0);
	char *pair = NULL, *out = NULL;
	if (id != NULL && pw != NULL && asprintf(&pair, "%s:%s", id, pw) >= 0) {
		size_t plen = strlen(pair),
		       b64 = sodium_base64_ENCODED_LEN(plen, sodium_base64_VARIANT_ORIGINAL);
		if ((out = malloc(6 + b64)) != NULL) {
			memcpy(out, "Basic ", 6);
			sodium_bin2base64(out + 6, b64, (const unsigned char *)pair, plen,
			                  sodium_base64_VARIANT_ORIGINAL);
		}
		sg_oauth_wipe_free(pair);
	}
	curl_wipe_free(id);
	curl_wipe_free(pw);
	return out;
}

/* A token goes into a header: visible ASCII only, so it can carry no CR or LF. */
static bool
token_chars_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return len > 0;
}

int
sg_oauth_parse(const char *body, size_t len, char *token, size_t n, int64_t *expires_in_s,
               char *err, size_t errlen)
{
	struct sg_json_doc doc;
	struct sg_json_val v;
	size_t tl = 0;
	const char *t = NULL;
	if (sg_json_parse(body, len, 8, &doc, NULL) != SG_JSON_OK ||
	    sg_json_type(doc.root) != SG_JSON_OBJECT)
		return snprintf(err, errlen, "the token endpoint's answer is not a JSON object"),
		       -1;
	if (!sg_json_get(doc.root, "access_token", 12, &v) || sg_json_type(v) != SG_JSON_STRING ||
	    (t = sg_json_string(v, &tl)) == NULL || !token_chars_ok(t, tl))
		return snprintf(err, errlen,
		                "the token endpoint's answer has no usable access_token"),
		       -1;
	if (tl >= n)
		return snprintf(err, errlen, "the token endpoint's access_token is over %zu bytes",
		                n - 1),
		       -1;
	*expires_in_s = 3600;
	if (sg_json_get(doc.root, "expires_in", 10, &v)) {
		enum sg_json_type ty = sg_json_type(v);
		if (ty == SG_JSON_UINT || (ty == SG_JSON_INT && sg_json_int(v) > MAX_LIFETIME_S))
			*expires_in_s = MAX_LIFETIME_S; /* refreshed within a year anyway */
		else if (ty == SG_JSON_INT && sg_json_int(v) > 0)
			*expires_in_s = sg_json_int(v);
		else
			return snprintf(
			           err, errlen,
			           "the token endpoint's expires_in is not a positive number of "
			           "seconds"),
			       -1;
	}
	memcpy(token, t, tl);
	token[tl] = '\0';
	return 0;
}
