// SPDX-License-Identifier: MIT
/*
 * Dump of unix sockets (unnamed: socketpairs, half-closed socketpairs and
 * unconnected sockets; state from sock_diag, queues peeked with
 * SO_PEEK_OFF + MSG_PEEK) and of terminals (--shell-job only).
 */
#define LOG_PREFIX "files: "
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "dump/dump.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "base/log.h"
#include "sk-packet.pb-c.h"
#include "sk-unix.pb-c.h"
#include "tty.pb-c.h"
#include "base/util.h"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define PEEK_BUF_START (256u << 10)
#define PEEK_BUF_MAX   (64u << 20)

struct usk_diag {
	uint32_t type, state, peer, shutdown;
	bool named;
};

static int getfd(const struct fd_desc *d)
{
	int fd = syscall(SYS_pidfd_getfd, d->pidfd, d->fd, 0);

	if (fd < 0)
		pr_perror("pidfd_getfd(pid %d, fd %d)", d->pid, d->fd);
	return fd < 0 ? -errno : fd;
}

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

static int write_packet(struct dump_ctx *dc, uint32_t id, const void *buf, size_t len)
{
	SkPacketEntry pe = SK_PACKET_ENTRY__INIT;
	int ret = files_get_img(dc, &dc->files->sk_queues, IMG_SK_QUEUES);

	pe.id_for = id;
	pe.length = len;
	if (!ret)
		ret = img_write_msg(dc->files->sk_queues, &pe.base);
	if (!ret)
		ret = img_write_raw(dc->files->sk_queues, buf, len);
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

static int dump_queue(struct dump_ctx *dc, int sk, const struct fd_desc *d, uint32_t type,
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
		ret = write_packet(dc, id, buf, n);
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

static int remember_usk(struct dump_ctx *dc, const struct fd_desc *d, uint32_t id,
			const struct usk_diag *u)
{
	struct files_dump *fd = dc->files;
	struct dumped_usk *n = xrealloc_array(fd->usks, fd->nr_usks + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	fd->usks = n;
	n[fd->nr_usks++] = (struct dumped_usk){ .id = id, .ino = d->st.st_ino, .peer = u->peer,
						 .state = u->state, .pid = d->pid, .fd = d->fd,
						 .named = u->named };
	return 0;
}

int files_dump_socket(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id)
{
	UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
	SkOptsEntry opts = SK_OPTS_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct usk_diag u = {};
	cleanup_close int sk = getfd(d);
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
	*id = dump_new_id(dc);
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
	ret = dump_queue(dc, sk, d, u.type, *id);
	if (!ret)
		ret = remember_usk(dc, d, *id, &u);
	if (!ret)
		ret = files_write_entry(dc, &fe);
	pr_debug("unix socket %u: type %u state %u peer %u\n", ue.ino, ue.type, ue.state, ue.peer);
	return ret;
}

int files_check_usk_peers(struct dump_ctx *dc)
{
	struct files_dump *fd = dc->files;

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

/* ---- terminals ---- */

bool files_is_tty(dev_t rdev)
{
	unsigned int ma = major(rdev);

	return ma == 4 || ma == 5 || (ma >= 136 && ma <= 143);
}

static TtyType tty_type(dev_t rdev)
{
	unsigned int ma = major(rdev), mi = minor(rdev);

	if (ma >= 136 && ma <= 143)
		return TTY_TYPE__PTY;
	if (ma == 4)
		return mi < 64 ? TTY_TYPE__VT : TTY_TYPE__SERIAL;
	return mi == 0 ? TTY_TYPE__CTTY : TTY_TYPE__CONSOLE;
}

static int dump_tty_info(struct dump_ctx *dc, const struct fd_desc *d, uint32_t info_id)
{
	TtyInfoEntry ti = TTY_INFO_ENTRY__INIT;
	TermiosEntry te = TERMIOS_ENTRY__INIT;
	WinsizeEntry we = WINSIZE_ENTRY__INIT;
	TtyPtyEntry pty = TTY_PTY_ENTRY__INIT;
	uint32_t cc[NCCS];
	struct termios t;
	struct winsize ws;
	cleanup_close int fd = getfd(d);
	int ret = files_get_img(dc, &dc->files->tty_info, IMG_TTY_INFO);

	if (ret)
		return ret;
	ti.id = info_id;
	ti.type = tty_type(d->st.st_rdev);
	ti.sid = getsid(d->pid);
	ti.pgrp = getpgid(d->pid);
	ti.rdev = d->st.st_rdev;
	ti.has_dev = ti.has_uid = ti.has_gid = true;
	ti.dev = d->st.st_dev;
	ti.uid = d->st.st_uid;
	ti.gid = d->st.st_gid;
	if (ti.type == TTY_TYPE__PTY) {
		pty.index = minor(d->st.st_rdev) + (major(d->st.st_rdev) - 136) * 256;
		ti.pty = &pty;
	}
	if (fd >= 0 && !tcgetattr(fd, &t)) {
		te.c_iflag = t.c_iflag;
		te.c_oflag = t.c_oflag;
		te.c_cflag = t.c_cflag;
		te.c_lflag = t.c_lflag;
		te.c_line = t.c_line;
		te.c_ispeed = cfgetispeed(&t);
		te.c_ospeed = cfgetospeed(&t);
		for (int i = 0; i < NCCS; i++)
			cc[i] = t.c_cc[i];
		te.n_c_cc = NCCS;
		te.c_cc = cc;
		ti.termios = &te;
	}
	if (fd >= 0 && !ioctl(fd, TIOCGWINSZ, &ws)) {
		we.ws_row = ws.ws_row;
		we.ws_col = ws.ws_col;
		we.ws_xpixel = ws.ws_xpixel;
		we.ws_ypixel = ws.ws_ypixel;
		ti.winsize = &we;
	}
	return img_write_msg(dc->files->tty_info, &ti.base);
}

int files_dump_tty(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = dc->files;
	TtyFileEntry tf = TTY_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	uint32_t info_id = 0;
	int ret;

	if (major(d->st.st_rdev) == 5 && minor(d->st.st_rdev) == 2) {
		pr_err("fd %d of pid %d: pty master %s is not supported yet\n", d->fd, d->pid,
		       d->link);
		return -ENOTSUP;
	}
	if (!dc->opts || !dc->opts->shell_job) {
		pr_err("fd %d of pid %d is the terminal %s: pass --shell-job to dump a process attached to a terminal\n",
		       d->fd, d->pid, d->link);
		return -ENOTSUP;
	}
	for (int i = 0; i < fd->nr_ttys && !info_id; i++)
		if (fd->ttys[i].rdev == d->st.st_rdev)
			info_id = fd->ttys[i].info_id;
	if (!info_id) {
		struct dumped_tty *n = xrealloc_array(fd->ttys, fd->nr_ttys + 1, sizeof(*n));

		if (!n)
			return -ENOMEM;
		fd->ttys = n;
		info_id = dump_new_id(dc);
		ret = dump_tty_info(dc, d, info_id);
		if (ret)
			return ret;
		n[fd->nr_ttys++] = (struct dumped_tty){ .rdev = d->st.st_rdev, .info_id = info_id };
	}
	*id = dump_new_id(dc);
	tf.id = *id;
	tf.tty_info_id = info_id;
	tf.flags = d->flags;
	tf.fown = &fown;
	fe.type = FD_TYPES__TTY;
	fe.id = *id;
	fe.tty = &tf;
	return files_write_entry(dc, &fe);
}
