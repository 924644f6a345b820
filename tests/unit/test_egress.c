/*
 * test_egress: the SSRF guard's judgements on addresses, embedded IPv4,
 * numeric spellings, connector allowlists and policy endpoint rules.
 * Nothing here sends a packet: addresses are parsed, never connected to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "upstream/sg_egress.h"

/* The address `text` (IPv4 or IPv6, standard spelling) as a sockaddr. */
static socklen_t
sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(443);
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
		fail_msg("test address \"%s\" does not parse", text);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(443);
	return sizeof(*in6);
}

static struct sg_egress_verdict
judge(const struct sg_egress_list *allow, const struct sg_egress_policy *pol, const char *host,
      const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(addr, &ss);
	struct sg_egress_verdict v;
	memset(&v, 0xa5, sizeof(v));
	sg_egress_judge(allow, pol, host, (struct sockaddr *)&ss, len, &v);
	assert_non_null(memchr(v.rule, '\0', sizeof(v.rule)));
	return v;
}

/* Denied by the built-in list with `rule`, and the rule never names the address. */
static void
assert_denied(const char *addr, const char *rule)
{
	struct sg_egress_verdict v = judge(NULL, NULL, "upstream.example", addr);
	if (v.allowed)
		fail_msg("%s was allowed (%s)", addr, v.rule);
	if (rule != NULL && strcmp(v.rule, rule) != 0)
		fail_msg("%s: rule \"%s\", expected \"%s\"", addr, v.rule, rule);
	if (strstr(v.rule, addr) != NULL)
		fail_msg("rule \"%s\" names the address %s", v.rule, addr);
}

static void
assert_allowed(const char *addr)
{
	struct sg_egress_verdict v = judge(NULL, NULL, "upstream.example", addr);
	if (!v.allowed)
		fail_msg("%s was denied (%s)", addr, v.rule);
}

/* Every IPv4 deny range: its first and last address in, and the neighbours out. */
static void
test_ipv4_boundaries(void **state)
{
	(void)state;
	static const struct {
		const char *before, *first, *last, *after;
	} r[] = {
	    {NULL, "0.0.0.0", "0.255.255.255", "1.0.0.0"},
	    {"9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0"},
	    {"100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0"},
	    {"126.255.255.255", "127.0.0.0", "127.255.255.255", "128.0.0.0"},
	    {"169.253.255.255", "169.254.0.0", "169.254.255.255", "169.255.0.0"},
	    {"172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0"},
	    {"191.255.255.255", "192.0.0.0", "192.0.0.255", NULL},
	    {NULL, "192.0.2.0", "192.0.2.255", "192.0.3.0"},
	    {"192.0.1.255", NULL, NULL, NULL},
	    {"192.88.98.255", "192.88.99.0", "192.88.99.255", "192.88.100.0"},
	    {"192.167.255.255", "192.168.0.0", "192.168.255.255", "192.169.0.0"},
	    {"198.17.255.255", "198.18.0.0", "198.19.255.255", "198.20.0.0"},
	    {"198.51.99.255", "198.51.100.0", "198.51.100.255", "198.51.101.0"},
	    {"203.0.112.255", "203.0.113.0", "203.0.113.255", "203.0.114.0"},
	    {"223.255.255.255", "224.0.0.0", "239.255.255.255", NULL},
	    {NULL, "240.0.0.0", "255.255.255.254", NULL},
	    {NULL, "255.255.255.255", "255.255.255.255", NULL},
	    {"100.100.100.199", "100.100.100.200", "100.100.100.200", "100.100.100.201"},
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		if (r[i].first)
			assert_denied(r[i].first, NULL);
		if (r[i].last)
			assert_denied(r[i].last, NULL);
		/* 100.100.100.199 and .201 are in CGNAT space, so still denied. */
		if (r[i].before && strncmp(r[i].before, "100.100", 7) != 0)
			assert_allowed(r[i].before);
		if (r[i].after && strncmp(r[i].after, "100.100", 7) != 0)
			assert_allowed(r[i].after);
	}
	assert_denied("100.100.100.199", "built-in: shared (CGNAT) addresses");
	assert_denied("100.100.100.200", "built-in: cloud metadata addresses");
}

static void
test_ipv4_rules_named(void **state)
{
	(void)state;
	assert_denied("169.254.169.254", "built-in: cloud metadata addresses");
	assert_denied("169.254.169.253", "built-in: link-local addresses");
	assert_denied("127.0.0.1", "built-in: loopback addresses");
	assert_denied("10.1.2.3", "built-in: private addresses");
	assert_denied("0.0.0.0", "built-in: unspecified (this-network) addresses");
	assert_denied("255.255.255.255", "built-in: the broadcast address");
	assert_denied("224.0.0.1", "built-in: multicast addresses");
	assert_allowed("93.184.216.34");
	assert_allowed("8.8.8.8");
}

static void
test_ipv6_forms(void **state)
{
	(void)state;
	assert_denied("::ffff:169.254.169.254",
	              "built-in: cloud metadata addresses, in IPv4-mapped form");
	assert_denied("::ffff:7f00:1", "built-in: loopback addresses, in IPv4-mapped form");
	assert_denied("::169.254.169.254",
	              "built-in: cloud metadata addresses, in IPv4-compatible form");
	assert_denied("64:ff9b::a9fe:a9fe", "built-in: cloud metadata addresses, in NAT64 form");
	assert_denied("2002:a9fe:a9fe::", "built-in: cloud metadata addresses, in 6to4 form");
	assert_denied("2002:7f00:1::1", "built-in: loopback addresses, in 6to4 form");
	/* Teredo: server 65.54.227.120, client 169.254.169.254 stored inverted (56.1.56.1). */
	assert_denied("2001:0:4136:e378:8000:63bf:5601:5601",
	              "built-in: cloud metadata addresses, in Teredo form");
	assert_denied("fd00:ec2::254", "built-in: cloud metadata addresses");
	assert_denied("fd00:ec2::253", "built-in: unique-local addresses");
	assert_denied("fc00::", "built-in: unique-local addresses");
	assert_denied("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	              "built-in: unique-local addresses");
	assert_allowed("fe00::1");
	assert_denied("fe80::1", "built-in: link-local addresses");
	assert_denied("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "built-in: link-local addresses");
	assert_denied("fec0::1", "built-in: site-local addresses");
	assert_denied("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "built-in: site-local addresses");
	assert_denied("64:ff9b:1::a9fe:a9fe", "built-in: local-use NAT64 addresses");
	assert_denied("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "built-in: local-use NAT64 addresses");
	assert_allowed("64:ff9b:2::1");
	assert_denied("::ffff:0:a9fe:a9fe",
	              "built-in: cloud metadata addresses, in IPv4-translated form");
	assert_denied("::ffff:0:7f00:1", "built-in: loopback addresses, in IPv4-translated form");
	assert_denied("::", "built-in: unspecified addresses");
	assert_denied("::1", "built-in: loopback addresses");
	assert_denied("ff02::1", "built-in: multicast addresses");
	assert_denied("ff00::", "built-in: multicast addresses");
	assert_denied("100::", "built-in: discard-only addresses");
	assert_denied("100::ffff:ffff:ffff:ffff", "built-in: discard-only addresses");
	assert_allowed("100:0:0:1::");
	assert_denied("2001:db8::1", "built-in: documentation addresses");
	assert_denied("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	              "built-in: documentation addresses");
	assert_allowed("2001:db9::1");
	/* Embedded public IPv4 is judged as that IPv4. */
	assert_allowed("::ffff:93.184.216.34");
	assert_allowed("64:ff9b::5db8:d822");
	assert_allowed("::ffff:0:5db8:d822");
	assert_allowed("2002:5db8:d822::1");
	assert_allowed("2606:2800:220:1::");
	assert_allowed("2a00:1450:4001:82a::200e");
}

/* glibc's inet_aton spellings, read the way a resolver would, all land on loopback. */
static void
test_numeric_spellings(void **state)
{
	(void)state;
	static const char *const spellings[] = {"2130706433", "0x7f.1", "0177.0.0.1", "127.1",
	                                        "0x7f000001"};
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		struct addrinfo hints = {.ai_family = AF_INET, .ai_flags = AI_NUMERICHOST}, *res;
		int rc = getaddrinfo(spellings[i], "443", &hints, &res);
		if (rc != 0)
			fail_msg("getaddrinfo(%s): %s", spellings[i], gai_strerror(rc));
		struct sg_egress_verdict v;
		sg_egress_judge(NULL, NULL, spellings[i], res->ai_addr, res->ai_addrlen, &v);
		if (v.allowed || strcmp(v.rule, "built-in: loopback addresses") != 0)
			fail_msg("%s: %s (%s)", spellings[i], v.allowed ? "allowed" : "denied",
			         v.rule);
		assert_null(strstr(v.rule, "127"));
		freeaddrinfo(res);
	}
}

static struct sg_egress_list *
list_of(const char *const *v, size_t n)
{
	char err[256] = "";
	struct sg_egress_list *l = sg_egress_list_new(v, n, err, sizeof(err));
	if (l == NULL)
		fail_msg("list refused: %s", err);
	return l;
}

static void
test_connector_allowlist_cidr(void **state)
{
	(void)state;
	static const char *const e[] = {"127.0.0.1/32", "::1"};
	struct sg_egress_list *l = list_of(e, 2);
	struct sg_egress_verdict v = judge(l, NULL, "127.0.0.1", "127.0.0.1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "connector allowlist entry 127.0.0.1/32");
	v = judge(l, NULL, "127.0.0.1", "::ffff:127.0.0.1");
	assert_true(v.allowed);
	v = judge(l, NULL, "127.0.0.2", "127.0.0.2");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: loopback addresses");
	v = judge(l, NULL, "localhost", "::1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "connector allowlist entry ::1");
	/* A relay form is not the address itself: the allowlist does not open it. */
	v = judge(l, NULL, "x", "2002:7f00:1::");
	assert_false(v.allowed);
	/* The allowlist only lifts the built-in list; public addresses stay allowed. */
	assert_true(judge(l, NULL, "example.com", "93.184.216.34").allowed);
	sg_egress_list_free(l);
}

static void
test_connector_allowlist_hosts(void **state)
{
	(void)state;
	static const char *const e[] = {"Mock.Test.", "*.internal.example"};
	struct sg_egress_list *l = list_of(e, 2);
	struct sg_egress_verdict v = judge(l, NULL, "mock.test", "127.0.0.1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "connector allowlist entry mock.test");
	assert_true(judge(l, NULL, "MOCK.TEST.", "127.0.0.1").allowed);
	assert_false(judge(l, NULL, "other.test", "127.0.0.1").allowed);
	assert_false(judge(l, NULL, "xmock.test", "127.0.0.1").allowed);
	v = judge(l, NULL, "a.b.internal.example", "10.0.0.1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "connector allowlist entry *.internal.example");
	/* A wildcard names subdomains only, not the domain itself. */
	assert_false(judge(l, NULL, "internal.example", "10.0.0.1").allowed);
	assert_false(judge(l, NULL, "xinternal.example", "10.0.0.1").allowed);
	sg_egress_list_free(l);
}

static void
test_metadata_host_name(void **state)
{
	(void)state;
	struct sg_egress_verdict v =
	    judge(NULL, NULL, "Metadata.Google.Internal.", "93.184.216.34");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: cloud metadata host names");
}

static void
assert_refused(const char *entry, const char *expected)
{
	char err[256] = "";
	struct sg_egress_list *l = sg_egress_list_new(&entry, 1, err, sizeof(err));
	if (l != NULL)
		fail_msg("entry \"%s\" was accepted", entry ? entry : "(null)");
	if (strcmp(err, expected) != 0)
		fail_msg("entry \"%s\": \"%s\", expected \"%s\"", entry ? entry : "(null)", err,
		         expected);
}

static void
test_list_garbage(void **state)
{
	(void)state;
	assert_refused("", "egress entry \"\": empty; write a host name such as api.example.com "
	                   "or a CIDR such as 10.0.0.0/8");
	assert_refused("10.0.0.1/8", "egress entry \"10.0.0.1/8\": has address bits set past the "
	                             "prefix length; write the network's first address, or /32 "
	                             "(/128) for one address");
	assert_refused("10.0.0.0/33", "egress entry \"10.0.0.0/33\": the prefix length after '/' "
	                              "must be a number from 0 to 32");
	assert_refused("::1/129", "egress entry \"::1/129\": the prefix length after '/' must be a "
	                          "number from 0 to 128");
	assert_refused("300.1.1.1/32", "egress entry \"300.1.1.1/32\": not an IPv4 address; write "
	                               "four decimal numbers such as 10.0.0.0/8 or 127.0.0.1");
	assert_refused("fe80::1%eth0", "egress entry \"fe80::1%eth0\": not an IPv6 address; write "
	                               "one such as fd00::/8 or ::1");
	const char *shorthand = "egress entry \"%s\": is an IPv4 address in a shorthand or numeric "
	                        "spelling; write it as four decimal numbers such as 127.0.0.1/32";
	static const char *const numeric[] = {"127.1", "2130706433", "0x7f.1", "0177.0.0.1"};
	for (size_t i = 0; i < 4; i++) {
		char want[256];
		snprintf(want, sizeof(want), shorthand, numeric[i]);
		assert_refused(numeric[i], want);
	}
	const char *host = "egress entry \"%s\": expected a host name such as api.example.com, "
	                   "\"*.example.com\" for its subdomains, an address, or a CIDR such as "
	                   "10.0.0.0/8";
	static const char *const bad[] = {"*",    "*.",  "a.*.com",   "*foo.com", "-a.com",
	                                  "a..b", "a b", "1.2.3.4.5", "http://x", "a.com:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "", want[256];
		struct sg_egress_list *l = sg_egress_list_new(&bad[i], 1, err, sizeof(err));
		assert_null(l);
		snprintf(want, sizeof(want), host, bad[i]);
		if (strchr(bad[i], ':') == NULL && strcmp(err, want) != 0)
			fail_msg("\"%s\": %s", bad[i], err);
		assert_non_null(strstr(err, bad[i]));
	}
	/* Control bytes never reach a terminal; long entries are cut. */
	assert_refused("a\x1b[2Jb", "egress entry \"a?[2Jb\": expected a host name such as "
	                            "api.example.com, \"*.example.com\" for its subdomains, an "
	                            "address, or a CIDR such as 10.0.0.0/8");
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	char err[256];
	const char *lp = longname;
	assert_null(sg_egress_list_new(&lp, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "...\": longer than 253 characters"));
	/* The bad entry is named even when it is not the first. */
	static const char *const two[] = {"api.example.com", "10.0.0.0/40"};
	assert_null(sg_egress_list_new(two, 2, err, sizeof(err)));
	assert_non_null(strstr(err, "\"10.0.0.0/40\""));
	/* Entries that are fine. */
	static const char *const good[] = {"0.0.0.0/0",     "::/0",        "10.0.0.0/8",
	                                   "2001:db8::/32", "192.168.1.1", "localhost",
	                                   "*.internal",    "a_b.example"};
	sg_egress_list_free(list_of(good, sizeof(good) / sizeof(good[0])));
	sg_egress_list_free(list_of(NULL, 0));
}

static struct sg_egress_policy *
policy_of(const struct sg_egress_rule_def *r, size_t n, bool default_allow)
{
	char err[256] = "";
	struct sg_egress_policy *p = sg_egress_policy_new(r, n, default_allow, err, sizeof(err));
	if (p == NULL)
		fail_msg("policy refused: %s", err);
	return p;
}

static void
test_policy_first_match(void **state)
{
	(void)state;
	static const struct sg_egress_rule_def r[] = {
	    {false, "*.internal"},
	    {true, "api.example.com"},
	    {false, "93.184.216.0/24"},
	    {true, "93.184.0.0/16"},
	};
	struct sg_egress_policy *p = policy_of(r, 4, true);
	struct sg_egress_verdict v = judge(NULL, p, "db.internal", "93.184.216.34");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 1 (deny *.internal)");
	/* Rule 2 matches first, so rule 3's CIDR is never consulted. */
	v = judge(NULL, p, "api.example.com", "93.184.216.34");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 2 (allow api.example.com)");
	v = judge(NULL, p, "www.example.com", "93.184.216.34");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 3 (deny 93.184.216.0/24)");
	assert_null(strstr(v.rule, "93.184.216.34"));
	v = judge(NULL, p, "www.example.com", "93.184.1.1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 4 (allow 93.184.0.0/16)");
	v = judge(NULL, p, "elsewhere.org", "8.8.8.8");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "policy endpoint default (allow)");
	/* A deny CIDR holds the IPv4 in any IPv6 form, so spelling cannot slip past it. */
	v = judge(NULL, p, "www.example.com", "64:ff9b::5db8:d822");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 3 (deny 93.184.216.0/24)");
	sg_egress_policy_free(p);
}

static void
test_policy_default_deny(void **state)
{
	(void)state;
	static const struct sg_egress_rule_def r[] = {
	    {true, "api.example.com"},
	    {true, "10.0.0.0/8"},
	};
	struct sg_egress_policy *p = policy_of(r, 2, false);
	static const char *const e[] = {"10.0.0.0/8"};
	struct sg_egress_list *l = list_of(e, 1);
	struct sg_egress_verdict v = judge(NULL, p, "other.example.com", "93.184.216.34");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint default (deny)");
	assert_true(judge(NULL, p, "api.example.com", "93.184.216.34").allowed);
	/* What policy allows still meets the built-in list... */
	v = judge(NULL, p, "api.example.com", "127.0.0.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: loopback addresses");
	v = judge(NULL, p, "svc", "10.1.1.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: private addresses");
	/* ...unless the connector's allowlist names it. */
	v = judge(l, p, "svc", "10.1.1.1");
	assert_true(v.allowed);
	assert_string_equal(v.rule, "connector allowlist entry 10.0.0.0/8");
	/* The connector cannot open what the policy's default closes. */
	static const struct sg_egress_rule_def none[] = {{true, "api.example.com"}};
	struct sg_egress_policy *closed = policy_of(none, 1, false);
	v = judge(l, closed, "svc", "10.1.1.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint default (deny)");
	sg_egress_policy_free(closed);
	sg_egress_list_free(l);
	sg_egress_policy_free(p);
}

static void
test_policy_deny_beats_connector(void **state)
{
	(void)state;
	static const struct sg_egress_rule_def r[] = {{false, "127.0.0.0/8"}, {false, "mock.test"}};
	struct sg_egress_policy *p = policy_of(r, 2, true);
	static const char *const e[] = {"127.0.0.1/32", "mock.test"};
	struct sg_egress_list *l = list_of(e, 2);
	struct sg_egress_verdict v = judge(l, p, "localhost", "127.0.0.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 1 (deny 127.0.0.0/8)");
	v = judge(l, p, "mock.test", "::1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "policy endpoint rule 2 (deny mock.test)");
	sg_egress_list_free(l);
	sg_egress_policy_free(p);
	/* A bad rule entry is refused with its sentence. */
	static const struct sg_egress_rule_def bad[] = {{true, "ok.example"}, {false, "10.0.0.0/"}};
	char err[256] = "";
	assert_null(sg_egress_policy_new(bad, 2, true, err, sizeof(err)));
	assert_string_equal(err, "egress entry \"10.0.0.0/\": the prefix length after '/' must be "
	                         "a number from 0 to 32");
}

/* A name too long to be real is refused, not cut to one that ends like an allowed name. */
static void
test_long_host(void **state)
{
	(void)state;
	static const char *const e[] = {"*.example.com"};
	struct sg_egress_list *l = list_of(e, 1);
	char host[400];
	memset(host, 'a', sizeof(host));
	memcpy(host + 241, ".example.com", 12); /* ends at 253: a legal length */
	host[253] = '\0';
	assert_true(judge(l, NULL, host, "10.0.0.1").allowed);
	memcpy(host + 253, ".evil.test", 11);
	struct sg_egress_verdict v = judge(l, NULL, host, "10.0.0.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: host names longer than 253 characters");
	/* One character past the cut that once left an allowed ending ("...example.com" + "x"). */
	memset(host, 'a', sizeof(host));
	memcpy(host + 242, ".example.com", 12);
	memcpy(host + 254, "x", 2);
	v = judge(l, NULL, host, "10.0.0.1");
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: host names longer than 253 characters");
	sg_egress_list_free(l);
}

static void
test_odd_sockaddrs(void **state)
{
	(void)state;
	struct sg_egress_verdict v;
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of("93.184.216.34", &ss);
	sg_egress_judge(NULL, NULL, "x", NULL, 0, &v);
	assert_false(v.allowed);
	sg_egress_judge(NULL, NULL, "x", (struct sockaddr *)&ss, len - 1, &v);
	assert_false(v.allowed);
	ss.ss_family = AF_UNIX;
	sg_egress_judge(NULL, NULL, "x", (struct sockaddr *)&ss, sizeof(ss), &v);
	assert_false(v.allowed);
	assert_string_equal(v.rule, "built-in: only IPv4 and IPv6 addresses");
	sockaddr_of("93.184.216.34", &ss);
	sg_egress_judge(NULL, NULL, NULL, (struct sockaddr *)&ss, len, &v);
	assert_true(v.allowed);
	assert_string_equal(v.rule, "no rule denies it");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_boundaries),
	    cmocka_unit_test(test_ipv4_rules_named),
	    cmocka_unit_test(test_ipv6_forms),
	    cmocka_unit_test(test_numeric_spellings),
	    cmocka_unit_test(test_connector_allowlist_cidr),
	    cmocka_unit_test(test_connector_allowlist_hosts),
	    cmocka_unit_test(test_metadata_host_name),
	    cmocka_unit_test(test_list_garbage),
	    cmocka_unit_test(test_policy_first_match),
	    cmocka_unit_test(test_policy_default_deny),
	    cmocka_unit_test(test_policy_deny_beats_connector),
	    cmocka_unit_test(test_long_host),
	    cmocka_unit_test(test_odd_sockaddrs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
