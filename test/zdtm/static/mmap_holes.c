// SPDX-License-Identifier: GPL-2.0
/* An anonymous mapping with its middle unmapped: the hole must stay a hole. */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define NR_PAGES 16
#define HOLE_START 6
#define HOLE_PAGES 4

int main(int argc, char **argv)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t low = HOLE_START * ps, hole = HOLE_PAGES * ps;
	size_t high = (NR_PAGES - HOLE_START - HOLE_PAGES) * ps;
	uint32_t crc_lo = 1, crc_hi = 2;
	char *mem;

	test_init(argc, argv);
	mem = mmap(NULL, NR_PAGES * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	datagen(mem, low, &crc_lo);
	datagen(mem + low + hole, high, &crc_hi);
	if (munmap(mem + low, hole))
		return fail_errno("munmap"), 1;
	test_daemon();
	test_waitsig();

	if (vma_mapped(mem + low, hole) != 0)
		fail("the hole at %p is mapped again", mem + low);
	else if (vma_mapped(mem, low) != 1 || vma_mapped(mem + low + hole, high) != 1)
		fail("a side of the hole is gone");
	else if (datachk(mem, low, &crc_lo) || datachk(mem + low + hole, high, &crc_hi))
		fail("data mismatch around the hole");
	else
		pass();
	return 0;
}
