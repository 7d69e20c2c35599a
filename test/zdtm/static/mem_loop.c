// SPDX-License-Identifier: GPL-2.0
/* Keep rewriting and verifying checksummed memory until SIGTERM. */
#include <stdlib.h>
#include <sys/mman.h>

#include "zdtm.h"

#define CHUNK (64UL << 10)
#define NR_CHUNKS 256 /* 16 MiB */

int main(int argc, char **argv)
{
	static uint32_t crc[NR_CHUNKS];
	unsigned long iter = 0, i;
	char *mem;

	test_init(argc, argv);
	mem = mmap(NULL, CHUNK * NR_CHUNKS, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (i = 0; i < NR_CHUNKS; i++) {
		crc[i] = i;
		datagen(mem + i * CHUNK, CHUNK, &crc[i]);
	}
	test_daemon();

	/* Verify a chunk, then regenerate it: memory changes all the time. */
	while (!test_stop) {
		i = iter++ % NR_CHUNKS;
		if (datachk(mem + i * CHUNK, CHUNK, &crc[i])) {
			fail("chunk %lu corrupted at iteration %lu", i, iter);
			return 1;
		}
		crc[i] += iter;
		datagen(mem + i * CHUNK, CHUNK, &crc[i]);
	}
	for (i = 0; i < NR_CHUNKS; i++)
		if (datachk(mem + i * CHUNK, CHUNK, &crc[i])) {
			fail("chunk %lu corrupted after SIGTERM", i);
			return 1;
		}
	test_msg("%lu iterations\n", iter);
	pass();
	return 0;
}
