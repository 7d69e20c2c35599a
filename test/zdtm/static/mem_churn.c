// SPDX-License-Identifier: GPL-2.0
/*
 * Like mem_loop, and the mappings change too: all the time, one chunk is
 * unmapped and mapped again empty, then refilled; another is moved away
 * with mremap and back. A pre-dump that reads the pages of a running tree
 * meets all of it between its scan and its reads; the restored memory must
 * still match.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "zdtm.h"

#define CHUNK (64UL << 10)
#define NR_CHUNKS 256 /* 16 MiB */

int main(int argc, char **argv)
{
	static uint32_t crc[NR_CHUNKS];
	unsigned long iter = 0, i;
	char *mem, *away;

	test_init(argc, argv);
	mem = mmap(NULL, CHUNK * NR_CHUNKS, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	away = mmap(NULL, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || away == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (i = 0; i < NR_CHUNKS; i++) {
		crc[i] = i;
		datagen(mem + i * CHUNK, CHUNK, &crc[i]);
	}
	test_daemon();

	while (!test_stop) {
		char *c;

		i = iter++ % NR_CHUNKS;
		c = mem + i * CHUNK;
		if (datachk(c, CHUNK, &crc[i])) {
			fail("chunk %lu corrupted at iteration %lu", i, iter);
			return 1;
		}
		if (iter % 3 == 0) {
			/* gone and back, empty: refilled below */
			if (munmap(c, CHUNK) ||
			    mmap(c, CHUNK, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != c)
				return fail_errno("remap chunk %lu", i), 1;
		} else if (iter % 3 == 1) {
			/* moved away and back, with its pages */
			if (mremap(c, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, away) != away ||
			    mremap(away, CHUNK, CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED, c) != c)
				return fail_errno("mremap chunk %lu", i), 1;
			if (datachk(c, CHUNK, &crc[i])) {
				fail("chunk %lu corrupted by mremap at iteration %lu", i, iter);
				return 1;
			}
			/* the round trip left a hole at away: keep it reserved */
			if (mmap(away, CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0) != away)
				return fail_errno("mmap away"), 1;
		}
		crc[i] += iter;
		datagen(c, CHUNK, &crc[i]);
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
