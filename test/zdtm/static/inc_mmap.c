// SPDX-License-Identifier: GPL-2.0
/*
 * Change k maps a new private anonymous region of k + 2 pages, where the
 * kernel puts it (so it may abut, and merge with, an older one), and fills
 * it; it also rewrites region k - 1, mapped by the change before (so
 * writes to a region mapped after tracking began must still be tracked).
 * Every region must be mapped rw-p with the data it was given last.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtm.h"

#define MAX_REGIONS 64

struct region {
	char *addr;
	size_t len;
};

static struct region reg[MAX_REGIONS];
static size_t psize;
static char *scratch;

static void fill(int k, uint32_t seed)
{
	datagen(reg[k].addr, reg[k].len, &seed);
}

static int map_region(int k)
{
	struct region *r = &reg[k];

	r->len = (k + 2) * psize;
	r->addr = mmap(NULL, r->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->addr == MAP_FAILED)
		return -1;
	fill(k, 1000 + k);
	return 0;
}

int main(int argc, char **argv)
{
	char perms[5];
	int k, n = 0;

	test_init(argc, argv);
	psize = sysconf(_SC_PAGESIZE);
	scratch = malloc((MAX_REGIONS + 2) * psize);
	if (!scratch || map_region(0))
		return fail_errno("mmap"), 1;
	test_iter_init();
	test_daemon();

	while ((k = test_iter_wait()) > 0) {
		if (k < MAX_REGIONS) {
			fill(k - 1, 2000 + k);
			if (map_region(k))
				return fail_errno("mmap %d", k), 1;
			n = k;
		}
		test_iter_ack(k);
	}

	for (k = 0; k <= n; k++) {
		struct region *r = &reg[k];
		uint32_t crc = k < n ? 2000 + k + 1 : 1000 + k;

		if (vma_perms(r->addr, perms) || strcmp(perms, "rw-p") ||
		    vma_perms(r->addr + r->len - 1, perms) ||
		    strcmp(perms, "rw-p"))
			return fail("region %d at %p: not mapped rw-p", k,
				    r->addr), 1;
		datagen(scratch, r->len, &crc);
		if (memcmp(scratch, r->addr, r->len))
			return fail("region %d at %p (%zu bytes): not the data "
				    "of change %d", k, r->addr, r->len,
				    k < n ? k + 1 : k), 1;
	}
	pass();
	return 0;
}
