/*
 * sg_server: the listener threads and the main thread's duties (signals,
 * reloads, drain).  The main thread owns the store connection used for
 * reloads; I/O threads never touch the store.
 */
#ifndef SG_SERVER_H
#define SG_SERVER_H

#include <stddef.h>

#include "path/sg_req.h"
#include "store/sg_store.h"

struct sg_server;

/*
 * Binds the listening sockets (one per thread, SO_REUSEPORT) and prepares
 * the event loops, without starting threads.  Returns NULL with a message
 * for a person in `err` (e.g. the address is in use).
 */
struct sg_server *sg_server_new(struct sg_gateway *gw, char *err, size_t errlen);

/*
 * Starts the I/O threads and runs the main loop until SIGTERM or SIGINT has
 * drained the server.  SIGHUP rebuilds the snapshot from `store`; key
 * changes in the store are picked up within a second.  Returns 0 after a
 * clean drain.
 */
int sg_server_run(struct sg_server *s, struct sg_store *store);
void sg_server_free(struct sg_server *s);

/* Rebuilds and publishes the snapshot; `keys_only` keeps the definitions. */
int sg_server_reload(struct sg_gateway *gw, struct sg_store *store, int keys_only);

#endif
