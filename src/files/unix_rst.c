// SPDX-License-Identifier: MIT
/*
 * Unix sockets, the restore: every socket is made in amber before fork
 * (a service fd every task inherits), in this order, so that each step
 * finds what it needs:
 *
 *   1. sockets: a socketpair per pair of twins (and per half-closed
 *      socket, with a twin closed at the end), its ends bound to their
 *      names afterwards; a socket for every other one, bound to its name
 *      (a stale socket file at the path is removed first), listeners
 *      listening. An accepted end carries its listener's name: binding
 *      that name to a socketpair end gives the same addresses;
 *   2. pairs accepted from a listener still in the tree: the client
 *      connects to it again and the accepted end is accept()ed;
 *   3. clients queued on a listener connect to it again, not accepted;
 *   4. (.finish, once the tasks exist, stopped, so a queued message's
 *      sender pid can be given again with SCM_CREDENTIALS) queues: sent again
 *      through the peer, or for a named dgram socket through a temporary
 *      socket, before it connects anywhere; files in flight go with their
 *      packet (SCM_RIGHTS), sent from amber's service fds;
 *   5. dgram sockets connect to their peer's name; shutdowns;
 *   6. names that were unlinked at dump are unlinked again.
 *
 * A tree with mounts of its own (defer_paths): its path names are among
 * those mounts, which are made by the root after the fork, not amber's.
 * Its sockets with a path name are made unbound before the fork, a pair
 * accepted from such a listener as a socketpair; once every task exists,
 * a child of amber whose root is the restored root's binds them (the
 * accepted end first, its name unlinked again at once so the listener
 * can take it: both show the same address), listens and connects the
 * queued clients, then runs steps 4-6.
 */
#define LOG_PREFIX "unix: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/files_internal.h"
#include "files/unix.h"

struct usk_rst {
	struct files_rst_ctx *fc;
	int *twin; /* files_rst.usk_twins */
	bool in_tree; /* run by the child in the restored root (run_in_tree()) */
};

/* Through files_rst.usk_index, which unix_load() fills before anything asks. */
struct rfile *usk_by_ino(struct files_rst *fr, uint32_t ino)
{
	int i = idx_map_get(&fr->usk_index, ino);

	return i < 0 ? NULL : &fr->files[i];
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

static int usk_listener_cmp(const UnixSkEntry *a, const UnixSkEntry *b)
{
	size_t n = min(a->name.len, b->name.len);
	int c;

	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	c = n ? memcmp(a->name.data, b->name.data, n) : 0;
	if (c)
		return c;
	if (a->name.len != b->name.len)
		return a->name.len < b->name.len ? -1 : 1;
	return cmp_str(a->name_dir, b->name_dir);
}

/* qsort_r() of files[] indices: by name, then by place in files[]. */
static int cmp_listener_idx(const void *x, const void *y, void *arg)
{
	struct files_rst *fr = arg;
	int a = *(const int *)x, b = *(const int *)y;
	int c = usk_listener_cmp(fr->files[a].fe->usk, fr->files[b].fe->usk);

	return c ? c : a - b;
}

/*
 * The indices unix_rst.c looks sockets up by: every unix socket by inode
 * (each may appear once) and the listeners sorted by name, so that a tree
 * of thousands of sockets is not searched once per socket.
 */
int unix_index(struct files_rst *fr)
{
	int nr = 0;

	for (int i = 0; i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;

		if (fe->type != FD_TYPES__UNIXSK)
			continue;
		if (idx_map_get(&fr->usk_index, fe->usk->ino) >= 0) {
			pr_err("files.img: unix socket %u appears twice\n", fe->usk->ino);
			return -EINVAL;
		}
		if (idx_map_put(&fr->usk_index, fe->usk->ino, i))
			return -ENOMEM;
		if (fe->usk->state == USK_TCP_LISTEN)
			nr++;
	}
	fr->usk_listeners = xrealloc_array(NULL, nr ? nr : 1, sizeof(int));
	if (!fr->usk_listeners)
		return -ENOMEM;
	for (int i = 0; i < fr->nr_files; i++) {
		const FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__UNIXSK && fe->usk->state == USK_TCP_LISTEN)
			fr->usk_listeners[fr->nr_usk_listeners++] = i;
	}
	qsort_r(fr->usk_listeners, nr, sizeof(int), cmp_listener_idx, fr);
	return 0;
}

static UnixSkEntry *usk(struct rfile *rf)
{
	return rf->fe->usk;
}

static struct rfile *peer_of(struct files_rst *fr, struct rfile *rf)
{
	return usk(rf)->peer ? usk_by_ino(fr, usk(rf)->peer) : NULL;
}

static bool is_twin(struct files_rst *fr, struct rfile *rf)
{
	struct rfile *p = peer_of(fr, rf);

	return p && usk(p)->peer == usk(rf)->ino;
}

static struct rfile *listener_named(struct files_rst *fr, const UnixSkEntry *u)
{
	int lo = 0, hi = fr->nr_usk_listeners;

	if (!usk_named(u))
		return NULL;
	/* usk_listeners is sorted by usk_listener_cmp(): a binary search. */
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		struct rfile *rf = &fr->files[fr->usk_listeners[mid]];
		int c = usk_listener_cmp(usk(rf), u);

		if (!c) {
			/* Two of one name (one unlinked since): the first in files[]. */
			while (mid > 0 &&
			       !usk_listener_cmp(usk(&fr->files[fr->usk_listeners[mid - 1]]), u))
				mid--;
			return &fr->files[fr->usk_listeners[mid]];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The accepted end of a pair whose listener is in the tree: made by accept(). */
static bool is_accepted_end(struct files_rst *fr, struct rfile *rf)
{
	return usk_conn_type(usk(rf)) && is_twin(fr, rf) && listener_named(fr, usk(rf));
}

/* A path name of a tree with mounts of its own: bound by run_in_tree(). */
static bool named_later(struct usk_rst *r, const UnixSkEntry *u)
{
	return r->fc->defer_paths && usk_named(u) && u->name.data[0];
}

/* The accepted end made by accept() before the fork (its listener named now). */
static bool by_accept(struct usk_rst *r, struct rfile *rf)
{
	return is_accepted_end(r->fc->st, rf) && !named_later(r, usk(rf));
}

/* A path name that was unlinked after bind() at dump. */
static bool is_deleted_path(const UnixSkEntry *u)
{
	return u->has_deleted && u->deleted && usk_named(u) && u->name.data[0];
}

static socklen_t make_addr(const UnixSkEntry *u, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, u->name.data, u->name.len);
	return offsetof(struct sockaddr_un, sun_path) + u->name.len;
}

enum name_op { NAME_BIND, NAME_CONNECT, NAME_UNLINK };

/* bind/connect/unlink @u's name, from its name_dir for a relative one. */
static int name_op(int sk, const UnixSkEntry *u, enum name_op op)
{
	struct sockaddr_un a;
	socklen_t len = make_addr(u, &a);
	cleanup_close int cwd = -1;
	int ret = 0, err;

	if (u->name_dir) {
		cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (cwd < 0 || chdir(u->name_dir)) {
			pr_perror("unix socket %u: can't go to %s", u->ino, u->name_dir);
			return -errno;
		}
	}
	if (op == NAME_BIND)
		ret = bind(sk, (struct sockaddr *)&a, len);
	else if (op == NAME_CONNECT)
		ret = connect(sk, (struct sockaddr *)&a, len);
	else
		ret = unlink(a.sun_path);
	err = errno;
	if (cwd >= 0 && fchdir(cwd))
		pr_perror("can't go back to amber's cwd");
	errno = err;
	if (ret)
		pr_perror("unix socket %u: can't %s %s%.*s%s", u->ino,
			  op == NAME_BIND ? "bind to" : op == NAME_CONNECT ? "connect to" : "unlink",
			  a.sun_path[0] ? "" : "@", (int)u->name.len - !a.sun_path[0],
			  a.sun_path + !a.sun_path[0], u->name_dir ? " (relative)" : "");
	return ret ? -err : 0;
}

/* A path about to be bound: a stale socket file goes; anything else stays, and fails. */
static int clear_path(const UnixSkEntry *u)
{
	char path[PATH_MAX + USK_NAME_MAX + 2];
	struct stat st;

	if (!usk_named(u) || !u->name.data[0])
		return 0;
	snprintf(path, sizeof(path), "%s%s%.*s", u->name_dir ? u->name_dir : "",
		 u->name_dir ? "/" : "", (int)u->name.len, (char *)u->name.data);
	if (lstat(path, &st))
		return 0;
	if (!S_ISSOCK(st.st_mode) || (u->has_deleted && u->deleted)) {
		pr_err("unix socket %u: %s exists and is %s: can't bind it\n", u->ino, path,
		       S_ISSOCK(st.st_mode) ? "another socket's name" : "not a socket");
		return -EEXIST;
	}
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

static void set_perms(const UnixSkEntry *u)
{
	char path[PATH_MAX + USK_NAME_MAX + 2];
	FilePermsEntry *p = u->file_perms;

	if (!p || !u->name.len || !u->name.data[0] || (u->has_deleted && u->deleted))
		return;
	snprintf(path, sizeof(path), "%s%s%.*s", u->name_dir ? u->name_dir : "",
		 u->name_dir ? "/" : "", (int)u->name.len, (char *)u->name.data);
	if (chown(path, p->uid, p->gid) || chmod(path, p->mode & 07777))
		pr_warn("unix socket %u: can't set owner and mode of %s\n", u->ino, path);
}

static int bind_name(int sk, const UnixSkEntry *u)
{
	int ret = clear_path(u);

	if (!ret)
		ret = name_op(sk, u, NAME_BIND);
	if (!ret)
		set_perms(u);
	return ret;
}

static int set_fd(struct usk_rst *r, struct rfile *rf, int fd)
{
	int ret;

	if (fd < 0) {
		pr_perror("unix socket %u", usk(rf)->ino);
		return -errno;
	}
	ret = files_sk_opts_restore(fd, usk(rf)->opts,
				    files_sk_dflt(r->fc->st, fd, AF_UNIX, usk(rf)->type, 0),
				    "unix socket", usk(rf)->ino);
	if (ret) {
		close(fd);
		return ret;
	}
	rf->svc_fd = files_place(r->fc, rf, fd);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

/* Binds @rf's own name; a deleted one no other socket needs is unlinked at once. */
static int bind_own(struct files_rst *fr, struct rfile *rf)
{
	UnixSkEntry *u = usk(rf);
	int ret;

	if (!usk_named(u))
		return 0;
	/*
	 * Accepted from a listener of the tree, its peer gone: it shows the
	 * listener's name, which the listener holds (binding it again fails).
	 */
	if (usk_conn_type(u) && u->state != USK_TCP_LISTEN && listener_named(fr, u))
		return 0;
	ret = bind_name(rf->svc_fd, u);
	if (!ret && is_deleted_path(u) && u->state != USK_TCP_LISTEN &&
	    (u->type != SOCK_DGRAM || is_twin(fr, rf)))
		ret = name_op(-1, u, NAME_UNLINK);
	return ret;
}

static int bind_now(struct usk_rst *r, struct rfile *rf)
{
	return named_later(r, usk(rf)) ? 0 : bind_own(r->fc->st, rf);
}

static int listen_own(struct rfile *rf)
{
	if (usk(rf)->state == USK_TCP_LISTEN && listen(rf->svc_fd, usk(rf)->backlog)) {
		pr_perror("unix socket %u: listen", usk(rf)->ino);
		return -errno;
	}
	return 0;
}

/* Step 1 for one socket. */
static int make_one(struct usk_rst *r, struct rfile *rf, int idx)
{
	struct files_rst *fr = r->fc->st;
	struct rfile *p = peer_of(fr, rf);
	UnixSkEntry *u = usk(rf);
	int sv[2], ret;

	if (rf->svc_fd >= 0 || by_accept(r, rf) || (u->uflags & USK_EXTERN))
		return 0;
	if (is_twin(fr, rf) && !by_accept(r, p)) {
		/* A socketpair; names, if any, bound afterwards give the same addresses. */
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv))
			return set_fd(r, rf, -1);
		ret = set_fd(r, rf, sv[0]);
		if (ret) {
			close(sv[1]);
			return ret;
		}
		ret = set_fd(r, p, sv[1]);
		if (!ret)
			ret = bind_now(r, rf);
		return ret ? ret : bind_now(r, p);
	}
	if (!u->peer && u->state == USK_TCP_ESTABLISHED && (usk_conn_type(u) || !usk_named(u))) {
		/*
		 * Half-closed: a socketpair whose twin is closed once the queue
		 * is in. (A named dgram socket others connect to is ESTABLISHED
		 * too, without a peer: it is made below.)
		 */
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv))
			return set_fd(r, rf, -1);
		r->twin[idx] = files_move_high(sv[1], r->fc->svc_fd_base);
		ret = set_fd(r, rf, sv[0]);
		return ret ? ret : r->twin[idx] < 0 ? r->twin[idx] : bind_now(r, rf);
	}
	ret = set_fd(r, rf, socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0));
	if (!ret)
		ret = bind_now(r, rf);
	if (!ret && !named_later(r, u))
		ret = listen_own(rf);
	return ret;
}

/*
 * In the restored root: the accepted end of a pair takes its listener's
 * name first and lets go of the path at once, the listener binding it
 * afterwards (an accepted end shows its listener's address).
 */
static int name_accepted(struct usk_rst *r, struct rfile *rf)
{
	struct rfile *l = listener_named(r->fc->st, usk(rf));
	int ret = clear_path(usk(l));

	if (!ret)
		ret = name_op(rf->svc_fd, usk(rf), NAME_BIND);
	return ret ? ret : name_op(-1, usk(rf), NAME_UNLINK);
}

/*
 * accept() gives the new socket its listener's SO_PASSCRED and SO_PASSSEC
 * (unix_sock_inherit_flags()): cleared here, so that set_fd() starts from
 * a new socket's values, as its defaults say. @fd, or -1 and errno as
 * accept4() (set_fd() reports it).
 */
static int drop_inherited(int fd, const UnixSkEntry *listener)
{
	const SkOptsEntry *o = listener->opts;

	if (fd < 0 || !o)
		return fd;
	if ((o->so_passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 0 }, sizeof(int))) ||
	    (o->so_passsec && setsockopt(fd, SOL_SOCKET, SO_PASSSEC, &(int){ 0 }, sizeof(int)))) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Step 2: @srv was accepted from a listener of the tree; its peer connects again. */
static int accept_one(struct usk_rst *r, struct rfile *srv)
{
	struct files_rst *fr = r->fc->st;
	struct rfile *cli = peer_of(fr, srv), *l = listener_named(fr, usk(srv));
	int ret = name_op(cli->svc_fd, usk(l), NAME_CONNECT);

	return ret ? ret :
		     set_fd(r, srv, drop_inherited(accept4(l->svc_fd, NULL, NULL, SOCK_CLOEXEC),
						   usk(l)));
}

/* Step 3: a client waiting on a listener of the tree connects to it again. */
static int requeue_one(struct rfile *rf, struct rfile *l)
{
	int fl = fcntl(rf->svc_fd, F_GETFL), ret;

	/* Non-blocking: a full backlog must fail, not hang the restore. */
	fcntl(rf->svc_fd, F_SETFL, fl | O_NONBLOCK);
	ret = name_op(rf->svc_fd, usk(l), NAME_CONNECT);
	fcntl(rf->svc_fd, F_SETFL, fl);
	return ret;
}

/* Sends one packet through @via, with the files it carried (now amber's). */
static int send_packet(struct files_rst *fr, struct rdata *d, int via)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(253 * sizeof(int))] = {};
	struct iovec iov = { d->data, d->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
	struct cmsghdr *c = (struct cmsghdr *)cbuf;

	if (d->has_ucred) {
		struct ucred uc = { d->ucred[0], d->ucred[1], d->ucred[2] };

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(c), &uc, sizeof(uc));
		mh.msg_controllen = CMSG_SPACE(sizeof(uc));
		c = (struct cmsghdr *)(cbuf + mh.msg_controllen);
	}
	if (d->nr_rights) {
		mh.msg_controllen += CMSG_SPACE(d->nr_rights * sizeof(int));
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(d->nr_rights * sizeof(int));
		for (int i = 0; i < d->nr_rights; i++) {
			struct rfile *rf = files_rfile(fr, d->rights[i]);

			if (!rf || rf->svc_fd < 0) {
				pr_err("file %u in flight was not opened\n", d->rights[i]);
				return -EINVAL;
			}
			((int *)CMSG_DATA(c))[i] = rf->svc_fd;
		}
	}
	if (!mh.msg_controllen)
		mh.msg_control = NULL;
	return sendmsg(via, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Sends, through @via, the packets queued for @rf so they land in its queue. */
static int fill_queue(struct files_rst *fr, struct rfile *rf, int via)
{
	int nr;
	struct rdata *q = files_skq_of(fr, rf->fe->id, &nr);

	for (int i = 0; i < nr; i++) {
		struct rdata *d = &q[i];
		ssize_t n = send_packet(fr, d, via);

		if (n != (ssize_t)d->len) {
			pr_err("unix socket %u: can't queue %u bytes again: %s\n", usk(rf)->ino,
			       d->len, n < 0 ? strerror(errno) : "short send");
			return n < 0 ? -errno : -EIO;
		}
	}
	return 0;
}

static bool has_queue(struct files_rst *fr, struct rfile *rf)
{
	int nr;

	return files_skq_of(fr, rf->fe->id, &nr) != NULL;
}

/* Step 4 for one socket. */
static int refill_one(struct usk_rst *r, struct rfile *rf, int idx)
{
	struct files_rst *fr = r->fc->st;
	struct rfile *p = peer_of(fr, rf);
	cleanup_close int tmp = -1;
	int ret;

	if (!has_queue(fr, rf))
		return 0;
	if (r->twin[idx] >= 0)
		return fill_queue(fr, rf, r->twin[idx]);
	if (p && is_twin(fr, rf))
		return fill_queue(fr, rf, p->svc_fd);
	tmp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (tmp < 0)
		return -errno;
	ret = name_op(tmp, usk(rf), NAME_CONNECT);
	return ret ? ret : fill_queue(fr, rf, tmp);
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

/* Step 5 for one socket: a dgram socket that is not a twin connects by name. */
static int finish_one(struct usk_rst *r, struct rfile *rf)
{
	struct files_rst *fr = r->fc->st;
	struct rfile *p = peer_of(fr, rf);
	int ret = 0;

	if (p && usk(rf)->type == SOCK_DGRAM && !is_twin(fr, rf))
		ret = name_op(rf->svc_fd, usk(p), NAME_CONNECT);
	return ret ? ret : set_shutdown(rf->svc_fd, usk(rf));
}

/* NAME_ACCEPTED and NAME: only in the restored root (run_in_tree()). */
enum step { MAKE, ACCEPT, NAME_ACCEPTED, NAME, REQUEUE, REFILL, FINISH, UNLINK, NR_STEPS };

static int run_step(struct usk_rst *r, enum step s, struct rfile *rf, int idx)
{
	struct files_rst *fr = r->fc->st;
	UnixSkEntry *u = usk(rf);
	struct rfile *p = peer_of(fr, rf);
	int ret;

	switch (s) {
	case MAKE:
		return make_one(r, rf, idx);
	case ACCEPT:
		return by_accept(r, rf) ? accept_one(r, rf) : 0;
	case NAME_ACCEPTED:
		return r->in_tree && named_later(r, u) && is_accepted_end(fr, rf)
			       ? name_accepted(r, rf)
			       : 0;
	case NAME:
		if (!r->in_tree || !named_later(r, u) || (u->uflags & USK_EXTERN))
			return 0;
		ret = bind_own(fr, rf);
		return ret ? ret : listen_own(rf);
	case REQUEUE:
		/* before the fork, or in the tree once the listener has its name */
		return p && usk_conn_type(u) && usk(p)->state == USK_TCP_LISTEN &&
				       named_later(r, usk(p)) == r->in_tree
			       ? requeue_one(rf, p)
			       : 0;
	case REFILL:
		return refill_one(r, rf, idx);
	case FINISH:
		return finish_one(r, rf);
	case UNLINK:
		if (is_deleted_path(u) && !is_accepted_end(fr, rf) &&
		    (u->state == USK_TCP_LISTEN || (u->type == SOCK_DGRAM && !is_twin(fr, rf))))
			return name_op(-1, u, NAME_UNLINK);
		return 0;
	default:
		return 0;
	}
}

static int run_steps(struct files_rst_ctx *fc, enum step from, enum step to, bool in_tree)
{
	struct files_rst *fr = fc->st;
	struct usk_rst r = { .fc = fc, .twin = fr->usk_twins, .in_tree = in_tree };
	int ret = 0;

	for (enum step s = from; !ret && s < to; s++)
		for (int i = 0; !ret && i < fr->nr_files; i++)
			if (fr->files[i].fe->type == FD_TYPES__UNIXSK)
				ret = run_step(&r, s, &fr->files[i], i);
	return ret;
}

/* Steps 1-3: before the other types prepare and shared files open. */
int unix_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	fr->usk_twins = malloc(sizeof(int) * (fr->nr_files + 1));
	if (!fr->usk_twins)
		return -ENOMEM;
	for (int i = 0; i < fr->nr_files; i++)
		fr->usk_twins[i] = -1;
	return run_steps(fc, MAKE, REFILL, false);
}

/* Any socket named by run_in_tree()? */
static bool any_named_later(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct usk_rst r = { .fc = fc };

	for (int i = 0; i < fr->nr_files; i++)
		if (fr->files[i].fe->type == FD_TYPES__UNIXSK &&
		    named_later(&r, fr->files[i].fe->usk))
			return true;
	return false;
}

/*
 * Steps @from..@to in a child of amber whose root is the restored root's
 * (its path names resolve among the tree's mounts; amber's own root and
 * threads are left alone). The child holds amber's service fds: the very
 * sockets the tasks have.
 */
static int run_in_tree(struct files_rst_ctx *fc, enum step from, enum step to)
{
	char root[32];
	pid_t pid;
	int st;

	if (fc->root_pid <= 0) {
		pr_err("no restored root to name the sockets in\n");
		return -EINVAL;
	}
	snprintf(root, sizeof(root), "/proc/%d/root", fc->root_pid);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int ret = 0;

		if (chdir(root) || chroot(".")) {
			ret = -errno;
			pr_perror("can't enter the restored root %s", root);
		}
		if (!ret)
			ret = run_steps(fc, from, to, true);
		_exit(ret < 0 ? -ret & 0xff : 0);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -errno;
	if (WIFEXITED(st))
		return -WEXITSTATUS(st);
	pr_err("the child naming sockets in the restored root was killed (status %#x)\n", st);
	return -EIO;
}

/* Steps 4-6: once every task exists (senders' pids), every file in flight open. */
int unix_finish(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = any_named_later(fc) ? run_in_tree(fc, NAME_ACCEPTED, NR_STEPS)
				      : run_steps(fc, REFILL, NR_STEPS, false);

	for (int i = 0; fr->usk_twins && i < fr->nr_files; i++)
		files_close_fd(&fr->usk_twins[i]);
	return ret;
}
