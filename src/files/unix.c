// SPDX-License-Identifier: MIT
/*
 * Unix sockets, the dump (load checks: unix_load.c; restore: unix_rst.c;
 * the model is in unix.h). Dump: state from sock_diag (name, peer,
 * shutdown, pending connections, backlog); a path name is checked against
 * the socket's inode to tell a live name from one unlinked since; queues
 * are peeked into sk-queues.img (unix_queue.c). A client
 * whose connection is queued on a listener, not yet accepted, gets the
 * listener as its peer. A socket whose peer is outside the tree is
 * refused once every task is dumped.
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
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sock_diag.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "files/unix.h"
#include "image/image.h"
#include "sk-packet.pb-c.h"
#include "sk-unix.pb-c.h"

#define DIAG_SHOW      (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | \
			UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN)

/* ---- dump ---- */

struct usk_diag {
	uint32_t ino, type, state, peer, shutdown, backlog, vfs_ino, vfs_dev;
	bool has_vfs;
	int namelen;
	char name[USK_NAME_MAX + 1];
	uint32_t *icons; /* inodes of the clients queued on a listener */
	int nr_icons;
};

static void parse_attr(struct usk_diag *u, struct nlattr *a)
{
	void *data = (char *)a + NLA_HDRLEN;
	int len = a->nla_len - NLA_HDRLEN;

	switch (a->nla_type) {
	case UNIX_DIAG_NAME:
		u->namelen = min(len, USK_NAME_MAX);
		memcpy(u->name, data, u->namelen);
		break;
	case UNIX_DIAG_VFS:
		if (len >= (int)sizeof(struct unix_diag_vfs)) {
			u->vfs_ino = ((struct unix_diag_vfs *)data)->udiag_vfs_ino;
			u->vfs_dev = ((struct unix_diag_vfs *)data)->udiag_vfs_dev;
			u->has_vfs = true;
		}
		break;
	case UNIX_DIAG_PEER:
		memcpy(&u->peer, data, sizeof(u->peer));
		break;
	case UNIX_DIAG_SHUTDOWN:
		u->shutdown = *(uint8_t *)data;
		break;
	case UNIX_DIAG_RQLEN:
		u->backlog = ((struct unix_diag_rqlen *)data)->udiag_wqueue;
		break;
	case UNIX_DIAG_ICONS:
		u->icons = malloc(len ? len : 1);
		if (u->icons) {
			memcpy(u->icons, data, len);
			u->nr_icons = len / sizeof(uint32_t);
		}
		break;
	}
}

static void parse_diag(struct nlmsghdr *h, struct usk_diag *u)
{
	struct unix_diag_msg *m = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	struct nlattr *a = (struct nlattr *)(m + 1);

	*u = (struct usk_diag){ .ino = m->udiag_ino, .type = m->udiag_type,
				.state = m->udiag_state };
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len) {
		parse_attr(u, a);
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
}

struct usk_walk {
	uint32_t ino;
	int (*each)(struct usk_diag *u, void *arg);
	void *arg;
};

static int usk_each(const struct nlmsghdr *h, void *arg)
{
	struct usk_walk *w = arg;
	struct usk_diag u;
	int r;

	parse_diag((struct nlmsghdr *)h, &u);
	r = w->each(&u, w->arg);
	free(u.icons);
	return r;
}

/*
 * Asks sock_diag about unix socket @ino, or (@ino 0) walks every one in
 * @states, calling @each until it returns non-zero. Returns 0, 1 (@each
 * stopped the walk) or -errno.
 */
static int usk_query(struct files_dump_ctx *fc, uint32_t ino, uint32_t states,
		     int (*each)(struct usk_diag *u, void *arg), void *arg)
{
	struct unix_diag_req req = {
		.sdiag_family = AF_UNIX, .udiag_ino = ino, .udiag_show = DIAG_SHOW,
		.udiag_states = ino ? -1u : states,
		.udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
	};
	struct usk_walk w = { .ino = ino, .each = each, .arg = arg };
	int ret = sock_diag_request(&fc->st->diag, &req, sizeof(req), !ino, usk_each, &w);

	if (ret < 0)
		pr_err("sock_diag of unix socket %u: %s\n", ino, strerror(-ret));
	return ret;
}

/*
 * Every unix socket's record, from one sock_diag dump made at the first
 * question, once the tree is frozen: a lookup by inode walks the kernel's
 * whole table of unix sockets, so one per socket made the dump quadratic
 * in the sockets. by_icon maps a client queued on a listener (not yet
 * accepted) to that listener.
 */
struct usk_snapshot {
	struct usk_diag *v;
	int nr, cap;
	struct idx_map by_ino, by_icon; /* into v[] */
};

static int snap_add(struct usk_diag *u, void *arg)
{
	struct usk_snapshot *s = arg;

	if (array_make_room(s->v, s->nr, s->cap, 256))
		return -ENOMEM;
	if (idx_map_put(&s->by_ino, u->ino, s->nr))
		return -ENOMEM;
	for (int i = 0; i < u->nr_icons; i++)
		if (idx_map_put(&s->by_icon, u->icons[i], s->nr))
			return -ENOMEM;
	s->v[s->nr++] = *u;
	u->icons = NULL; /* now the snapshot's */
	return 0;
}

static void snap_free(struct usk_snapshot *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nr; i++)
		free(s->v[i].icons);
	free(s->v);
	idx_map_free(&s->by_ino);
	idx_map_free(&s->by_icon);
	free(s);
}

static int usk_snapshot(struct files_dump_ctx *fc, struct usk_snapshot **sp)
{
	struct usk_snapshot *s = fc->st->usk_snap;
	int ret;

	if (!s) {
		s = xzalloc(sizeof(*s));
		if (!s)
			return -ENOMEM;
		ret = usk_query(fc, 0, -1u, snap_add, s);
		if (ret) {
			snap_free(s);
			return ret < 0 ? ret : -ENOMEM;
		}
		pr_debug("sock_diag: %d unix sockets\n", s->nr);
		fc->st->usk_snap = s;
	}
	*sp = s;
	return 0;
}

static int copy_one(struct usk_diag *u, void *arg)
{
	struct usk_diag *out = arg;

	*out = *u;
	u->icons = NULL; /* now out's */
	return 0;
}

/*
 * The record of unix socket @ino, without its icons (find_listener()'s).
 * One the snapshot lacks (made since) is asked for alone.
 */
static int usk_diag(struct files_dump_ctx *fc, uint32_t ino, struct usk_diag *u)
{
	struct usk_snapshot *s;
	int ret = usk_snapshot(fc, &s), i;

	if (ret)
		return ret;
	i = idx_map_get(&s->by_ino, ino);
	if (i >= 0) {
		*u = s->v[i];
		u->icons = NULL;
		u->nr_icons = 0;
		return 0;
	}
	u->ino = 0;
	ret = usk_query(fc, ino, 0, copy_one, u);
	if (!ret && u->ino != ino) {
		pr_err("sock_diag: no answer for unix socket %u\n", ino);
		return -EIO;
	}
	return ret;
}

/* The listener on which client @ino waits to be accepted, or 0. */
static int find_listener(struct files_dump_ctx *fc, uint32_t ino, uint32_t *listener)
{
	struct usk_snapshot *s;
	int ret = usk_snapshot(fc, &s), i;

	*listener = 0;
	if (ret)
		return ret;
	i = idx_map_get(&s->by_icon, ino);
	if (i >= 0)
		*listener = s->v[i].ino;
	return 0;
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

static int refuse(const struct fd_desc *d, const char *why)
{
	pr_err("fd %d of pid %d: unix socket: %s: not supported\n", d->fd, d->pid, why);
	return -ENOTSUP;
}

static int check_usk(const struct fd_desc *d, const struct usk_diag *u)
{
	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		return refuse(d, "a socket of this type");
	if (u->state != USK_TCP_ESTABLISHED && u->state != USK_TCP_CLOSE &&
	    u->state != USK_TCP_LISTEN)
		return refuse(d, "a socket in this state");
	if (u->namelen && u->name[0] && !u->has_vfs)
		return refuse(d, "bound to a path sock_diag shows no inode for");
	return 0;
}

/*
 * A path name: saved as bound; relative ones with the task's cwd as
 * name_dir. deleted when the path no longer leads to the socket's inode.
 */
static int resolve_name(const struct fd_desc *d, const struct usk_diag *u, UnixSkEntry *ue,
			FilePermsEntry *perms, char *dir, size_t dirlen)
{
	char path[PATH_MAX + USK_NAME_MAX + 32];
	struct stat st;
	ssize_t n;

	ue->name.len = u->namelen;
	ue->name.data = (uint8_t *)u->name;
	if (!u->namelen || !u->name[0])
		return 0; /* unnamed or abstract */
	if (u->name[0] != '/') {
		snprintf(path, sizeof(path), "/proc/%d/cwd", d->pid);
		n = readlink(path, dir, dirlen - 1);
		if (n < 0)
			return -errno;
		dir[n] = '\0';
		ue->name_dir = dir;
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", d->pid, u->name);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/root%s", d->pid, u->name);
	}
	ue->has_deleted = true;
	ue->deleted = stat(path, &st) || st.st_ino != u->vfs_ino ||
		      major(st.st_dev) != (u->vfs_dev >> 20) ||
		      minor(st.st_dev) != (u->vfs_dev & 0xfffff);
	if (!ue->deleted) {
		perms->mode = st.st_mode;
		perms->uid = st.st_uid;
		perms->gid = st.st_gid;
		ue->file_perms = perms;
	}
	return 0;
}

static int remember_usk(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t id,
			const struct usk_diag *u)
{
	struct files_dump *fd = fc->st;

	if (array_make_room(fd->usks, fd->nr_usks, fd->cap_usks, 64))
		return -ENOMEM;
	if (idx_map_put(&fd->usk_index, d->st.st_ino, fd->nr_usks))
		return -ENOMEM;
	fd->usks[fd->nr_usks++] = (struct dumped_usk){
		.id = id, .ino = d->st.st_ino, .peer = u->peer, .state = u->state,
		.pid = d->pid, .fd = d->fd, .named = u->namelen > 0 };
	return 0;
}

/* The socket of inode @ino dumped so far, or NULL. */
static struct dumped_usk *dumped_usk(struct files_dump *fd, uint32_t ino)
{
	int i = idx_map_get(&fd->usk_index, ino);

	return i < 0 ? NULL : &fd->usks[i];
}

/*
 * A connected stream client without a peer: queued on a listener (the
 * listener becomes its peer), or half-closed. Data it sent before being
 * accepted sits in a socket no fd reaches: refused.
 */
static int fix_queued_client(struct files_dump_ctx *fc, int sk, const struct fd_desc *d,
			     struct usk_diag *u)
{
	int outq = 0, ret;

	if (u->peer || u->state != USK_TCP_ESTABLISHED || u->type == SOCK_DGRAM)
		return 0;
	ret = find_listener(fc, u->ino, &u->peer);
	if (ret || !u->peer)
		return ret;
	if (!ioctl(sk, SIOCOUTQ, &outq) && outq > 0) {
		pr_err("fd %d of pid %d: unix socket %u sent %d bytes on a connection listener %u has not accepted yet: not supported\n",
		       d->fd, d->pid, u->ino, outq, u->peer);
		return -ENOTSUP;
	}
	pr_debug("unix socket %u is queued on listener %u\n", u->ino, u->peer);
	return 0;
}

static int dump_usk(struct files_dump_ctx *fc, const struct fd_desc *d, int sk,
		    struct usk_diag *u, uint32_t *id)
{
	UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
	struct files_sk_opts so = {};
	FownEntry fown = FOWN_ENTRY__INIT;
	FilePermsEntry perms = FILE_PERMS_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	char dir[PATH_MAX];
	int ret;

	ret = fix_queued_client(fc, sk, d, u);
	if (!ret)
		ret = resolve_name(d, u, &ue, &perms, dir, sizeof(dir));
	if (!ret)
		ret = files_sk_opts_dump(sk, NULL, &so);
	if (ret) {
		files_sk_opts_free(&so);
		return ret;
	}
	*id = files_new_id(fc);
	ue.id = *id;
	ue.ino = d->st.st_ino;
	ue.type = u->type;
	ue.state = u->state;
	ue.flags = d->flags;
	ue.peer = u->peer;
	ue.backlog = u->state == USK_TCP_LISTEN ? u->backlog : 0;
	ue.fown = &fown;
	ue.opts = &so.e;
	ue.has_shutdown = u->shutdown != 0;
	ue.shutdown = u->shutdown & 3;
	fe.type = FD_TYPES__UNIXSK;
	fe.id = *id;
	fe.usk = &ue;
	/* Known before its queue is read: the queue may carry this very socket. */
	ret = remember_usk(fc, d, *id, u);
	/* A listener's queue holds connections; an unconnected stream, nothing. */
	if (!ret && (u->state == USK_TCP_ESTABLISHED || u->type == SOCK_DGRAM))
		ret = unix_dump_queue(fc, sk, d, u->type, *id);
	if (!ret)
		ret = files_write_entry(fc, &fe);
	files_sk_opts_free(&so);
	pr_debug("unix socket %u: type %u state %u peer %u name %d bytes%s\n", ue.ino, ue.type,
		 ue.state, ue.peer, u->namelen, ue.deleted ? " (deleted)" : "");
	return ret;
}

static int unix_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	struct usk_diag u = {};
	int sk = files_peekfd(d);
	struct dumped_usk *done;
	int family = d->family, ret;

	if (sk < 0)
		return sk;
	/* One socket, one file: met again in flight in its own (or a peer's) queue. */
	done = dumped_usk(fc->st, d->st.st_ino);
	if (done) {
		*id = done->id;
		return 0;
	}
	if (family != AF_UNIX) {
		pr_err("fd %d of pid %d: %s (family %d) is not supported yet\n", d->fd, d->pid,
		       family_name(family), family);
		return -ENOTSUP;
	}
	ret = usk_diag(fc, d->st.st_ino, &u);
	if (!ret)
		ret = check_usk(d, &u);
	if (!ret)
		ret = dump_usk(fc, d, sk, &u, id);
	free(u.icons);
	return ret;
}

/*
 * --ext-unix-sk: a dgram socket's peer outside the tree is saved by name
 * (CRIU's USK_EXTERN entry: dgram, "listening", no fd), for the restore
 * to connect to again. Half of a stream connection can't be (CRIU
 * neither).
 */
static int dump_external(struct files_dump_ctx *fc, struct dumped_usk *s)
{
	UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
	SkOptsEntry opts = SK_OPTS_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	struct usk_diag me = {}, peer = {};
	int ret = usk_diag(fc, s->ino, &me);

	if (!ret)
		ret = usk_diag(fc, s->peer, &peer);
	free(me.icons);
	free(peer.icons);
	if (ret)
		return ret;
	if (me.type != SOCK_DGRAM || !peer.namelen) {
		pr_err("fd %d of pid %d: unix socket %u is connected to %s socket %u outside the dumped tree: not supported\n",
		       s->fd, s->pid, s->ino, me.type != SOCK_DGRAM ? "stream" : "unnamed", s->peer);
		return -ENOTSUP;
	}
	ue.id = fe.id = files_new_id(fc);
	ue.ino = s->peer;
	ue.type = SOCK_DGRAM;
	ue.state = USK_TCP_LISTEN;
	ue.uflags = USK_EXTERN;
	ue.name.len = peer.namelen;
	ue.name.data = (uint8_t *)peer.name;
	ue.fown = &fown;
	ue.opts = &opts;
	fe.type = FD_TYPES__UNIXSK;
	fe.usk = &ue;
	pr_info("unix socket %u: its peer %u outside the tree is saved by name (--ext-unix-sk)\n",
		s->ino, s->peer);
	return files_write_entry(fc, &fe);
}

/* Every socket's peer must be in the tree: run after the last task. */
static int check_peers(struct files_dump_ctx *fc)
{
	struct files_dump *fd = fc->st;
	int nr = fd->nr_usks, ret = 0;

	for (int i = 0; i < nr && !ret; i++) {
		struct dumped_usk *s = &fd->usks[i];

		if (!s->peer || dumped_usk(fd, s->peer))
			continue;
		if (!fc->ext_unix_sk) {
			pr_err("fd %d of pid %d: unix socket %u is connected to socket %u outside the dumped tree: not supported without --ext-unix-sk\n",
			       s->fd, s->pid, s->ino, s->peer);
			return -ENOTSUP;
		}
		ret = dump_external(fc, s);
		/* Saved once, for every socket of the tree connected to it. */
		if (!ret)
			ret = remember_usk(fc, &(struct fd_desc){ .pid = s->pid, .fd = s->fd,
								  .st.st_ino = s->peer },
					   0, &(struct usk_diag){});
	}
	return ret;
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
	idx_map_free(&fc->st->usk_index);
	snap_free(fc->st->usk_snap);
	fc->st->usk_snap = NULL;
	for (int i = 0; i < fc->st->nr_inflight_fds; i++)
		close(fc->st->inflight_fds[i]);
	free(fc->st->inflight_fds);
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
	.finish = unix_finish,
	.flags = unix_flags,
	.rst_free = unix_rst_free,
};
