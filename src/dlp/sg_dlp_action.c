/*
 * What the screen does with a finding: the action a policy (or the
 * defaults) gives it, and the rewrite that carries masks, tokens and
 * redactions out into the document a caller receives.
 *
 * The rewrite walks the document in the scanner's order (document order,
 * an object's members in order, strings and numbers counted), so a hit's
 * value index names the value the walk is at; each value's identity is
 * checked against the scan result, so a result from another document
 * fails the rewrite instead of masking the wrong field.
 */
#include "dlp/sg_dlp_action.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_vault.h"
#include "dlp/sg_dlp_policy.h"

static const char *const action_names[SG_DLP_ACTION_COUNT] = {
    [SG_DLP_ALLOW] = "allow",       [SG_DLP_ALERT] = "alert",   [SG_DLP_MASK] = "mask",
    [SG_DLP_TOKENIZE] = "tokenize", [SG_DLP_REDACT] = "redact", [SG_DLP_BLOCK] = "block",
};
static const char *const direction_names[SG_DLP_DIRECTION_COUNT] = {"request", "response"};

const char *
sg_dlp_action_name(enum sg_dlp_action a)
{
	return (unsigned)a < SG_DLP_ACTION_COUNT ? action_names[a] : "unknown";
}

int
sg_dlp_action_parse(const char *s, enum sg_dlp_action *out)
{
	for (int i = 0; s != NULL && i < SG_DLP_ACTION_COUNT; i++)
		if (strcmp(s, action_names[i]) == 0) {
			*out = (enum sg_dlp_action)i;
			return 0;
		}
	return -1;
}

const char *
sg_dlp_direction_name(enum sg_dlp_direction d)
{
	return (unsigned)d < SG_DLP_DIRECTION_COUNT ? direction_names[d] : "unknown";
}

/* ---- classes ----------------------------------------------------------- */

static bool
word_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

bool
sg_dlp_class_valid(const char *s, bool selector)
{
	size_t len = strlen(s), words = 0;
	if (selector && strcmp(s, "*") == 0)
		return true;
	if (len == 0 || len > 64)
		return false;
	if (selector && len > 2 && strcmp(s + len - 2, ".*") == 0) {
		len -= 2;
		words = 1; /* "*" stands for the kind, so "pii.*" is a family */
	}
	for (size_t i = 0; i <= len;) {
		const char *dot = memchr(s + i, '.', len - i);
		size_t n = dot != NULL ? (size_t)(dot - (s + i)) : len - i;
		if (!word_ok(s + i, n))
			return false;
		words++;
		i += n + 1;
	}
	return words >= 2;
}

bool
sg_dlp_class_selected(const char *sel, const char *c)
{
	size_t n = strlen(sel);
	if (strcmp(sel, "*") == 0)
		return true;
	if (n > 2 && strcmp(sel + n - 2, ".*") == 0)
		return strncmp(sel, c, n - 1) == 0 && c[n - 1] != '\0';
	return strcmp(sel, c) == 0;
}

static bool
is_secret(const char *c)
{
	return strncmp(c, "secret.", 7) == 0;
}

/* ---- choosing an action ------------------------------------------------ */

enum sg_dlp_action
sg_dlp_default_action(const char *data_class, const struct sg_dlp_subject *s)
{
	if (data_class == NULL || is_secret(data_class))
		return SG_DLP_BLOCK;
	if (s->mode == SG_MODE_SANDBOX && s->direction == SG_DLP_RESPONSE && s->real_upstream)
		return SG_DLP_MASK;
	return SG_DLP_ALERT;
}

static bool
names_has(const struct sg_dlp_names *l, const char *s)
{
	if (l->n == 0)
		return true;
	for (size_t i = 0; s != NULL && i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

static bool
action_matches(const struct sg_dlp_action_rule *r, const char *c, const struct sg_dlp_subject *s)
{
	if (!sg_dlp_class_selected(r->selector, c))
		return false;
	if (r->direction >= 0 && r->direction != (int)s->direction)
		return false;
	if ((unsigned)s->mode >= SG_MODE_COUNT || !r->modes[s->mode])
		return false;
	return names_has(&r->roles, s->role) && names_has(&r->domains, s->data_domain);
}

enum sg_dlp_action
sg_dlp_policy_action(const struct sg_dlp_policy *p, const char *data_class,
                     const struct sg_dlp_subject *s)
{
	for (size_t i = 0; p != NULL && data_class != NULL && i < p->n_actions; i++)
		if (action_matches(&p->actions[i], data_class, s))
			return p->actions[i].action;
	return sg_dlp_default_action(data_class, s);
}

const struct sg_dlp_rule_def *
sg_dlp_policy_rules(const struct sg_dlp_policy *p, size_t *n)
{
	*n = p != NULL ? p->n_rules : 0;
	return p != NULL ? p->rules : NULL;
}

/* "*", "crm.*" or "crm.get_contact" against "crm.get_contact". */
static bool
op_selected(const char *sel, const char *op)
{
	size_t n = strlen(sel);
	if (strcmp(sel, "*") == 0)
		return true;
	if (n > 2 && strcmp(sel + n - 2, ".*") == 0)
		return strncmp(sel, op, n - 1) == 0;
	return strcmp(sel, op) == 0;
}

const char *const *
sg_dlp_policy_allowlist(const struct sg_dlp_policy *p, const char *role, const char *op_name,
                        size_t *n)
{
	*n = 0;
	for (size_t i = 0; p != NULL && op_name != NULL && i < p->n_allows; i++) {
		const struct sg_dlp_allow_rule *a = &p->allows[i];
		if (!names_has(&a->roles, role))
			continue;
		for (size_t k = 0; k < a->ops.n; k++)
			if (op_selected(a->ops.v[k], op_name)) {
				*n = a->fields.n;
				return (const char *const *)a->fields.v;
			}
	}
	return NULL;
}

static unsigned
default_keep(const char *c)
{
	static const struct {
		const char *cls;
		unsigned keep;
	} d[] = {
	    {"financial.card", 4},
	    {"financial.iban", 4},
	    {"pii.ssn", 4},
	    {"pii.phone", 2},
	    {"pii.email", SG_DLP_MASK_KEEP_DOMAIN},
	};
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcmp(c, d[i].cls) == 0)
			return d[i].keep;
	return 0;
}

/* A class's own entry first, then the narrowest family that holds it. */
unsigned
sg_dlp_policy_mask_keep(const struct sg_dlp_policy *p, const char *data_class)
{
	const struct sg_dlp_mask_rule *best = NULL;
	size_t best_len = 0;
	if (data_class == NULL)
		return 0;
	for (size_t i = 0; p != NULL && i < p->n_masks; i++) {
		const struct sg_dlp_mask_rule *m = &p->masks[i];
		size_t n = strlen(m->selector);
		if (strcmp(m->selector, data_class) == 0)
			return m->keep;
		if (sg_dlp_class_selected(m->selector, data_class) &&
		    (best == NULL || n > best_len)) {
			best = m;
			best_len = n;
		}
	}
	return best != NULL ? best->keep : default_keep(data_class);
}

/* ---- the policy's memory ------------------------------------------------ */

static void
names_free(struct sg_dlp_names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

void
sg_dlp_policy_free(struct sg_dlp_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		free((char *)p->rules[i].id);
		free((char *)p->rules[i].data_class);
		free((char *)p->rules[i].pattern);
		free((char *)p->rules[i].field_hint);
	}
	for (size_t i = 0; i < p->n_actions; i++) {
		free(p->actions[i].selector);
		names_free(&p->actions[i].roles);
		names_free(&p->actions[i].domains);
	}
	for (size_t i = 0; i < p->n_masks; i++)
		free(p->masks[i].selector);
	for (size_t i = 0; i < p->n_allows; i++) {
		names_free(&p->allows[i].roles);
		names_free(&p->allows[i].ops);
		names_free(&p->allows[i].fields);
	}
	free(p->rules);
	free(p->actions);
	free(p->masks);
	free(p->allows);
	free(p);
}

/* ---- tokens ------------------------------------------------------------- */

#define TOKEN_PREFIX "tok_"
#define TOKEN_PREFIX_LEN 4
#define SIV_LEN crypto_stream_xchacha20_NONCEBYTES
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* Values this short are sealed on the stack; longer ones in a heap buffer. */
#define STACK_RAW 512

void
sg_dlp_token_key_derive(struct sg_dlp_token_key *out, const struct sg_vault_key *master)
{
	static const char ctx[] = "dlp-tokenize";
	crypto_generichash(out->k, sizeof(out->k), (const unsigned char *)ctx, sizeof(ctx) - 1,
	                   master->key, sizeof(master->key));
}

/*
 * One key for the synthetic IV and another for the stream: the same bytes
 * as a MAC key and a cipher key would tie the two uses together.
 */
static void
subkeys(const struct sg_dlp_token_key *key, unsigned char mac[crypto_kdf_KEYBYTES],
        unsigned char enc[crypto_stream_xchacha20_KEYBYTES])
{
	crypto_kdf_derive_from_key(mac, crypto_kdf_KEYBYTES, 1, "sgdlptok", key->k);
	crypto_kdf_derive_from_key(enc, crypto_stream_xchacha20_KEYBYTES, 2, "sgdlptok", key->k);
}

/* The synthetic IV of plaintext `pt` (class, NUL, value). */
static void
siv_of(const unsigned char *mac, const unsigned char *pt, size_t len, unsigned char siv[SIV_LEN])
{
	crypto_generichash(siv, SIV_LEN, pt, len, mac, crypto_kdf_KEYBYTES);
}

static size_t
token_len(size_t class_len, size_t len)
{
	return TOKEN_PREFIX_LEN + sodium_base64_ENCODED_LEN(SIV_LEN + class_len + 1 + len, B64) - 1;
}

int
sg_dlp_tokenize(const struct sg_dlp_token_key *key, const char *data_class, const char *value,
                size_t len, char *out, size_t cap)
{
	size_t cl = strlen(data_class), raw_len = SIV_LEN + cl + 1 + len;
	unsigned char stack[STACK_RAW], mac[crypto_kdf_KEYBYTES];
	unsigned char enc[crypto_stream_xchacha20_KEYBYTES];
	if (len > SIZE_MAX / 2 || cap <= token_len(cl, len))
		return -1;
	unsigned char *raw = raw_len <= sizeof(stack) ? stack : malloc(raw_len);
	if (raw == NULL)
		return -1;
	unsigned char *pt = raw + SIV_LEN;
	memcpy(pt, data_class, cl + 1);
	if (len > 0)
		memcpy(pt + cl + 1, value, len);
	subkeys(key, mac, enc);
	siv_of(mac, pt, raw_len - SIV_LEN, raw);
	crypto_stream_xchacha20_xor(pt, pt, raw_len - SIV_LEN, raw, enc);
	memcpy(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	sodium_bin2base64(out + TOKEN_PREFIX_LEN, cap - TOKEN_PREFIX_LEN, raw, raw_len, B64);
	sodium_memzero(mac, sizeof(mac));
	sodium_memzero(enc, sizeof(enc));
	sodium_memzero(raw, raw_len);
	if (raw != stack)
		free(raw);
	return 0;
}

/* Opens a decoded token in place; the plaintext's length, or -1 when it is forged. */
static long
token_open(const struct sg_dlp_token_key *key, unsigned char *raw, size_t raw_len)
{
	unsigned char mac[crypto_kdf_KEYBYTES], enc[crypto_stream_xchacha20_KEYBYTES];
	unsigned char siv[SIV_LEN];
	size_t n = raw_len - SIV_LEN;
	subkeys(key, mac, enc);
	crypto_stream_xchacha20_xor(raw + SIV_LEN, raw + SIV_LEN, n, raw, enc);
	siv_of(mac, raw + SIV_LEN, n, siv);
	int ok = sodium_memcmp(siv, raw, SIV_LEN) == 0;
	sodium_memzero(mac, sizeof(mac));
	sodium_memzero(enc, sizeof(enc));
	return ok ? (long)n : -1;
}

/* Splits an opened plaintext into the caller's buffers; -1 when either is too small. */
static int
token_split(const unsigned char *pt, size_t n, char *class_out, size_t class_cap, char *value_out,
            size_t value_cap, size_t *value_len)
{
	const unsigned char *nul = memchr(pt, '\0', n);
	if (nul == NULL)
		return -1;
	size_t cl = (size_t)(nul - pt), vl = n - cl - 1;
	if (cl + 1 > class_cap || vl + 1 > value_cap)
		return -1;
	memcpy(class_out, pt, cl + 1);
	memcpy(value_out, nul + 1, vl);
	value_out[vl] = '\0';
	*value_len = vl;
	return 0;
}

int
sg_dlp_detokenize(const struct sg_dlp_token_key *key, const char *token, char *class_out,
                  size_t class_cap, char *value_out, size_t value_cap, size_t *value_len)
{
	size_t tl = strlen(token), raw_len = 0;
	if (tl <= TOKEN_PREFIX_LEN || memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
		return -1;
	size_t cap = (tl - TOKEN_PREFIX_LEN) / 4 * 3 + 3;
	unsigned char *raw = malloc(cap);
	int rc = -1;
	if (raw == NULL)
		return -1;
	if (sodium_base642bin(raw, cap, token + TOKEN_PREFIX_LEN, tl - TOKEN_PREFIX_LEN, NULL,
	                      &raw_len, NULL, B64) == 0 &&
	    raw_len > SIV_LEN + 1) {
		long n = token_open(key, raw, raw_len);
		if (n > 0)
			rc = token_split(raw + SIV_LEN, (size_t)n, class_out, class_cap, value_out,
			                 value_cap, value_len);
	}
	sodium_memzero(raw, cap);
	free(raw);
	return rc;
}

/* ---- masks --------------------------------------------------------------- */

/* The bytes of the UTF-8 character that starts with `b` (the text is valid UTF-8). */
static size_t
char_len(unsigned char b)
{
	return b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
}

/* A mask leaves these alone, so "**** **** **** 1111" still reads as a card. */
static bool
is_separator(char c)
{
	return c == ' ' || c == '-';
}

/* A growable string the rewrite builds one value in. */
struct text {
	char *s;
	size_t len, cap;
};

static int
text_room(struct text *t, size_t more)
{
	if (more > SIZE_MAX / 2 - t->len)
		return -1;
	if (t->len + more <= t->cap)
		return 0;
	size_t cap = t->cap > 0 ? t->cap : 256;
	while (cap < t->len + more)
		cap *= 2;
	char *s = realloc(t->s, cap);
	if (s == NULL)
		return -1;
	t->s = s;
	t->cap = cap;
	return 0;
}

static int
text_add(struct text *t, const char *s, size_t n)
{
	if (text_room(t, n) != 0)
		return -1;
	memcpy(t->s + t->len, s, n);
	t->len += n;
	return 0;
}

/*
 * Writes [from, to) of a masked span [s, s+n): every character starred but
 * separators and the span's last `keep` others.  The piece may be part of
 * the span (a stronger verdict took the rest), so what is kept is always
 * the span's own tail.  A mask never keeps more than half of what it
 * covers: a short value would otherwise come through whole.
 */
static int
mask_tail(struct text *t, const char *s, size_t n, size_t from, size_t to, unsigned keep)
{
	size_t count = 0, k = 0;
	for (size_t i = 0; i < n; i += char_len((unsigned char)s[i])) {
		count += !is_separator(s[i]);
		k += i < from && !is_separator(s[i]);
	}
	if (keep > count / 2)
		keep = (unsigned)(count / 2);
	for (size_t i = from; i < to;) {
		size_t cl = char_len((unsigned char)s[i]);
		if (cl > to - i)
			cl = to - i;
		bool kept = is_separator(s[i]) || k++ >= count - keep;
		if (text_add(t, kept ? s + i : "*", kept ? cl : 1) != 0)
			return -1;
		i += cl;
	}
	return 0;
}

/* An email keeps its domain ("****@example.com"); without an '@' it is starred whole. */
static int
mask_span(struct text *t, const char *s, size_t n, size_t from, size_t to, unsigned keep)
{
	if (keep != SG_DLP_MASK_KEEP_DOMAIN)
		return mask_tail(t, s, n, from, to, keep);
	size_t local = n;
	for (size_t i = n; i > 0 && local == n; i--)
		if (s[i - 1] == '@')
			local = i - 1;
	if (from < local && mask_tail(t, s, local, from, to < local ? to : local, 0) != 0)
		return -1;
	size_t d = from > local ? from : local;
	return to > d ? text_add(t, s + d, to - d) : 0;
}

/* ---- the rewrite ---------------------------------------------------------- */

struct rw {
	struct sg_jw w;
	const struct sg_dlp_result *res;
	const struct sg_dlp_verdict **vs; /* the acting verdicts, by value index */
	size_t n_vs, next;
	const struct sg_dlp_policy *p;
	const struct sg_dlp_token_key *key;
	const char *const *allow;
	size_t n_allow;
	uint32_t index;   /* the next string or number's index, as the scanner counts */
	struct text path; /* the pointer of where the walk is */
	struct text val;  /* the value being rewritten */
	bool failed;
};

/* Whether a verdict changes the data; a block that reaches the rewrite is redacted. */
static bool
acts(enum sg_dlp_action a)
{
	return a >= SG_DLP_MASK && a < SG_DLP_ACTION_COUNT;
}

static enum sg_dlp_action
effective(enum sg_dlp_action a)
{
	return a == SG_DLP_BLOCK ? SG_DLP_REDACT : a;
}

static int
cmp_verdict(const void *a, const void *b)
{
	const struct sg_dlp_verdict *x = *(const struct sg_dlp_verdict *const *)a;
	const struct sg_dlp_verdict *y = *(const struct sg_dlp_verdict *const *)b;
	if (x->hit->value != y->hit->value)
		return x->hit->value < y->hit->value ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* One piece of a value: [start, end), the verdict acting on it (NULL: none) and its span. */
struct piece {
	uint32_t start, end;
	const struct sg_dlp_verdict *v;
	uint32_t span_start, span_end;
};

/* A span widened to whole UTF-8 characters, so a rewrite never splits one. */
static void
widen(const char *s, uint32_t len, uint32_t *start, uint32_t *end)
{
	if (*end > len)
		*end = len;
	if (*start > *end)
		*start = *end;
	while (*start > 0 && ((unsigned char)s[*start] & 0xc0) == 0x80)
		(*start)--;
	while (*end < len && ((unsigned char)s[*end] & 0xc0) == 0x80)
		(*end)++;
}

/* Whether `a` beats `b` on a stretch both cover: the stronger, then the wider. */
static bool
beats(const struct sg_dlp_verdict *a, uint32_t a_len, const struct sg_dlp_verdict *b,
      uint32_t b_len)
{
	if (b == NULL)
		return true;
	enum sg_dlp_action x = effective(a->action), y = effective(b->action);
	return x > y || (x == y && a_len > b_len);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
apply_piece(struct rw *rw, const char *s, const struct piece *pc)
{
	const char *seg = s + pc->start;
	size_t n = pc->end - pc->start;
	const char *cls = pc->v != NULL ? pc->v->hit->data_class : NULL;
	if (cls == NULL)
		return text_add(&rw->val, seg, n);
	switch (effective(pc->v->action)) {
	case SG_DLP_MASK:
		return mask_span(&rw->val, s + pc->span_start, pc->span_end - pc->span_start,
		                 pc->start - pc->span_start, pc->end - pc->span_start,
		                 sg_dlp_policy_mask_keep(rw->p, cls));
	case SG_DLP_TOKENIZE: {
		size_t need = token_len(strlen(cls), n) + 1;
		if (rw->key == NULL || text_room(&rw->val, need) != 0 ||
		    sg_dlp_tokenize(rw->key, cls, seg, n, rw->val.s + rw->val.len, need) != 0)
			return -1;
		rw->val.len += need - 1;
		return 0;
	}
	default:
		if (text_add(&rw->val, "[REDACTED:", 10) != 0 ||
		    text_add(&rw->val, cls, strlen(cls)) != 0)
			return -1;
		return text_add(&rw->val, "]", 1);
	}
}

/*
 * Cuts the value at every verdict's edges; each stretch goes to the
 * strongest verdict covering it, and neighbouring stretches of one verdict
 * join again, so a mask sees its whole span.
 */
static int
rewrite_text(struct rw *rw, const char *s, uint32_t len, const struct sg_dlp_verdict **vs, size_t n)
{
	uint32_t *cut = malloc((2 * n + 2) * sizeof(*cut)), *st = malloc(2 * n * sizeof(*st));
	size_t n_cut = 0, last_piece = 0;
	struct piece prev = {0};
	int rc = -1;
	if (cut == NULL || st == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		st[2 * i] = vs[i]->hit->start;
		st[2 * i + 1] = vs[i]->hit->end;
		widen(s, len, &st[2 * i], &st[2 * i + 1]);
		cut[n_cut++] = st[2 * i];
		cut[n_cut++] = st[2 * i + 1];
	}
	cut[n_cut++] = 0;
	cut[n_cut++] = len;
	qsort(cut, n_cut, sizeof(*cut), cmp_u32);
	rw->val.len = 0;
	for (size_t c = 0; c + 1 < n_cut; c++) {
		if (cut[c] == cut[c + 1])
			continue;
		const struct sg_dlp_verdict *best = NULL;
		size_t bi = 0;
		for (size_t i = 0; i < n; i++)
			if (st[2 * i] <= cut[c] && cut[c + 1] <= st[2 * i + 1] &&
			    beats(vs[i], st[2 * i + 1] - st[2 * i], best,
			          best ? st[2 * bi + 1] - st[2 * bi] : 0)) {
				best = vs[i];
				bi = i;
			}
		if (last_piece > 0 && best == prev.v) {
			prev.end = cut[c + 1];
			continue;
		}
		if (last_piece > 0 && apply_piece(rw, s, &prev) != 0)
			goto out;
		prev = (struct piece){cut[c], cut[c + 1], best, best ? st[2 * bi] : 0,
		                      best ? st[2 * bi + 1] : 0};
		last_piece++;
	}
	rc = last_piece > 0 ? apply_piece(rw, s, &prev) : 0;
out:
	free(cut);
	free(st);
	return rc;
}

/* A string or number: as it is, or rewritten (a number then becomes a string). */
static void
rw_scalar(struct rw *rw, struct sg_json_val v)
{
	uint32_t idx = rw->index++;
	while (rw->next < rw->n_vs && rw->vs[rw->next]->hit->value < idx)
		rw->next++;
	size_t first = rw->next;
	while (rw->next < rw->n_vs && rw->vs[rw->next]->hit->value == idx)
		rw->next++;
	if (first == rw->next) {
		sg_jw_value(&rw->w, v);
		return;
	}
	const struct sg_dlp_value *sv = idx < rw->res->n_values ? &rw->res->values[idx] : NULL;
	if (sv == NULL || sv->v.doc != v.doc || sv->v.at != v.at ||
	    rewrite_text(rw, sv->text, sv->len, &rw->vs[first], rw->next - first) != 0) {
		rw->failed = true;
		return;
	}
	sg_jw_string(&rw->w, rw->val.s != NULL ? rw->val.s : "", rw->val.len);
}

/* How many strings and numbers lie under `v`: a member left out still counts. */
static uint32_t
count_values(struct sg_json_val v)
{
	struct sg_json_iter it;
	struct sg_json_val child;
	const char *key;
	size_t key_len;
	uint32_t n = 0;
	switch (sg_json_type(v)) {
	case SG_JSON_STRING:
	case SG_JSON_INT:
	case SG_JSON_UINT:
	case SG_JSON_DOUBLE:
		return 1;
	case SG_JSON_ARRAY:
	case SG_JSON_OBJECT:
		sg_json_iter_init(&it, v);
		while (sg_json_iter_next(&it, &key, &key_len, &child))
			n += count_values(child);
		return n;
	default:
		return 0;
	}
}

enum reach { REACH_NONE, REACH_PARTIAL, REACH_ALL };

/*
 * How allowlist entry `e` reaches pointer `p`: ALL when p is the entry or
 * under it, PARTIAL when p leads to it (a container to keep and look into).
 */
static enum reach
entry_reach(const char *e, const char *p)
{
	for (;;) {
		if (*e == '\0')
			return REACH_ALL;
		if (*p == '\0')
			return REACH_PARTIAL;
		if (*e != '/' || *p != '/')
			return REACH_NONE;
		e++;
		p++;
		size_t el = strcspn(e, "/"), pl = strcspn(p, "/");
		if (!(el == 1 && e[0] == '*') && (el != pl || memcmp(e, p, el) != 0))
			return REACH_NONE;
		e += el;
		p += pl;
	}
}

static enum reach
allow_reach(const struct rw *rw)
{
	enum reach best = REACH_NONE;
	for (size_t i = 0; i < rw->n_allow && best != REACH_ALL; i++) {
		enum reach r = entry_reach(rw->allow[i], rw->path.s);
		if (r > best)
			best = r;
	}
	return best;
}

/* Appends "/" and the escaped key (RFC 6901: "~" as "~0", "/" as "~1") and a NUL. */
static int
path_push(struct text *t, const char *key, size_t len, size_t index)
{
	char num[24];
	if (text_add(t, "/", 1) != 0)
		return -1;
	if (key == NULL) {
		int n = snprintf(num, sizeof(num), "%zu", index);
		if (text_add(t, num, (size_t)n) != 0)
			return -1;
	}
	for (size_t i = 0; key != NULL && i < len; i++) {
		const char *e = key[i] == '~' ? "~0" : key[i] == '/' ? "~1" : NULL;
		if (text_add(t, e != NULL ? e : &key[i], e != NULL ? 2 : 1) != 0)
			return -1;
	}
	if (text_room(t, 1) != 0)
		return -1;
	t->s[t->len] = '\0';
	return 0;
}

static void rw_walk(struct rw *rw, struct sg_json_val v, bool all_allowed);

/*
 * An object's members or an array's items.  Outside every allowlist entry
 * a member is left out (its values still counted, to keep the scanner's
 * numbering); an item never is, only the members inside it.
 */
static void
rw_children(struct rw *rw, struct sg_json_val v, bool object, bool all_allowed)
{
	struct sg_json_iter it;
	struct sg_json_val child;
	const char *key;
	size_t key_len, saved = rw->path.len;
	if (object)
		sg_jw_object(&rw->w);
	else
		sg_jw_array(&rw->w);
	sg_json_iter_init(&it, v);
	for (size_t i = 0; !rw->failed && sg_json_iter_next(&it, &key, &key_len, &child); i++) {
		enum reach r = REACH_ALL;
		if (!all_allowed) {
			if (path_push(&rw->path, key, key_len, i) != 0) {
				rw->failed = true;
				break;
			}
			r = allow_reach(rw);
		}
		if (object && r == REACH_NONE) {
			rw->index += count_values(child);
		} else {
			if (object)
				sg_jw_key(&rw->w, key, key_len);
			rw_walk(rw, child, r == REACH_ALL);
		}
		rw->path.len = saved;
		rw->path.s[saved] = '\0';
	}
	if (object)
		sg_jw_object_end(&rw->w);
	else
		sg_jw_array_end(&rw->w);
}

static void
rw_walk(struct rw *rw, struct sg_json_val v, bool all_allowed)
{
	switch (sg_json_type(v)) {
	case SG_JSON_STRING:
	case SG_JSON_INT:
	case SG_JSON_UINT:
	case SG_JSON_DOUBLE:
		rw_scalar(rw, v);
		return;
	case SG_JSON_OBJECT:
	case SG_JSON_ARRAY:
		rw_children(rw, v, sg_json_type(v) == SG_JSON_OBJECT, all_allowed);
		return;
	default:
		sg_jw_value(&rw->w, v);
	}
}

/* The verdicts that change the data, ordered by the value they fall in. */
static int
acting_verdicts(struct rw *rw, const struct sg_dlp_verdict *verdicts, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += verdicts[i].hit != NULL && acts(verdicts[i].action);
	if (k == 0)
		return 0;
	rw->vs = malloc(k * sizeof(*rw->vs));
	if (rw->vs == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (verdicts[i].hit != NULL && acts(verdicts[i].action)) {
			if (verdicts[i].action == SG_DLP_TOKENIZE && rw->key == NULL)
				return -1;
			rw->vs[rw->n_vs++] = &verdicts[i];
		}
	qsort(rw->vs, rw->n_vs, sizeof(*rw->vs), cmp_verdict);
	return 0;
}

int
sg_dlp_rewrite(struct sg_json_val root, const struct sg_dlp_result *res,
               const struct sg_dlp_verdict *verdicts, size_t n_verdicts,
               const struct sg_dlp_policy *p, const struct sg_dlp_token_key *key,
               const char *const *allow, size_t n_allow, struct sg_jbuf *out)
{
	struct rw rw = {.res = res, .p = p, .key = key, .allow = allow, .n_allow = n_allow};
	size_t mark = out->len;
	sg_jw_begin(&rw.w, out);
	if (acting_verdicts(&rw, verdicts, n_verdicts) != 0 || text_room(&rw.path, 1) != 0)
		rw.failed = true;
	else {
		rw.path.s[0] = '\0';
		rw_walk(&rw, root, allow == NULL);
	}
	int rc = sg_jw_end(&rw.w);
	if (rw.failed)
		rc = -1;
	/* Half a document must never go out: the caller sees nothing of a failed one. */
	if (rc != 0 && out->data != NULL) {
		out->len = mark;
		out->data[mark] = '\0';
	}
	free(rw.vs);
	if (rw.val.s != NULL)
		sodium_memzero(rw.val.s, rw.val.cap);
	free(rw.val.s);
	free(rw.path.s);
	return rc;
}
