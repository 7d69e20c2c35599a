// SPDX-License-Identifier: MIT
/*
 * Unix sockets: unnamed ones (socketpairs, half-closed socketpairs and
 * unconnected sockets). Dump: state from sock_diag, queues peeked with
 * SO_PEEK_OFF + MSG_PEEK into sk-queues.img; a socket whose peer is
 * outside the tree is refused once every task is dumped. Restore: a
 * socketpair per connected pair, made before fork, each queue sent again
 * through the other end, shutdown applied last.
 *
 * This type matches AF_UNIX sockets only (fd_desc.family); the check of
 * SO_DOMAIN in dump() stays as a guard.
 */
#define LOG_PREFIX "unix: "
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "sk-packet.pb-c.h"
#include "sk-unix.pb-c.h"

#define PEEK_BUF_START (256u << 10)
#define PEEK_BUF_MAX   (64u << 20)

/* ---- dump ---- */

struct usk_diag {
	uint32_t type, state, peer, shutdown;
	bool named;
};

static int parse_diag(struct nlmsghdr *h, struct usk_diag *u)
{
	struct unix_diag_msg *m = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	struct nlattr *a = (struct nlattr *)(m + 1);

	u->type = m->udiag_type;
	u->state = m->udiag_state;
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len) {
		void *data = (char *)a + NLA_HDRLEN;

		if (a->nla_type == UNIX_DIAG_NAME)
			u->named = true;
		else if (a->nla_type == UNIX_DIAG_PEER)
			memcpy(&u->peer, data, sizeof(u->peer));
		else if (a->nla_type == UNIX_DIAG_SHUTDOWN)
			u->shutdown = *(uint8_t *)data;
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return 0;
}

/* Asks sock_diag about the unix socket with inode @ino. */
static int usk_diag(uint32_t ino, struct usk_diag *u)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = -1, .udiag_ino = ino,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER,
		       .udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	long buf[2048];
	cleanup_close int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	ssize_t n;

	if (nl < 0 || send(nl, &req, sizeof(req), 0) != sizeof(req)) {
		pr_perror("sock_diag");
		return -errno;
	}
	n = recv(nl, buf, sizeof(buf), 0);
	for (struct nlmsghdr *h = (void *)buf; n > 0 && NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);

			pr_err("sock_diag of unix socket %u: %s\n", ino, strerror(-e->error));
			return e->error ? e->error : -EIO;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
			return parse_diag(h, u);
	}
	pr_err("sock_diag: no answer for unix socket %u\n", ino);
	return -EIO;
}

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

static int dump_queue(struct files_dump_ctx *fc, int sk, const struct fd_desc *d, uint32_t type,
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
	if (ret == -EOPNOTSUPP || ret == -ENOPROTOOPT)
		pr_err("fd %d of pid %d: can't peek the socket queue\n", d->fd, d->pid);
	return ret;
}

static const char *family_name(int family)
{
	switch (family) {
	case AF_INET: return "inet socket";
	case AF_INET6: return "inet6 socket";
	case AF_NETLINK: return "netlink socket";
	case AF_PACKET: return "packet socket";
	default: return "socket";
	}
}

static int check_usk(const struct fd_desc *d, const struct usk_diag *u)
{
	const char *why = NULL;

	if (u->named)
		why = "bound (named) unix socket";
	else if (u->state == TCP_LISTEN)
		why = "listening unix socket";
	else if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		why = "unix socket of this type";
	else if (u->state != TCP_ESTABLISHED && u->state != TCP_CLOSE)
		why = "unix socket in this state";
	if (!why)
		return 0;
	pr_err("fd %d of pid %d: %s is not supported yet\n", d->fd, d->pid, why);
	return -ENOTSUP;
}

static void fill_opts(int sk, SkOptsEntry *o)
{
	struct timeval tv;
	socklen_t l;
	int v;

	l = sizeof(v);
	if (!getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &v, &l))
		o->so_sndbuf = v;
	l = sizeof(v);
	if (!getsockopt(sk, SOL_SOCKET, SO_RCVBUF, &v, &l))
		o->so_rcvbuf = v;
	l = sizeof(tv);
	if (!getsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, &l)) {
		o->so_snd_tmo_sec = tv.tv_sec;
		o->so_snd_tmo_usec = tv.tv_usec;
	}
	l = sizeof(tv);
	if (!getsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, &l)) {
		o->so_rcv_tmo_sec = tv.tv_sec;
		o->so_rcv_tmo_usec = tv.tv_usec;
	}
}

static int remember_usk(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t id,
			const struct usk_diag *u)
{
	struct files_dump *fd = fc->st;
	struct dumped_usk *n = xrealloc_array(fd->usks, fd->nr_usks + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	fd->usks = n;
	n[fd->nr_usks++] = (struct dumped_usk){ .id = id, .ino = d->st.st_ino, .peer = u->peer,
						 .state = u->state, .pid = d->pid, .fd = d->fd,
						 .named = u->named };
	return 0;
}

static int unix_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
	SkOptsEntry opts = SK_OPTS_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct usk_diag u = {};
	cleanup_close int sk = files_getfd(d);
	int family = 0, ret;
	socklen_t l = sizeof(family);

	if (sk < 0)
		return sk;
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &family, &l))
		return -errno;
	if (family != AF_UNIX) {
		pr_err("fd %d of pid %d: %s (family %d) is not supported yet\n", d->fd, d->pid,
		       family_name(family), family);
		return -ENOTSUP;
	}
	ret = usk_diag(d->st.st_ino, &u);
	if (!ret)
		ret = check_usk(d, &u);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	fill_opts(sk, &opts);
	ue.id = *id;
	ue.ino = d->st.st_ino;
	ue.type = u.type;
	ue.state = u.state;
	ue.flags = d->flags;
	ue.peer = u.peer;
	ue.fown = &fown;
	ue.opts = &opts;
	ue.has_shutdown = u.shutdown != 0;
	ue.shutdown = u.shutdown & 3;
	fe.type = FD_TYPES__UNIXSK;
	fe.id = *id;
	fe.usk = &ue;
	ret = dump_queue(fc, sk, d, u.type, *id);
	if (!ret)
		ret = remember_usk(fc, d, *id, &u);
	if (!ret)
		ret = files_write_entry(fc, &fe);
	pr_debug("unix socket %u: type %u state %u peer %u\n", ue.ino, ue.type, ue.state, ue.peer);
	return ret;
}

/* Every socket's peer must be in the tree: run after the last task. */
static int check_peers(struct files_dump_ctx *fc)
{
	struct files_dump *fd = fc->st;

	for (int i = 0; i < fd->nr_usks; i++) {
		struct dumped_usk *s = &fd->usks[i];
		bool found = false;

		if (!s->peer)
			continue;
		for (int j = 0; j < fd->nr_usks && !found; j++)
			found = fd->usks[j].ino == s->peer;
		if (!found) {
			pr_err("fd %d of pid %d: unix socket %u is connected to socket %u outside the dumped tree: not supported yet\n",
			       s->fd, s->pid, s->ino, s->peer);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int unix_dump_fini(struct files_dump_ctx *fc)
{
	int ret = check_peers(fc), r = img_close(fc->st->sk_queues);

	fc->st->sk_queues = NULL;
	return ret ? ret : r;
}

static bool unix_match(const struct fd_desc *d)
{
	return S_ISSOCK(d->st.st_mode) && d->family == AF_UNIX;
}

static void unix_dump_free(struct files_dump_ctx *fc)
{
	img_close(fc->st->sk_queues);
	free(fc->st->usks);
}

/* ---- restore: load ---- */

static int unix_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	return files_check_sub(fe, fe->usk, fe->usk ? fe->usk->id : 0);
}

static struct rfile *usk_by_ino(struct files_rst *fr, uint32_t ino)
{
	for (int i = 0; i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__UNIXSK && fe->usk->ino == ino)
			return &fr->files[i];
	}
	return NULL;
}

static int check_pair(struct files_rst *fr, UnixSkEntry *u)
{
	struct rfile *peer = u->peer ? usk_by_ino(fr, u->peer) : NULL;

	if (u->peer && (!peer || peer->fe->usk->peer != u->ino)) {
		pr_err("files.img: unix socket %u has peer %u, which is not its socketpair twin\n",
		       u->ino, u->peer);
		return -EINVAL;
	}
	if (u->name.len || (u->type != SOCK_STREAM && u->type != SOCK_DGRAM &&
			    u->type != SOCK_SEQPACKET)) {
		pr_err("files.img: unix socket %u is named or of type %u: can't restore it\n",
		       u->ino, u->type);
		return -EINVAL;
	}
	return 0;
}

static int unix_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = files_load_data(fc, IMG_SK_QUEUES, &fr->skq, &fr->nr_skq);

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__UNIXSK && check_pair(fr, fe->usk))
			return -EINVAL;
	}
	for (int i = 0; !ret && i < fr->nr_skq; i++) {
		struct rfile *rf = files_rfile(fr, fr->skq[i].id);

		if (!rf || rf->fe->type != FD_TYPES__UNIXSK ||
		    (!rf->fe->usk->peer && rf->fe->usk->state != 1 /* TCP_ESTABLISHED */)) {
			pr_err("sk-queues.img: packet for %u, which is not a connected unix socket\n",
			       fr->skq[i].id);
			return -EINVAL;
		}
	}
	return ret;
}

/* ---- restore: before fork ---- */

static void set_opts(int sk, SkOptsEntry *o)
{
	struct timeval snd = { o->so_snd_tmo_sec, o->so_snd_tmo_usec };
	struct timeval rcv = { o->so_rcv_tmo_sec, o->so_rcv_tmo_usec };
	/* The kernel doubles what it is given; the image has the doubled value. */
	int sndbuf = o->so_sndbuf / 2, rcvbuf = o->so_rcvbuf / 2;

	if (sndbuf && setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(sk, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (rcvbuf && setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(sk, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
}

/* Sends, through @via, the packets queued for @rf so they land in its queue. */
static int fill_queue(struct files_rst *fr, struct rfile *rf, int via)
{
	for (int i = 0; i < fr->nr_skq; i++) {
		struct rdata *d = &fr->skq[i];
		ssize_t n;

		if (d->id != rf->fe->id)
			continue;
		n = send(via, d->data, d->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n != (ssize_t)d->len) {
			pr_err("unix socket %u: can't queue %u bytes again: %s\n", rf->fe->usk->ino,
			       d->len, n < 0 ? strerror(errno) : "short send");
			return n < 0 ? -errno : -EIO;
		}
	}
	return 0;
}

static int set_shutdown(int sk, UnixSkEntry *u)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };

	if (!u->has_shutdown || !u->shutdown)
		return 0;
	if (shutdown(sk, how[u->shutdown & 3])) {
		pr_perror("unix socket %u: shutdown", u->ino);
		return -errno;
	}
	return 0;
}

static int usk_finish(struct files_rst_ctx *fc, struct rfile *rf, int fd)
{
	rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

static int prepare_usk(struct files_rst_ctx *fc, struct rfile *rf)
{
	struct files_rst *fr = fc->st;
	UnixSkEntry *u = rf->fe->usk;
	struct rfile *peer = NULL;
	int sv[2] = { -1, -1 }, ret;

	if (rf->svc_fd >= 0)
		return 0; /* made with its peer */
	if (u->peer)
		peer = usk_by_ino(fr, u->peer);
	if (!u->peer && u->state != 1 /* TCP_ESTABLISHED */) {
		/* Neither bound nor connected: a fresh socket is the same thing. */
		sv[0] = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
		if (sv[0] < 0)
			return -errno;
		set_opts(sv[0], u->opts);
		return usk_finish(fc, rf, sv[0]);
	}
	if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv)) {
		pr_perror("socketpair for unix socket %u", u->ino);
		return -errno;
	}
	set_opts(sv[0], u->opts);
	if (peer)
		set_opts(sv[1], peer->fe->usk->opts);
	ret = fill_queue(fr, rf, sv[1]);
	if (!ret && peer)
		ret = fill_queue(fr, peer, sv[0]);
	if (!ret)
		ret = set_shutdown(sv[0], u);
	if (!ret && peer)
		ret = set_shutdown(sv[1], peer->fe->usk);
	if (!peer)
		close(steal_fd(sv[1])); /* the peer was closed before the dump */
	if (ret) {
		close(sv[0]);
		if (sv[1] >= 0)
			close(sv[1]);
		return ret;
	}
	ret = usk_finish(fc, rf, sv[0]);
	if (!ret && peer)
		ret = usk_finish(fc, peer, sv[1]);
	return ret;
}

static int unix_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++)
		if (fr->files[i].fe->type == FD_TYPES__UNIXSK)
			ret = prepare_usk(fc, &fr->files[i]);
	return ret;
}

static uint32_t unix_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->usk->flags;
}

static void unix_rst_free(struct files_rst_ctx *fc)
{
	files_free_data(fc->st->skq, fc->st->nr_skq);
}

const struct files_type files_unix_type = {
	.type = FD_TYPES__UNIXSK,
	.name = "unix socket",
	.match = unix_match,
	.dump = unix_dump,
	.dump_fini = unix_dump_fini,
	.dump_free = unix_dump_free,
	.check = unix_check,
	.load = unix_load,
	.prepare = unix_prepare,
	.flags = unix_flags,
	.rst_free = unix_rst_free,
};
