/*
 * sg_io: writing a whole buffer to a descriptor, the one loop every
 * writer here needs (frames, the worker's socket, the log, key files).
 */
#ifndef SG_IO_H
#define SG_IO_H

#include <stddef.h>

/*
 * Writes all `n` bytes, retrying short writes and EINTR.  A socket is
 * written with MSG_NOSIGNAL, so a closed peer is an error (EPIPE), never
 * a signal; any other descriptor with write(2).  Returns 0, or -1 with
 * errno set (EIO when the descriptor took nothing).
 */
int sg_write_all(int fd, const void *p, size_t n);

#endif
