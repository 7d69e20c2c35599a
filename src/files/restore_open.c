// SPDX-License-Identifier: MIT
/*
 * Restore, steps 2 and 3: files_prepare_shared() creates the objects that
 * tasks share (as service fds, before the tree is forked) and
 * files_restore_task() puts one task's fds in place after fork.
 */
#define LOG_PREFIX "files: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdinfo.pb-c.h"
#include "files/files.h"
#include "files/files_internal.h"
#include "base/log.h"
#include "restore/restore.h"
#include "base/util.h"

int files_move_high(int fd, int base)
{
	int nfd;

	if (fd < 0 || fd >= base)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, base);
	if (nfd < 0)
		pr_perror("can't move fd %d above %d", fd, base);
	close(fd);
	return nfd < 0 ? -errno : nfd;
}

static uint32_t open_flags(uint32_t flags)
{
	/* O_TMPFILE is __O_TMPFILE | O_DIRECTORY: reopening the file is not opening a directory. */
	if (flags & FILES_O_TMPFILE_BIT)
		flags &= ~O_DIRECTORY;
	return (flags & ~(O_CREAT | O_EXCL | O_TRUNC | FILES_O_TMPFILE_BIT)) | O_NOCTTY | O_CLOEXEC;
}

static uint32_t file_flags(FileEntry *fe, struct files_rst *fr)
{
	switch (fe->type) {
	case FD_TYPES__REG: return fe->reg->flags;
	case FD_TYPES__PIPE: return fe->pipe->flags;
	case FD_TYPES__UNIXSK: return fe->usk->flags;
	case FD_TYPES__TTY: return fe->tty->flags;
	case FD_TYPES__MEMFD: return fe->memfd->flags;
	case FD_TYPES__FIFO: return files_rfile(fr, fe->fifo->regf_id)->fe->reg->flags;
	default: return 0;
	}
}

static struct rpipe *find_rpipe(struct files_rst *fr, uint32_t pipe_id, bool fifo)
{
	for (int i = 0; i < fr->nr_pipes; i++)
		if (fr->pipes[i].pipe_id == pipe_id && fr->pipes[i].is_fifo == fifo)
			return &fr->pipes[i];
	return NULL;
}

static int open_reg(struct rst_ctx *rc, struct rfile *rf)
{
	RegFileEntry *re = rf->fe->reg;
	char path[64];
	const char *p = re->name;
	int fd;

	if (rf->ghost_fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rf->ghost_fd);
		p = path;
	}
	/* A ghost is reopened through its /proc/self/fd link: O_NOFOLLOW would refuse it. */
	fd = open(p, open_flags(re->flags) & ~(rf->ghost_fd >= 0 ? O_NOFOLLOW : 0));
	if (fd < 0) {
		pr_perror("can't open %s (file %u)", re->name, re->id);
		return -errno;
	}
	if (re->pos && lseek(fd, re->pos, SEEK_SET) < 0 && S_ISREG(re->mode)) {
		pr_perror("can't seek %s to %llu", re->name, (unsigned long long)re->pos);
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * A new description of a restored memfd (shmem_prepare() made the inode):
 * opened through /proc, like CRIU, so it has its own flags and position.
 */
static int open_memfd(struct rst_ctx *rc, struct rfile *rf, uint32_t flags, uint64_t pos)
{
	MemfdFileEntry *mfe = rf->fe->memfd;
	MemfdInodeEntry *mie = files_memfd_inode(rc->files, mfe->inode_id);
	char path[64];
	int fd = -1;

	for (int i = 0; mie && i < rc->nr_shmems; i++)
		if (rc->shmems[i].memfd == mie)
			fd = rc->shmems[i].fd;
	if (fd < 0) {
		pr_err("memfd %u was not prepared\n", mfe->id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, open_flags(flags));
	if (fd < 0) {
		pr_perror("can't open memfd %s (file %u)", mie->name, mfe->id);
		return -errno;
	}
	if (pos && lseek(fd, pos, SEEK_SET) < 0) {
		pr_perror("can't seek memfd %s to %llu", mie->name, (unsigned long long)pos);
		close(fd);
		return -errno;
	}
	return fd;
}

/* A FIFO end: reopened through the guard fd, which keeps open() from blocking. */
static int open_fifo(struct rst_ctx *rc, struct rfile *rf)
{
	struct files_rst *fr = rc->files;
	struct rpipe *rp = find_rpipe(fr, rf->fe->fifo->pipe_id, true);
	uint32_t flags = file_flags(rf->fe, fr);
	char path[64];
	int fd;

	if (!rp || rp->fds[0] < 0) {
		pr_err("FIFO %u was not prepared\n", rf->fe->id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rp->fds[0]);
	fd = open(path, open_flags(flags) | O_NONBLOCK);
	if (fd < 0) {
		pr_perror("can't open FIFO %s", files_rfile(fr, rf->fe->fifo->regf_id)->fe->reg->name);
		return -errno;
	}
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & FILES_SETFL_MASK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

int files_open_rfile(struct rst_ctx *rc, struct rfile *rf, int *out)
{
	int fd;

	if (rf->fe->type == FD_TYPES__REG)
		fd = open_reg(rc, rf);
	else if (rf->fe->type == FD_TYPES__FIFO)
		fd = open_fifo(rc, rf);
	else if (rf->fe->type == FD_TYPES__MEMFD)
		fd = open_memfd(rc, rf, rf->fe->memfd->flags, rf->fe->memfd->pos);
	else
		fd = -EINVAL;
	if (fd < 0)
		return fd;
	*out = fd;
	return 0;
}

int files_open_reg(struct rst_ctx *rc, uint32_t id, int flags)
{
	struct rfile *rf = rc->files ? files_rfile(rc->files, id) : NULL;
	char path[64];
	const char *p;
	int fd;

	if (rf && rf->fe->type == FD_TYPES__MEMFD) /* the file of a memfd mapping */
		return open_memfd(rc, rf, flags, 0);
	if (!rf || rf->fe->type != FD_TYPES__REG) {
		pr_err("no regular file %u in files.img\n", id);
		return -ENOENT;
	}
	p = rf->fe->reg->name;
	if (rf->ghost_fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rf->ghost_fd);
		p = path;
	}
	fd = open(p, open_flags(flags));
	if (fd < 0)
		pr_perror("can't open %s (file %u)", rf->fe->reg->name, id);
	return fd < 0 ? -errno : fd;
}

static int fill_pipe(int wfd, struct rdata *d, const char *what)
{
	int fl = fcntl(wfd, F_GETFL);

	if (d && d->size && fcntl(wfd, F_SETPIPE_SZ, d->size) < 0) {
		pr_perror("%s %u: can't set size %u", what, d->id, d->size);
		return -errno;
	}
	if (!d || !d->len)
		return 0;
	/* Non-blocking: a pipe that can't hold its data is an error, not a hang. */
	if (fcntl(wfd, F_SETFL, fl | O_NONBLOCK) || write_full(wfd, d->data, d->len) ||
	    fcntl(wfd, F_SETFL, fl)) {
		pr_perror("%s %u: can't write back %u bytes", what, d->id, d->len);
		return -errno ? -errno : -EIO;
	}
	return 0;
}

static struct rpipe *new_rpipe(struct files_rst *fr, uint32_t pipe_id, bool fifo)
{
	struct rpipe *n = xrealloc_array(fr->pipes, fr->nr_pipes + 1, sizeof(*n));

	if (!n)
		return NULL;
	fr->pipes = n;
	n += fr->nr_pipes++;
	*n = (struct rpipe){ .pipe_id = pipe_id, .fds = { -1, -1 }, .any = -1, .is_fifo = fifo };
	return n;
}

static int make_pipe(struct rst_ctx *rc, uint32_t pipe_id)
{
	struct files_rst *fr = rc->files;
	struct rpipe *rp = new_rpipe(fr, pipe_id, false);
	int p[2];

	if (!rp)
		return -ENOMEM;
	if (pipe2(p, 0)) {
		pr_perror("pipe2");
		return -errno;
	}
	rp->fds[0] = files_move_high(p[0], rc->svc_fd_base);
	rp->fds[1] = files_move_high(p[1], rc->svc_fd_base);
	rp->any = rp->fds[0];
	if (rp->fds[0] < 0 || rp->fds[1] < 0)
		return -EMFILE;
	return fill_pipe(rp->fds[1], files_rdata(fr->pipe_data, fr->nr_pipe_data, pipe_id),
			 "pipe");
}

/* The FIFO's guard: an O_RDWR fd that holds its data until the tasks open it. */
static int make_fifo(struct rst_ctx *rc, struct rfile *rf)
{
	struct files_rst *fr = rc->files;
	RegFileEntry *re = files_rfile(fr, rf->fe->fifo->regf_id)->fe->reg;
	struct rpipe *rp = new_rpipe(fr, rf->fe->fifo->pipe_id, true);
	struct stat st;
	int fd;

	if (!rp)
		return -ENOMEM;
	fd = open(re->name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !mkfifo(re->name, re->has_mode ? re->mode & 07777 : 0600))
		fd = open(re->name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !S_ISFIFO(st.st_mode)) {
		pr_err("can't open FIFO %s: %s\n", re->name, fd < 0 ? strerror(errno) : "not a FIFO");
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	rp->fds[0] = files_move_high(fd, rc->svc_fd_base);
	if (rp->fds[0] < 0)
		return rp->fds[0];
	return fill_pipe(rp->fds[0], files_rdata(fr->fifo_data, fr->nr_fifo_data, rp->pipe_id),
			 "FIFO");
}

/* Gives pipe file @rf its end: the pipe's own, or a reopened one if taken. */
static int take_pipe_end(struct rst_ctx *rc, struct rfile *rf)
{
	struct rpipe *rp = find_rpipe(rc->files, rf->fe->pipe->pipe_id, false);
	int acc = rf->fe->pipe->flags & O_ACCMODE, end = acc == O_WRONLY;
	char path[64];
	int fd;

	if (acc != O_RDWR && rp->fds[end] >= 0) {
		rf->svc_fd = steal_fd(rp->fds[end]);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rp->any);
	fd = open(path, acc | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("can't reopen pipe %u", rp->pipe_id);
		return -errno;
	}
	rf->svc_fd = files_move_high(fd, rc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

static int prepare_pipes(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__PIPE && !find_rpipe(fr, fe->pipe->pipe_id, false))
			ret = make_pipe(rc, fe->pipe->pipe_id);
		else if (fe->type == FD_TYPES__FIFO && !find_rpipe(fr, fe->fifo->pipe_id, true))
			ret = make_fifo(rc, &fr->files[i]);
	}
	/* Pipe ends first, reopened extra descriptions second. */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; !ret && i < fr->nr_files; i++) {
			struct rfile *rf = &fr->files[i];
			int acc;

			if (rf->fe->type != FD_TYPES__PIPE || rf->svc_fd >= 0)
				continue;
			acc = rf->fe->pipe->flags & O_ACCMODE;
			if (pass || find_rpipe(fr, rf->fe->pipe->pipe_id, false)->fds[acc == O_WRONLY] >= 0)
				ret = take_pipe_end(rc, rf);
		}
	}
	for (int i = 0; !ret && i < fr->nr_pipes; i++) {
		struct rpipe *rp = &fr->pipes[i];

		for (int e = 0; e < 2 && !rp->is_fifo; e++) {
			if (rp->fds[e] < 0)
				continue;
			pr_warn("pipe %u: its %s end was outside the dumped tree; it stays closed\n",
				rp->pipe_id, e ? "write" : "read");
			close(steal_fd(rp->fds[e]));
		}
	}
	return ret;
}

int files_prepare_shared(struct rst_ctx *rc)
{
	struct files_rst *fr = rc->files;
	int ret;

	if (!fr)
		return -EINVAL;
	if (rc->svc_fd_base <= files_max_fd(rc)) {
		pr_err("service fds start at %d, below the tasks' fd %d\n", rc->svc_fd_base,
		       files_max_fd(rc));
		return -EINVAL;
	}
	ret = prepare_pipes(rc);
	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];

		if (rf->ghost)
			ret = files_prepare_ghost(rc, rf);
	}
	for (int i = 0; !ret && i < fr->nr_files; i++) {
		struct rfile *rf = &fr->files[i];
		int fd = -1;

		switch (rf->fe->type) {
		case FD_TYPES__UNIXSK:
			ret = files_prepare_usk(rc, rf);
			break;
		case FD_TYPES__TTY:
			ret = files_prepare_tty(rc, rf);
			break;
		case FD_TYPES__REG:
		case FD_TYPES__FIFO:
		case FD_TYPES__MEMFD:
			/* Shared by several tasks: one description, opened once. */
			if (rf->nr_tasks < 2)
				break;
			ret = files_open_rfile(rc, rf, &fd);
			if (!ret)
				rf->svc_fd = files_move_high(fd, rc->svc_fd_base);
			if (rf->svc_fd < 0)
				ret = ret ? ret : rf->svc_fd;
			break;
		default:
			break;
		}
	}
	return ret;
}

static int set_status_flags(int fd, uint32_t flags)
{
	int cur = fcntl(fd, F_GETFL), want;

	if (cur < 0)
		return -errno;
	want = (cur & ~FILES_SETFL_MASK) | (flags & FILES_SETFL_MASK);
	if (want != cur && fcntl(fd, F_SETFL, want)) {
		pr_perror("fd %d: can't set file flags %#o", fd, want);
		return -errno;
	}
	return 0;
}

/* Closes every fd below the service base that the task should not have. */
static int close_unlisted(struct rst_ctx *rc, struct rtask_fds *tf)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int *bad = NULL, nr = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), keep = 0, *n;

		if (de->d_name[0] == '.' || fd >= rc->svc_fd_base || fd == dirfd(d))
			continue;
		for (int i = 0; i < tf->nr && !keep; i++)
			keep = (int)tf->fds[i]->fd == fd;
		if (keep)
			continue;
		if (fd == log_get_fd() || fd == rc->status_fd) {
			pr_warn("fd %d (amber's log or status pipe) is below the service fds\n", fd);
			continue;
		}
		n = realloc(bad, (nr + 1) * sizeof(*bad));
		if (!n)
			break;
		bad = n;
		bad[nr++] = fd;
	}
	closedir(d);
	for (int i = 0; i < nr; i++)
		close(bad[i]);
	free(bad);
	return 0;
}

/* The fd each entry is dup'ed from: a service fd, or a fresh open above base. */
static int get_sources(struct rst_ctx *rc, struct rtask_fds *tf, int *src, bool *fresh)
{
	struct files_rst *fr = rc->files;

	for (int i = 0; i < tf->nr; i++) {
		struct rfile *rf = files_rfile(fr, tf->fds[i]->id);
		int fd = -1, ret;

		src[i] = rf->svc_fd;
		if (src[i] >= 0)
			continue;
		for (int j = 0; j < i && src[i] < 0; j++)
			if (tf->fds[j]->id == tf->fds[i]->id)
				src[i] = src[j];
		if (src[i] >= 0)
			continue;
		if (rf->fe->type != FD_TYPES__REG && rf->fe->type != FD_TYPES__FIFO &&
		    rf->fe->type != FD_TYPES__MEMFD) {
			pr_err("file %u (fd %u) was not prepared\n", rf->fe->id, tf->fds[i]->fd);
			return -EINVAL;
		}
		ret = files_open_rfile(rc, rf, &fd);
		if (ret)
			return ret;
		src[i] = files_move_high(fd, rc->svc_fd_base);
		if (src[i] < 0)
			return src[i];
		fresh[i] = true;
	}
	return 0;
}

int files_restore_task(struct rst_ctx *rc, struct rst_task *t)
{
	struct files_rst *fr = rc->files;
	struct rtask_fds *tf;
	cleanup_free int *src = NULL;
	cleanup_free bool *fresh = NULL;
	long ti = t - rc->tasks;
	int ret;

	if (!fr || ti < 0 || ti >= fr->nr_tasks)
		return -EINVAL;
	tf = &fr->tasks[ti];
	src = calloc(tf->nr + 1, sizeof(*src));
	fresh = calloc(tf->nr + 1, sizeof(*fresh));
	if (!src || !fresh)
		return -ENOMEM;
	for (int i = 0; i < tf->nr; i++)
		src[i] = -1;
	ret = get_sources(rc, tf, src, fresh);
	for (int i = 0; !ret && i < tf->nr; i++) {
		FdinfoEntry *e = tf->fds[i];
		struct rfile *rf = files_rfile(fr, e->id);

		if (dup3(src[i], e->fd, e->flags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0) {
			pr_perror("pid %d: can't put file %u at fd %u", t->pid, e->id, e->fd);
			ret = -errno;
			break;
		}
		ret = set_status_flags(e->fd, file_flags(rf->fe, fr));
	}
	for (int i = 0; i < tf->nr; i++)
		if (fresh[i])
			close(src[i]);
	if (!ret)
		ret = close_unlisted(rc, tf);
	if (!ret)
		pr_info("pid %d: %d fds restored\n", t->pid, tf->nr);
	return ret;
}
