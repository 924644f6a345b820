/*
 * The credential table.  Each value lives in its own sodium_malloc'd
 * region (guard pages around it, locked out of swap where the limit
 * allows, as libsodium does for it), so a stray read past another buffer
 * cannot reach it and it never lands in a core or swap file by accident.
 * I/O threads only read, under the read lock, and copy what one call needs
 * into its upstream request; the main thread swaps whole tables in under
 * the write lock.  Every temporary that held a value is wiped before it is
 * freed.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog/sg_connector.h"
#include "core/sg_fmt.h"
#include "obs/sg_log.h"
#include "upstream/sg_credential.h"
#include "upstream/sg_credential_int.h"

static const char *const slot_names[] = {[SG_CRED_CURRENT] = "current", [SG_CRED_NEXT] = "next"};

const char *
sg_cred_slot_name(enum sg_cred_slot slot)
{
	return slot_names[slot];
}

static void
cred_wipe(struct sg_cred *c)
{
	if (c->value != NULL) {
		sodium_memzero(c->value, c->len);
		sodium_free(c->value);
	}
	c->value = NULL;
	c->len = 0;
}

void
sg_cred_table_free(struct sg_cred_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		cred_wipe(&t->v[i]);
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

struct sg_cred *
sg_cred_table_find(const struct sg_cred_table *t, const char *connector, enum sg_cred_slot slot)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].slot == slot && strcmp(t->v[i].connector, connector) == 0)
			return &t->v[i];
	return NULL;
}

int
sg_cred_table_put(struct sg_cred_table *t, const char *connector, enum sg_cred_slot slot,
                  const char *value, size_t n, int64_t expires_at)
{
	if (strlen(connector) >= sizeof(t->v[0].connector))
		return -1;
	/* NUL-terminated, so a value can go to sg_upreq as a string. */
	char *copy = sodium_malloc(n + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, value, n);
	copy[n] = '\0';
	struct sg_cred *c = sg_cred_table_find(t, connector, slot);
	if (c == NULL) {
		if (t->n == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : 8;
			struct sg_cred *nv = realloc(t->v, ncap * sizeof(*nv));
			if (nv == NULL) {
				sodium_memzero(copy, n + 1);
				sodium_free(copy);
				return -1;
			}
			t->v = nv;
			t->cap = ncap;
		}
		c = &t->v[t->n++];
		memset(c, 0, sizeof(*c));
		snprintf(c->connector, sizeof(c->connector), "%s", connector);
		c->slot = slot;
	}
	cred_wipe(c);
	c->value = copy;
	c->len = n;
	c->expires_at = expires_at;
	return 0;
}

struct sg_credstore *
sg_credstore_new(const char *data_dir, int64_t warn_before_s)
{
	if (sodium_init() < 0)
		return NULL;
	struct sg_credstore *cs = calloc(1, sizeof(*cs));
	if (cs == NULL)
		return NULL;
	cs->data_dir = data_dir ? strdup(data_dir) : NULL;
	if ((data_dir && cs->data_dir == NULL) || pthread_rwlock_init(&cs->lock, NULL) != 0) {
		free(cs->data_dir);
		free(cs);
		return NULL;
	}
	cs->warn_before_s = warn_before_s;
	cs->loaded_gen = -1;
	return cs;
}

void
sg_credstore_free(struct sg_credstore *cs)
{
	if (cs == NULL)
		return;
	sg_cred_table_free(&cs->t);
	sg_cred_keys_wipe(cs);
	pthread_rwlock_destroy(&cs->lock);
	free(cs->data_dir);
	free(cs);
}

int
sg_credstore_put(struct sg_credstore *cs, const char *connector, enum sg_cred_slot slot,
                 const char *value, size_t n, int64_t expires_at)
{
	pthread_rwlock_wrlock(&cs->lock);
	int rc = sg_cred_table_put(&cs->t, connector, slot, value, n, expires_at);
	pthread_rwlock_unlock(&cs->lock);
	return rc;
}

void
sg_credstore_swap(struct sg_credstore *cs, struct sg_cred_table *next)
{
	/* A credential keeps its warning day across a refresh while its date stays. */
	for (size_t i = 0; i < next->n; i++) {
		struct sg_cred *was =
		    sg_cred_table_find(&cs->t, next->v[i].connector, next->v[i].slot);
		if (was != NULL && was->expires_at == next->v[i].expires_at)
			next->v[i].warned_day = was->warned_day;
	}
	pthread_rwlock_wrlock(&cs->lock);
	struct sg_cred_table old = cs->t;
	cs->t = *next;
	pthread_rwlock_unlock(&cs->lock);
	*next = old;
	sg_cred_table_free(next);
}

bool
sg_credential_has_next(struct sg_credstore *cs, const char *connector)
{
	if (cs == NULL)
		return false;
	pthread_rwlock_rdlock(&cs->lock);
	bool has = sg_cred_table_find(&cs->t, connector, SG_CRED_NEXT) != NULL;
	pthread_rwlock_unlock(&cs->lock);
	return has;
}

/* ---- expiry dates ---- */

static bool
expiring(const struct sg_credstore *cs, const struct sg_cred *cr, int64_t now_s)
{
	return cr->expires_at > 0 && cr->expires_at - now_s <= cs->warn_before_s;
}

/* Checked under the read lock first: the poll runs twice a second and seldom has a warning due. */
static bool
any_due(struct sg_credstore *cs, int64_t now_s, int64_t today)
{
	bool due = false;
	pthread_rwlock_rdlock(&cs->lock);
	for (size_t i = 0; !due && i < cs->t.n; i++)
		due = expiring(cs, &cs->t.v[i], now_s) && cs->t.v[i].warned_day != today;
	pthread_rwlock_unlock(&cs->lock);
	return due;
}

void
sg_credstore_warn_expiring(struct sg_credstore *cs, int64_t now_s)
{
	char day[SG_DAY_LEN];
	int64_t today = now_s / 86400 + 1; /* +1: 0 means never warned */
	if (!any_due(cs, now_s, today))
		return;
	pthread_rwlock_wrlock(&cs->lock);
	for (size_t i = 0; i < cs->t.n; i++) {
		struct sg_cred *cr = &cs->t.v[i];
		if (!expiring(cs, cr, now_s) || cr->warned_day == today)
			continue;
		cr->warned_day = today;
		sg_fmt_day(cr->expires_at, day);
		sg_log(SG_LOG_WARN,
		       json_pack("{s:s, s:s, s:s}", "connector", cr->connector, "slot",
		                 sg_cred_slot_name(cr->slot), "expires", day),
		       "the %s credential of connector %s %s on %s; set a new one with 'sandgate "
		       "secrets set %s --next' and rotate",
		       sg_cred_slot_name(cr->slot), cr->connector,
		       cr->expires_at <= now_s ? "expired" : "expires", day, cr->connector);
	}
	pthread_rwlock_unlock(&cs->lock);
}

json_t *
sg_credstore_warnings_json(struct sg_credstore *cs, int64_t now_s)
{
	char day[SG_DAY_LEN];
	json_t *out = NULL;
	pthread_rwlock_rdlock(&cs->lock);
	for (size_t i = 0; i < cs->t.n; i++) {
		const struct sg_cred *cr = &cs->t.v[i];
		if (!expiring(cs, cr, now_s))
			continue;
		if (out == NULL)
			out = json_array();
		sg_fmt_day(cr->expires_at, day);
		json_array_append_new(
		    out,
		    json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", "credential_expiry", "connector",
		              cr->connector, "slot", sg_cred_slot_name(cr->slot), "expires", day,
		              "expires_in_seconds", (json_int_t)(cr->expires_at - now_s)));
	}
	pthread_rwlock_unlock(&cs->lock);
	return out;
}

void
sg_credstore_render_metrics(struct sg_credstore *cs, int64_t now_s, FILE *f)
{
	fputs("# HELP sandgate_credential_expiry_seconds Seconds until a connector credential's "
	      "expiry date (negative: expired); only credentials with a date.\n"
	      "# TYPE sandgate_credential_expiry_seconds gauge\n",
	      f);
	pthread_rwlock_rdlock(&cs->lock);
	for (size_t i = 0; i < cs->t.n; i++) {
		const struct sg_cred *cr = &cs->t.v[i];
		if (cr->expires_at > 0)
			fprintf(f,
			        "sandgate_credential_expiry_seconds{connector=\"%s\",slot=\"%s\"} "
			        "%lld\n",
			        cr->connector, sg_cred_slot_name(cr->slot),
			        (long long)(cr->expires_at - now_s));
	}
	pthread_rwlock_unlock(&cs->lock);
}
