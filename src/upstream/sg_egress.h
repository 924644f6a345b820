/*
 * sg_egress: which addresses an upstream call may connect to.  Checked on
 * the resolved address right before connect (sg_fetch's admit callback),
 * and again for every redirect hop, never on the URL's text alone.
 *
 * Order of judgement for one (host, address):
 *   1. the policy's ordered endpoint rules (allow/deny on host patterns and
 *      CIDRs, first match wins), ending in their default: the platform
 *      team's word, so a connector cannot allow what policy denies;
 *   2. the built-in deny list of special-purpose addresses (loopback,
 *      private, link-local, ULA, CGNAT, multicast, broadcast, unspecified,
 *      documentation ranges, cloud metadata), with IPv4 embedded in IPv6
 *      (mapped, compatible, NAT64, 6to4, Teredo) judged as the IPv4 it
 *      holds, unless the connector's own allowlist (egress.allow in its
 *      YAML) names the host or a CIDR holding the address.
 * A refusal names the rule that refused, never the address.
 */
#ifndef SG_EGRESS_H
#define SG_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct sg_egress_list;   /* compiled hosts and CIDRs */
struct sg_egress_policy; /* compiled ordered rules + default */

struct sg_egress_verdict {
	bool allowed;
	/* What decided, for the problem and the audit: "connector allowlist entry 127.0.0.1/32",
	 * "policy endpoint rule 2 (deny *.internal)", "built-in: link-local addresses". */
	char rule[128];
};

/*
 * Compiles a connector's allowlist.  Each entry is an IPv4 or IPv6 CIDR
 * ("127.0.0.1/32", "::1/128"), a bare address, or a host name (exact, or
 * "*.example.com" for any subdomain).  NULL with a sentence in `err` naming
 * the entry when one is malformed.
 */
struct sg_egress_list *sg_egress_list_new(const char *const *entries, size_t n, char *err,
                                          size_t errlen);
void sg_egress_list_free(struct sg_egress_list *l);

/*
 * Compiles the policy's ordered endpoint rules.  Each `entry` is written as
 * for sg_egress_list_new; `default_allow` decides for a (host, address) no
 * rule matches.  NULL with a sentence in `err` naming the entry when one is
 * malformed.
 */
struct sg_egress_rule_def {
	bool allow;
	const char *entry;
};
struct sg_egress_policy *sg_egress_policy_new(const struct sg_egress_rule_def *rules, size_t n,
                                              bool default_allow, char *err, size_t errlen);
void sg_egress_policy_free(struct sg_egress_policy *p);

/*
 * Judges one connect.  `host` is the URL's host as the call named it (for
 * host entries and rules); `sa` the address about to be connected to.
 * `policy` may be NULL (no endpoint rules).
 */
void sg_egress_judge(const struct sg_egress_list *allow, const struct sg_egress_policy *policy,
                     const char *host, const struct sockaddr *sa, socklen_t len,
                     struct sg_egress_verdict *v);

#endif
