/*
 * sg_name: the one rule for the names people give tenants, users,
 * connectors and templates.  Each name ends up somewhere that cannot take
 * just anything: a tenant in a cgroup directory and in the zygote's fixed-
 * size frames, a connector or template in a URL path, all of them in fixed
 * 64-byte columns of the store.  The rule is the one all of those accept,
 * and it is checked where a name enters (keys create, apply), so nothing
 * accepted there can be refused later.
 */
#ifndef SG_NAME_H
#define SG_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* The store's tenant and user columns are char[64]. */
#define SG_NAME_MAX 63

/* What the rule says, for messages. */
#define SG_NAME_RULE                                                                               \
	"1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"

/* 1..SG_NAME_MAX of [a-z0-9_-], the first [a-z0-9].  NULL is not valid. */
bool sg_name_valid(const char *s);

/*
 * Why `s` is not a valid name, for people: the first thing wrong with it
 * and then the rule, e.g. "'.' at position 5 is not allowed; use 1 to 63
 * ...".  Writes into buf (at least 160 bytes is enough) and returns it; an
 * empty string when `s` is valid.
 */
const char *sg_name_why(const char *s, char *buf, size_t size);

#endif
