// SPDX-License-Identifier: GPL-2.0
/*
 * 48 filled blocks of 4 pages.  Change k takes blocks t = 3(k-1), t+1, t+2:
 * MADV_DONTNEED on t (it must read as zero, not as an older image's data),
 * MADV_DONTNEED on t+1 then new data in its first page only, new data in
 * all of t+2.  The other blocks keep their data.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define NR_BLOCKS 48
#define BLOCK_PAGES 4

static size_t psize, blen;
static char *base, scratch[BLOCK_PAGES << 16];

static char *block(int j)
{
	return base + j * blen;
}

static uint32_t seed(int j, int gen)
{
	return (uint32_t)gen << 16 | j;
}

static void fill(int j, size_t len, int gen)
{
	uint32_t crc = seed(j, gen);

	datagen(block(j), len, &crc);
}

/* 0 if block j holds gen's data in its first len bytes and zeros after. */
static int check(int j, size_t len, int gen)
{
	uint32_t crc = seed(j, gen);

	memset(scratch, 0, blen);
	datagen(scratch, len, &crc);
	return memcmp(scratch, block(j), blen);
}

int main(int argc, char **argv)
{
	int j, k, t, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	blen = BLOCK_PAGES * psize;
	base = mmap(NULL, NR_BLOCKS * blen, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (j = 0; j < NR_BLOCKS; j++)
		fill(j, blen, 0);
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		t = 3 * (k - 1);
		if (t < NR_BLOCKS) {
			if (madvise(block(t), 2 * blen, MADV_DONTNEED))
				return fail_errno("madvise %d", k), 1;
			fill(t + 1, psize, k);
			fill(t + 2, blen, k);
			n = k;
		}
		test_iter_ack(k);
	}

	for (j = 0; j < NR_BLOCKS; j++) {
		int changed = j / 3 < n, gen = changed ? j / 3 + 1 : 0;
		size_t len = !changed ? blen : j % 3 == 0 ? 0 :
			     j % 3 == 1 ? psize : blen;

		if (check(j, len, gen))
			return fail("block %d: not %zu bytes of change %d's "
				    "data then zeros", j, len, gen), 1;
	}
	pass();
	return 0;
}
