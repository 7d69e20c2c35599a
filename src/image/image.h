/* SPDX-License-Identifier: MIT */
#ifndef AMBER_IMAGE_H
#define AMBER_IMAGE_H

/*
 * Image files, in CRIU's format.
 *
 * A dump is a directory of files. Each protobuf image starts with two u32
 * magics (IMG_COMMON or IMG_SERVICE, then the image's own), followed by
 * entries: u32 length, then that many bytes of one protobuf message. Some
 * images carry raw bytes right after an entry (pipe data, ghost file
 * contents); pages-N.img is raw from its first byte.
 *
 * Every image type has one row in a table (image.c): its name pattern and
 * magic. Images are opened by type and id, never by hand-built paths, and
 * are created 0600 so only their owner can read them.
 */
#include <stdbool.h>
#include <sys/types.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "image/sums.h"

enum img_type {
	IMG_INVENTORY,
	IMG_PSTREE,
	IMG_CORE,
	IMG_IDS,
	IMG_MM,
	IMG_PAGEMAP,
	IMG_PAGES,
	IMG_SHMEM_PAGEMAP,
	/*
	 * amber's copy of a task pagemap it sent to a page server (pages_id 0:
	 * its pages are over there), kept so the next incremental dump
	 * knows what this image holds; a restore never reads it.
	 */
	IMG_SENT_PAGEMAP,
	IMG_FDINFO,
	IMG_FILES,
	IMG_PIPES_DATA,
	IMG_FIFO_DATA,
	IMG_SK_QUEUES,
	IMG_FS,
	IMG_CREDS,
	IMG_SIGACT,
	IMG_GHOST_FILE,
	IMG_REMAP_FPATH,
	IMG_TTY_INFO,
	IMG_TTY_DATA,
	IMG_MEMFD_INODE,
	IMG_SECCOMP,
	IMG_UTSNS,
	IMG_IPC_VAR,
	IMG_IPCNS_SHM,
	IMG_IPCNS_MSG,
	IMG_IPCNS_SEM,
	IMG_IPCNS_MQUEUE,
	IMG_NETDEV,
	IMG_NETNS,
	IMG_FILE_LOCKS,
	IMG_TCP_STREAM,
	IMG_MNTS,
	IMG_CGROUP,
	IMG_TIMENS,
	IMG_USERNS,
	IMG_TMPFS_DEV, /* raw: a tar.gz */
	/* Service files in the work directory: what a dump or restore took. */
	IMG_STATS_DUMP,
	IMG_STATS_RESTORE,
	IMG_IFADDR,    /* raw: `ip addr save` (net/rtnl.h) */
	IMG_ROUTE,     /* raw: `ip -4 route save` */
	IMG_ROUTE6,    /* raw: `ip -6 route save` */
	IMG_NR_TYPES,
};

/*
 * Checksums of images taken as they were written (img_open_summed()), so
 * amber.sums need not read them back: a dump of 10,000 connections writes
 * 20,000 tcp-stream images.
 */
struct img_sum {
	char name[64];
	uint64_t hash, size;
};
struct img_sums {
	struct img_sum *v;
	int nr, cap;
	/*
	 * img_close() of an image recorded here only starts its writeback,
	 * and img_sums_write_known() fsyncs them all at the end: on a
	 * journaling file system one commit covers the lot, where an fsync
	 * per image at its close committed once per image.
	 */
	bool defer_sync;
};
void img_sums_free(struct img_sums *s);
/* @name's entry in @s, sorted by name (img_sums_check_but()), or NULL. */
const struct img_sum *img_sums_find(const struct img_sums *s, const char *name);

struct img {
	int fd;
	enum img_type type;
	bool writing;
	char name[64];
	struct img_sums *sums; /* where img_close() records the sum and size, or NULL */
	struct img_sum_ctx sum; /* amber.sums' checksum of what was written, or read */
	const struct img_sum *expect; /* reading: checked against sum at img_close() */
	/*
	 * Entries are small, syscalls are not: writes gather in buf (buf_used
	 * bytes), reads are served from buf[buf_pos, buf_used).
	 */
	size_t buf_used, buf_pos;
	uint8_t *buf;
};

/* Max size of one protobuf entry; a larger length field means corruption. */
#define IMG_MAX_ENTRY (64u << 20)

const char *img_type_name(enum img_type type);

/*
 * Open image @type (with @id filling its name pattern, if it has one) in
 * @dirfd. Writing creates it 0600 and writes the magics; reading checks
 * them and fails with a message naming the file. NULL on failure, errno set.
 */
/*
 * Open image file @name safely (no symlink, fifo, hard link or foreign
 * owner); @how: O_RDONLY, O_WRONLY (create, truncate, 0600) or O_RDWR.
 * The fd, or -errno.
 */
int img_file_open(int dirfd, const char *name, int how);
struct img *img_open(int dirfd, enum img_type type, bool write, unsigned long id);
/*
 * img_open() for writing, its checksum recorded in @sums at img_close()
 * (@sums NULL: a plain img_open()). Only for an image written once from
 * its start through img_write_msg()/img_write_raw(), never updated after.
 */
struct img *img_open_summed(struct img_sums *sums, int dirfd, enum img_type type,
			    unsigned long id);
/* Like img_open for reading, but a missing file is not an error: NULL, errno ENOENT. */
struct img *img_open_optional(int dirfd, enum img_type type, unsigned long id);
/*
 * Opens an image for reading, summing every byte read; if @later
 * (img_sums_check_but()) has its expected sum, img_close() reads the rest
 * and fails, naming the image, unless the whole file matches it.
 */
struct img *img_open_expecting(const struct img_sums *later, int dirfd, enum img_type type,
			       unsigned long id);
int img_close(struct img *img);

int img_write_msg(struct img *img, const ProtobufCMessage *msg);
int img_write_raw(struct img *img, const void *data, size_t len);
/* 1: one message read into *out (free with protobuf_c_message_free_unpacked); 0: EOF. */
int img_read_msg(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
int img_read_raw(struct img *img, void *data, size_t len);
/* The file offset of the next byte img_read_*() returns (reads are buffered). */
/* Moves past @len bytes of a raw payload being read (no check against the size). */
int img_skip(struct img *img, uint64_t len);
off_t img_tell(struct img *img);
/* Reads exactly one message, failing on EOF. */
int img_read_one(int dirfd, enum img_type type, unsigned long id,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
int img_write_one(int dirfd, enum img_type type, unsigned long id, const ProtobufCMessage *msg);

/* The file name of image @type/@id into buf. */
void img_name(enum img_type type, unsigned long id, char *buf, size_t len);

#endif
