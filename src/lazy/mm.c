// SPDX-License-Identifier: MIT
/*
 * Page state of one lazily restored address space (lazy/mm.h): areas
 * that follow the mm through fork, mremap, munmap and MADV_DONTNEED, each
 * page PENDING, ZERO or DONE.
 */
#define LOG_PREFIX "lazy-mm: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "lazy/mm.h"

#define NPAGES(a) (((a)->end - (a)->start) >> PAGE_SHIFT)

static int add_area(struct lazy_mm *mm, uint64_t start, uint64_t end, uint64_t src, uint8_t *st)
{
	struct lazy_area *n = xrealloc_array(mm->areas, mm->nr_areas + 1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	mm->areas = n;
	n[mm->nr_areas].start = start;
	n[mm->nr_areas].end = end;
	n[mm->nr_areas].src = src;
	n[mm->nr_areas].st = st;
	mm->nr_areas++;
	return 0;
}

static int cmp_area(const void *a, const void *b)
{
	const struct lazy_area *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* areas is NULL while there are none: qsort() must not get it (UBSan). */
static void sort_areas(struct lazy_mm *mm)
{
	if (mm->nr_areas)
		qsort(mm->areas, mm->nr_areas, sizeof(*mm->areas), cmp_area);
}

struct lazy_mm *lazy_mm_new(uint32_t id, pid_t pid, int img, const struct lazy_range *ranges,
			    uint32_t nr)
{
	struct lazy_mm *mm = xzalloc(sizeof(*mm));

	if (!mm)
		return NULL;
	mm->id = id;
	mm->uffd = -1;
	mm->pid = pid;
	mm->img = img;
	for (uint32_t i = 0; i < nr; i++) {
		const struct lazy_range *g = &ranges[i];
		uint8_t *st;

		if (g->start >= g->end || (g->start | g->end) & (PAGE_SIZE - 1))
			goto bad;
		st = malloc((g->end - g->start) >> PAGE_SHIFT);
		if (!st || add_area(mm, g->start, g->end, g->start, st)) {
			free(st);
			goto bad;
		}
		memset(st, PG_ZERO, (g->end - g->start) >> PAGE_SHIFT);
	}
	sort_areas(mm);
	for (int i = 1; i < mm->nr_areas; i++)
		if (mm->areas[i].start < mm->areas[i - 1].end)
			goto bad;
	return mm;
bad:
	pr_err("task %d: bad lazy ranges\n", pid);
	lazy_mm_free(mm);
	return NULL;
}

void lazy_mm_set_pending(struct lazy_mm *mm, uint64_t vaddr, uint64_t nr_pages)
{
	struct lazy_area *a = lazy_mm_find(mm, vaddr);
	uint64_t first, n;

	if (!a)
		return;
	first = (vaddr - a->start) >> PAGE_SHIFT;
	n = min(nr_pages, NPAGES(a) - first);
	memset(a->st + first, PG_PENDING, n);
	mm->nr_pending += n;
}

struct lazy_mm *lazy_mm_clone(const struct lazy_mm *parent, uint32_t id)
{
	struct lazy_mm *mm = xzalloc(sizeof(*mm));

	if (!mm)
		return NULL;
	mm->id = id;
	mm->uffd = -1;
	mm->pid = parent->pid;
	mm->img = parent->img;
	mm->nr_pending = parent->nr_pending;
	for (int i = 0; i < parent->nr_areas; i++) {
		const struct lazy_area *a = &parent->areas[i];
		uint8_t *st = malloc(NPAGES(a));

		if (!st || add_area(mm, a->start, a->end, a->src, st)) {
			free(st);
			lazy_mm_free(mm);
			return NULL;
		}
		memcpy(st, a->st, NPAGES(a));
	}
	return mm;
}

void lazy_mm_free(struct lazy_mm *mm)
{
	if (!mm)
		return;
	for (int i = 0; i < mm->nr_areas; i++)
		free(mm->areas[i].st);
	free(mm->areas);
	free(mm->retry);
	free(mm);
}

struct lazy_area *lazy_mm_find(struct lazy_mm *mm, uint64_t addr)
{
	int lo = 0, hi = mm->nr_areas;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		struct lazy_area *a = &mm->areas[mid];

		if (addr < a->start)
			hi = mid;
		else if (addr >= a->end)
			lo = mid + 1;
		else
			return a;
	}
	return NULL;
}

/* Makes @addr an area boundary (if it falls inside an area). */
static int split_at(struct lazy_mm *mm, uint64_t addr)
{
	struct lazy_area *a = lazy_mm_find(mm, addr);
	uint64_t left, right;
	uint8_t *st;

	if (!a || a->start == addr)
		return 0;
	left = (addr - a->start) >> PAGE_SHIFT;
	right = NPAGES(a) - left;
	st = malloc(right);
	if (!st)
		return -ENOMEM;
	memcpy(st, a->st + left, right);
	/* a may move with the realloc in add_area: save what we need first */
	uint64_t end = a->end, src = a->src + (addr - a->start);

	a->end = addr;
	if (add_area(mm, addr, end, src, st)) {
		free(st);
		return -ENOMEM;
	}
	sort_areas(mm);
	mm->cur_area = 0; /* indexes changed: restart the prefetch scan */
	mm->cur_page = 0;
	return 0;
}

static uint64_t count_pending(const struct lazy_area *a)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < NPAGES(a); i++)
		n += a->st[i] == PG_PENDING;
	return n;
}

int lazy_mm_unmap(struct lazy_mm *mm, uint64_t start, uint64_t end)
{
	int ret = split_at(mm, start);

	if (!ret)
		ret = split_at(mm, end);
	if (ret)
		return ret;
	for (int i = 0; i < mm->nr_areas;) {
		struct lazy_area *a = &mm->areas[i];

		if (a->start >= start && a->end <= end) {
			mm->nr_pending -= count_pending(a);
			free(a->st);
			memmove(a, a + 1, (mm->nr_areas - i - 1) * sizeof(*a));
			mm->nr_areas--;
			continue;
		}
		i++;
	}
	mm->cur_area = 0;
	mm->cur_page = 0;
	return 0;
}

int lazy_mm_remap(struct lazy_mm *mm, uint64_t from, uint64_t to, uint64_t len)
{
	int ret = split_at(mm, from);

	if (!ret)
		ret = split_at(mm, from + len);
	if (ret)
		return ret;
	/* Whatever was at the destination is gone (mremap unmaps it first). */
	for (int i = 0; i < mm->nr_areas; i++) {
		struct lazy_area *a = &mm->areas[i];

		if (a->start >= from && a->end <= from + len) {
			/* park far away so the unmap of [to, to+len) below spares it */
			a->start = a->start - from + (1ULL << 63);
			a->end = a->end - from + (1ULL << 63);
		}
	}
	sort_areas(mm);
	ret = lazy_mm_unmap(mm, to, to + len);
	if (ret)
		return ret;
	for (int i = 0; i < mm->nr_areas; i++) {
		struct lazy_area *a = &mm->areas[i];

		if (a->start >= (1ULL << 63)) {
			a->start = a->start - (1ULL << 63) + to;
			a->end = a->end - (1ULL << 63) + to;
		}
	}
	sort_areas(mm);
	mm->cur_area = 0;
	mm->cur_page = 0;
	return 0;
}

void lazy_area_done(struct lazy_mm *mm, struct lazy_area *a, uint64_t addr, uint64_t n)
{
	uint64_t first = (addr - a->start) >> PAGE_SHIFT;

	for (uint64_t i = first; i < first + n && i < NPAGES(a); i++) {
		mm->nr_pending -= a->st[i] == PG_PENDING;
		/* atomic: the daemon's fault path reads states without its lock */
		__atomic_store_n(&a->st[i], PG_DONE, __ATOMIC_RELAXED);
	}
}

void lazy_mm_remove(struct lazy_mm *mm, uint64_t start, uint64_t end)
{
	for (int i = 0; i < mm->nr_areas; i++) {
		struct lazy_area *a = &mm->areas[i];
		uint64_t s = max(start, a->start), e = min(end, a->end);

		for (uint64_t p = s; p < e; p += PAGE_SIZE) {
			uint8_t *st = &a->st[(p - a->start) >> PAGE_SHIFT];

			mm->nr_pending -= *st == PG_PENDING;
			__atomic_store_n(st, PG_ZERO, __ATOMIC_RELAXED);
		}
	}
}
