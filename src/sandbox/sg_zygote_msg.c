/*
 * The zygote's control messages: fixed-size structs over a SEQPACKET
 * socket, each checked for its exact length, one descriptor at most.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sg_zygote_int.h"

const size_t sg_zygote_payload_size[Z_NTYPES] = {
    [Z_START_FAILED] = sizeof(struct z_text), [Z_SPAWN] = sizeof(struct z_spawn),
    [Z_SPAWNED] = sizeof(struct z_pid),       [Z_SPAWN_FAILED] = sizeof(struct z_text),
    [Z_KILL] = sizeof(struct z_pid),          [Z_KILLED] = sizeof(struct z_status),
    [Z_EXITED] = sizeof(struct z_status),
};

int
sg_zygote_say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* One message; with fd >= 0 that descriptor rides along (SCM_RIGHTS). */
int
sg_zygote_send(int sock, enum ztype type, uint32_t id, const void *payload, int fd)
{
	struct zmsg m;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&m, 0, sizeof(m));
	m.h = (struct zhdr){(uint32_t)type, id, (uint32_t)sg_zygote_payload_size[type]};
	if (sg_zygote_payload_size[type] > 0)
		memcpy(&m.u, payload, sg_zygote_payload_size[type]);
	struct iovec iov = {&m, sizeof(m.h) + sg_zygote_payload_size[type]};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

/* Keeps the first descriptor received in *fd (when fd is given), closes the rest. */
static int
take_fds(struct msghdr *mh, int *fd)
{
	int n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++, n++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd != NULL && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return n;
}

/*
 * One message, checked before anything in it is used: nothing cut short,
 * a known type, its exact payload size both in the header and on the wire,
 * and a descriptor with SPAWNED and only with it (closed when fd is NULL).
 * Returns 1, 0 on EOF, RECV_NONE when nothing waits, or -1 with err.
 */
int
sg_zygote_recv(int sock, struct zmsg *m, int *fd, char *err, size_t errlen)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {m, sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl)};
	ssize_t n;
	if (fd != NULL)
		*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return RECV_NONE;
	if (n < 0)
		return sg_zygote_say(err, errlen, "control socket: %s", strerror(errno));
	int fds = take_fds(&mh, fd);
	if (n == 0 && fds == 0)
		return 0;
	uint32_t t = (size_t)n >= sizeof(m->h) ? m->h.type : 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		sg_zygote_say(err, errlen, "a control message was cut short");
	else if (t == 0 || t >= Z_NTYPES)
		sg_zygote_say(err, errlen, "a control message of %zd bytes has no known type", n);
	else if (m->h.len != sg_zygote_payload_size[t] ||
	         (size_t)n != sizeof(m->h) + sg_zygote_payload_size[t])
		sg_zygote_say(err, errlen, "control message type %u: %zd bytes, not %zu", t, n,
		              sizeof(m->h) + sg_zygote_payload_size[t]);
	else if ((t == Z_SPAWNED) != (fds == 1) || (fds > 0 && fd == NULL))
		sg_zygote_say(err, errlen, "control message type %u came with %d descriptors", t,
		              fds);
	else
		return 1;
	if (fd != NULL && *fd >= 0)
		close(*fd);
	return -1;
}
