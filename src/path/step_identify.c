/*
 * identify: who is calling.  The bearer key's id selects one stored hash,
 * which is compared in constant time; expiry and revocation are checked
 * after the hash matches, so an attacker learns nothing about keys they do
 * not hold.
 */
#include <string.h>
#include <strings.h>

#include "core/sg_keys.h"
#include "path/sg_path.h"
#include "throttle/sg_unauth.h"

static enum sg_step_rc
fail_missing_or_malformed(struct sg_req *r, const char *h)
{
	if (h == NULL || *h == '\0')
		return sg_req_fail(r, SG_P_KEY_MISSING, "no Authorization header was sent");
	return sg_req_fail(
	    r, SG_P_KEY_MALFORMED,
	    "the Authorization header must be 'Bearer ' followed by a key starting with 'sgk_' "
	    "or a session token starting with 'sgs_'");
}

static enum sg_step_rc
check_key(struct sg_req *r, const struct sg_key_entry *k)
{
	if (k->revoked_at != 0)
		return sg_req_fail(r, SG_P_KEY_REVOKED, "key %s was revoked", k->id);
	if (k->expires_at != 0 && r->wall_s >= k->expires_at)
		return sg_req_fail(r, SG_P_KEY_EXPIRED, "key %s has expired", k->id);
	const struct sg_role *role = sg_policy_role(r->snap->defs->policy, k->role);
	r->principal.key = k;
	r->principal.mode = k->mode;
	if (role == NULL)
		return sg_req_fail(r, SG_P_ROLE_UNKNOWN, "role \"%s\" is not in the current policy",
		                   k->role);
	r->principal.role = role;
	/* Known from here on, so that even a refusal before throttle says it. */
	r->cls = role->default_class;
	return SG_STEP_NEXT;
}

/*
 * A session token acts as the key that started the session, so revoking
 * or expiring that key also ends its sessions.
 */
static enum sg_step_rc
identify_session(struct sg_req *r, const char *token, size_t len)
{
	char id[SG_KEY_ID_LEN + 1];
	if (r->gw->sessions == NULL || sg_token_parse(SG_SESSION_PREFIX, token, len, id) != 0)
		return fail_missing_or_malformed(r, r->authorization);
	struct sg_session *ss = sg_sessions_get(r->gw->sessions, id);
	if (ss == NULL || !sg_key_verify(r->gw->server_secret, token, len, ss->hash)) {
		sg_session_unref(ss);
		return sg_req_fail(r, SG_P_SESSION_UNKNOWN, "this session is not recognised");
	}
	r->principal.session = ss; /* released by sg_req_finish */
	if (r->wall_s >= ss->expires_at)
		return sg_req_fail(r, SG_P_SESSION_EXPIRED, "session %s ended %lld seconds ago",
		                   ss->id, (long long)(r->wall_s - ss->expires_at));
	const struct sg_key_entry *k = sg_snapshot_key(r->snap, ss->key_id);
	if (k == NULL)
		return sg_req_fail(r, SG_P_KEY_UNKNOWN,
		                   "the key that started this session is gone");
	return check_key(r, k);
}

static enum sg_step_rc
identify(struct sg_req *r)
{
	const char *h = r->authorization;
	char id[SG_KEY_ID_LEN + 1];

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return fail_missing_or_malformed(r, h);
	const char *key = h + 7;
	while (*key == ' ')
		key++;
	size_t len = strlen(key);
	while (len > 0 && key[len - 1] == ' ')
		len--;
	if (len > 4 && memcmp(key, SG_SESSION_PREFIX, 4) == 0)
		return identify_session(r, key, len);
	if (sg_key_parse(key, len, id) != 0)
		return fail_missing_or_malformed(r, h);
	const struct sg_key_entry *k = sg_snapshot_key(r->snap, id);
	if (k == NULL || !sg_key_verify(r->gw->server_secret, key, len, k->hash))
		return sg_req_fail(r, SG_P_KEY_UNKNOWN, "this API key is not recognised");
	return check_key(r, k);
}

enum sg_step_rc
sg_step_identify(struct sg_req *r)
{
	enum sg_step_rc rc = identify(r);
	/* Counted where it is decided; the client's address pays for it (sg_unauth.h). */
	if (rc != SG_STEP_NEXT && r->decision == SG_DEC_UNAUTHENTICATED)
		sg_unauth_refused(r->gw->unauth, r->now_ns);
	return rc;
}
