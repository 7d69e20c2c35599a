// SPDX-License-Identifier: MIT
#define LOG_PREFIX "image: "
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image.h"
#include "image/magic.h"
#include "image/sums.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"

#define IMG_BUF_SIZE (64u << 10)

struct img_desc {
	const char *pattern;
	uint32_t magic;
	uint32_t head; /* IMG_COMMON_MAGIC, or 0 when the image has none */
	bool raw;      /* no magic and no entries: pages-N.img */
};

#define IMG_ENTRY(t, pat, m) [IMG_##t] = { pat, m##_MAGIC, IMG_COMMON_MAGIC, false }

static const struct img_desc img_descs[IMG_NR_TYPES] = {
	/* CRIU's reader wants the inventory's own magic only. */
	[IMG_INVENTORY] = { "inventory.img", INVENTORY_MAGIC, 0, false },
	IMG_ENTRY(PSTREE, "pstree.img", PSTREE),
	IMG_ENTRY(CORE, "core-%lu.img", CORE),
	IMG_ENTRY(IDS, "ids-%lu.img", IDS),
	IMG_ENTRY(MM, "mm-%lu.img", MM),
	IMG_ENTRY(PAGEMAP, "pagemap-%lu.img", PAGEMAP),
	[IMG_PAGES] = { "pages-%lu.img", RAW_IMAGE_MAGIC, 0, true },
	IMG_ENTRY(SHMEM_PAGEMAP, "pagemap-shmem-%lu.img", PAGEMAP),
	IMG_ENTRY(SENT_PAGEMAP, "sent-pagemap-%lu.img", PAGEMAP),
	IMG_ENTRY(FDINFO, "fdinfo-%lu.img", FDINFO),
	IMG_ENTRY(FILES, "files.img", FILES),
	IMG_ENTRY(PIPES_DATA, "pipes-data.img", PIPES_DATA),
	IMG_ENTRY(FIFO_DATA, "fifo-data.img", FIFO_DATA),
	IMG_ENTRY(SK_QUEUES, "sk-queues.img", SK_QUEUES),
	IMG_ENTRY(FS, "fs-%lu.img", FS),
	IMG_ENTRY(CREDS, "creds-%lu.img", CREDS),
	IMG_ENTRY(SIGACT, "sigacts-%lu.img", SIGACT),
	IMG_ENTRY(GHOST_FILE, "ghost-file-%lx.img", GHOST_FILE),
	IMG_ENTRY(REMAP_FPATH, "remap-fpath.img", REMAP_FPATH),
	IMG_ENTRY(TTY_INFO, "tty-info.img", TTY_INFO),
	IMG_ENTRY(TTY_DATA, "tty-data.img", TTY_DATA),
	IMG_ENTRY(MEMFD_INODE, "memfd.img", MEMFD_INODE),
	IMG_ENTRY(SECCOMP, "seccomp.img", SECCOMP),
	IMG_ENTRY(UTSNS, "utsns-%lu.img", UTSNS),
	IMG_ENTRY(IPC_VAR, "ipcns-var-%lu.img", IPC_VAR),
	IMG_ENTRY(IPCNS_SHM, "ipcns-shm-%lu.img", IPCNS_SHM),
	IMG_ENTRY(IPCNS_MSG, "ipcns-msg-%lu.img", IPCNS_MSG),
	IMG_ENTRY(IPCNS_SEM, "ipcns-sem-%lu.img", IPCNS_SEM),
	IMG_ENTRY(IPCNS_MQUEUE, "ipcns-mqueue-%lu.img", IPCNS_MQUEUE),
	IMG_ENTRY(NETDEV, "netdev-%lu.img", NETDEV),
	IMG_ENTRY(NETNS, "netns-%lu.img", NETNS),
	IMG_ENTRY(FILE_LOCKS, "filelocks.img", FILE_LOCKS),
	IMG_ENTRY(TCP_STREAM, "tcp-stream-%lx.img", TCP_STREAM),
	IMG_ENTRY(MNTS, "mountpoints-%lu.img", MNTS),
	IMG_ENTRY(CGROUP, "cgroup.img", CGROUP),
	IMG_ENTRY(TIMENS, "timens-%lu.img", TIMENS),
	IMG_ENTRY(USERNS, "userns-%lu.img", USERNS),
	[IMG_TMPFS_DEV] = { "tmpfs-dev-%lu.tar.gz.img", RAW_IMAGE_MAGIC, 0, true },
	[IMG_STATS_DUMP] = { "stats-dump", STATS_MAGIC, IMG_SERVICE_MAGIC, false },
	[IMG_STATS_RESTORE] = { "stats-restore", STATS_MAGIC, IMG_SERVICE_MAGIC, false },
	[IMG_IFADDR] = { "ifaddr-%lu.img", RAW_IMAGE_MAGIC, 0, true },
	[IMG_ROUTE] = { "route-%lu.img", RAW_IMAGE_MAGIC, 0, true },
	[IMG_ROUTE6] = { "route6-%lu.img", RAW_IMAGE_MAGIC, 0, true },
};

const char *img_type_name(enum img_type type)
{
	return img_descs[type].pattern;
}

void img_name(enum img_type type, unsigned long id, char *buf, size_t len)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(buf, len, img_descs[type].pattern, id);
#pragma GCC diagnostic pop
}

static struct img *img_alloc(enum img_type type, unsigned long id, bool write)
{
	struct img *img = xzalloc(sizeof(*img));

	if (!img)
		return NULL;
	img->type = type;
	img->writing = write;
	img->fd = -1;
	img_name(type, id, img->name, sizeof(img->name));
	if (!img_descs[type].raw) {
		img->buf = malloc(IMG_BUF_SIZE);
		if (!img->buf) {
			free(img);
			return NULL;
		}
	}
	return img;
}

static void img_free(struct img *img)
{
	if (img->fd >= 0)
		close(img->fd);
	free(img->buf);
	free(img);
}

static int img_flush(struct img *img)
{
	int ret;

	if (!img->buf_used)
		return 0;
	ret = write_full(img->fd, img->buf, img->buf_used);
	if (ret) {
		pr_err("write %s: %s\n", img->name, strerror(-ret));
		img->sums = NULL; /* the file is not what was put */
	}
	img->buf_used = 0;
	return ret;
}

static int img_put(struct img *img, const void *data, size_t len)
{
	if (fault_injected("image-enospc")) {
		img->sums = NULL;
		return -ENOSPC; /* a full disk, as a write would say it */
	}
	if (img->sums)
		img_sum_update(&img->sum, data, len);
	if (!img->buf || len > IMG_BUF_SIZE) {
		int ret = img_flush(img);

		if (!ret)
			ret = write_full(img->fd, data, len);
		if (ret) {
			pr_err("write %s: %s\n", img->name, strerror(-ret));
			img->sums = NULL;
		}
		return ret;
	}
	if (img->buf_used + len > IMG_BUF_SIZE) {
		int ret = img_flush(img);

		if (ret)
			return ret;
	}
	memcpy(img->buf + img->buf_used, data, len);
	img->buf_used += len;
	return 0;
}

/*
 * Open image file @name in @dirfd, refusing what a hostile image directory
 * could plant: a symlink (O_NOFOLLOW), a fifo or device (O_NONBLOCK keeps
 * the open from blocking, then fstat refuses it), a hard link to a file
 * elsewhere (st_nlink > 1: a write would clobber it, a read would restore
 * it) and a file owned by someone other than the caller or root. @how is
 * O_RDONLY, O_WRONLY (created, truncated only after those checks, left
 * 0600) or O_RDWR (an existing image updated in place).
 * Returns the fd, or -errno with the reason logged.
 */
int img_file_open(int dirfd, const char *name, int how)
{
	int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | how;
	bool write = how == O_WRONLY;
	uid_t euid = geteuid();
	struct stat st;
	int fd, err;

	if (write)
		flags |= O_CREAT;
	fd = openat(dirfd, name, flags, 0600);
	if (fd < 0) {
		err = -errno;
		if (err == -ELOOP)
			pr_err("image %s is a symlink: refused\n", name);
		else if (err == -ENXIO)
			pr_err("image %s is not a regular file: refused\n", name);
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		pr_perror("can't stat image %s", name);
		goto fail;
	}
	err = -EPERM;
	if (!S_ISREG(st.st_mode)) {
		pr_err("image %s is not a regular file (mode %#o): refused\n", name,
		       (unsigned)st.st_mode & S_IFMT);
		goto fail;
	}
	if (st.st_nlink > 1) {
		pr_err("image %s has %lu hard links: refused\n", name, (unsigned long)st.st_nlink);
		goto fail;
	}
	if (st.st_uid != euid && st.st_uid != 0) {
		pr_err("image %s is owned by uid %u, not by the caller (uid %u) or root: refused\n",
		       name, (unsigned)st.st_uid, (unsigned)euid);
		goto fail;
	}
	if (write && ((st.st_size && ftruncate(fd, 0)) ||
		      ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600)))) {
		err = -errno;
		pr_perror("can't truncate image %s", name);
		goto fail;
	}
	if (fcntl(fd, F_SETFL, how)) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

static struct img *do_img_open(int dirfd, enum img_type type, bool write, unsigned long id,
			       bool optional, struct img_sums *sums, const struct img_sums *later)
{
	const struct img_desc *d = &img_descs[type];
	struct img *img = img_alloc(type, id, write);
	uint32_t magic[2] = { d->head, d->magic };
	size_t mlen = d->head ? sizeof(magic) : sizeof(magic[1]);
	uint32_t *want = d->head ? magic : &magic[1];
	int ret;

	if (!img)
		return NULL;
	img->fd = img_file_open(dirfd, img->name, write ? O_WRONLY : O_RDONLY);
	if (img->fd < 0) {
		int err = -img->fd;

		if (!(optional && err == ENOENT) && err != ELOOP && err != ENXIO && err != EPERM)
			pr_err("can't open image %s: %s\n", img->name, strerror(err));
		img_free(img);
		errno = err;
		return NULL;
	}
	if (d->raw)
		return img;
	if (write) {
		img->sums = sums;
		img_sum_init(&img->sum);
		if (img_put(img, want, mlen))
			goto fail;
		return img;
	}
	uint32_t got[2] = { 0, 0 };

	img->expect = img_sums_find(later, img->name);
	img_sum_init(&img->sum);
	ret = read_full(img->fd, got, mlen);
	if (!ret && img->expect)
		img_sum_update(&img->sum, got, mlen);
	if (ret) {
		pr_err("image %s is truncated: no magic\n", img->name);
		goto fail;
	}
	if (memcmp(got, want, mlen)) {
		pr_err("image %s has bad magic %#x (want %#x)\n", img->name, got[mlen / 4 - 1],
		       d->magic);
		goto fail;
	}
	return img;
fail:
	img_free(img);
	errno = EINVAL;
	return NULL;
}

struct img *img_open(int dirfd, enum img_type type, bool write, unsigned long id)
{
	return do_img_open(dirfd, type, write, id, false, NULL, NULL);
}

struct img *img_open_optional(int dirfd, enum img_type type, unsigned long id)
{
	return do_img_open(dirfd, type, false, id, true, NULL, NULL);
}

struct img *img_open_summed(struct img_sums *sums, int dirfd, enum img_type type,
			    unsigned long id)
{
	return do_img_open(dirfd, type, true, id, false, sums, NULL);
}

struct img *img_open_expecting(const struct img_sums *later, int dirfd, enum img_type type,
			       unsigned long id)
{
	return do_img_open(dirfd, type, false, id, false, NULL, later);
}

static int cmp_sum_key(const void *key, const void *e)
{
	return strcmp(key, ((const struct img_sum *)e)->name);
}

const struct img_sum *img_sums_find(const struct img_sums *s, const char *name)
{
	return s && s->nr ? bsearch(name, s->v, s->nr, sizeof(*s->v), cmp_sum_key) : NULL;
}

void img_sums_free(struct img_sums *s)
{
	free(s->v);
	*s = (struct img_sums){};
}

/* @img's checksum into its list; false only if the list could not grow (amber.sums then reads it back). */
static bool record_sum(struct img *img)
{
	struct img_sums *s = img->sums;

	if (s->nr == s->cap) {
		int cap = s->cap ? 2 * s->cap : 256;
		struct img_sum *v = xrealloc_array(s->v, cap, sizeof(*v));

		if (!v)
			return false;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->nr] = (struct img_sum){ .hash = img_sum_end(&img->sum),
					  .size = img->sum.size };
	memcpy(s->v[s->nr].name, img->name, sizeof(img->name));
	s->nr++;
	return true;
}

/* An image read with an expected sum: the rest of it read, then the whole compared. */
static int check_expected(struct img *img)
{
	uint8_t buf[16 << 10];
	ssize_t n;

	/* Past the size the dump wrote it can only be refused: no need to read on. */
	while (img->sum.size <= img->expect->size && (n = read(img->fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr_perror("can't read image %s", img->name);
			return -EIO;
		}
		img_sum_update(&img->sum, buf, n);
	}
	if (img->sum.size != img->expect->size) {
		pr_err("image %s has %" PRIu64 " bytes, the dump wrote %" PRIu64
		       ": truncated or corrupt\n", img->name, img->sum.size, img->expect->size);
		return -EINVAL;
	}
	if (img_sum_end(&img->sum) != img->expect->hash) {
		pr_err("image %s fails its checksum: corrupt\n", img->name);
		return -EINVAL;
	}
	return 0;
}

int img_close(struct img *img)
{
	bool recorded = false;
	int ret = 0;

	if (!img)
		return 0;
	if (!img->writing && img->expect)
		ret = check_expected(img);
	if (img->writing) {
		ret = img_flush(img);
		if (!ret && img->sums)
			recorded = record_sum(img);
		/*
		 * Each image's own fsync, or its writeback started and the
		 * fsync left to img_sums_write_known() (struct img_sums). A
		 * syncfs() of the directory once was faster for 20,000 images
		 * but flushed every other writer's dirty data on that file
		 * system too, inside the freeze.
		 */
		if (!ret && recorded && img->sums->defer_sync)
			(void)sync_file_range(img->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		else if (!ret && fsync(img->fd) && errno != EINVAL && errno != EROFS)
			ret = -errno;
	}
	img_free(img);
	return ret;
}

int img_write_msg(struct img *img, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stack_buf[1024];
	uint8_t *p = len <= sizeof(stack_buf) ? stack_buf : malloc(len);
	uint32_t len32 = len;
	int ret;

	if (!p)
		return -ENOMEM;
	protobuf_c_message_pack(msg, p);
	ret = img_put(img, &len32, sizeof(len32));
	if (!ret)
		ret = img_put(img, p, len);
	if (p != stack_buf)
		free(p);
	return ret;
}

int img_write_raw(struct img *img, const void *data, size_t len)
{
	return img_put(img, data, len);
}

/*
 * Reads @len bytes: 0, 1 at a clean end of file (nothing read), -EIO on a
 * short read, -errno.
 */
static int img_get(struct img *img, void *data, size_t len)
{
	uint8_t *p = data;
	size_t got = 0;

	while (got < len) {
		size_t avail = img->buf_used - img->buf_pos;
		ssize_t n;

		if (avail) {
			size_t k = min(avail, len - got);

			memcpy(p + got, img->buf + img->buf_pos, k);
			img->buf_pos += k;
			got += k;
			continue;
		}
		if (!img->buf || len - got >= IMG_BUF_SIZE) {
			n = read(img->fd, p + got, len - got);
			if (n > 0 && img->expect)
				img_sum_update(&img->sum, p + got, n);
		} else {
			n = read(img->fd, img->buf, IMG_BUF_SIZE);
			if (n > 0) {
				if (img->expect)
					img_sum_update(&img->sum, img->buf, n);
				img->buf_used = n;
				img->buf_pos = 0;
				continue;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got ? -EIO : 1;
		got += n;
	}
	return 0;
}

int img_skip(struct img *img, uint64_t len)
{
	size_t avail = img->buf_used - img->buf_pos, k = min((uint64_t)avail, len);

	img->buf_pos += k;
	len -= k;
	/* Bytes to be checked against amber.sums are read, not seeked over. */
	while (len && img->expect) {
		uint8_t scratch[4096];
		size_t n = min(len, (uint64_t)sizeof(scratch));

		if (img_get(img, scratch, n))
			return -EIO;
		len -= n;
	}
	if (len && (len > (uint64_t)INT64_MAX || lseek(img->fd, (off_t)len, SEEK_CUR) < 0))
		return len > (uint64_t)INT64_MAX ? -EINVAL : -errno;
	return 0;
}

off_t img_tell(struct img *img)
{
	off_t at = lseek(img->fd, 0, SEEK_CUR);

	return at < 0 ? at : at - (off_t)(img->buf_used - img->buf_pos);
}

int img_read_msg(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	uint32_t len;
	uint8_t *buf;
	int ret;

	ret = img_get(img, &len, sizeof(len));
	if (ret == 1)
		return 0;
	if (ret) {
		pr_err("image %s: truncated entry header\n", img->name);
		return -EIO;
	}
	if (len > IMG_MAX_ENTRY) {
		pr_err("image %s: entry of %u bytes is corrupt\n", img->name, len);
		return -EINVAL;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	ret = img_get(img, buf, len);
	if (ret) {
		pr_err("image %s: truncated entry (%u bytes expected)\n", img->name, len);
		free(buf);
		return -EIO;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, buf);
	free(buf);
	if (!*out) {
		pr_err("image %s: corrupt %s entry\n", img->name, desc->name);
		return -EINVAL;
	}
	return 1;
}

int img_read_raw(struct img *img, void *data, size_t len)
{
	int ret = img_get(img, data, len) ? -EIO : 0;

	if (ret)
		pr_err("image %s: truncated payload (%zu bytes expected)\n", img->name, len);
	return ret;
}

int img_read_one(int dirfd, enum img_type type, unsigned long id,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	struct img *img = img_open(dirfd, type, false, id);
	int ret;

	if (!img)
		return -errno;
	ret = img_read_msg(img, desc, out);
	if (ret == 0) {
		pr_err("image %s is empty\n", img->name);
		ret = -EINVAL;
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

int img_write_one(int dirfd, enum img_type type, unsigned long id, const ProtobufCMessage *msg)
{
	struct img *img = img_open(dirfd, type, true, id);
	int ret;

	if (!img)
		return -errno;
	ret = img_write_msg(img, msg);
	if (ret) {
		img_close(img);
		return ret;
	}
	return img_close(img);
}
