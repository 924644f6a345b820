/*
 * sg_migrations: the schema, as numbered steps.  Step N moves a database
 * from user_version N-1 to N; each runs in its own transaction.  Never edit
 * a released step: add a new one.
 */
#ifndef SG_MIGRATIONS_H
#define SG_MIGRATIONS_H

#include <stddef.h>

extern const char *const sg_migrations[];
extern const size_t sg_migrations_count;

#endif
