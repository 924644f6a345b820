#include "sg_testdiag.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

const char *
diag_at(const struct sg_diags *d, size_t i)
{
	static char buf[1024];
	assert_true(i < d->n);
	const struct sg_diag *e = &d->v[i];
	snprintf(buf, sizeof(buf), "%s:%d:%d: %s", e->file ? e->file : "", e->line, e->col,
	    e->msg);
	return buf;
}
