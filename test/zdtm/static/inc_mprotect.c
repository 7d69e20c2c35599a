// SPDX-License-Identifier: GPL-2.0
/*
 * 32 blocks of 4 pages, even ones rw-, odd ones r--, all filled.  Change k
 * rewrites block 2(k-1) and makes it read-only (what it wrote must
 * survive), and makes block 2(k-1)+1 writable again and rewrites it.
 * Data and perms of every block are checked.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define NR_BLOCKS 32
#define BLOCK_PAGES 4

static size_t blen;
static char *base, scratch[BLOCK_PAGES << 16];

static char *block(int j)
{
	return base + j * blen;
}

static uint32_t seed(int j, int gen)
{
	return (uint32_t)gen << 16 | j;
}

static void fill(int j, int gen)
{
	uint32_t crc = seed(j, gen);

	datagen(block(j), blen, &crc);
}

static int protect(int j, int prot)
{
	return mprotect(block(j), blen, prot);
}

int main(int argc, char **argv)
{
	char perms[5];
	const char *want;
	uint32_t crc;
	int j, k, n = 0, gen;

	test_init(argc, argv);
	blen = BLOCK_PAGES * sysconf(_SC_PAGESIZE);
	base = mmap(NULL, NR_BLOCKS * blen, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return fail_errno("mmap"), 1;
	for (j = 0; j < NR_BLOCKS; j++)
		fill(j, 0);
	for (j = 1; j < NR_BLOCKS; j += 2)
		if (protect(j, PROT_READ))
			return fail_errno("mprotect %d", j), 1;
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		j = 2 * (k - 1);
		if (j < NR_BLOCKS) {
			fill(j, k);
			if (protect(j, PROT_READ) ||
			    protect(j + 1, PROT_READ | PROT_WRITE))
				return fail_errno("mprotect %d", k), 1;
			fill(j + 1, k);
			n = k;
		}
		test_iter_ack(k);
	}

	for (j = 0; j < NR_BLOCKS; j++) {
		int changed = j / 2 < n;

		/* Changed blocks swapped perms; both got change j/2+1's data. */
		want = (j & 1) == changed ? "rw-p" : "r--p";
		gen = changed ? j / 2 + 1 : 0;
		if (vma_perms(block(j), perms) || strcmp(perms, want) ||
		    vma_perms(block(j) + blen - 1, perms) || strcmp(perms, want))
			return fail("block %d: perms %s, want %s", j, perms,
				    want), 1;
		crc = seed(j, gen);
		datagen(scratch, blen, &crc);
		if (memcmp(scratch, block(j), blen))
			return fail("block %d (%s): not the data of change %d",
				    j, want, gen), 1;
	}
	pass();
	return 0;
}
