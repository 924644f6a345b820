/*
 * sg_egress: the SSRF guard.  It judges the address a call is about to
 * connect to, never the URL's text: a name can resolve anywhere, and glibc
 * reads "2130706433" or "0x7f.1" as 127.0.0.1.  Lists are short and a
 * connect is rare next to the work around it, so a linear scan is enough.
 */
#include "upstream/sg_egress.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 253 /* the longest DNS name; any address or CIDR is shorter */
#define LIST_MAX 1024 /* entries in one list, far above real use */

enum entry_kind { E_CIDR4, E_CIDR6, E_HOST, E_WILDCARD };

/* One compiled entry.  `text` is the entry as normalised, for verdicts. */
struct entry {
	enum entry_kind kind;
	unsigned bits;
	uint8_t addr[16]; /* network order; the first 4 bytes for IPv4 */
	char *text;
};

struct sg_egress_list {
	struct entry *v;
	size_t n;
};

struct egress_rule {
	bool allow;
	struct entry e;
};

struct sg_egress_policy {
	struct egress_rule *v;
	size_t n;
	bool default_allow;
};

/* An address being judged: IPv4 in the first 4 bytes when fam is 4. */
struct addr {
	int fam; /* 4 or 6 */
	uint8_t b[16];
};

/* ---- entries ----------------------------------------------------------- */

/* The entry as it may be shown: cut short, with control bytes replaced. */
static const char *
shown(const char *s, char *buf, size_t cap)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 4 < cap && i < 64; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0')
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

static int
entry_error(const char *s, char *err, size_t errlen, const char *why)
{
	char b[72];
	snprintf(err, errlen, "egress entry \"%s\": %s", shown(s, b, sizeof(b)), why);
	return -1;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, net, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (net[whole] & mask);
}

/* "a.b.c.d", "a.b.c.d/n", "v6", "v6/n"; -1 after a sentence in err. */
static int
parse_cidr(const char *s, struct entry *e, char *err, size_t errlen)
{
	char a[64];
	const char *slash = strrchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	bool v6 = memchr(s, ':', alen) != NULL;
	unsigned max = v6 ? 128 : 32;
	if (alen == 0 || alen >= sizeof(a))
		return entry_error(s, err, errlen, "expected an address before the '/'");
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, a, e->addr) != 1)
		return entry_error(s, err, errlen,
		                   v6 ? "not an IPv6 address; write one such as fd00::/8 or ::1"
		                      : "not an IPv4 address; write four decimal numbers such as "
		                        "10.0.0.0/8 or 127.0.0.1");
	e->kind = v6 ? E_CIDR6 : E_CIDR4;
	e->bits = max;
	if (slash == NULL)
		return 0;
	const char *p = slash + 1;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 3 || p[digits] != '\0' || (digits > 1 && p[0] == '0') ||
	    (unsigned)atoi(p) > max)
		return entry_error(
		    s, err, errlen,
		    v6 ? "the prefix length after '/' must be a number from 0 to 128"
		       : "the prefix length after '/' must be a number from 0 to 32");
	e->bits = (unsigned)atoi(p);
	uint8_t net[16] = {0};
	memcpy(net, e->addr, e->bits / 8);
	if (e->bits % 8)
		net[e->bits / 8] = (uint8_t)(e->addr[e->bits / 8] & (0xff << (8 - e->bits % 8)));
	if (memcmp(net, e->addr, max / 8) != 0)
		return entry_error(s, err, errlen,
		                   "has address bits set past the prefix length; write the "
		                   "network's first address, or /32 (/128) for one address");
	return 0;
}

/* One DNS label of a host name: letters, digits, '-' and '_', not starting or ending in '-'. */
static bool
valid_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

/* A lower-case host name; the last label is never all digits, so no address reads as a name. */
static bool
valid_host(const char *s)
{
	const char *last = s;
	for (const char *p = s;; p++) {
		if (*p != '.' && *p != '\0')
			continue;
		if (!valid_label(last, (size_t)(p - last)))
			return false;
		if (*p == '\0')
			break;
		last = p + 1;
	}
	return strspn(last, "0123456789") != strlen(last);
}

/*
 * Lower case and one trailing dot dropped, so "API.Example.com." and
 * "api.example.com" are the same name.  `out` holds ENTRY_MAX + 2 bytes.
 */
static void
normalise_host(const char *s, char *out)
{
	size_t n = 0;
	if (s[0] == '[') /* an IPv6 literal as a URL writes it */
		s++;
	for (; s[n] != '\0' && n <= ENTRY_MAX; n++)
		out[n] = (s[n] >= 'A' && s[n] <= 'Z') ? (char)(s[n] - 'A' + 'a') : s[n];
	out[n] = '\0';
	if (n > 0 && out[n - 1] == ']')
		out[--n] = '\0';
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = '\0';
}

static int
parse_host(const char *s, struct entry *e, char *err, size_t errlen)
{
	char h[ENTRY_MAX + 2];
	struct in_addr ia;
	normalise_host(s, h);
	/* inet_aton reads "127.1", "0x7f000001" and "2130706433" as addresses, as resolvers do. */
	if (inet_aton(h, &ia) != 0)
		return entry_error(s, err, errlen,
		                   "is an IPv4 address in a shorthand or numeric spelling; write "
		                   "it as four decimal numbers such as 127.0.0.1/32");
	bool wild = strncmp(h, "*.", 2) == 0;
	if (!valid_host(wild ? h + 2 : h))
		return entry_error(
		    s, err, errlen,
		    "expected a host name such as api.example.com, \"*.example.com\" "
		    "for its subdomains, an address, or a CIDR such as 10.0.0.0/8");
	e->kind = wild ? E_WILDCARD : E_HOST;
	return (e->text = strdup(h)) != NULL ? 0 : entry_error(s, err, errlen, "out of memory");
}

static int
parse_entry(const char *s, struct entry *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (s == NULL || s[0] == '\0')
		return entry_error("", err, errlen,
		                   "empty; write a host name such as api.example.com or a CIDR "
		                   "such as 10.0.0.0/8");
	if (strlen(s) > ENTRY_MAX)
		return entry_error(s, err, errlen, "longer than 253 characters");
	struct in_addr ia;
	bool numeric =
	    strchr(s, '/') != NULL || strchr(s, ':') != NULL || inet_pton(AF_INET, s, &ia) == 1;
	if (!numeric)
		return parse_host(s, e, err, errlen);
	if (parse_cidr(s, e, err, errlen) != 0)
		return -1;
	return (e->text = strdup(s)) != NULL ? 0 : entry_error(s, err, errlen, "out of memory");
}

struct sg_egress_list *
sg_egress_list_new(const char *const *entries, size_t n, char *err, size_t errlen)
{
	if (n > LIST_MAX) {
		snprintf(err, errlen, "egress: more than %d entries; use CIDRs or wildcards",
		         LIST_MAX);
		return NULL;
	}
	struct sg_egress_list *l = calloc(1, sizeof(*l));
	if (l == NULL || (l->v = calloc(n ? n : 1, sizeof(*l->v))) == NULL) {
		free(l);
		snprintf(err, errlen, "egress: out of memory");
		return NULL;
	}
	for (; l->n < n; l->n++)
		if (parse_entry(entries[l->n], &l->v[l->n], err, errlen) != 0) {
			sg_egress_list_free(l);
			return NULL;
		}
	return l;
}

void
sg_egress_list_free(struct sg_egress_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	free(l);
}

struct sg_egress_policy *
sg_egress_policy_new(const struct sg_egress_rule_def *rules, size_t n, bool default_allow,
                     char *err, size_t errlen)
{
	if (n > LIST_MAX) {
		snprintf(err, errlen, "egress: more than %d rules; use CIDRs or wildcards",
		         LIST_MAX);
		return NULL;
	}
	struct sg_egress_policy *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->v = calloc(n ? n : 1, sizeof(*p->v))) == NULL) {
		free(p);
		snprintf(err, errlen, "egress: out of memory");
		return NULL;
	}
	p->default_allow = default_allow;
	for (; p->n < n; p->n++) {
		p->v[p->n].allow = rules[p->n].allow;
		if (parse_entry(rules[p->n].entry, &p->v[p->n].e, err, errlen) != 0) {
			sg_egress_policy_free(p);
			return NULL;
		}
	}
	return p;
}

void
sg_egress_policy_free(struct sg_egress_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].e.text);
	free(p->v);
	free(p);
}

/* ---- the built-in deny list ------------------------------------------- */

struct range {
	uint8_t net[16];
	unsigned bits;
	const char *what;
};

/* Narrow entries first, so 169.254.169.254 is named for what it is. */
static const struct range deny4[] = {
    {{169, 254, 169, 254}, 32, "cloud metadata addresses"},
    {{100, 100, 100, 200}, 32, "cloud metadata addresses"},
    {{255, 255, 255, 255}, 32, "the broadcast address"},
    {{0}, 8, "unspecified (this-network) addresses"},
    {{10}, 8, "private addresses"},
    {{100, 64}, 10, "shared (CGNAT) addresses"},
    {{127}, 8, "loopback addresses"},
    {{169, 254}, 16, "link-local addresses"},
    {{172, 16}, 12, "private addresses"},
    {{192, 0, 0}, 24, "IETF protocol assignments"},
    {{192, 0, 2}, 24, "documentation addresses"},
    {{192, 88, 99}, 24, "6to4 relay anycast addresses"},
    {{192, 168}, 16, "private addresses"},
    {{198, 18}, 15, "benchmarking addresses"},
    {{198, 51, 100}, 24, "documentation addresses"},
    {{203, 0, 113}, 24, "documentation addresses"},
    {{224}, 4, "multicast addresses"},
    {{240}, 4, "reserved addresses"},
};

static const struct range deny6[] = {
    {{0}, 128, "unspecified addresses"},
    {{[15] = 1}, 128, "loopback addresses"},
    {{0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02}, 128, "cloud metadata addresses"},
    {{0x01, 0x00}, 64, "discard-only addresses"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation addresses"},
    {{0xfc}, 7, "unique-local addresses"},
    {{0xfe, 0x80}, 10, "link-local addresses"},
    {{0xfe, 0xc0}, 10, "site-local addresses"},
    /* RFC 8215 local-use NAT64: the IPv4 may sit at several offsets, so all of it goes. */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "local-use NAT64 addresses"},
    {{0xff}, 8, "multicast addresses"},
};

/* Host names that lead to cloud metadata whatever they resolve to. */
static const char *const deny_names[] = {"metadata.google.internal"};

enum v4_form { F_NONE, F_MAPPED, F_COMPATIBLE, F_NAT64, F_6TO4, F_TEREDO, F_TRANSLATED };
static const char *const form_names[] = {
    "", "IPv4-mapped", "IPv4-compatible", "NAT64", "6to4", "Teredo", "IPv4-translated",
};

/*
 * The IPv4 address an IPv6 one carries, and in which form.  Callers check
 * :: and ::1 first: both would read as IPv4-compatible.
 */
static enum v4_form
embedded_v4(const uint8_t *b, uint8_t v4[4])
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	static const uint8_t zero[12] = {0};
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	static const uint8_t translated[12] = {[8] = 0xff, [9] = 0xff}; /* SIIT, ::ffff:0:a.b.c.d */
	static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};
	enum v4_form f = memcmp(b, mapped, 12) == 0       ? F_MAPPED
	                 : memcmp(b, zero, 12) == 0       ? F_COMPATIBLE
	                 : memcmp(b, nat64, 12) == 0      ? F_NAT64
	                 : memcmp(b, translated, 12) == 0 ? F_TRANSLATED
	                                                  : F_NONE;
	if (f != F_NONE) {
		memcpy(v4, b + 12, 4);
		return f;
	}
	if (b[0] == 0x20 && b[1] == 0x02) {
		memcpy(v4, b + 2, 4); /* 6to4: bits 16 to 47 */
		return F_6TO4;
	}
	if (memcmp(b, teredo, 4) == 0) {
		for (int i = 0; i < 4; i++) /* Teredo hides the client address by inverting it */
			v4[i] = (uint8_t)~b[12 + i];
		return F_TEREDO;
	}
	return F_NONE;
}

static const char *
in_ranges(const uint8_t *a, const struct range *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (prefix_match(a, v[i].net, v[i].bits))
			return v[i].what;
	return NULL;
}

/* Why the built-in list denies (host, address), written into `out`; false when it does not. */
static bool
builtin_denies(const char *host, const struct addr *a, char *out, size_t cap)
{
	for (size_t i = 0; i < sizeof(deny_names) / sizeof(deny_names[0]); i++)
		if (strcmp(host, deny_names[i]) == 0) {
			snprintf(out, cap, "built-in: cloud metadata host names");
			return true;
		}
	const char *what;
	if (a->fam == 4) {
		what = in_ranges(a->b, deny4, sizeof(deny4) / sizeof(deny4[0]));
		if (what)
			snprintf(out, cap, "built-in: %s", what);
		return what != NULL;
	}
	if ((what = in_ranges(a->b, deny6, 2)) != NULL) { /* :: and ::1 */
		snprintf(out, cap, "built-in: %s", what);
		return true;
	}
	uint8_t v4[4];
	enum v4_form form = embedded_v4(a->b, v4);
	if (form != F_NONE) {
		what = in_ranges(v4, deny4, sizeof(deny4) / sizeof(deny4[0]));
		if (what)
			snprintf(out, cap, "built-in: %s, in %s form", what, form_names[form]);
		return what != NULL;
	}
	what = in_ranges(a->b, deny6, sizeof(deny6) / sizeof(deny6[0]));
	if (what)
		snprintf(out, cap, "built-in: %s", what);
	return what != NULL;
}

/* ---- judging ----------------------------------------------------------- */

static int
read_addr(const struct sockaddr *sa, socklen_t len, struct addr *a)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		a->fam = 4;
		memcpy(a->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		a->fam = 6;
		memcpy(a->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* The IPv4-mapped form of an IPv4 address, in `m`. */
static const uint8_t *
mapped_of(const uint8_t *v4, uint8_t m[16])
{
	memset(m, 0, 10);
	m[10] = m[11] = 0xff;
	memcpy(m + 12, v4, 4);
	return m;
}

/* Whether IPv4 entry `e` holds the IPv4 address an IPv6 one carries. */
static bool
v6_holds_v4(const struct entry *e, const uint8_t *b, bool any_form)
{
	uint8_t v4[4];
	enum v4_form f = embedded_v4(b, v4);
	/* :: and ::1 are themselves, not 0.0.0.0 and 0.0.0.1. */
	if (f == F_NONE || (f == F_COMPATIBLE && prefix_match(b, deny6[1].net, 127)))
		return false;
	return (f == F_MAPPED || any_form) && prefix_match(v4, e->addr, e->bits);
}

/*
 * Whether entry `e` holds the address.  IPv4 and its IPv4-mapped form are
 * one address.  `any_form` also reads NAT64, 6to4, Teredo and compatible
 * forms as their IPv4: deny rules use it, so a deny cannot be slipped past
 * by spelling; allows do not, since those forms reach a relay first.
 */
static bool
entry_holds(const struct entry *e, const char *host, const struct addr *a, bool any_form)
{
	size_t hl = strlen(host), tl;
	uint8_t m[16];
	switch (e->kind) {
	case E_HOST:
		return strcmp(host, e->text) == 0;
	case E_WILDCARD:
		tl = strlen(e->text + 1); /* ".example.com" */
		return hl > tl && strcmp(host + hl - tl, e->text + 1) == 0;
	case E_CIDR4:
		return a->fam == 4 ? prefix_match(a->b, e->addr, e->bits)
		                   : v6_holds_v4(e, a->b, any_form);
	case E_CIDR6:
		return prefix_match(a->fam == 6 ? a->b : mapped_of(a->b, m), e->addr, e->bits);
	}
	return false;
}

static void verdict(struct sg_egress_verdict *v, bool allowed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
verdict(struct sg_egress_verdict *v, bool allowed, const char *fmt, ...)
{
	va_list ap;
	v->allowed = allowed;
	va_start(ap, fmt);
	vsnprintf(v->rule, sizeof(v->rule), fmt, ap);
	va_end(ap);
}

/* A host's length as a name: without an IPv6 literal's brackets or one trailing dot. */
static size_t
name_length(const char *host)
{
	size_t n = strnlen(host, ENTRY_MAX + 8);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		n -= 2;
	else if (n > 1 && host[n - 1] == '.')
		n--;
	return n;
}

void
sg_egress_judge(const struct sg_egress_list *allow, const struct sg_egress_policy *policy,
                const char *host, const struct sockaddr *sa, socklen_t len,
                struct sg_egress_verdict *v)
{
	char h[ENTRY_MAX + 2], why[sizeof(v->rule)];
	struct addr a;
	/* A cut-off name could end like an allowed one; no real name is this long. */
	if (host != NULL && name_length(host) > ENTRY_MAX) {
		verdict(v, false, "built-in: host names longer than 253 characters");
		return;
	}
	normalise_host(host ? host : "", h);
	if (read_addr(sa, len, &a) != 0) {
		verdict(v, false, "built-in: only IPv4 and IPv6 addresses");
		return;
	}
	const struct egress_rule *hit = NULL;
	for (size_t i = 0; policy != NULL && hit == NULL && i < policy->n; i++) {
		const struct egress_rule *r = &policy->v[i];
		if (entry_holds(&r->e, h, &a, !r->allow))
			hit = r;
	}
	if (hit != NULL && !hit->allow) {
		verdict(v, false, "policy endpoint rule %zu (deny %.80s)",
		        (size_t)(hit - policy->v) + 1, hit->e.text);
		return;
	}
	if (policy != NULL && hit == NULL && !policy->default_allow) {
		verdict(v, false, "policy endpoint default (deny)");
		return;
	}
	if (builtin_denies(h, &a, why, sizeof(why))) {
		for (size_t i = 0; allow != NULL && i < allow->n; i++)
			if (entry_holds(&allow->v[i], h, &a, false)) {
				verdict(v, true, "connector allowlist entry %.80s",
				        allow->v[i].text);
				return;
			}
		verdict(v, false, "%s", why);
		return;
	}
	if (hit != NULL)
		verdict(v, true, "policy endpoint rule %zu (allow %.80s)",
		        (size_t)(hit - policy->v) + 1, hit->e.text);
	else if (policy != NULL)
		verdict(v, true, "policy endpoint default (allow)");
	else
		verdict(v, true, "no rule denies it");
}
