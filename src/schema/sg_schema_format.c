/*
 * sg_schema_format: the `format` values that are checked.
 */
#include "schema/sg_schema_node.h"

enum sg_schema_format
sg_schema_format_lookup(const char *name)
{
	(void)name;
	return SG_FORMAT_NONE;
}

bool
sg_schema_format_check(enum sg_schema_format f, const char *s, size_t len, char *msg,
                       size_t msg_len)
{
	(void)f, (void)s, (void)len, (void)msg, (void)msg_len;
	return true;
}
