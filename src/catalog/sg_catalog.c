/*
 * sg_catalog: the loaded connectors in name order, plus a flat numbering of
 * every operation so that a policy compiles to one bitmap per role and mode.
 */
#include "catalog/sg_catalog.h"

#include <stdlib.h>
#include <string.h>

static int
connector_cmp(const void *a, const void *b)
{
	const struct sg_connector *x = *(const struct sg_connector *const *)a;
	const struct sg_connector *y = *(const struct sg_connector *const *)b;
	return strcmp(x->name, y->name);
}

/*
 * Ownership passes to the catalog only on success.  On failure (a shared
 * name, or no memory) nothing was freed and the caller still owns every
 * connector in `v`.
 */
struct sg_catalog *
sg_catalog_new(struct sg_connector **v, size_t n)
{
	struct sg_catalog *cat = calloc(1, sizeof(*cat));
	struct sg_connector **copy = calloc(n ? n : 1, sizeof(*copy));
	if (cat == NULL || copy == NULL)
		goto fail;
	if (n > 0)
		memcpy(copy, v, n * sizeof(*copy));
	qsort(copy, n, sizeof(*copy), connector_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(copy[i - 1]->name, copy[i]->name) == 0)
			goto fail;
	size_t n_ops = 0;
	for (size_t i = 0; i < n; i++) {
		copy[i]->index = i;
		for (size_t j = 0; j < copy[i]->n_ops; j++)
			copy[i]->ops[j].index = n_ops++;
	}
	cat->v = copy;
	cat->n = n;
	cat->n_ops = n_ops;
	return cat;
fail:
	free(copy);
	free(cat);
	return NULL;
}

void
sg_catalog_free(struct sg_catalog *cat)
{
	if (cat == NULL)
		return;
	for (size_t i = 0; i < cat->n; i++)
		sg_connector_free(cat->v[i]);
	free(cat->v);
	free(cat);
}

static int
name_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct sg_connector *const *)elem)->name);
}

const struct sg_connector *
sg_catalog_find(const struct sg_catalog *cat, const char *name)
{
	if (cat == NULL || name == NULL || cat->n == 0)
		return NULL;
	struct sg_connector **c = bsearch(name, cat->v, cat->n, sizeof(*cat->v), name_cmp);
	return c ? *c : NULL;
}
