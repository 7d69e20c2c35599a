// SPDX-License-Identifier: MIT
/*
 * epoll instances with their targets (CRIU's eventpoll_file_entry).
 *
 * Dump: each "tfd:" line of /proc/PID/fdinfo/EPFD is a target: the fd
 * number it was added under (its key in the epoll, with the file), its
 * events and data. The target's open file description need not be at
 * that fd any more (closed, or dup'ed elsewhere, or in another task):
 * once every task is dumped, each target is looked up among every
 * description of the tree with kcmp(KCMP_EPOLL_TFD), which compares a
 * task's fd with the file the epoll really holds, and its file id goes
 * in an amber-only field. A target held by no fd of the tree is refused.
 * The entries are written then, at dump_fini.
 *
 * Restore: every epoll and every target is opened before fork as a
 * service fd, so the tasks get these very descriptions. late() then adds
 * the targets, after every type has opened its files: in a child of
 * amber, with its own fd table, each target is dup'ed to its saved fd
 * number and added there, so that the task's later EPOLL_CTL_MOD/DEL on
 * that number finds it. Without amber's field (a CRIU image) a target is
 * the file at that fd number in a task holding the epoll, as in CRIU.
 * In a tree with mounts of its own, the targets its root makes there
 * (FIFOs, regular files, its devpts's ptys) are added by the root, once
 * they are open, before it forks.
 */
#define LOG_PREFIX "epoll: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "eventpoll.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"

#ifndef SYS_kcmp
#define SYS_kcmp 312
#endif
#define KCMP_EPOLL_TFD 7

struct kcmp_epoll_slot {
	uint32_t efd, tfd, toff;
};

struct ep_target {
	uint32_t tfd, events, sdev;
	uint64_t data, pos, ino;
};

struct dumped_epoll {
	uint32_t id, flags;
	pid_t pid;
	int fd;
	struct ep_target *t;
	int nr;
};

/* ---- dump ---- */

static bool epoll_match(const struct fd_desc *d)
{
	return !strcmp(d->link, "anon_inode:[eventpoll]");
}

static int parse_targets(const struct fd_desc *d, struct dumped_epoll *ep)
{
	char name[64];
	cleanup_free char *buf = NULL;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	buf = read_proc(d->pid, name, NULL);
	if (!buf)
		return -errno ? -errno : -EIO;
	for (char *rest = buf, *p; (p = next_line(&rest));) {
		struct ep_target t = {}, *n;
		long long pos;
		unsigned long long data;
		unsigned long ino;

		if (strncmp(p, "tfd:", 4))
			continue;
		if (sscanf(p, "tfd: %u events: %x data: %llx pos:%lli ino:%lx sdev:%x", &t.tfd,
			   &t.events, &data, &pos, &ino, &t.sdev) != 6) {
			pr_err("fd %d of pid %d: can't parse epoll fdinfo line: %.80s\n", d->fd,
			       d->pid, p);
			return -EIO;
		}
		t.data = data;
		t.pos = pos;
		t.ino = ino;
		n = xrealloc_array(ep->t, ep->nr + 1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		ep->t = n;
		n[ep->nr++] = t;
	}
	return 0;
}

static int epoll_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = fc->st;
	struct dumped_epoll *ep;
	FownEntry fown;
	int lfd = files_peekfd(d);
	int ret;

	if (lfd < 0)
		return lfd;
	ret = files_dump_fown(d, lfd, &fown);
	if (ret)
		return ret;
	ep = xrealloc_array(fd->epolls, fd->nr_epolls + 1, sizeof(*ep));
	if (!ep)
		return -ENOMEM;
	fd->epolls = ep;
	ep += fd->nr_epolls++;
	*ep = (struct dumped_epoll){ .pid = d->pid, .fd = d->fd, .flags = d->flags };
	ret = parse_targets(d, ep);
	if (ret)
		return ret;
	*id = ep->id = files_new_id(fc);
	pr_debug("epoll %u (fd %d of pid %d): %d targets\n", *id, d->fd, d->pid, ep->nr);
	return 0;
}

struct target_key {
	pid_t pid;
	struct kcmp_epoll_slot *slot;
};

static long order_target(const struct dumped_file *f, void *arg)
{
	const struct target_key *k = arg;

	return syscall(SYS_kcmp, f->pid, k->pid, KCMP_EPOLL_TFD, f->fd, k->slot);
}

/*
 * The id of the dumped description that is target @i of @ep, or 0. @toff:
 * how many targets before it have its fd number (the same fd, closed and
 * opened again, may be watched twice).
 */
static uint32_t find_target(struct files_dump *fd, const struct dumped_epoll *ep, int i,
			    uint32_t toff)
{
	struct kcmp_epoll_slot slot = { .efd = ep->fd, .tfd = ep->t[i].tfd, .toff = toff };
	struct target_key key = { ep->pid, &slot };
	/* fdinfo's sdev is the kernel's dev_t: 12-bit major, 20-bit minor. */
	dev_t dev = makedev(ep->t[i].sdev >> 20, ep->t[i].sdev & 0xfffff);
	int found;

	/*
	 * A socket has one open description per inode (sockfs cannot open
	 * one again), so its inode alone names it: no kcmp, whose
	 * KCMP_EPOLL_TFD walks the epoll's targets from the first, which is
	 * quadratic over a server's thousands of connections.
	 */
	found = desc_index_sole(&fd->index, dev, ep->t[i].ino);
	if (found >= 0 && files_type_is_socket(fd->files[found].type))
		return fd->files[found].id;
	/* By inode and kcmp order first; the scan below when that finds nothing. */
	found = desc_index_find_by(&fd->index, fd->files, dev, ep->t[i].ino, order_target, &key);
	if (found >= 0)
		return fd->files[found].id;
	for (int k = 0; k < fd->nr_files; k++) {
		struct dumped_file *f = &fd->files[k];
		long r;

		if (f->ino != ep->t[i].ino)
			continue;
		r = syscall(SYS_kcmp, f->pid, ep->pid, KCMP_EPOLL_TFD, f->fd, &slot);
		if (r == 0)
			return f->id;
		if (r < 0)
			pr_warn("kcmp(KCMP_EPOLL_TFD) of fd %d of pid %d: %s\n", f->fd, f->pid,
				strerror(errno));
	}
	return 0;
}

/*
 * Each target's kcmp slot offset (find_target()), counted through a map
 * of fd numbers: a scan of the targets before each was quadratic in an
 * epoll's targets (a server may watch thousands of sockets).
 */
static int target_offsets(const struct dumped_epoll *ep, uint32_t *toff)
{
	struct idx_map seen = {}; /* fd number -> targets with it so far */
	int ret = 0;

	for (int i = 0; i < ep->nr && !ret; i++) {
		int n = idx_map_get(&seen, ep->t[i].tfd);

		toff[i] = n < 0 ? 0 : n;
		ret = idx_map_put(&seen, ep->t[i].tfd, toff[i] + 1);
	}
	idx_map_free(&seen);
	return ret;
}

static int write_epoll(struct files_dump_ctx *fc, const struct dumped_epoll *ep)
{
	EventpollFileEntry ee = EVENTPOLL_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	cleanup_free EventpollTfdEntry *te = calloc(ep->nr + 1, sizeof(*te));
	cleanup_free EventpollTfdEntry **tp = calloc(ep->nr + 1, sizeof(*tp));
	cleanup_free uint32_t *toff = calloc(ep->nr + 1, sizeof(*toff));

	if (!te || !tp || !toff || target_offsets(ep, toff))
		return -ENOMEM;
	for (int i = 0; i < ep->nr; i++) {
		const struct ep_target *t = &ep->t[i];
		uint32_t fid = find_target(fc->st, ep, i, toff[i]);

		if (!fid) {
			pr_err("fd %d of pid %d: epoll target fd %u (inode %" PRIu64 ") is held by no fd of the dumped tree: not supported\n",
			       ep->fd, ep->pid, t->tfd, t->ino);
			return -ENOTSUP;
		}
		te[i] = (EventpollTfdEntry)EVENTPOLL_TFD_ENTRY__INIT;
		te[i].id = ep->id;
		te[i].tfd = t->tfd;
		te[i].events = t->events;
		te[i].data = t->data;
		te[i].has_dev = te[i].has_inode = te[i].has_pos = true;
		te[i].dev = t->sdev;
		te[i].inode = t->ino;
		te[i].pos = t->pos;
		te[i].has_amber_file_id = true;
		te[i].amber_file_id = fid;
		tp[i] = &te[i];
		pr_debug("epoll %u: target fd %u is file %u, events %#x data %#" PRIx64 "\n",
			 ep->id, t->tfd, fid, t->events, t->data);
	}
	ee.id = ep->id;
	ee.flags = ep->flags;
	ee.fown = &fown;
	ee.n_tfd = ep->nr;
	ee.tfd = tp;
	fe.type = FD_TYPES__EVENTPOLL;
	fe.id = ep->id;
	fe.epfd = &ee;
	return files_write_entry(fc, &fe);
}

static int epoll_dump_fini(struct files_dump_ctx *fc)
{
	int ret = 0;

	for (int i = 0; !ret && i < fc->st->nr_epolls; i++)
		ret = write_epoll(fc, &fc->st->epolls[i]);
	return ret;
}

static void epoll_dump_free(struct files_dump_ctx *fc)
{
	for (int i = 0; i < fc->st->nr_epolls; i++)
		free(fc->st->epolls[i].t);
	free(fc->st->epolls);
}

/* ---- restore: load ---- */

static int epoll_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const EventpollFileEntry *e = fe->epfd;
	int ret = files_check_sub(fe, e, e ? e->id : 0);

	if (!ret)
		ret = files_check_fown(fe, e->fown);
	for (size_t i = 0; !ret && i < e->n_tfd; i++) {
		/* CRIU 4.2 writes 0 for the id of a target inside its epoll's entry */
		if ((e->tfd[i]->id && e->tfd[i]->id != fe->id) || e->tfd[i]->tfd >= FILES_MAX_FD) {
			pr_err("files.img: epoll %u: target %zu (fd %u) is malformed\n", fe->id, i,
			       e->tfd[i]->tfd);
			ret = -EINVAL;
		}
	}
	return ret;
}

static int epoll_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i], **n;
		const EventpollFileEntry *e = rf->fe->epfd;

		if (rf->fe->type != FD_TYPES__EVENTPOLL)
			continue;
		for (size_t k = 0; k < e->n_tfd; k++) {
			const EventpollTfdEntry *t = e->tfd[k];
			struct rfile *tf;

			if (!t->has_amber_file_id)
				continue; /* a CRIU image: resolved by fd number in prepare() */
			tf = files_rfile(fr, t->amber_file_id);
			if (!tf || tf == rf) {
				pr_err("files.img: epoll %u: target fd %u names file %u, %s\n", e->id,
				       t->tfd, t->amber_file_id,
				       tf ? "the epoll itself" : "which is not in files.img");
				return -EINVAL;
			}
			tf->shared = true;
		}
		n = xrealloc_array(fr->epolls, fr->nr_epolls + 1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		fr->epolls = n;
		n[fr->nr_epolls++] = rf;
		rf->shared = true;
	}
	return 0;
}

/* ---- restore: before fork ---- */

/* A CRIU image: the target is the file at fd @tfd of a task holding the epoll. */
static int target_by_fd(struct files_rst *fr, uint32_t ep_id, uint32_t tfd)
{
	for (int i = 0; i < fr->nr_tasks; i++) {
		struct rtask_fds *tf = &fr->tasks[i];
		bool holds = false;

		for (int j = 0; j < tf->nr && !holds; j++)
			holds = tf->fds[j]->id == ep_id;
		for (int j = 0; holds && j < tf->nr; j++)
			if (tf->fds[j]->fd == tfd && tf->fds[j]->id != ep_id)
				return tf->fds[j]->id;
	}
	return 0;
}

static int epoll_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_epolls; i++) {
		const EventpollFileEntry *e = fr->epolls[i]->fe->epfd;

		for (size_t k = 0; k < e->n_tfd; k++) {
			EventpollTfdEntry *t = e->tfd[k];
			int id;

			if (t->has_amber_file_id)
				continue;
			id = target_by_fd(fr, e->id, t->tfd);
			if (!id) {
				pr_err("epoll %u: no task holding it has target fd %u\n", e->id, t->tfd);
				return -EINVAL;
			}
			t->has_amber_file_id = true;
			t->amber_file_id = id;
			files_rfile(fr, id)->shared = true;
		}
	}
	return 0;
}

/* What went wrong in the child of add_targets(), for amber's log. */
struct add_err {
	int err;
	uint32_t ep_id, tfd, file_id;
};

/*
 * A target the tree's root makes among its mounts once it is in them
 * (files_open_deferred(), the pty pairs of its devpts): not there when
 * amber runs late(), added by the root (files_epoll_add_in_tree()).
 */
static bool made_by_root(struct files_rst_ctx *fc, const struct rfile *rf)
{
	if (!fc->defer_paths)
		return false;
	switch (rf->fe->type) {
	case FD_TYPES__REG:
	case FD_TYPES__FIFO:
		return true;
	case FD_TYPES__TTY:
		return files_rpty_of(fc->st, rf->fe) || files_rpty_orphan(fc->st, rf->fe);
	default:
		return false;
	}
}

static struct rfile *target_of(struct files_rst *fr, const EventpollTfdEntry *t)
{
	return files_rfile(fr, t->amber_file_id);
}

/* The targets added now: amber's (@by_root false) or the root's. */
static bool wanted(struct files_rst_ctx *fc, const EventpollTfdEntry *t, bool by_root)
{
	return made_by_root(fc, target_of(fc->st, t)) == by_root;
}

static int nr_targets(struct files_rst_ctx *fc, bool by_root)
{
	struct files_rst *fr = fc->st;
	int nr = 0;

	for (int i = 0; i < fr->nr_epolls; i++) {
		const EventpollFileEntry *e = fr->epolls[i]->fe->epfd;

		for (size_t k = 0; k < e->n_tfd; k++)
			nr += wanted(fc, e->tfd[k], by_root);
	}
	return nr;
}

/*
 * In the child: a target held at its own fd number (files_place()) is
 * added as it is; the others are put at their number with dup2(), which
 * may replace an fd placed at its number, so the epolls and the sources
 * placed below @base are copied above it first. A tree whose targets are
 * one task's, in place, is added without a single copy. Only
 * async-signal-safe calls.
 */
static void add_in_child(struct files_rst_ctx *fc, bool by_root, int base, struct add_err *res)
{
	struct files_rst *fr = fc->st;

	for (int moved = 0; moved < 2; moved++) {
		for (int i = 0; i < fr->nr_epolls; i++) {
			const EventpollFileEntry *e = fr->epolls[i]->fe->epfd;
			int ep = fr->epolls[i]->svc_fd;

			if (!moved && ep < base) /* the copy is the child's, it goes with it */
				ep = fr->epolls[i]->svc_fd = fcntl(ep, F_DUPFD, base);
			for (size_t k = 0; k < e->n_tfd; k++) {
				EventpollTfdEntry *t = e->tfd[k];
				struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
				struct rfile *rf = target_of(fr, t);
				int src = rf->svc_fd;

				if (!wanted(fc, t, by_root))
					continue;
				*res = (struct add_err){ 0, e->id, t->tfd, t->amber_file_id };
				if (ep < 0 || src < 0)
					goto fail;
				if (!moved) {
					/* pass 1: in place, added; misplaced below base, copied up */
					if (src == (int)t->tfd) {
						if (epoll_ctl(ep, EPOLL_CTL_ADD, (int)t->tfd, &ev))
							goto fail;
					} else if (src < base) {
						rf->svc_fd = fcntl(src, F_DUPFD, base);
					}
					continue;
				}
				if (src == (int)t->tfd)
					continue; /* added in pass 1 */
				/* EEXIST: this file at this number, added in pass 1 */
				if (dup2(src, (int)t->tfd) < 0 ||
				    (epoll_ctl(ep, EPOLL_CTL_ADD, (int)t->tfd, &ev) && errno != EEXIST))
					goto fail;
			}
		}
	}
	_exit(0);
fail:
	res->err = errno;
	_exit(1);
}

/*
 * The targets of every epoll, added in a child with its own fd table:
 * by amber before the fork, or by the tree's root for those it made
 * (untraced: amber traces what the root forks).
 */
static int add_targets(struct files_rst_ctx *fc, bool by_root)
{
	struct files_rst *fr = fc->st;
	int nr = nr_targets(fc, by_root), st;
	struct add_err *res;
	pid_t kid;

	if (!nr)
		return 0;
	for (int i = 0; i < fr->nr_epolls; i++) {
		const EventpollFileEntry *e = fr->epolls[i]->fe->epfd;

		for (size_t k = 0; k < e->n_tfd; k++) {
			if (!wanted(fc, e->tfd[k], by_root))
				continue;
			if (fr->epolls[i]->svc_fd < 0 || target_of(fr, e->tfd[k])->svc_fd < 0) {
				pr_err("epoll %u: target fd %u (file %u) was not opened %s\n", e->id,
				       e->tfd[k]->tfd, e->tfd[k]->amber_file_id,
				       by_root ? "in the tree's mounts" : "before fork");
				return -EINVAL;
			}
		}
	}
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return -ENOMEM;
	*res = (struct add_err){ .err = EIO };
	kid = by_root ? syscall(SYS_clone, SIGCHLD | CLONE_UNTRACED, 0, 0, 0, 0) : fork();
	if (kid == 0)
		add_in_child(fc, by_root, fc->svc_fd_base, res);
	if (kid < 0 || waitpid(kid, &st, 0) != kid) {
		pr_perror("can't run the epoll helper");
		munmap(res, sizeof(*res));
		return -errno;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_err("epoll %u: can't add target fd %u (file %u): %s\n", res->ep_id, res->tfd,
		       res->file_id, strerror(res->err));
		st = -res->err;
	}
	munmap(res, sizeof(*res));
	pr_info("%d epoll targets added to %d epolls%s\n", nr, fr->nr_epolls,
		by_root ? " in the tree's mounts" : "");
	return st ? (st < 0 ? st : -EIO) : 0;
}

static int epoll_late(struct files_rst_ctx *fc)
{
	return add_targets(fc, false);
}

int files_epoll_add_in_tree(struct files_rst_ctx *fc)
{
	return add_targets(fc, true);
}

/* ---- restore: open ---- */

static int epoll_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		pr_perror("epoll %u: epoll_create1", rf->fe->id);
	return fd < 0 ? -errno : fd;
}

static uint32_t epoll_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->epfd->flags;
}

static void epoll_rst_free(struct files_rst_ctx *fc)
{
	free(fc->st->epolls);
}

const struct files_type files_epoll_type = {
	.type = FD_TYPES__EVENTPOLL,
	.name = "epoll",
	.match = epoll_match,
	.dump = epoll_dump,
	.dump_fini = epoll_dump_fini,
	.dump_free = epoll_dump_free,
	.check = epoll_check,
	.load = epoll_load,
	.prepare = epoll_prepare,
	.late = epoll_late,
	.open = epoll_open,
	.flags = epoll_flags,
	.rst_free = epoll_rst_free,
};
