// SPDX-License-Identifier: MIT
/*
 * Unit test of the lazy-pages daemon's page state (src/lazy/mm.c): pages
 * from the pagemap are PENDING, the rest ZERO; MADV_DONTNEED, fork,
 * mremap and munmap keep the count of pages still to deliver right.
 */
#include <stdio.h>
#include <stdlib.h>

#include "lazy/mm.h"

static int failures;

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                               \
		}                                                                 \
	} while (0)

static int state(struct lazy_mm *mm, uint64_t addr)
{
	struct lazy_area *a = lazy_mm_find(mm, addr);

	return a ? a->st[(addr - a->start) >> 12] : -1;
}

static uint64_t src_of(struct lazy_mm *mm, uint64_t addr)
{
	struct lazy_area *a = lazy_mm_find(mm, addr);

	return a ? a->src + (addr - a->start) : 0;
}

int main(void)
{
	/* the image's runs: 4 pages at 0x10000, 2 at 0x20000 */
	struct lazy_range ranges[] = { { 0x20000, 0x22000 }, { 0x10000, 0x18000 } };
	struct lazy_mm *mm = lazy_mm_new(1, 1, 0, ranges, 2), *child;

	CHECK(mm && mm->nr_areas == 2 && mm->nr_pending == 0);
	if (!mm)
		return 1;
	lazy_mm_set_pending(mm, 0x10000, 4);
	lazy_mm_set_pending(mm, 0x20000, 2);
	CHECK(mm->nr_pending == 6);
	CHECK(state(mm, 0x13000) == PG_PENDING && state(mm, 0x14000) == PG_ZERO);
	CHECK(state(mm, 0x30000) == -1);

	lazy_mm_remove(mm, 0x11000, 0x12000); /* MADV_DONTNEED: zeros, not data */
	CHECK(mm->nr_pending == 5 && state(mm, 0x11000) == PG_ZERO);

	child = lazy_mm_clone(mm, LAZY_FORK_ID_BASE);
	CHECK(child && child->nr_pending == 5 && state(child, 0x11000) == PG_ZERO);

	/* mremap of the first half of the first area to 0x50000 */
	CHECK(lazy_mm_remap(mm, 0x10000, 0x50000, 0x4000) == 0);
	CHECK(mm->nr_areas == 3 && mm->nr_pending == 5);
	CHECK(state(mm, 0x10000) == -1 && state(mm, 0x50000) == PG_PENDING);
	CHECK(src_of(mm, 0x52000) == 0x12000 && src_of(mm, 0x14000) == 0x14000);
	CHECK(state(mm, 0x51000) == PG_ZERO);

	/* mremap onto a tracked range drops what was there */
	CHECK(lazy_mm_remap(mm, 0x20000, 0x50000, 0x1000) == 0);
	CHECK(mm->nr_pending == 4 && src_of(mm, 0x50000) == 0x20000);
	CHECK(state(mm, 0x51000) == PG_ZERO && src_of(mm, 0x52000) == 0x12000);

	CHECK(lazy_mm_unmap(mm, 0x21000, 0x22000) == 0);
	CHECK(mm->nr_pending == 3 && state(mm, 0x21000) == -1);

	lazy_area_done(mm, lazy_mm_find(mm, 0x52000), 0x52000, 2);
	CHECK(mm->nr_pending == 1);
	lazy_area_done(mm, lazy_mm_find(mm, 0x50000), 0x50000, 1);
	CHECK(mm->nr_pending == 0);

	/* the child kept its own state */
	CHECK(child->nr_pending == 5 && state(child, 0x10000) == PG_PENDING);

	lazy_mm_free(mm);
	lazy_mm_free(child);
	printf("test_lazy_mm: %s\n", failures ? "FAIL" : "ok");
	return failures != 0;
}
