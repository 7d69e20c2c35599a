// SPDX-License-Identifier: MIT
/*
 * The local page source: each task's pages-N.img mapped read-only, one
 * per layer of an incremental chain, so UFFDIO_COPY reads straight from
 * the page cache (tmpfs: from RAM). Images are never written: a dump can
 * be restored lazily many times.
 */
#define LOG_PREFIX "lazy-src: "
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lazy/source.h"
#include "base/log.h"
#include "restore/restore.h"
#include "base/util.h"

struct local_file {
	pid_t pid;
	int layer;
	const uint8_t *base;
	size_t size;
};

struct local_source {
	struct lazy_source s;
	struct local_file *files;
	int nr_files;
};

static int local_get(struct lazy_source *s, pid_t pid, int layer, uint64_t vaddr, uint64_t off,
		     size_t len, const void **data)
{
	struct local_source *ls = (struct local_source *)s;

	for (int i = 0; i < ls->nr_files; i++) {
		struct local_file *f = &ls->files[i];

		if (f->pid != pid || f->layer != layer)
			continue;
		if (off > f->size || len > f->size - off) {
			pr_err("%d: %zu bytes at %#llx are past the pages image of layer %d\n",
			       pid, len, (unsigned long long)off, layer);
			return -EINVAL;
		}
		*data = f->base + off;
		return 0;
	}
	return -ENOENT;
}

static void local_close(struct lazy_source *s, bool done)
{
	struct local_source *ls = (struct local_source *)s;

	for (int i = 0; i < ls->nr_files; i++)
		if (ls->files[i].size)
			munmap((void *)ls->files[i].base, ls->files[i].size);
	free(ls->files);
	free(ls);
}

static const struct lazy_source_ops local_ops = { .get = local_get, .close = local_close };

/* Layer @k of @t's chain: its pages file, opened by rst_load(), mapped. */
static int map_pages(struct rst_task *t, int k, struct local_file *f)
{
	const struct pm_layer *l = &t->pages.layers[k];
	struct stat st;
	void *p;

	f->pid = t->pid;
	f->layer = k;
	if (l->pages_fd < 0)
		return 0; /* no data in this layer */
	if (fstat(l->pages_fd, &st)) {
		pr_perror("can't stat pages-%u.img of task %d", l->pages_id, t->pid);
		return -errno;
	}
	if (!st.st_size)
		return 0;
	/* Read-only and shared: nothing we do can change the image. */
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, l->pages_fd, 0);
	if (p == MAP_FAILED) {
		pr_perror("can't map pages-%u.img of task %d", l->pages_id, t->pid);
		return -errno;
	}
	f->base = p;
	f->size = st.st_size;
	return 0;
}

struct lazy_source *lazy_source_local(struct rst_ctx *rc)
{
	struct local_source *ls = xzalloc(sizeof(*ls));
	int n = 0;

	if (!ls)
		return NULL;
	ls->s.ops = &local_ops;
	ls->s.threadsafe = true;
	for (int i = 0; i < rc->nr_tasks; i++)
		n += rc->tasks[i].zombie ? 0 : rc->tasks[i].pages.nr_layers;
	ls->files = xzalloc(sizeof(*ls->files) * (n + 1));
	if (!ls->files)
		goto err;
	for (int i = 0; i < rc->nr_tasks; i++) {
		struct rst_task *t = &rc->tasks[i];

		for (int k = 0; !t->zombie && k < t->pages.nr_layers; k++)
			if (map_pages(t, k, &ls->files[ls->nr_files++]))
				goto err;
	}
	return &ls->s;
err:
	local_close(&ls->s, false);
	return NULL;
}
