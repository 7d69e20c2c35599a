// SPDX-License-Identifier: MIT
/*
 * Post-copy: the pages a restore reads eagerly. The images shipped to this
 * machine have no pages files; the lazy-pages daemon serves private
 * anonymous memory on demand, but the restore itself fills file-backed,
 * shared, locked and wipe-on-fork memory before the tree runs. Those runs
 * (every run vma_can_be_lazy() refuses, and every shared memory object's,
 * SysV segments' included)
 * are fetched from the page server here, each entry checked against its
 * checksum, and written at their offsets into one sealed memfd per pages
 * file: the lazy runs stay holes. The keeper hands the memfds to each
 * restore (LZ_ASK_PAGES), which loads them as if they were the files.
 */
#define LOG_PREFIX "lazy: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/csum.h"
#include "lazy/daemon.h"
#include "base/log.h"
#include "base/util.h"
#include "mem/vma.h"
#include "ipc-shm.pb-c.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static int new_pages_fd(struct lazy_daemon *d, uint32_t id, uint64_t size)
{
	struct pm_pages_fd *n = xrealloc_array(d->pages, d->nr_pages + 1, sizeof(*n));
	char name[32];
	int fd;

	if (!n)
		return -ENOMEM;
	d->pages = n;
	snprintf(name, sizeof(name), "amber-pages-%u", id);
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, size)) {
		pr_perror("can't make the memfd for pages-%u.img", id);
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	n[d->nr_pages++] = (struct pm_pages_fd){ .id = id, .fd = fd };
	return fd;
}

static int check(const void *data, size_t len, uint64_t vaddr, unsigned int csum_ver, uint64_t csum,
		 const char *what, unsigned long long id)
{
	if (csum_ver && amber_csum_ver(data, len, vaddr, csum_ver) != csum) {
		pr_err("%s %llu: pages at %#llx (%zu bytes) from the page server fail their "
		       "checksum\n", what, id, (unsigned long long)vaddr, len);
		return -EBADMSG;
	}
	return 0;
}

static int fetch_task(struct lazy_daemon *d, int idx)
{
	struct rst_task *t = &d->rc.tasks[idx];
	struct pm_layer *l = &t->pages.layers[0];
	int fd = new_pages_fd(d, l->pages_id, l->pages_size);

	if (fd < 0)
		return fd;
	/* one layer (post-copy refuses chains): the lazy view is the pagemap */
	for (int r = 0; r < t->pages.nr_lazy; r++) {
		struct rst_pages *p = &t->pages.lazy[r];
		const VmaEntry *v = mm_vma_at(t->mm, p->vaddr);
		size_t len = (size_t)p->nr_pages * PAGE_SIZE;
		const void *data;
		int ret;

		if (!v || vma_can_be_lazy(v->status, v->flags, v->madv))
			continue;
		ret = d->src->ops->get(d->src, t->pid, 0, p->vaddr, p->off, len, &data);
		if (!ret)
			ret = check(data, len, p->vaddr, p->csum_ver, p->csum, "task", t->pid);
		if (!ret && (size_t)pwrite(fd, data, len, p->off) != len)
			ret = -EIO;
		if (ret)
			return ret;
		d->verified[idx][r] = 1;
		d->st.eager_pages += p->nr_pages;
	}
	return 0;
}

static int fetch_shmem(struct lazy_daemon *d, struct pm_layer *l, uint64_t shmid)
{
	int fd = new_pages_fd(d, l->pages_id, l->pages_size);

	if (fd < 0)
		return fd;
	for (int i = 0; i < l->nr; i++) {
		const struct pm_ent *e = &l->ents[i];
		size_t len = (size_t)e->nr_pages * PAGE_SIZE;
		const void *data;
		int ret;

		ret = d->src->ops->get_shmem(d->src, shmid, e->vaddr, len, &data);
		if (!ret)
			ret = check(data, len, e->vaddr, e->csum_ver, e->csum, "shared memory",
				    shmid);
		if (!ret && (size_t)pwrite(fd, data, len, e->off) != len)
			ret = -EIO;
		if (ret)
			return ret;
		d->st.eager_pages += e->nr_pages;
	}
	return 0;
}

int lazy_fetch_eager(struct lazy_daemon *d)
{
	int ret = 0;

	for (int i = 0; i < d->rc.nr_tasks && !ret; i++)
		if (!d->rc.tasks[i].zombie)
			ret = fetch_task(d, i);
	for (int i = 0; i < d->rc.nr_shmems && !ret; i++)
		ret = fetch_shmem(d, &d->rc.shmems[i].pages, d->rc.shmems[i].shmid);
	/* The SysV segments' contents are filled before the tree runs, too. */
	for (size_t i = 0; i < d->rc.ns.ipc_objs.nr_shm && !ret; i++)
		ret = fetch_shmem(d, &d->rc.ns.ipc_objs.shm[i].pages,
				  d->rc.ns.ipc_objs.shm[i].e->desc->id);
	/* Nobody may change what the restores will read. */
	for (int i = 0; i < d->nr_pages && !ret; i++)
		if (fcntl(d->pages[i].fd, F_ADD_SEALS, SEALS))
			ret = -errno;
	if (ret)
		pr_err("can't fetch the eagerly restored pages: %s\n", strerror(-ret));
	else
		pr_info("fetched %llu pages of eagerly restored memory into %d pages files\n",
			(unsigned long long)d->st.eager_pages, d->nr_pages);
	return ret;
}
