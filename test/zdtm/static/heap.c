// SPDX-License-Identifier: GPL-2.0
/* The heap grown with sbrk() and malloc(): brk and contents survive. */
#include <stdlib.h>
#include <unistd.h>

#include "zdtm.h"

#define SBRK_BYTES (4UL << 20)
#define NR_BLOCKS 64

int main(int argc, char **argv)
{
	uint32_t crc_brk = 3, crc[NR_BLOCKS];
	char *blocks[NR_BLOCKS], *area;
	void *end;
	int i;

	test_init(argc, argv);
	for (i = 0; i < NR_BLOCKS; i++) {
		size_t len = 1024 + i * 4096; /* below the mmap threshold */

		blocks[i] = malloc(len);
		if (!blocks[i])
			return fail("malloc"), 1;
		crc[i] = i;
		datagen(blocks[i], len, &crc[i]);
	}
	area = sbrk(SBRK_BYTES);
	if (area == (void *)-1)
		return fail_errno("sbrk"), 1;
	datagen(area, SBRK_BYTES, &crc_brk);
	end = sbrk(0);
	test_daemon();
	test_waitsig();

	if (sbrk(0) != end)
		return fail("brk moved: %p -> %p", end, sbrk(0)), 1;
	if (datachk(area, SBRK_BYTES, &crc_brk))
		return fail("sbrk area corrupted"), 1;
	for (i = 0; i < NR_BLOCKS; i++)
		if (datachk(blocks[i], 1024 + i * 4096, &crc[i]))
			return fail("malloc block %d corrupted", i), 1;
	/* The heap still grows after restore. */
	if (sbrk(1 << 20) == (void *)-1)
		return fail_errno("sbrk after restore"), 1;
	pass();
	return 0;
}
