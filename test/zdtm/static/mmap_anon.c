// SPDX-License-Identifier: GPL-2.0
/*
 * An anonymous private mapping of MAP_BYTES (built as anon_4k, anon_1m,
 * anon_64m and anon_1g), every page touched with checksummed data.
 */
#include <sys/mman.h>

#include "zdtm.h"

#ifndef MAP_BYTES
#define MAP_BYTES 4096UL
#endif

int main(int argc, char **argv)
{
	uint32_t crc = 42;
	char perms[5];
	void *mem;

	test_init(argc, argv);
	mem = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap %lu bytes", MAP_BYTES), 1;
	datagen(mem, MAP_BYTES, &crc);
	test_daemon();
	test_waitsig();

	if (vma_perms(mem, perms) || strcmp(perms, "rw-p"))
		fail("mapping at %p lost or changed", mem);
	else if (datachk(mem, MAP_BYTES, &crc))
		fail("data mismatch in %lu bytes", MAP_BYTES);
	else
		pass();
	return 0;
}
