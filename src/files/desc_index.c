// SPDX-License-Identifier: MIT
/* Dumped open file descriptions, indexed by inode and kcmp order (desc_index.h). */
#define LOG_PREFIX "files: "
#include <errno.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "files/desc_index.h"
#include "files/files_internal.h"

enum { KCMP_EQ = 0, KCMP_LT = 1, KCMP_GT = 2 };

static size_t slot_of(const struct desc_index *ix, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full);

	return (h ^ (h >> 29)) & (ix->nr_b - 1);
}

static struct desc_bucket *lookup(const struct desc_index *ix, dev_t dev, ino_t ino)
{
	if (!ix->nr_b)
		return NULL;
	for (size_t s = slot_of(ix, dev, ino);; s = (s + 1) & (ix->nr_b - 1)) {
		struct desc_bucket *b = &ix->b[s];

		if (!b->idx)
			return NULL;
		if (b->dev == dev && b->ino == ino)
			return b;
	}
}

static int grow(struct desc_index *ix)
{
	struct desc_index n = { .nr_b = ix->nr_b ? ix->nr_b * 2 : 256 };

	n.b = xzalloc(n.nr_b * sizeof(*n.b));
	if (!n.b)
		return -ENOMEM;
	for (size_t i = 0; i < ix->nr_b; i++) {
		struct desc_bucket *o = &ix->b[i];
		size_t s;

		if (!o->idx)
			continue;
		for (s = slot_of(&n, o->dev, o->ino); n.b[s].idx; s = (s + 1) & (n.nr_b - 1))
			;
		n.b[s] = *o;
		n.used++;
	}
	free(ix->b);
	*ix = n;
	return 0;
}

/* kcmp of dumped file @f against fd @fd of @pid: KCMP_EQ/LT/GT, 3 or -1. */
static long order(const struct dumped_file *f, pid_t pid, int fd)
{
	return syscall(SYS_kcmp, f->pid, pid, KCMP_FILE, f->fd, fd);
}

/* Without an order from kcmp: the old scan of the bucket. */
static int scan(const struct desc_bucket *b, const struct dumped_file *files,
		const struct fd_desc *d)
{
	for (int i = 0; i < b->nr; i++) {
		const struct dumped_file *f = &files[b->idx[i]];
		long r = order(f, d->pid, d->fd);

		if (r == KCMP_EQ)
			return b->idx[i];
		/* No kcmp (CONFIG_KCMP=n): same inode, position and flags. */
		if (r < 0 && f->pos == d->pos && f->flags == d->flags)
			return b->idx[i];
	}
	return -1;
}

struct fd_key {
	pid_t pid;
	int fd;
};

static long order_fd(const struct dumped_file *f, void *arg)
{
	const struct fd_key *k = arg;

	return order(f, k->pid, k->fd);
}

/*
 * Binary search of @b by @cmp (kcmp of a dumped file against the one
 * sought): the index found, or -1 with *@at the insertion point; -2 if
 * kcmp gave no order on the way.
 */
static int search_by(const struct desc_bucket *b, const struct dumped_file *files,
		     desc_cmp_fn *cmp, void *arg, int *at)
{
	int lo = 0, hi = b->nr;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		long r = cmp(&files[b->idx[mid]], arg);

		if (r == KCMP_EQ)
			return b->idx[mid];
		if (r == KCMP_LT)
			lo = mid + 1;
		else if (r == KCMP_GT)
			hi = mid;
		else
			return -2;
	}
	*at = lo;
	return -1;
}

static int search(const struct desc_bucket *b, const struct dumped_file *files, pid_t pid,
		  int fd, int *at)
{
	struct fd_key k = { pid, fd };

	return search_by(b, files, order_fd, &k, at);
}

int desc_index_find_by(struct desc_index *ix, const struct dumped_file *files, dev_t dev,
		       ino_t ino, desc_cmp_fn *cmp, void *arg)
{
	struct desc_bucket *b = lookup(ix, dev, ino);
	int at;

	return b ? search_by(b, files, cmp, arg, &at) : -1;
}

int desc_index_sole(const struct desc_index *ix, dev_t dev, ino_t ino)
{
	const struct desc_bucket *b = lookup(ix, dev, ino);

	return b && b->nr == 1 ? b->idx[0] : -1;
}

int desc_index_find(struct desc_index *ix, const struct dumped_file *files,
		    const struct fd_desc *d)
{
	struct desc_bucket *b = lookup(ix, d->st.st_dev, d->st.st_ino);
	int at, i;

	if (!b)
		return -1;
	i = search(b, files, d->pid, d->fd, &at);
	return i == -2 ? scan(b, files, d) : i;
}

int desc_index_add(struct desc_index *ix, const struct dumped_file *files, int i)
{
	const struct dumped_file *f = &files[i];
	struct desc_bucket *b;
	int at = 0;

	if ((ix->used + 1) * 2 > ix->nr_b && grow(ix))
		return -ENOMEM;
	b = lookup(ix, f->dev, f->ino);
	if (!b) {
		size_t s;

		for (s = slot_of(ix, f->dev, f->ino); ix->b[s].idx; s = (s + 1) & (ix->nr_b - 1))
			;
		b = &ix->b[s];
		*b = (struct desc_bucket){ .dev = f->dev, .ino = f->ino, .cap = 4 };
		b->idx = xzalloc(b->cap * sizeof(*b->idx));
		if (!b->idx)
			return -ENOMEM;
		ix->used++;
	} else if (search(b, files, f->pid, f->fd, &at) != -1) {
		at = b->nr; /* no order (or already there): scanned anyway */
	}
	if (b->nr == b->cap) {
		int *n = xrealloc_array(b->idx, b->cap * 2, sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->idx = n;
		b->cap *= 2;
	}
	memmove(&b->idx[at + 1], &b->idx[at], (b->nr - at) * sizeof(*b->idx));
	b->idx[at] = i;
	b->nr++;
	return 0;
}

void desc_index_free(struct desc_index *ix)
{
	for (size_t i = 0; i < ix->nr_b; i++)
		free(ix->b[i].idx);
	free(ix->b);
	*ix = (struct desc_index){ 0 };
}
