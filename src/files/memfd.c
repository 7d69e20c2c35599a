// SPDX-License-Identifier: MIT
/*
 * memfds, as CRIU saves them: each open description (an fd, or the file
 * of a memfd mapping) is a memfd_file_entry in files.img pointing to its
 * inode; each inode is saved once, as a memfd_inode_entry in memfd.img
 * (name, owner, size, seals) with its contents in the shared-memory page
 * format: pagemap-shmem-<shmid>.img plus a pages file, one run per data
 * extent, each run checksummed.
 *
 * Restore: restore/ makes each inode a shared memory object (through
 * files_memfd_at()) before fork; a memfd file is a new description of it,
 * opened through /proc (files_rst_ctx.memfd_fd() gives its fd).
 */
#define LOG_PREFIX "memfd: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/csum.h"
#include "fdinfo.pb-c.h"
#include "files/files_internal.h"
#include "image/magic.h"
#include "base/log.h"
#include "memfd.pb-c.h"
#include "pagemap.pb-c.h"
#include "base/util.h"
#include "mem/xfer.h"

#define MEMFD_PREFIX  "/memfd:"
#define MEMFD_DELETED " (deleted)"
#define MEMFD_CHUNK   (2UL << 20) /* one pagemap run at most */

bool files_is_memfd(const char *path)
{
	return !strncmp(path, MEMFD_PREFIX, strlen(MEMFD_PREFIX));
}

/*
 * The contents, skipping holes; a partial last page is saved zero-padded.
 * Through the dump's page transfer, so a page server gets them too.
 */
static int dump_memfd_data(struct files_dump_ctx *fc, int fd, uint32_t shmid, uint64_t size)
{
	cleanup_free uint8_t *buf = malloc(MEMFD_CHUNK);
	struct xfer *x = NULL;
	off_t data, hole;
	int ret = -EIO;

	if (!buf || xfer_open(fc->xt, XFER_SHMEM, shmid, &x))
		goto out;
	for (data = 0; data < (off_t)size; data = hole) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no more data */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			goto out;
		for (off_t off = data; off < hole; off += MEMFD_CHUNK) {
			size_t len = min((uint64_t)(hole - off), (uint64_t)MEMFD_CHUNK);
			size_t plen = PAGE_ALIGN(len);

			memset(buf + len, 0, plen - len);
			if (pread_full(fd, buf, len, off)) {
				pr_err("memfd %u changed size while dumped\n", shmid);
				goto out;
			}
			if (xfer_add_buf(x, off, plen / PAGE_SIZE, buf))
				goto out;
		}
	}
	ret = 0;
out:
	if (xfer_close(x))
		ret = -EIO;
	return ret;
}

static int dump_memfd_inode(struct files_dump_ctx *fc, const char *path, const char *proc_path,
			    const struct stat *st, uint32_t inode_id)
{
	struct files_dump *fdd = fc->st;
	MemfdInodeEntry mie = MEMFD_INODE_ENTRY__INIT;
	cleanup_close int fd = open(proc_path, O_RDONLY | O_CLOEXEC);
	char name[PATH_MAX];
	size_t len;
	int seals, ret;

	if (fd < 0) {
		pr_perror("can't open memfd %s", proc_path);
		return -errno;
	}
	if (st->st_blksize != PAGE_SIZE) {
		/* MFD_HUGETLB: restoring it needs hugetlb_flag and huge pages. */
		pr_err("memfd %s has %ld-byte blocks (hugetlb): not supported yet\n", path,
		       (long)st->st_blksize);
		return -ENOTSUP;
	}
	if (st->st_ino > UINT32_MAX) {
		pr_err("memfd %s: inode %llu does not fit the image's shmid\n", path,
		       (unsigned long long)st->st_ino);
		return -EOVERFLOW;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		pr_perror("%s: %s is not a memfd", proc_path, path);
		return -errno;
	}
	snprintf(name, sizeof(name), "%s", path + strlen(MEMFD_PREFIX));
	len = strlen(name);
	if (len >= strlen(MEMFD_DELETED) && !strcmp(name + len - strlen(MEMFD_DELETED), MEMFD_DELETED))
		name[len - strlen(MEMFD_DELETED)] = '\0';
	mie.name = name;
	mie.uid = st->st_uid;
	mie.gid = st->st_gid;
	mie.size = st->st_size;
	mie.shmid = st->st_ino;
	mie.seals = seals;
	mie.inode_id = inode_id;
	ret = dump_memfd_data(fc, fd, mie.shmid, mie.size);
	if (!ret)
		ret = files_get_img(fc, &fdd->memfd_inodes, IMG_MEMFD_INODE);
	if (!ret)
		ret = img_write_msg(fdd->memfd_inodes, &mie.base);
	if (!ret)
		pr_info("memfd %s: %llu bytes, seals %#x\n", name, (unsigned long long)mie.size,
			seals);
	return ret;
}

/* The id of the inode's memfd_inode_entry, saving the inode the first time. */
static int memfd_inode_id(struct files_dump_ctx *fc, const char *path, const char *proc_path,
			  const struct stat *st, uint32_t *inode_id)
{
	struct files_dump *fdd = fc->st;
	struct dumped_memfd *n;
	int ret;

	for (int i = 0; i < fdd->nr_memfds; i++) {
		if (fdd->memfds[i].dev == st->st_dev && fdd->memfds[i].ino == st->st_ino) {
			*inode_id = fdd->memfds[i].inode_id;
			return 0;
		}
	}
	n = xrealloc_array(fdd->memfds, fdd->nr_memfds + 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	fdd->memfds = n;
	*inode_id = files_new_id(fc);
	ret = dump_memfd_inode(fc, path, proc_path, st, *inode_id);
	if (ret)
		return ret;
	n[fdd->nr_memfds++] = (struct dumped_memfd){ st->st_dev, st->st_ino, *inode_id };
	return 0;
}

int files_dump_memfd(struct files_dump_ctx *fc, const char *path, const char *proc_path,
		     const struct stat *st, uint32_t flags, uint64_t pos, uint32_t *id)
{
	MemfdFileEntry mfe = MEMFD_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	int ret = memfd_inode_id(fc, path, proc_path, st, &mfe.inode_id);

	if (ret)
		return ret;
	*id = files_new_id(fc);
	mfe.id = *id;
	mfe.flags = flags;
	mfe.pos = pos;
	mfe.fown = &fown;
	fe.type = FD_TYPES__MEMFD;
	fe.id = *id;
	fe.memfd = &mfe;
	return files_write_entry(fc, &fe);
}

static bool memfd_match(const struct fd_desc *d)
{
	return files_is_memfd(d->link) && S_ISREG(d->st.st_mode);
}

static int memfd_dump(struct files_dump_ctx *fc, const struct fd_desc *d, uint32_t *id)
{
	char proc_path[64];

	snprintf(proc_path, sizeof(proc_path), "/proc/%d/fd/%d", d->pid, d->fd);
	return files_dump_memfd(fc, d->link, proc_path, &d->st, d->flags, d->pos, id);
}

static int memfd_dump_fini(struct files_dump_ctx *fc)
{
	int ret = img_close(fc->st->memfd_inodes);

	fc->st->memfd_inodes = NULL;
	return ret;
}

static void memfd_dump_free(struct files_dump_ctx *fc)
{
	img_close(fc->st->memfd_inodes);
	free(fc->st->memfds);
}

/* ---- restore ---- */

static MemfdInodeEntry *memfd_inode(struct files_rst *fr, uint64_t inode_id)
{
	for (int i = 0; i < fr->nr_memfds; i++)
		if (fr->memfds[i]->inode_id == inode_id)
			return fr->memfds[i];
	return NULL;
}

MemfdInodeEntry *files_memfd_at(struct files_rst_ctx *fc, int i)
{
	return fc->st && i < fc->st->nr_memfds ? fc->st->memfds[i] : NULL;
}

static int memfd_check(struct files_rst_ctx *fc, const FileEntry *fe)
{
	return files_check_sub(fe, fe->memfd, fe->memfd ? fe->memfd->id : 0);
}

/* memfd.img: the memfd inodes; restore/ makes them shared memory objects. */
static int load_memfd_img(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	struct img *img = img_open_optional(fc->dirfd, IMG_MEMFD_INODE, 0);
	ProtobufCMessage *m;
	int ret;

	if (!img)
		return errno == ENOENT ? 0 : -errno;
	while ((ret = img_read_msg(img, &memfd_inode_entry__descriptor, &m)) == 1) {
		MemfdInodeEntry **n = xrealloc_array(fr->memfds, fr->nr_memfds + 1, sizeof(*n));

		if (!n) {
			protobuf_c_message_free_unpacked(m, NULL);
			ret = -ENOMEM;
			break;
		}
		fr->memfds = n;
		n[fr->nr_memfds++] = (MemfdInodeEntry *)m;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

static int memfd_load(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;
	int ret = load_memfd_img(fc);

	for (int i = 0; !ret && i < fr->nr_files; i++) {
		FileEntry *fe = fr->files[i].fe;

		if (fe->type == FD_TYPES__MEMFD && !memfd_inode(fr, fe->memfd->inode_id)) {
			pr_err("files.img: memfd %u has no inode %u in memfd.img\n", fe->id,
			       fe->memfd->inode_id);
			ret = -EINVAL;
		}
	}
	return ret;
}

/*
 * A new description of a restored memfd (restore/ made the inode):
 * opened through /proc, like CRIU, so it has its own flags and position.
 */
int files_open_memfd(struct files_rst_ctx *fc, struct rfile *rf, uint32_t flags, uint64_t pos)
{
	MemfdFileEntry *mfe = rf->fe->memfd;
	MemfdInodeEntry *mie = memfd_inode(fc->st, mfe->inode_id);
	char path[64];
	int fd = -1;

	if (mie && fc->memfd_fd)
		fd = fc->memfd_fd(fc->memfd_arg, mie);
	if (fd < 0) {
		pr_err("memfd %u was not prepared\n", mfe->id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd = open(path, files_open_flags(flags));
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

static int memfd_open(struct files_rst_ctx *fc, struct rfile *rf)
{
	return files_open_memfd(fc, rf, rf->fe->memfd->flags, rf->fe->memfd->pos);
}

static uint32_t memfd_flags(struct files_rst *fr, const FileEntry *fe)
{
	return fe->memfd->flags;
}

static void memfd_rst_free(struct files_rst_ctx *fc)
{
	struct files_rst *fr = fc->st;

	for (int i = 0; i < fr->nr_memfds; i++)
		protobuf_c_message_free_unpacked(&fr->memfds[i]->base, NULL);
	free(fr->memfds);
}

const struct files_type files_memfd_type = {
	.type = FD_TYPES__MEMFD,
	.name = "memfd",
	.match = memfd_match,
	.dump = memfd_dump,
	.dump_fini = memfd_dump_fini,
	.dump_free = memfd_dump_free,
	.check = memfd_check,
	.load = memfd_load,
	.open = memfd_open,
	.flags = memfd_flags,
	.rst_free = memfd_rst_free,
};
