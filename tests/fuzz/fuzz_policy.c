/*
 * fuzz_policy: policy documents compiled against a small fixed catalog.
 * An input holding "\n#--\n" is split into two sources, so that roles
 * spread over files (and defined twice) are exercised too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/sg_catalog.h"
#include "policy/sg_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The same connector, operation and data-domain names as examples/. */
#define OP(name, method, domain)                                                                   \
	"  " name ": { method: " method ", path: /x, data_domain: " domain ", "                    \
	"input: { type: object }, output: { type: object }, examples: [{}] }\n"
#define CONNECTOR(name)                                                                            \
	"kind: connector\nname: " name "\nversion: 1.0.0\ndescription: Fuzz.\n"                    \
	"environments: { sandbox: { simulator: true }, live: { simulator: true } }\n"              \
	"operations:\n"

static const char *const defs[] = {
    CONNECTOR("crm") OP("create_contact", "POST", "pii") OP("get_contact", "GET", "pii")
        OP("list_contacts", "GET", "pii"),
    CONNECTOR("mail") OP("send", "POST", "pii") OP("get_status", "GET", "internal"),
    CONNECTOR("calendar") OP("create_event", "POST", "internal")
        OP("list_events", "GET", "internal") OP("list_holidays", "GET", "public"),
};

static struct sg_catalog *
catalog(void)
{
	static struct sg_catalog *cat;
	struct sg_connector *v[3];
	struct sg_diags d = {0};
	if (cat != NULL)
		return cat;
	for (size_t i = 0; i < 3; i++)
		v[i] = sg_connector_parse("fixed.yaml", defs[i], strlen(defs[i]), 1, &d);
	if (d.n != 0) {
		sg_diags_print(&d, stderr);
		abort();
	}
	cat = sg_catalog_new(v, 3);
	if (cat == NULL)
		abort();
	return cat; /* kept for the process's life */
}

/* Every list is bounded and complete; a usable mode always starts with the role's limit. */
static void
check_rule_lists(const struct sg_catalog *cat, const struct sg_role *r)
{
	for (int m = 0; m < SG_MODE_COUNT; m++)
		for (size_t c = 0; c < cat->n; c++)
			for (size_t i = 0; i < cat->v[c]->n_ops; i++) {
				const struct sg_rule_list *rl =
				    sg_role_rules(r, (enum sg_mode)m, &cat->v[c]->ops[i]);
				if (rl == NULL || rl->n > SG_RULE_MAX_PER_CALL)
					abort();
				for (uint8_t k = 0; k < rl->n; k++)
					if (rl->v[k] == NULL || (rl->v[k]->n_windows == 0) ==
					                            (rl->v[k]->concurrency == 0))
						abort();
				if (r->mode_allowed[m] &&
				    (rl->n == 0 || strchr(rl->v[0]->name, ':') == NULL))
					abort();
			}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sg_catalog *cat = catalog();
	const char *text = (const char *)data;
	const char *split = memmem(text, size, "\n#--\n", 5);
	struct sg_policy_source src[2] = {{"a.yaml", text, size}, {"b.yaml", NULL, 0}};
	size_t n = 1;
	if (split != NULL) {
		src[0].len = (size_t)(split - text) + 1;
		src[1].text = split + 5;
		src[1].len = size - src[0].len - 4;
		n = 2;
	}
	struct sg_diags d = {0};
	struct sg_policy *p = sg_policy_compile(src, n, cat, &d);
	if ((p != NULL) != (d.n == 0))
		abort();
	/* Fail closed: every mode a role may use has a limit for every connector. */
	for (size_t i = 0; p != NULL && i < p->n_roles; i++) {
		const struct sg_role *r = &p->roles[i];
		if (sg_policy_role(p, r->name) != r)
			abort();
		for (int m = 0; m < SG_MODE_COUNT; m++)
			for (size_t c = 0; r->mode_allowed[m] && c < cat->n; c++)
				if (sg_role_limit(r, (enum sg_mode)m, cat->v[c]) == NULL)
					abort();
		check_rule_lists(cat, r);
	}
	sg_policy_free(p);
	sg_diags_free(&d);
	return 0;
}
