// SPDX-License-Identifier: MIT
/*
 * Copy-on-write sharing across fork, kept: each task lays its private
 * anonymous VMAs out in one "premap" area and fills them before it forks
 * its children, so a child starts with its parent's pages. A child's VMA
 * that its parent also had (same start and end) is moved, still shared,
 * from the inherited area into the child's own; each page the child's
 * images hold is compared with the inherited one and written only if it
 * differs, and the pages its images do not hold at all are dropped. The
 * restorer then moves the whole area into place with mremap (restorer.c).
 *
 *   parent:  premap [ A | B ]  filled from its images, then fork
 *   child:   premap [ A' | C ]  A' = the parent's A moved here; equal pages
 *                              stay shared, others written, absent dropped
 *
 * Lazy VMAs are left out: their pages come from the lazy-pages daemon
 * through this task's own userfaultfd, after the fork.
 *
 * From a PKRAM store (restore --pkram) the pages of a fresh VMA are not
 * read but moved: TMPFS_IOC_MOVE_TO_ANON (kernel/patches/0010) takes them
 * out of the store's pages file and makes them this task's anonymous
 * pages where they are. A page the kernel refuses (or a kernel without
 * the ioctl) is read as before; inherited VMAs are compared and copied.
 * Over a chain of pre-dumps each page is moved from the newest layer that
 * holds it (the chain's disjoint view), so the older layers' copies of a
 * page rewritten since stay in the store and no move lands on a page
 * already there.
 */
#define LOG_PREFIX "premap: "
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/csum.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"
#include "mem/vma.h"
#include "restore/premap.h"
#include "restore/restore.h"
#include "restore/task.h"

/* Read and compared in pieces that stay in the cache. */
#define PIECE (256 * 1024UL)

bool rst_vma_premappable(const struct rst_ctx *rc, const VmaEntry *v)
{
	if (rc->lazy_fd >= 0 && vma_can_be_lazy(v->status, v->flags, v->madv))
		return false;
	return (v->status & VMA_ANON_PRIVATE) &&
	       !(v->status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED | VMA_ANON_SHARED |
			      VMA_AREA_VDSO | VMA_AREA_VVAR | VMA_AREA_SYSVIPC |
			      VMA_AREA_AIORING | VMA_AREA_MEMFD | VMA_AREA_UNSUPP)) &&
	       !(v->flags & (VMA_MAP_HUGETLB | MAP_GROWSDOWN));
}

/* The parent's premapped copy of @v (same start and end), or 0. */
static uint64_t inherited_at(const struct rst_task *t, const VmaEntry *v)
{
	const struct rst_task *p = t->parent;
	size_t lo = 0, hi;

	if (!p || !p->premap)
		return 0;
	hi = p->mm->n_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const VmaEntry *pv = p->mm->vmas[mid];

		if (pv->start < v->start)
			lo = mid + 1;
		else if (pv->start > v->start)
			hi = mid;
		else
			return pv->end == v->end ? p->premap[mid] : 0;
	}
	return 0;
}

/* Index of the VMA holding [vaddr, ...), or -1 (runs never span two). */
static int vma_index(const MmEntry *mm, uint64_t vaddr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (vaddr < mm->vmas[mid]->start)
			hi = mid;
		else if (vaddr >= mm->vmas[mid]->end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * A run of the task's images, summed piece by piece: into a fresh VMA it
 * is read straight into place; into an inherited one it is read aside and
 * only the pages that differ from the parent's are copied in.
 */
static int fill_run(int fd, const struct rst_pages *r, uint8_t *dst, uint8_t *buf,
		    unsigned long *nr_shared, bool inherited)
{
	uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE;
	struct amber_csum_ctx cs;

	amber_csum_init(&cs, r->vaddr);
	for (uint64_t at = 0; at < len; at += PIECE) {
		uint64_t n = min(len - at, PIECE);
		uint8_t *to = inherited ? buf : dst + at;

		if (pread_full(fd, to, n, r->off + at))
			return -EIO;
		amber_csum_add(&cs, to, n);
		/* An equal page is left alone: it stays the parent's. */
		for (uint64_t p = 0; inherited && p < n; p += PAGE_SIZE) {
			if (memcmp(dst + at + p, buf + p, PAGE_SIZE))
				memcpy(dst + at + p, buf + p, PAGE_SIZE);
			else
				(*nr_shared)++;
		}
	}
	if (r->csum_ver && amber_csum_end_ver(&cs, r->csum_ver) != r->csum)
		return -EINVAL;
	return 0;
}

/* linux/tmpfs.h of our kernel series (kernel/patches/0010) */
struct tmpfs_move_to_anon {
	uint64_t offset, len, addr, flags, moved;
};
#define TMPFS_IOC_MOVE_TO_ANON _IOWR(0xB9, 0x00, struct tmpfs_move_to_anon)

/* The moves of one task's fill (see the head of the file). */
struct premap_move {
	bool on;	     /* still trying: off once the kernel lacks the ioctl */
	bool verified;	     /* every page was checked in the store just before */
	int *fds;	     /* per layer: its pages file opened for writing, or -1 */
	int nr_fds;
	unsigned long moved, copied;
	int last_err;	     /* why the last page was copied, not moved */
};

/*
 * The layer's pages file, writable (the move punches the pages out), or
 * -1: DIR/pages-N.img, DIR/parent/pages-N.img for the first parent, ...
 */
static int move_fd(const struct rst_ctx *rc, struct premap_move *mv, const struct pm_chain *pc,
		   int layer)
{
	const struct pm_layer *l = &pc->layers[layer];
	char name[64 + PM_MAX_CHAIN * 7];
	struct stat a, b;
	int fd, n = 0;

	if (mv->fds[layer] != -2)
		return mv->fds[layer];
	for (int i = 0; i < layer; i++)
		n += snprintf(name + n, sizeof(name) - n, "parent/");
	snprintf(name + n, sizeof(name) - n, "pages-%u.img", l->pages_id);
	fd = openat(rc->dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &a) || fstat(l->pages_fd, &b) || a.st_ino != b.st_ino ||
			a.st_dev != b.st_dev)) {
		close(fd);
		fd = -1;
		errno = ESTALE;
	}
	if (fd < 0)
		pr_warn("can't open %s for writing (%s): its pages are copied\n", name,
			strerror(errno));
	mv->fds[layer] = fd;
	return fd;
}

/*
 * A run moved from the store into a fresh VMA, page by page where the
 * kernel refuses: a refused page is read, and where the target range
 * already has a page (a huge one a read faulted in), the rest of that
 * 2 MiB is read too. The checksum is taken in place, without a copy,
 * unless the whole store was just checked (restore --pkram does).
 */
static int move_run(struct premap_move *mv, int wfd, int rfd, const struct rst_pages *r,
		    uint8_t *dst)
{
	uint64_t len = (uint64_t)r->nr_pages * PAGE_SIZE, at = 0;

	while (at < len) {
		struct tmpfs_move_to_anon a = { .offset = r->off + at, .len = len - at,
						.addr = (uintptr_t)(dst + at) };
		uint64_t n = PAGE_SIZE;

		if (mv->on && wfd >= 0) {
			int ret = ioctl(wfd, TMPFS_IOC_MOVE_TO_ANON, &a), err;

			if (!ret && a.moved) {
				at += a.moved;
				mv->moved += a.moved / PAGE_SIZE;
				continue;
			}
			err = ret ? errno : EBUSY; /* nothing moved, no reason: copy the page */
			if (err == ENOTTY || err == EINVAL) {
				pr_info("this kernel does not move pages out of the store (%s): "
					"they are copied\n", strerror(err));
				mv->on = false;
			}
			mv->last_err = err;
			if (err == EEXIST)
				n = min(len - at, (((uintptr_t)(dst + at) | ((2UL << 20) - 1)) + 1) -
							  (uintptr_t)(dst + at));
		}
		if (!mv->on || wfd < 0)
			n = len - at;
		if (pread_full(rfd, dst + at, n, r->off + at))
			return -EIO;
		mv->copied += n / PAGE_SIZE;
		at += n;
	}
	if (r->csum_ver && !mv->verified &&
	    amber_csum_ver(dst, len, r->vaddr, r->csum_ver) != r->csum)
		return -EINVAL;
	return 0;
}

static int dontneed(uint64_t at, uint64_t len)
{
	return len && madvise((void *)at, len, MADV_DONTNEED) ? -errno : 0;
}

/*
 * An inherited VMA keeps only the pages the task's own images list: the
 * others were never there (or were freed) in this task.
 */
static int drop_absent(const struct rst_task *t, const VmaEntry *v, uint64_t at)
{
	const struct pm_chain *pc = &t->pages;
	uint64_t cur = v->start;
	int ret = 0;

	for (int i = 0; i < pc->nr_lazy && !ret; i++) {
		const struct rst_pages *r = &pc->lazy[i];
		uint64_t end = r->vaddr + (uint64_t)r->nr_pages * PAGE_SIZE;

		if (end <= v->start || r->vaddr >= v->end)
			continue;
		if (r->vaddr > cur)
			ret = dontneed(at + cur - v->start, r->vaddr - cur);
		cur = max(cur, end);
	}
	if (!ret && cur < v->end)
		ret = dontneed(at + cur - v->start, v->end - cur);
	return ret;
}

/* Places every premappable VMA in a new area: moved from the parent's, or fresh. */
static int lay_out(struct rst_ctx *rc, struct rst_task *t, bool *inh)
{
	MmEntry *mm = t->mm;
	uint64_t size = 0, at;
	void *area;

	for (size_t i = 0; i < mm->n_vmas; i++)
		if (rst_vma_premappable(rc, mm->vmas[i]))
			size += mm->vmas[i]->end - mm->vmas[i]->start;
	if (!size)
		return 0;
	/* Apart from every saved VMA: the restorer's moves then never overlap. */
	area = fault_injected("restore-premap-room") ? NULL /* tests: the fallback */
						     : rst_map_unused(mm, size, PROT_NONE, 0);
	if (!area) {
		/* No room beside the restoring process: the restorer fills them, unshared. */
		pr_warn("%d: no room to lay out %llu bytes before fork: its children "
			"will not share its pages\n", t->pid, (unsigned long long)size);
		return 0;
	}
	t->premap_start = at = (uintptr_t)area;
	t->premap_len = size;
	pr_debug("%d: premap area %#llx-%#llx\n", t->pid, (unsigned long long)at,
		 (unsigned long long)(at + size));
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];
		uint64_t len = v->end - v->start, from;
		void *p;

		if (!rst_vma_premappable(rc, v))
			continue;
		from = inherited_at(t, v);
		inh[i] = from != 0;
		if (from)
			p = mremap((void *)from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)at);
		else
			p = mmap((void *)at, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != (void *)at) {
			pr_perror("%d: can't premap VMA %#llx", t->pid,
				  (unsigned long long)v->start);
			return -errno;
		}
		t->premap[i] = at;
		at += len;
	}
	return 0;
}

static int fill(const struct rst_ctx *rc, struct rst_task *t, const bool *inh)
{
	const struct pm_chain *pc = &t->pages;
	unsigned long nr_shared = 0, nr_pages = 0;
	cleanup_free uint8_t *buf = malloc(PIECE);
	cleanup_free int *fds = calloc(pc->nr_layers + 1, sizeof(*fds));
	struct premap_move mv = { .on = rc->opts->pkram_move, .verified = rc->opts->pages_verified,
				  .fds = fds, .nr_fds = pc->nr_layers };
	int ret = 0;

	/*
	 * Moved pages come from the disjoint view, one layer a page; its runs
	 * may be parts of an entry, without a checksum: only once every page
	 * of the store was checked (restore --pkram does, every layer).
	 */
	bool newest = mv.on && mv.verified;

	if (!buf || !fds)
		return -ENOMEM;
	for (int i = 0; i < mv.nr_fds; i++)
		fds[i] = -2; /* not opened yet */
	for (int i = 0; newest && i < pc->nr_lazy && !ret; i++) {
		const struct rst_pages *r = &pc->lazy[i];
		int vi = vma_index(t->mm, r->vaddr);
		uint8_t *dst;

		if (vi < 0 || !t->premap[vi] || inh[vi])
			continue;
		dst = (uint8_t *)(uintptr_t)(t->premap[vi] + r->vaddr - t->mm->vmas[vi]->start);
		ret = move_run(&mv, move_fd(rc, &mv, pc, r->layer), pc->layers[r->layer].pages_fd,
			       r, dst);
		if (ret)
			pr_err("%d: pages at %#llx are short\n", t->pid, (unsigned long long)r->vaddr);
		nr_pages += r->nr_pages;
	}
	for (int i = 0; i < pc->nr_runs && !ret; i++) {
		const struct rst_pages *r = &pc->runs[i];
		int vi = vma_index(t->mm, r->vaddr);
		int rfd = pc->layers[r->layer].pages_fd;
		uint8_t *dst;

		if (vi < 0 || !t->premap[vi] || (newest && !inh[vi]))
			continue;
		dst = (uint8_t *)(uintptr_t)(t->premap[vi] + r->vaddr - t->mm->vmas[vi]->start);
		if (mv.on && !inh[vi])
			ret = move_run(&mv, move_fd(rc, &mv, pc, r->layer), rfd, r, dst);
		else
			ret = fill_run(rfd, r, dst, buf, &nr_shared, inh[vi]);
		if (ret)
			pr_err("%d: pages at %#llx are short or fail their checksum\n", t->pid,
			       (unsigned long long)r->vaddr);
		nr_pages += r->nr_pages;
	}
	/* Older layers' pages freed since, in fresh and inherited VMAs alike. */
	for (int i = 0; i < pc->nr_zaps && !ret; i++) {
		const struct pm_range *z = &pc->zaps[i];

		for (uint64_t a = z->start; a < z->end && !ret;) {
			int vi = vma_index(t->mm, a);
			uint64_t e = vi < 0 ? a + PAGE_SIZE : min(z->end, t->mm->vmas[vi]->end);

			if (vi >= 0 && t->premap[vi])
				ret = dontneed(t->premap[vi] + a - t->mm->vmas[vi]->start, e - a);
			a = e;
		}
	}
	for (size_t i = 0; i < t->mm->n_vmas && !ret; i++)
		if (inh[i])
			ret = drop_absent(t, t->mm->vmas[i], t->premap[i]);
	pr_info("%d: %lu pages premapped, %lu of them left shared with the parent\n", t->pid,
		nr_pages, nr_shared);
	if (rc->opts->pkram_move)
		pr_info("%d: %lu pages moved from the store, %lu copied%s%s%s\n", t->pid, mv.moved,
			mv.copied, mv.last_err ? " (last refusal: " : "",
			mv.last_err ? strerror(mv.last_err) : "", mv.last_err ? ")" : "");
	for (int i = 0; i < mv.nr_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int rst_premap(struct rst_ctx *rc, struct rst_task *t)
{
	cleanup_free bool *inh = calloc(t->mm->n_vmas + 1, sizeof(*inh));
	const struct rst_task *p = t->parent;
	int ret;

	t->premap = calloc(t->mm->n_vmas + 1, sizeof(*t->premap));
	if (!t->premap || !inh)
		return -ENOMEM;
	ret = lay_out(rc, t, inh);
	/* What this task did not take of its parent's area is not its own. */
	if (p && p->premap_len && munmap((void *)(uintptr_t)p->premap_start, p->premap_len))
		ret = ret ?: -errno;
	return ret ?: fill(rc, t, inh);
}
