/*
 * sg_spend_tally: the writer thread's running sum of what the calls it
 * recorded cost, one row per (tenant, user, mode, UTC day), until it is
 * added to the store's daily spending.  Owned by the writer alone.
 *
 * Bounded: when `max_rows` callers have spent since the last flush, adding
 * another fails and the writer falls back to counting from the record.
 */
#ifndef SG_SPEND_TALLY_H
#define SG_SPEND_TALLY_H

#include <stddef.h>

#include "store/sg_store.h"

struct sg_spend_tally;

struct sg_spend_tally *sg_spend_tally_new(size_t max_rows);
void sg_spend_tally_free(struct sg_spend_tally *t);
/* Adds a recorded decision's cost when it spends; -1 when the tally is full. */
int sg_spend_tally_add(struct sg_spend_tally *t, const struct sg_decision *d);
const struct sg_spend_row *sg_spend_tally_rows(const struct sg_spend_tally *t, size_t *n);
void sg_spend_tally_clear(struct sg_spend_tally *t);

#endif
