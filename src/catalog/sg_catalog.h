/*
 * sg_catalog: the set of live connectors, sorted by name, with a flat index
 * over every operation so that policies can compile to bitmaps.
 */
#ifndef SG_CATALOG_H
#define SG_CATALOG_H

#include <stddef.h>

#include "catalog/sg_connector.h"

struct sg_catalog {
	struct sg_connector **v; /* owned; sorted by name */
	size_t n;
	size_t n_ops;            /* total operations; op->index < n_ops */
};

/*
 * Takes ownership of the `n` connectors in `v` (the array itself is copied),
 * sorts them and assigns indexes.  Returns NULL when two share a name.
 */
struct sg_catalog *sg_catalog_new(struct sg_connector **v, size_t n);
void sg_catalog_free(struct sg_catalog *cat);

const struct sg_connector *sg_catalog_find(const struct sg_catalog *cat, const char *name);

#endif
