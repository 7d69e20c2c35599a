// SPDX-License-Identifier: GPL-2.0
/*
 * A MAP_GROWSDOWN mapping used as a stack: contents survive, and touching
 * the page below it still grows it after restore.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define SIZE (16UL << 12)
#define GAP (1UL << 24)

int main(int argc, char **argv)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint32_t crc = 9;
	char *base, *mem;

	test_init(argc, argv);
	/* Reserve room below so the stack guard gap is free to grow into. */
	base = mmap(NULL, GAP + SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (base == MAP_FAILED || munmap(base, GAP + SIZE))
		return fail_errno("reserve"), 1;
	mem = mmap(base + GAP, SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE,
		   -1, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap growsdown"), 1;
	datagen(mem, SIZE, &crc);
	test_daemon();
	test_waitsig();

	if (vma_mapped(mem - ps, ps))
		return fail("the page below the stack is already mapped"), 1;
	if (datachk(mem, SIZE, &crc))
		return fail("stack contents changed"), 1;
	*(volatile char *)(mem - ps) = 1; /* grows the vma, or SIGSEGV */
	if (vma_mapped(mem - ps, ps) != 1)
		return fail("the stack did not grow"), 1;
	pass();
	return 0;
}
