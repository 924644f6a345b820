/*
 * For the zygote's own files (sg_zygote.c, the gateway's client;
 * sg_zygote_main.c, the zygote process; sg_zygote_msg.c, the messages
 * between them): the control protocol described in sg_zygote.h.
 */
#ifndef SG_ZYGOTE_INT_H
#define SG_ZYGOTE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sg_cgroup.h"
#include "sandbox/sg_zygote.h"

#define GO_BYTE 'G'
#define TEXT_MAX 1024
#define RECV_NONE (-2) /* sg_zygote_recv: nothing waiting */

enum ztype {
	Z_HELLO = 1,    /* zygote: set up and serving (no payload) */
	Z_START_FAILED, /* zygote, instead of HELLO: z_text, then it exits */
	Z_SPAWN,        /* gateway: z_spawn */
	Z_SPAWNED,      /* zygote: z_pid, plus the gateway's end as SCM_RIGHTS */
	Z_SPAWN_FAILED, /* zygote: z_text */
	Z_KILL,         /* gateway: z_pid */
	Z_KILLED,       /* zygote: z_status {pid, 0 or errno} */
	Z_EXITED,       /* zygote: z_status {pid, wait status}; id 0 */
	Z_NTYPES,
};

struct zhdr {
	uint32_t type, id, len; /* len: payload bytes, exactly payload_size[type] */
};
struct z_spawn {
	char tenant[SG_ZYGOTE_TENANT_MAX + 1]; /* NUL-padded */
	uint32_t max_runs;
};
struct z_pid {
	int32_t pid;
};
struct z_text {
	char text[TEXT_MAX]; /* NUL-terminated */
};
struct z_status {
	int32_t pid, value;
};

struct zmsg {
	struct zhdr h;
	union {
		struct z_spawn spawn;
		struct z_pid pid;
		struct z_text text;
		struct z_status status;
	} u;
};

/* Exactly the payload bytes of each type. */
extern const size_t sg_zygote_payload_size[Z_NTYPES];

/* vsnprintf into err; returns -1 for `return sg_zygote_say(...)`. */
int sg_zygote_say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One message; with fd >= 0 that descriptor rides along (SCM_RIGHTS).  0 or -1. */
int sg_zygote_send(int sock, enum ztype type, uint32_t id, const void *payload, int fd);
/*
 * One message, checked for its exact size and descriptors: 1, 0 on EOF,
 * RECV_NONE when nothing waits, or -1 with err.
 */
int sg_zygote_recv(int sock, struct zmsg *m, int *fd, char *err, size_t errlen);

/*
 * The zygote process's whole life, in the child just forked, serving the
 * gateway on `ctl`; `sys` is the cgroup layout found before the fork.
 */
_Noreturn void sg_zygote_main(const struct sg_zygote_config *cfg,
                              const struct sg_cgroup_system *sys, int ctl, pid_t parent);

#endif
