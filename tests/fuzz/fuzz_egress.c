/*
 * fuzz_egress: allowlist and endpoint-rule entries, one per line, compiled
 * and then used to judge a fixed set of addresses.  A line starting with
 * '!' becomes a deny rule in the policy built from the same entries.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/sg_egress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 64

static const char *const addrs[] = {
    "169.254.169.254",
    "127.0.0.1",
    "10.1.2.3",
    "93.184.216.34",
    "::1",
    "::ffff:127.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::",
    "fd00:ec2::254",
    "2606:2800:220:1::",
};

static void
judge_all(const struct sg_egress_list *l, const struct sg_egress_policy *p, const char *host)
{
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct sockaddr_storage ss = {0};
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		socklen_t len = sizeof(*in);
		if (inet_pton(AF_INET, addrs[i], &in->sin_addr) == 1) {
			in->sin_family = AF_INET;
		} else {
			inet_pton(AF_INET6, addrs[i], &in6->sin6_addr);
			in6->sin6_family = AF_INET6;
			len = sizeof(*in6);
		}
		struct sg_egress_verdict v;
		sg_egress_judge(l, p, host, (struct sockaddr *)&ss, len, &v);
		/* A verdict always names its rule, and a refusal never the address. */
		if (memchr(v.rule, '\0', sizeof(v.rule)) == NULL || v.rule[0] == '\0')
			abort();
		if (!v.allowed && strncmp(v.rule, "built-in: ", 10) == 0 &&
		    strstr(v.rule, addrs[i]) != NULL)
			abort();
		/* Without an allowlist, metadata stays out of reach whatever the policy says. */
		if (l == NULL && i == 0 && v.allowed)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	const char *lines[MAX_LINES];
	struct sg_egress_rule_def rules[MAX_LINES];
	size_t n = 0;
	for (char *s = text, *nl; n < MAX_LINES && s != NULL; s = nl) {
		nl = strchr(s, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		rules[n] =
		    (struct sg_egress_rule_def){.allow = s[0] != '!', .entry = s + (s[0] == '!')};
		lines[n] = rules[n].entry;
		n++;
	}
	char err[256];
	struct sg_egress_list *l = sg_egress_list_new(lines, n, err, sizeof(err));
	if (l == NULL && (memchr(err, '\0', sizeof(err)) == NULL || strlen(err) < 10))
		abort();
	struct sg_egress_policy *p = sg_egress_policy_new(rules, n, n % 2 == 0, err, sizeof(err));
	/* The same entries compile the same way in both forms. */
	if ((l == NULL) != (p == NULL))
		abort();
	judge_all(l, p, n > 0 ? lines[0] : "");
	judge_all(NULL, p, "api.example.com");
	sg_egress_list_free(l);
	sg_egress_policy_free(p);
	free(text);
	return 0;
}
