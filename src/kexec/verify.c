// SPDX-License-Identifier: MIT
/*
 * Checks an image set of amber kexec twice: before it is preserved (the
 * tree still frozen, so it may resume if the set is bad) and after the next
 * kernel gave it back (nothing is created from a damaged store). The
 * protobuf images are covered by amber.sums, which a store must have;
 * pages-N.img by the checksum of each pagemap entry. Before preserving,
 * the pages were summed as they were written a moment ago, so only the
 * sizes are checked (a frozen tree waits); after kexec every page is read.
 */
#define LOG_PREFIX "kexec-verify: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/csum.h"
#include "base/log.h"
#include "base/util.h"
#include "image/image.h"
#include "image/magic.h"
#include "image/sums.h"
#include "kexec/kexec.h"
#include "mem/pagemap_chain.h"

#define VERIFY_CHUNK (4UL << 20)

/* Every page of @l's PE_PRESENT entries against its checksum. */
static int verify_pages(const struct pm_layer *l, const char *what, uint8_t *buf)
{
	for (int i = 0; i < l->nr; i++) {
		const struct pm_ent *e = &l->ents[i];
		uint64_t len = (uint64_t)e->nr_pages * PAGE_SIZE, done = 0;
		struct amber_csum_ctx cs;

		if (!(e->flags & PE_PRESENT) || !e->csum_ver)
			continue;
		amber_csum_init(&cs, e->vaddr);
		while (done < len) {
			size_t n = len - done < VERIFY_CHUNK ? len - done : VERIFY_CHUNK;

			if (pread_full(l->pages_fd, buf, n, e->off + done)) {
				pr_perror("%s: can't read the pages at %#llx", what,
					  (unsigned long long)e->vaddr);
				return -EIO;
			}
			amber_csum_add(&cs, buf, n);
			done += n;
		}
		if (amber_csum_end_ver(&cs, e->csum_ver) != e->csum) {
			pr_err("%s: the %u page(s) at %#llx do not match their checksum: the "
			       "store is damaged\n", what, e->nr_pages,
			       (unsigned long long)e->vaddr);
			return -EBADMSG;
		}
	}
	return 0;
}

static int verify_pagemap(int dirfd, int type, unsigned long id, const char *name, bool deep,
			  uint8_t *buf, uint64_t *bytes)
{
	struct pm_layer l;
	int ret = pm_layer_load(&l, dirfd, type, id, NULL);

	if (ret) {
		pr_err("%s: pagemap or its pages file is damaged\n", name);
		return ret == -ENOENT ? -EBADMSG : ret;
	}
	for (int i = 0; i < l.nr; i++)
		if (l.ents[i].flags & PE_PRESENT)
			*bytes += (uint64_t)l.ents[i].nr_pages * PAGE_SIZE;
	if (deep)
		ret = verify_pages(&l, name, buf);
	pm_layer_free(&l);
	return ret;
}

int kexec_verify(int dirfd, bool deep)
{
	cleanup_free uint8_t *buf = NULL;
	uint64_t bytes = 0;
	int nr = 0, ret, fd;
	struct dirent *de;
	DIR *d;

	if (faccessat(dirfd, IMG_SUMS_NAME, R_OK, 0)) {
		pr_err("no %s in the image set: refused (amber kexec always writes it)\n",
		       IMG_SUMS_NAME);
		return -EBADMSG;
	}
	ret = img_sums_check(dirfd);
	if (ret) {
		pr_err("the images do not match %s: the image set is damaged\n", IMG_SUMS_NAME);
		return ret < 0 ? ret : -EBADMSG;
	}
	if (deep) {
		buf = malloc(VERIFY_CHUNK);
		if (!buf)
			return -ENOMEM;
	}
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		pr_perror("can't list the image set");
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (!ret && (de = readdir(d))) {
		unsigned long id;
		char tail;

		if (sscanf(de->d_name, "pagemap-shmem-%lu.im%c", &id, &tail) == 2 && tail == 'g')
			ret = verify_pagemap(dirfd, IMG_SHMEM_PAGEMAP, id, de->d_name, deep, buf,
					     &bytes);
		else if (sscanf(de->d_name, "pagemap-%lu.im%c", &id, &tail) == 2 && tail == 'g')
			ret = verify_pagemap(dirfd, IMG_PAGEMAP, id, de->d_name, deep, buf, &bytes);
		else
			continue;
		nr++;
	}
	closedir(d);
	if (!ret && !nr) {
		pr_err("no pagemap in the image set: not a dump\n");
		ret = -EBADMSG;
	}
	if (!ret)
		pr_info("image set verified: %d pagemap(s), %llu bytes of pages%s\n", nr,
			(unsigned long long)bytes, deep ? ", every page summed" : "");
	return ret;
}
