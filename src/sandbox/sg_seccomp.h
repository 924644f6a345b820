/*
 * sg_seccomp: the system-call allowlist of a sandbox worker, the last layer
 * of confinement (see sg_isolate.h for the layers before it).
 */
#ifndef SG_SECCOMP_H
#define SG_SECCOMP_H

#include <stddef.h>

#include <seccomp.h>

/*
 * Builds the worker filter without loading it: for tests and for printing
 * it (seccomp_export_pfc).  Release it with seccomp_release().  NULL with a
 * message in err on failure.
 */
scmp_filter_ctx sg_seccomp_worker_filter(char *err, size_t errlen);

/*
 * Loads the worker filter into the calling process.  From then on any system
 * call outside the list, or any call from a foreign ABI (x32, i386), kills
 * the whole process with SIGSYS.  Irreversible; call it last, after every
 * file and socket the worker needs is already open.  0, or -1 with a message.
 */
int sg_seccomp_load_worker(char *err, size_t errlen);

#endif
