// SPDX-License-Identifier: MIT
/*
 * Dump of regular files (with unlinked "ghost" files' contents), pipes and
 * FIFOs (with the data in flight, peeked with tee()).
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dump.h"
#include "fdinfo.pb-c.h"
#include "fifo.pb-c.h"
#include "files/files_internal.h"
#include "ghost-file.pb-c.h"
#include "image/image.h"
#include "base/log.h"
#include "pipe-data.pb-c.h"
#include "pipe.pb-c.h"
#include "regfile.pb-c.h"
#include "base/util.h"

#define DELETED_SUFFIX " (deleted)"
#define COPY_CHUNK     (1u << 20)

static int dump_ghost(struct dump_ctx *dc, uint32_t id, const char *proc_path,
		      const struct stat *st)
{
	GhostFileEntry ge = GHOST_FILE_ENTRY__INIT;
	Timeval atim = TIMEVAL__INIT, mtim = TIMEVAL__INIT;
	cleanup_close int fd = -1;
	cleanup_free char *buf = NULL;
	struct img *img;
	off_t left = st->st_size;
	int ret;

	fd = open(proc_path, O_RDONLY | O_CLOEXEC);
	buf = malloc(COPY_CHUNK);
	if (fd < 0 || !buf) {
		pr_perror("can't read unlinked file %s", proc_path);
		return fd < 0 ? -errno : -ENOMEM;
	}
	ge.uid = st->st_uid;
	ge.gid = st->st_gid;
	ge.mode = st->st_mode;
	ge.has_dev = ge.has_ino = ge.has_size = true;
	ge.dev = st->st_dev;
	ge.ino = st->st_ino;
	ge.size = st->st_size;
	atim.tv_sec = st->st_atim.tv_sec;
	atim.tv_usec = st->st_atim.tv_nsec / 1000;
	mtim.tv_sec = st->st_mtim.tv_sec;
	mtim.tv_usec = st->st_mtim.tv_nsec / 1000;
	ge.atim = &atim;
	ge.mtim = &mtim;
	img = img_open(dc->dirfd, IMG_GHOST_FILE, true, id);
	if (!img)
		return -errno;
	ret = img_write_msg(img, &ge.base);
	for (off_t off = 0; !ret && left > 0;) {
		size_t n = min((off_t)COPY_CHUNK, left);

		ret = pread_full(fd, buf, n, off);
		if (ret)
			pr_err("unlinked file %s changed size while dumped\n", proc_path);
		else
			ret = img_write_raw(img, buf, n);
		off += n;
		left -= n;
	}
	if (ret) {
		img_close(img);
		return ret;
	}
	pr_info("unlinked file %s: %lld bytes saved as ghost file %#x\n", proc_path,
		(long long)st->st_size, id);
	return img_close(img);
}

int files_dump_reg_path(struct dump_ctx *dc, const char *path, const char *proc_path,
			const struct stat *st, uint32_t flags, uint64_t pos, int mnt_id,
			uint32_t *id)
{
	RegFileEntry re = REG_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	char name[PATH_MAX];
	bool ghost = S_ISREG(st->st_mode) && st->st_nlink == 0;
	size_t len = strlen(path);
	int ret;

	if (files_is_memfd(path) && S_ISREG(st->st_mode)) /* the file of a memfd mapping */
		return files_dump_memfd(dc, path, proc_path, st, flags, pos, id);
	if (path[0] != '/') {
		pr_err("%s: file %s is outside amber's view of the file system\n", proc_path, path);
		return -ENOTSUP;
	}
	if (!ghost && st->st_nlink == 0 && !S_ISCHR(st->st_mode)) {
		pr_err("%s: unlinked %s is not a regular file: not supported yet\n", proc_path, path);
		return -ENOTSUP;
	}
	snprintf(name, sizeof(name), "%s", path);
	if (ghost && len > strlen(DELETED_SUFFIX) &&
	    !strcmp(path + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX))
		name[len - strlen(DELETED_SUFFIX)] = '\0';

	*id = dump_new_id(dc);
	re.id = *id;
	re.flags = flags;
	re.pos = pos;
	re.fown = &fown;
	re.name = name;
	re.has_mnt_id = mnt_id >= 0;
	re.mnt_id = mnt_id;
	re.has_size = re.has_mode = true;
	re.size = st->st_size;
	re.mode = st->st_mode;
	fe.type = FD_TYPES__REG;
	fe.id = *id;
	fe.reg = &re;
	if (ghost) {
		ret = dump_ghost(dc, *id, proc_path, st);
		if (ret)
			return ret;
	}
	return files_write_entry(dc, &fe);
}

int files_dump_reg(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id)
{
	char proc_path[64];

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	return files_dump_reg_path(dc, d->link, proc_path, &d->st, d->flags, d->pos, d->mnt_id,
				   id);
}

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
		pr_perror("can't reopen pipe %s", proc_path);
		return -errno;
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

static int dump_pipe_data(struct dump_ctx *dc, struct img **img, enum img_type type,
			  const struct fd_desc *d)
{
	PipeDataEntry pde = PIPE_DATA_ENTRY__INIT;
	char proc_path[64];
	cleanup_free uint8_t *data = NULL;
	int size = 0, len = 0, ret;

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	ret = peek_pipe(proc_path, &size, &data, &len);
	if (!ret)
		ret = files_get_img(dc, img, type);
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

int files_dump_pipe(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = dc->files;
	PipeEntry pe = PIPE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	int ret = 0;

	if (!mark_done(&fd->pipes_done, &fd->nr_pipes_done, d->st.st_ino, &ret))
		ret = dump_pipe_data(dc, &fd->pipes_data, IMG_PIPES_DATA, d);
	if (ret)
		return ret;
	*id = dump_new_id(dc);
	pe.id = *id;
	pe.pipe_id = d->st.st_ino;
	pe.flags = d->flags;
	pe.fown = &fown;
	fe.type = FD_TYPES__PIPE;
	fe.id = *id;
	fe.pipe = &pe;
	return files_write_entry(dc, &fe);
}

int files_dump_fifo(struct dump_ctx *dc, const struct fd_desc *d, uint32_t *id)
{
	struct files_dump *fd = dc->files;
	FifoEntry fi = FIFO_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	char proc_path[64];
	uint32_t regf_id;
	int ret = 0;

	if (!mark_done(&fd->fifos_done, &fd->nr_fifos_done, d->st.st_ino, &ret))
		ret = dump_pipe_data(dc, &fd->fifo_data, IMG_FIFO_DATA, d);
	if (ret)
		return ret;
	if (d->st.st_nlink == 0) {
		pr_err("fd %d of pid %d: unlinked FIFO %s is not supported yet\n", d->fd, d->pid,
		       d->link);
		return -ENOTSUP;
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	ret = files_dump_reg_path(dc, d->link, proc_path, &d->st, d->flags, 0, d->mnt_id,
				  &regf_id);
	if (ret)
		return ret;
	*id = dump_new_id(dc);
	fi.id = *id;
	fi.pipe_id = d->st.st_ino;
	fi.has_regf_id = true;
	fi.regf_id = regf_id;
	fe.type = FD_TYPES__FIFO;
	fe.id = *id;
	fe.fifo = &fi;
	return files_write_entry(dc, &fe);
}
