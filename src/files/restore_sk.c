// SPDX-License-Identifier: MIT
/*
 * Restore of the shared objects that are not pipes: unix socketpairs (with
 * their queues), terminals (the restoring amber's own) and unlinked files.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "ghost-file.pb-c.h"
#include "image/image.h"
#include "base/log.h"
#include "restore/restore.h"
#include "base/util.h"

#define COPY_CHUNK (1u << 20)

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

static int usk_finish(struct rst_ctx *rc, struct rfile *rf, int fd)
{
	rf->svc_fd = files_move_high(fd, rc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

int files_prepare_usk(struct rst_ctx *rc, struct rfile *rf)
{
	struct files_rst *fr = rc->files;
	UnixSkEntry *u = rf->fe->usk;
	struct rfile *peer = NULL;
	int sv[2] = { -1, -1 }, ret;

	if (rf->svc_fd >= 0)
		return 0; /* made with its peer */
	if (u->peer)
		peer = files_usk_by_ino(fr, u->peer);
	if (!u->peer && u->state != 1 /* TCP_ESTABLISHED */) {
		/* Neither bound nor connected: a fresh socket is the same thing. */
		sv[0] = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
		if (sv[0] < 0)
			return -errno;
		set_opts(sv[0], u->opts);
		return usk_finish(rc, rf, sv[0]);
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
	ret = usk_finish(rc, rf, sv[0]);
	if (!ret && peer)
		ret = usk_finish(rc, peer, sv[1]);
	return ret;
}

/* A terminal is the restoring amber's own: a new description of it. */
int files_prepare_tty(struct rst_ctx *rc, struct rfile *rf)
{
	int flags = (rf->fe->tty->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY | O_CLOEXEC;
	int fd = -1;

	if (isatty(STDIN_FILENO)) {
		fd = open("/proc/self/fd/0", flags);
		if (fd < 0)
			fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, rc->svc_fd_base);
	} else {
		fd = open("/dev/tty", flags);
	}
	if (fd < 0) {
		pr_err("terminal file %u: amber has no terminal to give (stdin is not a tty, no /dev/tty): %s\n",
		       rf->fe->id, strerror(errno));
		return -ENOTTY;
	}
	rf->svc_fd = files_move_high(fd, rc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

/* Creates the file at its old path if free, else next to it, else in the image dir. */
static int create_ghost(struct rst_ctx *rc, struct rfile *rf, char *made, size_t len,
			bool *in_imgdir)
{
	const char *name = rf->fe->reg->name;
	const char *slash = strrchr(name, '/');
	int fl = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, fd;

	*in_imgdir = false;
	snprintf(made, len, "%s", name);
	fd = open(made, fl, 0600);
	if (fd >= 0)
		return fd;
	snprintf(made, len, "%.*s/.amber-ghost-%x-%d", (int)(slash - name), name, rf->fe->id,
		 getpid());
	fd = open(made, fl, 0600);
	if (fd >= 0)
		return fd;
	snprintf(made, len, ".amber-ghost-%x-%d", rf->fe->id, getpid());
	*in_imgdir = true;
	fd = openat(rc->dirfd, made, fl, 0600);
	if (fd < 0)
		pr_perror("can't recreate unlinked file %s", name);
	return fd < 0 ? -errno : fd;
}

static int copy_ghost(struct rst_ctx *rc, struct rfile *rf, int fd)
{
	struct img *img = img_open(rc->dirfd, IMG_GHOST_FILE, false, rf->fe->id);
	cleanup_free char *buf = malloc(COPY_CHUNK);
	ProtobufCMessage *m = NULL;
	uint64_t left = rf->ghost->size;
	int ret;

	if (!img || !buf) {
		img_close(img);
		return -ENOMEM;
	}
	ret = img_read_msg(img, &ghost_file_entry__descriptor, &m);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	ret = ret == 1 ? 0 : -EIO;
	while (!ret && left) {
		size_t n = min((uint64_t)COPY_CHUNK, left);

		ret = img_read_raw(img, buf, n);
		if (!ret)
			ret = write_full(fd, buf, n);
		left -= n;
	}
	img_close(img);
	return ret;
}

int files_prepare_ghost(struct rst_ctx *rc, struct rfile *rf)
{
	GhostFileEntry *g = rf->ghost;
	char made[PATH_MAX];
	bool in_imgdir;
	int fd = create_ghost(rc, rf, made, sizeof(made), &in_imgdir), ret;

	if (fd < 0)
		return fd;
	ret = copy_ghost(rc, rf, fd);
	if (!ret && fchmod(fd, g->mode & 07777))
		ret = -errno;
	if (!ret && fchown(fd, g->uid, g->gid))
		pr_warn("unlinked file %s: can't chown to %u:%u\n", rf->fe->reg->name, g->uid, g->gid);
	if (!ret && g->mtim) {
		struct timespec ts[2] = {
			{ g->atim ? g->atim->tv_sec : 0, g->atim ? g->atim->tv_usec * 1000 : UTIME_OMIT },
			{ g->mtim->tv_sec, g->mtim->tv_usec * 1000 },
		};

		futimens(fd, ts);
	}
	if (in_imgdir ? unlinkat(rc->dirfd, made, 0) : unlink(made))
		pr_warn("can't unlink %s: %s\n", made, strerror(errno));
	if (ret) {
		pr_err("can't recreate unlinked file %s: %s\n", rf->fe->reg->name, strerror(-ret));
		close(fd);
		return ret;
	}
	rf->ghost_fd = files_move_high(fd, rc->svc_fd_base);
	return rf->ghost_fd < 0 ? rf->ghost_fd : 0;
}
