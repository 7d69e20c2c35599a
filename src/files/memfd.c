// SPDX-License-Identifier: MIT
/*
 * memfds, as CRIU saves them: each open description (an fd, or the file
 * of a memfd mapping) is a memfd_file_entry in files.img pointing to its
 * inode; each inode is saved once, as a memfd_inode_entry in memfd.img
 * (name, owner, size, seals) with its contents in the shared-memory page
 * format: pagemap-shmem-<shmid>.img plus a pages file, one run per data
 * extent, each run checksummed.
 */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/csum.h"
#include "dump/dump.h"
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
static int dump_memfd_data(struct dump_ctx *dc, int fd, uint32_t shmid, uint64_t size)
{
	cleanup_free uint8_t *buf = malloc(MEMFD_CHUNK);
	struct xfer *x = NULL;
	off_t data, hole;
	int ret = -EIO;

	if (!buf || xfer_open(dc->xt, XFER_SHMEM, shmid, &x))
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

static int dump_memfd_inode(struct dump_ctx *dc, const char *path, const char *proc_path,
			    const struct stat *st, uint32_t inode_id)
{
	struct files_dump *fdd = dc->files;
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
	ret = dump_memfd_data(dc, fd, mie.shmid, mie.size);
	if (!ret)
		ret = files_get_img(dc, &fdd->memfd_inodes, IMG_MEMFD_INODE);
	if (!ret)
		ret = img_write_msg(fdd->memfd_inodes, &mie.base);
	if (!ret)
		pr_info("memfd %s: %llu bytes, seals %#x\n", name, (unsigned long long)mie.size,
			seals);
	return ret;
}

/* The id of the inode's memfd_inode_entry, saving the inode the first time. */
static int memfd_inode_id(struct dump_ctx *dc, const char *path, const char *proc_path,
			  const struct stat *st, uint32_t *inode_id)
{
	struct files_dump *fdd = dc->files;
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
	*inode_id = dump_new_id(dc);
	ret = dump_memfd_inode(dc, path, proc_path, st, *inode_id);
	if (ret)
		return ret;
	n[fdd->nr_memfds++] = (struct dumped_memfd){ st->st_dev, st->st_ino, *inode_id };
	return 0;
}

int files_dump_memfd(struct dump_ctx *dc, const char *path, const char *proc_path,
		     const struct stat *st, uint32_t flags, uint64_t pos, uint32_t *id)
{
	MemfdFileEntry mfe = MEMFD_FILE_ENTRY__INIT;
	FownEntry fown = FOWN_ENTRY__INIT;
	FileEntry fe = FILE_ENTRY__INIT;
	int ret = memfd_inode_id(dc, path, proc_path, st, &mfe.inode_id);

	if (ret)
		return ret;
	*id = dump_new_id(dc);
	mfe.id = *id;
	mfe.flags = flags;
	mfe.pos = pos;
	mfe.fown = &fown;
	fe.type = FD_TYPES__MEMFD;
	fe.id = *id;
	fe.memfd = &mfe;
	return files_write_entry(dc, &fe);
}
