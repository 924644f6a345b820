/*
 * sg_rules: the small runtime side of rules: names for messages and the
 * share of a window each workload class may fill.
 */
#include "policy/sg_rules.h"

#include <string.h>

static const char *const class_names[SG_CLASS_COUNT] = {"critical", "normal", "background"};
static const char *const who_names[] = {"api_key", "user", "tenant", "everyone"};
static const char *const what_names[] = {"all", "connector", "operation"};

const char *
sg_class_name(enum sg_class c)
{
	return (unsigned)c < SG_CLASS_COUNT ? class_names[c] : "unknown";
}

int
sg_class_parse(const char *s, enum sg_class *c)
{
	for (int i = 0; s != NULL && i < SG_CLASS_COUNT; i++)
		if (strcmp(s, class_names[i]) == 0) {
			*c = (enum sg_class)i;
			return 0;
		}
	return -1;
}

const char *
sg_rule_who_name(enum sg_rule_who w)
{
	return (unsigned)w <= SG_WHO_EVERYONE ? who_names[w] : "unknown";
}

const char *
sg_rule_what_name(enum sg_rule_what w)
{
	return (unsigned)w <= SG_WHAT_OPERATION ? what_names[w] : "unknown";
}

uint64_t
sg_rule_reserve_ns(const struct sg_rule *r, const struct sg_gcra_limit *w, enum sg_class cls)
{
	uint32_t share = (unsigned)cls < SG_CLASS_COUNT ? r->share_permille[cls] : 1000;
	if (share >= 1000)
		return 0;
	/* burst * T reaches 1e5 * 8.64e16 for "0.001/d", past 64 bits; saturate. */
	unsigned __int128 part = (unsigned __int128)w->emission_ns * w->burst;
	part = part * (1000 - share) / 1000;
	return part > UINT64_MAX ? UINT64_MAX : (uint64_t)part;
}
