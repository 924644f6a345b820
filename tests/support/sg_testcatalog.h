/* sg_testcatalog: the example connectors as a catalog, for unit tests. */
#ifndef SG_TESTCATALOG_H
#define SG_TESTCATALOG_H

#include "catalog/sg_catalog.h"

/* A whole file as a NUL-terminated string (malloc'd); NULL when it cannot be read. */
char *sg_test_slurp(const char *path);

/* examples/connectors/{crm,mail,calendar}.yaml parsed with seed 42; NULL on any error. */
struct sg_catalog *sg_test_example_catalog(void);

#endif
