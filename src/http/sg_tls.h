/*
 * sg_tls: the server's TLS context for listen_tls.  One SSL_CTX serves
 * every I/O thread; SIGHUP builds a new one from the same files and swaps
 * it in for connections accepted from then on.  A connection's SSL holds
 * its own reference to the context it was made from, so connections open
 * across a reload keep the certificate they began with.
 */
#ifndef SG_TLS_H
#define SG_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct sg_config;
struct sg_tls;

/*
 * Reads listen_tls's certificate, key and client CA.  NULL with a sentence
 * for a person in `err` (which file, what is wrong with it, what to do).
 */
struct sg_tls *sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen);
void sg_tls_free(struct sg_tls *tls);

/*
 * Reads the files again and, when they make a valid context, uses it for
 * new connections; otherwise -1 with why in `err`, and the old context
 * stays.  Any thread may call it; the main thread does, on SIGHUP.
 */
int sg_tls_reload(struct sg_tls *tls, char *err, size_t errlen);

/*
 * A bufferevent that will run the server side of a handshake on the fd
 * evhttp gives it, closing fd and SSL when freed; NULL when out of memory.
 * For evhttp's bevcb, on the thread that owns `base`.
 */
struct bufferevent *sg_tls_bev_new(struct sg_tls *tls, struct event_base *base);

/* The serving certificate's serial number in hex ("" if none), for logs. */
void sg_tls_serial(struct sg_tls *tls, char *out, size_t outlen);

#endif
