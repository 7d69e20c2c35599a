// SPDX-License-Identifier: MIT
/*
 * Unix socket queues at dump: each packet (dgram, seqpacket) or chunk
 * (stream) is peeked in place with SO_PEEK_OFF + MSG_PEEK, so the task's
 * queue is left as it was, and written to sk-queues.img as an
 * sk_packet_entry followed by its bytes. The restore sends them again
 * (unix_rst.c). Files in flight (SCM_RIGHTS) are dumped as files and
 * named by id in the entry (CRIU's scm_entry); in a stream, the peek
 * stops after the chunk that carries them, so they go with that chunk.
 * With SO_PASSCRED each message's sender (SCM_CREDENTIALS) is saved as
 * CRIU's ucred; the sender must be a task of the tree.
 */
#define LOG_PREFIX "unix: "
#include <errno.h>
#include <stdio.h>
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
#define SCM_MAX_FD     253
#define OVERFLOW_ID    65534 /* the uid/gid a receiver sees for none */

/* The fds one peek received (SCM_RIGHTS), and their file ids once dumped. */
struct peeked_fds {
	int fds[SCM_MAX_FD];
	uint32_t ids[SCM_MAX_FD];
	int nr;
	bool has_cred; /* SCM_CREDENTIALS, when the socket has SO_PASSCRED */
	struct ucred cred;
};

static void close_peeked(struct peeked_fds *p)
{
	for (int i = 0; i < p->nr; i++)
		close(p->fds[i]);
	p->nr = 0;
}

static int write_packet(struct files_dump_ctx *fc, uint32_t id, const void *buf, size_t len,
			struct peeked_fds *p)
{
	SkPacketEntry pe = SK_PACKET_ENTRY__INIT;
	SkUcredEntry uc = SK_UCRED_ENTRY__INIT;
	ScmEntry scm = SCM_ENTRY__INIT, *scms[1] = { &scm };
	int ret = files_get_img(fc, &fc->st->sk_queues, IMG_SK_QUEUES);

	pe.id_for = id;
	pe.length = len;
	if (p->nr) {
		scm.type = SCM_RIGHTS;
		scm.n_rights = p->nr;
		scm.rights = p->ids;
		pe.n_scm = 1;
		pe.scm = scms;
	}
	if (p->has_cred) {
		uc.pid = fc->pids ? pid_map_ns(fc->pids, p->cred.pid) : p->cred.pid;
		uc.uid = p->cred.uid;
		uc.gid = p->cred.gid;
		pe.ucred = &uc;
	}
	if (!ret)
		ret = img_write_msg(fc->st->sk_queues, &pe.base);
	if (!ret)
		ret = img_write_raw(fc->st->sk_queues, buf, len);
	return ret;
}

/*
 * The files in flight are dumped like a task's (the same description in
 * a task and in flight is one file); amber keeps its copies open until
 * the dump ends, for kcmp to compare later fds with.
 */
/* Is @pid a task of the dumped tree (traced by amber), or a zombie child of one? */
static bool in_tree(pid_t pid)
{
	char path[64], line[128];
	pid_t tracer = -1, ppid = -1;
	bool zombie = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = pid > 0 ? fopen(path, "re") : NULL;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "TracerPid: %d", &tracer);
		sscanf(line, "PPid: %d", &ppid);
		if (!strncmp(line, "State:\tZ", 8))
			zombie = true;
	}
	fclose(f);
	if (tracer == getpid())
		return true;
	return zombie && ppid > 0 && ppid != pid && in_tree(ppid);
}

static int dump_peeked(struct files_dump_ctx *fc, const struct fd_desc *d, struct peeked_fds *p)
{
	struct files_dump *st = fc->st;

	/* Sent before anyone asked for credentials: none were attached. */
	if (p->has_cred && !p->cred.pid && p->cred.uid == OVERFLOW_ID && p->cred.gid == OVERFLOW_ID)
		p->has_cred = false;
	/* The sender's pid must exist again at restore: one of the tree. */
	if (p->has_cred && !in_tree(p->cred.pid)) {
		pr_err("fd %d of pid %d: unix socket: a queued message's sender (SCM_CREDENTIALS pid %d) is not a task of the dumped tree (outside it, or exited): not supported\n",
		       d->fd, d->pid, p->cred.pid);
		return -ENOTSUP;
	}

	for (int i = 0; i < p->nr; i++) {
		int *n = xrealloc_array(st->inflight_fds, st->nr_inflight_fds + 1, sizeof(*n));
		int ret;

		if (!n)
			return -ENOMEM;
		st->inflight_fds = n;
		ret = st->dump_own_fd(fc, p->fds[i], &p->ids[i]);
		if (ret) {
			pr_err("fd %d of pid %d: a file in flight in its unix socket queue can't be dumped\n",
			       d->fd, d->pid);
			return ret;
		}
		n[st->nr_inflight_fds++] = p->fds[i];
		p->fds[i] = -1;
	}
	return 0;
}

/* Peeks one packet (dgram) or chunk (stream) at @off; 0 at the end of the queue. */
static ssize_t peek_at(int sk, const struct fd_desc *d, int off, void *buf, size_t len,
		       struct peeked_fds *p)
{
	char cbuf[CMSG_SPACE(SCM_MAX_FD * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	p->nr = 0;
	p->has_cred = false;
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	n = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			memcpy(&p->cred, CMSG_DATA(c), sizeof(p->cred));
			p->has_cred = true;
		}
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (int *f = (int *)CMSG_DATA(c); (char *)f < (char *)c + c->cmsg_len; f++)
			if (p->nr < SCM_MAX_FD)
				p->fds[p->nr++] = *f;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		close_peeked(p);
		pr_err("fd %d of pid %d: unix socket: a queued message's control data is truncated\n",
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
	cleanup_free struct peeked_fds *p = malloc(sizeof(*p));

	if (!buf || !p)
		return -ENOMEM;
	getsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &orig, &ol);
	for (;;) {
		ssize_t n = peek_at(sk, d, off, buf, len, p);

		if (n <= 0) {
			ret = n;
			break;
		}
		if (type != SOCK_STREAM && (size_t)n > len) {
			/* A datagram larger than the buffer: grow and peek it again. */
			uint8_t *nb = n <= PEEK_BUF_MAX ? realloc(buf, n) : NULL;

			close_peeked(p);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
			len = n;
			continue;
		}
		n = min((size_t)n, len);
		ret = dump_peeked(fc, d, p);
		if (!ret)
			ret = write_packet(fc, id, buf, n, p);
		close_peeked(p);
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

