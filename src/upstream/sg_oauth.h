/*
 * sg_oauth: OAuth2 client-credentials tokens (RFC 6749 §4.4) for
 * connectors whose auth scheme is oauth2, cached process-wide.
 *
 * A token is refreshed at 80% of its lifetime, by one call at a time: the
 * first call that finds the token due becomes the refresher (it fetches a
 * new token through its own thread's fetcher), and every other call that
 * needs one meanwhile waits and looks again.  A call that finds a token
 * still valid uses it even while a refresh is under way.
 *
 * Tokens live in locked memory and are wiped when replaced.
 */
#ifndef SG_OAUTH_H
#define SG_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_OAUTH_TOKEN_MAX 4096

struct sg_oauth;
struct sg_oauth_entry;

struct sg_oauth *sg_oauth_new(void);
void sg_oauth_free(struct sg_oauth *o);

/* The cache entry of one connector's credential slot; NULL when out of memory or full. */
struct sg_oauth_entry *sg_oauth_entry(struct sg_oauth *o, const char *connector, int slot);

enum sg_oauth_state {
	SG_OAUTH_READY,   /* *token holds a valid token */
	SG_OAUTH_REFRESH, /* the caller is now the refresher: fetch one, then sg_oauth_store */
	SG_OAUTH_WAIT,    /* another call is refreshing and no valid token is left: look again */
};

/*
 * What a call should do at `now_ns`.  On READY the token is copied into
 * `token` (NUL-terminated, `n` bytes at most).  A refresher that fails must
 * call sg_oauth_failed, or the others would wait for it until their deadline.
 */
enum sg_oauth_state sg_oauth_take(struct sg_oauth_entry *e, uint64_t now_ns, char *token, size_t n);
/* The refresher's new token, valid for `expires_in_s` from `now_ns`. */
void sg_oauth_store(struct sg_oauth_entry *e, uint64_t now_ns, const char *token, size_t len,
                    int64_t expires_in_s);
/* The refresh failed: the next call may try again. */
void sg_oauth_failed(struct sg_oauth_entry *e);
/*
 * The upstream refused the cached token (a 401): it is dropped, so the next
 * call fetches another, unless a token stored after `issued_after_ns` is
 * already there (another call has replaced it).
 */
void sg_oauth_invalidate(struct sg_oauth_entry *e, uint64_t issued_after_ns);
/* Refreshes started, for metrics and tests. */
uint64_t sg_oauth_refreshes(struct sg_oauth_entry *e);

/*
 * The token request's body: grant_type=client_credentials and the scope,
 * form-encoded.  Malloc'd; NULL when out of memory.
 */
char *sg_oauth_form(const char *scope);
/*
 * The Authorization header value for the token endpoint from the stored
 * "client_id:client_secret": "Basic " + base64(urlenc(id) ":" urlenc(secret)),
 * as RFC 6749 §2.3.1 says.  Malloc'd (wipe with sg_oauth_wipe_free); NULL
 * when the secret has no ':' or out of memory.
 */
char *sg_oauth_basic(const char *secret);
void sg_oauth_wipe_free(char *s);
/*
 * Reads a token endpoint's JSON answer: access_token (required, at most
 * SG_OAUTH_TOKEN_MAX - 1 bytes of visible ASCII) and expires_in (seconds;
 * 3600 when absent).  Returns 0, or -1 with a reason in `err` (never the
 * token).
 */
int sg_oauth_parse(const char *body, size_t len, char *token, size_t n, int64_t *expires_in_s,
                   char *err, size_t errlen);

#endif
