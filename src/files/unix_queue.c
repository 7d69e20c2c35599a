// SPDX-License-Identifier: MIT
/*
 * Unix socket queues at dump: each packet (dgram, seqpacket) or chunk
 * (stream) is peeked in place with SO_PEEK_OFF + MSG_PEEK, so the task's
 * queue is left as it was, and written to sk-queues.img as an
 * sk_packet_entry followed by its bytes. The restore sends them again
 * (unix_rst.c). A queue carrying fds (SCM_RIGHTS) is refused.
 */
#define LOG_PREFIX "unix: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "files/unix.h"
#include "image/image.h"
#include "sk-packet.pb-c.h"

#define PEEK_BUF_START (256u << 10)
#define PEEK_BUF_MAX   (64u << 20)

static int write_packet(struct files_dump_ctx *fc, uint32_t id, const void *buf, size_t len)
{
	SkPacketEntry pe = SK_PACKET_ENTRY__INIT;
	int ret = files_get_img(fc, &fc->st->sk_queues, IMG_SK_QUEUES);

	pe.id_for = id;
	pe.length = len;
	if (!ret)
		ret = img_write_msg(fc->st->sk_queues, &pe.base);
	if (!ret)
		ret = img_write_raw(fc->st->sk_queues, buf, len);
	return ret;
}

/* Peeks one packet (dgram) or chunk (stream) at @off; 0 at the end of the queue. */
static ssize_t peek_at(int sk, const struct fd_desc *d, int off, void *buf, size_t len)
{
	char cbuf[CMSG_SPACE(64 * sizeof(int))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (int *p = (int *)CMSG_DATA(c); (char *)p < (char *)c + c->cmsg_len; p++)
			close(*p);
		mh.msg_flags |= MSG_CTRUNC;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		pr_err("fd %d of pid %d: unix socket has fds in flight (SCM_RIGHTS): not supported yet\n",
		       d->fd, d->pid);
		return -ENOTSUP;
	}
	return n;
}

int unix_dump_queue(struct files_dump_ctx *fc, int sk, const struct fd_desc *d, uint32_t type,
		      uint32_t id)
{
	int orig = -1, off = 0, ret = 0;
	socklen_t ol = sizeof(orig);
	size_t len = PEEK_BUF_START;
	cleanup_free uint8_t *buf = malloc(len);

	if (!buf)
		return -ENOMEM;
	getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &ol);
	for (;;) {
		ssize_t n = peek_at(sk, d, off, buf, len);

		if (n <= 0) {
			ret = n;
			break;
		}
		if (type != SOCK_STREAM && (size_t)n > len) {
			/* A datagram larger than the buffer: grow and peek it again. */
			uint8_t *nb = n <= PEEK_BUF_MAX ? realloc(buf, n) : NULL;

			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
			len = n;
			continue;
		}
		n = min((size_t)n, len);
		ret = write_packet(fc, id, buf, n);
		if (ret)
			break;
		off += n;
	}
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig)))
		pr_warn("fd %d of pid %d: can't reset SO_PEEK_OFF\n", d->fd, d->pid);
	if (ret && ret != -ENOTSUP)
		pr_err("fd %d of pid %d: can't peek the socket queue: %s\n", d->fd, d->pid,
		       strerror(-ret));
	return ret;
}

