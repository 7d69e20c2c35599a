// SPDX-License-Identifier: GPL-2.0
/*
 * Eight filled regions of 16 pages with one-page holes between them.
 * Change k unmaps region k - 1 and maps the range of region k - 2 (unmapped
 * by the change before) anew, writing only its first page: its other pages
 * must read as zero, not as the old region's data from an older image.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define NR 8
#define PAGES 16

static size_t psize;

static char *region(char *base, int i)
{
	return base + i * (PAGES + 1) * psize;
}

static int all_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	uint32_t crc[NR], head[NR];
	size_t len;
	char *base, *p;
	int i, k, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	len = PAGES * psize;
	base = mmap(NULL, NR * (PAGES + 1) * psize, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (i = 0; i < NR; i++) {
		crc[i] = i;
		datagen(region(base, i), len, &crc[i]);
		if (munmap(region(base, i) + len, psize))
			return fail_errno("munmap hole %d", i), 1;
	}
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k <= NR) {
			if (munmap(region(base, k - 1), len))
				return fail_errno("munmap %d", k - 1), 1;
			if (k >= 2) {
				p = mmap(region(base, k - 2), len,
					 PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS |
						 MAP_FIXED_NOREPLACE, -1, 0);
				if (p != region(base, k - 2))
					return fail_errno("remap %d", k - 2), 1;
				head[k - 2] = 100 + k;
				datagen(p, psize, &head[k - 2]);
			}
			n = k;
		}
		test_iter_ack(k);
	}

	for (i = 0; i < NR; i++) {
		p = region(base, i);
		if (vma_mapped(p + len, psize))
			return fail("hole after region %d is mapped", i), 1;
		if (i == n - 1) {
			if (vma_mapped(p, len))
				return fail("unmapped region %d is mapped", i), 1;
		} else if (i < n - 1) {
			if (vma_mapped(p, len) != 1)
				return fail("remapped region %d is gone", i), 1;
			if (datachk(p, psize, &head[i]))
				return fail("remapped region %d: first page", i), 1;
			if (!all_zero(p + psize, len - psize))
				return fail("remapped region %d: old data "
					    "instead of zeros", i), 1;
		} else if (vma_mapped(p, len) != 1 || datachk(p, len, &crc[i])) {
			return fail("region %d: gone or data mismatch", i), 1;
		}
	}
	pass();
	return 0;
}
