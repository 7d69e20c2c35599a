// SPDX-License-Identifier: MIT
/*
 * POSIX message queue descriptors (mqueue.h has the data model), and the
 * reading and making of a queue for dump/ and restore/.
 *
 * A descriptor is saved with its queue's name and its f_flags (access
 * mode, O_NONBLOCK). Its queue is either one of the tree's own IPC
 * namespace (saved with it, made again before the tasks open it) or one
 * of amber's namespace, which the tree shares: that one is an external
 * object, as CRIU treats a regular file, opened again by name at restore
 * (its shape checked) and never read, since others may be using it.
 *
 * A queue unlinked while open (mq_unlink), of either namespace, is read
 * through a new description of it (/proc/PID/fd/N opened again) and
 * saved with its first description (mqueue_file_entry.ghost), the others
 * naming it (ghost_id). Every description of it is opened before fork,
 * as a shared file (by amber, or by the restored root in the tree's own
 * namespace), from the queue made again under its old name (or, taken,
 * a temporary one), which is unlinked once they all are
 * (files_mq_unlink_ghosts()).
 *
 * A queue of any other namespace and a notification registered by a
 * task of the tree (mq_notify: its sigev_value can't be read back) are
 * refused, naming the pid and fd.
 */
#define LOG_PREFIX "mqueue: "
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "files/mqueue.h"

#define MQUEUE_MAGIC 0x19800202

bool files_mq_name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len >= 2 && len <= NAME_MAX + 1 && name[0] == '/' && !strchr(name + 1, '/');
}

int files_mq_notify_pid(int fd)
{
	char buf[128];
	const char *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	/* "QSIZE:%-10lu NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d" */
	if (n < 0)
		return -errno;
	buf[n] = 0;
	p = strstr(buf, "NOTIFY_PID:");
	return p ? atoi(p + strlen("NOTIFY_PID:")) : -EIO;
}

void files_mq_free_msgs(MqueueEntry *e)
{
	for (size_t i = 0; i < e->n_msgs; i++) {
		free(e->msgs[i]->data.data);
		free(e->msgs[i]);
	}
	free(e->msgs);
	e->msgs = NULL;
	e->n_msgs = 0;
}

/* Sends @e's messages back in order; the count that went in. */
static size_t put_back(int fd, const MqueueEntry *e, size_t from)
{
	size_t i;

	for (i = from; i < e->n_msgs; i++)
		if (mq_send(fd, (const char *)e->msgs[i]->data.data, e->msgs[i]->data.len,
			    e->msgs[i]->prio))
			break;
	return i;
}

/* Takes every message of @fd's queue into @e, in receive order. */
static int take_all(int fd, MqueueEntry *e, long curmsgs)
{
	for (long i = 0; i < curmsgs; i++) {
		MqueueMsg *m = xzalloc(sizeof(*m));
		unsigned int prio;
		ssize_t n;

		if (!m)
			return -ENOMEM;
		mqueue_msg__init(m);
		m->data.data = malloc(e->msgsize);
		if (!m->data.data) {
			free(m);
			return -ENOMEM;
		}
		n = mq_receive(fd, (char *)m->data.data, e->msgsize, &prio);
		if (n < 0) {
			int err = -errno;

			free(m->data.data);
			free(m);
			return err;
		}
		m->data.len = n;
		m->prio = prio;
		e->msgs[e->n_msgs++] = m;
	}
	return 0;
}

int files_mq_read(int fd, MqueueEntry *e)
{
	struct mq_attr attr;
	struct stat st;
	size_t back;
	int ret;

	if (mq_getattr(fd, &attr) || fstat(fd, &st))
		return -errno;
	e->mode = st.st_mode & 07777;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->maxmsg = attr.mq_maxmsg;
	e->msgsize = attr.mq_msgsize;
	e->msgs = calloc(attr.mq_curmsgs + 1, sizeof(*e->msgs));
	if (!e->msgs)
		return -ENOMEM;
	ret = take_all(fd, e, attr.mq_curmsgs);
	if (!ret && fault_injected("dump-mqueue"))
		ret = -EIO;
	/* Whatever happened, the queue gets back what was taken, in order. */
	back = put_back(fd, e, 0);
	if (back != e->n_msgs) {
		pr_perror("queue %s: %zu of its %zu messages could not be put back", e->name,
			  e->n_msgs - back, e->n_msgs);
		ret = ret ? ret : -EIO;
	}
	if (ret)
		files_mq_free_msgs(e);
	return ret;
}

bool files_mq_entry_ok(const MqueueEntry *e, const char *img)
{
	const char *why = NULL;

	if (!files_mq_name_ok(e->name))
		why = "a bad name";
	else if (e->maxmsg < 1 || e->maxmsg > FILES_MQ_MAX_MSGS || e->msgsize < 1 ||
		 e->msgsize > FILES_MQ_MAX_SIZE)
		why = "a size out of the kernel's bounds";
	else if (e->n_msgs > e->maxmsg)
		why = "more messages than it holds";
	else if (e->mode & ~07777u)
		why = "a bad mode";
	for (size_t i = 0; !why && i < e->n_msgs; i++)
		if (e->msgs[i]->prio >= FILES_MQ_PRIO_MAX || e->msgs[i]->data.len > e->msgsize)
			why = "a message out of its bounds";
	if (why)
		pr_err("%s: queue %s has %s\n", img, files_mq_name_ok(e->name) ? e->name : "?",
		       why);
	return !why;
}

int files_mq_make(const MqueueEntry *e, const char *name)
{
	struct mq_attr attr = { .mq_maxmsg = e->maxmsg, .mq_msgsize = e->msgsize };
	int fd = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0600, &attr);
	int ret = 0;

	if (fd < 0) {
		if (errno != EEXIST)
			pr_perror("can't make queue %s", name);
		return -errno;
	}
	/* The mode after: mq_open() applies the umask. */
	if (fchown(fd, e->uid, e->gid) || fchmod(fd, e->mode)) {
		pr_perror("queue %s: can't set owner %u:%u, mode %#o", e->name, e->uid, e->gid,
			  e->mode);
		ret = -errno;
	} else if (put_back(fd, e, 0) != e->n_msgs) {
		pr_perror("queue %s: can't queue its messages", e->name);
		ret = -errno;
	}
	close(fd);
	return ret;
}

/* ---- the descriptors ---- */

static bool mqueue_match(const struct fd_desc *d)
{
	char path[64];
	struct statfs sfs;

	if (!S_ISREG(d->st.st_mode) || d->link[0] != '/')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, d->fd);
	return !statfs(path, &sfs) && sfs.f_type == MQUEUE_MAGIC;
}

static bool tree_pid(const struct files_dump_ctx *fc, pid_t pid)
{
	for (int i = 0; i < fc->nr_tree_pids; i++)
		if (fc->tree_pids[i] == pid)
			return true;
	return false;
}

/*
 * @me is queue @d->link as amber's IPC namespace names it: the same
 * inode (it is the task's) or not; its notification must not be a
 * task's of the tree, which would lose it.
 */
static int check_external(struct files_dump_ctx *fc, const struct fd_desc *d,
			  MqueueFileEntry *me)
{
	cleanup_close int fd = mq_open(d->link, O_RDONLY | O_NONBLOCK);
	struct mq_attr attr;
	struct stat st;
	int notify;

	if (fd < 0 || fstat(fd, &st) || st.st_dev != d->st.st_dev || st.st_ino != d->st.st_ino) {
		pr_err("fd %d of pid %d: POSIX message queue %s is of an IPC namespace that is "
		       "neither amber's nor the tree's own: not supported\n", d->fd, d->pid,
		       d->link);
		return -ENOTSUP;
	}
	notify = files_mq_notify_pid(fd);
	if (notify > 0 && tree_pid(fc, notify)) {
		pr_err("fd %d of pid %d: queue %s has an mq_notify() registration of pid %d: not "
		       "supported (its sigev_value can't be read back)\n", d->fd, d->pid, d->link,
		       notify);
		return -ENOTSUP;
	}
	if (notify < 0 || mq_getattr(fd, &attr))
		return notify < 0 ? notify : -errno;
	me->external = true;
	me->maxmsg = attr.mq_maxmsg;
	me->msgsize = attr.mq_msgsize;
	return 0;
}

/* The device of amber's IPC namespace's mqueue file system (a detached mount's). */
static int own_mq_dev(struct files_dump *st, dev_t *dev)
{
	cleanup_close int fs = -1;
	cleanup_close int mnt = -1;
	struct stat sb;

	if (!st->own_mq_dev) {
		fs = fsopen("mqueue", FSOPEN_CLOEXEC);
		if (fs < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
			return -errno;
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
		if (mnt < 0 || fstat(mnt, &sb))
			return -errno;
		st->own_mq_dev = sb.st_dev;
	}
	*dev = st->own_mq_dev;
	return 0;
}

/* Reads unlinked queue @d through a description of amber's, into @ge. */
static int read_ghost(const struct fd_desc *d, MqueueEntry *ge, char *name, size_t len)
{
	char path[64];
	cleanup_close int fd = -1;
	char *del;
	int notify;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, d->fd);
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("fd %d of pid %d: can't open unlinked queue %s", d->fd, d->pid, d->link);
		return -errno;
	}
	notify = files_mq_notify_pid(fd);
	if (notify > 0)
		pr_err("fd %d of pid %d: unlinked queue %s has an mq_notify() registration of "
		       "pid %d: not supported\n", d->fd, d->pid, d->link, notify);
	if (notify)
		return notify > 0 ? -ENOTSUP : notify;
	/* "/NAME (deleted)": kept for the log, a name of its own at restore. */
	del = strstr(d->link, " (deleted)");
	if (strnlen(d->link, len) < len)
		memcpy(name, d->link, strlen(d->link) + 1);
	else
		name[0] = 0;
	if (del && name[0])
		name[del - d->link] = 0;
	if (!files_mq_name_ok(name))
		memcpy(name, "/unlinked", sizeof("/unlinked"));
	ge->name = name;
	return files_mq_read(fd, ge);
}

/*
 * Queue @d was unlinked while open: its first description (file @id)
 * carries it in @me->ghost (read into @ge), the others name that one.
 */
static int dump_ghost(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t id,
		      MqueueFileEntry *me, MqueueEntry *ge, char *name, size_t len)
{
	struct files_dump *st = fc->st;
	struct dumped_mq_ghost *g;
	dev_t dev = fc->mq_dev;
	int ret = dev ? 0 : own_mq_dev(st, &dev);

	if (ret)
		return ret;
	if (d->st.st_dev != dev) {
		pr_err("fd %d of pid %d: POSIX message queue %s is of an IPC namespace that is "
		       "neither amber's nor the tree's own: not supported\n", d->fd, d->pid,
		       d->link);
		return -ENOTSUP;
	}
	me->external = !fc->mq_dev;
	me->has_ghost_id = true;
	for (int i = 0; i < st->nr_mq_ghosts; i++)
		if (st->mq_ghosts[i].dev == d->st.st_dev && st->mq_ghosts[i].ino == d->st.st_ino) {
			me->ghost_id = st->mq_ghosts[i].file_id;
			return 0;
		}
	g = realloc(st->mq_ghosts, (st->nr_mq_ghosts + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	st->mq_ghosts = g;
	ret = read_ghost(d, ge, name, len);
	if (ret)
		return ret;
	g[st->nr_mq_ghosts++] = (struct dumped_mq_ghost){ d->st.st_dev, d->st.st_ino, id };
	me->ghost_id = id;
	me->ghost = ge;
	me->maxmsg = ge->maxmsg;
	me->msgsize = ge->msgsize;
	pr_info("unlinked queue %s (fd %d of pid %d): %zu messages\n", name, d->fd, d->pid,
		ge->n_msgs);
	return 0;
}

/* A queue with a name: of the tree's own namespace, or amber's (external). */
static int dump_named(struct files_dump_ctx *fc, const struct fd_desc *d, MqueueFileEntry *me)
{
	if (!files_mq_name_ok(d->link)) {
		pr_err("fd %d of pid %d: POSIX message queue %s has no name mq_open() takes\n",
		       d->fd, d->pid, d->link);
		return -ENOTSUP;
	}
	if (fc->mq_dev && d->st.st_dev != fc->mq_dev) {
		pr_err("fd %d of pid %d: POSIX message queue %s is not of the tree's IPC "
		       "namespace: not supported\n", d->fd, d->pid, d->link);
		return -ENOTSUP;
	}
	/* The tree's own namespace: the queue is saved with it (its shape too). */
	return fc->mq_dev ? 0 : check_external(fc, d, me);
}

static int mqueue_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	MqueueFileEntry me = MQUEUE_FILE_ENTRY__INIT;
	MqueueEntry ge = MQUEUE_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	int fd = files_peekfd(d);
	char name[NAME_MAX + 2];
	FownEntry fown;
	int ret;

	if (fd < 0)
		return fd;
	ret = files_dump_fown(d, fd, &fown);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	ret = d->st.st_nlink ? dump_named(fc, d, &me) :
			       dump_ghost(fc, d, *id, &me, &ge, name, sizeof(name));
	if (ret)
		return ret;
	me.id = *id;
	me.flags = d->flags & (O_ACCMODE | O_NONBLOCK);
	me.fown = &fown;
	me.name = (char *)d->link;
	fe.type = FD_TYPES__AMBER_MQUEUE;
	fe.id = *id;
	fe.amber_mq = &me;
	pr_debug("queue %s: file %u, flags %#o%s\n", d->link, *id, me.flags,
		 me.external ? ", amber's IPC namespace" : "");
	ret = files_write_entry(fc, &fe);
	files_mq_free_msgs(&ge);
	return ret;
}

static void mqueue_dump_free(struct files_dump_ctx *fc)
{
	free(fc->st->mq_ghosts);
	fc->st->mq_ghosts = NULL;
	fc->st->nr_mq_ghosts = 0;
}

static int mqueue_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	const MqueueFileEntry *e = fe->amber_mq;
	int ret = files_check_sub(fe, e, e ? e->id : 0);

	if (!ret)
		ret = files_check_fown(fe, e->fown);
	if (ret)
		return ret;
	if (!files_mq_name_ok(e->name) || (e->flags & ~(O_ACCMODE | O_NONBLOCK)) ||
	    (e->flags & O_ACCMODE) == O_ACCMODE) {
		pr_err("files.img: queue file %u has a bad name or flags\n", fe->id);
		return -EINVAL;
	}
	if (e->external == fc->own_ipc) {
		pr_err("files.img: queue file %u (%s) is of %s IPC namespace, the dump's tree "
		       "is %s\n", fe->id, e->name, e->external ? "amber's" : "the tree's own",
		       fc->own_ipc ? "in one of its own" : "in amber's");
		return -EINVAL;
	}
	return 0;
}

static struct rmq_ghost *find_ghost(struct files_rst *fr, uint32_t id)
{
	for (int i = 0; i < fr->nr_mq_ghosts; i++)
		if (fr->mq_ghosts[i].id == id)
			return &fr->mq_ghosts[i];
	return NULL;
}

/*
 * Every description of an unlinked queue is opened before fork (shared),
 * the one carrying it first (ids in order): it must come no later.
 */
static int mqueue_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		const MqueueFileEntry *e = rf->fe->type == FD_TYPES__AMBER_MQUEUE ?
						   rf->fe->amber_mq : NULL;
		const struct rfile *carrier;
		struct rmq_ghost *g;

		if (!e || !e->has_ghost_id)
			continue;
		carrier = files_rfile(fr, e->ghost_id);
		if (!carrier || carrier->fe->type != FD_TYPES__AMBER_MQUEUE ||
		    !carrier->fe->amber_mq->ghost || carrier->fe->amber_mq->ghost_id != e->ghost_id ||
		    (e->ghost && e->ghost_id != e->id) ||
		    !files_mq_entry_ok(carrier->fe->amber_mq->ghost, "files.img")) {
			pr_err("files.img: queue file %u names unlinked queue %u, which is not "
			       "there\n", e->id, e->ghost_id);
			return -EINVAL;
		}
		rf->shared = true;
		if (!e->ghost)
			continue;
		g = realloc(fr->mq_ghosts, (fr->nr_mq_ghosts + 1) * sizeof(*g));
		if (!g)
			return -ENOMEM;
		fr->mq_ghosts = g;
		g[fr->nr_mq_ghosts++] = (struct rmq_ghost){ .id = e->id };
	}
	return 0;
}

/*
 * Unlinked queue @g made again: under its old name if free, which its
 * descriptors then show in /proc ("/NAME (deleted)"), else under one
 * of amber's.
 */
static int make_ghost(const MqueueEntry *ge, struct rmq_ghost *g)
{
	int ret;

	snprintf(g->name, sizeof(g->name), "%s", ge->name);
	ret = files_mq_make(ge, g->name);
	for (int n = 0; ret == -EEXIST && n < 100; n++) {
		snprintf(g->name, sizeof(g->name), "/amber-unlinked-%u-%d", g->id, n);
		ret = files_mq_make(ge, g->name);
	}
	if (ret)
		g->name[0] = 0;
	else
		pr_info("unlinked queue %s made as %s\n", ge->name, g->name);
	return ret;
}

int files_mq_unlink_ghosts(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; fr && i < fr->nr_mq_ghosts; i++) {
		struct rmq_ghost *g = &fr->mq_ghosts[i];

		if (g->name[0] && mq_unlink(g->name) && !ret) {
			pr_perror("can't unlink queue %s", g->name);
			ret = -errno;
		}
		g->name[0] = 0;
	}
	return ret;
}

/* amber's namespace: every description is open now (files_prepare_shared()). */
static int mqueue_late(struct files_rst_ctx *fc)
{
	return fc->own_ipc ? 0 : files_mq_unlink_ghosts(fc);
}

static void mqueue_rst_free(struct files_rst_ctx *fc)
{
	/* A restore that failed before the unlink: none is left in amber's namespace. */
	if (!fc->own_ipc)
		files_mq_unlink_ghosts(fc);
	free(fc->st->mq_ghosts);
	fc->st->mq_ghosts = NULL;
	fc->st->nr_mq_ghosts = 0;
}

static int mqueue_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	const MqueueFileEntry *e = rf->fe->amber_mq;
	struct rmq_ghost *g = e->has_ghost_id ? find_ghost(fc->st, e->ghost_id) : NULL;
	const struct rfile *carrier;
	struct mq_attr attr;
	int fd;

	if (g && !g->name[0]) {
		carrier = files_rfile(fc->st, e->ghost_id);
		fd = make_ghost(carrier->fe->amber_mq->ghost, g);
		if (fd)
			return fd;
	}
	fd = mq_open(g ? g->name : e->name, e->flags);
	if (fd < 0) {
		pr_perror("queue file %u: can't open %s", e->id, g ? g->name : e->name);
		return -errno;
	}
	if (e->external && !g && (mq_getattr(fd, &attr) || (uint64_t)attr.mq_maxmsg != e->maxmsg ||
			    (uint64_t)attr.mq_msgsize != e->msgsize)) {
		pr_err("queue %s is not the one saved (%llu messages of %llu bytes)\n", e->name,
		       (unsigned long long)e->maxmsg, (unsigned long long)e->msgsize);
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static uint32_t mqueue_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->amber_mq->flags;
}

const struct files_type files_mqueue_type = {
	.type = FD_TYPES__AMBER_MQUEUE,
	.name = "POSIX message queue",
	.match = mqueue_match,
	.dump = mqueue_dump,
	.check = mqueue_check,
	.load = mqueue_load,
	.late = mqueue_late,
	.open = mqueue_open,
	.flags = mqueue_flags,
	.dump_free = mqueue_dump_free,
	.rst_free = mqueue_rst_free,
};
