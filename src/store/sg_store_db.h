/* For the store's own files only: the connection behind a struct sg_store. */
#ifndef SG_STORE_DB_H
#define SG_STORE_DB_H

#include <sqlite3.h>

#include "store/sg_store.h"

sqlite3 *sg_store_db(struct sg_store *s);
/* Keeps the connection's last error for sg_store_last_error, before a ROLLBACK clears it. */
void sg_store_remember_error(struct sg_store *s);

/*
 * Appends decisions to the main chain inside the caller's write
 * transaction (the head is read and moved there).  For retention's
 * checkpoint, which must commit with its prune.
 */
int sg_store_append(struct sg_store *s, const struct sg_decision *v, size_t n);
/* Migration 10: chains the rows recorded before it, in id order from zeros. */
int sg_store_chain_link_existing(struct sg_store *s);

#endif
