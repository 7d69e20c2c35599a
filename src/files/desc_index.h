/* SPDX-License-Identifier: MIT */
#ifndef AMBER_FILES_DESC_INDEX_H
#define AMBER_FILES_DESC_INDEX_H

/*
 * The open file descriptions dumped so far, so that the next fd sharing
 * one is found in O(log n) kcmp() calls instead of a scan of them all:
 *
 *   desc_index: open-addressing hash of (dev, ino) -> desc_bucket
 *   desc_bucket: indices into files_dump.files[] of that inode's
 *                descriptions, sorted by kcmp(KCMP_FILE)'s order
 *
 * Buckets can be large: every eventfd, epoll, timerfd or signalfd shares
 * one anonymous inode, and a file opened many times has one inode too.
 * Where kcmp() gives no order (or is missing) a bucket is scanned, with
 * the old fallback (same position and flags).
 */
#include <stdint.h>
#include <sys/types.h>

struct dumped_file;
struct fd_desc;

struct desc_bucket {
	dev_t dev;
	ino_t ino;
	int *idx; /* into the files array, sorted by kcmp order */
	int nr, cap;
};

struct desc_index {
	struct desc_bucket *b;
	size_t nr_b, used;
};

/*
 * kcmp() of dumped file @f against the file sought (KCMP_FILE's order:
 * 0 equal, 1 @f first, 2 @f after; 3 or -1: no order).
 */
typedef long desc_cmp_fn(const struct dumped_file *f, void *arg);

/*
 * The index in @files of the description of inode (@dev, @ino) that @cmp
 * calls equal; -1 if none; -2 if kcmp gave no order (then scan).
 */
int desc_index_find_by(struct desc_index *ix, const struct dumped_file *files, dev_t dev,
		       ino_t ino, desc_cmp_fn *cmp, void *arg);
/* The index in @files of the only description of inode (@dev, @ino), or -1. */
int desc_index_sole(const struct desc_index *ix, dev_t dev, ino_t ino);
/* The index in @files of the description @d's fd shares, or -1. */
int desc_index_find(struct desc_index *ix, const struct dumped_file *files,
		    const struct fd_desc *d);
/* Adds @files[@i] (dumped just now). 0 or -ENOMEM. */
int desc_index_add(struct desc_index *ix, const struct dumped_file *files, int i);
void desc_index_free(struct desc_index *ix);

#endif
