// SPDX-License-Identifier: GPL-2.0
/*
 * Private anonymous huge pages (MAP_HUGETLB, the default huge page size),
 * two of them touched with checksummed data and one left empty. After
 * restore the VMA must still be hugetlb with the same page size and hold
 * the data; a lazy restore fills it eagerly. Needs reserved huge pages
 * (vm.nr_hugepages; the zdtm conftest reserves some): skips without.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "zdtm.h"

#define HUGE_BYTES (2UL << 20)
#define NR_HUGE	   3

/* KernelPageSize of the VMA holding @addr, in kB; 0 if not found. */
static unsigned long vma_page_kb(void *addr)
{
	unsigned long start, end, kb = 0, a = (unsigned long)addr;
	char line[512];
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = a >= start && a < end;
		else if (in && sscanf(line, "KernelPageSize: %lu kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	uint32_t crc = 11;
	unsigned long kb;
	char *m;

	test_init(argc, argv);
	m = mmap(NULL, NR_HUGE * HUGE_BYTES, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (m == MAP_FAILED && (errno == ENOMEM || errno == EINVAL))
		test_skip("no 2 MiB huge pages to map (vm.nr_hugepages is 0?)");
	if (m == MAP_FAILED)
		return fail_errno("mmap MAP_HUGETLB"), 1;
	kb = vma_page_kb(m);
	if (kb != HUGE_BYTES >> 10)
		test_skip("the default huge page size is %lu kB, not 2048", kb);
	datagen(m, 2 * HUGE_BYTES, &crc);
	test_daemon();
	test_waitsig();

	if (vma_page_kb(m) != kb)
		fail("the VMA has %lu kB pages now, had %lu", vma_page_kb(m), kb);
	else if (datachk(m, 2 * HUGE_BYTES, &crc))
		fail("data mismatch in huge pages");
	else
		pass();
	return 0;
}
