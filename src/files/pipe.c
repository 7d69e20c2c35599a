// SPDX-License-Identifier: MIT
/*
 * Pipes and FIFOs, with the data in flight: peeked with tee() at dump
 * (pipes-data.img, fifo-data.img, one entry per pipe inode), written back
 * before the tree is forked.
 *
 * Restore: each pipe is made once (rpipe) and its two ends handed to the
 * pipe files that had them; a further description of the same end is the
 * pipe reopened through /proc. A pipe the caller names with --inherit-fd
 * (runc and podman: the container's stdio, whose far end was the old
 * conmon's) is not made: every file of it gets a dup of the caller's fd,
 * and its saved data, written for the old reader, is dropped. A FIFO gets
 * a guard fd (O_RDWR, so opening never blocks) that holds its data; each
 * FIFO file is reopened through it. In a tree with mounts of its own the
 * guards are made by its root once it is in them (files_open_deferred()),
 * before it forks: every task inherits them.
 */
#define LOG_PREFIX "pipe: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amber.h"
#include "base/log.h"
#include "base/util.h"
#include "fdinfo.pb-c.h"
#include "fifo.pb-c.h"
#include "files/files_internal.h"
#include "image/image.h"
#include "pipe-data.pb-c.h"
#include "pipe.pb-c.h"
#include "regfile.pb-c.h"

/* ---- dump ---- */

static bool mark_done(uint64_t **arr, int *nr, uint64_t ino, int *err)
{
	uint64_t *n;

	for (int i = 0; i < *nr; i++)
		if ((*arr)[i] == ino)
			return true;
	n = xrealloc_array(*arr, *nr + 1, sizeof(*n));
	if (!n) {
		*err = -ENOMEM;
		return true;
	}
	*arr = n;
	n[(*nr)++] = ino;
	return false;
}

/* Copies what is queued in the pipe of @proc_path without consuming it. */
static int peek_pipe(const char *proc_path, int *size, uint8_t **data, int *len)
{
	cleanup_close int rfd = -1, tmp_r = -1, tmp_w = -1;
	int avail = 0, tmp[2];
	ssize_t n;

	/* A new read+write description of the same pipe: never blocks. */
	rfd = open(proc_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0) {
		struct stat st;
		int err = errno;

		/* A pipe inode is its creator's, 0600: one made by root before a setuid, say. */
		if (err == EACCES && !stat(proc_path, &st))
			pr_err("can't reopen pipe %s: it is uid %u's and the caller is uid %u\n",
			       proc_path, (unsigned)st.st_uid, (unsigned)geteuid());
		else
			pr_err("can't reopen pipe %s: %s\n", proc_path, strerror(err));
		return -err;
	}
	*size = fcntl(rfd, F_GETPIPE_SZ);
	if (*size < 0 || ioctl(rfd, FIONREAD, &avail)) {
		pr_perror("can't size pipe %s", proc_path);
		return -errno;
	}
	*len = avail;
	*data = NULL;
	if (!avail)
		return 0;
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	tmp_r = tmp[0];
	tmp_w = tmp[1];
	if (fcntl(tmp_w, F_SETPIPE_SZ, *size) < 0) {
		pr_perror("can't grow a pipe to %d bytes", *size);
		return -errno;
	}
	n = tee(rfd, tmp_w, avail, SPLICE_F_NONBLOCK);
	if (n != avail) {
		pr_err("pipe %s: tee copied %zd of %d bytes%s%s\n", proc_path, n, avail,
		       n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		return -EIO;
	}
	*data = malloc(avail);
	if (!*data)
		return -ENOMEM;
	if (read_full(tmp_r, *data, avail)) {
		free(*data);
		*data = NULL;
		return -EIO;
	}
	return 0;
}

static int dump_pipe_data(struct files_dump_ctx *fc, struct img **img, enum img_type type,
			  const struct fd_desc *d)
{
	PipeDataEntry pde = PIPE_DATA_ENTRY__INIT;
	char proc_path[64];
	cleanup_free uint8_t *data = NULL;
	int size = 0, len = 0, ret;

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	ret = peek_pipe(proc_path, &size, &data, &len);
	if (!ret)
		ret = files_get_img(fc, img, type);
	if (ret)
		return ret;
	pde.pipe_id = d->st.st_ino;
	pde.bytes = len;
	pde.has_size = true;
	pde.size = size;
	ret = img_write_msg(*img, &pde.base);
	if (!ret && len)
		ret = img_write_raw(*img, data, len);
	pr_debug("pipe %u: %d bytes queued, size %d\n", pde.pipe_id, len, size);
	return ret;
}

static int pipe_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = fc->st;
	PipeEntry pe = PIPE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	int ret = 0;

	if (!mark_done(&fd->pipes_done, &fd->nr_pipes_done, d->st.st_ino, &ret))
		ret = dump_pipe_data(fc, &fd->pipes_data, IMG_PIPES_DATA, d);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	pe.id = *id;
	pe.pipe_id = d->st.st_ino;
	pe.flags = d->flags;
	pe.fown = &fown;
	fe.type = FD_TYPES__PIPE;
	fe.id = *id;
	fe.pipe = &pe;
	return files_write_entry(fc, &fe);
}

static int fifo_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = fc->st;
	FifoEntry fi = FIFO_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	char proc_path[64];
	uint32_t regf_id;
	int ret = 0;

	if (!mark_done(&fd->fifos_done, &fd->nr_fifos_done, d->st.st_ino, &ret))
		ret = dump_pipe_data(fc, &fd->fifo_data, IMG_FIFO_DATA, d);
	if (ret)
		return ret;
	if (d->st.st_nlink == 0) {
		pr_err("fd %d of pid %d: unlinked FIFO %s is not supported yet\n", d->fd, d->pid,
		       d->link);
		return -ENOTSUP;
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	ret = files_dump_reg_path(fc, d->link, proc_path, &d->st, d->flags, 0, d->mnt_id,
				  &regf_id);
	if (ret)
		return ret;
	*id = files_new_id(fc);
	fi.id = *id;
	fi.pipe_id = d->st.st_ino;
	fi.has_regf_id = true;
	fi.regf_id = regf_id;
	fe.type = FD_TYPES__FIFO;
	fe.id = *id;
	fe.fifo = &fi;
	return files_write_entry(fc, &fe);
}

static bool pipe_match(const struct fd_desc *d)
{
	return S_ISFIFO(d->st.st_mode) && !strncmp(d->link, "pipe:", 5);
}

static bool fifo_match(const struct fd_desc *d)
{
	return S_ISFIFO(d->st.st_mode) && strncmp(d->link, "pipe:", 5);
}

static int pipe_dump_fini(struct files_dump_ctx *fc)
{
	int ret = img_close(fc->st->pipes_data), r = img_close(fc->st->fifo_data);

	fc->st->pipes_data = fc->st->fifo_data = NULL;
	return ret ? ret : r;
}

static void pipe_dump_free(struct files_dump_ctx *fc)
{
	img_close(fc->st->pipes_data);
	img_close(fc->st->fifo_data);
	free(fc->st->pipes_done);
	free(fc->st->fifos_done);
}

/* ---- restore: load ---- */

static int pipe_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	return files_check_sub(fe, fe->pipe, fe->pipe ? fe->pipe->id : 0);
}

static int fifo_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	bool ok = fe->fifo && fe->fifo->has_regf_id;

	return files_check_sub(fe, ok, ok ? fe->fifo->id : 0);
}

static bool has_pipe(struct files_rst *fr, uint32_t pipe_id, FdTypes type)
{
	for (int i = 0; i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == type && type == FD_TYPES__PIPE && fe->pipe->pipe_id == pipe_id)
			return true;
		if (fe->type == type && type == FD_TYPES__FIFO && fe->fifo->pipe_id == pipe_id)
			return true;
	}
	return false;
}

/* --inherit-fd: the caller's fd standing for pipe @pipe_id, or -1. */
static int inherited_fd(const struct files_rst_ctx *fc, uint32_t pipe_id)
{
	char key[32];

	snprintf(key, sizeof(key), "pipe:[%u]", pipe_id);
	for (size_t i = 0; i < fc->nr_inherit_fds; i++)
		if (!strcmp(fc->inherit_fds[i].key, key))
			return fc->inherit_fds[i].fd;
	return -1;
}

/*
 * Each --inherit-fd names a pipe by "pipe:[INO]" and is an open pipe of
 * the caller whose end fits every saved file of that pipe: a task that
 * wrote into the pipe must get a write end.
 */
static int check_inherited(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (size_t i = 0; i < fc->nr_inherit_fds; i++) {
		const struct amber_inherit_fd *in = &fc->inherit_fds[i];
		unsigned ino;
		int n = 0, acc, used = 0;
		struct stat st;

		if (fc->ext_netns_key && !strcmp(in->key, fc->ext_netns_key))
			continue; /* the network namespace's (restore/ns_net.c) */
		if (sscanf(in->key, "pipe:[%u]%n", &ino, &n) != 1 || in->key[n]) {
			pr_err("inherit_fd %s: amber knows pipe:[INO] keys and the key of an "
			       "external network namespace only\n", in->key);
			return -EOPNOTSUPP;
		}
		acc = fcntl(in->fd, F_GETFL);
		if (acc < 0 || fstat(in->fd, &st) || !S_ISFIFO(st.st_mode)) {
			pr_err("inherit_fd fd %d for %s: %s\n", in->fd, in->key,
			       acc < 0 ? "not an open fd of amber's" : "not a pipe");
			return -EBADF;
		}
		acc &= O_ACCMODE;
		for (int f = 0; f < fr->nr_files; f++) {
			FileEntry *fe = fr->files[f].fe;
			int want;

			if (fe->type != FD_TYPES__PIPE || fe->pipe->pipe_id != ino)
				continue;
			used++;
			want = fe->pipe->flags & O_ACCMODE;
			if (acc != O_RDWR && want != acc) {
				pr_err("inherit_fd fd %d for %s: a %s end, file %u was the %s end\n",
				       in->fd, in->key, acc == O_WRONLY ? "write" : "read",
				       fe->id, want == O_WRONLY ? "write" : "read");
				return -EINVAL;
			}
		}
		if (!used)
			pr_warn("inherit_fd %s: no file of the images is that pipe; fd %d unused\n",
				in->key, in->fd);
	}
	return 0;
}

static int pipe_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = files_load_data(fc, IMG_PIPES_DATA, &fr->pipe_data, &fr->nr_pipe_data);

	if (!ret)
		ret = check_inherited(fc);

	for (int i = 0; !ret && i < fr->nr_pipe_data; i++) {
		if (!has_pipe(fr, fr->pipe_data[i].id, FD_TYPES__PIPE)) {
			pr_err("pipes-data.img: data for pipe %u, which no file uses\n",
			       fr->pipe_data[i].id);
			return -EINVAL;
		}
	}
	return ret;
}

static int fifo_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = files_load_data(fc, IMG_FIFO_DATA, &fr->fifo_data, &fr->nr_fifo_data);

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;
		struct rfile *reg;

		if (fe->type != FD_TYPES__FIFO)
			continue;
		reg = files_rfile(fr, fe->fifo->regf_id);
		if (!reg || reg->fe->type != FD_TYPES__REG) {
			pr_err("files.img: FIFO %u has no path entry %u\n", fe->id,
			       fe->fifo->regf_id);
			return -EINVAL;
		}
	}
	for (int i = 0; !ret && i < fr->nr_fifo_data; i++) {
		if (!has_pipe(fr, fr->fifo_data[i].id, FD_TYPES__FIFO)) {
			pr_err("fifo-data.img: data for FIFO %u, which no file uses\n",
			       fr->fifo_data[i].id);
			return -EINVAL;
		}
	}
	return ret;
}

/* ---- restore: before fork ---- */

static struct rpipe *find_rpipe(struct files_rst *fr, uint32_t pipe_id, bool fifo)
{
	for (int i = 0; i < fr->nr_pipes; i++)
		if (fr->pipes[i].pipe_id == pipe_id && fr->pipes[i].is_fifo == fifo)
			return &fr->pipes[i];
	return NULL;
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
	*n = (struct rpipe){ .pipe_id = pipe_id, .fds = { -1, -1 }, .any = -1, .inherited = -1,
			     .is_fifo = fifo };
	return n;
}

static int make_pipe(struct files_rst_ctx *fc, uint32_t pipe_id)
{
	struct files_rst *fr = fc->st;
	struct rpipe *rp = new_rpipe(fr, pipe_id, false);
	int p[2];

	if (!rp)
		return -ENOMEM;
	rp->inherited = inherited_fd(fc, pipe_id);
	if (rp->inherited >= 0) {
		struct rdata *d = files_rdata(fr->pipe_data, fr->nr_pipe_data, pipe_id);

		pr_info("pipe %u: the caller's fd %d (inherit_fd)%s\n", pipe_id, rp->inherited,
			d && d->len ? "; its queued data was the old reader's: dropped" : "");
		return 0;
	}
	if (pipe2(p, 0)) {
		pr_perror("pipe2");
		return -errno;
	}
	rp->fds[0] = files_move_high(p[0], fc->svc_fd_base);
	rp->fds[1] = files_move_high(p[1], fc->svc_fd_base);
	rp->any = rp->fds[0];
	if (rp->fds[0] < 0 || rp->fds[1] < 0)
		return -EMFILE;
	return fill_pipe(rp->fds[1], files_rdata(fr->pipe_data, fr->nr_pipe_data, pipe_id),
			 "pipe");
}

/* The FIFO's guard: an O_RDWR fd that holds its data until the tasks open it. */
static int make_fifo(struct files_rst_ctx *fc, struct rfile *rf)
{
	struct files_rst *fr = fc->st;
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
	rp->fds[0] = files_move_high(fd, fc->svc_fd_base);
	if (rp->fds[0] < 0)
		return rp->fds[0];
	return fill_pipe(rp->fds[0], files_rdata(fr->fifo_data, fr->nr_fifo_data, rp->pipe_id),
			 "FIFO");
}

/* Gives pipe file @rf its end: the pipe's own, or a reopened one if taken. */
static int take_pipe_end(struct files_rst_ctx *fc, struct rfile *rf)
{
	struct rpipe *rp = find_rpipe(fc->st, rf->fe->pipe->pipe_id, false);
	int acc = rf->fe->pipe->flags & O_ACCMODE, end = acc == O_WRONLY;
	char path[64];
	int fd;

	if (rp->inherited >= 0) {
		fd = dup(rp->inherited);
		rf->svc_fd = fd < 0 ? -errno : files_move_high(fd, fc->svc_fd_base);
		if (rf->svc_fd < 0)
			pr_err("pipe %u: can't dup the caller's fd %d: %s\n", rp->pipe_id,
			       rp->inherited, strerror(-rf->svc_fd));
		return rf->svc_fd < 0 ? rf->svc_fd : 0;
	}
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
	rf->svc_fd = files_move_high(fd, fc->svc_fd_base);
	return rf->svc_fd < 0 ? rf->svc_fd : 0;
}

static int pipe_prepare(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__PIPE && !find_rpipe(fr, fe->pipe->pipe_id, false))
			ret = make_pipe(fc, fe->pipe->pipe_id);
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
				ret = take_pipe_end(fc, rf);
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

int files_fifo_make(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = 0;

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__FIFO && !find_rpipe(fr, fe->fifo->pipe_id, true))
			ret = make_fifo(fc, &fr->files[i]);
	}
	return ret;
}

/* A tree with mounts of its own: its FIFOs are made by its root, in them. */
static int fifo_prepare(struct files_rst_ctx *fc)
{
	return fc->defer_paths ? 0 : files_fifo_make(fc);
}

/* ---- restore: open ---- */

static uint32_t pipe_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->pipe->flags;
}

static uint32_t fifo_flags(struct files_rst *fr, const FileEntry *fe)
{
	return files_rfile(fr, fe->fifo->regf_id)->fe->reg->flags;
}

/* A FIFO end: reopened through the guard fd, which keeps open() from blocking. */
static int fifo_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	struct files_rst *fr = fc->st;
	struct rpipe *rp = find_rpipe(fr, rf->fe->fifo->pipe_id, true);
	uint32_t flags = fifo_flags(fr, rf->fe);
	char path[64];
	int fd;

	if (!rp || rp->fds[0] < 0) {
		pr_err("FIFO %u was not prepared\n", rf->fe->id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rp->fds[0]);
	fd = open(path, files_open_flags(flags) | O_NONBLOCK);
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


static void pipe_rst_free(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_pipes; i++) {
		files_close_fd(&fr->pipes[i].fds[0]);
		files_close_fd(&fr->pipes[i].fds[1]);
	}
	free(fr->pipes);
	files_free_data(fr->pipe_data, fr->nr_pipe_data);
	files_free_data(fr->fifo_data, fr->nr_fifo_data);
}

const struct files_type files_pipe_type = {
	.type = FD_TYPES__PIPE,
	.name = "pipe",
	.match = pipe_match,
	.dump = pipe_dump,
	.dump_fini = pipe_dump_fini,
	.dump_free = pipe_dump_free,
	.check = pipe_check,
	.load = pipe_load,
	.prepare = pipe_prepare,
	.flags = pipe_flags,
	.rst_free = pipe_rst_free,
};

/* Its state is the pipe type's: pipe.c frees it. */
const struct files_type files_fifo_type = {
	.type = FD_TYPES__FIFO,
	.name = "FIFO",
	.match = fifo_match,
	.dump = fifo_dump,
	.check = fifo_check,
	.load = fifo_load,
	.prepare = fifo_prepare,
	.open = fifo_open,
	.flags = fifo_flags,
};
