/* sg_testdiag: diagnostics as the CLI prints them, for exact-text assertions. */
#ifndef SG_TESTDIAG_H
#define SG_TESTDIAG_H

#include <stddef.h>

#include "core/sg_diag.h"

/*
 * Diagnostic i as "file:line:col: message".  Fails the running cmocka test
 * when there is no such diagnostic.  The result lives until the next call.
 */
const char *diag_at(const struct sg_diags *d, size_t i);

#endif
