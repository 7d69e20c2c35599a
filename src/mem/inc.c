// SPDX-License-Identifier: MIT
/*
 * Incremental memory plans: the tracker's written regions, the parent's
 * VMAs and pagemap, turned into PE_PRESENT and PE_PARENT runs; copying
 * and writing them. See mem_inc.h for the rule.
 */
#define LOG_PREFIX "mem-inc: "
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "image/image.h"
#include "image/magic.h"
#include "base/log.h"
#include "mem/inc.h"
#include "pagemap.pb-c.h"
#include "base/util.h"
#include "mem/vma.h"
#include "mem/xfer.h"

/*
 * One PE_PRESENT entry covers at most as much as a full dump's (xfer.h), so
 * each has its own checksum and a lazy fetch of one is as short.
 */
#define CHUNK_PAGES XFER_ENTRY_PAGES

#define VMA_KIND_MASK (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE | VMA_ANON_SHARED | VMA_FILE_SHARED)

int inc_parent_load(int parent_dirfd, pid_t pid, struct inc_parent *p)
{
	char name[64];
	int ret;

	memset(p, 0, sizeof(*p));
	p->cover.pages_fd = -1;
	if (parent_dirfd < 0)
		return 0;
	if (!faccessat(parent_dirfd, INC_RESET_MARK, F_OK, 0)) {
		pr_warn("%d: the parent images predate a failed dump that re-armed the memory "
			"tracker: every page is saved again\n", pid);
		return 0;
	}
	img_name(IMG_MM, pid, name, sizeof(name));
	if (faccessat(parent_dirfd, name, F_OK, 0) && errno == ENOENT)
		return 0; /* a task born since the parent image */
	ret = img_read_one(parent_dirfd, IMG_MM, pid, &mm_entry__descriptor,
			   (ProtobufCMessage **)&p->mm);
	if (ret)
		return ret;
	img_name(IMG_PAGEMAP, pid, name, sizeof(name));
	if (faccessat(parent_dirfd, name, F_OK, 0) && errno == ENOENT) {
		/* its pages went to a page server: what was sent is all we need */
		static const struct pm_pages_src no_pages = { .none = true };

		ret = pm_layer_load(&p->cover, parent_dirfd, IMG_SENT_PAGEMAP, pid, &no_pages);
	} else {
		ret = pm_layer_load(&p->cover, parent_dirfd, IMG_PAGEMAP, pid, NULL);
	}
	if (ret) {
		pr_err("parent image of %d is unusable\n", pid);
		inc_parent_free(p);
		return ret;
	}
	p->have = true;
	return 0;
}

void inc_mark_chain_reset(int parent_dirfd)
{
	int cur = parent_dirfd;

	for (int depth = 0; cur >= 0 && depth < PM_MAX_CHAIN; depth++) {
		int fd = openat(cur, INC_RESET_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), up;

		if (fd < 0)
			pr_perror("can't mark a parent image as unusable for tracking");
		else
			close(fd);
		up = openat(cur, "parent", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (cur != parent_dirfd)
			close(cur);
		cur = up;
	}
	if (cur >= 0 && cur != parent_dirfd)
		close(cur);
	pr_warn("the memory tracker was re-armed by this failed dump: its parent images are "
		"marked, and the next incremental dump saves every page\n");
}

void inc_parent_free(struct inc_parent *p)
{
	if (p->mm)
		mm_entry__free_unpacked(p->mm, NULL);
	p->mm = NULL;
	pm_layer_free(&p->cover);
	p->have = false;
}

int inc_parent_track_fd(const struct inc_parent *p)
{
	if (!p->have)
		return TRACK_NO_PARENT;
	return p->mm->has_amber_track_fd ? p->mm->amber_track_fd : -1;
}

int inc_parent_check_target(const struct inc_parent *parent, pid_t pid, struct xfer_target *xt)
{
	int ret;

	if (!parent->have)
		return 0; /* every page is saved: nothing refers to a parent */
	ret = xfer_has_parent(xt, XFER_TASK, pid);
	if (ret > 0)
		return 0;
	if (!ret) {
		pr_err("%d: the page server keeps no parent image of this task, which this "
		       "incremental dump refers to: start it with --prev-images-dir, as the "
		       "dump\n", pid);
		ret = -ENOENT;
	}
	return ret;
}

static int plan_add(struct inc_plan *plan, uint64_t vaddr, uint64_t end, uint32_t flags)
{
	while (vaddr < end) {
		struct inc_run *last = plan->nr ? &plan->runs[plan->nr - 1] : NULL;
		uint64_t room, n = (end - vaddr) / PAGE_SIZE;

		if (last && last->flags == flags && last->vaddr >= plan->vma_start &&
		    last->vaddr + (uint64_t)last->nr_pages * PAGE_SIZE == vaddr &&
		    (flags == PE_PARENT || last->nr_pages < CHUNK_PAGES)) {
			room = flags == PE_PARENT ? UINT32_MAX - last->nr_pages :
						    CHUNK_PAGES - last->nr_pages;
			n = min(n, room);
			last->nr_pages += n;
		} else {
			if (array_make_room(plan->runs, plan->nr, plan->cap, 64))
				return -ENOMEM;
			n = flags == PE_PARENT ? min(n, (uint64_t)UINT32_MAX) :
						 min(n, (uint64_t)CHUNK_PAGES);
			plan->runs[plan->nr++] = (struct inc_run){ vaddr, n, flags };
		}
		if (flags == PE_PRESENT)
			plan->nr_present += n;
		else
			plan->nr_parent += n;
		vaddr += n * PAGE_SIZE;
	}
	return 0;
}

struct scan_ctx {
	struct inc_plan *plan;
	const struct pm_layer *cover; /* NULL: nothing may stay in the parent */
};

/* Unwritten pages stay in the parent where it has them; the rest is saved. */
static int on_region(void *arg, uint64_t start, uint64_t end, bool written)
{
	struct scan_ctx *sc = arg;
	const struct pm_layer *c = sc->cover;
	uint64_t at = start;
	int ret = 0;

	if (written || !c)
		return plan_add(sc->plan, start, end, PE_PRESENT);
	for (int i = pm_layer_seek(c, start); i < c->nr && at < end && !ret; i++) {
		const struct pm_ent *e = &c->ents[i];
		uint64_t e_end = e->vaddr + (uint64_t)e->nr_pages * PAGE_SIZE;
		uint64_t s, t;

		if (e_end <= at)
			continue;
		if (e->vaddr >= end)
			break;
		s = max(at, e->vaddr);
		t = min(end, e_end);
		if (s > at)
			ret = plan_add(sc->plan, at, s, PE_PRESENT);
		if (!ret)
			ret = plan_add(sc->plan, s, t, PE_PARENT);
		at = t;
	}
	if (!ret && at < end)
		ret = plan_add(sc->plan, at, end, PE_PRESENT);
	return ret;
}

static bool vma_unchanged(const struct inc_parent *p, const VmaEntry *v)
{
	for (size_t i = 0; p->have && i < p->mm->n_vmas; i++) {
		const VmaEntry *o = p->mm->vmas[i];

		if (o->start == v->start)
			return o->end == v->end && o->prot == v->prot && o->pgoff == v->pgoff &&
			       (o->flags & MAP_SHARED) == (v->flags & MAP_SHARED) &&
			       !((o->status ^ v->status) & VMA_KIND_MASK);
	}
	return false;
}

int inc_plan_build(struct inc_plan *plan, const struct tracker *tr, struct track_task *tt,
		   const struct inc_parent *parent, VmaEntry **vmas, size_t n_vmas,
		   int pagemap_fd)
{
	memset(plan, 0, sizeof(*plan));
	plan->pid = tt->pid;
	/*
	 * From the first scan on (see inc_mark_chain_reset()) for uffd-wp,
	 * which protects each page again as it scans it; soft-dirty moves on
	 * only at clear_refs (track_task_rearm()), so a final dump that fails
	 * leaves its chain usable (amber kexec's retry stays incremental).
	 */
	if (!tr || tr->kind != TRACK_SOFT_DIRTY)
		tt->rearmed = true;
	for (size_t i = 0; i < n_vmas; i++) {
		const VmaEntry *v = vmas[i];
		struct scan_ctx sc = { .plan = plan };
		bool wp_ok = v->prot & PROT_WRITE;
		int ret;

		if (!vma_has_private_pages(v->status))
			continue;
		plan->vma_start = v->start; /* entries never span two VMAs */
		/* An AIO ring's pages are the kernel's, seen by no tracker: all of them. */
		if (v->status & VMA_AREA_AIORING) {
			ret = plan_add(plan, v->start, v->end, PE_PRESENT);
			if (ret) {
				inc_plan_free(plan);
				return ret;
			}
			continue;
		}
		if (vma_unchanged(parent, v))
			sc.cover = &parent->cover;
		/* Neither tracker sees writes to huge pages (soft-dirty skips them): all written. */
		if (v->flags & VMA_MAP_HUGETLB)
			ret = track_scan_untracked(tr, pagemap_fd, v->start, v->end, on_region, &sc);
		else
			ret = track_scan_vma(tr, tt, pagemap_fd, v->start, v->end, wp_ok, on_region,
					     &sc);
		if (ret) {
			inc_plan_free(plan);
			return ret;
		}
	}
	pr_info("%d: %llu pages written since the parent, %llu left there\n", tt->pid,
		(unsigned long long)plan->nr_present, (unsigned long long)plan->nr_parent);
	return 0;
}

/* Reads [addr, addr + len) of the task; /proc/PID/mem for PROT_NONE pages. */
static int read_task(pid_t pid, int *mem_fd, void *buf, uint64_t addr, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	char path[64];

	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len)
		return 0;
	if (*mem_fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		*mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (*mem_fd < 0 || pread_full(*mem_fd, buf, len, addr)) {
		pr_perror("can't read %zu bytes at %#llx of %d", len, (unsigned long long)addr,
			  pid);
		return -EIO;
	}
	return 0;
}

int inc_plan_copy(struct inc_plan *plan)
{
	size_t off = 0, total = plan->nr_present * PAGE_SIZE;
	int mem_fd = -1, ret = 0;

	if (!total)
		return 0;
	plan->data = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (plan->data == MAP_FAILED) {
		plan->data = NULL;
		return -ENOMEM;
	}
	/* Fewer faults while the tree waits: huge pages, populated up front. */
	madvise(plan->data, total, MADV_HUGEPAGE);
	madvise(plan->data, total, MADV_POPULATE_WRITE);
	for (int i = 0; i < plan->nr && !ret; i++) {
		const struct inc_run *r = &plan->runs[i];
		size_t len = (size_t)r->nr_pages * PAGE_SIZE;

		if (r->flags != PE_PRESENT)
			continue;
		ret = read_task(plan->pid, &mem_fd, plan->data + off, r->vaddr, len);
		off += len;
	}
	if (mem_fd >= 0)
		close(mem_fd);
	return ret;
}

/* The pages of one PE_PRESENT run, read from the task (xfer_fill_fn). */
struct task_src {
	struct inc_plan *plan;
	int *mem_fd;
	uint64_t vaddr;
};

/* Page by page: what the running task unmapped since the scan reads as zeros. */
static void read_live(struct inc_plan *plan, int *mem_fd, uint8_t *buf, uint64_t addr,
		      size_t len)
{
	for (size_t at = 0; at < len; at += PAGE_SIZE) {
		struct iovec l = { buf + at, PAGE_SIZE };
		struct iovec r = { (void *)(uintptr_t)(addr + at), PAGE_SIZE };

		if (process_vm_readv(plan->pid, &l, 1, &r, 1, 0) == PAGE_SIZE ||
		    (*mem_fd >= 0 && !pread_full(*mem_fd, buf + at, PAGE_SIZE, addr + at)))
			continue;
		memset(buf + at, 0, PAGE_SIZE);
		plan->nr_unreadable++;
	}
}

static int fill_from_task(void *arg, void *buf, uint64_t off, size_t len)
{
	const struct task_src *ts = arg;
	struct inc_plan *plan = ts->plan;
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)(ts->vaddr + off), len };

	if (!plan->live)
		return read_task(plan->pid, ts->mem_fd, buf, ts->vaddr + off, len);
	if (process_vm_readv(plan->pid, &l, 1, &r, 1, 0) != (ssize_t)len)
		read_live(plan, ts->mem_fd, buf, ts->vaddr + off, len);
	return 0;
}

int inc_plan_write(struct inc_plan *plan, struct xfer_target *xt, pid_t img_pid)
{
	struct xfer *x;
	size_t off = 0;
	int mem_fd = -1, ret, closed;

	if (plan->live && !plan->data) {
		char path[64];

		/* PROT_NONE pages: process_vm_readv can't, /proc/PID/mem can */
		snprintf(path, sizeof(path), "/proc/%d/mem", plan->pid);
		mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	ret = xfer_open(xt, XFER_TASK, img_pid, &x);
	for (int i = 0; i < plan->nr && !ret; i++) {
		const struct inc_run *r = &plan->runs[i];
		struct task_src ts = { plan, &mem_fd, r->vaddr };

		if (r->flags == PE_PARENT) {
			ret = xfer_hole(x, r->vaddr, r->nr_pages, PE_PARENT);
		} else if (plan->data) {
			ret = xfer_add_buf(x, r->vaddr, r->nr_pages, plan->data + off);
			off += (size_t)r->nr_pages * PAGE_SIZE;
		} else {
			ret = xfer_add_fill(x, r->vaddr, r->nr_pages, fill_from_task, &ts);
		}
	}
	closed = xfer_close(x);
	if (mem_fd >= 0)
		close(mem_fd);
	if (plan->nr_unreadable)
		pr_info("%d: %llu pages were unmapped after the scan, before they were read: "
			"saved as zeros (the next dump saves them again)\n", plan->pid,
			(unsigned long long)plan->nr_unreadable);
	return ret ? ret : closed;
}

void inc_plan_free(struct inc_plan *plan)
{
	if (plan->data)
		munmap(plan->data, plan->nr_present * PAGE_SIZE);
	free(plan->runs);
	memset(plan, 0, sizeof(*plan));
}
