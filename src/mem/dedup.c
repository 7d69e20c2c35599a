// SPDX-License-Identifier: MIT
/*
 * Punching superseded pages out of parent images (dedup.h).
 */
#define LOG_PREFIX "dedup: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/dedup.h"
#include "image/image.h"
#include "image/sums.h"
#include "image/magic.h"
#include "base/log.h"
#include "pagemap.pb-c.h"
#include "mem/pagemap_chain.h"
#include "base/util.h"

struct dedup_layer {
	int dirfd;
	struct pm_layer pm;
	int rw_fd;	/* pages file opened for punching, -1 */
	bool *touched;	/* per entry: its checksum must be redone */
	uint64_t punched;
};

struct dedup_chain {
	struct dedup_layer l[PM_MAX_CHAIN];
	int nr;
};

static uint64_t ent_end(const struct pm_ent *e)
{
	return e->vaddr + (uint64_t)e->nr_pages * PAGE_SIZE;
}

static int punch(struct dedup_layer *dl, const struct pm_ent *e, uint64_t s, uint64_t t)
{
	char name[64];

	if (dl->rw_fd < 0) {
		img_name(IMG_PAGES, dl->pm.pages_id, name, sizeof(name));
		dl->rw_fd = img_file_open(dl->dirfd, name, O_RDWR);
		if (dl->rw_fd < 0) {
			int err = dl->rw_fd;

			pr_err("can't open %s: %s\n", name, strerror(-err));
			return err;
		}
	}
	if (fallocate(dl->rw_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      e->off + (s - e->vaddr), t - s)) {
		pr_perror("can't punch pages out of a parent image");
		return -errno;
	}
	dl->punched += t - s;
	return 0;
}

/* Punches [start, end) out of the layer @k that holds its data. */
static int punch_range(struct dedup_chain *dc, int k, uint64_t start, uint64_t end)
{
	struct dedup_layer *dl;
	int ret = 0;

	if (k >= dc->nr)
		return 0; /* restore refuses such a chain; nothing to punch here */
	dl = &dc->l[k];
	for (int i = pm_layer_seek(&dl->pm, start); i < dl->pm.nr && !ret; i++) {
		const struct pm_ent *e = &dl->pm.ents[i];
		uint64_t s = max(start, e->vaddr), t = min(end, ent_end(e));

		if (e->vaddr >= end)
			break;
		if (e->flags == PE_PARENT) {
			ret = punch_range(dc, k + 1, s, t);
		} else {
			ret = punch(dl, e, s, t);
			dl->touched[i] = true;
		}
	}
	return ret;
}

/* New checksums for touched entries; the pagemap replaced atomically. */
static int rewrite_pagemap(struct dedup_layer *dl, int pid)
{
	PagemapHead ph = PAGEMAP_HEAD__INIT;
	char tmpname[32], name[64];
	cleanup_free uint8_t *buf = NULL;
	int tmpfd, ret = -EIO;
	struct img *img;

	snprintf(tmpname, sizeof(tmpname), ".dedup-%d", getpid());
	if (mkdirat(dl->dirfd, tmpname, 0700)) {
		pr_perror("can't create %s", tmpname);
		return -errno;
	}
	tmpfd = openat(dl->dirfd, tmpname, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	img = tmpfd >= 0 ? img_open(tmpfd, IMG_PAGEMAP, true, pid) : NULL;
	ph.pages_id = dl->pm.pages_id;
	if (!img || img_write_msg(img, &ph.base))
		goto out;
	for (int i = 0; i < dl->pm.nr; i++) {
		struct pm_ent *e = &dl->pm.ents[i];
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;
		size_t len = (size_t)e->nr_pages * PAGE_SIZE;

		if (dl->touched[i] && e->csum_ver) {
			uint8_t *n = realloc(buf, len);

			if (!n || pread_full(dl->rw_fd, n, len, e->off)) {
				buf = n ? n : buf;
				goto out;
			}
			buf = n;
			/* rewritten pages get the current sum, whatever they had */
			e->csum = amber_csum2(buf, len, e->vaddr);
			e->csum_ver = AMBER_CSUM_V2;
		}
		pe.vaddr = e->vaddr;
		pe.nr_pages = e->nr_pages;
		pe.has_flags = true;
		pe.flags = e->flags;
		pagemap_entry_set_csum(&pe, e->csum, e->csum_ver);
		if (img_write_msg(img, &pe.base))
			goto out;
	}
	ret = img_close(img);
	img = NULL;
	img_name(IMG_PAGEMAP, pid, name, sizeof(name));
	if (!ret && renameat(tmpfd, name, dl->dirfd, name)) {
		pr_perror("can't replace %s", name);
		ret = -errno;
	}
	/* A full dump's sums must match its new pagemap. */
	if (!ret && !faccessat(dl->dirfd, IMG_SUMS_NAME, F_OK, 0))
		ret = img_sums_write(dl->dirfd);
out:
	img_close(img);
	if (tmpfd >= 0) {
		img_name(IMG_PAGEMAP, pid, name, sizeof(name));
		unlinkat(tmpfd, name, 0);
		close(tmpfd);
	}
	unlinkat(dl->dirfd, tmpname, AT_REMOVEDIR);
	return ret;
}

static void chain_free(struct dedup_chain *dc)
{
	for (int i = 0; i < dc->nr; i++) {
		struct dedup_layer *dl = &dc->l[i];

		pm_layer_free(&dl->pm);
		free(dl->touched);
		if (dl->rw_fd >= 0)
			close(dl->rw_fd);
		if (i && dl->dirfd >= 0)
			close(dl->dirfd);
	}
	dc->nr = 0;
}

static int chain_load(struct dedup_chain *dc, int dirfd, int pid)
{
	int cur = dirfd, ret = 0;

	memset(dc, 0, sizeof(*dc));
	while (dc->nr < PM_MAX_CHAIN) {
		struct dedup_layer *dl = &dc->l[dc->nr];
		char name[64];

		if (dc->nr) {
			cur = openat(cur, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
			if (cur < 0)
				break;
			img_name(IMG_PAGEMAP, pid, name, sizeof(name));
			if (faccessat(cur, name, F_OK, 0)) {
				close(cur);
				break; /* the task is younger than this parent */
			}
		}
		dl->dirfd = cur;
		dl->rw_fd = -1;
		ret = pm_layer_load(&dl->pm, cur, IMG_PAGEMAP, pid, NULL);
		dl->touched = ret ? NULL : calloc(dl->pm.nr + 1, sizeof(bool));
		if (!ret && !dl->touched)
			ret = -ENOMEM;
		dc->nr++;
		if (ret)
			break;
		if (dc->nr > 1 && !pm_layer_has_parent_refs(&dl->pm))
			break;
	}
	return ret;
}

static int dedup_task(int dirfd, int pid)
{
	struct dedup_chain dc;
	uint64_t punched = 0;
	int ret = chain_load(&dc, dirfd, pid);

	for (int i = 0; !ret && i < dc.l[0].pm.nr; i++) {
		const struct pm_ent *e = &dc.l[0].pm.ents[i];

		if (e->flags == PE_PRESENT)
			ret = punch_range(&dc, 1, e->vaddr, ent_end(e));
	}
	for (int k = 1; !ret && k < dc.nr; k++) {
		punched += dc.l[k].punched;
		if (dc.l[k].punched)
			ret = rewrite_pagemap(&dc.l[k], pid);
	}
	if (!ret && punched)
		pr_info("%d: %llu KiB punched out of parent images\n", pid,
			(unsigned long long)punched >> 10);
	chain_free(&dc);
	return ret;
}

int dedup_image(int dirfd)
{
	int dfd = dup(dirfd), ret = 0;
	struct dirent *de;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return -errno;
	}
	while (!ret && (de = readdir(d))) {
		int pid;
		char tail;

		if (sscanf(de->d_name, "pagemap-%d.im%c", &pid, &tail) == 2 && tail == 'g')
			ret = dedup_task(dirfd, pid);
	}
	closedir(d);
	return ret;
}

int dedup_run(const char *dir)
{
	int fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		pr_perror("can't open image directory %s", dir);
		return -errno;
	}
	/* Newest first: each image frees what it supersedes further down. */
	for (int depth = 0; fd >= 0 && !ret && depth < PM_MAX_CHAIN; depth++) {
		int up;

		ret = dedup_image(fd);
		up = openat(fd, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		close(fd);
		fd = up;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}
