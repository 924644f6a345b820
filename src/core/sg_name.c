/*
 * The naming rule.  A byte test rather than ctype's, which follows the
 * locale: a name valid on one host must be valid on every host.
 */
#include "core/sg_name.h"

#include <stdio.h>
#include <string.h>

static bool
name_byte(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

bool
sg_name_valid(const char *s)
{
	if (s == NULL || s[0] == '-' || s[0] == '_')
		return false;
	size_t n = 0;
	while (n <= SG_NAME_MAX && s[n] != '\0' && name_byte(s[n]))
		n++;
	return n > 0 && n <= SG_NAME_MAX && s[n] == '\0';
}

const char *
sg_name_why(const char *s, char *buf, size_t size)
{
	size_t n = s ? strlen(s) : 0, i = 0;
	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (sg_name_valid(s))
		return buf;
	while (i < n && name_byte(s[i]))
		i++;
	if (n == 0)
		snprintf(buf, size, "it is empty; use " SG_NAME_RULE);
	else if (n > SG_NAME_MAX && i == n)
		snprintf(buf, size, "it is %zu characters long; use " SG_NAME_RULE, n);
	else if (i < n && s[i] >= 'A' && s[i] <= 'Z')
		snprintf(buf, size,
		         "uppercase '%c' at position %zu is not allowed; use " SG_NAME_RULE, s[i],
		         i + 1);
	else if (i < n && s[i] > ' ' && s[i] < 0x7f)
		snprintf(buf, size, "'%c' at position %zu is not allowed; use " SG_NAME_RULE, s[i],
		         i + 1);
	else if (i < n)
		snprintf(buf, size, "byte 0x%02x at position %zu is not allowed; use " SG_NAME_RULE,
		         (unsigned char)s[i], i + 1);
	else
		snprintf(buf, size, "'%c' may not start a name; use " SG_NAME_RULE, s[0]);
	return buf;
}
