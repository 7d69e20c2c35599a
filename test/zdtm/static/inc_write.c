// SPDX-License-Identifier: GPL-2.0
/*
 * 64 MiB of private anonymous memory, every page checksummed; change k
 * rewrites the pages i with i % 100 == (k - 1) % 100 (1%, spread over the
 * whole mapping) with data of generation k.  Each page must hold the data
 * of the last change that wrote it, never an older image's.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define MAP_BYTES (64UL << 20)
#define STRIDE 100

static size_t psize;

/* Seed of page i written by change gen (0: the initial data). */
static uint32_t seed(size_t i, int gen)
{
	return ((uint32_t)gen << 24) ^ (uint32_t)i;
}

/* The last change among 1..n that rewrote page i, or 0. */
static int last_gen(size_t i, int n)
{
	int first = i % STRIDE + 1;

	return n < first ? 0 : first + (n - first) / STRIDE * STRIDE;
}

int main(int argc, char **argv)
{
	size_t npages, i, bad = 0;
	uint32_t crc;
	char *map;
	int k, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	npages = MAP_BYTES / psize;
	map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (i = 0; i < npages; i++) {
		crc = seed(i, 0);
		datagen(map + i * psize, psize, &crc);
	}
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		for (i = (k - 1) % STRIDE; i < npages; i += STRIDE) {
			crc = seed(i, k);
			datagen(map + i * psize, psize, &crc);
		}
		n = k;
		test_iter_ack(k);
	}

	for (i = 0; i < npages; i++) {
		int gen = last_gen(i, n);
		static char want[1 << 16];

		crc = seed(i, gen);
		datagen(want, psize, &crc);
		if (memcmp(map + i * psize, want, psize)) {
			if (!bad++)
				test_msg("page %zu: not the data of change %d\n",
					 i, gen);
		}
	}
	if (bad)
		return fail("%zu of %zu pages wrong after %d changes", bad,
			    npages, n), 1;
	pass();
	return 0;
}
